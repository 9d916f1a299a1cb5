// Level-1 vector kernels on float32 storage buffers.
//
// One invocation per element and each element written by exactly one invocation: no atomics,
// so results are the same bits on every run.

struct AxpyParams {
    a: f32,
    // Number of elements to update.
    len: u32,
    // Elements per row of x-workgroups (groups.x * 256): long vectors spill into gid.y because a
    // dispatch dimension holds at most 65535 workgroups.
    row: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: AxpyParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// y <- a * x + y
// Invocations per workgroup, set by the host (src/gpu/blas.rs), which also counts the
// workgroups of each dispatch from it: no default here, so the two cannot disagree.
override WORKGROUP_SIZE: u32;

@compute @workgroup_size(WORKGROUP_SIZE)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    if (i >= params.len) {
        return;
    }
    y[i] = params.a * x[i] + y[i];
}

// Sum of squares, reduced per workgroup: each invocation adds its elements in a fixed order,
// then a fixed tree adds the invocations; the host adds the workgroups' partial sums in order.
// No atomics: the same bits on every run.
const REDUCE_SIZE: u32 = 256u;

struct ReduceParams {
    // Elements to reduce.
    len: u32,
    // Elements per workgroup (a multiple of REDUCE_SIZE).
    chunk: u32,
    // Workgroups per row of the dispatch (long vectors spill into workgroup_id.y).
    row: u32,
    // The first element reduced: one shot's field in a batched buffer, say.
    offset: u32,
}

@group(0) @binding(3) var<uniform> reduce_params: ReduceParams;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;

var<workgroup> acc: array<f32, REDUCE_SIZE>;

@compute @workgroup_size(REDUCE_SIZE)
fn sum_squares(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let group = wid.x + wid.y * reduce_params.row;
    let start = group * reduce_params.chunk;
    var s = 0.0;
    for (var i = lid; i < reduce_params.chunk; i = i + REDUCE_SIZE) {
        let j = start + i;
        if (j < reduce_params.len) {
            let x = v[reduce_params.offset + j];
            s = s + x * x;
        }
    }
    acc[lid] = s;
    workgroupBarrier();
    for (var stride = REDUCE_SIZE / 2u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            acc[lid] = acc[lid] + acc[lid + stride];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        partial[group] = acc[0];
    }
}

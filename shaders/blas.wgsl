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

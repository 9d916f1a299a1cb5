// Where off-grid points (sources, receivers) meet the grid: injection and sampling.
//
// A batch of shots is one plan: its points are the shots' points one shot after another, its
// cells index the batched field (shot × the level's length + the cell), and the model's
// arrays, one for the batch, are read at the cell within its shot (`cell % sample.stride`).
//
// Sampling reads the 2^dim multilinear taps of a point. Injection, its exact transpose, is a
// gather: one invocation per grid cell touched sums the contributions of the points that reach
// it, in increasing point order, and adds the sum to its own cell. Each cell is written by one
// invocation, so no atomics are needed and the bits never change between runs.

// The time sample this dispatch works on; bound with a dynamic offset, one entry per sample.
struct Sample {
    k: u32,
    // Points in the plan (values and traces are [nt][points]).
    points: u32,
    // 1/Δt², for `gradient_at_sources`.
    inv_dt2: f32,
    // Words from one shot's field to the next in a batched buffer (a time level's length).
    stride: u32,
}

@group(0) @binding(0) var<uniform> sample: Sample;

// --- injection: field[cell] += a[cell] · Σ weight · values[k][point] ---

@group(0) @binding(1) var<storage, read> cells: array<u32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
// (point, bitcast<u32>(weight)), grouped by cell.
@group(0) @binding(3) var<storage, read> entries: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read> values: array<f32>;
@group(0) @binding(5) var<storage, read> coef_a: array<f32>;
@group(0) @binding(6) var<storage, read_write> field: array<f32>;

// Invocations per workgroup, set by the host (src/acoustic/points.rs), which also counts the
// workgroups of each dispatch from it: no default here, so the two cannot disagree.
override WORKGROUP_SIZE: u32;

// Σ weight · values[k][point] over the points that reach touched cell `c`, in point order.
fn gathered(c: u32) -> f32 {
    let row = sample.k * sample.points;
    var sum = 0.0;
    for (var e = offsets[c]; e < offsets[c + 1u]; e++) {
        let entry = entries[e];
        sum += bitcast<f32>(entry.y) * values[row + entry.x];
    }
    return sum;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn inject(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= arrayLength(&cells)) {
        return;
    }
    let cell = cells[c];
    field[cell] += coef_a[cell % sample.stride] * gathered(c);
}

// --- the source term of the gradient: grad[cell] −= ψ[cell] · a[cell] · Σ weight · values[k][point] / Δt² ---
//
// u_{k+1} − 2u_k + u_{k−1} holds a·Sᵀq_k at the source cells (see `accumulate` in
// acoustic_step.wgsl); this adds its share of the gradient, as the injection's gather.

@group(0) @binding(11) var<storage, read> psi: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn gradient_at_sources(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= arrayLength(&cells)) {
        return;
    }
    let cell = cells[c];
    field[cell] -= psi[cell] * (coef_a[cell % sample.stride] * gathered(c)) * sample.inv_dt2;
}

// --- sampling: traces[k][point] = Σ weight · source[cell] ---

// Per point, 2^dim taps (cell, bitcast<u32>(weight)).
@group(0) @binding(7) var<storage, read> taps: array<vec2<u32>>;
@group(0) @binding(8) var<storage, read> source: array<f32>;
@group(0) @binding(9) var<storage, read_write> traces: array<f32>;

// Σ weight · source[cell] over point p's taps, in tap order.
fn tap_sum(p: u32) -> f32 {
    let per_point = arrayLength(&taps) / sample.points;
    var sum = 0.0;
    for (var t = 0u; t < per_point; t++) {
        let tap = taps[p * per_point + t];
        sum += bitcast<f32>(tap.y) * source[tap.x];
    }
    return sum;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn sample_points(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    if (p >= sample.points) {
        return;
    }
    traces[sample.k * sample.points + p] = tap_sum(p);
}

// --- residual: traces[k][point] = recorded[k][point] − observed[k][point] ---
//
// The data residual of the adjoint source, from the traces the forward sweep recorded on the
// GPU: the adjoint of step k then needs no u_{k+1}, and no trace goes to the host between the
// sweeps. Past the last sample of its point's shot (`ends`: a shot of a batch that stopped
// early, when quiet), the residual is zero, so that shot's adjoint starts at its own end.

@group(0) @binding(10) var<storage, read> observed: array<f32>;
@group(0) @binding(12) var<storage, read> recorded: array<f32>;
@group(0) @binding(13) var<storage, read> ends: array<u32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn trace_residual(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = gid.x;
    if (p >= sample.points) {
        return;
    }
    let at = sample.k * sample.points + p;
    traces[at] = select(0.0, recorded[at] - observed[at], sample.k <= ends[p]);
}

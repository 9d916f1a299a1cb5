// The leapfrog stencil family: one step of the acoustic wave equation on the extended grid,
// and that step's derivative in m accumulated into the gradient.
//
//     next = 2b·cur − (2b − 1)·prev + a·(L cur)
//
// with a = 1/(m/Δt² + η/(2Δt)), b = a·m/Δt² per cell (src/acoustic/problem.rs). With the
// sponge (η > 0, no CPML) the discrete adjoint is the same update run backwards in time
// (src/acoustic/cpu.rs explains why). With the CPML (η = 0), each time level carries the
// layer's memory fields Ψ_d, Z_d after the field, in one slab per axis, and the kernels of
// acoustic_cpml.wgsl (appended to this file, using its bindings and helpers) replace these.
//
// Fields are padded with a halo of RADIUS zeros that is never written, so every stencil read is
// in bounds and the Laplacian is exactly symmetric. One invocation per extended cell, each
// writing only its own cell: no atomics, the same bits on every run.

struct Grid {
    // Padded sizes (py = 1 in 2D).
    px: u32,
    py: u32,
    pz: u32,
    // 1/Δt², for the gradient.
    inv_dt2: f32,
    // Extended sizes (ny = 1 in 2D).
    nx: u32,
    ny: u32,
    nz: u32,
    // Cells of the CPML on each side; 0 without one (the sponge).
    pml_width: u32,
    // Laplacian coefficients c1 … c8 divided by h² (slot 0 unused: see `laplacian_2d`).
    coeffs: array<vec4<f32>, 3>,
    // First-derivative coefficients c1 … c8 divided by h (slot 0 unused).
    first: array<vec4<f32>, 3>,
    // Where Ψ_d starts in a time level, per axis (x, y, z); Z_d follows it.
    psi_offset: vec4<u32>,
    // Values in axis d's slab: 2·pml_width cells across, the full grid along the others.
    slab_len: vec4<u32>,
    // The batch: words from one shot's time level to the next (a level's length), shots in
    // the batch, and in 3D the workgroups along x of one shot (the dispatch's z dimension
    // holds every shot's, one after the other).
    batch: vec4<u32>,
}

// Stencil radius (space order / 2), fixed when the pipeline is built so the loop unrolls.
override RADIUS: u32 = 4u;
// The workgroup shape, set by the host (src/acoustic/gpu.rs), which also counts the
// workgroups of each dispatch from it: no default here, so the two cannot disagree.
override WORKGROUP_X: u32;
override WORKGROUP_Y: u32;
override WORKGROUP_Z: u32;

@group(0) @binding(0) var<uniform> grid: Grid;
@group(0) @binding(1) var<storage, read> coef_a: array<f32>;
@group(0) @binding(2) var<storage, read> coef_b: array<f32>;
@group(0) @binding(3) var<storage, read> prev: array<f32>;
@group(0) @binding(4) var<storage, read> cur: array<f32>;
// The step's output.
@group(0) @binding(5) var<storage, read_write> next: array<f32>;
// The gradient's inputs and output: ψ_{k+1} and ∂J/∂m.
@group(0) @binding(6) var<storage, read> psi: array<f32>;
@group(0) @binding(7) var<storage, read_write> grad: array<f32>;

// Where this invocation's shot starts in every batched buffer (time levels, ψ, the gradients):
// shot × the level's length. The model's arrays (coef_a, coef_b, the CPML's profile) are one
// for the batch and indexed without it ([`model`]). Shots never read each other's words, so a
// shot's bits do not depend on the batch it runs in.
var<private> base: u32;

// The model's index of the field index i.
fn model(i: u32) -> u32 {
    return i - base;
}

fn coeff(k: u32) -> f32 {
    return grid.coeffs[k / 4u][k % 4u];
}

fn first(k: u32) -> f32 {
    return grid.first[k / 4u][k % 4u];
}

// The Laplacian in difference form, Σₖ cₖ Σ_axes ((u₋ₖ − u) + (u₊ₖ − u)): equal to
// c₀u + Σₖ cₖ(u₋ₖ + u₊ₖ) since c₀ = −2Σcₖ, but exactly zero on a constant field even with
// float32 coefficients, and differences of neighbouring values round far less than the large
// cancelling sum. (The plain form drifted the phase enough to reach 1e-5 against the float64
// twin at order 8.)
fn laplacian_2d(i: u32) -> f32 {
    let sx = grid.pz;
    let u = cur[i];
    var lap = 0.0;
    for (var k = 1u; k <= RADIUS; k++) {
        lap += coeff(k) * (((cur[i - k * sx] - u) + (cur[i + k * sx] - u))
            + ((cur[i - k] - u) + (cur[i + k] - u)));
    }
    return lap;
}

fn laplacian_3d(i: u32) -> f32 {
    let sy = grid.pz;
    let sx = grid.py * grid.pz;
    let u = cur[i];
    var lap = 0.0;
    for (var k = 1u; k <= RADIUS; k++) {
        lap += coeff(k) * (((cur[i - k * sx] - u) + (cur[i + k * sx] - u))
            + ((cur[i - k * sy] - u) + (cur[i + k * sy] - u))
            + ((cur[i - k] - u) + (cur[i + k] - u)));
    }
    return lap;
}

// The padded index of extended cell (x, z), or of (x, y, z); z is contiguous in memory and
// rides on gid.x so neighbouring invocations read neighbouring words.
fn cell_2d(gid: vec3<u32>) -> u32 {
    return base + (gid.y + RADIUS) * grid.pz + (gid.x + RADIUS);
}

fn cell_3d(gid: vec3<u32>) -> u32 {
    return base + ((gid.z + RADIUS) * grid.py + (gid.y + RADIUS)) * grid.pz + (gid.x + RADIUS);
}

// In 2D the shot rides on the dispatch's z dimension (gid.z): sets `base` to its start, and
// says whether the invocation has a cell, of a shot of the batch.
fn shot_2d(gid: vec3<u32>) -> bool {
    base = gid.z * grid.batch.x;
    return gid.x < grid.nz && gid.y < grid.nx && gid.z < grid.batch.y;
}

// In 3D z is the x axis: the dispatch's z dimension holds batch.z workgroups of it per shot,
// shot after shot. Sets `base` to the shot's start; returns the invocation's id within it.
fn shot_3d(wid: vec3<u32>, lid: vec3<u32>) -> vec3<u32> {
    let shot = wid.z / grid.batch.z;
    base = shot * grid.batch.x;
    return vec3<u32>(
        wid.x * WORKGROUP_X + lid.x,
        wid.y * WORKGROUP_Y + lid.y,
        (wid.z % grid.batch.z) * WORKGROUP_Z + lid.z,
    );
}

fn inside_3d(gid: vec3<u32>) -> bool {
    return gid.x < grid.nz && gid.y < grid.ny && gid.z < grid.nx;
}

fn update(i: u32, lap: f32) {
    let b = coef_b[model(i)];
    next[i] = 2.0 * b * cur[i] - (2.0 * b - 1.0) * prev[i] + coef_a[model(i)] * lap;
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn step_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!shot_2d(gid)) {
        return;
    }
    let i = cell_2d(gid);
    update(i, laplacian_2d(i));
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn step_3d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let gid = shot_3d(wid, lid);
    if (!inside_3d(gid)) {
        return;
    }
    let i = cell_3d(gid);
    update(i, laplacian_3d(i));
}

// The gradient of the misfit in m = 1/c², one reverse step at a time, from state k alone:
//
//     grad −= ψ_{k+1} · (u_{k+1} − 2u_k + u_{k−1}) / Δt²,
//     u_{k+1} − 2u_k + u_{k−1} = 2(b − 1)(u_k − u_{k−1}) + a·(L u_k + Sᵀq_k),
//
// so the adjoint of step k never needs u_{k+1} and the engine need not recompute it. The
// source term a·Sᵀq_k lives on a few cells and is added by `gradient_at_sources`
// (acoustic_points.wgsl). b − 1 is exact in float32 wherever b ≥ ½ (Sterbenz), and this form
// has none of the cancellation of the large u_{k+1} − 2u_k. Each invocation updates only its own cell, in a
// fixed order over steps: no atomics.
fn accumulate(i: u32, lap: f32) {
    let d = 2.0 * (coef_b[model(i)] - 1.0) * (cur[i] - prev[i]) + coef_a[model(i)] * lap;
    grad[i] -= psi[i] * d * grid.inv_dt2;
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn gradient_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!shot_2d(gid)) {
        return;
    }
    let i = cell_2d(gid);
    accumulate(i, laplacian_2d(i));
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn gradient_3d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let gid = shot_3d(wid, lid);
    if (!inside_3d(gid)) {
        return;
    }
    let i = cell_3d(gid);
    accumulate(i, laplacian_3d(i));
}

// One leapfrog step of the damped acoustic wave equation on the extended grid:
//
//     next = 2b·cur − (2b − 1)·prev + a·(L cur)
//
// with a = 1/(m/Δt² + η/(2Δt)), b = a·m/Δt² per cell (src/acoustic/problem.rs). The discrete
// adjoint is the same update run backwards in time (src/acoustic/cpu.rs explains why), so this
// one kernel serves the forward and the adjoint wavefield.
//
// Fields are padded with a halo of RADIUS zeros that is never written, so every stencil read is
// in bounds and the Laplacian is exactly symmetric. One invocation per extended cell, each
// writing only its own cell of `next`: no atomics, the same bits on every run.

struct Grid {
    // Padded sizes (py = 1 in 2D).
    px: u32,
    py: u32,
    pz: u32,
    _pad0: u32,
    // Extended sizes (ny = 1 in 2D).
    nx: u32,
    ny: u32,
    nz: u32,
    _pad1: u32,
    // Laplacian coefficients c1 … c8 divided by h² (slot 0 unused: see `step_2d`).
    coeffs: array<vec4<f32>, 3>,
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
@group(0) @binding(5) var<storage, read_write> next: array<f32>;

fn coeff(k: u32) -> f32 {
    return grid.coeffs[k / 4u][k % 4u];
}

fn update(i: u32, lap: f32) {
    let b = coef_b[i];
    next[i] = 2.0 * b * cur[i] - (2.0 * b - 1.0) * prev[i] + coef_a[i] * lap;
}

// The Laplacian in difference form, Σₖ cₖ Σ_axes ((u₋ₖ − u) + (u₊ₖ − u)): equal to
// c₀u + Σₖ cₖ(u₋ₖ + u₊ₖ) since c₀ = −2Σcₖ, but exactly zero on a constant field even with
// float32 coefficients, and differences of neighbouring values round far less than the large
// cancelling sum. (The plain form drifted the phase enough to reach 1e-5 against the float64
// twin at order 8.)
//
// z (contiguous in memory) on gid.x so neighbouring invocations read neighbouring words.
@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn step_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    let z = gid.x;
    let x = gid.y;
    if (z >= grid.nz || x >= grid.nx) {
        return;
    }
    let i = (x + RADIUS) * grid.pz + (z + RADIUS);
    let sx = grid.pz;
    let u = cur[i];
    var lap = 0.0;
    for (var k = 1u; k <= RADIUS; k++) {
        lap += coeff(k) * (((cur[i - k * sx] - u) + (cur[i + k * sx] - u))
            + ((cur[i - k] - u) + (cur[i + k] - u)));
    }
    update(i, lap);
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn step_3d(@builtin(global_invocation_id) gid: vec3<u32>) {
    let z = gid.x;
    let y = gid.y;
    let x = gid.z;
    if (z >= grid.nz || y >= grid.ny || x >= grid.nx) {
        return;
    }
    let sy = grid.pz;
    let sx = grid.py * grid.pz;
    let i = (x + RADIUS) * sx + (y + RADIUS) * sy + (z + RADIUS);
    let u = cur[i];
    var lap = 0.0;
    for (var k = 1u; k <= RADIUS; k++) {
        lap += coeff(k) * (((cur[i - k * sx] - u) + (cur[i + k * sx] - u))
            + ((cur[i - k * sy] - u) + (cur[i + k * sy] - u))
            + ((cur[i - k] - u) + (cur[i + k] - u)));
    }
    update(i, lap);
}

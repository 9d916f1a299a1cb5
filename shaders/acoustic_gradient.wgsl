// Gradient of the misfit with respect to m = 1/c², one reverse step at a time:
//
//     grad −= ψ_{k+1} · (u_{k+1} − 2u_k + u_{k−1}) / Δt²
//
// over every padded cell (the halo holds zeros and contributes nothing). One invocation per
// cell, each updating only its own: a fixed summation order over steps, no atomics.

struct Params {
    inv_dt2: f32,
    len: u32,
    // Cells per row of x-workgroups (long fields spill into gid.y).
    row: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> psi: array<f32>;
@group(0) @binding(2) var<storage, read> u_next: array<f32>;
@group(0) @binding(3) var<storage, read> u: array<f32>;
@group(0) @binding(4) var<storage, read> u_prev: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;

// Invocations per workgroup, set by the host (src/acoustic/gpu.rs), which also counts the
// workgroups of each dispatch from it: no default here, so the two cannot disagree.
override WORKGROUP_SIZE: u32;

@compute @workgroup_size(WORKGROUP_SIZE)
fn gradient(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    if (i >= params.len) {
        return;
    }
    grad[i] -= psi[i] * ((u_next[i] - 2.0 * u[i]) + u_prev[i]) * params.inv_dt2;
}

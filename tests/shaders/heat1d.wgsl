// A user's own kernels, embedded through the Operator trait: a nonlinear 1D heat step
//     u⁺ᵢ = uᵢ + α(uᵢ₋₁ − 2uᵢ + uᵢ₊₁) − β uᵢ³      (u₀ = u_{N−1} = 0)
// and its adjoint, which needs the forward state uᵢ:
//     λᵢ = λ⁺ᵢ + α(λ⁺ᵢ₋₁ − 2λ⁺ᵢ + λ⁺ᵢ₊₁) − 3β uᵢ² λ⁺ᵢ

struct Params {
    alpha: f32,
    beta: f32,
    n: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read> lam_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn interior(i: u32) -> bool {
    return i > 0u && i + 1u < params.n;
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.n) { return; }
    if (!interior(i)) { out[i] = 0.0; return; }
    let ui = u[i];
    out[i] = ui + params.alpha * ((u[i - 1u] - 2.0 * ui) + u[i + 1u]) - params.beta * ui * ui * ui;
}

// Seed of the reverse sweep, J = ½ Σ (u_n − target)²: λ_n = u_n − target (target in lam_in).
@compute @workgroup_size(64)
fn seed(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.n) { return; }
    out[i] = select(0.0, u[i] - lam_in[i], interior(i));
}

@compute @workgroup_size(64)
fn adjoint(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.n) { return; }
    if (!interior(i)) { out[i] = 0.0; return; }
    let l = lam_in[i];
    let ui = u[i];
    out[i] = l + params.alpha * ((lam_in[i - 1u] - 2.0 * l) + lam_in[i + 1u]) - 3.0 * params.beta * ui * ui * l;
}

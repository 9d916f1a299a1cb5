// Two-dimensional diffusion with a variable coefficient, one explicit Euler step
//     u⁺ = u + α A(κ) u,   (A u)_c = Σ_faces κ_f (u_n − u_c),
// κ_f the mean of the two cells' κ, and zero outside the grid (u = 0 there, κ_f = κ_c). A is
// symmetric, so the adjoint step is the same kernel run on λ; `gradient` accumulates
// ∂J/∂κ from a state and the adjoint after it. Cells are indexed x * nz + z.

struct Params {
    nx: u32,
    nz: u32,
    alpha: f32,
    // Elements per row of x workgroups: long grids spill into the y dimension.
    row: u32,
}

// Set by the host, which counts its dispatches with the same value.
override WORKGROUP_SIZE: u32;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> kappa: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

const NEIGHBOURS = array<vec2<i32>, 4>(vec2(1, 0), vec2(-1, 0), vec2(0, 1), vec2(0, -1));

fn inside(x: i32, z: i32) -> bool {
    return x >= 0 && z >= 0 && x < i32(p.nx) && z < i32(p.nz);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn step(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x + gid.y * p.row;
    if (c >= p.nx * p.nz) {
        return;
    }
    let x = i32(c / p.nz);
    let z = i32(c % p.nz);
    let v = src[c];
    var a = 0.0;
    for (var k = 0; k < 4; k++) {
        let xn = x + NEIGHBOURS[k].x;
        let zn = z + NEIGHBOURS[k].y;
        if (inside(xn, zn)) {
            let n = u32(xn) * p.nz + u32(zn);
            a += 0.5 * (kappa[c] + kappa[n]) * (src[n] - v);
        } else {
            a -= kappa[c] * v;
        }
    }
    dst[c] = v + p.alpha * a;
}

@group(0) @binding(4) var<storage, read> u: array<f32>;
@group(0) @binding(5) var<storage, read> lambda: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;

// grad_c += α ∂(λᵀ A(κ) u)/∂κ_c: −½ (u_n − u_c)(λ_n − λ_c) per inner face, −u_c λ_c per
// boundary face. Each cell writes only its own entry: no atomics.
@compute @workgroup_size(WORKGROUP_SIZE)
fn gradient(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x + gid.y * p.row;
    if (c >= p.nx * p.nz) {
        return;
    }
    let x = i32(c / p.nz);
    let z = i32(c % p.nz);
    var g = 0.0;
    for (var k = 0; k < 4; k++) {
        let xn = x + NEIGHBOURS[k].x;
        let zn = z + NEIGHBOURS[k].y;
        if (inside(xn, zn)) {
            let n = u32(xn) * p.nz + u32(zn);
            g -= 0.5 * (u[n] - u[c]) * (lambda[n] - lambda[c]);
        } else {
            g -= u[c] * lambda[c];
        }
    }
    grad[c] += p.alpha * g;
}

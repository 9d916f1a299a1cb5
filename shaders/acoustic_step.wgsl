// The leapfrog stencil family: one step of the acoustic wave equation on the extended grid,
// its exact adjoint, and that step's derivative in m accumulated into the gradient.
//
//     next = 2b·cur − (2b − 1)·prev + a·(L cur + CPML terms)
//
// with a = 1/(m/Δt² + η/(2Δt)), b = a·m/Δt² per cell (src/acoustic/problem.rs). With the
// sponge (η > 0, no CPML) the discrete adjoint is the same update run backwards in time
// (src/acoustic/cpu.rs explains why). With the CPML (η = 0), each time level carries the
// layer's memory fields Ψ_d, Z_d after the field, in one slab per axis, and the adjoint step is
// the transpose derived in src/acoustic/cpml.rs, whose float64 twin these kernels follow line
// by line.
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
// The CPML's (A, B) per axis and extended coordinate: x, then y, then z.
@group(0) @binding(8) var<storage, read> pml_profile: array<vec2<f32>>;

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
    return (gid.y + RADIUS) * grid.pz + (gid.x + RADIUS);
}

fn cell_3d(gid: vec3<u32>) -> u32 {
    return ((gid.z + RADIUS) * grid.py + (gid.y + RADIUS)) * grid.pz + (gid.x + RADIUS);
}

fn inside_2d(gid: vec3<u32>) -> bool {
    return gid.x < grid.nz && gid.y < grid.nx;
}

fn inside_3d(gid: vec3<u32>) -> bool {
    return gid.x < grid.nz && gid.y < grid.ny && gid.z < grid.nx;
}

// Extended coordinates (x, y, z) of an invocation; y = 0 in 2D.
fn coords_2d(gid: vec3<u32>) -> vec3<i32> {
    return vec3<i32>(i32(gid.y), 0, i32(gid.x));
}

fn coords_3d(gid: vec3<u32>) -> vec3<i32> {
    return vec3<i32>(i32(gid.z), i32(gid.y), i32(gid.x));
}

// ---- The CPML (src/acoustic/cpml.rs) ------------------------------------------------------

fn axis_len(d: u32) -> i32 {
    return i32(select(select(grid.nz, grid.ny, d == 1u), grid.nx, d == 0u));
}

fn axis_stride(d: u32) -> i32 {
    return i32(select(select(1u, grid.pz, d == 1u), grid.py * grid.pz, d == 0u));
}

// Whether coordinate c along axis d is within a stencil radius of the layer: only there does
// the CPML add anything, so the interior pays one comparison per axis.
fn near_layer(d: u32, c: i32) -> bool {
    let reach = i32(grid.pml_width + RADIUS);
    return c < reach || c + reach >= axis_len(d);
}

// (A, B) at coordinate c along axis d; zero outside the layer and the grid.
fn profile(d: u32, c: i32) -> vec2<f32> {
    if (c < 0 || c >= axis_len(d)) {
        return vec2<f32>(0.0);
    }
    let base = select(select(grid.nx + grid.ny, grid.nx, d == 1u), 0u, d == 0u);
    return pml_profile[base + u32(c)];
}

// A line of axis d's slab through cell c, along d: memory field Ψ of the cell at coordinate t
// along d sits at `psi + slab_pos(d, t) · stride`, its Z `slab_len[d]` later. Computed once
// per cell and axis, so each neighbour costs a comparison and a multiply-add.
struct SlabLine {
    psi: i32,
    zeta: i32,
    stride: i32,
}

fn slab_line(d: u32, c: vec3<i32>) -> SlabLine {
    var dims = vec3<i32>(i32(grid.nx), i32(grid.ny), i32(grid.nz));
    dims[d] = 2 * i32(grid.pml_width);
    var s = c;
    s[d] = 0;
    let psi = i32(grid.psi_offset[d]) + (s.x * dims.y + s.y) * dims.z + s.z;
    let stride = select(select(1, dims.z, d == 1u), dims.y * dims.z, d == 0u);
    return SlabLine(psi, psi + i32(grid.slab_len[d]), stride);
}

// The slab position of coordinate t along axis d, or −1 in the interior or outside the grid.
fn slab_pos(d: u32, t: i32) -> i32 {
    let w = i32(grid.pml_width);
    let n = axis_len(d);
    if (t < 0 || t >= n) {
        return -1;
    }
    if (t < w) {
        return t;
    }
    if (t >= n - w) {
        return t - (n - 2 * w);
    }
    return -1;
}

// Ψ (`which` 0) or Z (1) of `cur` at coordinate t along the line; zero outside the slab.
fn line_read(line: SlabLine, d: u32, which: u32, t: i32) -> f32 {
    let p = slab_pos(d, t);
    if (p < 0) {
        return 0.0;
    }
    return cur[select(line.psi, line.zeta, which == 1u) + p * line.stride];
}

fn cur_at(i: u32, offset: i32) -> f32 {
    return cur[u32(i32(i) + offset)];
}

// One axis of the CPML's forward terms at cell c (padded index i) of level `cur`.
struct PmlAxis {
    // D₁Ψ + A·Ũ + B·Z, added to L u.
    sum: f32,
    // Where this cell's Ψ and Z live (−1 outside the slab), and their next values.
    psi: i32,
    zeta: i32,
    psi_next: f32,
    zeta_next: f32,
}

fn pml_axis(i: u32, c: vec3<i32>, d: u32) -> PmlAxis {
    var out = PmlAxis(0.0, -1, -1, 0.0, 0.0);
    let line = slab_line(d, c);
    let t = c[d];
    var dpsi = 0.0;
    for (var k = 1u; k <= RADIUS; k++) {
        let kk = i32(k);
        dpsi += first(k) * (line_read(line, d, 0u, t + kk) - line_read(line, d, 0u, t - kk));
    }
    let p = slab_pos(d, t);
    if (p < 0) {
        out.sum = dpsi;
        return out;
    }
    out.psi = line.psi + p * line.stride;
    out.zeta = line.zeta + p * line.stride;
    let s = axis_stride(d);
    let u = cur[i];
    var d2 = 0.0;
    var d1 = 0.0;
    for (var k = 1u; k <= RADIUS; k++) {
        let lo = cur_at(i, -i32(k) * s);
        let hi = cur_at(i, i32(k) * s);
        d2 += coeff(k) * ((lo - u) + (hi - u));
        d1 += first(k) * (hi - lo);
    }
    let ab = profile(d, t);
    let stretched = d2 + dpsi;
    let z = cur[out.zeta];
    out.sum = dpsi + ab.x * stretched + ab.y * z;
    out.psi_next = ab.y * cur[out.psi] + ab.x * d1;
    out.zeta_next = ab.y * z + ab.x * stretched;
    return out;
}

// The CPML's share of the step at cell c, summed over axes (`axis_step` 2 in 2D: x and z).
fn pml_terms(i: u32, c: vec3<i32>, axis_step: u32) -> f32 {
    var sum = 0.0;
    if (grid.pml_width == 0u) {
        return sum;
    }
    for (var d = 0u; d < 3u; d += axis_step) {
        if (near_layer(d, c[d])) {
            sum += pml_axis(i, c, d).sum;
        }
    }
    return sum;
}

// As `pml_terms`, also writing the next memory fields into `next`.
fn pml_step(i: u32, c: vec3<i32>, axis_step: u32) -> f32 {
    var sum = 0.0;
    if (grid.pml_width == 0u) {
        return sum;
    }
    for (var d = 0u; d < 3u; d += axis_step) {
        if (near_layer(d, c[d])) {
            let p = pml_axis(i, c, d);
            sum += p.sum;
            if (p.psi >= 0) {
                next[p.psi] = p.psi_next;
                next[p.zeta] = p.zeta_next;
            }
        }
    }
    return sum;
}

// The transpose of `pml_step` at cell c, with `cur` the adjoint level one step later (its field
// ψ = a ⊙ ū, its memory fields Ψ̄, Z̄) and `next` the one being written:
//     ū  += Σ_d [D₂(A·(ψ + Z̄)) − D₁(A·Ψ̄)]
//     Ψ̄' = B·Ψ̄ − D₁((1 + A)·ψ + A·Z̄),   Z̄' = B·(Z̄ + ψ).
// Returns the first line's sum.
fn pml_adjoint(i: u32, c: vec3<i32>, axis_step: u32) -> f32 {
    var sum = 0.0;
    if (grid.pml_width == 0u) {
        return sum;
    }
    for (var d = 0u; d < 3u; d += axis_step) {
        let t = c[d];
        if (!near_layer(d, t)) {
            continue;
        }
        let s = axis_stride(d);
        let line = slab_line(d, c);
        let h0 = profile(d, t).x * (cur[i] + line_read(line, d, 1u, t));
        var d2h = 0.0;
        var d1g = 0.0;
        var d1w = 0.0;
        for (var k = 1u; k <= RADIUS; k++) {
            let kk = i32(k);
            let a_lo = profile(d, t - kk).x;
            let a_hi = profile(d, t + kk).x;
            let psi_lo = cur_at(i, -kk * s);
            let psi_hi = cur_at(i, kk * s);
            let z_lo = line_read(line, d, 1u, t - kk);
            let z_hi = line_read(line, d, 1u, t + kk);
            d2h += coeff(k) * ((a_lo * (psi_lo + z_lo) - h0) + (a_hi * (psi_hi + z_hi) - h0));
            d1g += first(k) * (a_hi * line_read(line, d, 0u, t + kk) - a_lo * line_read(line, d, 0u, t - kk));
            d1w += first(k) * (((1.0 + a_hi) * psi_hi + a_hi * z_hi) - ((1.0 + a_lo) * psi_lo + a_lo * z_lo));
        }
        sum += d2h - d1g;
        let p = slab_pos(d, t);
        if (p >= 0) {
            let psi = line.psi + p * line.stride;
            let zeta = line.zeta + p * line.stride;
            let b = profile(d, t).y;
            next[psi] = b * cur[psi] - d1w;
            next[zeta] = b * (cur[zeta] + cur[i]);
        }
    }
    return sum;
}

// ---- The kernels ----------------------------------------------------------------------------

fn update(i: u32, lap: f32) {
    let b = coef_b[i];
    next[i] = 2.0 * b * cur[i] - (2.0 * b - 1.0) * prev[i] + coef_a[i] * lap;
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn step_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!inside_2d(gid)) {
        return;
    }
    let i = cell_2d(gid);
    update(i, laplacian_2d(i) + pml_step(i, coords_2d(gid), 2u));
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn step_3d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!inside_3d(gid)) {
        return;
    }
    let i = cell_3d(gid);
    update(i, laplacian_3d(i) + pml_step(i, coords_3d(gid), 1u));
}

// The adjoint step: prev = ψ_{k+2}, cur = ψ_{k+1} (with Ψ̄, Z̄), next = ψ_k. Without a CPML,
// the step itself.
@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn adjoint_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!inside_2d(gid)) {
        return;
    }
    let i = cell_2d(gid);
    update(i, laplacian_2d(i) + pml_adjoint(i, coords_2d(gid), 2u));
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn adjoint_3d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!inside_3d(gid)) {
        return;
    }
    let i = cell_3d(gid);
    update(i, laplacian_3d(i) + pml_adjoint(i, coords_3d(gid), 1u));
}

// The gradient of the misfit in m = 1/c², one reverse step at a time, from state k alone:
//
//     grad −= ψ_{k+1} · (u_{k+1} − 2u_k + u_{k−1}) / Δt²,
//     u_{k+1} − 2u_k + u_{k−1} = 2(b − 1)(u_k − u_{k−1}) + a·(L u_k + CPML terms + Sᵀq_k),
//
// so the adjoint of step k never needs u_{k+1} and the engine need not recompute it. The
// source term a·Sᵀq_k lives on a few cells and is added by `gradient_at_sources`
// (acoustic_points.wgsl). b − 1 is exact in float32 wherever b ≥ ½ (Sterbenz), and this form
// has none of the cancellation of the large u_{k+1} − 2u_k. Each invocation updates only its own cell, in a
// fixed order over steps: no atomics.
fn accumulate(i: u32, lap: f32) {
    let d = 2.0 * (coef_b[i] - 1.0) * (cur[i] - prev[i]) + coef_a[i] * lap;
    grad[i] -= psi[i] * d * grid.inv_dt2;
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn gradient_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!inside_2d(gid)) {
        return;
    }
    let i = cell_2d(gid);
    accumulate(i, laplacian_2d(i) + pml_terms(i, coords_2d(gid), 2u));
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn gradient_3d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (!inside_3d(gid)) {
        return;
    }
    let i = cell_3d(gid);
    accumulate(i, laplacian_3d(i) + pml_terms(i, coords_3d(gid), 1u));
}

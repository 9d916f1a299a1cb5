// The convolutional PML's kernels, appended to acoustic_step.wgsl (its bindings and helpers):
// each runs after the matching kernel there, in the same pass, and adds the layer's terms at
// the cells within a stencil radius of the layer, so the interior pays one early exit. The
// scheme and its transpose are derived in src/acoustic/cpml.rs, whose float64 twin these
// follow line by line; every invocation writes only its own cell and its own memory values.

// The CPML's (A, B) per axis and extended coordinate: x, then y, then z.
@group(0) @binding(8) var<storage, read> pml_profile: array<vec2<f32>>;

// Extended coordinates (x, y, z) of an invocation; y = 0 in 2D.
fn coords_2d(gid: vec3<u32>) -> vec3<i32> {
    return vec3<i32>(i32(gid.y), 0, i32(gid.x));
}

fn coords_3d(gid: vec3<u32>) -> vec3<i32> {
    return vec3<i32>(i32(gid.z), i32(gid.y), i32(gid.x));
}

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

// Whether cell c is within a stencil radius of the layer along any axis.
fn in_band(c: vec3<i32>, axis_step: u32) -> bool {
    for (var d = 0u; d < 3u; d += axis_step) {
        if (near_layer(d, c[d])) {
            return true;
        }
    }
    return false;
}

// After `step_*`: next += a·(CPML terms of cur), and the next memory fields.
fn cpml_step(i: u32, c: vec3<i32>, axis_step: u32) {
    if (in_band(c, axis_step)) {
        next[i] += coef_a[i] * pml_step(i, c, axis_step);
    }
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_step_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (inside_2d(gid)) {
        cpml_step(cell_2d(gid), coords_2d(gid), 2u);
    }
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_step_3d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (inside_3d(gid)) {
        cpml_step(cell_3d(gid), coords_3d(gid), 1u);
    }
}

// After `step_*` ran as the adjoint step (prev = ψ_{k+2}, cur = ψ_{k+1} with Ψ̄, Z̄, next = ψ_k):
// next += a·(the transpose's share), and the next adjoint memory fields.
fn cpml_adjoint(i: u32, c: vec3<i32>, axis_step: u32) {
    if (in_band(c, axis_step)) {
        next[i] += coef_a[i] * pml_adjoint(i, c, axis_step);
    }
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_adjoint_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (inside_2d(gid)) {
        cpml_adjoint(cell_2d(gid), coords_2d(gid), 2u);
    }
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_adjoint_3d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (inside_3d(gid)) {
        cpml_adjoint(cell_3d(gid), coords_3d(gid), 1u);
    }
}

// After `gradient_*`: the CPML's share of u_{k+1} − 2u_k + u_{k−1}, a·(CPML terms), in the
// gradient.
fn cpml_gradient(i: u32, c: vec3<i32>, axis_step: u32) {
    if (in_band(c, axis_step)) {
        grad[i] -= psi[i] * coef_a[i] * pml_terms(i, c, axis_step) * grid.inv_dt2;
    }
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_gradient_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (inside_2d(gid)) {
        cpml_gradient(cell_2d(gid), coords_2d(gid), 2u);
    }
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_gradient_3d(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (inside_3d(gid)) {
        cpml_gradient(cell_3d(gid), coords_3d(gid), 1u);
    }
}

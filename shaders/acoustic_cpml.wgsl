// The convolutional PML's kernels, appended to acoustic_step.wgsl (its bindings and helpers):
// each runs after the matching kernel there, in the same pass, and adds one axis's terms
// (AXIS, fixed when the pipeline is built) over that axis's band only: the cells within a
// stencil radius of its layer. The scheme and its transpose are derived in
// src/acoustic/cpml.rs, whose float64 twin these follow line by line; every invocation writes
// only its own cell and its own memory values.
//
// Why one dispatch per axis over its band, not one kernel over the grid with a branch: on a
// SIMD software adapter (llvmpipe) a masked-off branch with fixed-count loops still runs, so
// the CPML's code cost a whole grid's worth of work wherever it was compiled in (65 % on a
// plain step); a band-sized dispatch pays only where the layer is.

// The axis whose terms this pipeline adds: 0 (x), 1 (y) or 2 (z).
override AXIS: u32;

// The CPML's (A, B) per axis and extended coordinate: x, then y, then z.
@group(0) @binding(8) var<storage, read> pml_profile: array<vec2<f32>>;

// Cells of the band along an axis of n cells: the layer and a stencil radius on each side, or
// the whole axis when the two sides meet.
fn band_count(n: u32) -> u32 {
    return min(2u * (grid.pml_width + RADIUS), n);
}

// The coordinate of the band's j-th cell along an axis of n cells.
fn band_coord(j: u32, n: u32) -> i32 {
    let reach = grid.pml_width + RADIUS;
    if (2u * reach >= n || j < reach) {
        return i32(j);
    }
    return i32(n - 2u * reach + j);
}

// The extended cell of an invocation of a band dispatch, or x = −1 past the band's end. The
// dispatch is the step's with AXIS's extent replaced by the band's: gid = (z, x) in 2D,
// (z, y, x) in 3D.
fn band_cell_2d(gid: vec3<u32>) -> vec3<i32> {
    let none = vec3<i32>(-1, 0, 0);
    if (AXIS == 0u) {
        if (gid.x >= grid.nz || gid.y >= band_count(grid.nx)) {
            return none;
        }
        return vec3<i32>(band_coord(gid.y, grid.nx), 0, i32(gid.x));
    }
    if (gid.x >= band_count(grid.nz) || gid.y >= grid.nx) {
        return none;
    }
    return vec3<i32>(i32(gid.y), 0, band_coord(gid.x, grid.nz));
}

fn band_cell_3d(gid: vec3<u32>) -> vec3<i32> {
    let none = vec3<i32>(-1, 0, 0);
    var c = vec3<i32>(i32(gid.z), i32(gid.y), i32(gid.x));
    if (AXIS == 0u) {
        if (gid.z >= band_count(grid.nx) || gid.y >= grid.ny || gid.x >= grid.nz) {
            return none;
        }
        c.x = band_coord(gid.z, grid.nx);
    } else if (AXIS == 1u) {
        if (gid.z >= grid.nx || gid.y >= band_count(grid.ny) || gid.x >= grid.nz) {
            return none;
        }
        c.y = band_coord(gid.y, grid.ny);
    } else {
        if (gid.z >= grid.nx || gid.y >= grid.ny || gid.x >= band_count(grid.nz)) {
            return none;
        }
        c.z = band_coord(gid.x, grid.nz);
    }
    return c;
}

// The padded index of extended cell c (y has no halo in 2D, where py = 1).
fn padded_index(c: vec3<i32>) -> u32 {
    let r = i32(RADIUS);
    let ry = select(0, r, grid.py > 1u);
    return u32(((c.x + r) * i32(grid.py) + (c.y + ry)) * i32(grid.pz) + (c.z + r));
}

fn axis_len(d: u32) -> i32 {
    return i32(select(select(grid.nz, grid.ny, d == 1u), grid.nx, d == 0u));
}

fn axis_stride(d: u32) -> i32 {
    return i32(select(select(1u, grid.pz, d == 1u), grid.py * grid.pz, d == 0u));
}

// (A, B) at coordinate c along axis d; zero outside the layer and the grid. Branch-free: on a
// SIMD adapter both sides of a divergent branch run anyway.
fn profile(d: u32, c: i32) -> vec2<f32> {
    let n = axis_len(d);
    let base = select(select(grid.nx + grid.ny, grid.nx, d == 1u), 0u, d == 0u);
    let v = pml_profile[base + u32(clamp(c, 0, n - 1))];
    return select(vec2<f32>(0.0), v, c >= 0 && c < n);
}

// A line of axis d's slab through cell c, along d, on c's side of the grid: memory field Ψ of
// the cell at coordinate t along d sits at `psi + (t − offset) · stride` when `t − offset` lies
// in [lo, hi) (that side's half of the slab), its Z `slab_len[d]` later. Computed once per cell,
// so each neighbour costs a clamp, a select and a multiply-add. A cell's neighbours in the slab
// are all on its own side because the physical grid is at least 2r cells across between the
// two sides (src/acoustic/boundary.rs refuses less).
struct SlabLine {
    psi: i32,
    zeta: i32,
    stride: i32,
    offset: i32,
    lo: i32,
    hi: i32,
}

fn slab_line(d: u32, c: vec3<i32>) -> SlabLine {
    var dims = vec3<i32>(i32(grid.nx), i32(grid.ny), i32(grid.nz));
    let w = i32(grid.pml_width);
    let n = dims[d];
    dims[d] = 2 * w;
    var s = c;
    s[d] = 0;
    let psi = i32(grid.psi_offset[d]) + (s.x * dims.y + s.y) * dims.z + s.z;
    let stride = select(select(1, dims.z, d == 1u), dims.y * dims.z, d == 0u);
    let right = 2 * c[d] >= n;
    return SlabLine(
        psi,
        psi + i32(grid.slab_len[d]),
        stride,
        select(0, n - 2 * w, right),
        select(0, w, right),
        select(w, 2 * w, right),
    );
}

// The slab position of coordinate t on the line, or −1 outside the slab.
fn line_pos(line: SlabLine, t: i32) -> i32 {
    let p = t - line.offset;
    return select(-1, p, p >= line.lo && p < line.hi);
}

// Ψ (`which` 0) or Z (1) of `cur` at coordinate t along the line; zero outside the slab.
fn line_read(line: SlabLine, which: u32, t: i32) -> f32 {
    let p = t - line.offset;
    let j = select(line.psi, line.zeta, which == 1u) + clamp(p, line.lo, line.hi - 1) * line.stride;
    return select(0.0, cur[j], p >= line.lo && p < line.hi);
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
        dpsi += first(k) * (line_read(line, 0u, t + kk) - line_read(line, 0u, t - kk));
    }
    let p = line_pos(line, t);
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

// The transpose of `pml_axis` along AXIS at cell c, with `cur` the adjoint level one step
// later (its field ψ = a ⊙ ū, its memory fields Ψ̄, Z̄) and `next` the one being written:
//     ū  += D₂(A·(ψ + Z̄)) − D₁(A·Ψ̄)
//     Ψ̄' = B·Ψ̄ − D₁((1 + A)·ψ + A·Z̄),   Z̄' = B·(Z̄ + ψ).
// Returns the first line's share.
fn pml_adjoint(i: u32, c: vec3<i32>) -> f32 {
    let d = AXIS;
    let t = c[d];
    let s = axis_stride(d);
    let line = slab_line(d, c);
    let h0 = profile(d, t).x * (cur[i] + line_read(line, 1u, t));
    var d2h = 0.0;
    var d1g = 0.0;
    var d1w = 0.0;
    for (var k = 1u; k <= RADIUS; k++) {
        let kk = i32(k);
        let a_lo = profile(d, t - kk).x;
        let a_hi = profile(d, t + kk).x;
        let psi_lo = cur_at(i, -kk * s);
        let psi_hi = cur_at(i, kk * s);
        let z_lo = line_read(line, 1u, t - kk);
        let z_hi = line_read(line, 1u, t + kk);
        d2h += coeff(k) * ((a_lo * (psi_lo + z_lo) - h0) + (a_hi * (psi_hi + z_hi) - h0));
        d1g += first(k) * (a_hi * line_read(line, 0u, t + kk) - a_lo * line_read(line, 0u, t - kk));
        d1w += first(k) * (((1.0 + a_hi) * psi_hi + a_hi * z_hi) - ((1.0 + a_lo) * psi_lo + a_lo * z_lo));
    }
    let p = line_pos(line, t);
    if (p >= 0) {
        let psi = line.psi + p * line.stride;
        let zeta = line.zeta + p * line.stride;
        let b = profile(d, t).y;
        next[psi] = b * cur[psi] - d1w;
        next[zeta] = b * (cur[zeta] + cur[i]);
    }
    return d2h - d1g;
}

// ---- The kernels: one invocation per band cell of AXIS ---------------------------------------

// After `step_*`: next += a·(AXIS's CPML terms of cur), and the next memory fields.
fn cpml_step(c: vec3<i32>) {
    if (c.x < 0) {
        return;
    }
    let i = padded_index(c);
    let p = pml_axis(i, c, AXIS);
    if (p.psi >= 0) {
        next[p.psi] = p.psi_next;
        next[p.zeta] = p.zeta_next;
    }
    next[i] += coef_a[i] * p.sum;
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_step_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    cpml_step(band_cell_2d(gid));
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_step_3d(@builtin(global_invocation_id) gid: vec3<u32>) {
    cpml_step(band_cell_3d(gid));
}

// After `step_*` ran as the adjoint step (prev = ψ_{k+2}, cur = ψ_{k+1} with Ψ̄, Z̄, next = ψ_k):
// next += a·(AXIS's share of the transpose), and the next adjoint memory fields.
fn cpml_adjoint(c: vec3<i32>) {
    if (c.x < 0) {
        return;
    }
    let i = padded_index(c);
    next[i] += coef_a[i] * pml_adjoint(i, c);
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_adjoint_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    cpml_adjoint(band_cell_2d(gid));
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_adjoint_3d(@builtin(global_invocation_id) gid: vec3<u32>) {
    cpml_adjoint(band_cell_3d(gid));
}

// After `gradient_*`: AXIS's share of u_{k+1} − 2u_k + u_{k−1}, a·(CPML terms), in the gradient.
fn cpml_gradient(c: vec3<i32>) {
    if (c.x < 0) {
        return;
    }
    let i = padded_index(c);
    grad[i] -= psi[i] * coef_a[i] * pml_axis(i, c, AXIS).sum * grid.inv_dt2;
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_gradient_2d(@builtin(global_invocation_id) gid: vec3<u32>) {
    cpml_gradient(band_cell_2d(gid));
}

@compute @workgroup_size(WORKGROUP_X, WORKGROUP_Y, WORKGROUP_Z)
fn cpml_gradient_3d(@builtin(global_invocation_id) gid: vec3<u32>) {
    cpml_gradient(band_cell_3d(gid));
}

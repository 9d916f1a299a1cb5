// The convolutional PML's kernels, appended to acoustic_step.wgsl (its bindings and helpers).
// Under a CPML they replace the step, the adjoint step and the gradient: each forms the
// Laplacian and the layer's terms in one pass and writes each cell once. The scheme and its
// transpose are derived in src/acoustic/cpml.rs, whose float64 twin these follow line by line;
// every invocation writes only its own cell and its own memory values.
//
// An axis's terms are zero outside its band: the layer and, inside it, the reach of the
// stencil that carries them out (BAND_RADIUS). A pipeline covers either one region of the grid,
// the cells in exactly the bands of AXES, with only those axes' code compiled in (on a SIMD
// software adapter, llvmpipe, a branch runs its whole length whichever way its lanes go, so
// layer code in the interior's kernel would cost the whole grid); or, with AXES = PER_CELL, the
// whole grid in one dispatch, each cell testing its own bands (on a real GPU a branch costs
// only where a warp straddles a band's edge, and a dispatch costs more). The host's choice and
// the regions: src/acoustic/cpml_kernels.rs.
//
// Under a CPML η = 0, so b = a·m/Δt² is exactly 1 in float32 (src/acoustic/gpu.rs asserts
// it in debug builds): these kernels never read b, one load in twenty fewer than the sponge's
// step on every cell.

// Bit d set: this pipeline's cells lie in axis d's band, and it adds axis d's terms.
override AXES: u32;
// The radius of the memory terms' first derivative D₁ (src/acoustic/cpml.rs: MEMORY_RADIUS).
override FIRST_RADIUS: u32;
// How far past the layer this kernel's terms reach: D₁'s radius forward, D₂'s (RADIUS) in the
// transpose, whose D₂(A·…) carries the layer's A out by the Laplacian's reach.
override BAND_RADIUS: u32;
// Invocations per workgroup, set by the host (which counts the workgroups from it).
override LAYER_WORKGROUP: u32;

// AXES for the single-dispatch form: the whole grid, each cell testing its own bands.
const PER_CELL: u32 = 8u;

// (A, B) per axis and extended coordinate, x then y then z, interleaved: scalar loads, as the
// transpose reads A alone at every neighbour.
@group(0) @binding(8) var<storage, read> pml_profile: array<f32>;

// Cells from the grid's edge to the inner edge of a band: the layer and the reach of the
// stencil that carries the layer's terms out of it.
fn reach() -> u32 {
    return grid.pml_width + BAND_RADIUS;
}

// Cells of the band along an axis of n cells, or the whole axis when the two sides meet.
fn band_count(n: u32) -> u32 {
    return min(2u * reach(), n);
}

// The coordinate of the band's j-th cell along an axis of n cells.
fn band_coord(j: u32, n: u32) -> i32 {
    if (2u * reach() >= n || j < reach()) {
        return i32(j);
    }
    return i32(n - 2u * reach() + j);
}

fn axis_len(d: u32) -> i32 {
    return i32(select(select(grid.nz, grid.ny, d == 1u), grid.nx, d == 0u));
}

// Whether coordinate t along axis d lies in that axis's band (a 2D grid, py = 1, has no y
// layer).
fn in_band(d: u32, t: i32) -> bool {
    if (d == 1u && grid.py == 1u) {
        return false;
    }
    let r = i32(reach());
    return t < r || t >= axis_len(d) - r;
}

// Whether cell c gets axis d's terms: fixed per pipeline, or tested per cell under PER_CELL.
fn has_axis(d: u32, c: vec3<i32>) -> bool {
    if (AXES == PER_CELL) {
        return in_band(d, c[d]);
    }
    return (AXES & (1u << d)) != 0u;
}

// Cells of this pipeline's region along axis d (n cells): the band where AXES has d, the rest
// of the axis where it has not.
fn region_len(d: u32, n: u32) -> u32 {
    if (AXES == PER_CELL) {
        return n;
    }
    if ((AXES & (1u << d)) != 0u) {
        return band_count(n);
    }
    return select(0u, n - 2u * reach(), n > 2u * reach());
}

fn region_coord(d: u32, j: u32, n: u32) -> i32 {
    if (AXES == PER_CELL) {
        return i32(j);
    }
    if ((AXES & (1u << d)) != 0u) {
        return band_coord(j, n);
    }
    return i32(reach() + j);
}

// The extended cell of an invocation, or x = −1 past the region's end. Invocations are counted
// flat over the workgroups (a 2D grid of them, as a large region exceeds one dimension's
// limit) and laid out z fastest, so neighbouring invocations read neighbouring words and no
// workgroup idles for a region's shape (a band 44 cells deep in 64-wide workgroups would).
fn region_cell(dims: u32, wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> vec3<i32> {
    // The shot rides on the dispatch's z dimension.
    base = wid.z * grid.batch.x;
    let id = (wid.y * nwg.x + wid.x) * LAYER_WORKGROUP + lid;
    let lx = region_len(0u, grid.nx);
    let ly = select(1u, region_len(1u, grid.ny), dims == 3u);
    let lz = region_len(2u, grid.nz);
    if (id >= lx * ly * lz) {
        return vec3<i32>(-1, 0, 0);
    }
    let rest = id / lz;
    return vec3<i32>(
        region_coord(0u, rest / ly, grid.nx),
        select(0, region_coord(1u, rest % ly, grid.ny), dims == 3u),
        region_coord(2u, id % lz, grid.nz),
    );
}

// The padded index of extended cell c (y has no halo in 2D, where py = 1).
fn padded_index(c: vec3<i32>) -> u32 {
    let r = i32(RADIUS);
    let ry = select(0, r, grid.py > 1u);
    return base + u32(((c.x + r) * i32(grid.py) + (c.y + ry)) * i32(grid.pz) + (c.z + r));
}

fn axis_stride(d: u32) -> i32 {
    return i32(select(select(1u, grid.pz, d == 1u), grid.py * grid.pz, d == 0u));
}

// (A, B) at coordinate c along axis d, −RADIUS ≤ c < n + RADIUS; zero outside the layer. The
// table pads each axis with RADIUS zeros on both sides (src/acoustic/cpml.rs: profile_table),
// so a neighbour's costs one load and no test.
fn profile(d: u32, c: i32) -> vec2<f32> {
    return vec2<f32>(profile_at(d, c, 0u), profile_at(d, c, 1u));
}

// A (`which` 0) or B (1) of `profile`.
fn profile_at(d: u32, c: i32, which: u32) -> f32 {
    let pad = 2u * RADIUS;
    let start = select(select(grid.nx + grid.ny + 2u * pad, grid.nx + pad, d == 1u), 0u, d == 0u);
    return pml_profile[2u * (start + u32(c + i32(RADIUS))) + which];
}

// A line of axis d's slab through cell c, along d, on c's side of the grid. The slab holds,
// per side, the `pml_width` cells of the layer along d and the full grid along the others;
// memory field Ψ at `rel + k` cells from the side's start sits at `here + k · stride` when
// `rel + k` lies in [0, pml_width), its Z `zeta` later. Computed once per cell, so each
// neighbour costs a compare, two selects and a multiply-add, and never reads outside the
// slab (`start`, the side's first cell, stands in). A cell's neighbours in the slab are all on
// its own side because the physical grid is at least 2r cells across between the two sides
// (src/acoustic/boundary.rs refuses less).
struct SlabLine {
    here: i32,
    start: i32,
    zeta: i32,
    stride: i32,
    rel: i32,
}

fn slab_line(d: u32, c: vec3<i32>) -> SlabLine {
    var dims = vec3<i32>(i32(grid.nx), i32(grid.ny), i32(grid.nz));
    let w = i32(grid.pml_width);
    let n = dims[d];
    dims[d] = 2 * w;
    var s = c;
    s[d] = 0;
    let line = i32(base + grid.psi_offset[d]) + (s.x * dims.y + s.y) * dims.z + s.z;
    let stride = select(select(1, dims.z, d == 1u), dims.y * dims.z, d == 0u);
    // The right side's half starts w cells into the slab, and at n − w along the axis.
    let right = 2 * c[d] >= n;
    let first = select(0, w, right);
    let rel = c[d] - select(0, n - w, right);
    return SlabLine(
        line + (first + rel) * stride,
        line + first * stride,
        i32(grid.slab_len[d]),
        stride,
        rel,
    );
}

// Whether the cell k steps along the line lies in the slab.
fn line_inside(line: SlabLine, k: i32) -> bool {
    return u32(line.rel + k) < grid.pml_width;
}

// Ψ (`which` 0) or Z (1) of `cur` k cells along the line from the cell; zero outside the slab.
fn line_read(line: SlabLine, which: u32, k: i32) -> f32 {
    let inside = line_inside(line, k);
    let j = select(line.start, line.here + k * line.stride, inside) + select(0, line.zeta, which == 1u);
    return select(0.0, cur[j], inside);
}

fn cur_at(i: u32, offset: i32) -> f32 {
    return cur[u32(i32(i) + offset)];
}

// The Laplacian of `cur` at padded index i in the step's summation order, with each axis's
// second difference D₂ and first difference D₁ where this cell needs them.
struct Stencil {
    lap: f32,
    d2: vec3<f32>,
    d1: vec3<f32>,
}

fn stencil(i: u32, c: vec3<i32>, dims: u32) -> Stencil {
    let u = cur[i];
    let sx = axis_stride(0u);
    let sy = axis_stride(1u);
    var out = Stencil(0.0, vec3<f32>(0.0), vec3<f32>(0.0));
    for (var k = 1u; k <= RADIUS; k++) {
        let kk = i32(k);
        let xl = cur_at(i, -kk * sx);
        let xh = cur_at(i, kk * sx);
        let zl = cur_at(i, -kk);
        let zh = cur_at(i, kk);
        let px = (xl - u) + (xh - u);
        let pz = (zl - u) + (zh - u);
        // D₁'s coefficients past its radius (FIRST_RADIUS, shorter than D₂'s) are zero.
        var pair = px + pz;
        if (dims == 3u) {
            let yl = cur_at(i, -kk * sy);
            let yh = cur_at(i, kk * sy);
            let py = (yl - u) + (yh - u);
            pair = (px + py) + pz;
            if (has_axis(1u, c)) {
                out.d2.y += coeff(k) * py;
                out.d1.y += first(k) * (yh - yl);
            }
        }
        out.lap += coeff(k) * pair;
        if (has_axis(0u, c)) {
            out.d2.x += coeff(k) * px;
            out.d1.x += first(k) * (xh - xl);
        }
        if (has_axis(2u, c)) {
            out.d2.z += coeff(k) * pz;
            out.d1.z += first(k) * (zh - zl);
        }
    }
    return out;
}

// Axis d's forward terms at cell c (padded index i) of level `cur`, given the cell's D₂ and D₁
// along d: D₁Ψ + A·Ũ + B·Z, added to L u, with Ũ = D₂u + D₁Ψ; and, inside the slab, where
// the cell's Ψ and Z live (−1 outside) and their next values.
struct PmlAxis {
    sum: f32,
    psi: i32,
    zeta: i32,
    psi_next: f32,
    zeta_next: f32,
}

fn pml_axis(i: u32, c: vec3<i32>, d: u32, d2: f32, d1: f32) -> PmlAxis {
    var out = PmlAxis(0.0, -1, -1, 0.0, 0.0);
    let line = slab_line(d, c);
    let t = c[d];
    var dpsi = 0.0;
    for (var k = 1u; k <= FIRST_RADIUS; k++) {
        let kk = i32(k);
        dpsi += first(k) * (line_read(line, 0u, kk) - line_read(line, 0u, -kk));
    }
    if (!line_inside(line, 0)) {
        out.sum = dpsi;
        return out;
    }
    out.psi = line.here;
    out.zeta = line.here + line.zeta;
    let ab = profile(d, t);
    let stretched = d2 + dpsi;
    let z = cur[out.zeta];
    out.sum = dpsi + ab.x * stretched + ab.y * z;
    out.psi_next = ab.y * cur[out.psi] + ab.x * d1;
    out.zeta_next = ab.y * z + ab.x * stretched;
    return out;
}

// The transpose of `pml_axis` along axis d at cell c, with `cur` the adjoint level one step
// later (its field ψ = a ⊙ ū, its memory fields Ψ̄, Z̄) and `next` the one being written:
//     ū  += D₂(A·(ψ + Z̄)) − D₁(A·Ψ̄)
//     Ψ̄' = B·Ψ̄ − D₁((1 + A)·ψ + A·Z̄),   Z̄' = B·(Z̄ + ψ).
// Returns the first line's share.
fn pml_adjoint(i: u32, c: vec3<i32>, d: u32) -> f32 {
    let t = c[d];
    let s = axis_stride(d);
    let line = slab_line(d, c);
    // h = A·(ψ + Z̄), so that (1 + A)·ψ + A·Z̄ = ψ + h; each neighbour's A, ψ and Z̄ read once.
    let h0 = profile_at(d, t, 0u) * (cur[i] + line_read(line, 1u, 0));
    var d2h = 0.0;
    var d1g = 0.0;
    var d1w = 0.0;
    for (var k = 1u; k <= RADIUS; k++) {
        let kk = i32(k);
        let a_lo = profile_at(d, t - kk, 0u);
        let a_hi = profile_at(d, t + kk, 0u);
        let psi_lo = cur_at(i, -kk * s);
        let psi_hi = cur_at(i, kk * s);
        let h_lo = a_lo * (psi_lo + line_read(line, 1u, -kk));
        let h_hi = a_hi * (psi_hi + line_read(line, 1u, kk));
        d2h += coeff(k) * ((h_lo - h0) + (h_hi - h0));
        // D₁ is shorter (FIRST_RADIUS, fixed when the pipeline is built: no branch is left).
        if (k <= FIRST_RADIUS) {
            d1w += first(k) * ((psi_hi + h_hi) - (psi_lo + h_lo));
            d1g += first(k) * (a_hi * line_read(line, 0u, kk) - a_lo * line_read(line, 0u, -kk));
        }
    }
    if (line_inside(line, 0)) {
        let psi = line.here;
        let zeta = line.here + line.zeta;
        let b = profile_at(d, t, 1u);
        next[psi] = b * cur[psi] - d1w;
        next[zeta] = b * (cur[zeta] + cur[i]);
    }
    return d2h - d1g;
}

// ---- The kernels: one invocation per cell of the pipeline's region ---------------------------

// The step's `update` with b = 1: `2b·cur − (2b − 1)·prev` is `2·cur − prev` bit for bit.
fn undamped_update(i: u32, lap: f32) {
    next[i] = 2.0 * cur[i] - prev[i] + coef_a[model(i)] * lap;
}

// The step: next = 2b·cur − (2b − 1)·prev + a·(L cur + the layer's terms), and the next memory
// fields.
fn layer_step(c: vec3<i32>, dims: u32) {
    if (c.x < 0) {
        return;
    }
    let i = padded_index(c);
    let s = stencil(i, c, dims);
    var terms = 0.0;
    for (var d = 0u; d < 3u; d++) {
        if (has_axis(d, c)) {
            let p = pml_axis(i, c, d, s.d2[d], s.d1[d]);
            if (p.psi >= 0) {
                next[p.psi] = p.psi_next;
                next[p.zeta] = p.zeta_next;
            }
            terms += p.sum;
        }
    }
    undamped_update(i, s.lap + terms);
}

@compute @workgroup_size(LAYER_WORKGROUP)
fn layer_step_2d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    layer_step(region_cell(2u, wid, nwg, lid), 2u);
}

@compute @workgroup_size(LAYER_WORKGROUP)
fn layer_step_3d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    layer_step(region_cell(3u, wid, nwg, lid), 3u);
}

// The adjoint step (prev = ψ_{k+2}, cur = ψ_{k+1} with Ψ̄, Z̄, next = ψ_k): the step's own
// update in the interior, where it is its own transpose, plus the transpose of the layer's
// terms, and the next adjoint memory fields.
fn layer_adjoint(c: vec3<i32>, dims: u32) {
    if (c.x < 0) {
        return;
    }
    let i = padded_index(c);
    var terms = 0.0;
    for (var d = 0u; d < 3u; d++) {
        if (has_axis(d, c)) {
            terms += pml_adjoint(i, c, d);
        }
    }
    undamped_update(i, stencil(i, c, dims).lap + terms);
}

@compute @workgroup_size(LAYER_WORKGROUP)
fn layer_adjoint_2d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    layer_adjoint(region_cell(2u, wid, nwg, lid), 2u);
}

@compute @workgroup_size(LAYER_WORKGROUP)
fn layer_adjoint_3d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    layer_adjoint(region_cell(3u, wid, nwg, lid), 3u);
}

// The gradient (cur = u_k with Ψ_k, Z_k): `accumulate` with the layer's terms joining L u_k in
// u_{k+1} − 2u_k + u_{k−1}.
fn layer_gradient(c: vec3<i32>, dims: u32) {
    if (c.x < 0) {
        return;
    }
    let i = padded_index(c);
    let s = stencil(i, c, dims);
    var terms = 0.0;
    for (var d = 0u; d < 3u; d++) {
        if (has_axis(d, c)) {
            terms += pml_axis(i, c, d, s.d2[d], s.d1[d]).sum;
        }
    }
    // `accumulate` with b = 1: 2(b − 1)(u_k − u_{k−1}) is zero, so u_{k−1} is not read.
    grad[i] -= psi[i] * (coef_a[model(i)] * (s.lap + terms)) * grid.inv_dt2;
}

@compute @workgroup_size(LAYER_WORKGROUP)
fn layer_gradient_2d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    layer_gradient(region_cell(2u, wid, nwg, lid), 2u);
}

@compute @workgroup_size(LAYER_WORKGROUP)
fn layer_gradient_3d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    layer_gradient(region_cell(3u, wid, nwg, lid), 3u);
}

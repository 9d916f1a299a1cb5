//! The convolutional PML: its profile, where its auxiliary fields live, and its float64 twin.
//!
//! **The scheme** is the second-order CPML of Pasalic & McGarry (SEG 2010), built on the
//! recursive convolution of Komatitsch & Martin (Geophysics 72(5), 2007) with `κ = 1`. Along
//! each axis `d` the derivative is stretched, `∂̃ = ∂ + ψ`, and the second derivative becomes
//! `∂̃∂̃u = (1 + A)·Ũ + B·ζ` with `Ũ = ∂∂u + ∂ψ`. In discrete form, with state `k` holding
//! `u_k, u_{k−1}` and the memory fields `Ψ_k, Z_k` (written by step `k − 1`):
//!
//! ```text
//! Ũ      = D₂ u_k + D₁ Ψ_k
//! u_{k+1} = 2b·u_k − (2b − 1)·u_{k−1} + a·(L u_k + Σ_d [D₁ Ψ_k + A·Ũ + B·Z_k] + q_k)
//! Ψ_{k+1} = B·Ψ_k + A·D₁ u_k
//! Z_{k+1} = B·Z_k + A·Ũ
//! ```
//!
//! `D₂` is the centred second derivative along `d` of the problem's order (the Laplacian's
//! own), `D₁` the centred first derivative of order 4 at most ([`MEMORY_RADIUS`]), `B = exp(−(d + α)Δt)`, `A = d/(d + α)·(B − 1)`, `d = d₀·p²` and `α = π f₀ (1 − p)` for the
//! depth `p ∈ (0, 1]` into the layer, `d₀ = 3 c_ref ln(1/R) / (2 L)`. Only `∂ψ` lags a step
//! behind `∂u`, which keeps the step one kernel. Everything here is linear in the state and
//! independent of `m`, so the exact discrete adjoint is the transpose of these lines
//! ([`Cpml::adjoint_cell`]) and the gradient in `m` keeps its form.
//!
//! **Memory.** `Ψ_d` and `Z_d` exist only in the two slabs of axis `d`'s layer (`2·nbl` cells
//! across, the full extent along the other axes), stored after the field in each time level:
//! `[u | Ψ_x Z_x | Ψ_y Z_y | Ψ_z Z_z]`. A level of a CPML problem is that much larger, and the
//! checkpointing engine counts it.

use super::grid::{Layout, first_derivative_coefficients};

/// The CPML of one problem: profiles, slab layout, stencils.
#[derive(Clone, Debug)]
pub(crate) struct Cpml {
    width: usize,
    layout: Layout,
    /// Per axis `(x, y, z)` and extended coordinate: `(A, B)`, zero outside the layer.
    profile: [Vec<[f64; 2]>; 3],
    /// Centred first-derivative coefficients `c₁ … c_r` over `h` (slot 0 unused).
    first: Vec<f64>,
    /// Second-derivative coefficients `c₀ … c_r` over `h²`.
    second: Vec<f64>,
    /// Values in the slab of each axis (0 along a missing axis).
    slab_len: [usize; 3],
    /// Where `Ψ_d` starts in a level; `Z_d` follows it.
    psi_offset: [usize; 3],
}

/// Which memory field of an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Memory {
    Psi,
    Zeta,
}

/// Everything a CPML profile is computed from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CpmlTuning {
    pub width: usize,
    pub spacing: f64,
    pub dt: f64,
    pub reference_velocity: f64,
    pub peak_frequency: f64,
}

/// The radius of the memory terms' first derivative `D₁`: order 4, or the problem's own order
/// when lower.
///
/// `D₁` acts only inside the layer, where the waves are being absorbed, and every neighbour it
/// reads is a load per layer cell per axis: most of the layer's cost on a software adapter. On
/// the main job's grid (`cargo run --release --example boundary_echo`, 20 cells, order 8) the
/// echo is −45.3 dB with `D₁` of order 8, 4 or 2 alike (−49.6, −49.5, −48.9 dB at 20 Hz, five
/// cells a wavelength), while a step on llvmpipe costs 1.34, 1.20 and 1.17 times the sponge's
/// (medians of three runs of `cargo bench --bench propagate -- cpml`; BENCHMARKS.md).
/// The adjoint is the transpose of whichever `D₁` is used.
pub(crate) const MEMORY_RADIUS: usize = 2;

/// The theoretical reflection the layer is designed for, from its width (Collino & Tsogka,
/// Geophysics 66(1), 2001): `1e-3` at 10 cells, `1e-4` at 20, `1e-5` at 40.
fn design_reflection(width: usize) -> f64 {
    let n = width.max(2) as f64;
    10f64.powf(-((n.log10() - 1.0) / 2f64.log10() + 3.0))
}

impl Cpml {
    /// The CPML of `tuning.width` cells on every side of `layout`'s extended grid.
    /// `second` is the Laplacian's coefficients over `h²`.
    pub(crate) fn new(layout: Layout, tuning: CpmlTuning, second: &[f64]) -> Self {
        let CpmlTuning {
            width,
            spacing,
            dt,
            reference_velocity,
            peak_frequency,
        } = tuning;
        let thickness = width as f64 * spacing;
        let d0 =
            3.0 * reference_velocity * (1.0 / design_reflection(width)).ln() / (2.0 * thickness);
        let alpha_max = std::f64::consts::PI * peak_frequency;
        let axis_profile = |n: usize| -> Vec<[f64; 2]> {
            (0..n)
                .map(|c| {
                    let Some(depth) = layer_depth(c, n, width) else {
                        return [0.0, 0.0];
                    };
                    let p = depth as f64 / width as f64;
                    let (d, alpha) = (d0 * p * p, alpha_max * (1.0 - p));
                    let b = (-(d + alpha) * dt).exp();
                    [d / (d + alpha) * (b - 1.0), b]
                })
                .collect()
        };
        let e = layout.extended;
        let axes = axes(layout.dim);
        let mut profile: [Vec<[f64; 2]>; 3] = Default::default();
        let mut slab_len = [0; 3];
        let mut psi_offset = [0; 3];
        let mut next = layout.len();
        for &d in axes {
            profile[d] = axis_profile(e[d]);
            // The grid was allocated, so its slabs' sizes fit a usize.
            slab_len[d] = slab_len_of(e, width, d).unwrap_or(usize::MAX);
            psi_offset[d] = next;
            next += 2 * slab_len[d];
        }
        let first_radius = layout.radius.min(MEMORY_RADIUS);
        let mut first: Vec<f64> = first_derivative_coefficients(first_radius)
            .iter()
            .map(|c| c / spacing)
            .collect();
        first.resize(layout.radius + 1, 0.0);
        Self {
            width,
            layout,
            profile,
            first,
            second: second.to_vec(),
            slab_len,
            psi_offset,
        }
    }

    /// Cells of the layer on each side.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Values of the memory fields in one level.
    pub(crate) fn aux_len(&self) -> usize {
        2 * self.slab_len.iter().sum::<usize>()
    }

    /// Where `Ψ_d` starts in a level, per axis.
    pub(crate) fn psi_offsets(&self) -> [usize; 3] {
        self.psi_offset
    }

    /// Values in each axis's slab.
    pub(crate) fn slab_lens(&self) -> [usize; 3] {
        self.slab_len
    }

    /// `(A, B)` per axis and extended coordinate, axes `x, y, z` one after another, each axis
    /// with a stencil radius of zeros on both sides: coordinate `c` of axis `d` at
    /// `Σ_{d' < d} (e[d'] + 2r) + r + c`, so that a kernel reads any neighbour's without a test.
    pub(crate) fn profile_table(&self) -> Vec<[f64; 2]> {
        let (e, r) = (self.layout.extended, self.layout.radius);
        (0..3)
            .flat_map(|d| {
                let axis =
                    (0..e[d]).map(move |c| self.profile[d].get(c).copied().unwrap_or([0.0; 2]));
                let pad = std::iter::repeat_n([0.0; 2], r);
                pad.clone().chain(axis).chain(pad)
            })
            .collect()
    }

    /// Centred first-derivative coefficients over `h`.
    pub(crate) fn first(&self) -> &[f64] {
        &self.first
    }

    fn coefficients_at(&self, d: usize, c: isize) -> [f64; 2] {
        usize::try_from(c)
            .ok()
            .and_then(|c| self.profile[d].get(c).copied())
            .unwrap_or([0.0, 0.0])
    }

    /// The index in a level of memory field `which` of axis `d` at extended cell `c`, or
    /// `None` outside that axis's slab (or outside the grid).
    fn memory_index(&self, which: Memory, d: usize, c: [isize; 3]) -> Option<usize> {
        let e = self.layout.extended;
        let mut dims = e;
        dims[d] = 2 * self.width;
        let mut s = [0usize; 3];
        for a in 0..3 {
            let ca = usize::try_from(c[a]).ok().filter(|&v| v < e[a])?;
            s[a] = if a == d {
                if ca < self.width {
                    ca
                } else if ca >= e[a] - self.width {
                    ca - (e[a] - 2 * self.width)
                } else {
                    return None;
                }
            } else {
                ca
            };
        }
        let base = self.psi_offset[d]
            + if which == Memory::Zeta {
                self.slab_len[d]
            } else {
                0
            };
        Some(base + (s[0] * dims[1] + s[1]) * dims[2] + s[2])
    }

    /// Memory field `which` of axis `d` in `level`, `k` cells from cell `c` along `d`; zero
    /// outside the slab.
    fn memory(&self, level: &[f64], which: Memory, d: usize, c: [isize; 3], k: isize) -> f64 {
        let mut p = c;
        p[d] += k;
        self.memory_index(which, d, p).map_or(0.0, |j| level[j])
    }

    /// Where cell `c`'s `Ψ_d` and `Z_d` live, inside axis `d`'s slab.
    fn slab_cell(&self, d: usize, c: [isize; 3]) -> Option<(usize, usize)> {
        let psi = self.memory_index(Memory::Psi, d, c)?;
        Some((psi, psi + self.slab_len[d]))
    }

    /// Whether cell coordinate `c` along axis `d` is within a stencil radius of the layer:
    /// only there does the CPML add anything.
    fn near_layer(&self, d: usize, c: usize) -> bool {
        let reach = self.width + self.layout.radius;
        c < reach || c + reach >= self.layout.extended[d]
    }

    /// The CPML's share of the step at extended cell `c` (padded index `i`) of level `cur`:
    /// `Σ_d [D₁Ψ + A·Ũ + B·Z]`, added to `L u` inside the step's `a·(…)`. When `next` is given,
    /// also writes `Ψ_{k+1}` and `Z_{k+1}` there.
    pub(crate) fn forward_cell(
        &self,
        cur: &[f64],
        i: usize,
        c: [usize; 3],
        mut next: Option<&mut [f64]>,
    ) -> f64 {
        let strides = self.layout.strides();
        let cc = c.map(|v| v as isize);
        let mut sum = 0.0;
        for &d in axes(self.layout.dim) {
            if !self.near_layer(d, c[d]) {
                continue;
            }
            let mut dpsi = 0.0;
            for k in 1..=self.layout.radius {
                let k = k as isize;
                dpsi += self.first[k as usize]
                    * (self.memory(cur, Memory::Psi, d, cc, k)
                        - self.memory(cur, Memory::Psi, d, cc, -k));
            }
            let Some((psi, zeta)) = self.slab_cell(d, cc) else {
                sum += dpsi;
                continue;
            };
            let (s, u) = (strides[d], cur[i]);
            let (mut d2, mut d1) = (0.0, 0.0);
            for k in 1..=self.layout.radius {
                let (lo, hi) = (cur[i - k * s], cur[i + k * s]);
                d2 += self.second[k] * ((lo - u) + (hi - u));
                d1 += self.first[k] * (hi - lo);
            }
            let [a, b] = self.profile[d][c[d]];
            let stretched = d2 + dpsi;
            sum += dpsi + a * stretched + b * cur[zeta];
            if let Some(next) = next.as_deref_mut() {
                next[psi] = b * cur[psi] + a * d1;
                next[zeta] = b * cur[zeta] + a * stretched;
            }
        }
        sum
    }

    /// The transpose of [`forward_cell`](Self::forward_cell) at extended cell `c` (padded
    /// index `i`). `near` is the adjoint level one step later: its field is `ψ = a ⊙ ū` and
    /// its memory fields the adjoints `Ψ̄, Z̄`. Returns the CPML's share of `ū` at the cell
    /// (to be scaled by `a` like `L ψ`) and writes this step's `Ψ̄, Z̄` into `out`:
    ///
    /// ```text
    /// ū   += Σ_d [D₂(A·(ψ + Z̄)) − D₁(A·Ψ̄)]
    /// Ψ̄' = B·Ψ̄ − D₁((1 + A)·ψ + A·Z̄)
    /// Z̄' = B·(Z̄ + ψ)
    /// ```
    ///
    /// using `D₂ᵀ = D₂` and `D₁ᵀ = −D₁` (zero outside the grid).
    pub(crate) fn adjoint_cell(
        &self,
        near: &[f64],
        i: usize,
        c: [usize; 3],
        out: &mut [f64],
    ) -> f64 {
        let strides = self.layout.strides();
        let cc = c.map(|v| v as isize);
        let mut sum = 0.0;
        for &d in axes(self.layout.dim) {
            if !self.near_layer(d, c[d]) {
                continue;
            }
            let s = strides[d] as isize;
            // Values at the neighbour k cells away along d: ψ, A, Z̄, Ψ̄ (zero outside).
            let psi_at = |k: isize| near[(i as isize + k * s) as usize];
            let a_at = |k: isize| self.coefficients_at(d, cc[d] + k)[0];
            let zeta_at = |k: isize| self.memory(near, Memory::Zeta, d, cc, k);
            let h = |k: isize| a_at(k) * (psi_at(k) + zeta_at(k));
            let g = |k: isize| a_at(k) * self.memory(near, Memory::Psi, d, cc, k);
            let w = |k: isize| (1.0 + a_at(k)) * psi_at(k) + a_at(k) * zeta_at(k);
            let h0 = h(0);
            let (mut d2h, mut d1g, mut d1w) = (0.0, 0.0, 0.0);
            for k in 1..=self.layout.radius {
                let kk = k as isize;
                d2h += self.second[k] * ((h(-kk) - h0) + (h(kk) - h0));
                d1g += self.first[k] * (g(kk) - g(-kk));
                d1w += self.first[k] * (w(kk) - w(-kk));
            }
            sum += d2h - d1g;
            if let Some((psi, zeta)) = self.slab_cell(d, cc) {
                let b = self.profile[d][c[d]][1];
                out[psi] = b * near[psi] - d1w;
                out[zeta] = b * (near[zeta] + near[i]);
            }
        }
        sum
    }
}

/// The axes of a grid: `x, z` in 2D, `x, y, z` in 3D.
/// Values in axis `d`'s slab of one memory field on an `extended` grid with a layer of `width`
/// cells: both sides of `d`, across the other axes; `None` when the count overflows.
pub(crate) fn slab_len_of(extended: [usize; 3], width: usize, d: usize) -> Option<usize> {
    (0..3)
        .filter(|&a| a != d)
        .try_fold(width.checked_mul(2)?, |acc, a| acc.checked_mul(extended[a]))
}

pub(crate) fn axes(dim: usize) -> &'static [usize] {
    if dim == 3 { &[0, 1, 2] } else { &[0, 2] }
}

/// Cells from the inner edge of the layer (1 at the first layer cell, `width` at the grid's
/// edge), or `None` in the interior.
fn layer_depth(c: usize, n: usize, width: usize) -> Option<usize> {
    if c < width {
        Some(width - c)
    } else if c + width >= n {
        Some(c + width + 1 - n)
    } else {
        None
    }
}

/// Calls `f(padded_index, [x, y, z])` for every extended cell of `layout`, in memory order.
pub(crate) fn for_each_cell(layout: &Layout, mut f: impl FnMut(usize, [usize; 3])) {
    let e = layout.extended;
    for x in 0..e[0] {
        for y in 0..e[1] {
            let row = layout.index(x, y, 0);
            for z in 0..e[2] {
                f(row + z, [x, y, z]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slabs_tile_the_layer_once_per_axis() {
        let layout = Layout::new(3, [9, 8, 10], 2);
        let tuning = CpmlTuning {
            width: 3,
            spacing: 10.0,
            dt: 1e-3,
            reference_velocity: 2000.0,
            peak_frequency: 10.0,
        };
        let cpml = Cpml::new(layout, tuning, &[0.0; 3]);
        for d in 0..3 {
            let mut seen = vec![0; cpml.aux_len() + layout.len()];
            for_each_cell(&layout, |_, c| {
                let c = c.map(|v| v as isize);
                for which in [Memory::Psi, Memory::Zeta] {
                    if let Some(j) = cpml.memory_index(which, d, c) {
                        seen[j] += 1;
                    }
                }
            });
            let base = cpml.psi_offsets()[d];
            let slab = cpml.slab_lens()[d];
            assert!(
                seen[base..base + 2 * slab].iter().all(|&n| n == 1),
                "axis {d}"
            );
            assert_eq!(seen.iter().sum::<usize>(), 2 * slab);
        }
        // The profile is zero inside and damps (B < 1, A < 0) in the layer, symmetric; each
        // axis padded with the radius's zeros: x at 2 + c, y at 9 + 4 + 2 + c.
        let table = cpml.profile_table();
        assert_eq!(table.len(), 9 + 8 + 10 + 3 * 4);
        assert_eq!(table[2 + 4], [0.0, 0.0]);
        assert!(table[2][1] < 1.0 && table[2][0] < 0.0);
        assert_eq!(table[2], table[2 + 8]);
        for pad in [0, 1, 11, 12, 13, 14] {
            assert_eq!(table[pad], [0.0, 0.0], "{pad}");
        }
        assert_eq!(table[15], table[2]); // y's first cell, as deep in its layer as x's
    }
}

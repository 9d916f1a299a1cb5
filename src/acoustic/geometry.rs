//! Sources, receivers, the time axis, and how off-grid points meet the grid.

use super::grid::{Layout, second_derivative_coefficients};
use super::model::Model;
use crate::error::{Error, Result, num};

/// The Ricker wavelet of peak frequency `f0` (Hz) delayed by `t0` (s) at time `t` (s).
pub fn ricker(f0: f64, t0: f64, t: f64) -> f64 {
    let a = (std::f64::consts::PI * f0 * (t - t0)).powi(2);
    (1.0 - 2.0 * a) * (-a).exp()
}

/// Time samples `t_k = k·dt`, `k = 0 … nt − 1`. A run has `nt − 1` time steps: step `k` turns
/// `u(t_k)` into `u(t_{k+1})`, injecting the source at `t_k` and recording `u(t_{k+1})`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeAxis {
    /// Samples per trace (at least 2).
    pub nt: usize,
    /// Time step in seconds.
    pub dt: f64,
}

impl TimeAxis {
    /// The most time samples an axis may have, 2⁴⁰ (about 10¹²): every count a schedule
    /// derives from it (`n·t`, binomials) stays far inside 64 bits, and a run this long is
    /// already years of GPU time. The traces' memory is checked on its own, per problem.
    pub const MAX_SAMPLES: u64 = 1 << 40;

    /// Safety factor applied to the CFL limit when `dt` is not given.
    pub const DEFAULT_SAFETY: f64 = 0.8;

    /// The largest stable time step for `model` and `space_order`: leapfrog is stable while
    /// `dt·c_max·√λ_max(−L) ≤ 2`, and `λ_max(−L) = dim·(|c₀| + 2Σ|cₖ|)/h²`.
    pub fn critical_dt(model: &Model, space_order: usize) -> f64 {
        let c = second_derivative_coefficients(space_order / 2);
        let sum = c[0].abs() + 2.0 * c[1..].iter().map(|x| x.abs()).sum::<f64>();
        2.0 * model.spacing() / (model.max_velocity() * (model.dim() as f64 * sum).sqrt())
    }

    /// `nt` samples with step `dt`, or `safety ×` [`critical_dt`](Self::critical_dt) when `dt`
    /// is `None`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `nt < 2`, a `dt` that is not finite and positive, or one
    /// above the CFL limit (the message gives the limit).
    pub fn new(model: &Model, space_order: usize, nt: usize, dt: Option<f64>) -> Result<Self> {
        super::grid::check_space_order(space_order)?;
        if nt < 2 {
            return Err(Error::InvalidArgument {
                name: "nt",
                reason: format!("at least 2 time samples (1 step) are needed, got {nt}"),
            });
        }
        if nt as u64 > Self::MAX_SAMPLES {
            return Err(Error::InvalidArgument {
                name: "nt",
                reason: format!(
                    "{nt} time samples is more than the {:.1e} a run may take; use fewer",
                    Self::MAX_SAMPLES as f64
                ),
            });
        }
        let limit = Self::critical_dt(model, space_order);
        let dt = dt.unwrap_or(Self::DEFAULT_SAFETY * limit);
        if !(dt.is_finite() && dt > 0.0) {
            return Err(Error::InvalidArgument {
                name: "dt",
                reason: format!("the time step must be positive seconds, got {dt:e}"),
            });
        }
        if dt > limit {
            return Err(Error::InvalidArgument {
                name: "dt",
                reason: format!(
                    "dt = {} s breaks the CFL bound {limit:.6e} s for c_max = {} m/s, h = {} m, \
                     order {space_order}; use dt ≤ {limit:.6e} (or omit it)",
                    num(dt),
                    num(model.max_velocity()),
                    num(model.spacing())
                ),
            });
        }
        Ok(Self { nt, dt })
    }

    /// The axis that covers `tmax` seconds: `round(tmax / dt) + 1` samples, with `dt` as in
    /// [`new`](Self::new).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `tmax` when it is not finite and positive, or when
    /// `tmax / dt` is more steps than [`TimeAxis::MAX_SAMPLES`] (the message gives both); else
    /// as [`new`](Self::new).
    ///
    /// ```
    /// use gpurevolve::acoustic::{Model, TimeAxis};
    /// let model = Model::constant(&[50, 50], 10.0, 10, 2000.0)?;
    /// let axis = TimeAxis::for_duration(&model, 8, 0.5, Some(1e-3))?;
    /// assert_eq!(axis.nt, 501);
    /// assert!(TimeAxis::for_duration(&model, 8, 1e10, Some(1e-3)).is_err());
    /// # Ok::<(), gpurevolve::Error>(())
    /// ```
    pub fn for_duration(
        model: &Model,
        space_order: usize,
        tmax: f64,
        dt: Option<f64>,
    ) -> Result<Self> {
        if !(tmax.is_finite() && tmax > 0.0) {
            return Err(Error::InvalidArgument {
                name: "tmax",
                reason: format!("the recording time must be positive seconds, got {tmax:e}"),
            });
        }
        let probe = Self::new(model, space_order, 2, dt)?;
        let steps = (tmax / probe.dt).round();
        if steps < 1.0 {
            return Err(Error::InvalidArgument {
                name: "tmax",
                reason: format!(
                    "tmax = {} s is shorter than one time step (dt = {} s); record longer",
                    num(tmax),
                    num(probe.dt)
                ),
            });
        }
        if steps.is_nan() || steps >= Self::MAX_SAMPLES as f64 {
            return Err(Error::InvalidArgument {
                name: "tmax",
                reason: format!(
                    "tmax = {} s at dt = {} s is {steps:.3e} time steps, more than the {:.1e} a \
                     run may take; shorten tmax, {}",
                    num(tmax),
                    num(probe.dt),
                    Self::MAX_SAMPLES as f64,
                    if dt.is_some() {
                        "or use a larger dt"
                    } else {
                        "or coarsen the grid (the CFL limit sets dt from the spacing)"
                    }
                ),
            });
        }
        Self::new(model, space_order, steps as usize + 1, Some(probe.dt))
    }

    /// Number of time steps, `nt − 1`.
    pub fn steps(&self) -> usize {
        self.nt - 1
    }

    /// Duration `(nt − 1)·dt` in seconds.
    pub fn duration(&self) -> f64 {
        self.steps() as f64 * self.dt
    }
}

/// `x` to three significant figures, for a message.
fn round3(x: f64) -> f64 {
    to_three_figures(x, f64::round)
}

/// `x` rounded down to three significant figures: a limit a message offers must hold.
fn round3_down(x: f64) -> f64 {
    to_three_figures(x, f64::floor)
}

fn to_three_figures(x: f64, round: fn(f64) -> f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(2 - x.abs().log10().floor() as i32);
    if scale.is_finite() && scale > 0.0 {
        round(x * scale) / scale
    } else {
        x
    }
}

/// Source and receiver positions (metres, one coordinate per model axis) and the source
/// wavelet.
#[derive(Clone, Debug, PartialEq)]
pub struct Geometry {
    /// Source positions.
    pub sources: Vec<Vec<f64>>,
    /// Receiver positions.
    pub receivers: Vec<Vec<f64>>,
    /// Ricker peak frequency in Hz.
    pub f0: f64,
    /// Ricker delay in seconds (default `1/f0`).
    pub t0: f64,
}

impl Geometry {
    /// The fewest grid points per wavelength at `f0` and the slowest velocity that a
    /// geometry accepts: the grid's Nyquist limit.
    pub const MIN_POINTS_PER_WAVELENGTH: f64 = 2.0;
    /// Below this many points per wavelength at `f0` a warning is logged: the Ricker's
    /// spectrum reaches 2.5·f0, where the wavefield then has under 2 points a wavelength.
    pub const ACCURATE_POINTS_PER_WAVELENGTH: f64 = 5.0;

    /// Sources and receivers with a Ricker wavelet of peak `f0` delayed by `1/f0`.
    ///
    /// # Errors
    /// As [`Geometry::validate`].
    pub fn new(
        model: &Model,
        sources: Vec<Vec<f64>>,
        receivers: Vec<Vec<f64>>,
        f0: f64,
    ) -> Result<Self> {
        let g = Self {
            sources,
            receivers,
            f0,
            t0: 1.0 / f0,
        };
        g.validate(model)?;
        Ok(g)
    }

    /// Checks the geometry against `model`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no source or receiver, a position with the wrong number
    /// of coordinates, a coordinate outside the physical grid (the message gives the extent),
    /// a peak frequency or delay that is not finite (`f0 > 0`), or a peak frequency with fewer
    /// than [`MIN_POINTS_PER_WAVELENGTH`](Self::MIN_POINTS_PER_WAVELENGTH) at the slowest
    /// velocity (the message gives the largest usable `f0`).
    pub fn validate(&self, model: &Model) -> Result<()> {
        if !(self.f0.is_finite() && self.f0 > 0.0 && self.t0.is_finite()) {
            return Err(Error::InvalidArgument {
                name: "f0",
                reason: format!(
                    "peak frequency must be positive Hz and the delay finite, got f0 = {}, t0 = {}",
                    self.f0, self.t0
                ),
            });
        }
        // A Ricker wavelet's spectrum reaches about 2.5·f0; below two cells a wavelength at f0
        // itself the grid cannot carry the source at all (and at absurd f0 the wavelet's own
        // arithmetic overflows to NaN).
        let slowest = model
            .velocity()
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let per_wavelength = slowest / (self.f0 * model.spacing());
        let largest = slowest / (Self::MIN_POINTS_PER_WAVELENGTH * model.spacing());
        if per_wavelength.is_nan() || per_wavelength < Self::MIN_POINTS_PER_WAVELENGTH {
            return Err(Error::InvalidArgument {
                name: "f0",
                reason: format!(
                    "a peak frequency of {} Hz has {} grid points per wavelength at the \
                     slowest velocity ({} m/s, spacing {} m); the grid cannot carry it: use \
                     f0 ≤ {} Hz (≤ {} Hz for an accurate wavefield) or a finer grid",
                    num(self.f0),
                    num(round3(per_wavelength)),
                    num(slowest),
                    num(model.spacing()),
                    num(round3_down(largest)),
                    num(round3_down(
                        slowest / (Self::ACCURATE_POINTS_PER_WAVELENGTH * model.spacing())
                    )),
                ),
            });
        }
        // Once a process: a survey validates the same geometry for every shot and model.
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if per_wavelength < Self::ACCURATE_POINTS_PER_WAVELENGTH
            && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            log::warn!(
                "f0 = {} Hz has only {per_wavelength:.1} grid points per wavelength at {} m/s: \
                 the wavefield will be dispersed; f0 ≤ {} Hz keeps {} points",
                num(self.f0),
                num(slowest),
                num(round3_down(
                    slowest / (Self::ACCURATE_POINTS_PER_WAVELENGTH * model.spacing())
                )),
                Self::ACCURATE_POINTS_PER_WAVELENGTH
            );
        }
        let extent = model.extent();
        for (name, points) in [("sources", &self.sources), ("receivers", &self.receivers)] {
            if points.is_empty() {
                return Err(Error::InvalidArgument {
                    name,
                    reason: "at least one is needed".into(),
                });
            }
            for (i, p) in points.iter().enumerate() {
                if p.len() != extent.len() {
                    return Err(Error::InvalidArgument {
                        name,
                        reason: format!(
                            "position #{i} has {} coordinates; the model is {}D",
                            p.len(),
                            extent.len()
                        ),
                    });
                }
                if p.iter().zip(&extent).any(|(x, e)| !(*x >= 0.0 && *x <= *e)) {
                    return Err(Error::InvalidArgument {
                        name,
                        reason: format!(
                            "position #{i} {p:?} m lies outside the grid [0, {extent:?}] m"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Ricker samples of every source at `t_k`, as `[nt][sources]` (all sources fire together).
    pub fn source_series(&self, time: &TimeAxis) -> Vec<f64> {
        let n = self.sources.len();
        (0..time.nt)
            .flat_map(|k| std::iter::repeat_n(ricker(self.f0, self.t0, k as f64 * time.dt), n))
            .collect()
    }
}

/// Multilinear interpolation weights of a point: `2^dim` `(padded index, weight)` pairs.
pub(crate) fn interpolation(model: &Model, layout: &Layout, point: &[f64]) -> Vec<(usize, f64)> {
    let h = model.spacing();
    let shape = model.shape();
    // Per axis: the lower cell and the fraction towards the upper one. At the far edge the
    // lower cell steps back so both cells stay inside the physical grid.
    let axis = |a: usize| -> (usize, f64) {
        let g = point[a] / h;
        let i = (g.floor() as usize).min(shape[a] - 2);
        (i + model.nbl(), g - i as f64)
    };
    let dim = model.dim();
    let (x, z) = (axis(0), axis(dim - 1));
    let y = if dim == 3 { axis(1) } else { (0, 0.0) };
    let mut out = Vec::with_capacity(1 << dim);
    for dx in 0..2 {
        for dy in 0..(if dim == 3 { 2 } else { 1 }) {
            for dz in 0..2 {
                let w = |(_, f): (usize, f64), d: usize| if d == 1 { f } else { 1.0 - f };
                let weight = w(x, dx) * if dim == 3 { w(y, dy) } else { 1.0 } * w(z, dz);
                out.push((layout.index(x.0 + dx, y.0 + dy, z.0 + dz), weight));
            }
        }
    }
    out
}

/// Where a set of points meets the grid: sampling reads `2^dim` cells per point; injection
/// (its exact transpose) is stored as a gather, one entry per grid cell touched listing the
/// points that add to it in a fixed order, so each cell is written by one GPU invocation and
/// the sums come out in the same order every run: no atomics, the same bits.
#[derive(Clone, Debug, PartialEq)]
pub struct PointPlan {
    /// Points.
    pub points: usize,
    /// Per point, `2^dim` `(padded index, weight)` pairs.
    pub taps: Vec<Vec<(usize, f64)>>,
    /// Distinct cells touched, increasing.
    pub cells: Vec<usize>,
    /// `offsets[c]..offsets[c + 1]` index `entries` for `cells[c]`.
    pub offsets: Vec<usize>,
    /// `(point, weight)`, grouped by cell, points increasing within a cell.
    pub entries: Vec<(usize, f64)>,
}

impl PointPlan {
    pub(crate) fn new(model: &Model, layout: &Layout, points: &[Vec<f64>]) -> Self {
        let taps: Vec<Vec<(usize, f64)>> = points
            .iter()
            .map(|p| interpolation(model, layout, p))
            .collect();
        let mut triples: Vec<(usize, usize, f64)> = taps
            .iter()
            .enumerate()
            .flat_map(|(point, t)| t.iter().map(move |&(cell, w)| (cell, point, w)))
            .collect();
        triples.sort_by_key(|&(cell, point, _)| (cell, point));
        let (mut cells, mut offsets, mut entries) = (Vec::new(), Vec::new(), Vec::new());
        for (cell, point, w) in triples {
            if cells.last() != Some(&cell) {
                cells.push(cell);
                offsets.push(entries.len());
            }
            entries.push((point, w));
        }
        offsets.push(entries.len());
        Self {
            points: points.len(),
            taps,
            cells,
            offsets,
            entries,
        }
    }

    /// The plan of a batch of shots: `plans`' points one shot after another, and their cells
    /// moved into a batched buffer in which shot `s`'s field starts at `s × stride` words.
    /// Each shot's cells keep their entries in point order, so a gather sums a shot's
    /// contributions exactly as its own plan does.
    pub(crate) fn batched(plans: &[&PointPlan], stride: usize) -> PointPlan {
        let mut batch = PointPlan {
            points: 0,
            taps: Vec::new(),
            cells: Vec::new(),
            offsets: Vec::new(),
            entries: Vec::new(),
        };
        for (shot, plan) in plans.iter().enumerate() {
            let (first_point, start) = (batch.points, shot * stride);
            let first_entry = batch.entries.len();
            batch.cells.extend(plan.cells.iter().map(|&c| start + c));
            // Each shot's offsets but its closing one: the next shot's first opens there.
            let opened = plan.offsets.len().saturating_sub(1);
            batch
                .offsets
                .extend(plan.offsets[..opened].iter().map(|&o| first_entry + o));
            batch
                .entries
                .extend(plan.entries.iter().map(|&(p, w)| (first_point + p, w)));
            batch.taps.extend(
                plan.taps
                    .iter()
                    .map(|t| t.iter().map(|&(c, w)| (start + c, w)).collect()),
            );
            batch.points += plan.points;
        }
        batch.offsets.push(batch.entries.len());
        batch
    }

    /// `field[cell] += scale[cell] · Σ weight · values[point]` (injection; `values` per point):
    /// the float64 twin of the GPU's injection, which the twin's steps use.
    ///
    /// # Panics
    /// When `field` or `scale` is shorter than the padded layout, or `values` holds fewer
    /// values than points: the inner loop of a kernel, left unchecked like slice indexing.
    pub fn inject(&self, field: &mut [f64], scale: &[f64], values: &[f64]) {
        for (c, &cell) in self.cells.iter().enumerate() {
            let sum: f64 = self.entries[self.offsets[c]..self.offsets[c + 1]]
                .iter()
                .map(|&(p, w)| w * values[p])
                .sum();
            field[cell] += scale[cell] * sum;
        }
    }

    /// `out[point] = Σ weight · field[cell]` (sampling), the exact transpose of
    /// [`inject`](Self::inject) with unit scale.
    ///
    /// # Panics
    /// When `field` is shorter than the padded layout or `out` than the points.
    pub fn sample(&self, field: &[f64], out: &mut [f64]) {
        for (o, taps) in out.iter_mut().zip(&self.taps) {
            *o = taps.iter().map(|&(cell, w)| w * field[cell]).sum();
        }
    }
}

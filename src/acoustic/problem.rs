//! [`Problem`]: a model, a geometry, a time axis and a space order, checked and turned into
//! the arrays every kernel (CPU twin or WGSL) agrees on.

use super::boundary::{Boundary, BoundaryKind};
use super::cpml::{Cpml, CpmlTuning};
use super::geometry::{Geometry, PointPlan, TimeAxis};
use super::grid::{Layout, check_len, check_space_order, second_derivative_coefficients};
use super::model::Model;
use crate::error::{Error, Result, num};

/// Everything a simulation needs, validated, with its discretisation.
///
/// The update of one step at each extended cell is
/// `u⁺ = 2b·u − (2b − 1)·u⁻ + a·(L u + q)`, with `a = 1/(m/Δt² + η/(2Δt))` and `b = a·m/Δt²`,
/// which is the README's leapfrog with centred damping (its "Numerics") solved for `u⁺`: two coefficient
/// fields, so a step reads `u`, `u⁻`, `a`, `b` and writes `u⁺` (20 bytes a cell in float32).
#[derive(Clone, Debug)]
pub struct Problem {
    model: Model,
    geometry: Geometry,
    time: TimeAxis,
    space_order: usize,
    layout: Layout,
    /// Laplacian coefficients divided by h².
    laplacian: Vec<f64>,
    /// `m` on the padded grid (zero in the halo).
    slowness_squared: Vec<f64>,
    /// The absorbing layer's tuning.
    boundary: Boundary,
    /// `η` on the padded grid.
    damping: Vec<f64>,
    /// The CPML, when the boundary is one.
    cpml: Option<Cpml>,
    sources: PointPlan,
    receivers: PointPlan,
}

impl Problem {
    /// Checks and discretises a problem, its absorbing layer a CPML ([`Boundary::cpml`]) tuned
    /// for this model's largest velocity. For an inversion, where several models run on one
    /// problem, use [`with_boundary`](Self::with_boundary) with one [`Boundary`] for all of
    /// them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unknown space order, an extended grid narrower than
    /// the stencil (`2r + 1` cells per axis), a CPML thinner than the stencil's reach
    /// (`0 < nbl < max(r, 2)`), a geometry outside the model, or a time step above the CFL
    /// bound of this model and order.
    pub fn new(
        model: Model,
        geometry: Geometry,
        time: TimeAxis,
        space_order: usize,
    ) -> Result<Self> {
        let boundary = Boundary::cpml(model.max_velocity())?;
        Self::with_boundary(model, geometry, time, space_order, boundary)
    }

    /// Checks and discretises a problem whose absorbing layer is `boundary`'s, whatever the
    /// model: the true and the starting model of an inversion then share one boundary, and
    /// the gradient is the exact derivative of the misfit for that fixed boundary.
    ///
    /// # Errors
    /// As [`new`](Self::new), and [`Error::InvalidArgument`] when the model is faster than the
    /// boundary's reference velocity.
    pub fn with_boundary(
        model: Model,
        geometry: Geometry,
        time: TimeAxis,
        space_order: usize,
        boundary: Boundary,
    ) -> Result<Self> {
        let radius = check_space_order(space_order)?;
        geometry.validate(&model)?;
        // Observed, synthetic and residual traces of a shot, in float64, before they exist.
        let receivers = geometry.receivers.len() as u64;
        crate::memory::check_host(
            &format!(
                "the traces of one shot (nt = {} samples × {receivers} receivers)",
                time.nt
            ),
            crate::memory::product(&[time.nt as u64, receivers, 3 * 8]),
            "use fewer time samples (nt, or a shorter tmax) or fewer receivers",
        )?;
        let extended = model.extended_shape();
        let axes = if model.dim() == 3 {
            vec![0, 1, 2]
        } else {
            vec![0, 2]
        };
        if let Some(&a) = axes.iter().find(|&&a| extended[a] < 2 * radius + 1) {
            return Err(Error::InvalidArgument {
                name: "shape",
                reason: format!(
                    "axis {a} has {} cells with its absorbing layer, fewer than the {} of an \
                     order-{space_order} stencil; use a larger grid, more absorbing cells or a \
                     lower order",
                    extended[a],
                    2 * radius + 1
                ),
            });
        }
        boundary.check(&model, radius)?;
        // Re-checks dt against this model and order (the axis may have been built for another).
        TimeAxis::new(&model, space_order, time.nt, Some(time.dt))?;
        let layout = Layout::new(model.dim(), extended, radius);
        let h2 = model.spacing() * model.spacing();
        let laplacian: Vec<f64> = second_derivative_coefficients(radius)
            .iter()
            .map(|c| c / h2)
            .collect();
        let slowness_squared = layout.pad(&model.extended_slowness_squared())?;
        let damping = layout.pad(&boundary.damping(&model))?;
        let cpml = (boundary.kind() == BoundaryKind::Cpml && model.nbl() > 0).then(|| {
            let tuning = CpmlTuning {
                width: model.nbl(),
                spacing: model.spacing(),
                dt: time.dt,
                reference_velocity: boundary.reference_velocity(),
                peak_frequency: geometry.f0,
            };
            Cpml::new(layout, tuning, &laplacian)
        });
        let sources = PointPlan::new(&model, &layout, &geometry.sources);
        let receivers = PointPlan::new(&model, &layout, &geometry.receivers);
        let problem = Self {
            model,
            geometry,
            time,
            space_order,
            layout,
            laplacian,
            slowness_squared,
            boundary,
            damping,
            cpml,
            sources,
            receivers,
        };
        problem.check_float32()?;
        Ok(problem)
    }

    /// Every coefficient the kernels receive must be a finite float32: extreme spacings,
    /// time steps or boundary velocities that pass each check alone can still overflow
    /// together, and a kernel would then step NaN without a word.
    fn check_float32(&self) -> Result<()> {
        fn finite<'a>(mut values: impl Iterator<Item = &'a f64>) -> bool {
            values.all(|v| v.is_finite() && (*v as f32).is_finite())
        }
        let bad = |name: &'static str, what: &str| {
            Err(Error::InvalidArgument {
                name,
                reason: format!(
                    "{what} overflow float32 for spacing {} m, dt = {} s and a boundary \
                     tuned for {} m/s; give physical values in metres, seconds and m/s",
                    num(self.model.spacing()),
                    num(self.time.dt),
                    num(self.boundary.reference_velocity())
                ),
            })
        };
        if !finite(self.laplacian.iter()) {
            return bad("spacing", "the Laplacian's coefficients (1/h²)");
        }
        // Cell by cell, without the two grids `step_coefficients` allocates.
        let mut steppable = true;
        self.layout.for_each_extended(|i| {
            let (a, b) = self.step_coefficient(i);
            steppable &= finite([a, b].iter());
        });
        if !steppable {
            return bad("dt", "the time step's coefficients (m/dt², η/2dt)");
        }
        if let Some(cpml) = &self.cpml
            && !finite(cpml.profile_table().iter().flatten())
        {
            return bad("boundary_velocity", "the CPML's profile");
        }
        Ok(())
    }

    /// The same problem with squared slowness `m` (s²/m², extended grid, C order) in place of
    /// the model's: what a Taylor test or an inversion perturbs. The boundary is kept, so the
    /// derivative in `m` is the derivative of the misfit.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the length is wrong, a value is not finite and positive,
    /// or the fastest velocity it implies breaks the CFL bound of the time step.
    pub fn with_slowness_squared(&self, m: &[f64]) -> Result<Self> {
        if m.len() != self.layout.extended_len() {
            return Err(Error::InvalidArgument {
                name: "m",
                reason: format!(
                    "{} values for {} extended cells",
                    m.len(),
                    self.layout.extended_len()
                ),
            });
        }
        if let Some((i, v)) = m
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v > 0.0))
        {
            return Err(Error::InvalidArgument {
                name: "m",
                reason: format!(
                    "squared slowness must be finite and positive; cell {i} holds {v:e}"
                ),
            });
        }
        let c_max = 1.0 / m.iter().copied().fold(f64::INFINITY, f64::min).sqrt();
        let scale = c_max / self.model.max_velocity();
        let limit = TimeAxis::critical_dt(&self.model, self.space_order) / scale;
        if self.time.dt > limit {
            return Err(Error::InvalidArgument {
                name: "m",
                reason: format!(
                    "its fastest velocity {c_max} m/s makes dt = {} s unstable (limit {limit})",
                    self.time.dt
                ),
            });
        }
        Ok(Self {
            slowness_squared: self.layout.pad(m)?,
            ..self.clone()
        })
    }

    /// Whether `other` steps exactly as this problem does: the same grid, time axis, order,
    /// absorbing layer and model, so that both can run in one batch and share its
    /// coefficients. Their sources, receivers and wavelets may differ.
    pub fn shares_medium(&self, other: &Problem) -> bool {
        self.layout == other.layout
            && self.time == other.time
            && self.space_order == other.space_order
            && self.boundary == other.boundary
            && self.laplacian == other.laplacian
            && self.slowness_squared == other.slowness_squared
            && self.damping == other.damping
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// The time axis.
    pub fn time(&self) -> &TimeAxis {
        &self.time
    }

    /// Space order (2, 4, 8 or 16).
    pub fn space_order(&self) -> usize {
        self.space_order
    }

    /// The field layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Laplacian coefficients `c₀ … c_r` divided by `h²`.
    pub fn laplacian(&self) -> &[f64] {
        &self.laplacian
    }

    /// `m` on the padded grid.
    pub fn slowness_squared(&self) -> &[f64] {
        &self.slowness_squared
    }

    /// The absorbing layer's tuning.
    pub fn boundary(&self) -> Boundary {
        self.boundary
    }

    /// The damping `η` (s/m²) on the padded grid (zero in the halo and the interior).
    pub fn damping(&self) -> &[f64] {
        &self.damping
    }

    /// Checks that a survey of `shots` problems like this one, each on `models` models (the
    /// true and the starting model: 2), with their records, fits in host memory: what to call
    /// on the first shot before the others are built.
    ///
    /// # Errors
    /// [`Error::HostMemory`] naming the shot count.
    pub fn check_survey(&self, shots: usize, models: usize) -> Result<()> {
        let receivers = self.geometry.receivers.len() as u64;
        let records = (self.time.nt as u64).saturating_mul(receivers.saturating_mul(8));
        let per_shot = self
            .host_bytes()
            .saturating_mul(models as u64)
            .saturating_add(records);
        crate::memory::check_host(
            &format!("{shots} shots (their problems and records)"),
            crate::memory::product(&[shots as u64, per_shot]),
            "use fewer shots, a smaller grid or a shorter record",
        )
    }

    /// Host bytes this problem holds (its fields, its model and its geometry), about: what a
    /// survey of many shots multiplies before it builds them.
    pub fn host_bytes(&self) -> u64 {
        let floats = self.slowness_squared.len()
            + self.damping.len()
            + self.model.velocity().len()
            + self.cpml.as_ref().map_or(0, |c| 2 * c.aux_len())
            + (self.sources.points + self.receivers.points) * 16
            + (self.geometry.sources.len() + self.geometry.receivers.len()) * 3;
        floats as u64 * 8
    }

    /// Values in one time level: the padded field, then (under a CPML) the memory fields of
    /// the layer. What a checkpoint of one level holds.
    pub fn level_len(&self) -> usize {
        self.layout.len() + self.cpml.as_ref().map_or(0, Cpml::aux_len)
    }

    /// Bytes of one float32 time level on the GPU ([`level_bytes_of`] its shape, without a
    /// problem).
    pub fn level_bytes(&self) -> u64 {
        self.level_len() as u64 * 4
    }

    pub(crate) fn cpml(&self) -> Option<&Cpml> {
        self.cpml.as_ref()
    }

    /// Source sampling and injection plan.
    pub fn sources(&self) -> &PointPlan {
        &self.sources
    }

    /// Receiver sampling and injection plan.
    pub fn receivers(&self) -> &PointPlan {
        &self.receivers
    }

    /// Per-cell step coefficients `(a, b)` on the padded grid (zero in the halo).
    pub fn step_coefficients(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.layout.len();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        self.layout
            .for_each_extended(|i| (a[i], b[i]) = self.step_coefficient(i));
        (a, b)
    }

    /// [`step_coefficients`](Self::step_coefficients) at padded cell `i` (an extended one).
    fn step_coefficient(&self, i: usize) -> (f64, f64) {
        let dt = self.time.dt;
        let (m, eta) = (self.slowness_squared[i], self.damping[i]);
        let a = 1.0 / (m / (dt * dt) + eta / (2.0 * dt));
        (a, a * m / (dt * dt))
    }

    /// The physical cells of a padded field (absorbing layer and halo cropped), C order, shape
    /// [`Model::shape`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `padded` is not one field of this problem's layout.
    pub fn crop(&self, padded: &[f64]) -> Result<Vec<f64>> {
        check_len("padded", padded.len(), self.layout.len())?;
        let (n, nbl) = (self.model.shape(), self.model.nbl());
        let (nx, ny, nz) = match *n {
            [nx, nz] => (nx, 1, nz),
            [nx, ny, nz] => (nx, ny, nz),
            _ => (0, 0, 0),
        };
        let yoff = if self.model.dim() == 3 { nbl } else { 0 };
        let mut out = Vec::with_capacity(nx * ny * nz);
        for x in 0..nx {
            for y in 0..ny {
                let row = self.layout.index(x + nbl, y + yoff, nbl);
                out.extend_from_slice(&padded[row..row + nz]);
            }
        }
        Ok(out)
    }

    /// `∂J/∂m` of the physical model from `∂J/∂m` on the padded grid: each absorbing-layer
    /// cell repeats its nearest physical cell ([`Model::extended_slowness_squared`]), so its
    /// share is added to that cell (the transpose of the extension). This is the gradient an
    /// optimiser of the physical model needs; [`crop`](Self::crop) drops the layer's share
    /// instead. Cells are summed in memory order, so the result is deterministic.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `padded` is not one field of this problem's layout.
    pub fn model_gradient(&self, padded: &[f64]) -> Result<Vec<f64>> {
        check_len("padded", padded.len(), self.layout.len())?;
        let shape = self.model.shape();
        let [nx, ny, nz] = match *shape {
            [nx, nz] => [nx, 1, nz],
            [nx, ny, nz] => [nx, ny, nz],
            _ => [0, 0, 0],
        };
        let [ex, ey, ez] = self.model.extended_shape();
        let nbl = self.model.nbl();
        let nearest = |i: usize, n: usize| i.saturating_sub(nbl).min(n - 1);
        let mut out = vec![0.0; nx * ny * nz];
        for x in 0..ex {
            for y in 0..ey {
                let py = if ey == 1 { 0 } else { nearest(y, ny) };
                let row = (nearest(x, nx) * ny + py) * nz;
                let from = self.layout.index(x, y, 0);
                for (z, g) in padded[from..from + ez].iter().enumerate() {
                    out[row + nearest(z, nz)] += g;
                }
            }
        }
        Ok(out)
    }

    /// The Ricker source series `[nt][sources]`.
    pub fn source_series(&self) -> Vec<f64> {
        self.geometry.source_series(&self.time)
    }
}

/// Bytes of one float32 time level of a problem on a physical grid of `shape` (`[nx, nz]` or
/// `[nx, ny, nz]` cells) with `nbl` absorbing cells a side, `space_order` and `boundary`,
/// without building it (no model, no allocation): what [`Problem::level_bytes`] of such a
/// problem returns, for planning a grid larger than this machine holds. A CPML level holds
/// the padded wavefield and the layer's memory fields; a sponge's, the wavefield alone.
/// Sizes only: whether the layer is thick enough for the order is checked when the problem
/// is built.
///
/// # Errors
/// [`Error::InvalidArgument`] for a shape that is not 2 or 3 positive sizes, a space order
/// not implemented, or a level whose size overflows.
pub fn level_bytes_of(
    shape: &[usize],
    nbl: usize,
    space_order: usize,
    boundary: BoundaryKind,
) -> Result<u64> {
    let radius = super::grid::check_space_order(space_order)?;
    if !matches!(shape.len(), 2 | 3) || shape.contains(&0) {
        return Err(Error::InvalidArgument {
            name: "shape",
            reason: format!(
                "{shape:?}: give 2 or 3 positive cell counts, [nx, nz] or [nx, ny, nz]"
            ),
        });
    }
    let too_large = || Error::InvalidArgument {
        name: "shape",
        reason: format!("{shape:?} with {nbl} absorbing cells: a level's size overflows"),
    };
    // The layout a problem on this grid would have (checked first: the planner may ask of
    // grids far beyond memory), and the CPML's memory fields as the layer lays them out.
    let grow = |n: usize| {
        nbl.checked_mul(2)?
            .checked_add(radius.checked_mul(2)?)?
            .checked_add(n)
    };
    if shape.iter().any(|&n| grow(n).is_none()) {
        return Err(too_large());
    }
    let dim = shape.len();
    let [nx, ny, nz] = match *shape {
        [nx, nz] => [nx, 1, nz],
        [nx, ny, nz] => [nx, ny, nz],
        _ => unreachable!("checked: 2 or 3 sizes"),
    };
    let e = |n: usize| n + 2 * nbl;
    let extended = [e(nx), if dim == 3 { e(ny) } else { 1 }, e(nz)];
    let layout = Layout::new(dim, extended, radius);
    let mut len = (layout.padded.iter())
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(too_large)?;
    if boundary == BoundaryKind::Cpml && nbl > 0 {
        for &d in super::cpml::axes(dim) {
            // Two memory fields an axis.
            len = super::cpml::slab_len_of(extended, nbl, d)
                .and_then(|slab| slab.checked_mul(2))
                .and_then(|aux| len.checked_add(aux))
                .ok_or_else(too_large)?;
        }
    }
    u64::try_from(len)
        .ok()
        .and_then(|len| len.checked_mul(4))
        .ok_or_else(too_large)
}

#[cfg(test)]
mod level_size_tests {
    use super::*;
    use crate::acoustic::{Geometry, Model, TimeAxis};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The size from the shape alone is the size of the problem built on it, for random
    /// 2D and 3D shapes, layers, orders and both boundaries.
    #[test]
    fn the_level_size_of_a_shape_is_the_problems() {
        let mut rng = StdRng::seed_from_u64(rand::random());
        for _ in 0..40 {
            let dims = rng.random_range(2..=3);
            let order = crate::acoustic::SPACE_ORDERS[rng.random_range(0..4)];
            let shape: Vec<usize> = (0..dims).map(|_| rng.random_range(order + 1..20)).collect();
            let kind = if rng.random_bool(0.5) {
                BoundaryKind::Cpml
            } else {
                BoundaryKind::Sponge
            };
            // A CPML is at least the stencil's reach thick, or absent.
            let thinnest = (order / 2).max(2);
            let nbl = match rng.random_range(0..4) {
                0 => 0,
                _ if kind == BoundaryKind::Cpml => rng.random_range(thinnest..thinnest + 5),
                _ => rng.random_range(1..6),
            };
            let model = Model::constant(&shape, 10.0, nbl, 2000.0).unwrap();
            let middle: Vec<f64> = model.extent().iter().map(|e| e / 2.0).collect();
            let geometry = Geometry::new(&model, vec![middle.clone()], vec![middle], 15.0).unwrap();
            let time = TimeAxis::new(&model, order, 10, None).unwrap();
            let boundary = crate::acoustic::Boundary::new(kind, 2000.0).unwrap();
            let problem = Problem::with_boundary(model, geometry, time, order, boundary).unwrap();
            let got = level_bytes_of(&shape, nbl, order, kind).unwrap();
            assert_eq!(
                got,
                problem.level_bytes(),
                "{shape:?} nbl {nbl} order {order} {kind:?}"
            );
        }
        assert!(level_bytes_of(&[10], 2, 4, BoundaryKind::Cpml).is_err());
        assert!(level_bytes_of(&[10, 0], 2, 4, BoundaryKind::Cpml).is_err());
        assert!(level_bytes_of(&[10, 10], 2, 5, BoundaryKind::Cpml).is_err());
        assert!(level_bytes_of(&[usize::MAX, 10], 2, 4, BoundaryKind::Sponge).is_err());
        assert!(level_bytes_of(&[1 << 30, 1 << 30, 1 << 30], 2, 4, BoundaryKind::Cpml).is_err());
    }
}

//! Velocity models on regular grids, and the absorbing layer around them.

use crate::error::{Error, Result};

/// A velocity model in m/s on a regular 2D `(x, z)` or 3D `(x, y, z)` grid of spacing `h`
/// metres, with `nbl` absorbing cells added on every side.
///
/// Cell `(i, j, k)` sits at `(i·h, j·h, k·h)`; `z` is depth, the last axis.
///
/// ```
/// use gpurevolve::acoustic::Model;
/// let truth = Model::circle(&[101, 101], 10.0, 20, 2000.0, 2500.0, 200.0)?;
/// let start = truth.smoothed(8);
/// assert_eq!(start.shape(), &[101, 101]);
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    dims: Vec<usize>,
    spacing: f64,
    nbl: usize,
    velocity: Vec<f64>,
}

fn invalid(name: &'static str, reason: String) -> Error {
    Error::InvalidArgument { name, reason }
}

impl Model {
    /// The slowest velocity a model may hold (m/s): `1/c²` stays below `f32::MAX`.
    pub const MIN_VELOCITY: f64 = 1e-15;
    /// The fastest velocity a model may hold (m/s): `1/c²` stays a normal float32.
    pub const MAX_VELOCITY: f64 = 1e15;

    /// A model from velocities in C order (`z` fastest).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a shape that is not 2D or 3D, an axis of fewer than 2
    /// cells, a spacing that is not finite and positive, a length that does not match, or any
    /// velocity that is NaN, infinite or not positive (the message names the first such cell).
    pub fn new(shape: &[usize], spacing: f64, nbl: usize, velocity: Vec<f64>) -> Result<Self> {
        let [nx, ny, nz] = checked_axes(shape)?;
        if !(spacing.is_finite() && spacing > 0.0) {
            return Err(invalid(
                "spacing",
                format!(
                    "grid spacing must be positive metres, got {}",
                    crate::error::num(spacing)
                ),
            ));
        }
        let cells = nx * ny * nz; // checked in `checked_axes`
        if velocity.len() != cells {
            return Err(invalid(
                "velocity",
                format!(
                    "{} values for a grid of {shape:?} = {cells} cells",
                    velocity.len()
                ),
            ));
        }
        if let Some((i, v)) = velocity
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v > 0.0))
        {
            return Err(invalid(
                "velocity",
                format!("velocity must be finite and positive; cell {i} holds {v:e}"),
            ));
        }
        // The kernels hold m = 1/c² in float32: it must be a normal float32, or a step
        // divides by zero or overflows.
        if let Some((i, v)) = velocity
            .iter()
            .enumerate()
            .find(|(_, v)| !(Self::MIN_VELOCITY..=Self::MAX_VELOCITY).contains(*v))
        {
            return Err(invalid(
                "velocity",
                format!(
                    "cell {i} holds {v:.3e} m/s; velocities must lie within \
                     [{:.0e}, {:.0e}] m/s so that 1/c² is a normal float32 \
                     (give velocities in m/s)",
                    Self::MIN_VELOCITY,
                    Self::MAX_VELOCITY
                ),
            ));
        }
        check_extended(shape, nbl)?;
        Ok(Self {
            dims: shape.to_vec(),
            spacing,
            nbl,
            velocity,
        })
    }

    /// Reads velocities (m/s) from a `.npy` file of shape `(nx, nz)` or `(nx, ny, nz)`, float32
    /// or float64.
    ///
    /// # Errors
    /// [`Error::File`] for an unreadable or unsupported file; as [`Model::new`] for its contents.
    pub fn from_npy(path: impl AsRef<std::path::Path>, spacing: f64, nbl: usize) -> Result<Self> {
        let (shape, velocity) = crate::npy::read(path)?;
        Self::new(&shape, spacing, nbl, velocity)
    }

    /// Builds a model by evaluating `f(x, y, z)` (metres; `y = 0` in 2D) at every cell.
    ///
    /// # Errors
    /// As [`Model::new`]; [`Error::InvalidArgument`] when the grid's velocities cannot be
    /// allocated. The shape is checked before `f` is called.
    pub fn from_fn(
        shape: &[usize],
        spacing: f64,
        nbl: usize,
        mut f: impl FnMut(f64, f64, f64) -> f64,
    ) -> Result<Self> {
        let [nx, ny, nz] = checked_axes(shape)?;
        check_extended(shape, nbl)?;
        let mut v = Vec::new();
        let what = format!("the velocities of a {shape:?} grid");
        crate::memory::check_host(
            &what,
            ((nx * ny * nz) as u64).checked_mul(8),
            "use a smaller grid",
        )?;
        v.try_reserve_exact(nx * ny * nz)
            .map_err(|_| invalid("shape", format!("{what} cannot be allocated")))?;
        for i in 0..nx {
            for j in 0..ny {
                for k in 0..nz {
                    v.push(f(
                        i as f64 * spacing,
                        j as f64 * spacing,
                        k as f64 * spacing,
                    ));
                }
            }
        }
        Self::new(shape, spacing, nbl, v)
    }

    /// A constant velocity.
    ///
    /// # Errors
    /// As [`Model::new`].
    pub fn constant(shape: &[usize], spacing: f64, nbl: usize, velocity: f64) -> Result<Self> {
        Self::from_fn(shape, spacing, nbl, |_, _, _| velocity)
    }

    /// Horizontal layers: `layers[i] = (top depth in m, velocity)`, sorted by depth; cells above
    /// the first top take the first velocity.
    ///
    /// # Errors
    /// As [`Model::new`], and for an empty or unsorted layer list.
    pub fn layered(
        shape: &[usize],
        spacing: f64,
        nbl: usize,
        layers: &[(f64, f64)],
    ) -> Result<Self> {
        if layers.is_empty()
            || layers
                .windows(2)
                .any(|w| w[0].0.partial_cmp(&w[1].0).is_none_or(|o| o.is_gt()))
        {
            return Err(invalid(
                "layers",
                "give at least one (top depth, velocity), sorted by depth".into(),
            ));
        }
        Self::from_fn(shape, spacing, nbl, |_, _, z| {
            layers
                .iter()
                .take_while(|(top, _)| *top <= z)
                .last()
                .unwrap_or(&layers[0])
                .1
        })
    }

    /// A circular (3D: spherical) inclusion of `radius` metres at the centre of a constant
    /// background.
    ///
    /// # Errors
    /// As [`Model::new`].
    pub fn circle(
        shape: &[usize],
        spacing: f64,
        nbl: usize,
        background: f64,
        inclusion: f64,
        radius: f64,
    ) -> Result<Self> {
        let [nx, ny, nz] = checked_axes(shape)?;
        let c = [nx, ny, nz].map(|n| (n - 1) as f64 * spacing / 2.0);
        Self::from_fn(shape, spacing, nbl, |x, y, z| {
            let d2 = (x - c[0]).powi(2) + (y - c[1]).powi(2) + (z - c[2]).powi(2);
            if d2 <= radius * radius {
                inclusion
            } else {
                background
            }
        })
    }

    /// A Marmousi-like synthetic, procedural from `seed` (no data file): a water layer, then
    /// folded sedimentary layers whose velocity grows with depth, cut by a few dipping normal
    /// faults that offset the layering. Velocities stay within 1500–4700 m/s.
    ///
    /// # Errors
    /// As [`Model::new`].
    pub fn marmousi_like(shape: &[usize], spacing: f64, nbl: usize, seed: u64) -> Result<Self> {
        let [nx, ny, nz] = checked_axes(shape)?;
        let (width, depth) = ((nx.max(ny) - 1) as f64 * spacing, (nz - 1) as f64 * spacing);
        let mut rng = SplitMix64(seed);
        let water = 0.08 * depth;
        let layers = 14;
        let thickness = (depth - water) / layers as f64;
        // Per-layer velocity: a trend with depth plus a random contrast.
        let contrast: Vec<f64> = (0..layers + 8)
            .map(|_| rng.uniform(-250.0, 250.0))
            .collect();
        // Folds: a few sinusoids over x (and y), amplitudes a fraction of the depth.
        let folds: Vec<(f64, f64, f64)> = (0..3)
            .map(|i| {
                let wavelength = width / (1.0 + i as f64 + rng.uniform(0.0, 1.0));
                (
                    rng.uniform(0.02, 0.06) * depth,
                    wavelength,
                    rng.uniform(0.0, std::f64::consts::TAU),
                )
            })
            .collect();
        // Faults: lines x = x0 + z·tan(dip); the hanging wall (right of the line) drops by `throw`.
        let faults: Vec<(f64, f64, f64)> = (0..3)
            .map(|_| {
                (
                    rng.uniform(0.15, 0.85) * width,
                    rng.uniform(0.3, 0.7),
                    rng.uniform(0.5, 1.5) * thickness,
                )
            })
            .collect();
        Self::from_fn(shape, spacing, nbl, |x, y, z| {
            if z < water {
                return 1500.0;
            }
            let lateral = (x * x + y * y).sqrt();
            let mut zeta = z - water;
            for (amp, wavelength, phase) in &folds {
                // Folding grows with depth: shallow layers stay nearly flat.
                zeta += amp
                    * (z / depth)
                    * (std::f64::consts::TAU * lateral / wavelength + phase).sin();
            }
            for (x0, dip, throw) in &faults {
                if lateral > x0 + (z - water) * dip {
                    zeta -= throw;
                }
            }
            let layer = (zeta / thickness)
                .floor()
                .clamp(0.0, (contrast.len() - 1) as f64) as usize;
            let trend = 1700.0 + 2600.0 * (zeta.max(0.0) / (depth - water)).min(1.0);
            (trend + contrast[layer]).clamp(1500.0, 4700.0)
        })
    }

    /// A smoothed copy (a starting model for inversion): `passes = 3` box filters of half-width
    /// `radius` cells over slowness, which approximates a Gaussian. `radius = 0` copies.
    pub fn smoothed(&self, radius: usize) -> Self {
        let mut slowness: Vec<f64> = self.velocity.iter().map(|v| 1.0 / v).collect();
        let [nx, ny, nz] = axes(&self.dims);
        for _ in 0..3 {
            for (axis, n) in [(0, nx), (1, ny), (2, nz)] {
                if n > 1 && radius > 0 {
                    box_filter(&mut slowness, [nx, ny, nz], axis, radius);
                }
            }
        }
        Self {
            velocity: slowness.iter().map(|s| 1.0 / s).collect(),
            ..self.clone()
        }
    }

    /// 2 or 3.
    pub fn dim(&self) -> usize {
        self.dims.len()
    }

    /// Physical cells per axis.
    pub fn shape(&self) -> &[usize] {
        &self.dims
    }

    /// Grid spacing in metres.
    pub fn spacing(&self) -> f64 {
        self.spacing
    }

    /// Absorbing cells on each side.
    pub fn nbl(&self) -> usize {
        self.nbl
    }

    /// Velocities in m/s, C order.
    pub fn velocity(&self) -> &[f64] {
        &self.velocity
    }

    /// Largest velocity.
    pub fn max_velocity(&self) -> f64 {
        self.velocity.iter().copied().fold(0.0, f64::max)
    }

    /// Extent of the physical grid along each axis in metres: `(n − 1)·h`.
    pub fn extent(&self) -> Vec<f64> {
        self.dims
            .iter()
            .map(|&n| (n - 1) as f64 * self.spacing)
            .collect()
    }

    /// Extended cells per axis `(x, y, z)`: physical plus `2·nbl` (y is 1 in 2D).
    pub fn extended_shape(&self) -> [usize; 3] {
        let [nx, ny, nz] = axes(&self.dims);
        let e = |n: usize| n + 2 * self.nbl;
        [e(nx), if self.dim() == 3 { e(ny) } else { 1 }, e(nz)]
    }

    /// Squared slowness `m = 1/c²` on the extended grid; the absorbing layer repeats the
    /// nearest physical cell.
    pub fn extended_slowness_squared(&self) -> Vec<f64> {
        let [ex, ey, ez] = self.extended_shape();
        let [nx, ny, nz] = axes(&self.dims);
        let nbl = self.nbl as isize;
        let clamp = |i: usize, n: usize| (i as isize - nbl).clamp(0, n as isize - 1) as usize;
        let mut m = Vec::with_capacity(ex * ey * ez);
        for i in 0..ex {
            for j in 0..ey {
                let (pi, pj) = (clamp(i, nx), if self.dim() == 3 { clamp(j, ny) } else { 0 });
                for k in 0..ez {
                    let v = self.velocity[(pi * ny + pj) * nz + clamp(k, nz)];
                    m.push(1.0 / (v * v));
                }
            }
        }
        m
    }

    /// The damping `η` (s/m²) on the extended grid, tuned for this model's largest velocity:
    /// [`damping_for`](Self::damping_for) of [`max_velocity`](Self::max_velocity). A problem
    /// takes its damping from its [`Boundary`](super::Boundary) instead, so that every model
    /// run on it shares one layer.
    pub fn damping(&self) -> Vec<f64> {
        self.damping_for(self.max_velocity())
    }

    /// The damping `η` (s/m²) on the extended grid: zero inside, rising through the absorbing
    /// layer with the taper `p − sin(2πp)/(2π)` of Devito's `initialize_damp` (`p` the depth into
    /// the layer, 0 → 1), summed over axes, scaled so a wave at `reference_velocity` loses a
    /// factor of about 1000 crossing the layer and back:
    /// `η = 1.5·ln(1000)·taper / (nbl·h·c_ref)`.
    pub fn damping_for(&self, reference_velocity: f64) -> Vec<f64> {
        let [ex, ey, ez] = self.extended_shape();
        if self.nbl == 0 {
            return vec![0.0; ex * ey * ez];
        }
        let nbl = self.nbl;
        let scale = 1.5 * 1000f64.ln() / (nbl as f64 * self.spacing * reference_velocity);
        let taper = |i: usize, n: usize| -> f64 {
            let into = if i < nbl {
                nbl - i
            } else if i >= n - nbl {
                i + 1 - (n - nbl)
            } else {
                return 0.0;
            };
            let p = into as f64 / nbl as f64;
            p - (std::f64::consts::TAU * p).sin() / std::f64::consts::TAU
        };
        let mut eta = Vec::with_capacity(ex * ey * ez);
        for i in 0..ex {
            for j in 0..ey {
                let tj = if self.dim() == 3 { taper(j, ey) } else { 0.0 };
                for k in 0..ez {
                    eta.push(scale * (taper(i, ex) + tj + taper(k, ez)));
                }
            }
        }
        eta
    }
}

/// `(nx, ny, nz)` with `ny = 1` for 2D, for a shape that is 2D or 3D with at least 2 cells on
/// every axis and a number of cells that a velocity vector can hold.
fn checked_axes(shape: &[usize]) -> Result<[usize; 3]> {
    if !(2..=3).contains(&shape.len()) {
        return Err(invalid(
            "shape",
            format!(
                "a model is 2D (nx, nz) or 3D (nx, ny, nz), got {} axes",
                shape.len()
            ),
        ));
    }
    if let Some(n) = shape.iter().find(|&&n| n < 2) {
        return Err(invalid(
            "shape",
            format!("every axis needs at least 2 cells, got {n}"),
        ));
    }
    let max_cells = isize::MAX as usize / std::mem::size_of::<f64>();
    if shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .is_none_or(|cells| cells > max_cells)
    {
        return Err(invalid(
            "shape",
            format!("a {shape:?} grid has more cells than memory can address"),
        ));
    }
    Ok(axes(shape))
}

/// Host bytes a problem keeps per extended cell: the squared slowness and the damping, each
/// extended and padded, in float64 (`Problem::with_boundary`).
const PROBLEM_BYTES_PER_CELL: u64 = 4 * 8;

/// The extended grid (`shape` plus `nbl` cells a side) must be countable in 64 bits, and a
/// problem on it must fit in host memory: checked before anything of its size is allocated.
fn check_extended(shape: &[usize], nbl: usize) -> Result<()> {
    let too_large = || {
        invalid(
            "nbl",
            format!(
                "{shape:?} cells with {nbl} absorbing cells a side is a grid too large to count; \
                 use a thinner absorbing layer (20 cells absorb −45 dB)"
            ),
        )
    };
    let layer = nbl.checked_mul(2).ok_or_else(too_large)?;
    let extended = shape
        .iter()
        .map(|&n| n.checked_add(layer).map(|e| e as u64))
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(too_large)?;
    let bytes = crate::memory::product(&extended)
        .and_then(|cells| cells.checked_mul(PROBLEM_BYTES_PER_CELL));
    crate::memory::check_host(
        &format!(
            "a problem on the extended grid {extended:?} (the model's {shape:?} cells plus nbl = {nbl} absorbing cells a side)"
        ),
        bytes,
        "use a smaller grid or a thinner absorbing layer (nbl)",
    )
}

/// `(nx, ny, nz)` with `ny = 1` for 2D.
fn axes(shape: &[usize]) -> [usize; 3] {
    match *shape {
        [nx, nz] => [nx, 1, nz],
        [nx, ny, nz] => [nx, ny, nz],
        _ => [
            shape.first().copied().unwrap_or(1),
            1,
            shape.last().copied().unwrap_or(1),
        ],
    }
}

/// In-place moving average of half-width `r` along `axis`, shrinking the window at the edges.
fn box_filter(data: &mut [f64], [nx, ny, nz]: [usize; 3], axis: usize, r: usize) {
    let (n, stride) = match axis {
        0 => (nx, ny * nz),
        1 => (ny, nz),
        _ => (nz, 1),
    };
    let mut line = vec![0.0; n];
    let lines: Vec<usize> = (0..nx * ny * nz)
        .filter(|&i| (i / stride) % n == 0)
        .collect();
    for start in lines {
        for (i, v) in line.iter_mut().enumerate() {
            *v = data[start + i * stride];
        }
        for i in 0..n {
            let (lo, hi) = (i.saturating_sub(r), (i + r).min(n - 1));
            data[start + i * stride] = line[lo..=hi].iter().sum::<f64>() / (hi - lo + 1) as f64;
        }
    }
}

/// A small, seedable generator (SplitMix64) so models are reproducible without a dependency.
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

//! The absorbing layer's parameters: fixed per problem from a reference velocity, never from
//! the model being run, so observed and synthetic data share one boundary and the gradient is
//! the derivative of the misfit.

use super::model::Model;
use crate::error::{Error, Result};

/// Which absorbing layer surrounds the physical grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BoundaryKind {
    /// A convolutional PML (the default): the wave equation is stretched into the layer, so
    /// waves enter it without reflecting. Adds memory fields in the layer to every time level.
    Cpml,
    /// A tapered damping sponge: no extra memory, but it echoes (−12 dB of the recorded energy
    /// at 16 cells); kept for comparisons.
    Sponge,
}

impl BoundaryKind {
    /// `"cpml"` or `"sponge"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpml => "cpml",
            Self::Sponge => "sponge",
        }
    }
}

impl std::str::FromStr for BoundaryKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpml" => Ok(Self::Cpml),
            "sponge" => Ok(Self::Sponge),
            other => Err(Error::InvalidArgument {
                name: "boundary",
                reason: format!("unknown absorbing boundary {other:?}; use cpml or sponge"),
            }),
        }
    }
}

/// How the absorbing layer around a problem is built and tuned.
///
/// The layer's strength is computed once from `reference_velocity` (m/s), the fastest wave it
/// is tuned for, and stays the same for every model run on the problem: the true model and
/// the starting model of an inversion, and every perturbation of `m` (which is why the
/// gradient is exact: the boundary does not move with `m`). Choose it at least as large as
/// the largest velocity of every model the problem will see.
///
/// ```
/// use gpurevolve::acoustic::{Boundary, BoundaryKind, Model};
/// let truth = Model::constant(&[60, 40], 10.0, 10, 2500.0)?;
/// let start = Model::constant(&[60, 40], 10.0, 10, 2000.0)?;
/// let boundary = Boundary::for_models(BoundaryKind::Cpml, &[&truth, &start])?;
/// assert_eq!(boundary.reference_velocity(), 2500.0);
/// assert!(Boundary::cpml(f64::NAN).is_err());
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Boundary {
    kind: BoundaryKind,
    reference_velocity: f64,
}

impl Boundary {
    /// A layer of `kind` tuned for waves up to `reference_velocity` m/s.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `boundary_velocity` when the velocity lies outside
    /// [`Model::MIN_VELOCITY`]..=[`Model::MAX_VELOCITY`].
    pub fn new(kind: BoundaryKind, reference_velocity: f64) -> Result<Self> {
        let range = Model::MIN_VELOCITY..=Model::MAX_VELOCITY;
        if !range.contains(&reference_velocity) {
            return Err(Error::InvalidArgument {
                name: "boundary_velocity",
                reason: format!(
                    "the absorbing layer is tuned for a velocity in m/s (the model's fastest, \
                     say), within [{:.0e}, {:.0e}]; got {reference_velocity:.4e}",
                    range.start(),
                    range.end()
                ),
            });
        }
        Ok(Self {
            kind,
            reference_velocity,
        })
    }

    /// The convolutional PML tuned for waves up to `reference_velocity` m/s.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn cpml(reference_velocity: f64) -> Result<Self> {
        Self::new(BoundaryKind::Cpml, reference_velocity)
    }

    /// The tapered sponge (Devito's `initialize_damp` taper) tuned for waves up to
    /// `reference_velocity` m/s.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn sponge(reference_velocity: f64) -> Result<Self> {
        Self::new(BoundaryKind::Sponge, reference_velocity)
    }

    /// A layer of `kind` tuned for the largest velocity of all `models`: what an inversion's
    /// true and starting models should share.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no models.
    pub fn for_models(kind: BoundaryKind, models: &[&Model]) -> Result<Self> {
        let fastest = models
            .iter()
            .map(|m| m.max_velocity())
            .fold(f64::NAN, f64::max);
        if models.is_empty() {
            return Err(Error::InvalidArgument {
                name: "models",
                reason: "at least one model is needed to choose a reference velocity".into(),
            });
        }
        Self::new(kind, fastest)
    }

    /// Which layer.
    pub fn kind(&self) -> BoundaryKind {
        self.kind
    }

    /// The velocity (m/s) the layer is tuned for.
    pub fn reference_velocity(&self) -> f64 {
        self.reference_velocity
    }

    /// Checks that `model` is not faster than the layer is tuned for, and that a CPML, if any
    /// (`nbl > 0`), has room for the stencil: `radius` cells (and 2) at least in the layer, and
    /// `2·radius` physical cells between its two sides along every axis.
    pub(super) fn check(&self, model: &Model, radius: usize) -> Result<()> {
        let fastest = model.max_velocity();
        if fastest > self.reference_velocity {
            return Err(Error::InvalidArgument {
                name: "boundary_velocity",
                reason: format!(
                    "the absorbing layer is tuned for waves up to {} m/s, but the model reaches \
                     {fastest} m/s; give a boundary velocity of at least {fastest} m/s, or leave \
                     it out to use the fastest of the models",
                    crate::error::num(self.reference_velocity),
                    fastest = crate::error::num(fastest)
                ),
            });
        }
        // No layer at all (`nbl = 0`) is a choice: a reflecting box, as in a benchmark.
        let thinnest = radius.max(2);
        if self.kind == BoundaryKind::Cpml && model.nbl() > 0 && model.nbl() < thinnest {
            return Err(Error::InvalidArgument {
                name: "nbl",
                reason: format!(
                    "a CPML of {} cells is thinner than the stencil's reach of {thinnest} cells; \
                     use at least {thinnest} absorbing cells (20 absorb to −40 dB), or the sponge",
                    model.nbl(),
                ),
            });
        }
        if self.kind == BoundaryKind::Cpml && model.nbl() > 0 {
            let axes = ["x", "y", "z"];
            let names: &[&str] = if model.dim() == 3 { &axes } else { &["x", "z"] };
            for (&n, name) in model.shape().iter().zip(names) {
                if n < 2 * radius {
                    return Err(Error::InvalidArgument {
                        name: "shape",
                        reason: format!(
                            "the CPML needs at least {} physical cells along {name} between its \
                             two sides (twice the stencil radius), the model has {n}; use a \
                             larger grid, a lower order or the sponge",
                            2 * radius
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The damping `η` (s/m²) on `model`'s extended grid (see [`Model::damping`]): the
    /// sponge's, or zero under a CPML.
    pub(super) fn damping(&self, model: &Model) -> Vec<f64> {
        match self.kind {
            BoundaryKind::Sponge => model.damping_for(self.reference_velocity),
            BoundaryKind::Cpml => vec![0.0; model.extended_shape().iter().product()],
        }
    }
}

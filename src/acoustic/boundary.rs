//! The absorbing layer's parameters: fixed per problem from a reference velocity, never from
//! the model being run, so observed and synthetic data share one boundary and the gradient is
//! the derivative of the misfit.

use super::model::Model;
use crate::error::{Error, Result};

/// How the absorbing layer around a problem is tuned.
///
/// The layer's strength is computed once from `reference_velocity` (m/s), the fastest wave it
/// is tuned for, and stays the same for every model run on the problem: the true model and
/// the starting model of an inversion, and every perturbation of `m` (which is why the
/// gradient is exact: the boundary does not move with `m`). Choose it at least as large as
/// the largest velocity of every model the problem will see.
///
/// ```
/// use gpurevolve::acoustic::{Boundary, Model};
/// let truth = Model::constant(&[60, 40], 10.0, 10, 2500.0)?;
/// let start = Model::constant(&[60, 40], 10.0, 10, 2000.0)?;
/// let boundary = Boundary::for_models(&[&truth, &start])?;
/// assert_eq!(boundary.reference_velocity(), 2500.0);
/// assert!(Boundary::sponge(f64::NAN).is_err());
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Boundary {
    reference_velocity: f64,
}

impl Boundary {
    /// The tapered sponge (Devito's `initialize_damp` taper) tuned for waves up to
    /// `reference_velocity` m/s.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the velocity is not finite and positive.
    pub fn sponge(reference_velocity: f64) -> Result<Self> {
        if !(reference_velocity.is_finite() && reference_velocity > 0.0) {
            return Err(Error::InvalidArgument {
                name: "reference_velocity",
                reason: format!(
                    "the absorbing layer's reference velocity must be finite and positive (m/s), \
                     got {reference_velocity}"
                ),
            });
        }
        Ok(Self { reference_velocity })
    }

    /// The sponge tuned for the largest velocity of all `models`: what an inversion's true
    /// and starting models should share.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no models.
    pub fn for_models(models: &[&Model]) -> Result<Self> {
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
        Self::sponge(fastest)
    }

    /// The velocity (m/s) the layer is tuned for.
    pub fn reference_velocity(&self) -> f64 {
        self.reference_velocity
    }

    /// Checks that `model` is not faster than the layer is tuned for.
    pub(super) fn check(&self, model: &Model) -> Result<()> {
        let fastest = model.max_velocity();
        if fastest > self.reference_velocity {
            return Err(Error::InvalidArgument {
                name: "reference_velocity",
                reason: format!(
                    "the absorbing layer is tuned for waves up to {} m/s, but the model reaches \
                     {fastest} m/s; use a reference velocity of at least {fastest} \
                     (Boundary::for_models, or --boundary-velocity)",
                    self.reference_velocity
                ),
            });
        }
        Ok(())
    }

    /// The damping `η` (s/m²) on `model`'s extended grid (see [`Model::damping`]).
    pub(super) fn damping(&self, model: &Model) -> Vec<f64> {
        model.damping_for(self.reference_velocity)
    }
}

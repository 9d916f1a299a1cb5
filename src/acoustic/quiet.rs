//! When a run of unknown length may stop: the wavefield has died down.

use super::operator::AcousticOperator;
use super::problem::Problem;
use crate::error::{Error, Result};
use crate::gpu::SumSquares;

/// "The wavefield is quiet": its energy `Σ u²` has fallen below `fraction` of the largest
/// energy seen, and the source has ended (before that the field may be small because the
/// source has barely started). The stop condition of
/// [`Revolver::apply_forward_until`](crate::engine::Revolver::apply_forward_until) for an
/// acoustic shot ([`AcousticOperator::energy`] measures the energy).
#[derive(Clone, Copy, Debug)]
pub struct Quiet {
    fraction: f64,
    source_end: u64,
    peak: f64,
}

impl Quiet {
    /// Quiet below `fraction` of the peak energy, for `problem`'s source.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] unless `0 < fraction < 1`.
    pub fn new(problem: &Problem, fraction: f64) -> Result<Self> {
        if !(fraction > 0.0 && fraction < 1.0) {
            return Err(Error::InvalidArgument {
                name: "fraction",
                reason: format!(
                    "{fraction}: the energy fraction at which a run stops must lie strictly between 0 and 1 (1e-4, say)"
                ),
            });
        }
        let series = problem.source_series();
        let sources = problem.sources().points.max(1);
        let peak = series.iter().fold(0.0f64, |m, s| m.max(s.abs()));
        // The last sample where any source still emits a ten-thousandth of its peak.
        let source_end = series
            .chunks(sources)
            .rposition(|row| row.iter().any(|s| s.abs() > 1e-4 * peak))
            .map_or(0, |k| k as u64 + 1);
        Ok(Self {
            fraction,
            source_end,
            peak: 0.0,
        })
    }

    /// The first step after the source's last significant sample.
    pub fn source_end(&self) -> u64 {
        self.source_end
    }

    /// The largest energy seen so far.
    pub fn peak(&self) -> f64 {
        self.peak
    }

    /// Whether the field is quiet at step `step` with energy `energy` (which also updates the
    /// peak).
    pub fn is_quiet(&mut self, step: u64, energy: f64) -> bool {
        self.peak = self.peak.max(energy);
        step > self.source_end && energy <= self.fraction * self.peak
    }
}

impl AcousticOperator<'_> {
    /// The energy `Σ u²` of a time level's wavefield (its memory fields left out), reduced
    /// on the GPU without atomics after the work submitted so far; of the first shot of a batch.
    ///
    /// # Errors
    /// As [`SumSquares::sum`].
    pub fn energy(&self, level: &wgpu::Buffer) -> Result<f64> {
        self.shot_energy(level, 0)
    }

    /// The energy of shot `shot`'s wavefield in a batched time level.
    ///
    /// # Errors
    /// As [`SumSquares::sum_from`]; [`Error::InvalidArgument`] for a shot past the batch.
    pub fn shot_energy(&self, level: &wgpu::Buffer, shot: usize) -> Result<f64> {
        let acoustic = self.acoustic();
        if shot >= acoustic.shots() {
            return Err(Error::InvalidArgument {
                name: "shot",
                reason: format!("shot {shot} of a batch of {}", acoustic.shots()),
            });
        }
        let gpu = acoustic.gpu();
        let len = acoustic.layout().len() as u64;
        let offset = shot as u64 * acoustic.level_len() as u64;
        let sums = match self.sum_squares.get() {
            Some(sums) => sums,
            None => {
                let made = SumSquares::new(gpu)?;
                self.sum_squares.get_or_init(|| made)
            }
        };
        sums.sum_from(gpu, level, offset, len)
    }
}

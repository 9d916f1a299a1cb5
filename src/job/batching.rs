//! How many shots step together: the step's cost as a function of the batch size, measured on
//! the device, and the batch size whose modelled time per shot is least within the checkpoint
//! memory ([`Batch::Auto`](super::Batch::Auto)).
//!
//! A step of a batch of `B` shots costs about `fixed + B · per_shot`: the fixed part is the
//! host's encoding, the dispatches and the GPU's launch latency, the same for any batch; the
//! per-shot part is the bandwidth of one more shot's wavefields. On a small grid the fixed part
//! dominates and batching wins almost `B`-fold. But the batch shares the checkpoint memory
//! ([`RunPolicy::for_batch`](super::RunPolicy::for_batch)): `B` shots get `snaps / B`
//! snapshots of the batch, so the schedule recomputes more. The model weighs the two with the
//! schedule's own forward-step count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::acoustic::{AcousticOperator, Problem};
use crate::engine::Operator;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, STATE_USAGE};

/// The cost of a step as a function of the batch size `B`: `fixed + B · per_shot` seconds,
/// for the forward step and for the adjoint step (with the gradient's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepCost {
    /// Seconds of a forward step whatever the batch.
    pub forward_fixed: f64,
    /// Seconds a forward step adds per shot of the batch.
    pub forward_per_shot: f64,
    /// Seconds of an adjoint step whatever the batch.
    pub adjoint_fixed: f64,
    /// Seconds an adjoint step adds per shot of the batch.
    pub adjoint_per_shot: f64,
}

impl StepCost {
    /// Seconds of a forward step of a batch of `batch` shots.
    pub fn forward(&self, batch: usize) -> f64 {
        self.forward_fixed + batch as f64 * self.forward_per_shot
    }

    /// Seconds of an adjoint step of a batch of `batch` shots.
    pub fn adjoint(&self, batch: usize) -> f64 {
        self.adjoint_fixed + batch as f64 * self.adjoint_per_shot
    }

    /// Modelled seconds per shot of a survey of `shots` shots in batches of `batch`, each
    /// batch running `forward_steps` forward and `steps` adjoint steps: the last batch,
    /// holding fewer shots when `batch` does not divide `shots`, costs a whole one less its
    /// missing shots' part.
    pub fn seconds_per_shot(
        &self,
        shots: usize,
        batch: usize,
        forward_steps: u64,
        steps: u64,
    ) -> f64 {
        let (shots, batch) = (shots.max(1), batch.max(1));
        let full = shots / batch;
        let rest = shots % batch;
        let batch_seconds =
            |b: usize| forward_steps as f64 * self.forward(b) + steps as f64 * self.adjoint(b);
        let total =
            full as f64 * batch_seconds(batch) + if rest > 0 { batch_seconds(rest) } else { 0.0 };
        total / shots as f64
    }
}

/// Step costs already measured in this process, by device and problem shape: a survey's
/// shots, and the inversions that run the same survey again, measure once.
static MEASURED: Mutex<Option<HashMap<String, StepCost>>> = Mutex::new(None);

/// What the step cost depends on: the device, the grid, the order, the layer and the batch
/// measured.
fn cache_key(gpu: &Gpu, shot: &Problem, largest: usize) -> String {
    format!(
        "{} | {:?} | order {} | {:?} | receivers {} | up to {largest}",
        gpu.adapter_info().name,
        shot.layout(),
        shot.space_order(),
        shot.boundary().kind(),
        shot.receivers().points,
    )
}

/// The step cost of `shot`'s problem on `gpu`, measured at batches of 1 and `largest` shots
/// (copies of `shot`) over `samples` steps each, or read from this process's cache.
///
/// # Errors
/// As [`AcousticOperator::batch`]; [`Error::Gpu`] when the device fails.
pub fn step_cost(gpu: &Gpu, shot: &Problem, largest: usize, samples: usize) -> Result<StepCost> {
    let largest = largest.max(2);
    let key = cache_key(gpu, shot, largest);
    if let Ok(cache) = MEASURED.lock()
        && let Some(cost) = cache.as_ref().and_then(|c| c.get(&key))
    {
        return Ok(*cost);
    }
    let one = time_steps(gpu, shot, 1, samples)?;
    let many = time_steps(gpu, shot, largest, samples)?;
    // A straight line through the two: the per-shot part from the slope, never negative
    // (timing noise on a fixed-cost step), and the fixed part what is left at one shot.
    let slope = |a: f64, b: f64| ((b - a) / (largest - 1) as f64).max(0.0);
    let forward_per_shot = slope(one.0, many.0);
    let adjoint_per_shot = slope(one.1, many.1);
    let cost = StepCost {
        forward_fixed: (one.0 - forward_per_shot).max(0.0),
        forward_per_shot,
        adjoint_fixed: (one.1 - adjoint_per_shot).max(0.0),
        adjoint_per_shot,
    };
    log::info!(
        "step cost on {}: forward {:.3e} s + {:.3e} s a shot, adjoint {:.3e} s + {:.3e} s a \
         shot (measured at batches of 1 and {largest})",
        gpu.adapter_info().name,
        cost.forward_fixed,
        cost.forward_per_shot,
        cost.adjoint_fixed,
        cost.adjoint_per_shot
    );
    if let Ok(mut cache) = MEASURED.lock() {
        cache.get_or_insert_with(HashMap::new).insert(key, cost);
    }
    Ok(cost)
}

/// Seconds of one forward step and one adjoint step of a batch of `batch` copies of `shot`,
/// each the best of three rounds of `samples` steps after a first round that warms up.
fn time_steps(gpu: &Gpu, shot: &Problem, batch: usize, samples: usize) -> Result<(f64, f64)> {
    let shots = vec![shot; batch];
    let zeros = vec![0.0; shot.time().nt * shot.receivers().points];
    let records = vec![&zeros[..]; batch];
    let mut operator = AcousticOperator::batch(gpu, &shots, &records)?;
    let steps = usize::try_from(operator.steps()).unwrap_or(usize::MAX);
    let samples = samples.clamp(1, steps.max(1));
    let bytes = operator.level_bytes();
    let ring: Vec<wgpu::Buffer> = (0..3)
        .map(|_| gpu.create_buffer("batch calibration level", bytes, STATE_USAGE))
        .collect::<Result<_>>()?;
    let mut best = (f64::INFINITY, f64::INFINITY);
    for round in 0..4 {
        let forward = time(gpu, || {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            for k in 0..samples {
                let [next, cur, prev] = rotation(&ring, k);
                operator.encode_forward(&mut encoder, k as u64, &[cur, prev], next, true)?;
            }
            Ok(encoder)
        })?;
        let adjoint = time(gpu, || {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            for k in (0..samples).rev() {
                let [_, cur, prev] = rotation(&ring, k);
                operator.encode_adjoint(&mut encoder, k as u64, &[cur, prev], None)?;
            }
            Ok(encoder)
        })?;
        if round > 0 {
            best = (best.0.min(forward), best.1.min(adjoint));
        }
    }
    Ok((best.0 / samples as f64, best.1 / samples as f64))
}

/// Three levels rotating with the step: `[next, cur, prev]` of step `k`.
fn rotation(ring: &[wgpu::Buffer], k: usize) -> [&wgpu::Buffer; 3] {
    [&ring[(k + 2) % 3], &ring[(k + 1) % 3], &ring[k % 3]]
}

/// Seconds from submitting what `encode` records to the device finishing it.
fn time(gpu: &Gpu, encode: impl FnOnce() -> Result<wgpu::CommandEncoder>) -> Result<f64> {
    gpu.wait()?;
    let start = Instant::now();
    let scope = gpu.device().push_error_scope(wgpu::ErrorFilter::Validation);
    let encoder = encode()?;
    gpu.submit([encoder.finish()]);
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Gpu {
            context: "timing a batch's steps".into(),
            detail: e.to_string(),
        });
    }
    gpu.wait()?;
    Ok(start.elapsed().as_secs_f64())
}

/// The batch sizes [`Batch::Auto`](super::Batch::Auto) weighs for `shots` shots, at most
/// `largest`: every size up to 4, then powers of two and their halfway points (6, 12, 24, …),
/// and `shots` itself — about twenty plans for a survey of a thousand shots.
pub fn candidates(shots: usize, largest: usize) -> Vec<usize> {
    let top = shots.min(largest).max(1);
    let mut sizes: Vec<usize> = (1..=4.min(top)).collect();
    let mut power = 4;
    while power < top {
        for size in [power + power / 2, power * 2] {
            if size <= top {
                sizes.push(size);
            }
        }
        power *= 2;
    }
    sizes.push(top);
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// One batch size weighed by [`Batch::Auto`](super::Batch::Auto): its forward steps a batch
/// and its modelled seconds per shot.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchOption {
    /// Shots a batch.
    pub batch: usize,
    /// Forward steps each batch runs under its schedule.
    pub forward_steps: u64,
    /// Modelled seconds per shot.
    pub seconds_per_shot: f64,
}

/// The option of least modelled time per shot; ties go to the smaller batch (less memory
/// besides the checkpoints). `None` when there is none.
pub fn best(options: &[BatchOption]) -> Option<BatchOption> {
    options.iter().copied().fold(None, |best, o| match best {
        Some(b) if b.seconds_per_shot <= o.seconds_per_shot => Some(b),
        _ => Some(o),
    })
}

/// The most shots of `shot`'s problem one batch can hold on `gpu`
/// ([`largest_batch`](crate::acoustic::largest_batch)), at least 1.
pub(crate) fn largest_batch(gpu: &Gpu, shot: &Problem) -> usize {
    crate::acoustic::largest_batch(gpu, shot).0.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_small_sizes_and_the_survey() {
        assert_eq!(candidates(1, 64), vec![1]);
        assert_eq!(candidates(3, 64), vec![1, 2, 3]);
        assert_eq!(candidates(10, 64), vec![1, 2, 3, 4, 6, 8, 10]);
        assert_eq!(candidates(64, 20), vec![1, 2, 3, 4, 6, 8, 12, 16, 20]);
        assert!(candidates(1000, 1000).len() <= 20);
    }

    #[test]
    fn the_model_trades_dispatches_against_recomputation() {
        // A step all overhead: the biggest batch wins if it recomputes no more.
        let overhead = StepCost {
            forward_fixed: 1e-4,
            forward_per_shot: 1e-7,
            adjoint_fixed: 1e-4,
            adjoint_per_shot: 1e-7,
        };
        let one = overhead.seconds_per_shot(64, 1, 1500, 1000);
        let many = overhead.seconds_per_shot(64, 64, 1500, 1000);
        assert!(many < one / 20.0, "{many} vs {one}");
        // A step all bandwidth: batching saves nothing, and more recomputation loses.
        let bandwidth = StepCost {
            forward_per_shot: 1e-4,
            adjoint_per_shot: 1e-4,
            ..StepCost::default()
        };
        let alone = bandwidth.seconds_per_shot(64, 1, 1500, 1000);
        let batched = bandwidth.seconds_per_shot(64, 8, 3000, 1000);
        assert!(batched > alone);
        // A batch that does not divide the survey pays for its last, smaller batch alone.
        let uneven = overhead.seconds_per_shot(10, 4, 1000, 1000);
        let whole = (2.0 * (overhead.forward(4) + overhead.adjoint(4))
            + overhead.forward(2)
            + overhead.adjoint(2))
            * 1000.0
            / 10.0;
        assert!(
            (uneven - whole).abs() <= 1e-12 * whole,
            "{uneven} vs {whole}"
        );
        let options = [
            BatchOption {
                batch: 1,
                forward_steps: 1,
                seconds_per_shot: 2.0,
            },
            BatchOption {
                batch: 4,
                forward_steps: 1,
                seconds_per_shot: 1.0,
            },
            BatchOption {
                batch: 8,
                forward_steps: 1,
                seconds_per_shot: 1.0,
            },
        ];
        assert_eq!(best(&options).map(|o| o.batch), Some(4));
    }
}

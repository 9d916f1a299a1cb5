//! Measures the costs of the two-tier model on the running device.

use std::time::Instant;

use super::operator::Operator;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, STATE_USAGE};
use crate::schedule::TwoLevelCosts;

/// Times, in seconds, `samples` forward steps of `operator` and `samples` copies of one state
/// to host memory and back, as [`Revolver`](super::Revolver) makes them: the costs that
/// [`TwoLevel`](crate::schedule::TwoLevel) plans with. Uses its own buffers; the operator's
/// adjoint state is untouched. The steps timed are `0..samples`, so `samples` is clamped to
/// the operator's number of steps (and to at least 1): no step outside the time loop runs.
///
/// # Errors
/// As the operator's `encode_forward`; [`Error::Gpu`] when the operator's commands fail
/// validation; [`Error::OutOfMemory`].
pub fn calibrate<O: Operator>(
    gpu: &Gpu,
    operator: &mut O,
    samples: usize,
) -> Result<TwoLevelCosts> {
    let steps = usize::try_from(operator.steps()).unwrap_or(usize::MAX);
    let samples = samples.clamp(1, steps.max(1));
    let (levels, bytes) = (operator.levels(), operator.level_bytes());
    let mut ring: Vec<wgpu::Buffer> = (0..levels + 1)
        .map(|_| gpu.create_buffer("calibration level", bytes, STATE_USAGE))
        .collect::<Result<_>>()?;
    let encoder = |label| {
        gpu.device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    };

    // Forward steps on rotating levels.
    gpu.wait()?;
    let start = Instant::now();
    let scope = gpu.device().push_error_scope(wgpu::ErrorFilter::Validation);
    let mut enc = encoder("calibrate forward");
    for k in 0..samples {
        // ring[0] is the oldest level, overwritten next; the others are the state, newest last.
        let state: Vec<&wgpu::Buffer> = ring[1..].iter().rev().collect();
        operator.encode_forward(&mut enc, k as u64, &state, &ring[0], false)?;
        ring.rotate_left(1);
    }
    gpu.submit([enc.finish()]);
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(Error::Gpu {
            context: "calibrating the operator's forward step".into(),
            detail: e.to_string(),
        });
    }
    gpu.wait()?;
    let forward = start.elapsed().as_secs_f64() / samples as f64;

    // A state to the host through staging, and back with a queue write.
    let staging = gpu.create_buffer(
        "calibration staging",
        bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    )?;
    let (mut write, mut read) = (0.0, 0.0);
    for _ in 0..samples {
        let start = Instant::now();
        let mut host = Vec::with_capacity(levels);
        for level in ring.iter().take(levels) {
            let mut enc = encoder("calibrate spill");
            enc.copy_buffer_to_buffer(level, 0, &staging, 0, level.size());
            gpu.submit([enc.finish()]);
            host.push(gpu.read_mapped(&staging)?);
        }
        write += start.elapsed().as_secs_f64();
        let start = Instant::now();
        for (level, bytes) in ring.iter().zip(&host) {
            gpu.write(level, bytes)?;
        }
        gpu.submit([]);
        gpu.wait()?;
        read += start.elapsed().as_secs_f64();
    }
    Ok(TwoLevelCosts {
        forward,
        host_write: write / samples as f64,
        host_read: read / samples as f64,
    })
}

//! Measures the costs of the tiered model on the running device.

use std::time::Instant;

use std::path::Path;

use super::disk::DiskFiles;
use super::operator::Operator;
use crate::compression::CheckpointFormat;
use crate::error::{Error, Result};
use crate::gpu::{Codec, Gpu, STATE_USAGE};
use crate::schedule::{TierCost, TieredCosts};

/// Times, in seconds, `samples` forward steps of `operator` and `samples` copies of one state
/// to host memory and back, as [`Revolver`](super::Revolver) makes them with its default
/// options (into host buffers where the device has them, else through staging): the costs that
/// [`TwoTier`](crate::schedule::TwoTier) plans with. Uses its own buffers; the operator's
/// adjoint state is untouched. The steps timed are `0..samples`, so `samples` is clamped to
/// the operator's number of steps (and to at least 1): no step outside the time loop runs.
///
/// # Errors
/// As the operator's `encode_forward`; [`Error::Gpu`] when the operator's commands fail
/// validation; [`Error::OutOfMemory`].
pub fn calibrate<O: Operator>(gpu: &Gpu, operator: &mut O, samples: usize) -> Result<TieredCosts> {
    calibrate_sized(gpu, operator, samples, operator.level_bytes())
}

/// [`calibrate`] for checkpoints stored in `format`: the copies move the encoded levels, and
/// every save and restore, on the GPU as in host memory, also runs the format's encoding or
/// decoding kernels over the state (measured here), as the engine does. The costs that placement
/// by cost plans a lossy format with; `F32`'s are [`calibrate`]'s.
///
/// # Errors
/// As [`calibrate`]; [`Error::Gpu`] if the format's kernels do not compile.
pub fn calibrate_stored<O: Operator>(
    gpu: &Gpu,
    operator: &mut O,
    samples: usize,
    format: CheckpointFormat,
) -> Result<TieredCosts> {
    let Some(codec) = Codec::new(gpu, format)? else {
        return calibrate(gpu, operator, samples);
    };
    let stored = format.encoded_bytes_in(operator.level_bytes(), operator.level_parts());
    let mut costs = calibrate_sized(gpu, operator, samples, stored)?;
    let kernels = codec_costs(gpu, &codec, operator, samples)?;
    costs.tiers[0] = kernels;
    for tier in &mut costs.tiers[1..] {
        tier.write += kernels.write;
        tier.read += kernels.read;
    }
    Ok(costs)
}

/// The costs that placement by cost takes, measured, in the order and units of
/// [`RunPolicy::costs`](crate::job::RunPolicy::costs): `[STEP, TO_HOST, TO_GPU]` (a forward
/// step, and a stored state's copy to host memory and back), then with `disk`
/// `[TO_DISK, FROM_DISK]` (its round trip through a file there), then for a lossy `format`
/// `[ENCODE, DECODE]` (its kernels on a state). The copies move the state as `format` stores
/// it. A lossy run needs its costs given, not measured, since they choose its schedule and so
/// its bits: this measures them once, to be written down and given.
///
/// # Errors
/// As [`calibrate_stored`] and [`calibrate_disk`].
pub fn measure_costs<O: Operator>(
    gpu: &Gpu,
    operator: &mut O,
    samples: usize,
    format: CheckpointFormat,
    disk: Option<&Path>,
) -> Result<Vec<f64>> {
    let stored = format.encoded_bytes_in(operator.level_bytes(), operator.level_parts());
    let copies = calibrate_sized(gpu, operator, samples, stored)?;
    let host = copies.tiers[1];
    let mut costs = vec![copies.forward, host.write, host.read];
    if let Some(dir) = disk {
        let files = disk_round_trips(gpu, operator.levels(), stored, dir, samples)?;
        costs.extend([files.write, files.read]);
    }
    if let Some(codec) = Codec::new(gpu, format)? {
        let kernels = codec_costs(gpu, &codec, operator, samples)?;
        costs.extend([kernels.write, kernels.read]);
    }
    Ok(costs)
}

/// Seconds, each a mean over `samples`, to encode one state of `operator` into `codec`'s
/// format (`write`) and to decode it back (`read`): what a lossy save and restore add to
/// the copies.
fn codec_costs<O: Operator>(
    gpu: &Gpu,
    codec: &Codec,
    operator: &O,
    samples: usize,
) -> Result<TierCost> {
    let samples = samples.max(1);
    let (levels, bytes, parts) = (
        operator.levels(),
        operator.level_bytes(),
        operator.level_parts(),
    );
    let words = bytes / 4;
    let stored = codec.format().encoded_bytes_in(bytes, parts);
    let plain: Vec<wgpu::Buffer> = (0..levels)
        .map(|_| gpu.create_buffer("calibration level", bytes, STATE_USAGE))
        .collect::<Result<_>>()?;
    let encoded: Vec<wgpu::Buffer> = (0..levels)
        .map(|_| gpu.create_buffer("calibration encoding", stored, STATE_USAGE))
        .collect::<Result<_>>()?;
    let time = |encode: bool| -> Result<f64> {
        gpu.wait()?;
        let start = Instant::now();
        let mut enc = encoder(gpu, "calibrate codec");
        for _ in 0..samples {
            for (level, code) in plain.iter().zip(&encoded) {
                if encode {
                    codec.encode(gpu, &mut enc, [level, code], words, parts)?;
                } else {
                    codec.decode(gpu, &mut enc, [code, level], words, parts)?;
                }
            }
        }
        gpu.submit([enc.finish()]);
        gpu.wait()?;
        Ok(start.elapsed().as_secs_f64() / samples as f64)
    };
    Ok(TierCost {
        write: time(true)?,
        read: time(false)?,
    })
}

/// [`calibrate`] with the copies moving levels of `stored` bytes each.
fn calibrate_sized<O: Operator>(
    gpu: &Gpu,
    operator: &mut O,
    samples: usize,
    stored: u64,
) -> Result<TieredCosts> {
    let steps = usize::try_from(operator.steps()).unwrap_or(usize::MAX);
    let samples = samples.clamp(1, steps.max(1));
    let (levels, bytes) = (operator.levels(), operator.level_bytes());
    let mut ring: Vec<wgpu::Buffer> = (0..levels + 1)
        .map(|_| gpu.create_buffer("calibration level", bytes, STATE_USAGE))
        .collect::<Result<_>>()?;

    // Forward steps on rotating levels.
    gpu.wait()?;
    let start = Instant::now();
    let scope = gpu.device().push_error_scope(wgpu::ErrorFilter::Validation);
    let mut enc = encoder(gpu, "calibrate forward");
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

    // The copies move what a checkpoint stores: the levels, or their encodings.
    let moved: Vec<wgpu::Buffer> = if stored == bytes {
        ring.drain(..levels).collect()
    } else {
        (0..levels)
            .map(|_| gpu.create_buffer("calibration encoding", stored, STATE_USAGE))
            .collect::<Result<_>>()?
    };
    let (write, read) = if gpu.has_host_buffers() {
        host_buffer_copies(gpu, &moved, samples)?
    } else {
        staged_copies(gpu, &moved, samples)?
    };
    Ok(TieredCosts::two_tier(
        forward,
        TierCost {
            write: write / samples as f64,
            read: read / samples as f64,
        },
    ))
}

fn encoder(gpu: &Gpu, label: &str) -> wgpu::CommandEncoder {
    gpu.device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
}

/// Seconds for `samples` copies of `state` into host buffers, and back: the path a
/// [`Revolver`](super::Revolver) takes where the device has them (`RevolverOptions::host_buffers`).
fn host_buffer_copies(gpu: &Gpu, state: &[wgpu::Buffer], samples: usize) -> Result<(f64, f64)> {
    let host = state
        .iter()
        .map(|level| gpu.host_buffer("calibration host buffer", level.size()))
        .collect::<Result<Vec<_>>>()?;
    let (mut write, mut read) = (0.0, 0.0);
    for _ in 0..samples {
        for (time, to_host) in [(&mut write, true), (&mut read, false)] {
            let start = Instant::now();
            let mut enc = encoder(gpu, "calibrate host copies");
            for (level, buffer) in state.iter().zip(&host) {
                let (from, to) = if to_host {
                    (level, buffer)
                } else {
                    (buffer, level)
                };
                enc.copy_buffer_to_buffer(from, 0, to, 0, level.size());
            }
            gpu.submit([enc.finish()]);
            gpu.wait()?;
            *time += start.elapsed().as_secs_f64();
        }
    }
    Ok((write, read))
}

/// Seconds for `samples` copies of `state` to host memory through staging, and back with a
/// queue write: the path without host buffers.
fn staged_copies(gpu: &Gpu, state: &[wgpu::Buffer], samples: usize) -> Result<(f64, f64)> {
    let bytes = state.first().map_or(0, wgpu::Buffer::size);
    let staging = gpu.create_buffer(
        "calibration staging",
        bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    )?;
    let (mut write, mut read) = (0.0, 0.0);
    for _ in 0..samples {
        let start = Instant::now();
        let mut host = Vec::with_capacity(state.len());
        for level in state {
            let mut enc = encoder(gpu, "calibrate spill");
            enc.copy_buffer_to_buffer(level, 0, &staging, 0, level.size());
            gpu.submit([enc.finish()]);
            host.push(gpu.read_mapped(&staging)?);
        }
        write += start.elapsed().as_secs_f64();
        let start = Instant::now();
        for (level, bytes) in state.iter().zip(&host) {
            gpu.write(level, bytes)?;
        }
        gpu.submit([]);
        gpu.wait()?;
        read += start.elapsed().as_secs_f64();
    }
    Ok((write, read))
}

/// Times, in seconds, `samples` round trips of one state of `operator`'s size through a disk
/// tier in `dir`, as the GPU backend makes them: to host memory through staging and into a
/// file by the disk thread; back from the file and uploaded. The disk tier's cost for
/// [`CostOptimal`](crate::schedule::CostOptimal) (with [`calibrate`]'s for the host).
/// Its files go with it.
///
/// # Errors
/// [`Error::InvalidArgument`] naming `disk` for a directory that is not there or not
/// writable; a file's write or read ([`Error::DiskFull`], [`Error::File`]);
/// [`Error::OutOfMemory`].
pub fn calibrate_disk<O: Operator>(
    gpu: &Gpu,
    operator: &O,
    dir: &Path,
    samples: usize,
) -> Result<TierCost> {
    disk_round_trips(gpu, operator.levels(), operator.level_bytes(), dir, samples)
}

/// [`calibrate_disk`] for checkpoints stored in `format`: the files hold the encoded levels,
/// and each save and restore also runs the format's kernels (as [`calibrate_stored`]).
///
/// # Errors
/// As [`calibrate_disk`]; [`Error::Gpu`] if the format's kernels do not compile.
pub fn calibrate_disk_stored<O: Operator>(
    gpu: &Gpu,
    operator: &O,
    dir: &Path,
    samples: usize,
    format: CheckpointFormat,
) -> Result<TierCost> {
    let Some(codec) = Codec::new(gpu, format)? else {
        return calibrate_disk(gpu, operator, dir, samples);
    };
    let stored = format.encoded_bytes_in(operator.level_bytes(), operator.level_parts());
    let files = disk_round_trips(gpu, operator.levels(), stored, dir, samples)?;
    let kernels = codec_costs(gpu, &codec, operator, samples)?;
    Ok(TierCost {
        write: files.write + kernels.write,
        read: files.read + kernels.read,
    })
}

/// Seconds, each a mean over `samples`, for a state of `levels` levels of `bytes` each to go
/// to a file in `dir` through host memory, and back.
fn disk_round_trips(
    gpu: &Gpu,
    levels: usize,
    bytes: u64,
    dir: &Path,
    samples: usize,
) -> Result<TierCost> {
    let samples = samples.max(1);
    // Random contents: a file system may treat zeros specially.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let words = usize::try_from(bytes / 4).unwrap_or(0);
    let state: Vec<wgpu::Buffer> = (0..levels)
        .map(|_| {
            let data: Vec<u32> = (0..words)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u32
                })
                .collect();
            gpu.upload("calibration level", &data, STATE_USAGE)
        })
        .collect::<Result<_>>()?;
    let staging = gpu.create_buffer(
        "calibration staging",
        bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    )?;
    let mut disk = DiskFiles::new(dir, None)?;
    let (mut write, mut read) = (0.0, 0.0);
    for step in 0..samples as u64 {
        let start = Instant::now();
        let mut host = Vec::with_capacity(levels);
        for level in &state {
            let mut enc = encoder(gpu, "calibrate disk");
            enc.copy_buffer_to_buffer(level, 0, &staging, 0, level.size());
            gpu.submit([enc.finish()]);
            host.push(gpu.read_mapped(&staging)?);
        }
        let job = disk.write(0, step, host)?;
        disk.wait(job)?.result?;
        write += start.elapsed().as_secs_f64();
        let start = Instant::now();
        let job = disk.read(0, step, levels, staging.size())?;
        let back = disk.wait(job)?.result?.unwrap_or_default();
        for (level, bytes) in state.iter().zip(&back) {
            gpu.write(level, bytes)?;
        }
        gpu.submit([]);
        gpu.wait()?;
        read += start.elapsed().as_secs_f64();
    }
    Ok(TierCost {
        write: write / samples as f64,
        read: read / samples as f64,
    })
}

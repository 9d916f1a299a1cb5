//! Host ↔ GPU transfers of one checkpoint level, piece by piece, and the memory bandwidth a
//! compute kernel reaches: the figures that say where a spill's time goes and what a step
//! kernel should be compared with.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use gpurevolve::Error;
use gpurevolve::gpu::Gpu;

use super::Row;
use super::measure::median;

/// Maps `buffer` in `mode` and waits until it is mapped.
fn map(gpu: &Gpu, buffer: &wgpu::Buffer, mode: wgpu::MapMode) -> Result<(), Error> {
    let mapped = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&mapped);
    buffer.map_async(mode, .., move |r| flag.store(r.is_ok(), Ordering::Release));
    gpu.wait()?;
    if mapped.load(Ordering::Acquire) {
        Ok(())
    } else {
        Err(Error::Map {
            label: "transfer staging".into(),
            detail: "the buffer was not mapped".into(),
        })
    }
}

fn mapped_error(e: impl std::fmt::Display) -> Error {
    Error::Map {
        label: "transfer staging".into(),
        detail: e.to_string(),
    }
}

/// Each piece of a spill and a restore of `bytes` (a level of a large 2D grid), in GB/s:
/// the GPU copy into a `MAP_READ` staging buffer, the host's read of it (into a new and into
/// a reused allocation), an upload by `Queue::write_buffer` and one through a reused
/// `MAP_WRITE` staging buffer, and the host's own copy and first touch for scale.
pub fn transfers(gpu: &Gpu, bytes: u64, reps: usize) -> Result<Vec<Row>, Error> {
    use wgpu::BufferUsages as U;
    let level = gpu.create_buffer("level", bytes, U::STORAGE | U::COPY_SRC | U::COPY_DST)?;
    let down = gpu.create_buffer("down staging", bytes, U::MAP_READ | U::COPY_DST)?;
    let up = gpu.create_buffer("up staging", bytes, U::MAP_WRITE | U::COPY_SRC)?;
    let n = bytes as usize;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let data: Vec<u8> = (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    gpu.write(&level, &data)?;
    let copy_down = || -> Result<(), Error> {
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&level, 0, &down, 0, bytes);
        gpu.submit([encoder.finish()]);
        gpu.wait()
    };
    let gpu_to_staging = median(reps, copy_down)?;
    // The host's read of the mapped staging buffer, the copy already done.
    let read = |into: Option<&mut Vec<u8>>| -> Result<f64, Error> {
        map(gpu, &down, wgpu::MapMode::Read)?;
        let start = Instant::now();
        let view = down.get_mapped_range(..).map_err(mapped_error)?;
        match into {
            Some(reused) => reused.copy_from_slice(&view),
            None => drop(std::hint::black_box(view.to_vec())),
        }
        let t = start.elapsed().as_secs_f64();
        drop(view);
        down.unmap();
        Ok(t)
    };
    let mut reused = vec![0u8; n];
    let mut fresh_times = Vec::new();
    let mut reused_times = Vec::new();
    for _ in 0..=reps {
        fresh_times.push(read(None)?);
        reused_times.push(read(Some(&mut reused))?);
    }
    let med = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let (read_fresh, read_reused) = (med(fresh_times), med(reused_times));
    if reused != data {
        return Err(Error::Gpu {
            context: "the transfer measurement".into(),
            detail: "the bytes read back differ from those written".into(),
        });
    }
    let write_buffer = median(reps, || {
        gpu.write(&level, &data)?;
        gpu.submit([]);
        gpu.wait()
    })?;
    let staged_upload = median(reps, || {
        map(gpu, &up, wgpu::MapMode::Write)?;
        up.get_mapped_range_mut(..)
            .map_err(mapped_error)?
            .copy_from_slice(&data);
        up.unmap();
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&up, 0, &level, 0, bytes);
        gpu.submit([encoder.finish()]);
        gpu.wait()
    })?;
    let host_copy = median(reps, || {
        reused.copy_from_slice(std::hint::black_box(&data));
        Ok(())
    })?;
    let first_touch = median(reps, || {
        drop(std::hint::black_box(data.to_vec()));
        Ok(())
    })?;
    let case = format!("one level of {:.1} MB", bytes as f64 / 1e6);
    let gbs = |t: f64| bytes as f64 / t / 1e9;
    Ok(vec![
        Row::new(
            "transfers",
            &case,
            "GPU copy to a MAP_READ staging buffer",
            gbs(gpu_to_staging),
            "GB/s",
        ),
        Row::new(
            "transfers",
            &case,
            "host read of mapped staging, into a new Vec",
            gbs(read_fresh),
            "GB/s",
        ),
        Row::new(
            "transfers",
            &case,
            "host read of mapped staging, into a reused Vec",
            gbs(read_reused),
            "GB/s",
        ),
        Row::new(
            "transfers",
            &case,
            "upload by Queue::write_buffer",
            gbs(write_buffer),
            "GB/s",
        ),
        Row::new(
            "transfers",
            &case,
            "upload through a reused MAP_WRITE staging buffer",
            gbs(staged_upload),
            "GB/s",
        ),
        Row::new(
            "transfers",
            &case,
            "host memcpy into a reused Vec",
            gbs(host_copy),
            "GB/s",
        ),
        Row::new(
            "transfers",
            &case,
            "host copy into a new Vec (first touch)",
            gbs(first_touch),
            "GB/s",
        ),
    ])
}

/// Bytes moved (read + write) per second by a compute kernel that copies `bytes` with one
/// `vec4<f32>` per invocation, `reps` dispatches a submission: the bandwidth a step kernel can
/// hope for, where a `copy_buffer_to_buffer` may run on a slower engine.
pub fn kernel_copy_bandwidth(gpu: &Gpu, bytes: u64, reps: usize) -> Result<f64, Error> {
    use wgpu::BufferUsages as U;
    const SHADER: &str = "
        @group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
        @group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;
        @compute @workgroup_size(256)
        fn copy(@builtin(global_invocation_id) id: vec3<u32>,
                @builtin(num_workgroups) groups: vec3<u32>) {
            let i = id.x + id.y * groups.x * 256u;
            if (i < arrayLength(&src)) { dst[i] = src[i]; }
        }";
    let bytes = bytes / 16 * 16;
    let a = gpu.create_buffer("copy src", bytes, U::STORAGE | U::COPY_DST)?;
    let b = gpu.create_buffer("copy dst", bytes, U::STORAGE)?;
    let pipeline = gpu.compute_pipeline("copy kernel", SHADER, "copy", &[])?;
    let bind = gpu.device().create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("copy kernel"),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: a.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: b.as_entire_binding(),
            },
        ],
    });
    let groups = (bytes / 16).div_ceil(256);
    let max = u64::from(gpu.limits().max_compute_workgroups_per_dimension);
    let (gx, gy) = if groups <= max {
        (groups, 1)
    } else {
        (max, groups.div_ceil(max))
    };
    let t = median(5, || {
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        for _ in 0..reps {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(gx as u32, gy as u32, 1);
        }
        gpu.submit([encoder.finish()]);
        gpu.wait()
    })?;
    Ok(2.0 * bytes as f64 * reps as f64 / t)
}

/// Keeps the GPU copying for about `seconds`, so that the figures after it are taken at the
/// clocks a busy GPU runs at: an H100 idles at a few hundred MHz, and the first kernels of a
/// run measured up to twice as slow as the same kernels later (BENCHMARKS.md).
pub fn warm_up(gpu: &Gpu, seconds: f64) -> Result<(), Error> {
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        kernel_copy_bandwidth(gpu, 256 << 20, 10)?;
    }
    Ok(())
}

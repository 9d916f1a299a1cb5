//! Forward-step throughput of the acoustic kernels, and their effective bandwidth against a
//! plain buffer-to-buffer copy timed in the same process: a step must move 20 bytes a point (see
//! `acoustic::Problem`).
//!
//! A second group times a step with the CPML against a step with the sponge on the main job's
//! grid (200 × 70 cells and a 20-cell layer, order 8), alternating in one process, and prints
//! the ratios: the CPML's cost per forward step, and per adjoint step with its gradient.
//!
//! `cargo bench --bench propagate`. On a software adapter (lavapipe) the figures are a CPU
//! baseline; only a real GPU says anything about GPU speed. `GPUREVOLVE_BENCH_QUICK=1` runs the
//! smallest case only.

use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gpurevolve::acoustic::{
    AdjointInput, Boundary, BoundaryKind, Geometry, GpuAcoustic, Model, Problem, TimeAxis,
};
use gpurevolve::gpu::Gpu;

/// Steps per timed batch: one submission, then a wait.
const BATCH: usize = 10;

fn problem(shape: &[usize]) -> Problem {
    let model = Model::constant(shape, 10.0, 0, 2000.0).unwrap();
    let centre: Vec<f64> = model.extent().iter().map(|e| e / 2.0).collect();
    let geometry = Geometry::new(&model, vec![centre.clone()], vec![centre], 10.0).unwrap();
    let time = TimeAxis::new(&model, 8, BATCH + 1, None).unwrap();
    Problem::new(model, geometry, time, 8).unwrap()
}

/// The main job's grid and source depth with a 20-cell layer of `kind`.
fn main_job_problem(kind: BoundaryKind) -> Problem {
    let model = Model::constant(&[200, 70], 15.0, 20, 2000.0).unwrap();
    let extent = model.extent();
    let geometry = Geometry::new(
        &model,
        vec![vec![extent[0] / 2.0, 30.0]],
        vec![vec![extent[0] / 3.0, 30.0]],
        10.0,
    )
    .unwrap();
    let time = TimeAxis::new(&model, 8, BATCH + 1, None).unwrap();
    let boundary = Boundary::new(kind, 2000.0).unwrap();
    Problem::with_boundary(model, geometry, time, 8, boundary).unwrap()
}

/// Runs `BATCH` forward steps on rotating buffers and waits for them.
fn run_batch(gpu: &Gpu, acoustic: &GpuAcoustic<'_>, fields: &mut [wgpu::Buffer; 3]) {
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    for k in 0..BATCH {
        let [prev, cur, next] = &*fields;
        acoustic.encode_forward_step(&mut encoder, k, [prev, cur, next], false);
        fields.rotate_left(1);
    }
    gpu.submit([encoder.finish()]);
    gpu.wait().unwrap();
}

fn cases() -> Vec<Vec<usize>> {
    if std::env::var_os("GPUREVOLVE_BENCH_QUICK").is_some() {
        vec![vec![512, 512]]
    } else {
        vec![vec![512, 512], vec![2048, 2048], vec![128, 128, 128]]
    }
}

fn median_seconds(mut f: impl FnMut(), reps: usize) -> f64 {
    f(); // warm-up: pipelines, first-touch allocation
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn bench_propagate(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (see README: scripts/setup.sh)");
    let info = gpu.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?})",
        info.name, info.device_type, info.backend
    );
    let mut group = c.benchmark_group("forward step, order 8");
    group.sample_size(10);
    let mut report = Vec::new();
    for shape in cases() {
        let p = problem(&shape);
        let acoustic = GpuAcoustic::new(&gpu, &p).unwrap();
        let points = p.layout().extended_len() as u64;
        let mut fields = [
            acoustic.level("a").unwrap(),
            acoustic.level("b").unwrap(),
            acoustic.level("c").unwrap(),
        ];
        let name = format!("{shape:?}");
        group.throughput(Throughput::Elements(points * BATCH as u64));
        group.bench_function(&name, |b| {
            b.iter(|| run_batch(&gpu, &acoustic, &mut fields))
        });

        // Same process, same buffers: a step against a device-to-device copy of one field.
        let step = median_seconds(|| run_batch(&gpu, &acoustic, &mut fields), 7) / BATCH as f64;
        let bytes = acoustic.field_bytes();
        let copy = median_seconds(
            || {
                let mut encoder = gpu.device().create_command_encoder(&Default::default());
                for _ in 0..BATCH {
                    encoder.copy_buffer_to_buffer(&fields[0], 0, &fields[1], 0, bytes);
                }
                gpu.submit([encoder.finish()]);
                gpu.wait().unwrap();
            },
            7,
        ) / BATCH as f64;
        // A step must move 20 bytes a point (read u, u⁻, a, b; write u⁺); a copy moves 2 × bytes.
        let step_bw = 20.0 * points as f64 / step;
        let copy_bw = 2.0 * bytes as f64 / copy;
        report.push((name, points as f64 / step, step_bw, copy_bw));
    }
    group.finish();
    println!(
        "\n{:<16} {:>14} {:>14} {:>14} {:>8}",
        "grid", "Mpoints/s", "step GB/s", "copy GB/s", "ratio"
    );
    for (name, pps, step_bw, copy_bw) in report {
        println!(
            "{name:<16} {:>14.1} {:>14.2} {:>14.2} {:>7.0}%",
            pps / 1e6,
            step_bw / 1e9,
            copy_bw / 1e9,
            100.0 * step_bw / copy_bw
        );
    }
}

/// Runs `BATCH` adjoint steps (with the gradient) on rotating buffers and waits for them.
fn run_adjoint_batch(gpu: &Gpu, acoustic: &GpuAcoustic<'_>, b: &mut AdjointBuffers) {
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    for k in (0..BATCH).rev() {
        let [far, near, out] = &b.psi;
        let [u_prev, u, _] = &b.u;
        acoustic.encode_adjoint_step(
            &mut encoder,
            k,
            [u_prev, u],
            [far, near, out],
            AdjointInput::Given(&b.given),
            &b.grad,
            None,
        );
        b.psi.rotate_left(1);
    }
    gpu.submit([encoder.finish()]);
    gpu.wait().unwrap();
}

/// The levels a forward and an adjoint batch rotate through.
struct AdjointBuffers {
    u: [wgpu::Buffer; 3],
    psi: [wgpu::Buffer; 3],
    grad: wgpu::Buffer,
    given: wgpu::Buffer,
}

fn bench_cpml(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (see README: scripts/setup.sh)");
    let mut group = c.benchmark_group("forward step, main job grid, 20-cell layer");
    group.sample_size(10);
    let mut per_step = Vec::new();
    for kind in [BoundaryKind::Sponge, BoundaryKind::Cpml] {
        let p = main_job_problem(kind);
        let acoustic = GpuAcoustic::new(&gpu, &p).unwrap();
        let level = || acoustic.level("level").unwrap();
        let mut buffers = AdjointBuffers {
            u: [level(), level(), level()],
            psi: [level(), level(), level()],
            grad: acoustic.field("grad").unwrap(),
            given: acoustic.receiver_buffer("given").unwrap(),
        };
        group.bench_function(kind.name(), |b| {
            b.iter(|| run_batch(&gpu, &acoustic, &mut buffers.u))
        });
        per_step.push((acoustic, buffers));
    }
    group.finish();
    // Alternate the two in one loop so drift of the machine hits both alike.
    let mut times = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for _ in 0..25 {
        for (j, (acoustic, buffers)) in per_step.iter_mut().enumerate() {
            let start = Instant::now();
            run_batch(&gpu, acoustic, &mut buffers.u);
            times[0][j].push(start.elapsed().as_secs_f64() / BATCH as f64);
            let start = Instant::now();
            run_adjoint_batch(&gpu, acoustic, buffers);
            times[1][j].push(start.elapsed().as_secs_f64() / BATCH as f64);
        }
    }
    let median = |mut t: Vec<f64>| {
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    };
    let [forward, adjoint] = times.map(|pair| pair.map(median));
    for (name, [sponge, cpml]) in [("forward", forward), ("adjoint (with gradient)", adjoint)] {
        println!(
            "\nCPML / sponge per {name} step, main job grid: {:.2} ({:.3} ms / {:.3} ms, {})",
            cpml / sponge,
            1e3 * cpml,
            1e3 * sponge,
            gpu.adapter_info().name
        );
    }
}

criterion_group!(benches, bench_propagate, bench_cpml);
criterion_main!(benches);

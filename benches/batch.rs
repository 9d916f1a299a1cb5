//! Shots per second against the batch size `B` (shots stepped together in each dispatch).
//!
//! Two views, each printed as a table of ratios measured in one run:
//!
//! 1. **Steps.** A forward step and an adjoint step (with its gradient) of a batch of `B` shots,
//!    at a grid so small that a step is all overhead, at the main job's grid (200 × 70 cells,
//!    a 20-cell CPML, order 8) and at 2000 × 800: shot-steps per second, the counters
//!    (dispatches and submissions per shot-step), and the batched forward step's bandwidth
//!    against a copy of the same bytes (16 bytes a point: `u`, `u⁻`, `a` read, `u⁺` written).
//! 2. **Jobs.** Whole gradient jobs ([`gpurevolve::job`]) of 16 shots on the small grid, each
//!    batch size in the same checkpoint memory, and `--batch auto`'s choice: measured seconds
//!    per shot, and the modelled ones.
//!
//! `cargo bench --bench batch`. `GPUREVOLVE_BENCH_QUICK=1` runs the small grid only. On a
//! software adapter (lavapipe) only the ratios mean anything; absolute figures come from a GPU
//! (`scripts/gpu-lent.sh` runs this bench and the main job's grid with 64 shots).

use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gpurevolve::acoustic::{
    AdjointInput, Boundary, BoundaryKind, Geometry, GpuAcoustic, Model, Problem, TimeAxis,
};
use gpurevolve::gpu::Gpu;
use gpurevolve::job::{Batch, GradientJob, RunContext, RunPolicy};

/// Steps per timed submission.
const STEPS: usize = 10;

/// A grid of `shape` with a `nbl`-cell CPML, order 8, and `nt` samples; its source at `x`.
fn shot(shape: &[usize], nbl: usize, nt: usize, x: f64) -> Problem {
    let model = Model::constant(shape, 15.0, nbl, 2000.0).unwrap();
    let extent = model.extent();
    let depth = 30.0f64.min(extent[1] / 2.0);
    let receivers = (0..shape[0])
        .map(|i| vec![i as f64 * 15.0, depth])
        .collect();
    let geometry =
        Geometry::new(&model, vec![vec![x * extent[0], depth]], receivers, 10.0).unwrap();
    let time = TimeAxis::new(&model, 8, nt, None).unwrap();
    let boundary = Boundary::new(BoundaryKind::Cpml, 2000.0).unwrap();
    Problem::with_boundary(model, geometry, time, 8, boundary).unwrap()
}

/// The grids of the step view: name, shape, layer, and the largest batch timed.
fn grids() -> Vec<(&'static str, Vec<usize>, usize, usize)> {
    let small = ("16 x 16, nbl 4", vec![16, 16], 4, 64);
    if std::env::var_os("GPUREVOLVE_BENCH_QUICK").is_some() {
        vec![small]
    } else {
        vec![
            small,
            ("main job 200 x 70, nbl 20", vec![200, 70], 20, 64),
            ("2000 x 800, nbl 20", vec![2000, 800], 20, 8),
        ]
    }
}

/// `STEPS` forward steps of the batch on rotating levels, then a wait.
fn forward(gpu: &Gpu, acoustic: &GpuAcoustic<'_>, levels: &mut [wgpu::Buffer; 3]) {
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    for k in 0..STEPS {
        let [prev, cur, next] = &*levels;
        acoustic.encode_forward_step(&mut encoder, k, [prev, cur, next], true);
        levels.rotate_left(1);
    }
    gpu.submit([encoder.finish()]);
    gpu.wait().unwrap();
}

/// The buffers an adjoint step reads and writes.
struct Adjoint {
    u: [wgpu::Buffer; 2],
    psi: [wgpu::Buffer; 3],
    grad: wgpu::Buffer,
    given: wgpu::Buffer,
}

/// `STEPS` adjoint steps of the batch with their gradient, then a wait.
fn adjoint(gpu: &Gpu, acoustic: &GpuAcoustic<'_>, b: &mut Adjoint) {
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    for k in (0..STEPS).rev() {
        let [far, near, out] = &b.psi;
        let [u_prev, u] = &b.u;
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

/// One row of the step view.
struct StepRow {
    grid: &'static str,
    batch: usize,
    forward: f64,
    adjoint: f64,
    dispatches: f64,
    submissions: f64,
    step_bandwidth: f64,
    copy_bandwidth: f64,
}

fn bench_steps(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (see README: scripts/setup.sh)");
    let info = gpu.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?})",
        info.name, info.device_type, info.backend
    );
    let mut rows = Vec::new();
    for (grid, shape, nbl, largest) in grids() {
        let mut group = c.benchmark_group(format!("batched forward step, {grid}"));
        group.sample_size(10);
        let one = shot(&shape, nbl, STEPS + 2, 0.5);
        let points = one.layout().extended_len() as f64;
        let mut batch = 1;
        while batch <= largest {
            // Sources across the surface: each shot of the batch its own.
            let shots: Vec<Problem> = (0..batch)
                .map(|i| shot(&shape, nbl, STEPS + 2, (i as f64 + 0.5) / batch as f64))
                .collect();
            let refs: Vec<&Problem> = shots.iter().collect();
            let Ok(acoustic) = GpuAcoustic::batch(&gpu, &refs) else {
                println!("{grid}: a batch of {batch} does not fit this device; stopping there");
                break;
            };
            let level = || acoustic.level("level").unwrap();
            let mut levels = [level(), level(), level()];
            group.throughput(Throughput::Elements((batch * STEPS) as u64));
            group.bench_function(format!("B = {batch}"), |b| {
                b.iter(|| forward(&gpu, &acoustic, &mut levels))
            });
            let mut buffers = Adjoint {
                u: [level(), level()],
                psi: [level(), level(), level()],
                grad: level(),
                given: acoustic.receiver_buffer("given").unwrap(),
            };
            let (dispatched, counted) = (acoustic.dispatches(), gpu.counters());
            let forward_s = median_seconds(|| forward(&gpu, &acoustic, &mut levels), 5);
            let runs = 6.0; // the warm-up and five timed
            let dispatches = (acoustic.dispatches() - dispatched) as f64;
            let submissions = gpu.counters().since(&counted).submissions as f64;
            let adjoint_s = median_seconds(|| adjoint(&gpu, &acoustic, &mut buffers), 5);
            let bytes = acoustic.level_bytes();
            let copy = median_seconds(
                || {
                    let mut encoder = gpu.device().create_command_encoder(&Default::default());
                    for _ in 0..STEPS {
                        encoder.copy_buffer_to_buffer(&levels[0], 0, &levels[1], 0, bytes);
                    }
                    gpu.submit([encoder.finish()]);
                    gpu.wait().unwrap();
                },
                5,
            );
            let shot_steps = (batch * STEPS) as f64;
            rows.push(StepRow {
                grid,
                batch,
                forward: forward_s / STEPS as f64,
                adjoint: adjoint_s / STEPS as f64,
                dispatches: dispatches / (runs * shot_steps),
                submissions: submissions / (runs * shot_steps),
                step_bandwidth: 16.0 * points * batch as f64 * STEPS as f64 / forward_s,
                copy_bandwidth: 2.0 * bytes as f64 * STEPS as f64 / copy,
            });
            batch *= 2;
        }
        group.finish();
    }
    println!(
        "\n{:<28} {:>5} {:>14} {:>14} {:>9} {:>11} {:>12} {:>9}",
        "grid", "B", "shot-steps/s", "vs B = 1", "disp/ss", "submits/ss", "step GB/s", "of copy"
    );
    let mut base = 0.0;
    for r in &rows {
        // Shot-steps per second of a forward and an adjoint step together.
        let rate = r.batch as f64 / (r.forward + r.adjoint);
        if r.batch == 1 {
            base = rate;
        }
        println!(
            "{:<28} {:>5} {:>14.0} {:>13.2}x {:>9.3} {:>11.4} {:>12.2} {:>8.0}%",
            r.grid,
            r.batch,
            rate,
            rate / base,
            r.dispatches,
            r.submissions,
            r.step_bandwidth / 1e9,
            100.0 * r.step_bandwidth / r.copy_bandwidth
        );
    }
}

/// Whole jobs of 16 shots on the small grid, every batch size in the memory of 16 one-shot
/// snapshots, then `auto`.
fn bench_jobs(_: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (see README: scripts/setup.sh)");
    let gpus = [gpu];
    let shots: Vec<Problem> = (0..16)
        .map(|i| shot(&[16, 16], 4, 201, (i as f64 + 0.5) / 16.0))
        .collect();
    let observed: Vec<Vec<f64>> = shots
        .iter()
        .map(|s| vec![0.0; s.time().nt * s.receivers().points])
        .collect();
    println!(
        "\njobs, 16 shots of 16 x 16, 200 steps, the memory of 16 one-shot snapshots\n{:>6} {:>8} {:>14} {:>10} {:>14} {:>10}",
        "B", "chosen", "forward/batch", "s/shot", "shots/s vs 1", "model s/shot"
    );
    let mut base = 0.0;
    for batch in [
        Batch::Shots(1),
        Batch::Shots(2),
        Batch::Shots(4),
        Batch::Shots(8),
        Batch::Shots(16),
        Batch::Auto,
    ] {
        let policy = RunPolicy {
            snaps: Some(16),
            batch,
            ..RunPolicy::default()
        };
        let job = GradientJob::new(shots.clone(), observed.clone(), policy).unwrap();
        let plan = job.plan(&gpus[0]).unwrap();
        for o in &plan.batch_options {
            println!(
                "    auto weighs B = {:>3}: {:>6} forward steps a batch, modelled {:.4} s a shot",
                o.batch, o.forward_steps, o.seconds_per_shot
            );
        }
        let result = job.run(&plan, &gpus, None, |_, _| {}).unwrap();
        let s = job
            .summary(&plan, &result, RunContext::of_devices(&gpus))
            .unwrap();
        if batch == Batch::Shots(1) {
            base = s.measured_seconds_per_shot;
        }
        println!(
            "{:>6} {:>8} {:>14} {:>10.4} {:>13.2}x {:>10}",
            batch.name(),
            s.batch,
            s.forward_steps.first().copied().unwrap_or(0),
            s.measured_seconds_per_shot,
            base / s.measured_seconds_per_shot,
            s.modelled_seconds_per_shot
                .map_or("-".into(), |m| format!("{m:.4}"))
        );
    }
}

criterion_group!(benches, bench_steps, bench_jobs);
criterion_main!(benches);

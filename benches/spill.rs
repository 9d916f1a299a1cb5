//! What spilling checkpoints to host memory costs: wall time with half the checkpoints in host
//! memory against all on the GPU, and how long the host was blocked on the copies.
//!
//! `cargo bench --bench spill`. `GPUREVOLVE_BENCH_QUICK=1` uses n = 300.

mod common;

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use gpurevolve::acoustic::{AcousticOperator, Problem};
use gpurevolve::engine::{Revolver, RevolverOptions, RunStats};
use gpurevolve::gpu::Gpu;
use gpurevolve::schedule::Revolve;

const SNAPS: u64 = 20;

fn run(gpu: &Gpu, problem: &Problem, observed: &[f64], device_budget: Option<u64>) -> RunStats {
    let n = (problem.time().nt - 1) as u64;
    let op = AcousticOperator::new(gpu, problem, observed).unwrap();
    let options = RevolverOptions {
        device_budget,
        ..RevolverOptions::default()
    };
    let mut revolver = Revolver::new(gpu, op, Revolve::new(n, SNAPS).unwrap(), options).unwrap();
    revolver.apply_reverse().unwrap()
}

fn bench_spill(c: &mut Criterion) {
    let n = if std::env::var_os("GPUREVOLVE_BENCH_QUICK").is_some() {
        300
    } else {
        1000
    };
    let gpu = Gpu::new().expect("a GPU adapter (see README: scripts/setup.sh)");
    println!("adapter: {}", gpu.adapter_info().name);
    let (problem, observed) = common::one_shot(&gpu, 96, n + 1);
    let state = 2 * 4 * problem.layout().len() as u64;
    let half = Some(SNAPS / 2 * state);
    let mut group = c.benchmark_group(format!("revolve n={n} s={SNAPS}"));
    group.sample_size(10);
    group.bench_function("all on GPU", |b| {
        b.iter(|| run(&gpu, &problem, &observed, None))
    });
    group.bench_function("half spilled", |b| {
        b.iter(|| run(&gpu, &problem, &observed, half))
    });
    group.finish();

    // One process: medians of 3.
    let time = |budget| {
        let mut t: Vec<(f64, RunStats)> = (0..3)
            .map(|_| {
                let s = Instant::now();
                let stats = run(&gpu, &problem, &observed, budget);
                (s.elapsed().as_secs_f64(), stats)
            })
            .collect();
        t.sort_by(|a, b| a.0.total_cmp(&b.0));
        t[1]
    };
    let (all, _) = time(None);
    let (spilled, stats) = time(half);
    println!(
        "\nall on GPU {all:.3} s; half spilled {spilled:.3} s; ratio {:.3}; {} saves and {} restores \
         through the host, {:.1} MB out, {:.1} MB back; host blocked on copies {:.3} s ({:.0} % of the run)",
        spilled / all,
        stats.host_saves,
        stats.host_restores,
        stats.spilled_bytes as f64 / 1e6,
        stats.restored_bytes as f64 / 1e6,
        stats.transfer_seconds,
        100.0 * stats.transfer_seconds / spilled
    );
}

criterion_group!(benches, bench_spill);
criterion_main!(benches);

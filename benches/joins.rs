//! What joins save in wall time: the level schedule with joins
//! ([`LevelOptimal::with_joins`](gpurevolve::schedule::LevelOptimal::with_joins)) against the
//! same schedule without, one acoustic shot (64² cells, order 8, `n = 2000`) from rest, in
//! the memory of `s ∈ {5, 10, 20}` two-level snapshots (figures in BENCHMARKS.md).
//!
//! `cargo bench --bench joins`. Besides criterion's timings, prints one table measured in one
//! process, each entry the median of 3 runs: forward steps and wall time of each, and their
//! ratio. `GPUREVOLVE_BENCH_QUICK=1` uses n = 300.

mod common;

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use gpurevolve::acoustic::{AcousticOperator, Problem};
use gpurevolve::engine::{Revolver, RevolverOptions};
use gpurevolve::gpu::Gpu;
use gpurevolve::schedule::LevelOptimal;

/// One checkpointed gradient; returns its forward steps.
fn gradient(gpu: &Gpu, problem: &Problem, observed: &[f64], schedule: LevelOptimal) -> u64 {
    let operator = AcousticOperator::new(gpu, problem, observed).unwrap();
    let mut revolver = Revolver::new(gpu, operator, schedule, RevolverOptions::default()).unwrap();
    let stats = revolver.apply_reverse().unwrap();
    revolver.operator().finish().unwrap();
    stats.forward_steps
}

fn bench_joins(c: &mut Criterion) {
    let n = common::steps(2000);
    let gpu = common::gpu();
    let (problem, observed) = common::one_shot(&gpu, 64, n + 1);
    let steps = n as u64;
    let plan = |s: u64, joins: bool| {
        let whole = LevelOptimal::from_rest(steps, 2 * s, 2).unwrap();
        if joins { whole.with_joins() } else { whole }
    };

    let mut group = c.benchmark_group(format!("levels n={n}"));
    group.sample_size(10);
    for joins in [false, true] {
        group.bench_function(format!("20 levels, joins {joins}"), |b| {
            b.iter(|| gradient(&gpu, &problem, &observed, plan(10, joins)))
        });
    }
    group.finish();

    println!(
        "\n{:>4} {:>14} {:>14} | {:>9} {:>9} | {:>12}",
        "s", "steps whole", "steps joins", "whole s", "joins s", "joins/whole"
    );
    for s in [5u64, 10, 20] {
        let timed = |joins: bool| {
            let mut runs: Vec<(f64, u64)> = (0..3)
                .map(|_| {
                    let start = Instant::now();
                    let forward = gradient(&gpu, &problem, &observed, plan(s, joins));
                    (start.elapsed().as_secs_f64(), forward)
                })
                .collect();
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            runs[1]
        };
        let (whole, joined) = (timed(false), timed(true));
        println!(
            "{s:>4} {:>14} {:>14} | {:>9.3} {:>9.3} | {:>12.3}",
            whole.1,
            joined.1,
            whole.0,
            joined.0,
            joined.0 / whole.0
        );
    }
}

criterion_group!(benches, bench_joins);
criterion_main!(benches);

//! What checkpointing costs: wall time of a checkpointed gradient against the store-all
//! gradient, for `n = 2000` steps and the memory of `s ∈ {5, 10, 20, 50}` two-level snapshots
//! (figures in BENCHMARKS.md).
//!
//! `cargo bench --bench checkpointing`. Besides criterion's timings, prints one table measured
//! in one process, each entry the median of 3 runs, for three ways to use the same memory:
//!
//! - *classic*: Revolve's schedule as Revolve counts it, every reverse recomputing its step
//!   (`RevolverOptions::recompute_in_reverse`): `n + p` forward steps;
//! - *revolve*: the same schedule with the state-only acoustic adjoint: `p + 1`;
//! - *levels*: [`LevelOptimal`](gpurevolve::schedule::LevelOptimal) within `2s` levels.
//!
//! Each is given as total wall time over `GpuAcoustic::gradient_store_all` (every field kept,
//! `n − 1` forward steps), and the reverse sweeps of *levels* against those of *classic*.
//! `GPUREVOLVE_BENCH_QUICK=1` uses n = 300.

mod common;

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use gpurevolve::acoustic::GpuAcoustic;
use gpurevolve::engine::RevolverOptions;
use gpurevolve::fwi::{Checkpointing, gradient, gradient_with};

fn seconds(mut f: impl FnMut(), reps: usize) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn bench_checkpointing(c: &mut Criterion) {
    let n = common::steps(2000);
    let gpu = common::gpu();
    let (problem, observed) = common::one_shot(&gpu, 64, n + 1);
    let shots = [problem.clone()];
    let obs = [observed.clone()];
    let run = |how: Checkpointing| gradient(&gpu, &shots, &obs, how, |_, _| {}).unwrap();
    let store_all = || {
        GpuAcoustic::new(&gpu, &problem)
            .unwrap()
            .gradient_store_all(&observed)
            .unwrap();
    };

    let mut group = c.benchmark_group(format!("gradient n={n}"));
    group.sample_size(10);
    group.bench_function("store-all", |b| b.iter(store_all));
    let snaps = [5u64, 10, 20, 50];
    for s in snaps {
        group.bench_function(format!("revolve s={s}"), |b| {
            b.iter(|| run(Checkpointing::Snapshots(s)))
        });
        group.bench_function(format!("levels {}", 2 * s), |b| {
            b.iter(|| run(Checkpointing::Levels(2 * s)))
        });
    }
    group.finish();

    // One process: the store-all reference, then each way to use the memory.
    let t_store_all = seconds(store_all, 3);
    println!("\nstore-all (GpuAcoustic): {t_store_all:.3} s for n = {n}");
    println!(
        "{:>4} {:>8} {:>8} {:>8} | {:>9} {:>9} {:>9} | {:>17}",
        "s", "classic", "revolve", "levels", "classic", "revolve", "levels", "levels/classic rev"
    );
    for s in snaps {
        let timed = |how: Checkpointing, recompute: bool| {
            let options = RevolverOptions {
                recompute_in_reverse: recompute,
                ..RevolverOptions::default()
            };
            let mut runs: Vec<(f64, f64, u64)> = (0..3)
                .map(|_| {
                    let start = Instant::now();
                    let g =
                        gradient_with(&gpu, &shots, &obs, how.clone(), options.clone(), |_, _| {})
                            .unwrap();
                    let shot = &g.shots[0];
                    (
                        start.elapsed().as_secs_f64(),
                        shot.reverse_seconds,
                        shot.forward_steps,
                    )
                })
                .collect();
            runs.sort_by(|a, b| a.0.total_cmp(&b.0));
            runs[1]
        };
        let classic = timed(Checkpointing::Snapshots(s), true);
        let revolve = timed(Checkpointing::Snapshots(s), false);
        let levels = timed(Checkpointing::Levels(2 * s), false);
        println!(
            "{s:>4} {:>8} {:>8} {:>8} | {:>9.3} {:>9.3} {:>9.3} | {:>17.3}",
            classic.2,
            revolve.2,
            levels.2,
            classic.0 / t_store_all,
            revolve.0 / t_store_all,
            levels.0 / t_store_all,
            levels.1 / classic.1
        );
    }
}

criterion_group!(benches, bench_checkpointing);
criterion_main!(benches);

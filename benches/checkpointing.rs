//! What checkpointing costs: wall time of a Revolve gradient against the store-all gradient,
//! for `n = 2000` steps and `s ∈ {5, 10, 20, 50}` snapshots (figures in BENCHMARKS.md).
//!
//! `cargo bench --bench checkpointing`. Besides criterion's timings, prints one table measured
//! in one process: the measured ratio, the step-count ratio `(2n + p)/2n`, and the ratio
//! predicted from the measured cost of a forward step `t_f` and of an adjoint step `t_a`,
//! `((n + p)·t_f + n·t_a) / ((n − 1)·t_f + n·t_a)` — equal to the measured one when checkpoint
//! handling costs nothing beyond the recomputation.
//!
//! A second baseline runs the store-all *schedule* through the same `Revolver`: the same
//! kernels, bind groups and submissions, so the ratio to it isolates what Revolve's schedule
//! costs. The engine recomputes the recording step of every reverse, so that run evaluates
//! `2n − 1` forward steps and the matching step-count ratio is `(2n + p)/(3n − 1)`. Its cost
//! model takes an advance's time `t_adv` from [`calibrate`] (advances sample no traces) and a
//! reverse's (recording step and adjoint) from that run, `t_rev = (T − (n − 1)·t_adv)/n`:
//! Revolve should take `p·t_adv + n·t_rev`.
//! `GPUREVOLVE_BENCH_QUICK=1` uses n = 300.

mod common;

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use gpurevolve::acoustic::{AcousticOperator, GpuAcoustic};
use gpurevolve::engine::calibrate;
use gpurevolve::fwi::{Checkpointing, gradient};
use gpurevolve::gpu::Gpu;
use gpurevolve::schedule::min_advances;

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
    let n = if std::env::var_os("GPUREVOLVE_BENCH_QUICK").is_some() {
        300
    } else {
        2000
    };
    let gpu = Gpu::new().expect("a GPU adapter (see README: scripts/setup.sh)");
    println!("adapter: {}", gpu.adapter_info().name);
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
    }
    group.finish();

    // One process: step costs, then the runs.
    let acoustic = GpuAcoustic::new(&gpu, &problem).unwrap();
    let t_forward = seconds(|| drop(acoustic.forward(false).unwrap()), 3) / n as f64;
    let t_store_all = seconds(store_all, 3);
    let t_engine_store_all = seconds(|| drop(run(Checkpointing::StoreAll)), 3);
    let mut probe = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let mut advances: Vec<f64> = (0..3)
        .map(|_| calibrate(&gpu, &mut probe, 200).unwrap().forward)
        .collect();
    advances.sort_by(f64::total_cmp);
    let t_advance = advances[1];
    let t_reverse = (t_engine_store_all - (n - 1) as f64 * t_advance) / n as f64;
    // The store-all run is (n − 1) forward steps plus n adjoint steps (fields are stored, so
    // the recording steps are not recomputed).
    let t_adjoint = (t_store_all - (n - 1) as f64 * t_forward) / n as f64;
    println!(
        "\nforward step {:.3} ms, adjoint step {:.3} ms (from the store-all run)",
        t_forward * 1e3,
        t_adjoint * 1e3
    );
    println!(
        "store-all: {t_store_all:.3} s by GpuAcoustic, {t_engine_store_all:.3} s through the Revolver; \
         advance {:.3} ms, reverse {:.3} ms (from that run)",
        t_advance * 1e3,
        t_reverse * 1e3
    );
    println!(
        "{:>4} {:>8} {:>10} {:>12} {:>12} {:>10} | {:>10} {:>14} {:>12} {:>10}",
        "s",
        "p",
        "measured",
        "(2n+p)/2n",
        "cost model",
        "excess",
        "vs engine",
        "(2n+p)/(3n-1)",
        "cost model",
        "excess"
    );
    for s in snaps {
        let t = seconds(|| drop(run(Checkpointing::Snapshots(s))), 3);
        let p = min_advances(n as u64, s).unwrap() as f64;
        let nf = n as f64;
        let counts = (2.0 * nf + p) / (2.0 * nf);
        let model =
            ((nf + p) * t_forward + nf * t_adjoint) / ((nf - 1.0) * t_forward + nf * t_adjoint);
        let measured = t / t_store_all;
        let engine = t / t_engine_store_all;
        let engine_counts = (2.0 * nf + p) / (3.0 * nf - 1.0);
        let engine_model = (p * t_advance + nf * t_reverse) / t_engine_store_all;
        println!(
            "{s:>4} {p:>8} {measured:>10.3} {counts:>12.3} {model:>12.3} {:>9.1}% | {engine:>10.3} {engine_counts:>14.3} {engine_model:>12.3} {:>9.1}%",
            100.0 * (measured / model - 1.0),
            100.0 * (engine / engine_model - 1.0)
        );
    }
}

criterion_group!(benches, bench_checkpointing);
criterion_main!(benches);

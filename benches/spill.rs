//! What spilling checkpoints to host memory costs: wall time with half the checkpoints in host
//! memory against all on the GPU, with transfers overlapped (spills read when the GPU has run
//! them, restores uploaded ahead) and blocking (the queue drained at every spill), and how
//! long the host waited on the GPU for copies.
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

fn run(gpu: &Gpu, problem: &Problem, observed: &[f64], options: RevolverOptions) -> RunStats {
    let n = (problem.time().nt - 1) as u64;
    let op = AcousticOperator::new(gpu, problem, observed).unwrap();
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
    let state = 2 * problem.level_bytes();
    let half = |overlap_transfers| RevolverOptions {
        device_budget: Some(SNAPS / 2 * state),
        overlap_transfers,
        ..RevolverOptions::default()
    };
    let configs = [
        ("all on GPU", RevolverOptions::default()),
        ("half spilled, overlapped", half(true)),
        ("half spilled, blocking", half(false)),
    ];
    let mut group = c.benchmark_group(format!("revolve n={n} s={SNAPS}"));
    group.sample_size(10);
    for (name, options) in configs {
        group.bench_function(name, |b| b.iter(|| run(&gpu, &problem, &observed, options)));
    }
    group.finish();

    // One process, interleaved so drift hits every configuration alike: medians of 5.
    let mut times: [Vec<(f64, RunStats)>; 3] = Default::default();
    for _ in 0..5 {
        for (t, (_, options)) in times.iter_mut().zip(configs) {
            let start = Instant::now();
            let stats = run(&gpu, &problem, &observed, options);
            t.push((start.elapsed().as_secs_f64(), stats));
        }
    }
    let [all, overlapped, blocking] = times.map(|mut t| {
        t.sort_by(|a, b| a.0.total_cmp(&b.0));
        t[2]
    });
    let stats = overlapped.1;
    println!(
        "\n{} saves and {} restores through the host ({} uploaded ahead), {:.1} MB out, {:.1} MB back",
        stats.host_saves,
        stats.host_restores,
        stats.prefetched_restores,
        stats.spilled_bytes as f64 / 1e6,
        stats.restored_bytes as f64 / 1e6,
    );
    for (name, (seconds, stats)) in [
        ("all on GPU", all),
        ("half spilled, overlapped", overlapped),
        ("half spilled, blocking", blocking),
    ] {
        println!(
            "{name:>26}: {seconds:.3} s, ratio to all on GPU {:.3}; host in transfers {:.3} s, \
             of which waiting for the GPU {:.3} s",
            seconds / all.0,
            stats.transfer_seconds,
            stats.transfer_wait_seconds
        );
    }
    // Host time is not GPU idle time: while the host waits for one submission, later ones
    // keep the GPU busy. Only the wall times say what the transfers cost.
    let extra = |t: f64| t - all.0;
    let (over, block) = (extra(overlapped.0), extra(blocking.0));
    if block > 0.02 * all.0 {
        println!(
            "spilling adds {over:.3} s overlapped and {block:.3} s blocking: overlapping hides {:.0} % of it",
            100.0 * (1.0 - over / block)
        );
    } else {
        println!(
            "spilling adds {over:.3} s overlapped and {block:.3} s blocking: within 2 % of the all-on-GPU run, too little to say what overlapping hides"
        );
    }
}

criterion_group!(benches, bench_spill);
criterion_main!(benches);

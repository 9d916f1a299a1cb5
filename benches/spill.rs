//! What spilling checkpoints to host memory costs: wall time with half the checkpoints in host
//! memory against all on the GPU: in host buffers (the default where the device has them),
//! and through staging with transfers overlapped (spills read when the GPU has run them,
//! restores uploaded ahead) and blocking (the queue drained at every spill), and how long
//! the host waited on the GPU for copies.
//!
//! `cargo bench --bench spill`. `GPUREVOLVE_BENCH_QUICK=1` uses n = 300.

mod common;

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use gpurevolve::acoustic::{AcousticOperator, Problem};
use gpurevolve::engine::{Revolver, RevolverOptions, RunStats};
use gpurevolve::gpu::Gpu;
use gpurevolve::schedule::{Revolve, Tier};

const SNAPS: u64 = 20;

fn run(gpu: &Gpu, problem: &Problem, observed: &[f64], options: &RevolverOptions) -> RunStats {
    let n = (problem.time().nt - 1) as u64;
    let op = AcousticOperator::new(gpu, problem, observed).unwrap();
    let schedule = Revolve::new(n, SNAPS).unwrap();
    let mut revolver = Revolver::new(gpu, op, schedule, options.clone()).unwrap();
    revolver.apply_reverse().unwrap()
}

fn bench_spill(c: &mut Criterion) {
    let n = common::steps(1000);
    let gpu = common::gpu();
    let (problem, observed) = common::one_shot(&gpu, 96, n + 1);
    let state = 2 * problem.level_bytes();
    let half = |host_buffers, overlap_transfers| RevolverOptions {
        device_budget: Some(SNAPS / 2 * state),
        host_buffers,
        overlap_transfers,
        ..RevolverOptions::default()
    };
    let configs = [
        ("all on GPU", RevolverOptions::default()),
        ("half spilled, host buffers", half(true, true)),
        ("half spilled, overlapped", half(false, true)),
        ("half spilled, blocking", half(false, false)),
    ];
    let mut group = c.benchmark_group(format!("revolve n={n} s={SNAPS}"));
    group.sample_size(10);
    for (name, options) in &configs {
        group.bench_function(*name, |b| {
            b.iter(|| run(&gpu, &problem, &observed, options))
        });
    }
    group.finish();

    // One process, interleaved so drift hits every configuration alike: medians of 5.
    let mut times: [Vec<(f64, RunStats)>; 4] = Default::default();
    for _ in 0..5 {
        for (t, (_, options)) in times.iter_mut().zip(&configs) {
            let start = Instant::now();
            let stats = run(&gpu, &problem, &observed, options);
            t.push((start.elapsed().as_secs_f64(), stats));
        }
    }
    let [all, host_buffers, overlapped, blocking] = times.map(|mut t| {
        t.sort_by(|a, b| a.0.total_cmp(&b.0));
        t.swap_remove(2)
    });
    let stats = &overlapped.1;
    println!(
        "\n{} saves and {} restores through the host ({} uploaded ahead), {:.1} MB out, {:.1} MB back",
        stats.tier(Tier::HOST).saves,
        stats.tier(Tier::HOST).restores,
        stats.tier(Tier::HOST).reads_ahead,
        stats.total(|t| t.bytes_out) as f64 / 1e6,
        stats.total(|t| t.bytes_in) as f64 / 1e6,
    );
    for (name, (seconds, stats)) in [
        ("all on GPU", &all),
        ("half spilled, host buffers", &host_buffers),
        ("half spilled, overlapped", &overlapped),
        ("half spilled, blocking", &blocking),
    ] {
        println!(
            "{name:>26}: {seconds:.3} s, ratio to all on GPU {:.3}; host in transfers {:.3} s, \
             of which waiting for the GPU {:.3} s",
            seconds / all.0,
            stats.transfer_seconds,
            stats.tiers.iter().map(|t| t.wait_seconds).sum::<f64>()
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

/// The disk tier against host memory alone, in one process: a quarter of the checkpoints on
/// the GPU, a quarter in host memory and the rest in files (or all the rest in host memory);
/// the disk thread's write and read bandwidth against a sequential write (synced) and read
/// of one file of the same bytes in the same directory. `GPUREVOLVE_BENCH_DISK` names the
/// directory (default: the system's temporary directory).
fn bench_disk(_c: &mut Criterion) {
    let n = common::steps(1000);
    let gpu = common::gpu();
    let (problem, observed) = common::one_shot(&gpu, 96, n + 1);
    let state = 2 * problem.level_bytes();
    let dir = std::env::var_os("GPUREVOLVE_BENCH_DISK")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let host_only = RevolverOptions {
        device_budget: Some(SNAPS / 4 * state),
        ..RevolverOptions::default()
    };
    let with_disk = RevolverOptions {
        host_budget: Some(SNAPS / 4 * state),
        disk: Some(dir.clone()),
        ..host_only.clone()
    };
    let mut times = [Vec::new(), Vec::new()];
    let mut disk_stats = RunStats::default();
    for _ in 0..3 {
        for (t, options) in times.iter_mut().zip([&host_only, &with_disk]) {
            let start = Instant::now();
            let stats = run(&gpu, &problem, &observed, options);
            t.push(start.elapsed().as_secs_f64());
            if options.disk.is_some() {
                disk_stats = stats;
            }
        }
    }
    let [host, disk] = times.map(|mut t| {
        t.sort_by(f64::total_cmp);
        t[1]
    });
    let s = disk_stats;
    let gbs = |bytes: u64, seconds: f64| bytes as f64 / seconds.max(1e-12) / 1e9;
    // The directory's own sequential bandwidth, for scale: one file of the same bytes.
    let bytes = s.tier(Tier::DISK).bytes_written.max(1 << 20);
    let file = dir.join(format!("gpurevolve-bench-{}", std::process::id()));
    let data = vec![0x5au8; bytes as usize];
    let write = |sync: bool| {
        use std::io::Write;
        let start = Instant::now();
        let mut f = std::fs::File::create(&file).unwrap();
        f.write_all(&data).unwrap();
        if sync {
            f.sync_data().unwrap();
        }
        gbs(bytes, start.elapsed().as_secs_f64())
    };
    let (seq_write_synced, seq_write) = (write(true), write(false));
    let start = Instant::now();
    let back = std::fs::read(&file).unwrap();
    let seq_read = gbs(back.len() as u64, start.elapsed().as_secs_f64());
    let _ = std::fs::remove_file(&file);
    println!(
        "\ndisk tier in {}: {} saves, {} restores ({} read ahead), {:.1} MB written, {:.1} MB read",
        dir.display(),
        s.tier(Tier::DISK).saves,
        s.tier(Tier::DISK).restores,
        s.tier(Tier::DISK).reads_ahead,
        s.tier(Tier::DISK).bytes_written as f64 / 1e6,
        s.tier(Tier::DISK).bytes_read as f64 / 1e6
    );
    println!(
        "disk thread: write {:.2} GB/s, read {:.2} GB/s; the same directory, one file: write {seq_write:.2} GB/s ({seq_write_synced:.2} synced), read {seq_read:.2} GB/s",
        gbs(
            s.tier(Tier::DISK).bytes_written,
            s.tier(Tier::DISK).write_seconds
        ),
        gbs(
            s.tier(Tier::DISK).bytes_read,
            s.tier(Tier::DISK).read_seconds
        )
    );
    println!(
        "wall, median of 3: host only {host:.3} s, with the disk tier {disk:.3} s: ratio {:.3}",
        disk / host
    );
}

criterion_group!(benches, bench_spill, bench_disk);
criterion_main!(benches);

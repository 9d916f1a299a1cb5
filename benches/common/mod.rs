//! The one-shot problem the engine benchmarks share, their device and their step counts.

use gpurevolve::acoustic::{Geometry, GpuAcoustic, Model, Problem, TimeAxis};
use gpurevolve::gpu::Gpu;

/// An `n × n` grid (10 m cells, 8 absorbing), order 4, `nt` samples: a constant starting model,
/// and data observed on `gpu` over a faster circular inclusion, one source at the centre of the
/// surface and a receiver in every column.
pub fn one_shot(gpu: &Gpu, n: usize, nt: usize) -> (Problem, Vec<f64>) {
    let shape = [n, n];
    let extent = (n - 1) as f64 * 10.0;
    let truth = Model::circle(&shape, 10.0, 8, 2000.0, 2300.0, 0.15 * extent).unwrap();
    let start = Model::constant(&shape, 10.0, 8, 2000.0).unwrap();
    let geometry = |m: &Model| {
        let receivers = (0..n).map(|i| vec![i as f64 * 10.0, 20.0]).collect();
        Geometry::new(m, vec![vec![extent / 2.0, 20.0]], receivers, 15.0).unwrap()
    };
    let time = TimeAxis::new(&truth, 4, nt, None).unwrap();
    let p_true = Problem::new(truth.clone(), geometry(&truth), time, 4).unwrap();
    let observed = GpuAcoustic::new(gpu, &p_true)
        .unwrap()
        .forward(false)
        .unwrap()
        .traces;
    (
        Problem::new(start.clone(), geometry(&start), time, 4).unwrap(),
        observed,
    )
}

/// `full` steps, or 300 with `GPUREVOLVE_BENCH_QUICK` set.
pub fn steps(full: usize) -> usize {
    if std::env::var_os("GPUREVOLVE_BENCH_QUICK").is_some() {
        300
    } else {
        full
    }
}

/// The best adapter, named on stdout (a benchmark's figures mean nothing without it).
pub fn gpu() -> Gpu {
    let gpu = Gpu::new().expect("a GPU adapter (see README: scripts/setup.sh)");
    println!("adapter: {}", gpu.adapter_info().name);
    gpu
}

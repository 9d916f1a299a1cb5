//! Shared test helpers.

use gpurevolve::acoustic::{Boundary, BoundaryKind, CpuTwin, Geometry, Model, Problem, TimeAxis};
use gpurevolve::gpu::{Gpu, GpuOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Whether the tests run under CI, where a missing GPU adapter is a failure, not a skip.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The GPU for a test. Without an adapter: under CI the test fails; elsewhere it is skipped
/// with a message that cannot be missed.
#[allow(dead_code)] // each test crate uses its own subset of the helpers
pub fn gpu() -> Option<Gpu> {
    gpu_with(&GpuOptions::default())
}

/// As [`gpu`], opened with `options`.
#[allow(dead_code)] // each test crate uses its own subset of the helpers
pub fn gpu_with(options: &GpuOptions) -> Option<Gpu> {
    match Gpu::with_options(options) {
        Ok(gpu) => Some(gpu),
        Err(e) if under_ci() => panic!("CI is set and no GPU adapter is usable: {e}"),
        Err(e) => {
            // Straight to the stderr handle: libtest captures `eprintln!`, and a skip must show.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "\n!!!!! SKIPPING GPU TEST: {e}\n");
            None
        }
    }
}

/// Runs test `name`'s body `f` on a thread of its own and returns what it returns; if it has
/// not finished within `seconds`, prints `TEST HUNG: <name> after N s` (with the thread's name)
/// straight to stderr and ends the whole test process with status 1, so that a test that
/// hangs (a device that stopped answering) fails loudly instead of stalling CI. A panic in
/// `f` is passed on as the test's own.
#[allow(dead_code)] // each test crate uses its own subset of the helpers
pub fn within<T: Send>(seconds: u64, name: &str, f: impl FnOnce() -> T + Send) -> T {
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;
    let thread_name = format!("watched {name}");
    std::thread::scope(|scope| {
        let (done, finished) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name(thread_name.clone())
            .spawn_scoped(scope, move || {
                let out = f();
                let _ = done.send(());
                out
            })
            .expect("spawn the test's thread");
        match finished.recv_timeout(Duration::from_secs(seconds)) {
            // Finished, or panicked (the sender dropped): the join says which.
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Straight to the stderr handle: libtest captures `eprintln!`.
                let _ = writeln!(
                    std::io::stderr(),
                    "\nTEST HUNG: {name} after {seconds} s (thread `{thread_name}`); ending the \
                     test process\n"
                );
                std::process::exit(1);
            }
        }
    })
}

/// A random model with random source and receiver positions: a depth trend, random plane-wave
/// modes, and independent per-cell noise of up to 200 m/s (grid-scale roughness, the hardest
/// case for float32).
#[allow(dead_code)]
pub fn random_problem(shape: &[usize], nbl: usize, order: usize, nt: usize, seed: u64) -> Problem {
    random_problem_with(shape, nbl, order, nt, seed, BoundaryKind::Sponge)
}

/// As [`random_problem`], with the absorbing layer of `kind` tuned for the model.
#[allow(dead_code)]
pub fn random_problem_with(
    shape: &[usize],
    nbl: usize,
    order: usize,
    nt: usize,
    seed: u64,
    kind: BoundaryKind,
) -> Problem {
    let mut rng = StdRng::seed_from_u64(seed);
    let modes: Vec<[f64; 5]> = (0..4)
        .map(|_| {
            let k = std::f64::consts::TAU / rng.random_range(100.0..400.0);
            let angle: f64 = rng.random_range(0.0..std::f64::consts::PI);
            let tilt: f64 = rng.random_range(-1.0..1.0);
            [
                k * angle.cos(),
                k * tilt,
                k * angle.sin(),
                rng.random_range(0.0..6.3),
                rng.random_range(20.0..80.0),
            ]
        })
        .collect();
    let mut rng_cell = StdRng::seed_from_u64(seed + 1000);
    let model = Model::from_fn(shape, 10.0, nbl, |x, y, z| {
        let waves: f64 = modes
            .iter()
            .map(|m| m[4] * (m[0] * x + m[1] * y + m[2] * z + m[3]).sin())
            .sum();
        2000.0 + 0.5 * z + waves + rng_cell.random_range(0.0..200.0)
    })
    .unwrap();
    let extent = model.extent();
    let point = |rng: &mut StdRng| {
        extent
            .iter()
            .map(|e| rng.random_range(0.0..=*e))
            .collect::<Vec<f64>>()
    };
    let sources = (0..2).map(|_| point(&mut rng)).collect();
    let receivers = (0..9).map(|_| point(&mut rng)).collect();
    let geometry = Geometry::new(&model, sources, receivers, 20.0).unwrap();
    let time = TimeAxis::new(&model, order, nt, None).unwrap();
    let boundary = Boundary::new(kind, model.max_velocity()).unwrap();
    Problem::with_boundary(model, geometry, time, order, boundary).unwrap()
}

mod scripted;
#[allow(unused_imports)]
pub use scripted::Scripted;

/// Each float's bits, for comparisons that must be exact.
#[allow(dead_code)]
pub fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// "Observed" data for `problem`: any will do, so the twin's traces with the source scaled by
/// `scale` (other than 1: a misfit that is not zero, and a gradient that is not).
#[allow(dead_code)]
pub fn observed(problem: &Problem, scale: f64) -> Vec<f64> {
    let wavelet: Vec<f64> = problem.source_series().iter().map(|w| scale * w).collect();
    gpurevolve::acoustic::CpuTwin::new(problem)
        .forward(&wavelet, false)
        .unwrap()
        .traces
}

/// The store-all gradient every checkpointed run is compared with.
#[allow(dead_code)]
pub fn store_all(
    gpu: &Gpu,
    problem: &Problem,
    observed: &[f64],
) -> gpurevolve::acoustic::GradientInfo {
    gpurevolve::acoustic::GpuAcoustic::new(gpu, problem)
        .unwrap()
        .gradient_store_all(observed)
        .unwrap()
}

/// `count` shots on one random model: each with its own random sources (one to three) and
/// receivers (two to nine), so that a batch's point plans differ from shot to shot; records
/// from the float64 twin with a weaker source.
#[allow(dead_code)] // each test crate uses its own subset of the helpers
pub fn survey(
    shape: &[usize],
    kind: BoundaryKind,
    nt: usize,
    count: usize,
    seed: u64,
) -> (Vec<Problem>, Vec<Vec<f64>>) {
    let first = random_problem_with(shape, 4, 4, nt, seed, kind);
    let model = first.model();
    let extent = model.extent();
    let mut rng = StdRng::seed_from_u64(seed + 7);
    let mut points = |n: usize| -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| extent.iter().map(|e| rng.random_range(0.0..=*e)).collect())
            .collect()
    };
    let shots: Vec<Problem> = (0..count)
        .map(|i| {
            let sources = points(1 + i % 3);
            let receivers = points(2 + (i * 5) % 8);
            let geometry = Geometry::new(model, sources, receivers, 20.0).unwrap();
            Problem::with_boundary(model.clone(), geometry, *first.time(), 4, first.boundary())
                .unwrap()
        })
        .collect();
    let observed = shots
        .iter()
        .map(|p| {
            let wavelet: Vec<f64> = p.source_series().iter().map(|w| 0.7 * w).collect();
            CpuTwin::new(p).forward(&wavelet, false).unwrap().traces
        })
        .collect();
    (shots, observed)
}

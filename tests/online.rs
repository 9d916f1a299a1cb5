//! Online checkpointing: against the offline optimum for every run length up to 10⁴, and on
//! the GPU, the store-all gradient's bits.

mod common;

use gpurevolve::acoustic::{AcousticOperator, BoundaryKind, CpuTwin, GpuAcoustic};
use gpurevolve::engine::{Revolver, RevolverOptions};
use gpurevolve::schedule::{Online, OnlineRun, min_advances, simulate};

/// The worst ratios of online to offline forward steps over every `n ≤ max_steps`, in the
/// state-only model (`p + 1`) and the classic one (`n + p`), with the `n` where each occurs.
fn worst_ratios(snaps: u64, max_steps: u64) -> [(f64, u64); 2] {
    let mut online = Online::new(snaps).unwrap();
    let mut worst = [(1.0, 1), (1.0, 1)];
    for n in 1..=max_steps {
        if n > 1 {
            let _ = online.step().count();
        }
        assert_eq!(online.live() + 1, n);
        let (got, best) = (online.advances_if_last(), min_advances(n, snaps).unwrap());
        assert!(
            got >= best,
            "n = {n}, s = {snaps}: {got} below the optimum {best}"
        );
        if n <= snaps + 1 {
            // Every state fits: nothing to choose, the optimum.
            assert_eq!(got, best, "n = {n}, s = {snaps}");
        }
        let ratios = [
            (got + 1) as f64 / (best + 1) as f64,
            (got + n) as f64 / (best + n) as f64,
        ];
        for (w, r) in worst.iter_mut().zip(ratios) {
            if r > w.0 {
                *w = (r, n);
            }
        }
    }
    worst
}

/// The target: at most 1.1× the offline optimum, every `n ≤ 10⁴`, `s = 10, 20, 50`,
/// in both cost models. The worst cases are printed (`--nocapture`) for BENCHMARKS.md.
#[test]
fn online_stays_near_the_offline_optimum() {
    for snaps in [10, 20, 50] {
        let [state_only, classic] = worst_ratios(snaps, 10_000);
        println!(
            "s = {snaps}: worst online / offline forward steps, state-only {:.4} (n = {}), classic {:.4} (n = {})",
            state_only.0, state_only.1, classic.0, classic.1
        );
        assert!(state_only.0 <= 1.1 && classic.0 <= 1.1);
    }
}

/// What the online schedule promises is what it runs: the replayed schedule, checked action
/// by action by the simulator, at lengths spread over the range.
#[test]
fn the_replayed_run_is_valid_and_costs_what_was_promised() {
    for snaps in [3, 10, 20] {
        let mut online = Online::new(snaps).unwrap();
        for n in 1..=3000u64 {
            if n > 1 {
                let _ = online.step().count();
            }
            if n % 97 != 1 && n != 3000 {
                continue;
            }
            let stats = simulate(OnlineRun::new(n, snaps).unwrap())
                .unwrap_or_else(|e| panic!("n = {n}, s = {snaps}: {e}"));
            assert_eq!(
                stats.advances,
                online.advances_if_last(),
                "n = {n}, s = {snaps}"
            );
            assert_eq!(stats.total_forward, stats.advances + n);
            assert!(stats.peak_slots as u64 <= snaps);
        }
    }
}

/// The acoustic gradient through an online schedule, every slot count, on the GPU alone and
/// half spilled: the store-all bits, at `p + 1` forward steps (the adjoint needs its state
/// alone).
#[test]
fn online_runs_give_the_store_all_bits() {
    let Some(gpu) = common::gpu() else { return };
    for (seed, kind) in [(3, BoundaryKind::Sponge), (4, BoundaryKind::Cpml)] {
        let problem = common::random_problem_with(&[32, 28], 4, 4, 61, seed, kind);
        let wavelet: Vec<f64> = problem.source_series().iter().map(|w| 0.7 * w).collect();
        let observed = CpuTwin::new(&problem)
            .forward(&wavelet, false)
            .unwrap()
            .traces;
        let reference = GpuAcoustic::new(&gpu, &problem)
            .unwrap()
            .gradient_store_all(&observed)
            .unwrap();
        assert!(reference.gradient.iter().any(|g| *g != 0.0));
        let n = 60;
        let state = 2 * problem.level_bytes();
        for snaps in [1, 2, 5, 12] {
            for device_budget in [None, Some(snaps / 2 * state)] {
                let options = RevolverOptions {
                    device_budget,
                    ..RevolverOptions::default()
                };
                let label = format!("{kind:?}, s = {snaps}, device budget {device_budget:?}");
                let schedule = OnlineRun::new(n, snaps).unwrap();
                let advances = simulate(schedule.clone()).unwrap().advances;
                let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
                let mut revolver = Revolver::new(&gpu, operator, schedule, options).unwrap();
                let stats = revolver.apply_reverse().unwrap();
                let info = revolver.operator().finish().unwrap();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&info.gradient), bits(&reference.gradient), "{label}");
                assert_eq!(info.misfit.to_bits(), reference.misfit.to_bits(), "{label}");
                assert_eq!(stats.forward_steps, advances + 1, "{label}");
                assert_eq!(stats.reverse_steps, n, "{label}");
                // With two slots the host one holds state 0, which a shot at rest rebuilds.
                if device_budget.is_some() && snaps > 2 {
                    assert!(stats.host_saves > 0, "{label}: {stats:?}");
                }
            }
        }
    }
}

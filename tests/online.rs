//! Online checkpointing: against the offline optimum for every run length up to 10⁴, and on
//! the GPU, the store-all gradient's bits.

mod common;

use common::bits;
use gpurevolve::Error;
use gpurevolve::acoustic::{AcousticOperator, BoundaryKind, GpuAcoustic, Quiet};
use gpurevolve::engine::{CpuOperator, MemoryStore, Revolver, RevolverOptions};
use gpurevolve::schedule::{
    Online, OnlineRun, OnlineSchedule, Revolve, StoreAll, Tier, min_advances, simulate,
};

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
        let observed = common::observed(&problem, 0.7);
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
                assert_eq!(bits(&info.gradient), bits(&reference.gradient), "{label}");
                assert_eq!(info.misfit.to_bits(), reference.misfit.to_bits(), "{label}");
                assert_eq!(stats.forward_steps, advances + 1, "{label}");
                assert_eq!(stats.reverse_steps, n, "{label}");
                // With two slots the host one holds state 0, which a shot at rest rebuilds.
                if device_budget.is_some() && snaps > 2 {
                    assert!(stats.tier(Tier::HOST).saves > 0, "{label}: {stats:?}");
                }
            }
        }
    }
}

/// A decaying scalar map `x_{k+1} = x_k − h·x_k³ + h·f_k`, its outputs recorded, and the
/// adjoint of `J = ½ Σ x_k²` over the recorded states: a CPU operator whose run can end when
/// its state has decayed.
struct Decay {
    steps: u64,
    forcing: Vec<f64>,
    recorded: Vec<f64>,
    lambda: f64,
    gradient: f64,
}

const H: f64 = 0.05;

impl Decay {
    fn new(steps: u64, seed: u64) -> Self {
        let mut x = seed;
        let forcing = (0..steps)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.02
            })
            .collect();
        Self {
            steps,
            forcing,
            recorded: vec![0.0; steps as usize],
            lambda: 0.0,
            gradient: 0.0,
        }
    }
}

impl CpuOperator for Decay {
    type State = f64;

    fn steps(&self) -> u64 {
        self.steps
    }

    fn initial(&mut self) -> gpurevolve::Result<f64> {
        Ok(1.0)
    }

    fn forward(&mut self, k: u64, x: &f64, record: bool) -> gpurevolve::Result<f64> {
        if record {
            self.recorded[k as usize] = *x;
        }
        Ok(x - H * x * x * x + H * self.forcing[k as usize])
    }

    fn adjoint(&mut self, k: u64, x: &f64, _next: Option<&f64>) -> gpurevolve::Result<()> {
        // λ_k = λ_{k+1}·∂x_{k+1}/∂x_k + ∂J/∂x_k; ∂J/∂f_k = h·λ_{k+1}, summed as the gradient.
        self.gradient += H * self.lambda * (k as f64 + 1.0);
        self.lambda = self.lambda * (1.0 - 3.0 * H * x * x) + x;
        Ok(())
    }
}

/// The run ends when the state has decayed below `threshold` (checked every 5 steps), and the
/// adjoint equals a store-all run of exactly that length, to the bit; a condition that never
/// holds runs to the most steps and says so.
#[test]
fn a_run_to_an_unknown_end_equals_store_all_of_its_length() {
    let max = 5000;
    for (snaps, threshold) in [(3, 0.3), (10, 0.2), (25, 0.15), (10, -1.0)] {
        let schedule = OnlineSchedule::new(max, snaps).unwrap();
        let store = MemoryStore::new(snaps as usize, 1);
        let operator = Decay::new(max, 7);
        let mut run =
            Revolver::on_cpu(operator, store, schedule, RevolverOptions::default()).unwrap();
        let end = run
            .apply_forward_until(5, |_, x, _| Ok(x.abs() < threshold))
            .unwrap();
        let stats = run.apply_reverse().unwrap();
        let n = end.steps;
        assert_eq!(end.stopped, threshold > 0.0, "s = {snaps}");
        if end.stopped {
            assert!(
                n < max && n % 5 == 1,
                "n = {n}: ends at a check, step n − 1 last"
            );
        } else {
            assert_eq!(n, max);
        }
        assert_eq!(stats.reverse_steps, n);
        let online = run.backend().operator();
        // The same run with n known, storing every state.
        let mut reference = Revolver::on_cpu(
            Decay::new(n, 7),
            MemoryStore::new(n as usize, 1),
            StoreAll::new(n).unwrap(),
            RevolverOptions::default(),
        )
        .unwrap();
        reference.apply_reverse().unwrap();
        let reference = reference.backend().operator();
        let label = format!("s = {snaps}, n = {n}");
        assert_eq!(
            online.lambda.to_bits(),
            reference.lambda.to_bits(),
            "{label}"
        );
        assert_eq!(
            online.gradient.to_bits(),
            reference.gradient.to_bits(),
            "{label}"
        );
        assert_eq!(
            bits(&online.recorded[..n as usize]),
            bits(&reference.recorded),
            "{label}"
        );
        // And it costs what the online schedule promised for that length.
        let replayed = simulate(OnlineRun::new(n, snaps).unwrap()).unwrap();
        assert_eq!(stats.advances, replayed.advances, "{label}");
    }
}

/// Running to an unknown end needs an online schedule, once.
#[test]
fn running_to_an_unknown_end_is_refused_where_it_cannot_work() {
    let operator = Decay::new(50, 1);
    let mut run = Revolver::on_cpu(
        operator,
        MemoryStore::new(5, 1),
        Revolve::new(50, 5).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    let err = run.apply_forward_until(1, |_, _, _| Ok(false)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                name: "schedule",
                ..
            }
        ),
        "{err}"
    );
    let mut run = Revolver::on_cpu(
        Decay::new(50, 1),
        MemoryStore::new(5, 1),
        OnlineSchedule::new(50, 5).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    run.apply_forward_until(1, |_, _, k| Ok(k == 20)).unwrap();
    let err = run.apply_forward_until(1, |_, _, _| Ok(false)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                name: "revolver",
                ..
            }
        ),
        "{err}"
    );
    // An error from the condition stops the run with that error.
    let mut run = Revolver::on_cpu(
        Decay::new(50, 1),
        MemoryStore::new(5, 1),
        OnlineSchedule::new(50, 5).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    let err = run
        .apply_forward_until(1, |_, _, _| Err(Error::Interrupted { done: 3 }))
        .unwrap_err();
    assert!(matches!(err, Error::Interrupted { done: 3 }), "{err}");
}

/// An acoustic shot run until its wavefield is quiet (energy below 10⁻³ of its peak once the
/// source has ended, reduced on the GPU), on the GPU alone and spilled: the gradient, misfit
/// and traces of a store-all run of exactly that length, to the bit.
#[test]
fn an_acoustic_shot_run_until_quiet_equals_store_all_of_its_length() {
    let Some(gpu) = common::gpu() else { return };
    let max_nt = 600;
    for (seed, kind) in [(8, BoundaryKind::Cpml), (9, BoundaryKind::Sponge)] {
        let problem = common::random_problem_with(&[32, 28], 6, 4, max_nt, seed, kind);
        let nr = problem.receivers().points;
        let observed = common::observed(&problem, 0.6);
        let state = 2 * problem.level_bytes();
        for (snaps, device_budget) in [(6, None), (12, Some(4 * state))] {
            let options = RevolverOptions {
                device_budget,
                ..RevolverOptions::default()
            };
            let schedule = OnlineSchedule::new(max_nt as u64 - 1, snaps).unwrap();
            let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
            let mut quiet = Quiet::new(&problem, 1e-3).unwrap();
            let mut run = Revolver::new(&gpu, operator, schedule, options).unwrap();
            let end = run
                .apply_forward_until(8, |backend, state, k| {
                    let level = state.levels().next().expect("a state has levels");
                    Ok(quiet.is_quiet(k, backend.operator().energy(level)?))
                })
                .unwrap();
            let stats = run.apply_reverse().unwrap();
            let label = format!("{kind:?}, s = {snaps}, budget {device_budget:?}, {end:?}");
            assert!(end.stopped && end.steps < max_nt as u64 - 1, "{label}");
            assert!(end.steps > quiet.source_end(), "{label}");
            let n = end.steps as usize;
            let info = run.operator().finish().unwrap();
            // The same shot with n steps known, every field stored.
            let short = common::random_problem_with(&[32, 28], 6, 4, n + 1, seed, kind);
            let reference = GpuAcoustic::new(&gpu, &short)
                .unwrap()
                .gradient_store_all(&observed[..(n + 1) * nr])
                .unwrap();
            assert_eq!(bits(&info.gradient), bits(&reference.gradient), "{label}");
            assert_eq!(info.misfit.to_bits(), reference.misfit.to_bits(), "{label}");
            assert_eq!(
                bits(&info.traces[..(n + 1) * nr]),
                bits(&reference.traces),
                "{label}"
            );
            assert!(
                info.traces[(n + 1) * nr..].iter().all(|t| *t == 0.0),
                "{label}"
            );
            assert_eq!(stats.reverse_steps, end.steps);
            if device_budget.is_some() {
                assert!(stats.tier(Tier::HOST).saves > 0, "{label}: {stats:?}");
            }
        }
    }
}

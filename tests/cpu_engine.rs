//! The engine on the CPU, with no GPU: a nonlinear stepper (Lorenz-96, forward Euler) whose
//! discrete adjoint passes a dot-product test and a Taylor test, and whose checkpointed
//! gradient equals the store-all gradient bit for bit, driven by the `Revolver` (pyrevolve's
//! modernised style) and by hand (the classic style), for any schedule read once.

#[path = "../examples/common/lorenz96.rs"]
mod lorenz96;
#[path = "common/scripted.rs"]
mod scripted;

use gpurevolve::Error;
use gpurevolve::engine::{MemoryStore, Progress, Revolver, RevolverOptions, RunStats};
use gpurevolve::schedule::{
    Action, CostOptimal, LevelOptimal, Multistage, Revolve, Schedule, StoreAll, Tier, TierCost,
    TieredCosts, min_advances, planned,
};
use lorenz96::{Gradient, Lorenz96, Lorenz96Operator, adjoint_step, classic_gradient, tangent};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scripted::Scripted;

fn random(rng: &mut StdRng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The gradient through the Revolver and a memory store, with its run statistics.
fn engine_gradient(
    problem: &Lorenz96,
    schedule: impl Schedule,
    options: RevolverOptions,
) -> gpurevolve::Result<(Gradient, RunStats)> {
    let operator = Lorenz96Operator::new(problem.clone());
    run_cpu(operator, schedule, options).map(|(g, stats, _)| (g, stats))
}

/// Runs `operator` under `schedule` with a memory store, forward then reverse: the gradient,
/// the statistics and the last progress reported.
fn run_cpu(
    operator: Lorenz96Operator,
    schedule: impl Schedule,
    options: RevolverOptions,
) -> gpurevolve::Result<(Gradient, RunStats, Progress)> {
    let state = 8 * operator.problem.x0.len() as u64;
    let store = MemoryStore::new(schedule.slot_capacity(), state);
    let mut last = Progress { done: 0, total: 0 };
    let mut revolver =
        Revolver::on_cpu(operator, store, schedule, options)?.on_progress(|p| last = p);
    revolver.apply_forward()?;
    let stats = revolver.apply_reverse()?;
    let gradient = revolver.into_backend().into_parts().0.finish();
    Ok((gradient, stats, last))
}

fn bits(g: &Gradient) -> Vec<u64> {
    let mut v: Vec<u64> = g.d_x0.iter().map(|x| x.to_bits()).collect();
    v.extend([g.misfit.to_bits(), g.d_forcing.to_bits()]);
    v
}

#[test]
fn the_step_adjoint_passes_the_dot_product_test() {
    let mut rng = StdRng::seed_from_u64(rand::random());
    for n in [4, 5, 13, 40] {
        let x: Vec<f64> = random(&mut rng, n, 10.0);
        let dx = random(&mut rng, n, 1.0);
        let mu = random(&mut rng, n, 1.0);
        let forward = dot(&tangent(&x, &dx, 0.01), &mu);
        let adjoint = dot(&dx, &adjoint_step(&x, &mu, 0.01));
        let rel = (forward - adjoint).abs() / forward.abs().max(adjoint.abs());
        assert!(
            rel <= 1e-12,
            "n = {n}: {forward} vs {adjoint}, relative {rel:e}"
        );
    }
}

#[test]
fn the_tangent_is_the_derivative_of_the_step() {
    // A wrong Jacobian entry would pass the dot test with its wrong transpose; central
    // differences of the step pin the tangent itself.
    let mut rng = StdRng::seed_from_u64(rand::random());
    let x = random(&mut rng, 9, 10.0);
    let dx = random(&mut rng, 9, 1.0);
    let h = 1e-6;
    let shifted = |s: f64| {
        let y: Vec<f64> = x.iter().zip(&dx).map(|(a, b)| a + s * b).collect();
        lorenz96::step(&y, 8.0, 0.01)
    };
    let (plus, minus) = (shifted(h), shifted(-h));
    let tl = tangent(&x, &dx, 0.01);
    for i in 0..x.len() {
        let fd = (plus[i] - minus[i]) / (2.0 * h);
        assert!(
            (fd - tl[i]).abs() <= 1e-7 * (1.0 + fd.abs()),
            "entry {i}: {fd} vs {}",
            tl[i]
        );
    }
}

#[test]
fn the_gradient_passes_the_taylor_test() {
    let seed = rand::random();
    let problem = Lorenz96::synthetic(12, 150, 8.0, 8.3, seed);
    let (g, _) = engine_gradient(
        &problem,
        Revolve::new(150, 6).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    // A random direction, half of it along the gradient: a purely random one is sometimes
    // nearly orthogonal to it, and then the first-order change drowns in the second-order one.
    let mut rng = StdRng::seed_from_u64(seed);
    let scale = g
        .d_x0
        .iter()
        .chain([&g.d_forcing])
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let dx: Vec<f64> = random(&mut rng, 12, 0.5)
        .iter()
        .zip(&g.d_x0)
        .map(|(r, gi)| r + 0.5 * gi / scale)
        .collect();
    let df: f64 = rng.random_range(-0.5..0.5) + 0.5 * g.d_forcing / scale;
    let j0 = problem.misfit();
    assert_eq!(j0.to_bits(), g.misfit.to_bits(), "the recorded misfit");
    let directional = dot(&g.d_x0, &dx) + g.d_forcing * df;
    let (mut first, mut second) = (Vec::new(), Vec::new());
    let hs: Vec<f64> = (0..6).map(|i| 1e-4 / 2f64.powi(i)).collect();
    for &h in &hs {
        let mut p = problem.clone();
        p.x0.iter_mut().zip(&dx).for_each(|(x, d)| *x += h * d);
        p.forcing += h * df;
        let j = p.misfit();
        first.push((j - j0).abs());
        second.push((j - j0 - h * directional).abs());
    }
    let slope = |e: &[f64]| {
        let s: Vec<f64> = e.windows(2).map(|w| (w[0] / w[1]).log2()).collect();
        s.iter().sum::<f64>() / s.len() as f64
    };
    let (s1, s2) = (slope(&first), slope(&second));
    assert!((s1 - 1.0).abs() <= 0.1, "first-order slope {s1}: {first:?}");
    assert!(
        (s2 - 2.0).abs() <= 0.1,
        "second-order slope {s2}: {second:?}"
    );
}

#[test]
fn checkpointed_gradients_are_the_store_all_gradient_bit_for_bit_in_both_styles() {
    let n = 97u64;
    let problem = Lorenz96::synthetic(10, n as usize, 8.0, 8.4, rand::random());
    let (reference, ref_stats) = engine_gradient(
        &problem,
        StoreAll::new(n).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    assert!(reference.misfit.is_finite() && reference.misfit > 0.0);
    assert!(reference.d_x0.iter().all(|g| g.is_finite()) && reference.d_forcing != 0.0);
    assert_eq!(ref_stats.forward_steps, 2 * n - 1);
    let (classic_reference, classic_forward) =
        classic_gradient(&problem, StoreAll::new(n).unwrap());
    assert_eq!(
        bits(&classic_reference),
        bits(&reference),
        "classic store-all"
    );
    assert_eq!(classic_forward, 2 * n - 1);
    for s in [1, 2, 3, 5, 10, n - 1, n] {
        let revolve = || Revolve::new(n, s).unwrap();
        let (g, stats) = engine_gradient(&problem, revolve(), RevolverOptions::default()).unwrap();
        assert_eq!(bits(&g), bits(&reference), "Revolver, s = {s}");
        assert_eq!(
            stats.forward_steps,
            n + min_advances(n, s).unwrap(),
            "s = {s}"
        );
        assert_eq!(stats.reverse_steps, n);
        assert!(stats.peak_slots as u64 <= s);
        let state = 8 * problem.x0.len() as u64;
        assert_eq!(stats.peak_checkpoint_bytes, stats.peak_slots as u64 * state);
        // A memory store copies a state at every save and every restore.
        assert_eq!(stats.bytes_copied, (stats.saves + stats.restores) * state);
        let (c, forward) = classic_gradient(&problem, revolve());
        assert_eq!(bits(&c), bits(&reference), "classic, s = {s}");
        assert_eq!(forward, stats.forward_steps);
    }
}

/// Revolve behind a type that is neither `Clone` nor able to plan: the engine reads it once.
struct ReadOnce(Revolve);

impl Iterator for ReadOnce {
    type Item = Action;
    fn next(&mut self) -> Option<Action> {
        self.0.next()
    }
}

impl Schedule for ReadOnce {
    fn steps(&self) -> u64 {
        self.0.steps()
    }
    fn slot_capacity(&self) -> usize {
        self.0.slot_capacity()
    }
}

#[test]
fn a_schedule_is_read_once_with_any_lookahead() {
    let n = 60;
    let problem = Lorenz96::synthetic(8, n as usize, 8.0, 8.2, rand::random());
    let (reference, _) = engine_gradient(
        &problem,
        StoreAll::new(n).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    for lookahead in [0, 1, 2, 7, 10_000] {
        let options = RevolverOptions {
            lookahead,
            ..RevolverOptions::default()
        };
        let (g, stats) =
            engine_gradient(&problem, ReadOnce(Revolve::new(n, 4).unwrap()), options).unwrap();
        assert_eq!(bits(&g), bits(&reference), "lookahead {lookahead}");
        assert_eq!(stats.forward_steps, n + min_advances(n, 4).unwrap());
    }
}

#[test]
fn progress_knows_its_total_only_from_a_plan() {
    let n = 30;
    let problem = Lorenz96::synthetic(6, n as usize, 8.0, 8.2, 5);
    let run = |schedule: Box<dyn Schedule>| {
        let operator = Lorenz96Operator::new(problem.clone());
        run_cpu(operator, schedule, RevolverOptions::default())
            .unwrap()
            .2
    };
    let planned_run = run(Box::new(Revolve::new(n, 3).unwrap()));
    let total = n + min_advances(n, 3).unwrap() + n;
    assert_eq!((planned_run.done, planned_run.total), (total, total));
    let unplanned = run(Box::new(ReadOnce(Revolve::new(n, 3).unwrap())));
    assert_eq!((unplanned.done, unplanned.total), (total, 0));
}

/// A progress callback that breaks stops the run at that step with `Error::Interrupted`, in
/// the forward sweep and in the reverse; a new run of the same problem then gives the bits of
/// a run never stopped.
#[test]
fn a_progress_callback_can_stop_the_run() {
    let n = 40;
    let problem = Lorenz96::synthetic(6, n as usize, 8.0, 8.2, 9);
    let (whole, _) = engine_gradient(
        &problem,
        Revolve::new(n, 4).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    // Step evaluations 10 (forward sweep) and 70 (reverse sweep, after n + p forward steps).
    for stop_at in [10u64, 70] {
        let operator = Lorenz96Operator::new(problem.clone());
        let store = MemoryStore::new(4, 8 * problem.x0.len() as u64);
        let schedule = Revolve::new(n, 4).unwrap();
        let mut revolver = Revolver::on_cpu(operator, store, schedule, RevolverOptions::default())
            .unwrap()
            .on_progress(|p: Progress| {
                if p.done >= stop_at {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            });
        let err = revolver
            .apply_forward()
            .and_then(|()| revolver.apply_reverse().map(|_| ()))
            .unwrap_err();
        assert!(
            matches!(err, Error::Interrupted { done } if done == stop_at),
            "{err}"
        );
        assert_eq!(err.kind(), gpurevolve::ErrorKind::Interrupted);
    }
    let (again, _) = engine_gradient(
        &problem,
        Revolve::new(n, 4).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    assert_eq!(bits(&whole), bits(&again));
}

#[test]
fn slots_carry_their_tier_in_the_accounting() {
    // Three tiers of a memory store, placed by use: the busiest slots in tier 0.
    let n = 200;
    let problem = Lorenz96::synthetic(8, n as usize, 8.0, 8.2, 9);
    let state = 64;
    let plan = planned(Revolve::new(n, 9).unwrap()).unwrap();
    let budgets = [Some(2 * state), Some(3 * state), None];
    let placement =
        Multistage::over_tiers(&plan.slot_uses, plan.stats.peak_slots, state, &budgets).unwrap();
    let count = |t| placement.tiers().iter().filter(|x| **x == t).count();
    assert_eq!((count(Tier(0)), count(Tier(1)), count(Tier(2))), (2, 3, 4));
    let busiest = (0..9)
        .max_by_key(|&i| (plan.slot_uses[i], std::cmp::Reverse(i)))
        .unwrap();
    assert_eq!(placement.tiers()[busiest], Tier(0));
    let mut revolver = Revolver::on_cpu(
        Lorenz96Operator::new(problem),
        MemoryStore::with_tiers(placement.tiers(), state),
        Revolve::new(n, 9).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    let stats = revolver.apply_reverse().unwrap();
    assert_eq!(stats.peak_checkpoint_bytes, 2 * state);
    assert!(stats.peak_slower_bytes <= 7 * state && stats.peak_slower_bytes > 0);
}

#[test]
fn a_cost_optimal_plan_over_three_tiers_gives_the_store_all_bits() {
    let n = 80;
    let problem = Lorenz96::synthetic(8, n as usize, 8.0, 8.3, rand::random());
    let (reference, _) = engine_gradient(
        &problem,
        StoreAll::new(n).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    let tier = |write, read| TierCost { write, read };
    let costs = TieredCosts {
        forward: 1.0,
        tiers: vec![tier(0.0, 0.0), tier(2.0, 1.5), tier(6.0, 5.0)],
    };
    let plan = CostOptimal::new(n, &[1, 2, 3], &costs).unwrap();
    let state = 64;
    let store = MemoryStore::with_tiers(&plan.tiers(), state);
    let cost = plan.cost();
    let actions: Vec<Action> = plan.clone().collect();
    let mut revolver = Revolver::on_cpu(
        Lorenz96Operator::new(problem),
        store,
        plan,
        RevolverOptions::default(),
    )
    .unwrap();
    let stats = revolver.apply_reverse().unwrap();
    let (operator, store) = revolver.into_backend().into_parts();
    assert_eq!(bits(&operator.finish()), bits(&reference));
    let advanced: u64 = actions
        .iter()
        .map(|a| match *a {
            Action::Advance { from, to } => to - from,
            _ => 0,
        })
        .sum();
    assert_eq!(stats.advances, advanced);
    use gpurevolve::engine::Store;
    assert!((costs.evaluate(actions, store.tiers()) - cost).abs() <= 1e-9 * cost);
    assert!(stats.peak_checkpoint_bytes <= state);
    assert!(stats.peak_slower_bytes <= 5 * state);
}

#[test]
fn bad_input_is_a_typed_error() {
    let problem = Lorenz96::synthetic(6, 20, 8.0, 8.2, 3);
    let op = || Lorenz96Operator::new(problem.clone());
    let opts = RevolverOptions::default();
    // Refused before anything runs, each with its reason: a schedule that leaves state 0 out
    // of its memory, for a stepper that does not start at rest; one that joins states, which
    // the CPU backend's states (values, not level buffers) cannot.
    let joined = LevelOptimal::new(20, 6, 2).unwrap().with_joins();
    assert!(joined.joins());
    for (schedule, reason) in [
        (LevelOptimal::from_rest(20, 6, 1).unwrap(), "starts_at_rest"),
        (joined, "with_joins"),
    ] {
        let store = MemoryStore::new(schedule.slot_capacity(), 48);
        let err = Revolver::on_cpu(op(), store, schedule, opts.clone())
            .err()
            .unwrap();
        assert!(
            matches!(&err, Error::InvalidArgument { name: "schedule", reason: r } if r.contains(reason)),
            "{err}"
        );
    }
    // The same budget with state 0 held plans and runs; the level schedule is valid for any
    // operator (one level a state here), and gives the store-all bits.
    let (reference, _) =
        engine_gradient(&problem, StoreAll::new(20).unwrap(), opts.clone()).unwrap();
    let (g, _) =
        engine_gradient(&problem, LevelOptimal::new(20, 6, 1).unwrap(), opts.clone()).unwrap();
    assert_eq!(bits(&g), bits(&reference));
    // Steps that disagree.
    let err = Revolver::on_cpu(
        op(),
        MemoryStore::new(4, 48),
        Revolve::new(21, 4).unwrap(),
        opts.clone(),
    )
    .err()
    .unwrap();
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
    // A store with fewer slots than the schedule names.
    let err = Revolver::on_cpu(
        op(),
        MemoryStore::new(3, 48),
        Revolve::new(20, 4).unwrap(),
        opts.clone(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, Error::InvalidArgument { name: "store", .. }),
        "{err}"
    );
    // A schedule that ends early: refused at the end, not silently accepted.
    let mut actions: Vec<Action> = Revolve::new(20, 4).unwrap().collect();
    actions.truncate(actions.len() - 1);
    let mut revolver = Revolver::on_cpu(
        op(),
        MemoryStore::new(4, 48),
        Scripted(actions.into_iter(), 20, 4),
        opts.clone(),
    )
    .unwrap();
    let err = revolver.apply_reverse().unwrap_err();
    assert!(
        matches!(err, Error::InvalidSchedule { action: None, .. }),
        "{err}"
    );
    // A restore from a slot never filled: refused before it runs.
    let actions = vec![
        Action::Advance { from: 0, to: 3 },
        Action::Restore { step: 0, slot: 1 },
    ];
    let mut revolver = Revolver::on_cpu(
        op(),
        MemoryStore::new(4, 48),
        Scripted(actions.into_iter(), 20, 4),
        opts.clone(),
    )
    .unwrap();
    let err = revolver.apply_forward().unwrap_err();
    assert!(
        matches!(err, Error::InvalidSchedule { index: 1, .. }),
        "{err}"
    );
    assert_eq!(revolver.stats().advances, 3);
}

#[test]
fn an_adjoint_that_needs_only_its_state_costs_p_plus_one_forward_steps() {
    let n = 90u64;
    let problem = Lorenz96::synthetic(9, n as usize, 8.0, 8.3, rand::random());
    let (reference, _) = engine_gradient(
        &problem,
        StoreAll::new(n).unwrap(),
        RevolverOptions::default(),
    )
    .unwrap();
    let state_only = |schedule: Box<dyn Schedule>| {
        let operator = Lorenz96Operator::state_only(problem.clone());
        run_cpu(operator, schedule, RevolverOptions::default()).unwrap()
    };
    // Store-all: every step runs once, the last one in the reverse sweep to record it.
    let (g, stats, progress) = state_only(Box::new(StoreAll::new(n).unwrap()));
    assert_eq!(bits(&g), bits(&reference));
    assert_eq!(stats.forward_steps, n);
    assert_eq!((progress.done, progress.total), (2 * n, 2 * n));
    for s in [1u64, 2, 5, 11] {
        let (g, stats, progress) = state_only(Box::new(Revolve::new(n, s).unwrap()));
        assert_eq!(bits(&g), bits(&reference), "s = {s}");
        let p = min_advances(n, s).unwrap();
        assert_eq!(stats.forward_steps, p + 1, "s = {s}: p + 1, not n + p");
        assert_eq!(stats.reverse_steps, n);
        assert_eq!(progress.done, progress.total, "s = {s}");
    }
}

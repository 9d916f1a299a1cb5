//! The level-optimal schedule: optimal over every whole-state schedule (exhaustive search),
//! valid and within its level budget (the simulator), and what it costs against Revolve.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use gpurevolve::Error;
use gpurevolve::schedule::{
    Action, LevelBudget, LevelOptimal, MAX_PLAN_CELLS, Revolve, Schedule, Violation, min_advances,
    simulate,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Distinct time levels of `held` states, `per_state` levels each; state 0's count only when
/// it is held (not rebuilt).
fn levels_of(held: &[u8], per_state: u8, initial_free: bool) -> usize {
    held.iter()
        .filter(|&&k| !(initial_free && k == 0))
        .flat_map(|&k| (0..per_state).map(move |j| k as i32 - j as i32))
        .collect::<HashSet<_>>()
        .len()
}

/// The fewest advances over *every* sequence of moves on whole states: advance the live state
/// one step, save it (within `budget` levels), restore or free any saved state, reverse the
/// next step when it is live. Dijkstra over (next step to reverse, live state, saved states).
/// With `initial_free`, state 0 is held from the start at no cost (the engine rebuilds it).
fn brute_force(n: u8, budget: usize, per_state: u8, initial_free: bool) -> Option<u64> {
    type Node = (u8, Option<u8>, Vec<u8>);
    let start: Node = (n, Some(0), if initial_free { vec![0] } else { vec![] });
    let mut best: HashMap<Node, u64> = HashMap::from([(start.clone(), 0)]);
    let mut heap = BinaryHeap::from([Reverse((0u64, start))]);
    while let Some(Reverse((cost, node))) = heap.pop() {
        if best.get(&node).is_some_and(|&b| b < cost) {
            continue;
        }
        let (end, live, held) = &node;
        if *end == 0 {
            return Some(cost);
        }
        let mut next: Vec<(u64, Node)> = Vec::new();
        if let Some(k) = *live {
            if k + 1 < *end {
                next.push((1, (*end, Some(k + 1), held.clone())));
            }
            if k + 1 == *end {
                next.push((0, (k, None, held.clone())));
            }
            if !held.contains(&k) {
                let mut h = held.clone();
                h.push(k);
                h.sort_unstable();
                if levels_of(&h, per_state, initial_free) <= budget {
                    next.push((0, (*end, *live, h)));
                }
            }
        }
        for (i, &k) in held.iter().enumerate() {
            if k < *end && *live != Some(k) {
                next.push((0, (*end, Some(k), held.clone())));
            }
            let mut h = held.clone();
            h.remove(i);
            next.push((0, (*end, *live, h)));
        }
        for (dc, n) in next {
            let c = cost + dc;
            if best.get(&n).is_none_or(|&b| c < b) {
                best.insert(n.clone(), c);
                heap.push(Reverse((c, n)));
            }
        }
    }
    None
}

#[test]
fn the_plan_is_optimal_over_every_whole_state_schedule() {
    for per_state in 1..=3u8 {
        for n in 1..=10u8 {
            for budget in per_state as u64..=per_state as u64 + 6 {
                let exhaustive = brute_force(n, budget as usize, per_state, false).unwrap();
                let plan = LevelOptimal::new(n as u64, budget, per_state as u64).unwrap();
                let stats = simulate(plan.clone()).unwrap();
                let label = format!("n = {n}, {budget} levels, {per_state} a state");
                assert_eq!(plan.advances(), exhaustive, "{label}: the programme");
                assert_eq!(stats.advances, exhaustive, "{label}: the actions");
                assert!(stats.peak_levels <= budget, "{label}: {stats:?}");
            }
        }
    }
}

#[test]
fn from_rest_the_plan_is_optimal_over_every_whole_state_schedule() {
    for per_state in 1..=3u8 {
        for n in 1..=10u8 {
            for budget in 0..=per_state as u64 + 5 {
                let exhaustive = brute_force(n, budget as usize, per_state, true).unwrap();
                let plan = LevelOptimal::from_rest(n as u64, budget, per_state as u64).unwrap();
                let stats = simulate(plan.clone()).unwrap();
                let label = format!("from rest: n = {n}, {budget} levels, {per_state} a state");
                assert_eq!(plan.advances(), exhaustive, "{label}: the programme");
                assert_eq!(stats.advances, exhaustive, "{label}: the actions");
                assert!(stats.peak_levels <= budget, "{label}: {stats:?}");
            }
        }
    }
}

#[test]
fn random_plans_are_valid_within_budget_and_beat_revolve() {
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..40 {
        let n = rng.random_range(2..3000u64);
        let snaps = rng.random_range(1..=n.min(60));
        let levels = 2 * snaps + rng.random_range(0..2);
        let plan = LevelOptimal::new(n, levels, 2).unwrap();
        let label = format!("seed {seed}: n = {n}, {levels} levels");
        // The simulator checks every action against the declared budget.
        let stats = simulate(plan.clone()).unwrap();
        assert_eq!(stats.advances, plan.advances(), "{label}");
        assert!(stats.peak_levels <= levels, "{label}");
        assert!(stats.peak_slots <= plan.slot_capacity(), "{label}");
        // Never worse than Revolve's schedule with the same memory (which it contains).
        let p = min_advances(n, snaps).unwrap();
        assert!(
            plan.advances() <= p,
            "{label}: {} > p = {p}",
            plan.advances()
        );
        assert_eq!(
            stats.state_adjoint_total_forward(),
            plan.advances() + 1,
            "{label}"
        );
    }
}

/// The reference figures of DESIGN.md §3 (budget 2s levels, state 0 held; from rest, Revolve
/// gets the snapshot state 0 no longer needs).
#[test]
fn reference_figures() {
    for (n, s, from_rest) in [(1000, 10, 3546), (2000, 20, 5725)] {
        let r = simulate(Revolve::new(n, s + 1).unwrap()).unwrap();
        assert_eq!(r.state_adjoint_total_forward(), from_rest, "({n}, {s})");
    }
    let rest = simulate(LevelOptimal::from_rest(1000, 20, 2).unwrap()).unwrap();
    assert!(rest.state_adjoint_total_forward() <= 3350, "{rest:?}");
    for (n, s, revolve, state_only, levels) in [
        (100, 10, 322, 223, 187),
        (778, 37, 2332, 1555, 1494),
        (1000, 10, 4636, 3637, 3517),
    ] {
        let r = simulate(Revolve::new(n, s).unwrap()).unwrap();
        assert_eq!(r.total_forward, revolve);
        assert_eq!(r.state_adjoint_total_forward(), state_only);
        let l = simulate(LevelOptimal::new(n, 2 * s, 2).unwrap()).unwrap();
        assert!(
            l.state_adjoint_total_forward() <= levels,
            "({n}, {s}): {} forward steps",
            l.state_adjoint_total_forward()
        );
        assert!(l.peak_levels <= 2 * s);
    }
}

#[test]
fn bad_budgets_are_typed_errors() {
    assert!(matches!(
        LevelOptimal::new(100, 1, 2),
        Err(Error::LevelBudget {
            levels: 1,
            needed: 2
        })
    ));
    assert!(matches!(LevelOptimal::new(0, 4, 2), Err(Error::ZeroSteps)));
    assert!(matches!(
        LevelOptimal::new(10, 4, 0),
        Err(Error::InvalidArgument { .. })
    ));
    let too_big = LevelOptimal::new(MAX_PLAN_CELLS, 1000, 2);
    assert!(
        matches!(too_big, Err(Error::PlanTooLarge { .. })),
        "{too_big:?}"
    );
    // The message says what to do.
    let message = too_big.unwrap_err().to_string();
    assert!(message.contains("Revolve"), "{message}");
    // A table that fits but whose search would take more than about a second stops early.
    let slow = LevelOptimal::new(100_000, 40, 2);
    assert!(
        matches!(&slow, Err(Error::PlanTooLarge { why, .. }) if why.contains("split points")),
        "{slow:?}"
    );
    // A budget beyond every state stores them all: n − 1 advances.
    let all = LevelOptimal::new(50, 10_000, 2).unwrap();
    assert_eq!(all.advances(), 49);
    assert_eq!(LevelOptimal::new(1, 2, 2).unwrap().advances(), 0);
}

/// Revolve, declaring a level budget (which it may break).
struct WithBudget(Revolve, u64);

impl Iterator for WithBudget {
    type Item = Action;
    fn next(&mut self) -> Option<Action> {
        self.0.next()
    }
}

impl Schedule for WithBudget {
    fn steps(&self) -> u64 {
        self.0.steps()
    }
    fn slot_capacity(&self) -> usize {
        self.0.slot_capacity()
    }
    fn level_budget(&self) -> Option<LevelBudget> {
        Some(LevelBudget {
            per_state: 2,
            levels: self.1,
            initial_free: false,
        })
    }
}

#[test]
fn the_simulator_rejects_a_schedule_over_its_level_budget() {
    // Revolve(10, 3) holds states 0, 4 and 7: six levels by the third save.
    let err = simulate(WithBudget(Revolve::new(10, 3).unwrap(), 5)).unwrap_err();
    match err {
        Error::InvalidSchedule {
            action: Some(Action::Save { step: 7, .. }),
            violation: Violation::LevelBudgetExceeded { held: 6, budget: 5 },
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    // Consecutive states share a level: 0, 1, 2 held at once are four levels, not six.
    let stats = simulate(WithBudget(Revolve::new(4, 3).unwrap(), 4)).unwrap();
    assert_eq!((stats.peak_slots, stats.peak_levels), (3, 4));
    // Without a declared budget, levels are not counted.
    assert_eq!(
        simulate(Revolve::new(4, 3).unwrap()).unwrap().peak_levels,
        0
    );
}

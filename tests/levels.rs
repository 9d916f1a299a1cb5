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

/// Dijkstra: the least cost from `start` to a node where `done` holds, `moves` giving each
/// node's successors with the cost of reaching them.
fn least_cost<N: Clone + Ord + std::hash::Hash>(
    start: N,
    done: impl Fn(&N) -> bool,
    moves: impl Fn(&N) -> Vec<(u64, N)>,
) -> Option<u64> {
    let mut best: HashMap<N, u64> = HashMap::from([(start.clone(), 0)]);
    let mut heap = BinaryHeap::from([Reverse((0u64, start))]);
    while let Some(Reverse((cost, node))) = heap.pop() {
        if best.get(&node).is_some_and(|&b| b < cost) {
            continue;
        }
        if done(&node) {
            return Some(cost);
        }
        for (dc, n) in moves(&node) {
            let c = cost + dc;
            if best.get(&n).is_none_or(|&b| c < b) {
                best.insert(n.clone(), c);
                heap.push(Reverse((c, n)));
            }
        }
    }
    None
}

/// `held` with state `k` saved, if its levels stay within `budget`.
fn saving(held: &[u8], k: u8, budget: usize, q: u8, initial_free: bool) -> Option<Vec<u8>> {
    if held.contains(&k) {
        return None;
    }
    let mut h = held.to_vec();
    h.push(k);
    h.sort_unstable();
    (levels_of(&h, q, initial_free) <= budget).then_some(h)
}

/// The fewest advances over *every* sequence of moves on whole states: advance the live state
/// one step, save it (within `budget` levels), restore or free any saved state, reverse the
/// next step when it is live. Dijkstra over (next step to reverse, live state, saved states).
/// With `initial_free`, state 0 is held from the start at no cost (the engine rebuilds it).
fn brute_force(n: u8, budget: usize, per_state: u8, initial_free: bool) -> Option<u64> {
    type Node = (u8, Option<u8>, Vec<u8>);
    let start: Node = (n, Some(0), if initial_free { vec![0] } else { vec![] });
    least_cost(
        start,
        |node| node.0 == 0,
        |(end, live, held)| {
            let (end, live) = (*end, *live);
            let mut next: Vec<(u64, Node)> = Vec::new();
            if let Some(k) = live {
                if k + 1 < end {
                    next.push((1, (end, Some(k + 1), held.clone())));
                }
                if k + 1 == end {
                    next.push((0, (k, None, held.clone())));
                }
                if let Some(h) = saving(held, k, budget, per_state, initial_free) {
                    next.push((0, (end, live, h)));
                }
            }
            for (i, &k) in held.iter().enumerate() {
                if k < end && live != Some(k) {
                    next.push((0, (end, Some(k), held.clone())));
                }
                let mut h = held.clone();
                h.remove(i);
                next.push((0, (end, live, h)));
            }
            next
        },
    )
}

/// The fewest advances over every sequence of the engine's moves, joins included: advance,
/// save the live state (its levels shared with held neighbours, within `budget`), free or
/// restore a held state, reverse the next step (its state's levels stay in the working
/// buffers), and join: make state `k` live from live (or just reversed) state `k + 1` and a
/// held state `j`, `k − q + 1 ≤ j < k`. Dijkstra over (next step to reverse, state in the
/// working buffers, held states).
fn brute_force_with_joins(n: u8, budget: usize, q: u8, initial_free: bool) -> Option<u64> {
    type Node = (u8, u8, Vec<u8>);
    let start: Node = (n, 0, if initial_free { vec![0] } else { vec![] });
    least_cost(
        start,
        |node| node.0 == 0,
        |(end, live, held)| {
            let (end, live) = (*end, *live);
            // `live` is in the working buffers; it was just reversed when `live == end`.
            let mut next: Vec<(u64, Node)> = Vec::new();
            if live < end {
                if live + 1 < end {
                    next.push((1, (end, live + 1, held.clone())));
                }
                if live + 1 == end {
                    next.push((0, (live, live, held.clone())));
                }
                if let Some(h) = saving(held, live, budget, q, initial_free) {
                    next.push((0, (end, live, h)));
                }
            }
            for (i, &k) in held.iter().enumerate() {
                if k < end && k != live {
                    next.push((0, (end, k, held.clone())));
                }
                let mut h = held.clone();
                h.remove(i);
                next.push((0, (end, live, h)));
            }
            if let Some(k) = live.checked_sub(1)
                && k < end
                && held.iter().any(|&j| j < k && j + q > k)
            {
                next.push((0, (end, k, held.clone())));
            }
            next
        },
    )
}

#[test]
fn with_joins_the_plan_is_optimal_over_every_schedule_of_engine_moves() {
    for per_state in 2..=3u8 {
        for n in 1..=10u8 {
            for initial_free in [false, true] {
                let least = if initial_free { 0 } else { per_state as u64 };
                for budget in least..=per_state as u64 + 6 {
                    let exhaustive =
                        brute_force_with_joins(n, budget as usize, per_state, initial_free)
                            .unwrap();
                    let plan = if initial_free {
                        LevelOptimal::from_rest(n as u64, budget, per_state as u64)
                    } else {
                        LevelOptimal::new(n as u64, budget, per_state as u64)
                    };
                    let whole = plan.unwrap();
                    let joined = whole.clone().with_joins();
                    let stats = simulate(joined.clone()).unwrap();
                    let label = format!(
                        "n = {n}, {budget} levels, {per_state} a state, from rest {initial_free}"
                    );
                    assert_eq!(joined.advances(), exhaustive, "{label}: the programme");
                    assert_eq!(stats.advances, exhaustive, "{label}: the actions");
                    assert!(stats.peak_levels <= budget, "{label}: {stats:?}");
                    assert!(exhaustive <= whole.advances(), "{label}");
                }
            }
        }
    }
}

/// The table: total forward steps (advances and the recording step) within `2s`
/// levels, state 0 held, against the whole-state schedule's.
#[test]
fn joins_reach_the_exhaustive_search_figures() {
    for (n, s, whole, joined) in [(5, 2, 6, 5), (8, 3, 11, 9), (9, 3, 13, 11), (9, 4, 10, 9)] {
        let plan = LevelOptimal::new(n, 2 * s, 2).unwrap();
        assert_eq!(
            simulate(plan.clone())
                .unwrap()
                .state_adjoint_total_forward(),
            whole
        );
        let stats = simulate(plan.with_joins()).unwrap();
        assert_eq!(stats.state_adjoint_total_forward(), joined, "({n}, {s})");
        assert_eq!(
            Some(stats.state_adjoint_total_forward() - 1),
            brute_force_with_joins(n as u8, 2 * s as usize, 2, false)
        );
    }
}

/// Hand-written actions under a level budget of two levels a state.
struct Scripted {
    actions: std::vec::IntoIter<Action>,
    steps: u64,
    joins: bool,
}

impl Iterator for Scripted {
    type Item = Action;
    fn next(&mut self) -> Option<Action> {
        self.actions.next()
    }
}

impl Schedule for Scripted {
    fn steps(&self) -> u64 {
        self.steps
    }
    fn slot_capacity(&self) -> usize {
        2
    }
    fn level_budget(&self) -> Option<LevelBudget> {
        Some(LevelBudget {
            per_state: 2,
            levels: 4,
            initial_free: false,
            joins: self.joins,
        })
    }
}

/// The simulator's rules for a join, each broken once: the violation it names.
#[test]
fn the_simulator_checks_every_join() {
    use Action::*;
    let run = |steps: u64, joins: bool, actions: Vec<Action>| {
        simulate(Scripted {
            actions: actions.into_iter(),
            steps,
            joins,
        })
    };
    // Valid: state 1 from the reversed state 2 and state 0's newer level.
    let valid = vec![
        Save { step: 0, slot: 0 },
        Advance { from: 0, to: 2 },
        Reverse { step: 2 },
        Join { step: 1, slot: 0 },
        Reverse { step: 1 },
        Restore { step: 0, slot: 0 },
        Reverse { step: 0 },
        Free { step: 0, slot: 0 },
        End,
    ];
    let stats = run(3, true, valid.clone()).unwrap();
    assert_eq!((stats.advances, stats.joins), (2, 1));
    let violation = |steps, joins, actions| match run(steps, joins, actions) {
        Err(Error::InvalidSchedule { violation, .. }) => violation,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        violation(3, false, valid.clone()),
        Violation::JoinNotAllowed
    );
    let mut empty = valid.clone();
    empty[3] = Join { step: 1, slot: 1 };
    assert_eq!(
        violation(3, true, empty),
        Violation::JoinTooFar {
            step: 1,
            slot: 1,
            held: None
        }
    );
    // State 2 needs u₁: state 0 holds u₀ and u₋₁ only.
    let far = vec![
        Save { step: 0, slot: 0 },
        Advance { from: 0, to: 3 },
        Reverse { step: 3 },
        Join { step: 2, slot: 0 },
    ];
    assert_eq!(
        violation(4, true, far),
        Violation::JoinTooFar {
            step: 2,
            slot: 0,
            held: Some(0)
        }
    );
    // A reversed step, and a step far past the end (no overflow).
    for step in [2, u64::MAX] {
        let mut past = valid[..3].to_vec();
        past.push(Join { step, slot: 0 });
        assert_eq!(
            violation(3, true, past),
            Violation::JoinPastReverse {
                step,
                next_reverse: Some(1)
            }
        );
    }
    // The state above is neither live nor just reversed.
    let mut not_live = valid[..3].to_vec();
    not_live.extend([Restore { step: 0, slot: 0 }, Join { step: 1, slot: 0 }]);
    assert_eq!(
        violation(3, true, not_live),
        Violation::NotLive {
            needed: 2,
            live: Some(0)
        }
    );
}

#[test]
fn random_plans_with_joins_are_valid_within_budget_and_never_worse() {
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..30 {
        let n = rng.random_range(2..1500u64);
        let per_state = rng.random_range(2..=3u64);
        let levels = rng.random_range(per_state..=per_state * 30);
        let from_rest = rng.random_bool(0.5);
        let whole = if from_rest {
            LevelOptimal::from_rest(n, levels, per_state)
        } else {
            LevelOptimal::new(n, levels, per_state)
        }
        .unwrap();
        let joined = whole.clone().with_joins();
        let label =
            format!("seed {seed}: n = {n}, {levels} levels of {per_state}, rest {from_rest}");
        assert!(joined.joins(), "{label}");
        // The simulator checks every action, joins included, against the declared budget.
        let stats = simulate(joined.clone()).unwrap();
        assert_eq!(stats.advances, joined.advances(), "{label}");
        assert!(stats.peak_levels <= levels, "{label}");
        assert!(stats.peak_slots <= joined.slot_capacity(), "{label}");
        assert!(joined.advances() <= whole.advances(), "{label}");
    }
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
            joins: false,
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

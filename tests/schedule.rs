//! Schedules: optimality against two independent computations of `p(n, s)`, validity through
//! the simulator, and typed errors on bad input.

use gpurevolve::Error;
use gpurevolve::schedule::{
    Action, Revolve, StoreAll, Violation, max_snapshots_in_budget, max_steps, min_advances,
    min_snapshots_for_factor, plan, repetition_number, simulate, simulate_actions,
};

/// `p(l, a)` for all `l ≤ max_l`, `a ≤ max_a` by the recursion over split points: advance `j`
/// steps, checkpoint, reverse the right part with one snapshot fewer, then the left part.
/// Entirely independent of the closed form and of the schedule's split rule.
fn advances_by_recursion(max_l: usize, max_a: usize) -> Vec<Vec<u64>> {
    const INF: u64 = u64::MAX / 4;
    let mut p = vec![vec![INF; max_a + 1]; max_l + 1];
    for row in p.iter_mut().skip(1).take(1) {
        row.fill(0); // one step: reverse it from the checkpoint, no advance
    }
    for l in 2..=max_l {
        for a in 1..=max_a {
            let mut best = INF;
            for j in 1..l {
                best = best.min(j as u64 + p[l - j][a - 1] + p[j][a]);
            }
            p[l][a] = best;
        }
    }
    p
}

#[test]
fn design_table_values() {
    // Reference values of Griewank & Walther's formulas (the README's "Counting conventions"): (n, s, t, p, n + p).
    let table: [(u64, u64, u64, u64, u64); 9] = [
        (10, 1, 9, 45, 55),
        (10, 2, 3, 20, 30),
        (10, 3, 2, 15, 25),
        (10, 9, 1, 9, 19),
        (100, 10, 3, 222, 322),
        (1000, 10, 4, 3636, 4636),
        (1000, 5, 8, 6284, 7284),
        (1000, 3, 17, 12155, 13155),
        (10000, 20, 4, 37976, 47976),
    ];
    for (n, s, t, p, total) in table {
        assert_eq!(repetition_number(n, s).unwrap(), t, "t({n}, {s})");
        assert_eq!(min_advances(n, s).unwrap(), p, "p({n}, {s})");
        let info = plan(n, s).unwrap();
        assert_eq!(info.total_forward, total, "n + p for ({n}, {s})");
        let stats = simulate(Revolve::new(n, s).unwrap()).unwrap();
        assert_eq!(stats.advances, p, "Revolve({n}, {s}) advances");
        assert_eq!(
            stats.total_forward, total,
            "Revolve({n}, {s}) forward steps"
        );
        assert_eq!(stats.reverse_steps, n);
    }
}

#[test]
fn every_small_schedule_is_valid_and_optimal() {
    const MAX_N: usize = 400;
    const MAX_S: usize = 40;
    let recursion = advances_by_recursion(MAX_N, MAX_S);
    for n in 1..=MAX_N as u64 {
        for s in 1..=MAX_S as u64 {
            let closed = min_advances(n, s).unwrap();
            assert_eq!(
                closed, recursion[n as usize][s as usize],
                "p({n}, {s}) closed form vs recursion"
            );
            if s > n {
                // The formula covers it; the schedule refuses it (see below).
                continue;
            }
            let stats = simulate(Revolve::new(n, s).unwrap())
                .unwrap_or_else(|e| panic!("Revolve({n}, {s}) rejected: {e}"));
            assert_eq!(stats.advances, closed, "Revolve({n}, {s}) advances");
            assert_eq!(stats.total_forward, n + closed);
            assert_eq!(stats.reverse_steps, n);
            assert_eq!(stats.saves, stats.frees, "every save freed");
            assert!(
                stats.peak_slots as u64 <= s.min(n - 1),
                "Revolve({n}, {s}) peak {}",
                stats.peak_slots
            );
        }
    }
}

#[test]
fn no_step_is_advanced_more_than_the_repetition_number() {
    for n in 1..=120u64 {
        for s in 1..=12u64.min(n) {
            let mut count = vec![0u64; n as usize];
            for action in Revolve::new(n, s).unwrap() {
                if let Action::Advance { from, to } = action {
                    for c in &mut count[from as usize..to as usize] {
                        *c += 1;
                    }
                }
            }
            let most = count.iter().copied().max().unwrap_or(0);
            assert_eq!(most, repetition_number(n, s).unwrap(), "({n}, {s})");
        }
    }
}

#[test]
fn large_sampled_schedules_match_the_closed_form() {
    for (n, s) in [
        (100_000u64, 2u64),
        (100_000, 7),
        (250_000, 33),
        (1_000_000, 100),
        (1_000_000, 1000),
        (1_000_000, 1_000_000),
    ] {
        let stats = simulate(Revolve::new(n, s).unwrap()).unwrap();
        assert_eq!(stats.advances, min_advances(n, s).unwrap(), "({n}, {s})");
        assert!(stats.peak_slots as u64 <= s.min(n - 1));
    }
}

#[test]
fn store_all_equals_revolve_with_enough_snapshots() {
    for n in 1..=60u64 {
        let store_all: Vec<Action> = StoreAll::new(n).unwrap().collect();
        for s in (n - 1).max(1)..=n {
            let revolve: Vec<Action> = Revolve::new(n, s).unwrap().collect();
            assert_eq!(store_all, revolve, "n = {n}, s = {s}");
        }
        // More snapshots than steps is a mistake, not a bigger budget.
        match Revolve::new(n, n + 1) {
            Err(Error::InvalidArgument {
                name: "snaps",
                reason,
            }) => {
                assert!(reason.contains(&format!("at most {n}")), "{reason}")
            }
            other => panic!("n = {n}: expected an error, got {other:?}"),
        }
        let stats = simulate(StoreAll::new(n).unwrap()).unwrap();
        assert_eq!(stats.advances, n - 1);
        assert_eq!(stats.peak_slots as u64, n - 1);
    }
}

#[test]
fn small_case_actions() {
    // n = 10, s = 3: the sequence shown in the crate documentation.
    use Action::*;
    let actions: Vec<Action> = Revolve::new(10, 3).unwrap().collect();
    assert_eq!(actions.first(), Some(&Save { step: 0, slot: 0 }));
    assert_eq!(actions.last(), Some(&End));
    let reversed: Vec<u64> = actions
        .iter()
        .filter_map(|a| match a {
            Reverse { step } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(reversed, (0..10).rev().collect::<Vec<_>>());
}

#[test]
fn deleting_any_action_makes_a_schedule_invalid() {
    let actions: Vec<Action> = Revolve::new(30, 4).unwrap().collect();
    simulate_actions(30, 4, actions.iter().copied()).unwrap();
    for skip in 0..actions.len() {
        let mutated = actions
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != skip)
            .map(|(_, a)| *a);
        assert!(
            simulate_actions(30, 4, mutated).is_err(),
            "dropping action #{skip} ({}) went unnoticed",
            actions[skip]
        );
    }
}

fn violation(steps: u64, capacity: usize, actions: &[Action]) -> (u64, Violation) {
    match simulate_actions(steps, capacity, actions.iter().copied()) {
        Err(Error::InvalidSchedule {
            index, violation, ..
        }) => (index, violation),
        other => panic!("expected a rejected schedule, got {other:?}"),
    }
}

#[test]
fn simulator_names_the_action_and_the_reason() {
    use Action::*;
    assert_eq!(
        violation(3, 1, &[Reverse { step: 1 }]),
        (
            0,
            Violation::ReverseOutOfOrder {
                step: 1,
                expected: Some(2)
            }
        )
    );
    assert_eq!(
        violation(3, 1, &[Reverse { step: 2 }]),
        (
            0,
            Violation::NotLive {
                needed: 2,
                live: Some(0)
            }
        )
    );
    assert_eq!(
        violation(
            3,
            1,
            &[Save { step: 0, slot: 0 }, Save { step: 0, slot: 0 }]
        ),
        (1, Violation::SlotOccupied { slot: 0, holds: 0 })
    );
    assert_eq!(
        violation(3, 1, &[Save { step: 0, slot: 1 }]),
        (
            0,
            Violation::SlotOutOfRange {
                slot: 1,
                capacity: 1
            }
        )
    );
    assert_eq!(
        violation(3, 1, &[Advance { from: 0, to: 0 }]),
        (0, Violation::EmptyAdvance)
    );
    assert_eq!(
        violation(3, 1, &[Advance { from: 0, to: 3 }]),
        (
            0,
            Violation::AdvancePastReverse {
                to: 3,
                next_reverse: Some(2)
            }
        )
    );
    assert_eq!(
        violation(3, 1, &[Restore { step: 0, slot: 0 }]),
        (
            0,
            Violation::SlotMismatch {
                slot: 0,
                expected: 0,
                holds: None
            }
        )
    );
    assert_eq!(
        violation(
            2,
            1,
            &[
                Save { step: 0, slot: 0 },
                Advance { from: 0, to: 1 },
                Reverse { step: 1 },
                Advance { from: 1, to: 2 }
            ]
        ),
        (
            3,
            Violation::NotLive {
                needed: 1,
                live: None
            }
        )
    );
    assert_eq!(
        violation(1, 1, &[Save { step: 0, slot: 0 }, Reverse { step: 0 }, End]),
        (2, Violation::EndWithHeldSlots { held: 1 })
    );
    assert_eq!(
        violation(2, 0, &[End]),
        (0, Violation::EndBeforeDone { remaining: 2 })
    );
    assert_eq!(
        violation(1, 0, &[Reverse { step: 0 }]),
        (1, Violation::MissingEnd)
    );
    assert_eq!(
        violation(1, 0, &[Reverse { step: 0 }, End, End]),
        (2, Violation::ActionAfterEnd)
    );
    // The message carries the index, the action and the reason.
    let err = simulate_actions(3, 1, [Action::Reverse { step: 1 }]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid schedule at action #0 (reverse step 1): reverses step 1, but step 2 is next"
    );
}

#[test]
fn bad_input_gives_typed_errors() {
    assert!(matches!(Revolve::new(0, 3), Err(Error::ZeroSteps)));
    assert!(matches!(Revolve::new(5, 0), Err(Error::ZeroSnapshots)));
    assert!(matches!(StoreAll::new(0), Err(Error::ZeroSteps)));
    assert!(matches!(min_advances(0, 1), Err(Error::ZeroSteps)));
    assert!(matches!(repetition_number(7, 0), Err(Error::ZeroSnapshots)));
    assert!(matches!(max_steps(0, 3), Err(Error::ZeroSnapshots)));
    // Counts that overflow 64 bits.
    assert!(matches!(
        min_advances(u64::MAX, 1),
        Err(Error::CountOverflow { .. })
    ));
    assert!(matches!(
        Revolve::new(u64::MAX, 2),
        Err(Error::CountOverflow { .. })
    ));
    assert!(matches!(
        max_steps(u64::MAX, u64::MAX),
        Err(Error::CountOverflow { .. })
    ));
    assert!(matches!(
        max_steps(40, 40),
        Err(Error::CountOverflow { .. })
    )); // C(80, 40) > 2^64
    // ... and ones that just fit.
    assert_eq!(max_steps(33, 33).unwrap(), 7_219_428_434_016_265_740); // C(66, 33)
    assert_eq!(min_advances(u64::MAX, u64::MAX).unwrap(), u64::MAX - 1);
    assert_eq!(
        min_advances(1 << 32, 1).unwrap(),
        (1u64 << 31) * ((1 << 32) - 1)
    );
    // Planning helpers.
    assert!(matches!(
        min_snapshots_for_factor(0, 3.0),
        Err(Error::ZeroSteps)
    ));
    assert!(matches!(
        min_snapshots_for_factor(10, f64::NAN),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        min_snapshots_for_factor(10, 1.5),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        max_snapshots_in_budget(100, 0),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        max_snapshots_in_budget(100, 101),
        Err(Error::SnapshotBudget {
            budget_bytes: 100,
            state_bytes: 101
        })
    ));
}

#[test]
fn planning_helpers_agree_with_the_formulas() {
    // β(s, t) is the most steps reversible at repetition t: t(β(s, t), s) = t, t(β + 1, s) = t + 1.
    for s in 1..=12u64 {
        for t in 1..=12u64 {
            let b = max_steps(s, t).unwrap();
            assert_eq!(repetition_number(b, s).unwrap(), t);
            assert_eq!(repetition_number(b + 1, s).unwrap(), t + 1);
        }
    }
    assert_eq!(min_snapshots_for_factor(10, 1.9).unwrap(), 9);
    assert_eq!(min_snapshots_for_factor(10, 2.5).unwrap(), 3);
    assert_eq!(min_snapshots_for_factor(10, 2.49).unwrap(), 4);
    assert_eq!(min_snapshots_for_factor(1, 1.0).unwrap(), 1);
    assert_eq!(max_snapshots_in_budget(1000, 10).unwrap(), 100);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn revolve_is_valid_and_optimal(n in 1u64..4000, s in 1u64..300) {
            let s = s.min(n);
            let stats = simulate(Revolve::new(n, s).unwrap()).unwrap();
            let p = min_advances(n, s).unwrap();
            prop_assert_eq!(stats.advances, p);
            prop_assert_eq!(stats.total_forward, n + p);
            prop_assert!(stats.peak_slots as u64 <= s.min(n - 1));
            // t bounds: β(s, t − 1) < n ≤ β(s, t).
            let t = repetition_number(n, s).unwrap();
            prop_assert!(max_steps(s, t).unwrap() >= n);
            if t > 0 {
                prop_assert!(max_steps(s, t - 1).unwrap() < n);
            }
        }

        #[test]
        fn advances_fall_with_snapshots_and_rise_with_steps(n in 2u64..1_000_000, s in 1u64..500) {
            let p = min_advances(n, s).unwrap();
            prop_assert!(min_advances(n, s + 1).unwrap() <= p);
            prop_assert!(min_advances(n + 1, s).unwrap() > p);
            prop_assert!(p >= n - 1);
        }

        #[test]
        fn fewest_snapshots_for_a_factor_is_tight(n in 2u64..100_000, factor in 1.0f64..40.0) {
            let best = (2 * n - 1) as f64 / n as f64;
            match min_snapshots_for_factor(n, factor) {
                Ok(s) => {
                    prop_assert!(plan(n, s).unwrap().recompute_factor <= factor);
                    if s > 1 {
                        prop_assert!(plan(n, s - 1).unwrap().recompute_factor > factor);
                    }
                }
                Err(Error::InvalidArgument { .. }) => prop_assert!(factor < best),
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }

        #[test]
        fn budget_holds_floor_snapshots(budget in 0u64..1 << 40, state in 1u64..1 << 30) {
            match max_snapshots_in_budget(budget, state) {
                Ok(k) => prop_assert!(k * state <= budget && (k + 1) * state > budget),
                Err(Error::SnapshotBudget { .. }) => prop_assert!(budget < state),
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
    }
}

#[test]
fn an_advance_after_every_step_is_reversed_is_refused_without_wrapping() {
    use Action::*;
    // No steps at all: the next step to reverse does not exist.
    assert_eq!(
        violation(0, 1, &[Advance { from: 0, to: 1 }]),
        (
            0,
            Violation::AdvancePastReverse {
                to: 1,
                next_reverse: None
            }
        )
    );
    // One step, reversed, then its state restored and advanced.
    let actions = [
        Save { step: 0, slot: 0 },
        Reverse { step: 0 },
        Restore { step: 0, slot: 0 },
        Advance { from: 0, to: 1 },
    ];
    let (index, v) = violation(1, 1, &actions);
    assert_eq!(index, 3);
    assert_eq!(
        v,
        Violation::AdvancePastReverse {
            to: 1,
            next_reverse: None
        }
    );
    assert!(
        v.to_string().contains("every step is already reversed"),
        "{v}"
    );
}

#[test]
fn planned_schedules_agree_with_the_simulator() {
    use Action::*;
    use gpurevolve::schedule::{Schedule, TierCost, TieredCosts, TwoTier, planned};
    let costs = TieredCosts::two_tier(
        1.0,
        TierCost {
            write: 3.0,
            read: 2.0,
        },
    );
    for n in [1u64, 2, 7, 50] {
        let own: Vec<Box<dyn Schedule>> = vec![
            Box::new(Revolve::new(n, n.min(3)).unwrap()),
            Box::new(StoreAll::new(n).unwrap()),
            Box::new(TwoTier::new(n, 1, 2, &costs).unwrap()),
        ];
        for schedule in own {
            let said = schedule.planned().unwrap().expect("plans itself");
            let mut uses = vec![0u64; schedule.slot_capacity()];
            let actions: Vec<Action> = schedule.collect();
            for a in &actions {
                if let Save { slot, .. } | Restore { slot, .. } = *a {
                    uses[slot] += 1;
                }
            }
            let capacity = uses.len();
            assert_eq!(said.slot_uses, uses, "n = {n}");
            assert_eq!(said.stats, simulate_actions(n, capacity, actions).unwrap());
        }
    }
    // A replayed copy: planning consumes nothing of the schedule itself.
    let revolve = Revolve::new(100, 10).unwrap();
    let plan = planned(revolve.clone()).unwrap();
    assert_eq!(plan.stats.total_forward, 322);
    assert_eq!(revolve.count() as u64, plan.stats.actions);
}

//! The cost-optimal schedule over any number of tiers: valid, its cost what it claims, within
//! each tier's slots, Revolve's optimum with one tier, never above the multistage placement of
//! Revolve over the same tiers, and equal to a brute-force search over all schedules with three
//! tiers on small cases. (The two-tier case has its own tests in `two_tier.rs`.)

#[path = "common/brute_force.rs"]
mod brute_force;

use brute_force::brute_force;
use gpurevolve::schedule::{
    Action, CostOptimal, Multistage, Revolve, Tier, TierCost, TieredCosts, min_advances, planned,
    simulate,
};
use proptest::prelude::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Plans, checks validity, claimed cost and per-tier peaks; returns the cost.
fn check(n: u64, slots: &[usize], costs: &TieredCosts) -> f64 {
    let plan = CostOptimal::new(n, slots, costs).unwrap();
    let (cost, tiers) = (plan.cost(), plan.tiers());
    assert_eq!(tiers.len(), slots.iter().sum::<usize>());
    let actions: Vec<Action> = plan.clone().collect();
    simulate(plan).unwrap_or_else(|e| panic!("({n}, {slots:?}): {e}"));
    assert!(
        close(costs.evaluate(actions.iter().copied(), &tiers), cost),
        "({n}, {slots:?}) cost"
    );
    let (mut held, mut peak) = (vec![0usize; slots.len()], vec![0usize; slots.len()]);
    for a in &actions {
        match *a {
            Action::Save { slot, .. } => {
                let t = tiers[slot].0;
                held[t] += 1;
                peak[t] = peak[t].max(held[t]);
            }
            Action::Free { slot, .. } => held[tiers[slot].0] -= 1,
            _ => {}
        }
    }
    for (t, (&p, &s)) in peak.iter().zip(slots).enumerate() {
        assert!(p <= s, "({n}, {slots:?}): tier {t} holds {p} > {s}");
    }
    cost
}

fn costs(forward: f64, tiers: &[(f64, f64)]) -> TieredCosts {
    TieredCosts {
        forward,
        tiers: tiers
            .iter()
            .map(|&(write, read)| TierCost { write, read })
            .collect(),
    }
}

#[test]
fn one_tier_is_revolve() {
    for n in [1u64, 2, 10, 57, 200] {
        for s in [1usize, 2, 5] {
            let c = check(n, &[s], &costs(1.0, &[(0.0, 0.0)]));
            assert_eq!(c, min_advances(n, s as u64).unwrap() as f64, "({n}, {s})");
        }
    }
}

#[test]
fn equals_the_brute_force_optimum_with_three_tiers() {
    let cases = [
        costs(1.0, &[(0.0, 0.0), (0.5, 0.25), (3.0, 2.0)]),
        costs(1.0, &[(0.0, 0.0), (2.0, 1.0), (2.5, 1.0)]),
        costs(0.2, &[(0.0, 0.0), (1.0, 1.5), (0.5, 4.0)]),
        costs(1.0, &[(0.1, 0.1), (0.0, 3.0), (5.0, 0.0)]),
    ];
    for c in &cases {
        for n in 1..=6u8 {
            for slots in [
                [1, 1, 1],
                [0, 1, 1],
                [1, 0, 2],
                [2, 1, 0],
                [1, 1, 2],
                [0, 0, 2],
            ] {
                let dp = check(n as u64, &slots, c);
                let bf = brute_force(n, &slots, c);
                assert!(
                    close(dp, bf),
                    "n = {n}, slots {slots:?}, {c:?}: plan {dp}, brute force {bf}"
                );
            }
        }
    }
}

#[test]
fn bad_input_is_typed() {
    let c = costs(1.0, &[(0.0, 0.0), (1.0, 1.0), (2.0, 2.0)]);
    assert!(CostOptimal::new(0, &[1, 1, 1], &c).is_err());
    assert!(CostOptimal::new(10, &[0, 0, 0], &c).is_err());
    assert!(
        CostOptimal::new(10, &[1, 1], &c).is_err(),
        "a tier without costs"
    );
    assert!(CostOptimal::new(10, &[], &costs(1.0, &[])).is_err());
    let nan = costs(1.0, &[(0.0, 0.0), (1.0, f64::NAN), (2.0, 2.0)]);
    assert!(CostOptimal::new(10, &[1, 1, 1], &nan).is_err());
    assert!(CostOptimal::new(1_000_000, &[10, 10, 10], &c).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn equals_the_brute_force_optimum_for_random_costs(
        n in 1u8..6,
        slots in prop::collection::vec(0usize..3, 3),
        forward in 0.0f64..3.0,
        tier_costs in prop::collection::vec((0.0f64..5.0, 0.0f64..5.0), 3),
    ) {
        prop_assume!(slots.iter().sum::<usize>() > 0);
        let c = costs(forward, &tier_costs);
        let dp = check(n as u64, &slots, &c);
        let bf = brute_force(n, &slots, &c);
        // The brute force rounds costs to 1e-6.
        prop_assert!((dp - bf).abs() <= 1e-4, "plan {} vs brute force {}", dp, bf);
    }

    #[test]
    fn never_costs_more_than_multistage_over_the_same_tiers(
        n in 2u64..120,
        slots in prop::collection::vec(0usize..4, 3),
        tier_costs in prop::collection::vec((0.0f64..20.0, 0.0f64..20.0), 3),
    ) {
        let total = slots.iter().sum::<usize>();
        prop_assume!(total > 0);
        let c = costs(1.0, &tier_costs);
        let optimal = check(n, &slots, &c);
        // Revolve with the same slots (at most n), the busiest in tier 0, then tier 1, then 2.
        let revolve = Revolve::new(n, (total as u64).min(n)).unwrap();
        let plan = planned(revolve.clone()).unwrap();
        let budgets: Vec<Option<u64>> = slots.iter().map(|&s| Some(s as u64)).collect();
        let placement =
            Multistage::over_tiers(&plan.slot_uses, plan.stats.peak_slots, 1, &budgets).unwrap();
        let multistage = c.evaluate(revolve, placement.tiers());
        prop_assert!(optimal <= multistage + 1e-9, "optimal {} > multistage {}", optimal, multistage);
        // And a tier given no slot is never used.
        for (t, &s) in slots.iter().enumerate() {
            if s == 0 {
                let plan = CostOptimal::new(n, &slots, &c).unwrap();
                prop_assert!(!plan.tiers().contains(&Tier(t)));
            }
        }
    }
}

//! The cost-optimal schedule over any number of tiers: valid, its cost what it claims, within
//! each tier's slots, Revolve's optimum with one tier, never above the multistage placement of
//! Revolve over the same tiers, and equal to a brute-force search over all schedules with three
//! tiers on small cases. (The two-tier case has its own tests in `two_level.rs`.)

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

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

/// The least cost over *all* schedules (any order of single-step advances, saves, restores,
/// frees and reverses), by Dijkstra over (next step to reverse, live state, held checkpoints
/// with their tiers).
fn brute_force(n: u8, slots: &[usize], c: &TieredCosts) -> f64 {
    type State = (u8, Option<u8>, Vec<(u8, usize)>); // (end, live, held (step, tier))
    let scale = |x: f64| (x * 1e6).round() as u64;
    let forward = scale(c.forward);
    let (write, read): (Vec<u64>, Vec<u64>) = c
        .tiers
        .iter()
        .map(|t| (scale(t.write), scale(t.read)))
        .unzip();
    let start: State = (n, Some(0), vec![]);
    let mut best: HashMap<State, u64> = HashMap::new();
    let mut heap = BinaryHeap::new();
    heap.push(Reverse((0u64, start.clone())));
    best.insert(start, 0);
    while let Some(Reverse((cost, state))) = heap.pop() {
        if best.get(&state).is_some_and(|&b| b < cost) {
            continue;
        }
        let (end, live, held) = &state;
        if *end == 0 {
            return cost as f64 / 1e6;
        }
        let mut next: Vec<(u64, State)> = Vec::new();
        if let Some(k) = *live {
            if k + 1 < *end {
                next.push((forward, (*end, Some(k + 1), held.clone())));
            }
            if k + 1 == *end {
                next.push((0, (k, None, held.clone())));
            }
            for (tier, &cap) in slots.iter().enumerate() {
                let used = held.iter().filter(|h| h.1 == tier).count();
                if used < cap && !held.contains(&(k, tier)) {
                    let mut h = held.clone();
                    h.push((k, tier));
                    h.sort_unstable();
                    next.push((write[tier], (*end, live.to_owned(), h)));
                }
            }
        }
        for (i, &(step, tier)) in held.iter().enumerate() {
            if step < *end {
                next.push((read[tier], (*end, Some(step), held.clone())));
            }
            let mut h = held.clone();
            h.remove(i);
            next.push((0, (*end, *live, h)));
        }
        for (dc, s) in next {
            let nc = cost + dc;
            if best.get(&s).is_none_or(|&b| nc < b) {
                best.insert(s.clone(), nc);
                heap.push(Reverse((nc, s)));
            }
        }
    }
    f64::INFINITY
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

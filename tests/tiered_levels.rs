//! The level schedule over two tiers: optimal over every whole-state schedule with GPU levels
//! and host slots (exhaustive search), valid within both budgets (the simulator), and never
//! dearer than either tier alone.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use gpurevolve::Error;
use gpurevolve::schedule::{
    Action, LevelOptimal, Tier, TierCost, TieredCosts, TieredLevels, TwoTier, simulate,
};

/// Integer unit costs, so that sums are exact in both searches.
#[derive(Clone, Copy, Debug)]
struct Costs {
    forward: u64,
    write: u64,
    read: u64,
}

impl Costs {
    fn two_tier(self) -> TieredCosts {
        TieredCosts::two_tier(
            self.forward as f64,
            TierCost {
                write: self.write as f64,
                read: self.read as f64,
            },
        )
    }
}

/// A saved state: its step, and whether it is in host memory.
type Held = (u8, bool);

/// Distinct GPU time levels of the states `held` on the GPU; state 0's count only when it is
/// held (not rebuilt).
fn gpu_levels(held: &[Held], q: u8, initial_free: bool) -> usize {
    held.iter()
        .filter(|&&(k, host)| !(host || initial_free && k == 0))
        .flat_map(|&(k, _)| (0..q).map(move |j| k as i32 - j as i32))
        .collect::<HashSet<_>>()
        .len()
}

/// The least cost over *every* sequence of moves on whole states: advance the live state one
/// step, save it on the GPU (within `levels`) or in host memory (within `slots`, for `write`),
/// restore any saved state (from host memory for `read`), free any, reverse the next step when
/// it is live. Dijkstra over (next step to reverse, live state, saved states). With
/// `initial_free`, state 0 is held on the GPU from the start at no cost.
fn brute_force(n: u8, levels: usize, slots: usize, q: u8, costs: Costs, initial_free: bool) -> u64 {
    type Node = (u8, Option<u8>, Vec<Held>);
    let start: Node = (
        n,
        Some(0),
        if initial_free {
            vec![(0, false)]
        } else {
            vec![]
        },
    );
    let mut best: HashMap<Node, u64> = HashMap::from([(start.clone(), 0)]);
    let mut heap = BinaryHeap::from([Reverse((0u64, start))]);
    while let Some(Reverse((cost, node))) = heap.pop() {
        if best.get(&node).is_some_and(|&b| b < cost) {
            continue;
        }
        let (end, live, held) = &node;
        if *end == 0 {
            return cost;
        }
        let mut next: Vec<(u64, Node)> = Vec::new();
        if let Some(k) = *live {
            if k + 1 < *end {
                next.push((costs.forward, (*end, Some(k + 1), held.clone())));
            }
            if k + 1 == *end {
                next.push((0, (k, None, held.clone())));
            }
            for host in [false, true] {
                if held.contains(&(k, host)) {
                    continue;
                }
                let mut h = held.clone();
                h.push((k, host));
                h.sort_unstable();
                let fits = if host {
                    h.iter().filter(|s| s.1).count() <= slots
                } else {
                    gpu_levels(&h, q, initial_free) <= levels
                };
                if fits {
                    let write = if host { costs.write } else { 0 };
                    next.push((write, (*end, *live, h)));
                }
            }
        }
        for (i, &(k, host)) in held.iter().enumerate() {
            if k < *end && *live != Some(k) {
                let read = if host { costs.read } else { 0 };
                next.push((read, (*end, Some(k), held.clone())));
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
    unreachable!("every budget that plans can reverse the steps")
}

const COSTS: [Costs; 4] = [
    Costs {
        forward: 1,
        write: 1,
        read: 1,
    },
    Costs {
        forward: 2,
        write: 1,
        read: 3,
    },
    Costs {
        forward: 1,
        write: 0,
        read: 0,
    },
    Costs {
        forward: 3,
        write: 5,
        read: 2,
    },
];

/// Plans, simulates and prices one case: the programme's cost, the actions' cost, and the
/// peak GPU levels and host slots.
fn check(plan: TieredLevels, costs: Costs) -> (f64, f64, u64, usize) {
    let tiers = plan.tiers().to_vec();
    let actions: Vec<Action> = plan.clone().collect();
    let stats = simulate(plan.clone()).unwrap();
    let priced = costs.two_tier().evaluate(actions.iter().copied(), &tiers);
    // Host slots held at once.
    let mut held = vec![false; tiers.len()];
    let mut peak_host = 0;
    for a in &actions {
        match *a {
            Action::Save { slot, .. } => held[slot] = true,
            Action::Free { slot, .. } => held[slot] = false,
            _ => {}
        }
        let on_host = (0..held.len()).filter(|&s| held[s] && tiers[s] == Tier::HOST);
        peak_host = peak_host.max(on_host.count());
    }
    (plan.cost(), priced, stats.peak_levels, peak_host)
}

/// The programme, the priced actions and the search agree on one case, within both budgets.
fn agrees_with_the_search(n: u8, levels: usize, slots: usize, q: u8, costs: Costs, rest: bool) {
    let rest_label = if rest { "from rest: " } else { "" };
    let label =
        format!("{rest_label}n = {n}, {levels} levels of {q}, {slots} host slots, {costs:?}");
    let exhaustive = brute_force(n, levels, slots, q, costs, rest);
    let plan_with = if rest {
        TieredLevels::from_rest
    } else {
        TieredLevels::new
    };
    let (n64, l64, h64, q64) = (n as u64, levels as u64, slots as u64, q as u64);
    let plan = plan_with(n64, l64, h64, q64, &costs.two_tier()).unwrap();
    let (cost, priced, peak_levels, peak_host) = check(plan, costs);
    assert_eq!(cost, exhaustive as f64, "{label}: the programme");
    assert_eq!(priced, exhaustive as f64, "{label}: the actions");
    assert!(peak_levels <= l64, "{label}: {peak_levels} levels");
    assert!(peak_host <= slots, "{label}: {peak_host} host slots");
}

#[test]
fn the_plan_is_optimal_over_every_whole_state_schedule() {
    for q in 1..=2u8 {
        for n in 1..=8u8 {
            for levels in [0, q as usize, q as usize + 1, q as usize + 3] {
                // With no levels for it, state 0 needs a host slot.
                for slots in usize::from(levels < q as usize)..=2 {
                    for costs in COSTS {
                        agrees_with_the_search(n, levels, slots, q, costs, false);
                    }
                }
            }
        }
    }
}

#[test]
fn from_rest_the_plan_is_optimal_over_every_whole_state_schedule() {
    for q in 1..=2u8 {
        for n in 1..=8u8 {
            for levels in [0, 1, q as usize + 2] {
                for slots in 0..=2usize {
                    for costs in COSTS {
                        agrees_with_the_search(n, levels, slots, q, costs, true);
                    }
                }
            }
        }
    }
}

/// With three levels a state the programme may charge a device state above a host one more
/// than it holds (see the module docs): never cheaper than the search, always within budget.
#[test]
fn with_three_levels_a_state_the_plan_is_valid_and_never_below_the_search() {
    let costs = COSTS[1];
    for n in 1..=7u8 {
        for (levels, slots) in [(3, 1), (4, 2), (6, 1)] {
            let exhaustive = brute_force(n, levels, slots, 3, costs, false);
            let plan =
                TieredLevels::new(n as u64, levels as u64, slots as u64, 3, &costs.two_tier())
                    .unwrap();
            let (cost, priced, peak_levels, peak_host) = check(plan, costs);
            assert_eq!(cost, priced);
            assert!(cost >= exhaustive as f64);
            assert!(peak_levels <= levels as u64 && peak_host <= slots);
        }
    }
}

/// Host slots never make a plan dearer than the GPU's levels alone, and free host copies make
/// it as cheap as having those states' levels on the GPU.
#[test]
fn host_slots_help_and_free_copies_help_most() {
    let steps = 300;
    let gpu_only = simulate(LevelOptimal::from_rest(steps, 8, 2).unwrap())
        .unwrap()
        .advances as f64;
    let costs = |copy: f64| {
        TieredCosts::two_tier(
            1.0,
            TierCost {
                write: copy,
                read: copy,
            },
        )
    };
    let mut last = 0.0;
    for copy in [0.0, 1.0, 4.0, 1e6] {
        let plan = TieredLevels::from_rest(steps, 8, 6, 2, &costs(copy)).unwrap();
        let cost = plan.cost();
        assert!(
            cost <= gpu_only,
            "copies at {copy}: {cost} against {gpu_only}"
        );
        assert!(cost >= last, "dearer copies cannot make a cheaper plan");
        last = cost;
        simulate(plan).unwrap();
    }
    // Copies that cost more than any recomputation: the host goes unused.
    assert_eq!(last, gpu_only);
    // Free copies: 6 host slots are worth at least 6 more two-level states on the GPU... and
    // no more than 12 levels (a host copy cannot share).
    let free = TieredLevels::from_rest(steps, 8, 6, 2, &costs(0.0))
        .unwrap()
        .cost();
    let wide = simulate(LevelOptimal::from_rest(steps, 8 + 12, 2).unwrap())
        .unwrap()
        .advances as f64;
    assert!(
        free >= wide,
        "{free} against {wide} with the host's memory on the GPU"
    );
}

#[test]
fn bad_input_is_typed() {
    let costs = TieredCosts::two_tier(
        1.0,
        TierCost {
            write: 1.0,
            read: 1.0,
        },
    );
    assert!(matches!(
        TieredLevels::new(0, 4, 1, 2, &costs),
        Err(Error::ZeroSteps)
    ));
    assert!(matches!(
        TieredLevels::new(10, 1, 0, 2, &costs),
        Err(Error::LevelBudget {
            levels: 1,
            needed: 2
        })
    ));
    assert!(matches!(
        TieredLevels::new(10, 4, 1, 0, &costs),
        Err(Error::InvalidArgument {
            name: "per_state",
            ..
        })
    ));
    let bad = TieredCosts::two_tier(
        costs.forward,
        TierCost {
            read: f64::NAN,
            ..costs.tier(Tier::HOST)
        },
    );
    assert!(matches!(
        TieredLevels::new(10, 4, 1, 2, &bad),
        Err(Error::InvalidArgument { name: "costs", .. })
    ));
    assert!(matches!(
        TieredLevels::from_rest(100_000, 200, 100, 2, &costs),
        Err(Error::PlanTooLarge { .. })
    ));
}

/// Revolve's shape over whole snapshots by cost ([`TwoTier`]) is one of the schedules the
/// programme searches (whole states, no sharing), so in the same memory it is never cheaper.
#[test]
fn never_dearer_than_revolves_shape_in_the_same_memory() {
    for n in [2u64, 5, 13, 40, 97, 200] {
        for (snaps, host) in [(1usize, 1usize), (1, 4), (2, 3), (3, 6), (5, 2)] {
            for copy in [0.5, 2.0, 8.0] {
                let costs = TieredCosts::two_tier(
                    1.0,
                    TierCost {
                        write: copy,
                        read: 0.5 * copy,
                    },
                );
                let two = TwoTier::new(n, snaps, host, &costs).unwrap();
                let two_cost = costs.evaluate(two.clone(), &two.tiers());
                let plan = TieredLevels::new(n, 2 * snaps as u64, host as u64, 2, &costs).unwrap();
                assert!(
                    plan.cost() <= two_cost + 1e-9,
                    "n = {n}, {snaps} GPU snapshots, {host} host, copies {copy}: {} against {two_cost}",
                    plan.cost()
                );
            }
        }
    }
}

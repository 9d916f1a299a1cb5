//! The cost-optimal two-tier schedule: valid, its cost what it claims, never above the
//! multistage placement of Revolve, Revolve's own optimum at the extremes, and equal to a
//! brute-force search over all schedules on small cases.

#[path = "common/brute_force.rs"]
mod brute_force;

use gpurevolve::schedule::{
    Action, Multistage, Revolve, Tier, TierCost, TieredCosts, TwoTier, min_advances, simulate,
};
use proptest::prelude::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Slots held at once per tier, at peak.
fn peaks(actions: &[Action], tiers: &[Tier]) -> (usize, usize) {
    let (mut held, mut peak) = ([0usize; 2], [0usize; 2]);
    for a in actions {
        match *a {
            Action::Save { slot, .. } => {
                let t = usize::from(tiers[slot] == Tier::HOST);
                held[t] += 1;
                peak[t] = peak[t].max(held[t]);
            }
            Action::Free { slot, .. } => held[usize::from(tiers[slot] == Tier::HOST)] -= 1,
            _ => {}
        }
    }
    (peak[0], peak[1])
}

fn check(n: u64, m: usize, d: usize, costs: &TieredCosts) -> f64 {
    let plan = TwoTier::new(n, m, d, costs).unwrap();
    let (cost, tiers) = (plan.cost(), plan.tiers());
    let actions: Vec<Action> = plan.clone().collect();
    simulate(plan).unwrap_or_else(|e| panic!("({n}, {m}, {d}): {e}"));
    assert!(
        close(costs.evaluate(actions.iter().copied(), &tiers), cost),
        "({n}, {m}, {d}) cost"
    );
    let (pm, pd) = peaks(&actions, &tiers);
    assert!(pm <= m && pd <= d, "({n}, {m}, {d}): peaks {pm}, {pd}");
    cost
}

#[test]
fn extremes_are_revolve() {
    for n in [1u64, 2, 10, 57, 200] {
        for (m, d) in [(1usize, 0usize), (2, 3), (0, 4), (5, 5)] {
            let free = TieredCosts::two_tier(
                1.0,
                TierCost {
                    write: 0.0,
                    read: 0.0,
                },
            );
            let c = check(n, m, d, &free);
            assert_eq!(
                c,
                min_advances(n, (m + d) as u64).unwrap() as f64,
                "free host, ({n}, {m}, {d})"
            );
            if m > 0 {
                let dear = TieredCosts::two_tier(
                    1.0,
                    TierCost {
                        write: 1e9,
                        read: 1e9,
                    },
                );
                let c = check(n, m, d, &dear);
                assert_eq!(
                    c,
                    min_advances(n, m as u64).unwrap() as f64,
                    "dear host, ({n}, {m}, {d})"
                );
            }
        }
    }
}

/// The least cost over *all* schedules with `m` GPU and `d` host slots: the exhaustive
/// search over tiers, with a free GPU tier.
fn brute_force(n: u8, m: usize, d: usize, c: &TieredCosts) -> f64 {
    brute_force::brute_force(n, &[m, d], c)
}

#[test]
fn equals_the_brute_force_optimum_on_small_cases() {
    let costs = [
        TieredCosts::two_tier(
            1.0,
            TierCost {
                write: 0.5,
                read: 0.25,
            },
        ),
        TieredCosts::two_tier(
            1.0,
            TierCost {
                write: 3.0,
                read: 2.0,
            },
        ),
        TieredCosts::two_tier(
            0.1,
            TierCost {
                write: 1.0,
                read: 1.5,
            },
        ),
        TieredCosts::two_tier(
            1.0,
            TierCost {
                write: 0.0,
                read: 4.0,
            },
        ),
    ];
    for c in costs {
        for n in 1..=7u8 {
            for (m, d) in [(1, 0), (0, 1), (1, 1), (2, 1), (1, 2), (0, 2), (2, 2)] {
                let dp = check(n as u64, m, d, &c);
                let bf = brute_force(n, m, d, &c);
                assert!(
                    close(dp, bf),
                    "n = {n}, m = {m}, d = {d}, {c:?}: plan {dp}, brute force {bf}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(60))]

    #[test]
    fn equals_the_brute_force_optimum_for_random_costs(
        n in 1u8..7, m in 0usize..3, d in 0usize..3,
        forward in 0.0f64..3.0, write in 0.0f64..5.0, read in 0.0f64..5.0,
    ) {
        prop_assume!(m + d > 0);
        let c = TieredCosts::two_tier(forward, TierCost { write, read });
        let dp = check(n as u64, m, d, &c);
        let bf = brute_force(n, m, d, &c);
        // The brute force rounds costs to 1e-6.
        prop_assert!((dp - bf).abs() <= 1e-5 * n as f64 * 10.0, "plan {} vs brute force {}", dp, bf);
    }

    #[test]
    fn never_costs_more_than_multistage(
        n in 2u64..160, m in 1usize..5, d in 0usize..5,
        write in 0.0f64..20.0, read in 0.0f64..20.0,
    ) {
        let costs = TieredCosts::two_tier(1.0, TierCost { write, read });
        let optimal = check(n, m, d, &costs);
        // Revolve with all m + d slots (at most n: it refuses more), the m busiest on the GPU.
        let state = 1u64;
        let revolve = Revolve::new(n, ((m + d) as u64).min(n)).unwrap();
        let placement = Multistage::new(revolve.clone(), state, Some(m as u64 * state), None).unwrap();
        let multistage = costs.evaluate(revolve, placement.tiers());
        prop_assert!(optimal <= multistage + 1e-9, "optimal {} > multistage {}", optimal, multistage);
    }
}

#[test]
fn bad_input_is_typed() {
    let c = TieredCosts::two_tier(
        1.0,
        TierCost {
            write: 1.0,
            read: 1.0,
        },
    );
    assert!(TwoTier::new(0, 1, 1, &c).is_err());
    assert!(TwoTier::new(10, 0, 0, &c).is_err());
    let nan = TieredCosts::two_tier(
        1.0,
        TierCost {
            write: 1.0,
            read: f64::NAN,
        },
    );
    assert!(TwoTier::new(10, 1, 1, &nan).is_err());
    let negative = TieredCosts {
        forward: -1.0,
        ..c.clone()
    };
    assert!(TwoTier::new(10, 1, 1, &negative).is_err());
    assert!(TwoTier::new(1_000_000, 10, 10, &c).is_err());
}

#[test]
fn long_runs_do_not_recurse_per_step() {
    // A single slot: every range is reversed directly and each left part is one step shorter,
    // so the ranges nest n deep. Planned on a thread with a 256 KB stack: the former recursive
    // emitter overflowed it in a debug build (in release, LLVM happened to turn its tail call
    // into a loop; the emitter now loops explicitly).
    let c = TieredCosts::two_tier(
        1.0,
        TierCost {
            write: 2.0,
            read: 2.0,
        },
    );
    let n = 8_000;
    let plan = move || {
        simulate(TwoTier::new(n, 1, 0, &c).unwrap())
            .unwrap()
            .reverse_steps
    };
    let thread = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(plan);
    assert_eq!(thread.unwrap().join().unwrap(), n);
}

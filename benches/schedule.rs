//! How fast the scheduler hands out actions, and how fast the engine's interpreter runs them:
//! neither may show next to a GPU step.
//!
//! `cargo bench --bench schedule`; throughput is in actions per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gpurevolve::engine::{CpuOperator, MemoryStore, Revolver, RevolverOptions};
use gpurevolve::schedule::{
    LevelOptimal, Multistage, Online, Revolve, StoreAll, TierCost, TieredCosts, TieredLevels,
    TwoTier, simulate,
};

/// A time stepper that costs nothing: what is left is the interpreter (reading the schedule,
/// checking each action, the lookahead window, the store's bookkeeping).
struct Counter(u64);

impl CpuOperator for Counter {
    type State = u64;
    fn steps(&self) -> u64 {
        self.0
    }
    fn initial(&mut self) -> gpurevolve::Result<u64> {
        Ok(0)
    }
    fn forward(&mut self, _k: u64, x: &u64, _record: bool) -> gpurevolve::Result<u64> {
        Ok(x + 1)
    }
    fn adjoint(&mut self, _k: u64, x: &u64, _next: Option<&u64>) -> gpurevolve::Result<()> {
        black_box(x);
        Ok(())
    }
}

fn count(schedule: impl Iterator) -> u64 {
    let mut n = 0u64;
    for action in schedule {
        black_box(action);
        n += 1;
    }
    n
}

fn bench_schedules(c: &mut Criterion) {
    let mut group = c.benchmark_group("schedule");
    group.sample_size(20);
    for (steps, snaps) in [(1_000_000u64, 100u64), (1_000_000, 10), (10_000, 20)] {
        let actions = count(Revolve::new(steps, snaps).unwrap());
        group.throughput(Throughput::Elements(actions));
        group.bench_function(format!("revolve n={steps} s={snaps}"), |b| {
            b.iter(|| count(Revolve::new(black_box(steps), black_box(snaps)).unwrap()))
        });
    }
    let steps = 1_000_000u64;
    group.throughput(Throughput::Elements(count(StoreAll::new(steps).unwrap())));
    group.bench_function(format!("store-all n={steps}"), |b| {
        b.iter(|| count(StoreAll::new(black_box(steps)).unwrap()))
    });
    let actions = count(Revolve::new(steps, 100).unwrap());
    group.throughput(Throughput::Elements(actions));
    group.bench_function(format!("simulate revolve n={steps} s=100"), |b| {
        b.iter(|| simulate(Revolve::new(black_box(steps), 100).unwrap()).unwrap())
    });
    group.bench_function(
        format!("interpret revolve n={steps} s=100 on the CPU"),
        |b| {
            b.iter(|| {
                let schedule = Revolve::new(black_box(steps), 100).unwrap();
                let store = MemoryStore::new(100, 8);
                let mut run =
                    Revolver::on_cpu(Counter(steps), store, schedule, RevolverOptions::default())
                        .unwrap();
                run.apply_reverse().unwrap()
            })
        },
    );
    // The level-optimal schedule: planning (the programme) and handing out actions once
    // planned (a clone shares the plan).
    let (steps_l, levels) = (10_000u64, 200u64);
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("plan levels n={steps_l} levels={levels}"), |b| {
        b.iter(|| LevelOptimal::new(black_box(steps_l), black_box(levels), 2).unwrap())
    });
    let plan = LevelOptimal::new(steps_l, levels, 2).unwrap();
    group.throughput(Throughput::Elements(count(plan.clone())));
    group.bench_function(format!("level-optimal n={steps_l} levels={levels}"), |b| {
        b.iter(|| count(black_box(&plan).clone()))
    });
    // The level schedule over GPU levels and host snapshots, planned for the main job's shot
    // (778 steps, 37 snapshots' memory: 8 levels on the GPU, 33 snapshots in host memory).
    let costs = TieredCosts::two_tier(
        1.0,
        TierCost {
            write: 2.0,
            read: 2.0,
        },
    );
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.bench_function("plan tiered levels n=778 levels=8 host=33", |b| {
        b.iter(|| TieredLevels::from_rest(black_box(778), 8, 33, 2, &costs).unwrap())
    });
    group.sample_size(20);
    tiered_table();
    // Online checkpointing: the decision an engine asks for before each forward step, over a
    // run of 10⁴ steps (throughput in steps).
    for snaps in [10u64, 50] {
        let steps_o = 10_000u64;
        group.throughput(Throughput::Elements(steps_o));
        group.bench_function(format!("online step n={steps_o} s={snaps}"), |b| {
            b.iter(|| {
                let mut online = Online::new(black_box(snaps)).unwrap();
                let mut actions = 0usize;
                for _ in 0..steps_o {
                    actions += online.step().count();
                }
                actions
            })
        });
    }
    group.finish();
}

/// Modelled costs (in forward steps) of the level schedule over GPU levels and host snapshots
/// against the alternatives in the same memory, printed once: `TwoTier` (Revolve's shape over
/// whole snapshots, by cost), `LevelOptimal` with its slots placed by use (when that fits: a
/// host slot holds a whole state), and `LevelOptimal` in the GPU's levels alone. State 0 is
/// held (`new`), as `TwoTier` holds it.
fn tiered_table() {
    println!(
        "\nn, GPU levels, host snapshots, copy cost: tiered levels / two-tier / levels by use / GPU levels only"
    );
    for (n, levels, host) in [(778u64, 8u64, 33u64), (1000, 4, 8), (1500, 10, 6)] {
        for copy in [0.5, 2.0, 8.0] {
            let costs = TieredCosts::two_tier(
                1.0,
                TierCost {
                    write: copy,
                    read: copy,
                },
            );
            let tiered = TieredLevels::new(n, levels, host, 2, &costs)
                .unwrap()
                .cost();
            let two = TwoTier::new(n, (levels / 2) as usize, host as usize, &costs).unwrap();
            let two = costs.evaluate(two.clone(), &two.tiers());
            let by_use = LevelOptimal::new(n, levels + 2 * host, 2).unwrap();
            let state = 2;
            let placed = Multistage::new(by_use.clone(), state, Some(levels), Some(host * state));
            let by_use = placed.map_or("does not fit".to_owned(), |p| {
                format!("{:.1}", costs.evaluate(by_use, p.tiers()))
            });
            let alone = simulate(LevelOptimal::new(n, levels, 2).unwrap()).unwrap();
            println!(
                "{n}, {levels}, {host}, {copy}: {tiered:.1} / {two:.1} / {by_use} / {}",
                alone.advances
            );
        }
    }
}

criterion_group!(benches, bench_schedules);
criterion_main!(benches);

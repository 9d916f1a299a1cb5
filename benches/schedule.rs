//! How fast the scheduler hands out actions, and how fast the engine's interpreter runs them:
//! neither may show next to a GPU step.
//!
//! `cargo bench --bench schedule`; throughput is in actions per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gpurevolve::engine::{CpuOperator, MemoryStore, Revolver, RevolverOptions};
use gpurevolve::schedule::{LevelOptimal, Online, Revolve, StoreAll, simulate};

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

criterion_group!(benches, bench_schedules);
criterion_main!(benches);

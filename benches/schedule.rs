//! How fast the scheduler hands out actions: it must never show next to a GPU step.
//!
//! `cargo bench --bench schedule`; throughput is in actions per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gpurevolve::schedule::{Revolve, StoreAll, simulate};

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
    group.finish();
}

criterion_group!(benches, bench_schedules);
criterion_main!(benches);

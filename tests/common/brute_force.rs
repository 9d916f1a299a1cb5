//! The least cost of reversing a few steps over *all* schedules, by exhaustive search: the
//! reference the cost-optimal plans are proven against. No GPU needed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use gpurevolve::schedule::TieredCosts;

/// The least cost over *all* schedules (any order of single-step advances, saves, restores,
/// frees and reverses), by Dijkstra over (next step to reverse, live state, held checkpoints
/// with their tiers).
pub fn brute_force(n: u8, slots: &[usize], c: &TieredCosts) -> f64 {
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

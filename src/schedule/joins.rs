//! The level schedule with joins: a state rebuilt from the live state's older levels and one
//! level of a held state, with no step run and nothing copied for the live part.
//!
//! **The move.** After the adjoint of step `k + 1`, the working buffers still hold state
//! `k + 1 = (u_{k+1}, …, u_{k−q+2})` (an adjoint reads its state, it does not write it). State
//! `k = (u_k, …, u_{k−q+1})` is those levels but the newest, plus `u_{k−q+1}`, which a held
//! state `j` holds when `k − q + 1 ≤ j ≤ k − 1` ([`Action::Join`]). A restored state serves as
//! well as a reversed one: a split state kept held can be restored later to join below it.
//!
//! **The programme.** Three costs of reversing the `m` steps above a held base `b` with `l`
//! levels free, by what lies above them:
//!
//! - `N(m, l)`: nothing. Advance to the last step and reverse it (`m − 1 + T(m − 1, l)`), or
//!   advance `i`, save (`c = min(i, q)` levels not shared with the base), reverse the right
//!   part (`N(m − i, l − c)`), then the left one with state `b + i` still held
//!   (`H(i, l − c)`).
//! - `T(m, l)`: state `b + m` is live, just reversed. For `m ≤ q` every state below joins from
//!   it and the base: 0. Otherwise `N(m, l)`, or keep state `b + m` held: `H(m, l − c)`.
//! - `H(m, l)`: state `b + m` is held (its levels outside `l`). For `m ≤ q`, 0. Otherwise free
//!   it (`N(m, l + c)`), or free it and advance to the last step, or advance `i`, save (the
//!   levels not shared with the base nor with state `b + m`), reverse the right part with
//!   state `b + m` still held above it (`H(m − i, ·)`), free state `b + m` and reverse the left
//!   part with state `b + i` held (`H(i, ·)`).
//!
//! An operator that starts at rest has a base 0 that holds nothing: saves above it share no
//! level with it. The tests check the programme against an exhaustive search over every
//! sequence of engine moves (advance, save, free, restore, join, reverse) for small `n`, and
//! the simulator checks every generated schedule's level budget.
//!
//! **Planning time.** As the whole-state programme, split points where a save costs a whole
//! state are searched in a window around the previous row's minimisers (checked cell by cell
//! against the full search, [`Search`]); the range between the first and last minimiser is
//! searched whole, and ties make it wide at scale (10⁴ steps × 100 levels passes half a
//! billion split points near 5 000 steps). Past its bounds
//! [`LevelOptimal::with_joins`](super::LevelOptimal::with_joins) keeps the whole-state
//! schedule (logged). 2 000 steps × 40 levels plan in about 0.1 s.

use super::action::Action;

/// A cost no schedule reaches: a cell that cannot be planned (a budget its parent never gives).
const INF: u64 = u64::MAX / 4;

/// The three programmes, for bases that hold their levels (`[0]`) and, when state 0 is
/// rebuilt, for the base state 0 that holds none (`[1]`).
pub(super) struct Tables {
    q: u64,
    free: u64,
    width: usize,
    n: [Vec<u64>; 2],
    t: [Vec<u64>; 2],
    h: [Vec<u64>; 2],
    /// `N`: 0 nothing, 1 advance to the last step, `2 + i` split at `i`.
    n_choice: [Vec<u32>; 2],
    /// `T`: 0 joins, 1 as `N`, 2 keep the top held.
    t_choice: [Vec<u32>; 2],
    /// `H`: 0 joins, 1 free the top, 2 free it and advance to the last step, `3 + i` split.
    h_choice: [Vec<u32>; 2],
}

impl Tables {
    fn at(&self, m: u64, l: u64) -> usize {
        m as usize * self.width + l as usize
    }

    /// Levels of state `b + i` not shared with the base.
    fn unshared(&self, i: u64, rest: usize) -> u64 {
        if rest == 1 { self.q } else { i.min(self.q) }
    }

    /// Levels of state `b + i` shared neither with the base nor with a held state `b + m`.
    fn unshared_below_top(&self, i: u64, m: u64, rest: usize) -> u64 {
        let q = self.q as i64;
        let (i, m) = (i as i64, m as i64);
        let lowest = if rest == 1 {
            i - q + 1
        } else {
            (i - q + 1).max(1)
        };
        (i.min(m - q) - lowest + 1).max(0) as u64
    }

    fn get(&self, table: &[Vec<u64>; 2], rest: usize, m: u64, l: u64) -> u64 {
        if l > self.free {
            return INF;
        }
        table[rest][self.at(m, l)]
    }
}

/// How the programme searches the split points where a save costs a whole state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Search {
    /// A window of [`WINDOW`] around the minimisers of the row with one step fewer.
    Window,
    /// Every split point (tests: `O(n²·l)`).
    #[cfg_attr(not(test), allow(dead_code))]
    Exhaustive,
}

/// Split points searched beyond the previous row's minimisers, on each side: 2 (the
/// whole-state programme's) misses optima with three levels a state, 4 finds every one the
/// tests compare.
const WINDOW: u64 = 4;

/// The least `cost(i)` over `i` in `start ..= stop`, with its first and last minimisers.
fn scan(start: u64, stop: u64, cost: impl Fn(u64) -> u64) -> (u64, u64, u64) {
    let mut best = INF;
    let (mut first, mut last) = (start, start);
    for i in start..=stop {
        let v = cost(i);
        if v < best {
            (best, first, last) = (v, i, i);
        } else if v == best {
            last = i;
        }
    }
    (best, first, last)
}

/// Fills the tables, or `None` past `budget` split points.
///
/// Where a save costs a whole state (`i ≥ q`, and for `H` below `m − q`, where the saved state
/// shares no level with the held top), the split cost has the whole-state programme's form
/// (`i + X(m − i, l − q) + Y(i, l)`), and as there its minimisers move little from `m − 1` to
/// `m`: [`Search::Window`] searches a window around them, the unit tests check it against
/// [`Search::Exhaustive`] cell by cell. The few split points near the ends are always searched.
pub(super) fn solve(
    steps: u64,
    q: u64,
    free: u64,
    from_rest: bool,
    search: Search,
    budget: u64,
) -> Option<Tables> {
    let width = free as usize + 1;
    let cells = (steps as usize + 1) * width;
    let kinds = if from_rest { 2 } else { 1 };
    let mut evaluations = 0u64;
    let table = |k: usize| {
        if k < kinds {
            vec![0u64; cells]
        } else {
            Vec::new()
        }
    };
    let choice = |k: usize| {
        if k < kinds {
            vec![0u32; cells]
        } else {
            Vec::new()
        }
    };
    let mut tab = Tables {
        q,
        free,
        width,
        n: [table(0), table(1)],
        t: [table(0), table(1)],
        h: [table(0), table(1)],
        n_choice: [choice(0), choice(1)],
        t_choice: [choice(0), choice(1)],
        h_choice: [choice(0), choice(1)],
    };
    // The previous row's minimisers among the whole-state split points, by kind and level.
    let mut n_window = vec![[(q, q); 2]; width];
    let mut h_window = vec![[(q, q); 2]; width];
    // The least cost over the whole-state split points `q ..= stop` (or the window of them
    // around the last minimisers, which it moves), with its first minimiser.
    let windowed =
        |window: &mut (u64, u64), stop: u64, evaluations: &mut u64, cost: &dyn Fn(u64) -> u64| {
            let (start, stop) = match search {
                Search::Window => (
                    window.0.saturating_sub(WINDOW).max(q),
                    (window.1 + WINDOW).min(stop),
                ),
                Search::Exhaustive => (q, stop),
            };
            if start > stop {
                return None;
            }
            *evaluations += stop + 1 - start;
            let (v, first, last) = scan(start, stop, cost);
            *window = (first, last);
            Some((v, first))
        };
    for m in 2..=steps {
        for rest in 0..kinds {
            // N(m, ·) reads smaller m only.
            for l in 0..=free {
                let mut best = (m - 1) + tab.get(&tab.t, rest, m - 1, l);
                let mut arg = 1;
                let cost = |i: u64| {
                    let c = tab.unshared(i, rest);
                    if c > l {
                        return INF;
                    }
                    i + tab.get(&tab.n, 0, m - i, l - c) + tab.get(&tab.h, rest, i, l - c)
                };
                for i in 1..q.min(m - 1) {
                    evaluations += 1;
                    let v = cost(i);
                    if v < best {
                        (best, arg) = (v, 2 + i as u32);
                    }
                }
                if m >= q + 2 && l >= q {
                    let window = &mut n_window[l as usize][rest];
                    if let Some((v, i)) = windowed(window, m - 2, &mut evaluations, &cost)
                        && v < best
                    {
                        (best, arg) = (v, 2 + i as u32);
                    }
                }
                let at = tab.at(m, l);
                tab.n[rest][at] = best.min(INF);
                tab.n_choice[rest][at] = arg;
            }
            // H(m, ·) reads N(m, ·) and smaller m.
            for l in 0..=free {
                let at = tab.at(m, l);
                if m <= q {
                    tab.h[rest][at] = 0;
                    tab.h_choice[rest][at] = 0;
                    continue;
                }
                let top = tab.unshared(m, rest);
                let mut best = tab.get(&tab.n, rest, m, l + top);
                let mut arg = 1;
                let advance = (m - 1) + tab.get(&tab.t, rest, m - 1, l + top);
                if advance < best {
                    (best, arg) = (advance, 2);
                }
                let cost = |i: u64| {
                    let c = tab.unshared_below_top(i, m, rest);
                    let Some(left) = (l + top).checked_sub(tab.unshared(i, rest)) else {
                        return INF;
                    };
                    if c > l {
                        return INF;
                    }
                    i + tab.get(&tab.h, 0, m - i, l - c) + tab.get(&tab.h, rest, i, left)
                };
                // Near the ends a save shares levels with the base or the top.
                let regular = (q, m - q);
                let high = (regular.1 + 1).max(regular.0)..m - 1;
                for i in (1..regular.0.min(m - 1)).chain(high) {
                    evaluations += 1;
                    let v = cost(i);
                    if v < best {
                        (best, arg) = (v, 3 + i as u32);
                    }
                }
                if l >= q {
                    let window = &mut h_window[l as usize][rest];
                    let stop = regular.1.min(m - 2);
                    if let Some((v, i)) = windowed(window, stop, &mut evaluations, &cost)
                        && v < best
                    {
                        (best, arg) = (v, 3 + i as u32);
                    }
                }
                tab.h[rest][at] = best.min(INF);
                tab.h_choice[rest][at] = arg;
            }
            // T(m, ·) reads N(m, ·) and H(m, ·).
            for l in 0..=free {
                let at = tab.at(m, l);
                if m <= q {
                    tab.t[rest][at] = 0;
                    tab.t_choice[rest][at] = 0;
                    continue;
                }
                let mut best = tab.n[rest][at];
                let mut arg = 1;
                let c = tab.unshared(m, rest);
                if c <= l {
                    let held = tab.h[rest][tab.at(m, l - c)];
                    if held < best {
                        (best, arg) = (held, 2);
                    }
                }
                tab.t[rest][at] = best;
                tab.t_choice[rest][at] = arg;
            }
        }
        if evaluations > budget {
            return None;
        }
    }
    log::debug!("joining level plan: {evaluations} split points evaluated");
    Some(tab)
}

/// A schedule with joins, planned whole: its actions, advances and slots.
#[derive(Debug)]
pub(super) struct JoinedPlan {
    pub(super) actions: Vec<Action>,
    pub(super) advances: u64,
    pub(super) slots: usize,
}

/// What is left to do, on the generator's stack.
enum Task {
    /// `N`: reverse `m` steps above the base `b` (in `slot`).
    Nothing {
        b: u64,
        slot: usize,
        m: u64,
        l: u64,
        rest: usize,
    },
    /// `H`: as `Nothing`, with state `b + m` held in `top`.
    Held {
        b: u64,
        slot: usize,
        m: u64,
        l: u64,
        rest: usize,
        top: usize,
    },
    /// Reverse every step below the live state `b + m` by joins (`m ≤ q`), after restoring
    /// and freeing the held top if there is one.
    Joins {
        b: u64,
        slot: usize,
        m: u64,
        top: Option<usize>,
    },
}

struct Generator<'t> {
    tab: &'t Tables,
    actions: Vec<Action>,
    /// The state in the working buffers and whether it was just reversed.
    live: (u64, bool),
    used: Vec<bool>,
    stack: Vec<Task>,
}

impl Generator<'_> {
    fn take_slot(&mut self) -> usize {
        match self.used.iter().position(|u| !u) {
            Some(slot) => {
                self.used[slot] = true;
                slot
            }
            None => {
                self.used.push(true);
                self.used.len() - 1
            }
        }
    }

    fn save(&mut self, step: u64) -> usize {
        let slot = self.take_slot();
        self.actions.push(Action::Save { step, slot });
        slot
    }

    fn free(&mut self, step: u64, slot: usize) {
        self.used[slot] = false;
        self.actions.push(Action::Free { step, slot });
    }

    fn restore(&mut self, step: u64, slot: usize) {
        if self.live != (step, false) {
            self.actions.push(Action::Restore { step, slot });
            self.live = (step, false);
        }
    }

    fn advance(&mut self, from: u64, to: u64) {
        if to > from {
            self.actions.push(Action::Advance { from, to });
            self.live = (to, false);
        }
    }

    fn reverse(&mut self, step: u64) {
        self.actions.push(Action::Reverse { step });
        self.live = (step, true);
    }

    /// Advance from the base to the last of the `m` steps, reverse it, and go on as `T`
    /// chooses for the `m − 1` below (keeping the last state held is a save before its
    /// reverse, the same memory as after it).
    fn advance_to_last(&mut self, b: u64, slot: usize, m: u64, l: u64, rest: usize) {
        self.restore(b, slot);
        let last = b + m - 1;
        self.advance(b, last);
        let at = self.tab.at(m - 1, l);
        match self.tab.t_choice[rest][at] {
            _ if m - 1 <= self.tab.q => {
                self.reverse(last);
                self.stack.push(Task::Joins {
                    b,
                    slot,
                    m: m - 1,
                    top: None,
                });
            }
            2 => {
                let top = self.save(last);
                self.reverse(last);
                let l = l - self.tab.unshared(m - 1, rest);
                let m = m - 1;
                self.stack.push(Task::Held {
                    b,
                    slot,
                    m,
                    l,
                    rest,
                    top,
                });
            }
            _ => {
                self.reverse(last);
                let m = m - 1;
                self.stack.push(Task::Nothing {
                    b,
                    slot,
                    m,
                    l,
                    rest,
                });
            }
        }
    }

    fn run(&mut self, task: Task) {
        match task {
            Task::Nothing {
                b,
                slot,
                m,
                l,
                rest,
            } => {
                if m == 1 {
                    self.restore(b, slot);
                    self.reverse(b);
                    return;
                }
                match self.tab.n_choice[rest][self.tab.at(m, l)] {
                    1 => self.advance_to_last(b, slot, m, l, rest),
                    split => {
                        let i = u64::from(split - 2);
                        let c = self.tab.unshared(i, rest);
                        self.restore(b, slot);
                        self.advance(b, b + i);
                        let top = self.save(b + i);
                        let l = l - c;
                        self.stack.push(Task::Held {
                            b,
                            slot,
                            m: i,
                            l,
                            rest,
                            top,
                        });
                        let (b, slot, m) = (b + i, top, m - i);
                        self.stack.push(Task::Nothing {
                            b,
                            slot,
                            m,
                            l,
                            rest: 0,
                        });
                    }
                }
            }
            Task::Held {
                b,
                slot,
                m,
                l,
                rest,
                top,
            } => {
                if m <= self.tab.q {
                    self.stack.push(Task::Joins {
                        b,
                        slot,
                        m,
                        top: Some(top),
                    });
                    return;
                }
                let gained = l + self.tab.unshared(m, rest);
                match self.tab.h_choice[rest][self.tab.at(m, l)] {
                    1 => {
                        self.free(b + m, top);
                        self.stack.push(Task::Nothing {
                            b,
                            slot,
                            m,
                            l: gained,
                            rest,
                        });
                    }
                    2 => {
                        self.free(b + m, top);
                        self.advance_to_last(b, slot, m, gained, rest);
                    }
                    split => {
                        let i = u64::from(split - 3);
                        let c = self.tab.unshared_below_top(i, m, rest);
                        self.restore(b, slot);
                        self.advance(b, b + i);
                        let below = self.save(b + i);
                        let left = gained - self.tab.unshared(i, rest);
                        self.stack.push(Task::Held {
                            b,
                            slot,
                            m: i,
                            l: left,
                            rest,
                            top: below,
                        });
                        let (b, slot, m, l) = (b + i, below, m - i, l - c);
                        self.stack.push(Task::Held {
                            b,
                            slot,
                            m,
                            l,
                            rest: 0,
                            top,
                        });
                    }
                }
            }
            Task::Joins { b, slot, m, top } => {
                if let Some(top) = top {
                    // A state just reversed is in the working buffers already.
                    if self.live.0 != b + m {
                        self.actions.push(Action::Restore {
                            step: b + m,
                            slot: top,
                        });
                        self.live = (b + m, false);
                    }
                    self.free(b + m, top);
                }
                for k in (b + 1..b + m).rev() {
                    self.actions.push(Action::Join { step: k, slot });
                    self.live = (k, false);
                    self.reverse(k);
                }
                self.restore(b, slot);
                self.reverse(b);
            }
        }
    }
}

/// The schedule with joins for `steps` steps, `q` levels a state and `free` levels beyond
/// state 0's (all of them `from_rest`), or `None` past `budget` split points.
pub(super) fn plan(
    steps: u64,
    q: u64,
    free: u64,
    from_rest: bool,
    budget: u64,
) -> Option<JoinedPlan> {
    let tab = solve(steps, q, free, from_rest, Search::Window, budget)?;
    let rest = usize::from(from_rest);
    let advances = tab.n[rest][tab.at(steps, free)];
    let mut generator = Generator {
        tab: &tab,
        actions: Vec::new(),
        live: (0, false),
        used: Vec::new(),
        stack: Vec::new(),
    };
    let slot = generator.save(0);
    generator.stack.push(Task::Nothing {
        b: 0,
        slot,
        m: steps,
        l: free,
        rest,
    });
    while let Some(task) = generator.stack.pop() {
        generator.run(task);
    }
    generator.free(0, slot);
    generator.actions.push(Action::End);
    Some(JoinedPlan {
        slots: generator.used.len(),
        actions: generator.actions,
        advances,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// The windowed programme equals the exhaustive one in every cell of every table.
    #[test]
    fn the_window_finds_every_optimum() {
        for q in 2..=3 {
            let seed: u64 = rand::random();
            let mut rng = StdRng::seed_from_u64(seed);
            let random = (0..3).map(|_| (rng.random_range(20..400), rng.random_range(1..60)));
            let fixed = [(700, 40), (400, 12), (250, 90), (120, 119)];
            for (steps, free) in fixed.into_iter().chain(random.collect::<Vec<_>>()) {
                for from_rest in [false, true] {
                    let exact = solve(steps, q, free, from_rest, Search::Exhaustive, u64::MAX);
                    let windowed = solve(steps, q, free, from_rest, Search::Window, u64::MAX);
                    let (exact, windowed) = (exact.unwrap(), windowed.unwrap());
                    let label = format!(
                        "seed {seed}: q = {q}, {steps} steps, {free} free, rest {from_rest}"
                    );
                    assert!(exact.n == windowed.n, "{label}: N");
                    assert!(exact.t == windowed.t, "{label}: T");
                    assert!(exact.h == windowed.h, "{label}: H");
                }
            }
        }
    }
}

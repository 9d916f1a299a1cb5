//! The cost-optimal schedule for two memory tiers (in the spirit of Aupy, Herrmann, Hovland &
//! Robert's disk-revolve, SIAM J. Sci. Comput. 38(3), 2016, and Herrmann & Pallez's H-Revolve,
//! ACM TOMS 46(2), 2020): `m` fast (GPU) slots whose saves and restores are free, `d` slow
//! (host) slots that cost `host_write` to fill and `host_read` to restore, and `forward` per
//! recomputed step. Unlike [`Multistage`](super::Multistage), which keeps the binomial schedule
//! and only places its slots, the schedule itself adapts to the costs.
//!
//! A dynamic program over the nested split structure of Revolve: `F(l, m, d, tier)` is the
//! least cost to reverse `l` steps from a checkpoint held in `tier` (and live), with `m` fast
//! and `d` slow slots (the checkpoint's own included). Either advance `l − 1` and reverse the
//! last step directly, or advance `j`, checkpoint in a free fast or slow slot, reverse the right
//! part with the slots left, restore and reverse the left part. At the start of a range its
//! checkpoint is live, so it may also change tier: *promote* a slow checkpoint into a free
//! fast slot (free, and every later restore is free; a brute-force search over all schedules
//! found this move missing from the plain split recursion) or *demote* a fast one (one slow
//! write, and the fast slot serves the right part). `O(n²·m·d)` time.

use super::action::{Action, Schedule};
use super::multistage::Tier;
use super::simulate::{Planned, planned};
use crate::error::{Error, Result};

/// Unit costs of the two-tier model (seconds, or multiples of a forward step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoLevelCosts {
    /// One recomputed forward step.
    pub forward: f64,
    /// Saving a checkpoint to the slow tier (a device → host copy).
    pub host_write: f64,
    /// Restoring a checkpoint from the slow tier (a host → device copy).
    pub host_read: f64,
}

impl TwoLevelCosts {
    /// The cost of running `actions` with slots placed on `tiers`:
    /// `forward · advances + host_write · host saves + host_read · host restores`.
    pub fn evaluate(&self, actions: impl IntoIterator<Item = Action>, tiers: &[Tier]) -> f64 {
        let on_host = |slot: usize| tiers.get(slot) != Some(&Tier::DEVICE);
        actions.into_iter().fold(0.0, |cost, action| {
            cost + match action {
                Action::Advance { from, to } => self.forward * (to - from) as f64,
                Action::Save { slot, .. } if on_host(slot) => self.host_write,
                Action::Restore { slot, .. } if on_host(slot) => self.host_read,
                _ => 0.0,
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Choice {
    /// Advance `l − 1`, reverse the last step.
    Direct,
    /// Advance `j`, checkpoint in this tier.
    Split(usize, Tier),
    /// Move the range's checkpoint to the other tier first.
    Move,
}

/// The cost-optimal two-tier schedule: an iterator of actions whose slots `0..m` are fast and
/// `m..m + d` slow (see [`TwoLevel::tiers`]).
///
/// ```
/// use gpurevolve::schedule::{min_advances, simulate, TwoLevel, TwoLevelCosts};
/// // Free host copies: the optimum is Revolve's with all 2 + 3 slots.
/// let free = TwoLevelCosts { forward: 1.0, host_write: 0.0, host_read: 0.0 };
/// let s = TwoLevel::new(100, 2, 3, free)?;
/// assert_eq!(s.cost(), min_advances(100, 5)? as f64);
/// simulate(s)?;
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TwoLevel {
    steps: u64,
    fast: usize,
    slow: usize,
    cost: f64,
    actions: std::vec::IntoIter<Action>,
}

/// `table[tier][l][m][d]`, flattened.
struct Table {
    fast: usize,
    slow: usize,
    cost: Vec<f64>,
    choice: Vec<Choice>,
}

impl Table {
    fn at(&self, tier: Tier, l: usize, m: usize, d: usize) -> usize {
        let t = usize::from(tier == Tier::HOST);
        ((t * self.len_l() + l) * (self.fast + 1) + m) * (self.slow + 1) + d
    }

    fn len_l(&self) -> usize {
        self.cost.len() / (2 * (self.fast + 1) * (self.slow + 1))
    }
}

impl TwoLevel {
    /// Plans `steps` steps with `fast` GPU slots and `slow` host slots under `costs`.
    ///
    /// # Errors
    /// [`Error::ZeroSteps`]; [`Error::ZeroSnapshots`] with no slot at all;
    /// [`Error::InvalidArgument`] for costs that are negative or not finite, or a problem
    /// too large to plan exactly (over 10⁸ table entries or about 2·10¹⁰ operations: use
    /// [`Multistage`](super::Multistage), or fewer steps or slots).
    pub fn new(steps: u64, fast: usize, slow: usize, costs: TwoLevelCosts) -> Result<Self> {
        if steps == 0 {
            return Err(Error::ZeroSteps);
        }
        if fast + slow == 0 {
            return Err(Error::ZeroSnapshots);
        }
        let c = [costs.forward, costs.host_write, costs.host_read];
        if c.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
            return Err(Error::InvalidArgument {
                name: "costs",
                reason: format!("costs must be finite and non-negative, got {costs:?}"),
            });
        }
        let n = steps as usize;
        let entries = 2 * (n + 1) * (fast + 1) * (slow + 1);
        // The table's size, and its O(n²·m·d) fill (about 2·10¹⁰ operations is tens of seconds).
        let work = (n as u128).pow(2) * (fast as u128 + 1) * (slow as u128 + 1);
        if entries > 100_000_000 || work > 2 * 10u128.pow(10) {
            return Err(Error::InvalidArgument {
                name: "steps",
                reason: format!(
                    "{steps} steps with {fast} + {slow} slots is too large a table for the exact plan; use Multistage"
                ),
            });
        }
        let table = Self::solve(n, fast, slow, &costs);
        let (cost, first) = [Tier::DEVICE, Tier::HOST]
            .into_iter()
            .filter(|&t| {
                if t == Tier::DEVICE {
                    fast > 0
                } else {
                    slow > 0
                }
            })
            .map(|t| {
                let save = if n > 1 && t == Tier::HOST {
                    costs.host_write
                } else {
                    0.0
                };
                (save + table.cost[table.at(t, n, fast, slow)], t)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or((f64::INFINITY, Tier::DEVICE));
        let mut out = Emitter {
            table: &table,
            actions: Vec::new(),
            free: [
                (0..fast).rev().collect(),
                (fast..fast + slow).rev().collect(),
            ],
        };
        if n == 1 {
            out.actions.push(Action::Reverse { step: 0 });
        } else {
            let slot = out.alloc(first);
            out.actions.push(Action::Save { step: 0, slot });
            out.emit(0, n, fast, slow, first, slot);
        }
        out.actions.push(Action::End);
        Ok(Self {
            steps,
            fast,
            slow,
            cost,
            actions: out.actions.into_iter(),
        })
    }

    fn solve(n: usize, fast: usize, slow: usize, costs: &TwoLevelCosts) -> Table {
        let size = 2 * (n + 1) * (fast + 1) * (slow + 1);
        let mut t = Table {
            fast,
            slow,
            cost: vec![f64::INFINITY; size],
            choice: vec![Choice::Direct; size],
        };
        for l in 1..=n {
            for m in 0..=fast {
                for d in 0..=slow {
                    for tier in [Tier::DEVICE, Tier::HOST] {
                        let (holds_m, holds_d) = (
                            usize::from(tier == Tier::DEVICE),
                            usize::from(tier == Tier::HOST),
                        );
                        if m < holds_m || d < holds_d {
                            continue; // the range's own checkpoint needs a slot of its tier
                        }
                        let i = t.at(tier, l, m, d);
                        if l == 1 {
                            t.cost[i] = 0.0;
                            continue;
                        }
                        let restore = if tier == Tier::HOST {
                            costs.host_read
                        } else {
                            0.0
                        };
                        let (free_m, free_d) = (m - holds_m, d - holds_d);
                        let mut best = (f64::INFINITY, Choice::Direct);
                        for j in 1..l {
                            let base =
                                costs.forward * j as f64 + restore + t.cost[t.at(tier, j, m, d)];
                            if j == l - 1 {
                                if base < best.0 {
                                    best = (base, Choice::Direct);
                                }
                                continue;
                            }
                            if free_m > 0 {
                                let c = base + t.cost[t.at(Tier::DEVICE, l - j, free_m, free_d)];
                                if c < best.0 {
                                    best = (c, Choice::Split(j, Tier::DEVICE));
                                }
                            }
                            if free_d > 0 {
                                let c = base
                                    + costs.host_write
                                    + t.cost[t.at(Tier::HOST, l - j, free_m, free_d)];
                                if c < best.0 {
                                    best = (c, Choice::Split(j, Tier::HOST));
                                }
                            }
                        }
                        t.cost[i] = best.0;
                        t.choice[i] = best.1;
                    }
                    // Tier moves at the range's start, where its checkpoint is live: a slow one
                    // into a free fast slot (a free save), a fast one to a free slow slot (one
                    // slow write). One move is enough: costs are non-negative.
                    if l > 1 && m >= 1 && d >= 1 {
                        let (fast_i, slow_i) =
                            (t.at(Tier::DEVICE, l, m, d), t.at(Tier::HOST, l, m, d));
                        let (fast_c, slow_c) = (t.cost[fast_i], t.cost[slow_i]);
                        if fast_c < slow_c {
                            t.cost[slow_i] = fast_c;
                            t.choice[slow_i] = Choice::Move;
                        } else if slow_c + costs.host_write < fast_c {
                            t.cost[fast_i] = slow_c + costs.host_write;
                            t.choice[fast_i] = Choice::Move;
                        }
                    }
                }
            }
        }
        t
    }

    /// The least cost: `forward · advances + host_write · host saves + host_read · host
    /// restores` (the recording and adjoint steps, the same for every schedule, excluded).
    pub fn cost(&self) -> f64 {
        self.cost
    }

    /// The tier of each slot: `0..fast` on the GPU, the rest on the host.
    pub fn tiers(&self) -> Vec<Tier> {
        (0..self.fast + self.slow)
            .map(|i| {
                if i < self.fast {
                    Tier::DEVICE
                } else {
                    Tier::HOST
                }
            })
            .collect()
    }
}

/// Turns the table's choices into actions, handing out slots of the right tier.
struct Emitter<'t> {
    table: &'t Table,
    actions: Vec<Action>,
    /// Free slots per tier, lowest on top.
    free: [Vec<usize>; 2],
}

impl Emitter<'_> {
    fn alloc(&mut self, tier: Tier) -> usize {
        // The table only splits into a tier with a free slot, so the pool is never empty.
        self.free[usize::from(tier == Tier::HOST)]
            .pop()
            .unwrap_or(usize::MAX)
    }

    fn release(&mut self, tier: Tier, slot: usize) {
        let pool = &mut self.free[usize::from(tier == Tier::HOST)];
        pool.push(slot);
        pool.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Reverses steps `start..start + l`; state `start` is live and held in `slot` (`tier`).
    ///
    /// The left part and a tier move continue in the loop rather than recursing, so the depth
    /// is the number of nested checkpoints (at most `m + d`), never the number of steps.
    fn emit(
        &mut self,
        start: usize,
        mut l: usize,
        m: usize,
        d: usize,
        mut tier: Tier,
        mut slot: usize,
    ) {
        let s = start as u64;
        loop {
            if l == 1 {
                self.actions.push(Action::Free { step: s, slot });
                self.actions.push(Action::Reverse { step: s });
                self.release(tier, slot);
                return;
            }
            let j = match self.table.choice[self.table.at(tier, l, m, d)] {
                Choice::Move => {
                    let other = if tier == Tier::DEVICE {
                        Tier::HOST
                    } else {
                        Tier::DEVICE
                    };
                    let moved = self.alloc(other);
                    self.actions.push(Action::Save {
                        step: s,
                        slot: moved,
                    });
                    self.actions.push(Action::Free { step: s, slot });
                    self.release(tier, slot);
                    (tier, slot) = (other, moved);
                    continue;
                }
                Choice::Direct => {
                    let last = s + (l - 1) as u64;
                    self.actions.push(Action::Advance { from: s, to: last });
                    self.actions.push(Action::Reverse { step: last });
                    l - 1
                }
                Choice::Split(j, next) => {
                    let at = s + j as u64;
                    self.actions.push(Action::Advance { from: s, to: at });
                    let (free_m, free_d) = (
                        m - usize::from(tier == Tier::DEVICE),
                        d - usize::from(tier == Tier::HOST),
                    );
                    let next_slot = self.alloc(next);
                    self.actions.push(Action::Save {
                        step: at,
                        slot: next_slot,
                    });
                    self.emit(start + j, l - j, free_m, free_d, next, next_slot);
                    j
                }
            };
            // Back to this range's checkpoint for the left part.
            self.actions.push(Action::Restore { step: s, slot });
            l = j;
        }
    }
}

impl Iterator for TwoLevel {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        self.actions.next()
    }
}

impl Schedule for TwoLevel {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn slot_capacity(&self) -> usize {
        self.fast + self.slow
    }

    fn tiers(&self) -> Option<Vec<Tier>> {
        Some(TwoLevel::tiers(self))
    }

    /// Replays a copy of the schedule (it is valid by construction).
    fn planned(&self) -> Result<Option<Planned>> {
        planned(self.clone()).map(Some)
    }
}

//! The cost-optimal schedule over any number of memory tiers (in the spirit of Aupy, Herrmann,
//! Hovland & Robert's disk-revolve, SIAM J. Sci. Comput. 38(3), 2016, and Herrmann & Pallez's
//! H-Revolve, ACM TOMS 46(2), 2020): `slots[t]` slots in tier `t`, fastest first, each tier with
//! a cost to write a checkpoint into it and to restore one from it, and `forward` per recomputed
//! step. Unlike [`Multistage`](super::Multistage), which keeps the binomial schedule and only
//! places its slots, the schedule itself adapts to the costs.
//!
//! A dynamic program over the nested split structure of Revolve: `F(l, c, t)` is the least cost
//! to reverse `l` steps from a checkpoint held in tier `t` (and live), with `c[u]` slots of each
//! tier `u` (the checkpoint's own included). Either advance `l − 1` and reverse the last step
//! directly, or advance `j`, checkpoint in a free slot of some tier, reverse the right part with
//! the slots left, restore and reverse the left part. At the start of a range its checkpoint is
//! live, so it may also change tier: move into a free slot of another tier for that tier's
//! write (a brute-force search over all schedules found this move missing from the plain split
//! recursion). One move is enough, since costs are non-negative. `O(n²·Π(c+1)·T²)` time for
//! `T` tiers.

use super::action::{Action, Planned, Schedule, Tier};
use super::simulate::planned;
use crate::error::{Error, Result};

/// What a checkpoint costs in one tier (seconds, or multiples of a forward step).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TierCost {
    /// Saving a checkpoint into the tier.
    pub write: f64,
    /// Restoring a checkpoint from the tier.
    pub read: f64,
}

/// Unit costs of the tiered model: a recomputed step and each tier's copies, fastest first.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TieredCosts {
    /// One recomputed forward step.
    pub forward: f64,
    /// Each tier's write and read costs, fastest first.
    pub tiers: Vec<TierCost>,
}

impl TieredCosts {
    /// The costs of two tiers: a recomputed step, the GPU's copies free (a checkpoint there
    /// keeps the buffers a step wrote), and host memory's at `host`.
    pub fn two_tier(forward: f64, host: TierCost) -> Self {
        Self {
            forward,
            tiers: vec![TierCost::default(), host],
        }
    }

    /// Tier `tier`'s costs; free for a tier these costs do not name.
    pub fn tier(&self, tier: Tier) -> TierCost {
        self.tiers.get(tier.0).copied().unwrap_or_default()
    }

    /// The cost of running `actions` with slots placed on `tiers`:
    /// `forward · advances + Σ write(tier) · saves + Σ read(tier) · restores`. A slot placed on
    /// a tier these costs do not name costs nothing to save or restore.
    pub fn evaluate(&self, actions: impl IntoIterator<Item = Action>, tiers: &[Tier]) -> f64 {
        let cost_of = |slot: usize| {
            tiers
                .get(slot)
                .and_then(|t| self.tiers.get(t.0))
                .copied()
                .unwrap_or_default()
        };
        actions.into_iter().fold(0.0, |cost, action| {
            cost + match action {
                Action::Advance { from, to } => self.forward * (to - from) as f64,
                Action::Save { slot, .. } => cost_of(slot).write,
                // A join reads its held state back as a restore does.
                Action::Restore { slot, .. } | Action::Join { slot, .. } => cost_of(slot).read,
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
    /// Move the range's checkpoint to this tier first.
    Move(Tier),
}

/// The cost-optimal schedule over tiers: an iterator of actions whose first `slots[0]` slots
/// are in tier 0, the next `slots[1]` in tier 1, and so on (see [`CostOptimal::tiers`]).
///
/// ```
/// use gpurevolve::schedule::{CostOptimal, TierCost, TieredCosts, simulate};
/// // GPU memory (free), host memory, and a disk ten times dearer.
/// let costs = TieredCosts {
///     forward: 1.0,
///     tiers: vec![
///         TierCost { write: 0.0, read: 0.0 },
///         TierCost { write: 2.0, read: 2.0 },
///         TierCost { write: 20.0, read: 20.0 },
///     ],
/// };
/// let plan = CostOptimal::new(200, &[2, 3, 5], &costs)?;
/// let two_tiers = CostOptimal::new(200, &[2, 3], &TieredCosts { tiers: costs.tiers[..2].to_vec(), ..costs.clone() })?;
/// assert!(plan.cost() <= two_tiers.cost()); // a disk slot never hurts
/// simulate(plan)?;
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CostOptimal {
    steps: u64,
    slots: Vec<usize>,
    cost: f64,
    actions: std::vec::IntoIter<Action>,
}

/// `table[tier][l][c₀]…[c_{T−1}]`, flattened (the slot counts in mixed radix).
struct Table {
    /// `slots[u] + 1` for each tier.
    radix: Vec<usize>,
    /// Count vectors per `l`: `Π radix`.
    combos: usize,
    len_l: usize,
    cost: Vec<f64>,
    choice: Vec<Choice>,
}

impl Table {
    fn index(&self, counts: &[usize]) -> usize {
        counts
            .iter()
            .zip(&self.radix)
            .fold(0, |i, (&c, &r)| i * r + c)
    }

    fn at(&self, tier: Tier, l: usize, combo: usize) -> usize {
        (tier.0 * self.len_l + l) * self.combos + combo
    }

    /// The counts of combination `combo`.
    fn counts(&self, mut combo: usize) -> Vec<usize> {
        let mut counts = vec![0; self.radix.len()];
        for (c, r) in counts.iter_mut().zip(&self.radix).rev() {
            *c = combo % r;
            combo /= r;
        }
        counts
    }
}

impl CostOptimal {
    /// Plans `steps` steps with `slots[t]` slots in tier `t` under `costs` (one entry per tier).
    ///
    /// # Errors
    /// [`Error::ZeroSteps`]; [`Error::ZeroSnapshots`] with no slot at all;
    /// [`Error::InvalidArgument`] for no tiers, costs that do not name every tier or are
    /// negative or not finite, or a problem too large to plan exactly (over 10⁸ table entries
    /// or about 2·10¹⁰ operations: use [`Multistage`](super::Multistage), or fewer steps or
    /// slots).
    pub fn new(steps: u64, slots: &[usize], costs: &TieredCosts) -> Result<Self> {
        if steps == 0 {
            return Err(Error::ZeroSteps);
        }
        if slots.is_empty() || costs.tiers.len() != slots.len() {
            return Err(Error::InvalidArgument {
                name: "costs",
                reason: format!(
                    "{} slot counts and {} tier costs; give one of each per tier (at least one)",
                    slots.len(),
                    costs.tiers.len()
                ),
            });
        }
        if slots.iter().sum::<usize>() == 0 {
            return Err(Error::ZeroSnapshots);
        }
        let all: Vec<f64> = std::iter::once(costs.forward)
            .chain(costs.tiers.iter().flat_map(|t| [t.write, t.read]))
            .collect();
        if all.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
            let listed: Vec<String> = all.iter().map(|&x| crate::error::num(x)).collect();
            return Err(Error::InvalidArgument {
                name: "costs",
                reason: format!(
                    "the costs (a step, then each tier's write and read, in seconds) must be \
                     finite and non-negative, got {}",
                    listed.join(", ")
                ),
            });
        }
        let tiers = slots.len() as u128;
        let combos = slots
            .iter()
            .try_fold(1u128, |p, &c| p.checked_mul(c as u128 + 1))
            .unwrap_or(u128::MAX);
        let n = u128::from(steps);
        let entries = tiers.saturating_mul(n + 1).saturating_mul(combos);
        // The table's size, and its fill: about 2·10¹⁰ operations is tens of seconds (with two
        // tiers, n²·(m + 1)·(d + 1)).
        let work = n
            .saturating_mul(n)
            .saturating_mul(combos)
            .saturating_mul(tiers * tiers)
            / 4;
        if entries > 100_000_000 || work > 2 * 10u128.pow(10) {
            return Err(Error::InvalidArgument {
                name: "steps",
                reason: format!(
                    "{steps} steps with {slots:?} slots is too large a table for the exact plan; use Multistage"
                ),
            });
        }
        let n = steps as usize;
        let table = solve(n, slots, costs);
        let full = table.index(slots);
        let (cost, first) = (0..slots.len())
            .filter(|&t| slots[t] > 0)
            .map(|t| {
                let save = if n > 1 { costs.tiers[t].write } else { 0.0 };
                (save + table.cost[table.at(Tier(t), n, full)], Tier(t))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or((f64::INFINITY, Tier(0)));
        let mut start = 0;
        let free = slots
            .iter()
            .map(|&c| {
                let pool = (start..start + c).rev().collect();
                start += c;
                pool
            })
            .collect();
        let mut out = Emitter {
            table: &table,
            actions: Vec::new(),
            free,
        };
        if n == 1 {
            out.actions.push(Action::Reverse { step: 0 });
        } else {
            let slot = out.alloc(first);
            out.actions.push(Action::Save { step: 0, slot });
            out.emit(0, n, slots.to_vec(), first, slot);
        }
        out.actions.push(Action::End);
        Ok(Self {
            steps,
            slots: slots.to_vec(),
            cost,
            actions: out.actions.into_iter(),
        })
    }

    /// The least cost: `forward · advances + Σ write · saves + Σ read · restores` per tier (the
    /// recording and adjoint steps, the same for every schedule, excluded).
    pub fn cost(&self) -> f64 {
        self.cost
    }

    /// The tier of each slot: the first `slots[0]` in tier 0, and so on.
    pub fn tiers(&self) -> Vec<Tier> {
        self.slots
            .iter()
            .enumerate()
            .flat_map(|(t, &c)| std::iter::repeat_n(Tier(t), c))
            .collect()
    }
}

fn solve(n: usize, slots: &[usize], costs: &TieredCosts) -> Table {
    let radix: Vec<usize> = slots.iter().map(|&c| c + 1).collect();
    let combos: usize = radix.iter().product();
    let tiers = slots.len();
    let size = tiers * (n + 1) * combos;
    let mut t = Table {
        radix,
        combos,
        len_l: n + 1,
        cost: vec![f64::INFINITY; size],
        choice: vec![Choice::Direct; size],
    };
    let all_counts: Vec<Vec<usize>> = (0..combos).map(|c| t.counts(c)).collect();
    let mut free = vec![0usize; tiers];
    let mut base = vec![f64::INFINITY; tiers];
    for l in 1..=n {
        for (combo, counts) in all_counts.iter().enumerate() {
            for tier in 0..tiers {
                base[tier] = f64::INFINITY;
                if counts[tier] == 0 {
                    continue; // the range's own checkpoint needs a slot of its tier
                }
                let i = t.at(Tier(tier), l, combo);
                if l == 1 {
                    t.cost[i] = 0.0;
                    base[tier] = 0.0;
                    continue;
                }
                let restore = costs.tiers[tier].read;
                free.copy_from_slice(counts);
                free[tier] -= 1;
                let mut best = (f64::INFINITY, Choice::Direct);
                for j in 1..l {
                    let base_j =
                        costs.forward * j as f64 + restore + t.cost[t.at(Tier(tier), j, combo)];
                    if j == l - 1 {
                        if base_j < best.0 {
                            best = (base_j, Choice::Direct);
                        }
                        continue;
                    }
                    for next in 0..tiers {
                        if free[next] == 0 {
                            continue;
                        }
                        let right = t.at(Tier(next), l - j, t.index(&free));
                        let c = base_j + costs.tiers[next].write + t.cost[right];
                        if c < best.0 {
                            best = (c, Choice::Split(j, Tier(next)));
                        }
                    }
                }
                t.cost[i] = best.0;
                t.choice[i] = best.1;
                base[tier] = best.0;
            }
            // Tier moves at the range's start, where its checkpoint is live: into a free slot
            // of another tier, for that tier's write. Compared with the costs before any move.
            if l > 1 {
                for tier in 0..tiers {
                    if counts[tier] == 0 {
                        continue;
                    }
                    let i = t.at(Tier(tier), l, combo);
                    for other in (0..tiers).filter(|&o| o != tier && counts[o] > 0) {
                        let c = costs.tiers[other].write + base[other];
                        if c < t.cost[i] {
                            t.cost[i] = c;
                            t.choice[i] = Choice::Move(Tier(other));
                        }
                    }
                }
            }
        }
    }
    t
}

/// Turns the table's choices into actions, handing out slots of the right tier.
struct Emitter<'t> {
    table: &'t Table,
    actions: Vec<Action>,
    /// Free slots per tier, lowest on top.
    free: Vec<Vec<usize>>,
}

impl Emitter<'_> {
    fn alloc(&mut self, tier: Tier) -> usize {
        // The table only splits into a tier with a free slot, so the pool is never empty.
        self.free[tier.0].pop().unwrap_or(usize::MAX)
    }

    fn release(&mut self, tier: Tier, slot: usize) {
        let pool = &mut self.free[tier.0];
        pool.push(slot);
        pool.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Reverses steps `start..start + l`; state `start` is live and held in `slot` (`tier`),
    /// with `counts[u]` slots of each tier for this range (the checkpoint's own included).
    ///
    /// The left part and a tier move continue in the loop rather than recursing, so the depth
    /// is the number of nested checkpoints (at most the number of slots), never of steps.
    fn emit(
        &mut self,
        start: usize,
        mut l: usize,
        counts: Vec<usize>,
        mut tier: Tier,
        mut slot: usize,
    ) {
        let s = start as u64;
        let combo = self.table.index(&counts);
        loop {
            if l == 1 {
                self.actions.push(Action::Free { step: s, slot });
                self.actions.push(Action::Reverse { step: s });
                self.release(tier, slot);
                return;
            }
            let j = match self.table.choice[self.table.at(tier, l, combo)] {
                Choice::Move(other) => {
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
                    let mut free = counts.clone();
                    free[tier.0] -= 1;
                    let next_slot = self.alloc(next);
                    self.actions.push(Action::Save {
                        step: at,
                        slot: next_slot,
                    });
                    self.emit(start + j, l - j, free, next, next_slot);
                    j
                }
            };
            // Back to this range's checkpoint for the left part.
            self.actions.push(Action::Restore { step: s, slot });
            l = j;
        }
    }
}

impl Iterator for CostOptimal {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        self.actions.next()
    }
}

impl Schedule for CostOptimal {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn slot_capacity(&self) -> usize {
        self.slots.iter().sum()
    }

    fn tiers(&self) -> Option<Vec<Tier>> {
        Some(CostOptimal::tiers(self))
    }

    /// Replays a copy of the schedule (it is valid by construction).
    fn planned(&self) -> Result<Option<Planned>> {
        planned(self.clone()).map(Some)
    }
}

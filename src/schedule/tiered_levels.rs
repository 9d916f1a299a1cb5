//! The least-cost level schedule over the GPU's time levels and host memory: [`TieredLevels`],
//! whose documentation derives the programme.

use super::action::{Action, LevelBudget, Planned, Schedule, Tier};
use super::cost_optimal::TieredCosts;
use super::simulate::planned;
use crate::error::{Error, Result};

/// The most table entries a plan may fill (`(q + 2)·n·l·h`): 16 M, 256 MiB while planning.
const MAX_ENTRIES: u128 = 1 << 24;
/// The most split points a plan may evaluate, counted as `n²·(q + 2)·(l + 1)·(h + 1)` (twice
/// those it does): about 2.5 s on a 2-core machine.
const MAX_WORK: u128 = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Choice {
    /// Advance to the last step and reverse it.
    Direct,
    /// Advance `i` and save on the GPU.
    Device(u32),
    /// Advance `i` and save to host memory.
    Host(u32),
    /// Move the held state to the other tier first.
    Move,
}

/// What holding a range's state costs (see the module docs): index 0 rest, 1 host, `1 + o`
/// device with `o` levels of its own.
type Kind = usize;
const REST: Kind = 0;
const HOST: Kind = 1;

fn device(own: u64) -> Kind {
    1 + own as usize
}

struct Table {
    steps: usize,
    levels: usize,
    slots: usize,
    cost: Vec<f64>,
    choice: Vec<Choice>,
}

impl Table {
    /// Steps innermost: the split search reads `G(·, i, l, h)` and `G(·, m − i, l', h')` along
    /// `i`, two contiguous runs.
    fn at(&self, kind: Kind, m: usize, l: usize, h: usize) -> usize {
        ((kind * (self.levels + 1) + l) * (self.slots + 1) + h) * (self.steps + 1) + m
    }
}

/// The level schedule over two tiers, with the least cost: GPU memory counted in time levels
/// that consecutive states share ([`LevelOptimal`](super::LevelOptimal)'s model), host memory
/// in whole states that cost a copy each way ([`TwoTier`](super::TwoTier)'s model), and the
/// state-only adjoint (a reverse recomputes nothing).
///
/// **The programme.** `G(k, m, l, h)`: the least cost to reverse the `m` steps above a held
/// state that is live, with `l` GPU levels and `h` host slots free besides what it holds
/// itself, where its kind `k` says what holding it costs and gives:
///
/// - *rest* (state 0 of an operator that starts at rest): nothing held, restored for free;
/// - *host*: one host slot, restored for `read`;
/// - *device* with `o` levels of its own (`1 ≤ o ≤ q`): restored for free, and a state saved
///   `i < q` steps above it shares `q − i` of its levels.
///
/// ```text
/// G(k, 1, l, h) = 0
/// G(k, m, l, h) = min( f·(m−1) + r(k) + G(k, m−1, l, h),                          advance to the last step
///                      f·i + G(device c, m−i, l−c, h) + r(k) + G(k, i, l, h),     save on the GPU, c = min(i, q) above a device state, else q
///                      f·i + w + G(host, m−i, l, h−1) + r(k) + G(k, i, l, h),     save to host memory
///                      G(device q, m, l−q, h+1),  w + G(host, m, l+o, h−1) )     move the held state to the other tier
/// ```
///
/// over `1 ≤ i ≤ m − 2`, with `f`, `w` and `read` a step's, a host write's and a host read's
/// costs (host memory's in [`TieredCosts`]), and `r(host) = read`, 0 otherwise. A move happens where the held
/// state is live, at the start of a range; one is enough since copies cost nothing negative,
/// so moves compare against the costs without one. The tests check the programme against an
/// exhaustive search over every sequence of moves on whole states (advance, save to either
/// tier, free, restore, reverse) for small `n`, with the simulator's level count.
///
/// **Exactness.** A device state saved above a host state is charged `q` levels. For `q ≤ 2`
/// that is what it holds: its levels below the host state's step are the host state's, and no
/// other state held on the GPU reaches that high. For `q > 2` it may share with a device
/// state further down, so the plan can be dearer than needed there (never over its budget).
///
/// **Planning** is `O(n²·l·h·(q + 2))`, exact: the main job's shot (778 steps, 8 GPU levels,
/// 33 host snapshots) plans in 1.7 s on a 2-core machine (`cargo bench --bench schedule --
/// tiered`). Larger cases are refused with [`Error::PlanTooLarge`], and a caller falls back to
/// [`LevelOptimal`](super::LevelOptimal) with its slots placed by use
/// ([`Multistage`](super::Multistage)).
///
/// ```
/// use gpurevolve::schedule::{LevelOptimal, TierCost, TieredCosts, TieredLevels, simulate};
/// // 200 steps, 6 GPU levels and 4 host slots; a host copy costs 3 steps each way.
/// let costs = TieredCosts::two_tier(1.0, TierCost { write: 3.0, read: 3.0 });
/// let plan = TieredLevels::from_rest(200, 6, 4, 2, &costs)?;
/// let gpu_only = LevelOptimal::from_rest(200, 6, 2)?;
/// let stats = simulate(plan.clone())?;
/// assert!(plan.cost() < simulate(gpu_only)?.advances as f64); // host slots help
/// assert!(stats.peak_levels <= 6); // GPU levels only: host copies are whole states
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TieredLevels {
    steps: u64,
    levels: u64,
    per_state: u64,
    initial_free: bool,
    cost: f64,
    tiers: Vec<Tier>,
    actions: std::vec::IntoIter<Action>,
}

impl TieredLevels {
    /// Plans `steps` steps with `levels` GPU time levels (state 0's included) and `host` host
    /// slots, for states of `per_state` levels.
    ///
    /// # Errors
    /// [`Error::ZeroSteps`]; [`Error::InvalidArgument`] for `per_state = 0` or costs that are
    /// negative or not finite; [`Error::LevelBudget`] when neither tier can hold state 0;
    /// [`Error::PlanTooLarge`] beyond what plans in a few seconds.
    pub fn new(
        steps: u64,
        levels: u64,
        host: u64,
        per_state: u64,
        costs: &TieredCosts,
    ) -> Result<Self> {
        Self::plan(steps, levels, host, per_state, costs, false)
    }

    /// As [`new`](Self::new), for an operator that
    /// [starts at rest](crate::engine::Operator::starts_at_rest): state 0 is rebuilt, not
    /// held, so every level and slot goes to the other states.
    ///
    /// # Errors
    /// As [`new`](Self::new), except that any budget can reverse the steps.
    pub fn from_rest(
        steps: u64,
        levels: u64,
        host: u64,
        per_state: u64,
        costs: &TieredCosts,
    ) -> Result<Self> {
        Self::plan(steps, levels, host, per_state, costs, true)
    }

    fn plan(
        steps: u64,
        levels: u64,
        host: u64,
        q: u64,
        costs: &TieredCosts,
        initial_free: bool,
    ) -> Result<Self> {
        if steps == 0 {
            return Err(Error::ZeroSteps);
        }
        if q == 0 {
            return Err(Error::InvalidArgument {
                name: "per_state",
                reason: "a state is at least one time level".into(),
            });
        }
        let host_costs = costs.tier(Tier::HOST);
        let all = [costs.forward, host_costs.write, host_costs.read];
        if all.iter().any(|x| !(x.is_finite() && *x >= 0.0)) {
            let listed: Vec<String> = all.iter().map(|&x| crate::error::num(x)).collect();
            return Err(Error::InvalidArgument {
                name: "costs",
                reason: format!(
                    "the costs (a step, a copy to host memory, a copy back, in seconds) must be \
                     finite and non-negative, got {}",
                    listed.join(", ")
                ),
            });
        }
        if !initial_free && levels < q && host == 0 {
            return Err(Error::LevelBudget { levels, needed: q });
        }
        // Beyond every state saved at once, levels and slots are never used.
        let (l, h) = (levels.min(steps.saturating_add(q)), host.min(steps));
        let kinds = q as u128 + 2;
        let (n, cells) = (
            u128::from(steps),
            u128::from(l + 1) * u128::from(h + 1) * kinds,
        );
        let entries = (n + 1) * cells;
        let work = n * n * cells;
        if entries > MAX_ENTRIES || work > MAX_WORK {
            return Err(Error::PlanTooLarge {
                steps,
                levels,
                why: format!(
                    "{entries} table entries and about {work} split points with {host} host slots, above {MAX_ENTRIES} and {MAX_WORK}"
                ),
            });
        }
        let table = solve(steps as usize, l as usize, h as usize, q, all);
        let n = steps as usize;
        let (l, h) = (l as usize, h as usize);
        // State 0: rebuilt, on the GPU, or in host memory.
        let mut starts = Vec::new();
        if initial_free {
            starts.push((0.0, REST, 0, 0));
        } else {
            if l >= q as usize {
                starts.push((0.0, device(q), q as usize, 0));
            }
            if h >= 1 {
                starts.push((host_costs.write, HOST, 0, 1));
            }
        }
        let (mut cost, kind, used_l, used_h) = starts
            .into_iter()
            .map(|(w, k, ul, uh)| (w + table.cost[table.at(k, n, l - ul, h - uh)], k, ul, uh))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .ok_or(Error::LevelBudget { levels, needed: q })?;
        let mut out = Emitter {
            table: &table,
            q,
            actions: Vec::new(),
            device_free: Vec::new(),
            device_slots: 0,
            host_free: Vec::new(),
            host_slots: 0,
        };
        if n == 1 {
            // State 0 is live: nothing to hold.
            cost = 0.0;
            out.actions.push(Action::Reverse { step: 0 });
        } else {
            let slot = out.alloc(kind);
            out.actions.push(Action::Save { step: 0, slot });
            out.emit(0, n, l - used_l, h - used_h, kind, slot);
        }
        out.actions.push(Action::End);
        let (actions, tiers) = out.finish();
        log::debug!(
            "tiered level plan: {steps} steps, {levels} GPU levels, {host} host slots: cost {cost}"
        );
        Ok(Self {
            steps,
            levels,
            per_state: q,
            initial_free,
            cost,
            tiers,
            actions: actions.into_iter(),
        })
    }

    /// The least cost: `forward · advances + write · host saves + read · host
    /// restores` (the recording and adjoint steps, the same for every schedule, excluded).
    pub fn cost(&self) -> f64 {
        self.cost
    }

    /// The GPU time levels the plan holds at most (state 0's included unless rebuilt).
    pub fn levels(&self) -> u64 {
        self.levels
    }

    /// The tier of each slot: the GPU's first, then host memory's.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }
}

/// The table for `costs`: a step's, a host write's and a host read's.
fn solve(n: usize, levels: usize, slots: usize, q: u64, costs: [f64; 3]) -> Table {
    let kinds = q as usize + 2;
    let size = kinds * (n + 1) * (levels + 1) * (slots + 1);
    let mut t = Table {
        steps: n,
        levels,
        slots,
        cost: vec![0.0; size],
        choice: vec![Choice::Direct; size],
    };
    let [f, w, r] = costs;
    for m in 2..=n {
        for kind in 0..kinds {
            let restore = if kind == HOST { r } else { 0.0 };
            for l in 0..=levels {
                for h in 0..=slots {
                    let mut best = (
                        f * (m - 1) as f64 + restore + t.cost[t.at(kind, m - 1, l, h)],
                        Choice::Direct,
                    );
                    // The rows the split search reads, each along the steps.
                    let row = |kind: Kind, l: usize, h: usize| &t.cost[t.at(kind, 0, l, h)..][..=n];
                    let left = row(kind, l, h);
                    // A save of a whole state on the GPU: every split above a state that shares
                    // nothing, those at least q steps up above one that does.
                    let whole = (l >= q as usize).then(|| row(device(q), l - q as usize, h));
                    let host = (h >= 1).then(|| row(HOST, l, h - 1));
                    let shared = kind >= device(1);
                    for i in 1..=m - 2 {
                        let left = f * i as f64 + restore + left[i];
                        let device_right = if shared && (i as u64) < q {
                            (i <= l).then(|| t.cost[t.at(device(i as u64), m - i, l - i, h)])
                        } else {
                            whole.map(|right| right[m - i])
                        };
                        if let Some(right) = device_right
                            && left + right < best.0
                        {
                            best = (left + right, Choice::Device(i as u32));
                        }
                        if let Some(right) = host
                            && left + w + right[m - i] < best.0
                        {
                            best = (left + w + right[m - i], Choice::Host(i as u32));
                        }
                    }
                    let i = t.at(kind, m, l, h);
                    t.cost[i] = best.0;
                    t.choice[i] = best.1;
                }
            }
        }
        // Moves, against the costs without one (at this m, all filled above).
        let q = q as usize;
        let mut moved = Vec::new();
        for l in 0..=levels {
            for h in 0..=slots {
                let i = t.at(HOST, m, l, h);
                if l >= q && h < slots {
                    let v = t.cost[t.at(device(q as u64), m, l - q, h + 1)];
                    if v < t.cost[i] {
                        moved.push((i, v));
                    }
                }
                for own in 1..=q {
                    let i = t.at(device(own as u64), m, l, h);
                    if h >= 1 && l + own <= levels {
                        let v = w + t.cost[t.at(HOST, m, l + own, h - 1)];
                        if v < t.cost[i] {
                            moved.push((i, v));
                        }
                    }
                }
            }
        }
        for (i, v) in moved {
            t.cost[i] = v;
            t.choice[i] = Choice::Move;
        }
    }
    t
}

/// Turns the table's choices into actions, numbering GPU slots first and host slots after.
struct Emitter<'t> {
    table: &'t Table,
    q: u64,
    actions: Vec<Action>,
    /// Free slots of each tier, lowest on top; slots are numbered per tier while emitting.
    device_free: Vec<usize>,
    device_slots: usize,
    host_free: Vec<usize>,
    host_slots: usize,
}

/// Host slots while emitting: `HOST_SLOT + j`, renumbered after the GPU's at the end.
const HOST_SLOT: usize = usize::MAX / 2;

impl Emitter<'_> {
    fn alloc(&mut self, kind: Kind) -> usize {
        // State 0 at rest takes a GPU slot that holds nothing (the engine rebuilds it).
        let (free, count, base) = match kind {
            HOST => (&mut self.host_free, &mut self.host_slots, HOST_SLOT),
            _ => (&mut self.device_free, &mut self.device_slots, 0),
        };
        free.pop().unwrap_or_else(|| {
            *count += 1;
            base + *count - 1
        })
    }

    fn release(&mut self, kind: Kind, slot: usize) {
        let free = match kind {
            HOST => &mut self.host_free,
            _ => &mut self.device_free,
        };
        free.push(slot);
        free.sort_unstable_by(|a, b| b.cmp(a));
    }

    /// Frees the range's slot and reverses its first step.
    fn last(&mut self, s: u64, kind: Kind, slot: usize) {
        self.actions.push(Action::Free { step: s, slot });
        self.actions.push(Action::Reverse { step: s });
        self.release(kind, slot);
    }

    /// Reverses steps `start..start + m`; state `start` is live and held in `slot` as `kind`,
    /// with `l` GPU levels and `h` host slots free besides. The left part and a move continue
    /// in the loop, so the depth is the number of nested checkpoints, never of steps.
    fn emit(
        &mut self,
        start: usize,
        mut m: usize,
        mut l: usize,
        mut h: usize,
        mut kind: Kind,
        mut slot: usize,
    ) {
        let s = start as u64;
        let q = self.q as usize;
        loop {
            if m == 1 {
                self.last(s, kind, slot);
                return;
            }
            let t = self.table;
            let i = match t.choice[t.at(kind, m, l, h)] {
                Choice::Move => {
                    let (to, l2, h2) = if kind == HOST {
                        (device(q as u64), l - q, h + 1)
                    } else {
                        (HOST, l + (kind - 1), h - 1)
                    };
                    let moved = self.alloc(to);
                    self.actions.push(Action::Save {
                        step: s,
                        slot: moved,
                    });
                    self.actions.push(Action::Free { step: s, slot });
                    self.release(kind, slot);
                    (kind, slot, l, h) = (to, moved, l2, h2);
                    continue;
                }
                Choice::Direct => {
                    let last = s + (m - 1) as u64;
                    self.actions.push(Action::Advance { from: s, to: last });
                    self.actions.push(Action::Reverse { step: last });
                    m - 1
                }
                Choice::Device(i) | Choice::Host(i) => {
                    let i = i as usize;
                    let at = s + i as u64;
                    self.actions.push(Action::Advance { from: s, to: at });
                    let (child, l2, h2) = match t.choice[t.at(kind, m, l, h)] {
                        Choice::Host(_) => (HOST, l, h - 1),
                        _ => {
                            let c = if kind >= device(1) { i.min(q) } else { q };
                            (device(c as u64), l - c, h)
                        }
                    };
                    let child_slot = self.alloc(child);
                    self.actions.push(Action::Save {
                        step: at,
                        slot: child_slot,
                    });
                    self.emit(start + i, m - i, l2, h2, child, child_slot);
                    i
                }
            };
            // Back to this range's state for the left part.
            self.actions.push(Action::Restore { step: s, slot });
            m = i;
        }
    }

    /// The actions with host slots numbered after the GPU's, and the tier of each slot.
    fn finish(self) -> (Vec<Action>, Vec<Tier>) {
        let d = self.device_slots;
        let slot = |s: usize| {
            if s >= HOST_SLOT {
                d + (s - HOST_SLOT)
            } else {
                s
            }
        };
        let actions = self
            .actions
            .into_iter()
            .map(|a| match a {
                Action::Save { step, slot: s } => Action::Save {
                    step,
                    slot: slot(s),
                },
                Action::Restore { step, slot: s } => Action::Restore {
                    step,
                    slot: slot(s),
                },
                Action::Free { step, slot: s } => Action::Free {
                    step,
                    slot: slot(s),
                },
                other => other,
            })
            .collect();
        let mut tiers = vec![Tier::DEVICE; d];
        tiers.extend(std::iter::repeat_n(Tier::HOST, self.host_slots));
        (actions, tiers)
    }
}

impl Iterator for TieredLevels {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        self.actions.next()
    }
}

impl Schedule for TieredLevels {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn slot_capacity(&self) -> usize {
        self.tiers.len()
    }

    fn tiers(&self) -> Option<Vec<Tier>> {
        Some(TieredLevels::tiers(self).to_vec())
    }

    /// The GPU levels: host slots hold whole states and are not counted here.
    fn level_budget(&self) -> Option<LevelBudget> {
        Some(LevelBudget {
            per_state: self.per_state,
            levels: self.levels,
            initial_free: self.initial_free,
            joins: false,
        })
    }

    /// Replays a copy of the schedule (it is valid by construction).
    fn planned(&self) -> Result<Option<Planned>> {
        planned(self.clone()).map(Some)
    }
}

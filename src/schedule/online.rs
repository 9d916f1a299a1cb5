//! Online checkpointing: a run whose number of steps is known only when it ends ([`Online`]).

use std::collections::VecDeque;

use super::action::{Action, OnlineControl, Planned, Schedule};
use super::plan::min_advances;
use super::revolve::Revolve;
use crate::error::{Error, Result};

/// `p(steps, snaps)` for lengths the online schedule meets (no overflow below 2⁶⁴ advances,
/// which no run reaches).
fn p(steps: u64, snaps: u64) -> u64 {
    if steps <= 1 {
        return 0;
    }
    min_advances(steps, snaps.max(1)).unwrap_or(u64::MAX)
}

/// `p(L, f)` from cached binomials, for the decision made before every step: `β(f, t)` is
/// tabulated per `f` as far as the lengths asked for, so a lookup is a search in a short
/// table instead of fresh 128-bit binomials (measured: 5 µs a step at `s = 10` before).
#[derive(Clone, Debug, Default)]
struct Costs {
    /// `beta[f][t] = β(f, t) = C(f + t, t)`, capped at `u64::MAX`.
    beta: Vec<Vec<u64>>,
}

impl Costs {
    /// `β(f, t)`, extending the table.
    fn beta(&mut self, f: usize, t: usize) -> u64 {
        self.extend(f, |row| row.len() > t);
        self.beta[f][t]
    }

    /// Extends row `f` until `done(row)`, or until its values saturate.
    fn extend(&mut self, f: usize, done: impl Fn(&[u64]) -> bool) {
        if self.beta.len() <= f {
            self.beta.resize(f + 1, Vec::new());
        }
        let row = &mut self.beta[f];
        if row.is_empty() {
            row.push(1);
        }
        while !done(row) {
            let t = row.len() as u128;
            let last = *row.last().unwrap_or(&1);
            if last == u64::MAX {
                row.push(u64::MAX);
                continue;
            }
            // C(f + t, t) = C(f + t − 1, t − 1) · (f + t) / t, exact.
            let next = u128::from(last) * (f as u128 + t) / t;
            row.push(u64::try_from(next).unwrap_or(u64::MAX));
        }
    }

    /// `p(steps, snaps)`, as [`min_advances`].
    fn p(&mut self, steps: u64, snaps: u64) -> u64 {
        if steps <= 1 {
            return 0;
        }
        if snaps <= 1 {
            return steps.saturating_mul(steps - 1) / 2;
        }
        let f = snaps as usize;
        self.extend(f, |row| row.last().is_some_and(|&b| b >= steps));
        // The repetition number: the first t with β(f, t) ≥ steps.
        let t = self.beta[f].partition_point(|&b| b < steps);
        let below = self.beta(f + 1, t - 1);
        (t as u64).saturating_mul(steps).saturating_sub(below)
    }
}

/// Online checkpointing: a run whose number of steps is known only when it ends.
///
/// It keeps `snaps` checkpoints while the forward run goes on. Before each step it
/// decides whether the live state takes a slot, and which checkpoint it replaces; when the run
/// ends, [`Online::finish`] reverses optimally from what is held: each segment between two
/// checkpoints by Revolve, with the slots the later segments have given back.
///
/// The replacement rule is the one Stumm & Walther's online revolve applies once a run
/// outgrows its hand-built phases (A. Hinze & J. Sternberg's *a-revolve*, Optim. Methods
/// Softw. 20(6), 2005; P. Stumm & A. Walther, *New algorithms for optimal online
/// checkpointing*, SIAM J. Sci. Comput. 32(2), 2010): keep the placement whose reversal would
/// cost least if the run ended at the next step, the cost counted exactly from Revolve's
/// closed form (a-revolve estimates the last segment with one slot). Applied from the first
/// step (without Stumm & Walther's phases for `n ≤ β(s, 3)`), it stays within 4.4 % of the
/// offline optimum for every `n ≤ 10⁴` and `s = 10, 20, 50` (test
/// `online_stays_near_the_offline_optimum`; the worst ratios are in BENCHMARKS.md).
///
/// The cost of a placement `0 = c₀ < c₁ < … < c_m ≤ n − 1` at the end of a run of `n` steps,
/// in advances: the forward run's `n − 1`, plus `p(c_{i+1} − c_i, s − i)` for each closed
/// segment (Revolve with the `s − i` slots left to it once the later segments are done), plus
/// `p(n − 1 − c_m, s − m)` for the last, whose final state was live and reversed at once.
///
/// ```
/// use gpurevolve::schedule::{Action, Online};
/// let mut online = Online::new(3)?;
/// // A run of 9 steps, not known in advance: the actions of each step as it comes...
/// let mut actions: Vec<Action> = Vec::new();
/// for _ in 0..8 {
///     actions.extend(online.step());
/// }
/// // ...and when the ninth turns out to be the last (its input state is live), the reversal.
/// assert_eq!(online.live(), 8);
/// actions.extend(online.finish());
/// let reversed = actions.iter().filter(|a| matches!(a, Action::Reverse { .. })).count();
/// assert_eq!(reversed, 9);
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Online {
    snaps: u64,
    /// Checkpoints, oldest first: `(step, slot)`.
    held: Vec<(u64, usize)>,
    /// Slots not holding a checkpoint.
    free: Vec<usize>,
    live: u64,
    costs: Costs,
    /// Scratch for [`replacement`](Self::replacement), kept to allocate nothing a step.
    prefix_a: Vec<u64>,
    suffix_b: Vec<u64>,
}

impl Online {
    /// Online checkpointing with `snaps` slots (the one holding state 0 included).
    ///
    /// # Errors
    /// [`Error::ZeroSnapshots`] for `snaps = 0`; [`Error::InvalidArgument`] when `snaps`
    /// does not fit a `usize`.
    pub fn new(snaps: u64) -> Result<Self> {
        if snaps == 0 {
            return Err(Error::ZeroSnapshots);
        }
        let slots = usize::try_from(snaps).map_err(|_| Error::InvalidArgument {
            name: "snaps",
            reason: format!("{snaps} slots cannot be addressed on this machine"),
        })?;
        Ok(Self {
            snaps,
            held: Vec::with_capacity(slots),
            free: (0..slots).rev().collect(),
            live: 0,
            costs: Costs::default(),
            prefix_a: Vec::with_capacity(slots + 1),
            suffix_b: Vec::with_capacity(slots + 1),
        })
    }

    /// The slots it addresses.
    pub fn snaps(&self) -> u64 {
        self.snaps
    }

    /// The step of the live state: steps taken so far.
    pub fn live(&self) -> u64 {
        self.live
    }

    /// The steps of the states held, oldest first.
    pub fn held(&self) -> impl Iterator<Item = u64> + '_ {
        self.held.iter().map(|&(step, _)| step)
    }

    /// The actions that take the run one step further: keeping the live state in a slot (a
    /// free one, or one whose checkpoint matters least for a run that ends at the next
    /// step), then the advance. The first call saves state 0.
    pub fn step(&mut self) -> impl Iterator<Item = Action> + use<> {
        let k = self.live;
        let mut out = [None; 3];
        if k == 0 || !self.free.is_empty() {
            if let Some(slot) = self.free.pop() {
                self.held.push((k, slot));
                out[1] = Some(Action::Save { step: k, slot });
            }
        } else if let Some(j) = self.replacement(k) {
            let (step, slot) = self.held.remove(j);
            self.held.push((k, slot));
            out[0] = Some(Action::Free { step, slot });
            out[1] = Some(Action::Save { step: k, slot });
        }
        self.live = k + 1;
        out[2] = Some(Action::Advance { from: k, to: k + 1 });
        out.into_iter().flatten()
    }

    /// Advances the reversal would take if the live state were the input of the last step
    /// (the run had `live + 1` steps), the forward run's own `live` advances included.
    pub fn advances_if_last(&self) -> u64 {
        let n = self.live + 1;
        let mut cost = n - 1;
        let s = self.snaps;
        for (i, pair) in self.held.windows(2).enumerate() {
            cost = cost.saturating_add(p(pair[1].0 - pair[0].0, s - i as u64));
        }
        if let Some(&(last, _)) = self.held.last() {
            let m = self.held.len() as u64 - 1;
            cost = cost.saturating_add(p(n - 1 - last, s - m));
        } else {
            cost = cost.saturating_add(p(n, s));
        }
        cost
    }

    /// Which checkpoint the live state `k` replaces, if any (every slot is full): the
    /// placement whose reversal costs least for a run ending at the next step, ties kept as
    /// they are, then the oldest replaceable checkpoint. State 0 is never replaced.
    fn replacement(&mut self, k: u64) -> Option<usize> {
        let s = self.snaps;
        let m = self.held.len() - 1;
        if m == 0 {
            return None;
        }
        let Self {
            held,
            costs,
            prefix_a,
            suffix_b,
            ..
        } = self;
        let c = |i: usize| held[i].0;
        // Σ of the closed segments before i at their index, and from i on one index earlier
        // (as they are once a checkpoint before them is dropped).
        prefix_a.clear();
        prefix_a.push(0);
        for i in 0..m {
            let a = costs.p(c(i + 1) - c(i), s - i as u64);
            prefix_a.push(prefix_a[i].saturating_add(a));
        }
        suffix_b.clear();
        suffix_b.resize(m + 1, 0);
        for i in (0..m).rev() {
            let b = costs.p(c(i + 1) - c(i), s - i as u64 + 1);
            suffix_b[i] = suffix_b[i + 1].saturating_add(b);
        }
        let mut p = |steps, snaps| costs.p(steps, snaps);
        let n = k + 2; // the earliest end once this step has run
        let last = p(n - 1 - c(m), s - m as u64);
        let keep = prefix_a[m].saturating_add(last);
        let mut best = (keep, None);
        for j in 1..=m {
            // Drop c[j]; k joins as the newest checkpoint, ending segment [c_m, k) or,
            // for j = m, the merged [c_{m−1}, k).
            let cost = if j < m {
                prefix_a[j - 1]
                    .saturating_add(p(c(j + 1) - c(j - 1), s - j as u64 + 1))
                    .saturating_add(suffix_b[j + 1])
                    .saturating_add(p(k - c(m), s - m as u64 + 1))
            } else {
                prefix_a[m - 1].saturating_add(p(k - c(m - 1), s - m as u64 + 1))
            }
            .saturating_add(p(n - 1 - k, s - m as u64));
            if cost < best.0 {
                best = (cost, Some(j));
            }
        }
        best.1
    }

    /// Ends the forward run: the live state is the input of the last step, so the run had
    /// `live() + 1` steps. The actions that reverse it, `End` last.
    pub fn finish(mut self) -> OnlineReversal {
        let last = self.live;
        let mut pending = VecDeque::with_capacity(2);
        // The live state is reversed at once; if it is also the newest checkpoint, that
        // checkpoint is needed no more.
        if let Some(&(step, slot)) = self.held.last()
            && step == last
        {
            self.held.pop();
            self.free.push(slot);
            pending.push_back(Action::Free { step, slot });
        }
        pending.push_back(Action::Reverse { step: last });
        OnlineReversal {
            snaps: self.snaps,
            held: self.held,
            free: self.free,
            down_to: last,
            pending,
            segment: None,
            ended: false,
        }
    }
}

/// The reversal of an [`Online`] run: each segment between checkpoints, newest first, by
/// Revolve with the slots the later segments gave back.
#[derive(Clone, Debug)]
pub struct OnlineReversal {
    snaps: u64,
    held: Vec<(u64, usize)>,
    free: Vec<usize>,
    /// The lowest step reversed so far: the newest checkpoint's segment ends there.
    down_to: u64,
    pending: VecDeque<Action>,
    segment: Option<Segment>,
    ended: bool,
}

/// One segment's Revolve, in its own numbering, and how that maps to the run's.
#[derive(Clone, Debug)]
struct Segment {
    revolve: Revolve,
    start: u64,
    /// Run slots for the segment's slots: its slot 0 is the checkpoint at `start`.
    slots: Vec<usize>,
    /// Whether the segment's Revolve freed its slot 0 itself.
    freed_start: bool,
}

impl Iterator for OnlineReversal {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        if let Some(action) = self.pending.pop_front() {
            return Some(action);
        }
        if self.ended {
            return None;
        }
        loop {
            let Some(segment) = &mut self.segment else {
                // The next segment down, from the newest checkpoint; none left: the end.
                let Some(&(start, slot)) = self.held.last() else {
                    self.ended = true;
                    return Some(Action::End);
                };
                let steps = self.down_to - start;
                // The checkpoints below keep their slots; this segment has the rest.
                let snaps = self.snaps - (self.held.len() as u64 - 1);
                let revolve = Revolve::new(steps, snaps.min(steps)).ok()?;
                let extra = revolve.slot_capacity().saturating_sub(1);
                let mut slots = vec![slot];
                slots.extend(self.free.iter().rev().take(extra).copied());
                self.segment = Some(Segment {
                    revolve,
                    start,
                    slots,
                    freed_start: false,
                });
                return Some(Action::Restore { step: start, slot });
            };
            match segment.revolve.next() {
                // The segment's state 0 is the checkpoint restored to open it.
                Some(Action::Save { step: 0, slot: 0 }) => {}
                Some(Action::End) | None => {
                    let freed = segment.freed_start;
                    self.segment = None;
                    if let Some((step, slot)) = self.held.pop() {
                        self.free.push(slot);
                        self.down_to = step;
                        if !freed {
                            return Some(Action::Free { step, slot });
                        }
                    }
                }
                Some(action) => return Some(segment.map(action)),
            }
        }
    }
}

impl Segment {
    /// A segment action in the run's steps and slots.
    fn map(&mut self, action: Action) -> Action {
        let start = self.start;
        let slots = &self.slots;
        let slot = |s: usize| slots.get(s).copied().unwrap_or(usize::MAX);
        match action {
            Action::Advance { from, to } => Action::Advance {
                from: from + start,
                to: to + start,
            },
            Action::Save { step, slot: s } => Action::Save {
                step: step + start,
                slot: slot(s),
            },
            Action::Restore { step, slot: s } => Action::Restore {
                step: step + start,
                slot: slot(s),
            },
            Action::Join { step, slot: s } => Action::Join {
                step: step + start,
                slot: slot(s),
            },
            Action::Free { step, slot: s } => {
                let mapped = Action::Free {
                    step: step + start,
                    slot: slot(s),
                };
                self.freed_start |= s == 0;
                mapped
            }
            Action::Reverse { step } => Action::Reverse { step: step + start },
            Action::End => Action::End,
        }
    }
}

/// An [`Online`] run that turned out to have `steps` steps, as one [`Schedule`]: the actions
/// the online schedule took step by step, then its reversal. What an engine running to an
/// unknown end executes, replayed for a known end (to test it, plan it, or compare it with
/// Revolve).
///
/// ```
/// use gpurevolve::schedule::{min_advances, simulate, OnlineRun};
/// let stats = simulate(OnlineRun::new(1000, 10)?)?;
/// // Offline Revolve, knowing n = 1000 from the start: 3636 advances.
/// assert_eq!(min_advances(1000, 10)?, 3636);
/// assert!(stats.advances <= 3636 * 105 / 100);
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct OnlineRun {
    steps: u64,
    snaps: u64,
    phase: Phase,
}

#[derive(Clone, Debug)]
enum Phase {
    Forward(Online, VecDeque<Action>),
    Reverse(OnlineReversal),
}

impl OnlineRun {
    /// The online schedule with `snaps` slots over a run of `steps` steps.
    ///
    /// # Errors
    /// [`Error::ZeroSteps`], [`Error::ZeroSnapshots`].
    pub fn new(steps: u64, snaps: u64) -> Result<Self> {
        if steps == 0 {
            return Err(Error::ZeroSteps);
        }
        Ok(Self {
            steps,
            snaps,
            phase: Phase::Forward(Online::new(snaps)?, VecDeque::with_capacity(3)),
        })
    }
}

impl Iterator for OnlineRun {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        loop {
            match &mut self.phase {
                Phase::Forward(online, buffer) => {
                    if let Some(action) = buffer.pop_front() {
                        return Some(action);
                    }
                    if online.live() + 1 < self.steps {
                        buffer.extend(online.step());
                    } else {
                        let online = online.clone();
                        self.phase = Phase::Reverse(online.finish());
                    }
                }
                Phase::Reverse(reversal) => return reversal.next(),
            }
        }
    }
}

impl Schedule for OnlineRun {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn slot_capacity(&self) -> usize {
        // Slots are taken lowest first, and at most one state a step is kept.
        usize::try_from(self.snaps.min(self.steps)).unwrap_or(usize::MAX)
    }

    /// Replays a copy (the schedule is valid by construction; the replay is `O(n·s)`).
    fn planned(&self) -> Result<Option<Planned>> {
        super::simulate::planned(self.clone()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::simulate;

    /// Every run length and slot count: a valid schedule that reverses every step, whose
    /// advances are what `advances_if_last` promised when the run ended.
    #[test]
    fn every_short_run_is_valid_and_costs_what_it_promised() {
        for snaps in 1..=8 {
            for steps in 1..=200 {
                let mut online = Online::new(snaps).unwrap();
                for _ in 1..steps {
                    let _ = online.step().count();
                }
                let promised = online.advances_if_last();
                let stats = simulate(OnlineRun::new(steps, snaps).unwrap())
                    .unwrap_or_else(|e| panic!("n = {steps}, s = {snaps}: {e}"));
                assert_eq!(stats.reverse_steps, steps);
                assert_eq!(stats.advances, promised, "n = {steps}, s = {snaps}");
                assert!(stats.peak_slots as u64 <= snaps);
            }
        }
    }

    /// The cached costs are Revolve's closed form, for lengths and slot counts in any order.
    #[test]
    fn cached_costs_are_the_closed_form() {
        let mut costs = Costs::default();
        for steps in (1..3000u64)
            .rev()
            .step_by(7)
            .chain([1, 2, 3, 10_000, 123_456])
        {
            for snaps in [1, 2, 3, 5, 10, 21, 50, 51] {
                assert_eq!(
                    costs.p(steps, snaps),
                    p(steps, snaps),
                    "p({steps}, {snaps})"
                );
            }
        }
    }

    /// Up to `s + 1` steps every state fits: the online schedule is Revolve's optimum.
    #[test]
    fn while_every_state_fits_it_is_optimal() {
        for snaps in 1..=12u64 {
            for steps in 1..=snaps + 1 {
                let stats = simulate(OnlineRun::new(steps, snaps).unwrap()).unwrap();
                assert_eq!(stats.advances, steps - 1, "n = {steps}, s = {snaps}");
            }
        }
    }
}

/// [`Online`] as a [`Schedule`] for an engine that runs until a stop condition fires, at most
/// `max_steps` steps ([`Revolver::apply_forward_until`](crate::engine::Revolver::apply_forward_until)):
/// it hands out one step's actions at a time as the engine grants them, then, once ended, the
/// reversal.
#[derive(Clone, Debug)]
pub struct OnlineSchedule {
    max_steps: u64,
    snaps: u64,
    online: Option<Online>,
    pending: VecDeque<Action>,
    reversal: Option<OnlineReversal>,
}

impl OnlineSchedule {
    /// Online checkpointing with `snaps` slots for a run of at most `max_steps` steps.
    ///
    /// # Errors
    /// [`Error::ZeroSteps`], [`Error::ZeroSnapshots`].
    pub fn new(max_steps: u64, snaps: u64) -> Result<Self> {
        if max_steps == 0 {
            return Err(Error::ZeroSteps);
        }
        Ok(Self {
            max_steps,
            snaps,
            online: Some(Online::new(snaps)?),
            pending: VecDeque::with_capacity(3),
            reversal: None,
        })
    }
}

impl OnlineSchedule {
    /// The slots it addresses.
    pub fn snaps(&self) -> u64 {
        self.snaps
    }
}

impl Iterator for OnlineSchedule {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        if let Some(action) = self.pending.pop_front() {
            return Some(action);
        }
        self.reversal.as_mut()?.next()
    }
}

impl OnlineControl for OnlineSchedule {
    fn grant_step(&mut self) {
        if let Some(online) = self.online.as_mut()
            && online.live() + 1 < self.max_steps
        {
            self.pending.extend(online.step());
        }
    }

    fn end(&mut self) -> u64 {
        match self.online.take() {
            Some(online) => {
                let steps = online.live() + 1;
                self.max_steps = steps;
                self.reversal = Some(online.finish());
                steps
            }
            None => self.max_steps,
        }
    }
}

impl Schedule for OnlineSchedule {
    /// At most `max_steps` before the end; the run's steps after.
    fn steps(&self) -> u64 {
        self.max_steps
    }

    fn slot_capacity(&self) -> usize {
        usize::try_from(self.snaps.min(self.max_steps)).unwrap_or(usize::MAX)
    }

    fn online(&mut self) -> Option<&mut dyn OnlineControl> {
        Some(self)
    }
}

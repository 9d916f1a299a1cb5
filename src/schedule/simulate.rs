//! A symbolic executor that checks any schedule and counts what it costs.

use std::collections::HashMap;

use super::action::{Action, LevelBudget, Planned, Schedule, ScheduleStats, Tier, Violation};
use crate::error::{Error, Result};

/// Runs a [`Schedule`] symbolically and returns its costs, or the first action it rejects.
///
/// ```
/// use gpurevolve::schedule::{simulate, min_advances, Revolve};
/// let stats = simulate(Revolve::new(1000, 10)?)?;
/// assert_eq!(stats.advances, min_advances(1000, 10)?);
/// # Ok::<(), gpurevolve::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidSchedule`] naming the action and the [`Violation`].
pub fn simulate<S: Schedule>(schedule: S) -> Result<ScheduleStats> {
    let mut sim = Simulator::for_schedule(&schedule);
    for action in schedule {
        sim.check(action)?;
    }
    sim.finish()
}

/// Runs any sequence of actions for `steps` steps and `capacity` slots, as [`simulate`].
///
/// The rules: `Advance`, `Save` and `Reverse` start from the live state; an advance ends below
/// the next step to reverse; a save goes into an empty slot; restore and free name the state
/// their slot holds; steps are reversed in order `n − 1 … 0`; `End` comes last, with every step
/// reversed and every slot empty.
///
/// # Errors
/// [`Error::InvalidSchedule`] naming the action and the [`Violation`].
pub fn simulate_actions(
    steps: u64,
    capacity: usize,
    actions: impl IntoIterator<Item = Action>,
) -> Result<ScheduleStats> {
    let mut sim = Simulator::new(steps, capacity, None);
    for action in actions {
        sim.check(action)?;
    }
    sim.finish()
}

/// Simulates `schedule` and counts the uses of each slot in the same pass: what
/// [`Schedule::planned`] returns for a schedule that can be replayed (a clone of it).
///
/// ```
/// use gpurevolve::schedule::{planned, Revolve};
/// let plan = planned(Revolve::new(100, 10)?)?;
/// assert_eq!(plan.stats.total_forward, 322);
/// assert_eq!(plan.slot_uses.len(), 10);
/// # Ok::<(), gpurevolve::Error>(())
/// ```
///
/// # Errors
/// As [`simulate`].
pub fn planned<S: Schedule>(schedule: S) -> Result<Planned> {
    let mut sim = Simulator::for_schedule(&schedule);
    let mut slot_uses = vec![0u64; schedule.slot_capacity()];
    for action in schedule {
        sim.check(action)?;
        if let Action::Save { slot, .. }
        | Action::Restore { slot, .. }
        | Action::Join { slot, .. } = action
        {
            slot_uses[slot] += 1; // in range: checked above
        }
    }
    Ok(Planned {
        stats: sim.finish()?,
        slot_uses,
    })
}

/// The simulator as a checker that takes one action at a time: an engine that reads a
/// schedule once checks each action before it runs it.
pub(crate) struct Simulator {
    slots: Vec<Option<u64>>,
    held: usize,
    /// The level count, for a schedule with a level budget.
    levels: Option<Levels>,
    /// Which slots the level count covers: all of them, or for a schedule that also places
    /// its slots ([`Schedule::tiers`]), those on the GPU only.
    counted: Option<Vec<bool>>,
    live: Option<u64>,
    /// The state whose levels the working buffers still hold after its reverse: a `Join`
    /// below it may follow.
    reversed: Option<u64>,
    /// Levels a state, for a schedule that joins.
    joins: Option<u64>,
    end: u64,
    ended: bool,
    stats: ScheduleStats,
}

impl Simulator {
    /// A simulator for `steps` steps over `capacity` slots, with state 0 live, that checks
    /// `budget` when given.
    pub(crate) fn new(steps: u64, capacity: usize, budget: Option<LevelBudget>) -> Self {
        Self {
            slots: vec![None; capacity],
            held: 0,
            levels: budget.map(Levels::new),
            counted: None,
            live: Some(0),
            reversed: None,
            joins: budget.filter(|b| b.joins).map(|b| b.per_state.max(1)),
            end: steps,
            ended: false,
            stats: ScheduleStats {
                steps,
                ..ScheduleStats::default()
            },
        }
    }

    /// The simulator for `schedule`: its steps, slots and level budget.
    pub(crate) fn for_schedule(schedule: &impl Schedule) -> Self {
        let budget = schedule.level_budget();
        let mut sim = Self::new(schedule.steps(), schedule.slot_capacity(), budget);
        if budget.is_some() {
            sim.counted = schedule
                .tiers()
                .map(|tiers| tiers.iter().map(|t| *t == Tier::DEVICE).collect());
        }
        sim
    }

    /// Whether `slot`'s state counts against the level budget.
    fn counts_levels(&self, slot: usize) -> bool {
        self.counted
            .as_ref()
            .is_none_or(|c| c.get(slot).copied().unwrap_or(false))
    }

    /// Checks and applies the next action.
    ///
    /// # Errors
    /// [`Error::InvalidSchedule`] naming the action, its index and the [`Violation`]; the
    /// simulator is unchanged then.
    pub(crate) fn check(&mut self, action: Action) -> Result<()> {
        self.apply(action)
            .map_err(|violation| Error::InvalidSchedule {
                index: self.stats.actions,
                action: Some(action),
                violation,
            })?;
        self.stats.actions += 1;
        Ok(())
    }

    /// Ends an online run at `steps` steps: before any reverse, with no state past
    /// `steps − 1` reached.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] otherwise.
    pub(crate) fn end_at(&mut self, steps: u64) -> Result<()> {
        let reached = self.live.unwrap_or(0);
        if steps == 0 || steps > self.end || self.stats.reverse_steps > 0 || reached >= steps {
            return Err(Error::InvalidArgument {
                name: "schedule",
                reason: format!(
                    "an online run cannot end at {steps} steps: state {reached} is live, {} reversed, at most {} steps",
                    self.stats.reverse_steps, self.end
                ),
            });
        }
        self.end = steps;
        self.stats.steps = steps;
        Ok(())
    }

    /// What the actions so far did.
    pub(crate) fn stats(&self) -> &ScheduleStats {
        &self.stats
    }

    /// The state `slot` holds.
    pub(crate) fn held_in(&self, slot: usize) -> Option<u64> {
        self.slots.get(slot).copied().flatten()
    }

    /// Slots held now.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// The counts, once the schedule has ended.
    ///
    /// # Errors
    /// [`Error::InvalidSchedule`] with [`Violation::MissingEnd`] when it has not.
    pub(crate) fn finish(&self) -> Result<ScheduleStats> {
        if !self.ended {
            return Err(Error::InvalidSchedule {
                index: self.stats.actions,
                action: None,
                violation: Violation::MissingEnd,
            });
        }
        Ok(self.stats)
    }

    fn require_live(&self, needed: u64) -> Result<(), Violation> {
        if self.live == Some(needed) {
            Ok(())
        } else {
            Err(Violation::NotLive {
                needed,
                live: self.live,
            })
        }
    }

    fn slot(&mut self, slot: usize) -> Result<&mut Option<u64>, Violation> {
        let capacity = self.slots.len();
        self.slots
            .get_mut(slot)
            .ok_or(Violation::SlotOutOfRange { slot, capacity })
    }

    fn holding(&mut self, slot: usize, expected: u64) -> Result<&mut Option<u64>, Violation> {
        let entry = self.slot(slot)?;
        if *entry != Some(expected) {
            return Err(Violation::SlotMismatch {
                slot,
                expected,
                holds: *entry,
            });
        }
        Ok(entry)
    }

    fn apply(&mut self, action: Action) -> Result<(), Violation> {
        if self.ended {
            return Err(Violation::ActionAfterEnd);
        }
        match action {
            Action::Advance { from, to } => {
                self.require_live(from)?;
                if to <= from {
                    return Err(Violation::EmptyAdvance);
                }
                if to >= self.end {
                    return Err(Violation::AdvancePastReverse {
                        to,
                        next_reverse: self.end.checked_sub(1),
                    });
                }
                self.live = Some(to);
                self.stats.advances += to - from;
                self.stats.total_forward += to - from;
            }
            Action::Save { step, slot } => {
                self.require_live(step)?;
                let entry = self.slot(slot)?;
                if let Some(holds) = *entry {
                    return Err(Violation::SlotOccupied { slot, holds });
                }
                let counted = self.counts_levels(slot);
                if let Some(levels) = self.levels.as_mut().filter(|_| counted) {
                    levels.save(step)?;
                    self.stats.peak_levels = self.stats.peak_levels.max(levels.distinct);
                }
                *self.slot(slot)? = Some(step);
                self.held += 1;
                self.stats.saves += 1;
                self.stats.peak_slots = self.stats.peak_slots.max(self.held);
            }
            Action::Restore { step, slot } => {
                self.holding(slot, step)?;
                self.live = Some(step);
                self.reversed = None;
                self.stats.restores += 1;
            }
            Action::Join { step, slot } => {
                let Some(q) = self.joins else {
                    return Err(Violation::JoinNotAllowed);
                };
                // First, so that `step + 1` is at most the steps.
                if step >= self.end {
                    return Err(Violation::JoinPastReverse {
                        step,
                        next_reverse: self.end.checked_sub(1),
                    });
                }
                let above = step + 1;
                if self.live != Some(above) && self.reversed != Some(above) {
                    return Err(Violation::NotLive {
                        needed: above,
                        live: self.live,
                    });
                }
                let held = *self.slot(slot)?;
                if !held.is_some_and(|j| j < step && step - j < q) {
                    return Err(Violation::JoinTooFar { step, slot, held });
                }
                self.live = Some(step);
                self.reversed = None;
                self.stats.joins += 1;
            }
            Action::Free { step, slot } => {
                *self.holding(slot, step)? = None;
                let counted = self.counts_levels(slot);
                if let Some(levels) = self.levels.as_mut().filter(|_| counted) {
                    levels.free(step);
                }
                self.held -= 1;
                self.stats.frees += 1;
            }
            Action::Reverse { step } => {
                let expected = self.end.checked_sub(1);
                if expected != Some(step) {
                    return Err(Violation::ReverseOutOfOrder { step, expected });
                }
                self.require_live(step)?;
                self.live = None;
                self.reversed = Some(step);
                self.end = step;
                self.stats.reverse_steps += 1;
                self.stats.total_forward += 1;
            }
            Action::End => {
                if self.end > 0 {
                    return Err(Violation::EndBeforeDone {
                        remaining: self.end,
                    });
                }
                if self.held > 0 {
                    return Err(Violation::EndWithHeldSlots { held: self.held });
                }
                self.ended = true;
            }
        }
        Ok(())
    }
}

/// The time levels the saved states hold: a count per level, so consecutive states share.
struct Levels {
    per_state: u64,
    budget: u64,
    initial_free: bool,
    /// Saved states holding each level, by `level + per_state − 1` (state 0 holds levels
    /// `1 − per_state … 0`).
    holders: HashMap<u64, u32>,
    distinct: u64,
}

impl Levels {
    fn new(budget: LevelBudget) -> Self {
        Self {
            per_state: budget.per_state.max(1),
            budget: budget.levels,
            initial_free: budget.initial_free,
            holders: HashMap::new(),
            distinct: 0,
        }
    }

    /// The levels of state `step`, shifted to be non-negative.
    fn of(&self, step: u64) -> std::ops::Range<u64> {
        if step == 0 && self.initial_free {
            return 0..0;
        }
        step..step.saturating_add(self.per_state)
    }

    /// Counts state `step`'s levels in, unless that exceeds the budget (then nothing changes).
    fn save(&mut self, step: u64) -> Result<(), Violation> {
        let new = self
            .of(step)
            .filter(|l| !self.holders.contains_key(l))
            .count() as u64;
        let held = self.distinct + new;
        if held > self.budget {
            return Err(Violation::LevelBudgetExceeded {
                held,
                budget: self.budget,
            });
        }
        for level in self.of(step) {
            *self.holders.entry(level).or_insert(0) += 1;
        }
        self.distinct = held;
        Ok(())
    }

    fn free(&mut self, step: u64) {
        for level in self.of(step) {
            if let Some(count) = self.holders.get_mut(&level) {
                *count -= 1;
                if *count == 0 {
                    self.holders.remove(&level);
                    self.distinct -= 1;
                }
            }
        }
    }
}

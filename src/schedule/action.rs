//! The action vocabulary every schedule speaks and every engine executes.

use super::multistage::Tier;
use super::online::OnlineControl;
use super::simulate::{LevelBudget, Planned};
use crate::error::Result;
use std::fmt;

/// One instruction of a checkpointing schedule.
///
/// The engine holds one *live* forward state (the state before some step `k`, "state `k`")
/// and a set of numbered *slots* that each hold one saved state. Steps are reversed once each,
/// in the order `n − 1, …, 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Advance the live state from state `from` to state `to` (`to − from` forward steps, nothing
    /// recorded).
    Advance {
        /// Step of the live state before.
        from: u64,
        /// Step of the live state after; `to > from`.
        to: u64,
    },
    /// Keep the live state (state `step`) in `slot`, which must be empty. The live state stays.
    Save {
        /// Step of the state saved.
        step: u64,
        /// Slot it goes into.
        slot: usize,
    },
    /// Make the state held in `slot` (state `step`) the live state. The slot keeps it.
    Restore {
        /// Step of the state restored.
        step: u64,
        /// Slot it comes from.
        slot: usize,
    },
    /// Empty `slot`, which holds state `step` and is needed no more.
    Free {
        /// Step of the state dropped.
        step: u64,
        /// Slot emptied.
        slot: usize,
    },
    /// Run step `step` forward from the live state while recording what its adjoint needs, then
    /// run the adjoint of step `step`. Consumes the live state: a `Restore` must follow before
    /// the next `Advance`, `Save` or `Reverse`.
    Reverse {
        /// The step reversed.
        step: u64,
    },
    /// The schedule is complete: every step reversed, every slot empty.
    End,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Action::Advance { from, to } => write!(f, "advance {from}→{to}"),
            Action::Save { step, slot } => write!(f, "save state {step} into slot {slot}"),
            Action::Restore { step, slot } => write!(f, "restore state {step} from slot {slot}"),
            Action::Free { step, slot } => write!(f, "free slot {slot} (state {step})"),
            Action::Reverse { step } => write!(f, "reverse step {step}"),
            Action::End => f.write_str("end"),
        }
    }
}

/// A checkpointing schedule: an iterator of [`Action`]s that knows its size.
///
/// An engine reads it once, as a stream, looking a bounded number of actions ahead; it need
/// not be `Clone`. A schedule that can say in advance what it will do (its cost, how often
/// each slot is used) does so through [`planned`](Self::planned).
pub trait Schedule: Iterator<Item = Action> {
    /// Number of time steps `n` the schedule reverses.
    fn steps(&self) -> u64;

    /// Number of slots the schedule addresses: every `slot` it names is below this.
    fn slot_capacity(&self) -> usize;

    /// The memory tier of each slot, for a schedule planned for two tiers
    /// ([`TwoTier`](super::TwoTier)). `None` (the default) leaves the placement to the
    /// engine, which keeps the most used slots on the GPU ([`Multistage`](super::Multistage)).
    fn tiers(&self) -> Option<Vec<Tier>> {
        None
    }

    /// The budget in time levels the schedule promises to respect, for a schedule that counts
    /// memory in levels ([`LevelOptimal`](super::LevelOptimal)): the simulator, and the engine
    /// that checks every action, then also check that the levels held never exceed it. `None`
    /// (the default) for a schedule that counts slots. For a schedule that also places its
    /// slots ([`tiers`](Self::tiers)), the budget counts the states held in
    /// [`Tier::DEVICE`](super::Tier::DEVICE) slots only ([`TieredLevels`](super::TieredLevels)):
    /// slower tiers hold whole copies, counted in slots.
    fn level_budget(&self) -> Option<LevelBudget> {
        None
    }

    /// What the whole schedule will do, from its own planner, without consuming it: its
    /// costs (for progress totals and reports) and the uses of each slot (for placing slots on
    /// tiers). `None`, the default, for a schedule that cannot tell ahead (a scripted or
    /// online one): the engine then checks each action as it comes and places the
    /// highest-numbered slots, which Revolve-like schedules use most, on the fastest tier.
    ///
    /// # Errors
    /// [`crate::Error::InvalidSchedule`] when the schedule's own plan is invalid.
    fn planned(&self) -> Result<Option<Planned>> {
        Ok(None)
    }

    /// For an online schedule ([`OnlineSchedule`](super::OnlineSchedule)), which does not know
    /// its number of steps: the control an engine uses to run it to an end found on the way.
    /// `None` (the default) for a schedule that knows its steps.
    fn online(&mut self) -> Option<&mut dyn OnlineControl> {
        None
    }
}

/// A boxed schedule is a schedule, so either kind can be chosen at run time.
impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn steps(&self) -> u64 {
        (**self).steps()
    }

    fn slot_capacity(&self) -> usize {
        (**self).slot_capacity()
    }

    fn tiers(&self) -> Option<Vec<Tier>> {
        (**self).tiers()
    }

    fn level_budget(&self) -> Option<LevelBudget> {
        (**self).level_budget()
    }

    fn planned(&self) -> Result<Option<Planned>> {
        (**self).planned()
    }

    fn online(&mut self) -> Option<&mut dyn OnlineControl> {
        (**self).online()
    }
}

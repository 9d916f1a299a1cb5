//! The action vocabulary every schedule speaks and every engine executes: the bottom of
//! `schedule/`. The [`Schedule`] trait and what its methods return (a slot's [`Tier`], a
//! [`LevelBudget`], a [`Planned`] run, the [`OnlineControl`]) live here, so that every schedule
//! imports its vocabulary and the vocabulary imports no schedule.

use crate::error::Result;

/// [`Action`] and [`Violation`] are defined with the error type, whose
/// [`InvalidSchedule`](crate::Error::InvalidSchedule) names them: `error.rs`, the bottom of the
/// crate, then imports nothing. They are the schedule's words all the same, and read as such.
pub use crate::error::{Action, Violation};

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

/// A memory tier, by its place in the list of tiers from fastest (0) to slowest.
///
/// The GPU engine has [`Tier::DEVICE`] (GPU buffers), [`Tier::HOST`] (host memory: host
/// buffers the GPU copies into, or staging copies) and, with a disk directory,
/// [`Tier::DISK`]; a tier added from outside takes the next number. Serialized as its number.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Tier(pub usize);

impl Tier {
    /// Fast memory: GPU buffers.
    pub const DEVICE: Tier = Tier(0);
    /// Slow memory: the host, reached through staging copies.
    pub const HOST: Tier = Tier(1);
    /// Slower still: files in a directory (the GPU backend's disk tier,
    /// `RevolverOptions::disk`).
    pub const DISK: Tier = Tier(2);
}

/// A memory budget counted in time levels ([`Schedule::level_budget`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelBudget {
    /// Levels in one state: `u_k, …, u_{k−per_state+1}`.
    pub per_state: u64,
    /// The most levels the saved states may hold at once.
    pub levels: u64,
    /// Whether state 0 costs nothing: an engine rebuilds it (an operator that
    /// [starts at rest](crate::engine::Operator::starts_at_rest)) instead of holding it.
    pub initial_free: bool,
    /// Whether the schedule joins states ([`Action::Join`]): the engine then keeps a reversed
    /// state's levels for the join that follows, and refuses a backend whose states are not
    /// level buffers.
    pub joins: bool,
}

/// What a schedule did, as counted by [`simulate`](super::simulate()).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleStats {
    /// Time steps reversed.
    pub steps: u64,
    /// Actions executed, `End` included.
    pub actions: u64,
    /// Forward steps taken by `Advance` actions.
    pub advances: u64,
    /// All forward step evaluations: advances plus one recording step per reverse.
    pub total_forward: u64,
    /// Steps reversed.
    pub reverse_steps: u64,
    /// `Save` actions.
    pub saves: u64,
    /// `Restore` actions.
    pub restores: u64,
    /// `Free` actions.
    pub frees: u64,
    /// `Join` actions: states made live from the live state and one held level.
    #[serde(default)]
    pub joins: u64,
    /// Most slots held at once.
    pub peak_slots: usize,
    /// Most time levels held at once by saved states, a state being
    /// [`LevelBudget::per_state`] consecutive levels and consecutive saved states sharing
    /// theirs: what a store that keeps level buffers holds. Counted only for a schedule that
    /// declares a [`level_budget`](Schedule::level_budget), `0` otherwise (the count costs a
    /// lookup per level of every save, which Revolve-sized simulations need not pay).
    pub peak_levels: u64,
}

impl ScheduleStats {
    /// All forward step evaluations when the adjoint of a step needs only its own state
    /// ([`Operator::adjoint_needs_next`](crate::engine::Operator::adjoint_needs_next) false):
    /// the advances, and the last step, which no schedule advances and which runs once in the
    /// first reverse to record its outputs. `p + 1` for Revolve, against `n + p`.
    pub fn state_adjoint_total_forward(&self) -> u64 {
        self.advances + u64::from(self.reverse_steps > 0)
    }

    /// Forward step evaluations per time step, `total_forward / steps` (`0` for no steps).
    pub fn recompute_factor(&self) -> f64 {
        if self.steps == 0 {
            0.0
        } else {
            self.total_forward as f64 / self.steps as f64
        }
    }
}

/// What a schedule will do, known before it runs: its costs and how often each slot is used.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Planned {
    /// The costs, as [`simulate`](super::simulate()) counts them.
    pub stats: ScheduleStats,
    /// Saves plus restores of each slot: what [`Multistage`](super::Multistage) places by.
    pub slot_uses: Vec<u64>,
}

/// What an engine needs of an online schedule to run to an end it does not know
/// ([`Schedule::online`]): permission for the actions of one more step, and the end.
pub trait OnlineControl {
    /// Lets the schedule hand out the actions of one more step (a save, perhaps, then the
    /// advance); until then it hands out nothing.
    fn grant_step(&mut self);

    /// Ends the forward run at the live state, the last step's input; from now on the
    /// schedule hands out the reversal. Returns the run's steps.
    fn end(&mut self) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports carry these as JSON: a tier is its number, a plan reads back as written.
    #[test]
    fn serde_round_trip() {
        assert_eq!(serde_json::to_string(&Tier::DISK).unwrap(), "2");
        let plan = Planned {
            stats: ScheduleStats {
                steps: 10,
                saves: 3,
                peak_slots: 2,
                ..Default::default()
            },
            slot_uses: vec![4, 2],
        };
        let json = serde_json::to_string(&plan).unwrap();
        assert_eq!(serde_json::from_str::<Planned>(&json).unwrap(), plan);
    }
}

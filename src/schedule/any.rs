//! A schedule chosen at run time.

use super::action::{Action, Schedule};
use super::levels::LevelOptimal;
use super::multistage::Tier;
use super::revolve::Revolve;
use super::simulate::{LevelBudget, Planned};
use super::store_all::StoreAll;
use super::two_level::TwoLevel;
use crate::error::Result;

/// Revolve, store-all, the level-optimal or the cost-optimal two-tier schedule, picked at run
/// time.
#[derive(Clone, Debug)]
pub enum AnySchedule {
    /// [`Revolve`].
    Revolve(Revolve),
    /// [`StoreAll`].
    StoreAll(StoreAll),
    /// [`TwoLevel`], which places its own slots.
    TwoLevel(TwoLevel),
    /// [`LevelOptimal`].
    Levels(LevelOptimal),
}

impl AnySchedule {
    fn inner(&self) -> &dyn Schedule {
        match self {
            AnySchedule::Revolve(s) => s,
            AnySchedule::StoreAll(s) => s,
            AnySchedule::TwoLevel(s) => s,
            AnySchedule::Levels(s) => s,
        }
    }
}

impl Iterator for AnySchedule {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        match self {
            AnySchedule::Revolve(s) => s.next(),
            AnySchedule::StoreAll(s) => s.next(),
            AnySchedule::TwoLevel(s) => s.next(),
            AnySchedule::Levels(s) => s.next(),
        }
    }
}

impl Schedule for AnySchedule {
    fn steps(&self) -> u64 {
        self.inner().steps()
    }

    fn slot_capacity(&self) -> usize {
        self.inner().slot_capacity()
    }

    fn tiers(&self) -> Option<Vec<Tier>> {
        self.inner().tiers()
    }

    fn level_budget(&self) -> Option<LevelBudget> {
        self.inner().level_budget()
    }

    fn planned(&self) -> Result<Option<Planned>> {
        self.inner().planned()
    }
}

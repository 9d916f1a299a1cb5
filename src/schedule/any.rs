//! A schedule chosen at run time.

use super::action::{Action, LevelBudget, OnlineControl, Planned, Schedule, Tier};
use super::cost_optimal::CostOptimal;
use super::levels::LevelOptimal;
use super::online::OnlineSchedule;
use super::revolve::Revolve;
use super::store_all::StoreAll;
use super::tiered_levels::TieredLevels;
use super::two_tier::TwoTier;
use crate::error::Result;

/// Revolve, store-all, the level-optimal or the cost-optimal two-tier schedule, picked at run
/// time.
#[derive(Clone, Debug)]
pub enum AnySchedule {
    /// [`Revolve`].
    Revolve(Revolve),
    /// [`StoreAll`].
    StoreAll(StoreAll),
    /// [`TwoTier`], which places its own slots.
    TwoTier(TwoTier),
    /// [`LevelOptimal`].
    Levels(LevelOptimal),
    /// [`OnlineSchedule`], for a run that ends when a condition holds (boxed: it is the
    /// largest).
    Online(Box<OnlineSchedule>),
    /// [`CostOptimal`] over any number of tiers, which places its own slots.
    CostOptimal(Box<CostOptimal>),
    /// [`TieredLevels`], which places its own slots: GPU levels and host slots.
    TieredLevels(Box<TieredLevels>),
}

/// What a schedule holds, as reports name it (the main job's `summary.json`, the Python
/// package's `info`). Serialize only: its `name` is a `&'static str`, which no document
/// outlives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ScheduleMemory {
    /// `levels`, `revolve`, `revolve-classic`, `store-all`, `two-tier`, `cost-optimal`,
    /// `tiered-levels` or `online`.
    pub name: &'static str,
    /// Its memory in two-level snapshots.
    pub snaps: u64,
    /// Its memory in time levels: what it may hold at once.
    pub levels: u64,
}

impl AnySchedule {
    /// Its name and memory, for a two-level state; `classic` when every reverse recomputes
    /// its step. A Revolve schedule's state-0 snapshot holds nothing when the state is
    /// rebuilt (a shot at rest), so its memory is a snapshot fewer, unless `classic`, which
    /// counts as pyrevolve does.
    pub fn memory(&self, classic: bool) -> ScheduleMemory {
        let slots = self.slot_capacity() as u64;
        let (name, snaps, levels) = match self {
            AnySchedule::Levels(s) => ("levels", s.levels() / 2, s.levels()),
            AnySchedule::Revolve(s) if classic => ("revolve-classic", s.snaps(), 2 * s.snaps()),
            AnySchedule::Revolve(s) => ("revolve", s.snaps() - 1, 2 * (s.snaps() - 1)),
            AnySchedule::StoreAll(_) => ("store-all", slots, slots + 1),
            AnySchedule::TwoTier(_) => ("two-tier", slots, 2 * slots),
            AnySchedule::CostOptimal(_) => ("cost-optimal", slots, 2 * slots),
            AnySchedule::TieredLevels(s) => {
                let tiers = TieredLevels::tiers(s);
                let host = tiers.iter().filter(|t| **t != Tier::DEVICE).count() as u64;
                let levels = s.levels() + 2 * host;
                ("tiered-levels", levels / 2, levels)
            }
            // As Revolve: the slot of state 0 holds nothing for a rebuilt state.
            AnySchedule::Online(s) if classic => ("online", s.snaps(), 2 * s.snaps()),
            AnySchedule::Online(s) => ("online", s.snaps() - 1, 2 * (s.snaps() - 1)),
        };
        ScheduleMemory {
            name,
            snaps,
            levels,
        }
    }

    fn inner(&self) -> &dyn Schedule {
        match self {
            AnySchedule::Revolve(s) => s,
            AnySchedule::StoreAll(s) => s,
            AnySchedule::TwoTier(s) => s,
            AnySchedule::Levels(s) => s,
            AnySchedule::Online(s) => s,
            AnySchedule::CostOptimal(s) => s,
            AnySchedule::TieredLevels(s) => s,
        }
    }
}

impl Iterator for AnySchedule {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        match self {
            AnySchedule::Revolve(s) => s.next(),
            AnySchedule::StoreAll(s) => s.next(),
            AnySchedule::TwoTier(s) => s.next(),
            AnySchedule::Levels(s) => s.next(),
            AnySchedule::Online(s) => s.next(),
            AnySchedule::CostOptimal(s) => s.next(),
            AnySchedule::TieredLevels(s) => s.next(),
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

    fn online(&mut self) -> Option<&mut dyn OnlineControl> {
        match self {
            AnySchedule::Online(s) => Some(s.as_mut()),
            _ => None,
        }
    }
}

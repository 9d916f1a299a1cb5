//! A schedule chosen at run time that stays `Clone` (which the engine needs to simulate it).

use super::action::{Action, Schedule};
use super::revolve::Revolve;
use super::store_all::StoreAll;

/// Revolve or store-all, picked at run time.
#[derive(Clone, Debug)]
pub enum AnySchedule {
    /// [`Revolve`].
    Revolve(Revolve),
    /// [`StoreAll`].
    StoreAll(StoreAll),
}

impl Iterator for AnySchedule {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        match self {
            AnySchedule::Revolve(s) => s.next(),
            AnySchedule::StoreAll(s) => s.next(),
        }
    }
}

impl Schedule for AnySchedule {
    fn steps(&self) -> u64 {
        match self {
            AnySchedule::Revolve(s) => s.steps(),
            AnySchedule::StoreAll(s) => s.steps(),
        }
    }

    fn slot_capacity(&self) -> usize {
        match self {
            AnySchedule::Revolve(s) => s.slot_capacity(),
            AnySchedule::StoreAll(s) => s.slot_capacity(),
        }
    }
}

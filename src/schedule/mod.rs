//! Checkpointing schedules: the action vocabulary, Revolve, store-all, planning arithmetic and
//! a simulator. Nothing here knows about GPUs.
//!
//! A schedule is an iterator of [`Action`]s; an engine executes them against real states, and
//! [`simulate`] executes them symbolically (which step's state is where) to check them and
//! count their cost.
//!
//! SCHEDULE_TABLE_PLACEHOLDER

mod action;
mod plan;
mod revolve;
mod simulate;
mod store_all;

pub use action::{Action, Schedule};
pub use plan::{
    PlanInfo, max_snapshots_in_budget, max_steps, min_advances, min_snapshots_for_factor, plan,
    repetition_number,
};
pub use revolve::Revolve;
pub use simulate::{ScheduleStats, Violation, simulate, simulate_actions};
pub use store_all::StoreAll;

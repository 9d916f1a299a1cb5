//! Checkpointing schedules: the action vocabulary, Revolve, store-all, the level-optimal
//! schedule for state-only adjoints, planning arithmetic and a simulator. Nothing here knows
//! about GPUs.
//!
//! A schedule is an iterator of [`Action`]s; an engine executes them against real states, and
//! [`simulate`] executes them symbolically (which step's state is where) to check them and
//! count their cost.
//!
//! ## The actions of a small case
//!
//! Revolve for `n = 10` steps and `s = 3` snapshots: 15 advances, 25 forward steps in all (`n +
//! p`), at most 3 slots held. "live" is the step of the live state after the action (– when a
//! reverse has consumed it); "slots" what each slot holds (· empty). The first sweep places
//! checkpoints at 0, 4 and 7; each later sweep restarts from the newest checkpoint.
//!
//! | #  | action                      | live | slots  |
//! |----|-----------------------------|------|--------|
//! |  0 | save state 0 into slot 0    |    0 | 0 · ·  |
//! |  1 | advance 0→4                 |    4 | 0 · ·  |
//! |  2 | save state 4 into slot 1    |    4 | 0 4 ·  |
//! |  3 | advance 4→7                 |    7 | 0 4 ·  |
//! |  4 | save state 7 into slot 2    |    7 | 0 4 7  |
//! |  5 | advance 7→9                 |    9 | 0 4 7  |
//! |  6 | reverse step 9              |    – | 0 4 7  |
//! |  7 | restore state 7 from slot 2 |    7 | 0 4 7  |
//! |  8 | advance 7→8                 |    8 | 0 4 7  |
//! |  9 | reverse step 8              |    – | 0 4 7  |
//! | 10 | restore state 7 from slot 2 |    7 | 0 4 7  |
//! | 11 | free slot 2 (state 7)       |    7 | 0 4 ·  |
//! | 12 | reverse step 7              |    – | 0 4 ·  |
//! | 13 | restore state 4 from slot 1 |    4 | 0 4 ·  |
//! | 14 | advance 4→5                 |    5 | 0 4 ·  |
//! | 15 | save state 5 into slot 2    |    5 | 0 4 5  |
//! | 16 | advance 5→6                 |    6 | 0 4 5  |
//! | 17 | reverse step 6              |    – | 0 4 5  |
//! | 18 | restore state 5 from slot 2 |    5 | 0 4 5  |
//! | 19 | free slot 2 (state 5)       |    5 | 0 4 ·  |
//! | 20 | reverse step 5              |    – | 0 4 ·  |
//! | 21 | restore state 4 from slot 1 |    4 | 0 4 ·  |
//! | 22 | free slot 1 (state 4)       |    4 | 0 · ·  |
//! | 23 | reverse step 4              |    – | 0 · ·  |
//! | 24 | restore state 0 from slot 0 |    0 | 0 · ·  |
//! | 25 | advance 0→1                 |    1 | 0 · ·  |
//! | 26 | save state 1 into slot 1    |    1 | 0 1 ·  |
//! | 27 | advance 1→2                 |    2 | 0 1 ·  |
//! | 28 | save state 2 into slot 2    |    2 | 0 1 2  |
//! | 29 | advance 2→3                 |    3 | 0 1 2  |
//! | 30 | reverse step 3              |    – | 0 1 2  |
//! | 31 | restore state 2 from slot 2 |    2 | 0 1 2  |
//! | 32 | free slot 2 (state 2)       |    2 | 0 1 ·  |
//! | 33 | reverse step 2              |    – | 0 1 ·  |
//! | 34 | restore state 1 from slot 1 |    1 | 0 1 ·  |
//! | 35 | free slot 1 (state 1)       |    1 | 0 · ·  |
//! | 36 | reverse step 1              |    – | 0 · ·  |
//! | 37 | restore state 0 from slot 0 |    0 | 0 · ·  |
//! | 38 | free slot 0 (state 0)       |    0 | · · ·  |
//! | 39 | reverse step 0              |    – | · · ·  |
//! | 40 | end                         |    – | · · ·  |
//!
//! The same sequence, checked:
//!
//! ```
//! use gpurevolve::schedule::Revolve;
//! let actions: Vec<String> = Revolve::new(10, 3)?.map(|a| a.to_string()).collect();
//! assert_eq!(actions.len(), 41);
//! assert_eq!(actions[..7], ["save state 0 into slot 0", "advance 0→4", "save state 4 into slot 1",
//!     "advance 4→7", "save state 7 into slot 2", "advance 7→9", "reverse step 9"]);
//! assert_eq!(actions[37..], ["restore state 0 from slot 0", "free slot 0 (state 0)",
//!     "reverse step 0", "end"]);
//! # Ok::<(), gpurevolve::Error>(())
//! ```
//!
//! `cargo run --release --example schedule -- --steps 60 --snaps 4 --svg revolve.svg` draws
//! the sweep of a larger case.

mod action;
mod any;
mod cost_optimal;
mod joins;
mod levels;
mod multistage;
mod online;
mod plan;
mod revolve;
mod simulate;
mod store_all;
mod tiered_levels;
mod two_tier;
mod walk;

pub use action::{
    Action, LevelBudget, OnlineControl, Planned, Schedule, ScheduleStats, Tier, Violation,
};
pub use any::{AnySchedule, ScheduleMemory};
pub use cost_optimal::{CostOptimal, TierCost, TieredCosts};
pub use levels::{LevelOptimal, MAX_PLAN_CELLS, MAX_PLAN_EVALUATIONS};
pub use multistage::{Multistage, TierTraffic};
pub use online::{Online, OnlineReversal, OnlineRun, OnlineSchedule};
pub use plan::{
    PlanInfo, max_snapshots_in_budget, max_steps, min_advances, min_snapshots_for_factor, plan,
    repetition_number,
};
pub use revolve::Revolve;
pub(crate) use simulate::Simulator;
pub use simulate::{planned, simulate, simulate_actions};
pub use store_all::StoreAll;
pub use tiered_levels::TieredLevels;
pub use two_tier::TwoTier;

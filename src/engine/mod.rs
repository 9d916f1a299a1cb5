//! The engine: runs any [`schedule`](crate::schedule) against an [`Operator`], holding the
//! checkpoints in GPU buffers. Knows schedules and the GPU layer; knows no physics.

mod calibrate;
mod operator;
mod revolver;
mod spills;

pub use calibrate::calibrate;
pub use operator::Operator;
pub use revolver::{Progress, Revolver, RevolverOptions, RunStats};

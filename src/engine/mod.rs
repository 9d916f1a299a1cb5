//! The engine: runs any [`schedule`](crate::schedule) against a time stepper, holding its
//! checkpoints in a [`Store`]. Knows schedules (and, with the `gpu` feature, the GPU layer);
//! knows no physics.
//!
//! [`Revolver`] is the action interpreter, written once against the [`Backend`] trait. Two
//! backends come with the crate:
//! - [`GpuBackend`] (feature `gpu`): an [`Operator`]'s states as GPU buffers, checkpoints on
//!   the GPU and beyond a budget in the tiers below it, each a `CheckpointTier` (host memory,
//!   the disk, any added); made by `Revolver::new`.
//! - [`CpuBackend`]: a [`CpuOperator`]'s states as host values, checkpoints in any [`Store`]
//!   ([`MemoryStore`]); made by [`Revolver::on_cpu`].

#[cfg(feature = "gpu")]
mod calibrate;
#[cfg(feature = "gpu")]
pub(crate) mod checksum;
mod cpu;
#[cfg(feature = "gpu")]
mod disk;
#[cfg(feature = "gpu")]
mod gpu_backend;
#[cfg(feature = "gpu")]
mod host;
#[cfg(feature = "gpu")]
mod operator;
mod revolver;
#[cfg(feature = "gpu")]
mod scratch;
#[cfg(feature = "gpu")]
mod spills;
mod stats;
mod store;
#[cfg(feature = "gpu")]
mod tier;

#[cfg(feature = "gpu")]
pub use calibrate::{
    calibrate, calibrate_disk, calibrate_disk_stored, calibrate_stored, measure_costs,
};
pub use cpu::{CpuBackend, CpuOperator, MemoryStore};
#[cfg(feature = "gpu")]
pub use gpu_backend::{GpuBackend, GpuState};
#[cfg(feature = "gpu")]
pub use operator::Operator;
pub use revolver::{
    DEFAULT_STEPS_PER_SUBMIT, ForwardEnd, Progress, ProgressReply, Revolver, RevolverOptions,
};
#[cfg(feature = "gpu")]
pub use scratch::remove_scratch_directories;
pub use stats::{RunStats, TierStats};
pub use store::{Backend, Store};
#[cfg(feature = "gpu")]
pub use tier::{CheckpointTier, TierIo};

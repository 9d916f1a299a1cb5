//! The two traits between the action interpreter ([`Revolver`](super::Revolver)) and the
//! data: [`Store`], where checkpointed states live, and [`Backend`], a store that can also step
//! its states forward and backward.
//!
//! The interpreter reads the schedule, checks every action, counts, and calls these; it never
//! sees what a state is. The GPU backend ([`GpuBackend`](super::GpuBackend), with the `gpu`
//! feature) keeps states as GPU level buffers and spills beyond a budget to host memory;
//! [`CpuBackend`](super::CpuBackend) runs a [`CpuOperator`](super::CpuOperator) over any
//! [`Store`], such as [`MemoryStore`](super::MemoryStore) for states that are host values.
//!
//! **Adding a tier** below the GPU (a disk, a peer GPU, a remote store) is one
//! `CheckpointTier` implementation (feature `gpu`), added with `Revolver::add_tier` or
//! registered where the GPU backend is made (as the disk tier is); the placement names it by
//! its [`Tier`] number, and a cost-optimal plan takes its costs. A store for another kind of
//! state is one `Store` implementation that numbers its tiers fastest first.

use super::stats::RunStats;
use crate::error::Result;
use crate::schedule::{Action, Tier};

/// Holds checkpointed states in numbered slots, each slot in one memory [`Tier`].
///
/// The interpreter guarantees the schedule's rules before it calls: `save` gets an empty slot,
/// `restore` and `free` name the state the slot holds.
pub trait Store {
    /// A forward state as the engine passes it around: GPU buffers shared by reference count,
    /// a vector, any value. Cloning it should be cheap or at least correct.
    type State: Clone;

    /// The tier of each slot, fastest first (`Tier(0)`).
    fn tiers(&self) -> &[Tier];

    /// Keeps `state` (state `step`) in `slot`. The caller goes on using `state`.
    ///
    /// # Errors
    /// Whatever the store reports (out of memory, a failed write).
    fn save(&mut self, slot: usize, step: u64, state: &Self::State) -> Result<()>;

    /// The state that `slot` holds (state `step`), as a live state. The slot keeps it.
    ///
    /// # Errors
    /// Whatever the store reports.
    fn restore(&mut self, slot: usize, step: u64) -> Result<Self::State>;

    /// Drops the state `slot` holds (state `step`).
    ///
    /// # Errors
    /// Whatever the store reports.
    fn free(&mut self, slot: usize, step: u64) -> Result<()>;

    /// The actions that follow the one about to run (a bounded window of the schedule): a
    /// store with slow tiers may start bringing back the next checkpoint it will restore. The
    /// default does nothing.
    ///
    /// # Errors
    /// Whatever the store reports.
    fn prefetch(&mut self, upcoming: &[Action]) -> Result<()> {
        let _ = upcoming;
        Ok(())
    }

    /// Bytes held now in each tier, fastest first.
    fn held_bytes(&self) -> Vec<u64>;

    /// Bytes copied so far to take and restore checkpoints, in any direction. A store that
    /// keeps the buffers a step wrote copies nothing. The default says 0.
    fn bytes_copied(&self) -> u64 {
        0
    }
}

/// A [`Store`] that also runs the time stepper: what [`Revolver`](super::Revolver) drives.
pub trait Backend: Store {
    /// State 0, the initial state.
    ///
    /// # Errors
    /// Whatever the backend reports.
    fn initial(&mut self) -> Result<Self::State>;

    /// Forward step `k` from `state` (state `k`): state `k + 1`. `record` is true the first
    /// time step `k` runs; outputs (traces, a misfit) are recorded then and skipped on
    /// recomputation.
    ///
    /// # Errors
    /// Whatever the backend reports.
    fn forward(&mut self, state: &Self::State, k: u64, record: bool) -> Result<Self::State>;

    /// Reverses step `k` from `state` (state `k`): runs the step forward once more when the
    /// adjoint needs its output or `record` asks for the step's outputs, then the adjoint of
    /// step `k`. Returns the forward steps it ran (0 or 1).
    ///
    /// # Errors
    /// Whatever the backend reports.
    fn reverse(&mut self, state: Self::State, k: u64, record: bool) -> Result<u64>;

    /// State `step` from the live state `step + 1` (`live`, whose older levels are state
    /// `step`'s newer ones) and state `step`'s oldest level, `u_{step−q+1}`, which the state
    /// `held` in `slot` holds ([`Action::Join`]). The default refuses: only a backend whose states are level
    /// buffers can join ([`joins_levels`](Self::joins_levels)).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) from the default; whatever
    /// the store reports.
    fn join(
        &mut self,
        live: &Self::State,
        slot: usize,
        held: u64,
        step: u64,
    ) -> Result<Self::State> {
        let _ = (live, slot, held, step);
        Err(crate::Error::InvalidArgument {
            name: "schedule",
            reason: "it joins states (Action::Join), which this backend cannot: plan without LevelOptimal::with_joins"
                .into(),
        })
    }

    /// Whether [`join`](Self::join) works: the states are level buffers. The default says no.
    fn joins_levels(&self) -> bool {
        false
    }

    /// Whether a reverse recomputes its step (Revolve's cost model) or needs state `k` alone.
    /// The default says it recomputes.
    fn adjoint_needs_next(&self) -> bool {
        true
    }

    /// Whether the backend rebuilds state 0 instead of holding it, so a schedule may leave it
    /// out of its memory ([`LevelBudget::initial_free`](crate::schedule::LevelBudget)). The
    /// default says it holds it.
    fn rebuilds_initial(&self) -> bool {
        false
    }

    /// Called after every forward or reverse step: a point where a backend may submit batched
    /// work. The default does nothing.
    ///
    /// # Errors
    /// Whatever the backend reports.
    fn step_done(&mut self) -> Result<()> {
        Ok(())
    }

    /// Called at the end of each sweep: everything issued must be complete on return. The
    /// default does nothing.
    ///
    /// # Errors
    /// Whatever the backend reports.
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    /// Adds what only the backend counts (transfers between tiers, device memory, time
    /// waiting on copies) to `stats`. The default adds nothing.
    fn account(&self, stats: &mut RunStats) {
        let _ = stats;
    }
}

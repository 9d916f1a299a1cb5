//! [`Operator`]: what a GPU time stepper hands the checkpointing engine.

use crate::error::Result;
use crate::gpu::Gpu;

/// A GPU time stepper whose adjoint the engine drives through a checkpointing schedule.
///
/// This is the door for other GPU codes: implement it around your own WGSL kernels and the
/// [`Revolver`](super::Revolver) reverses your time loop with any schedule, holding its
/// checkpoints in GPU memory. `examples/custom_operator/` is a complete one (a 2D diffusion
/// with its own WGSL, its adjoint checked by a dot-product test and central differences,
/// spilling to host memory), written only against the public API.
///
/// **The state.** The forward state before step `k` ("state `k`") is the last
/// [`levels`](Self::levels) time levels, newest first: `[u_k, u_{k−1}]` for a leapfrog scheme
/// (two levels), `[u_k]` for a one-step scheme. Each level is one GPU buffer of
/// [`level_bytes`](Self::level_bytes) bytes, created by the engine with
/// [`STATE_USAGE`](crate::gpu::STATE_USAGE) (`STORAGE | COPY_SRC | COPY_DST`).
///
/// **The contract that makes checkpoints free.** A forward step reads the state and writes
/// the new level `u_{k+1}` into a *distinct* buffer, and never writes a state buffer. The next
/// state is then `[u_{k+1}, u_k, …]`. Because no level is ever modified after it is written, a
/// checkpoint is kept by holding on to its buffers: nothing is copied, and consecutive
/// checkpoints share levels.
///
/// **The adjoint** lives inside the operator (adjoint fields, gradient accumulators): the
/// engine calls [`encode_adjoint`](Self::encode_adjoint) once per step, for `k = n − 1` down to
/// 0, each time with state `k` and, unless the operator says it does not need it
/// ([`adjoint_needs_next`](Self::adjoint_needs_next)), the freshly recomputed `u_{k+1}`.
pub trait Operator {
    /// Time levels that make up one forward state (at least 1).
    fn levels(&self) -> usize;

    /// Bytes of one time level.
    fn level_bytes(&self) -> u64;

    /// Number of time steps `n`.
    fn steps(&self) -> u64;

    /// Fills the initial state (`levels` zeroed buffers, newest first). The default leaves it
    /// at rest (all zeros).
    ///
    /// # Errors
    /// Whatever the operator reports.
    fn initialize(&mut self, gpu: &Gpu, state: &[&wgpu::Buffer]) -> Result<()> {
        let _ = (gpu, state);
        Ok(())
    }

    /// Encodes forward step `k`: reads `state` (newest first), writes `next`. `record` is true
    /// the first time step `k` runs in a sweep; the operator may record outputs then (traces,
    /// say) and skip them on recomputation.
    ///
    /// # Errors
    /// Whatever the operator reports.
    fn encode_forward(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        k: u64,
        state: &[&wgpu::Buffer],
        next: &wgpu::Buffer,
        record: bool,
    ) -> Result<()>;

    /// Whether state 0 is all zeros in every level and [`initialize`](Self::initialize) does
    /// nothing (an acoustic shot starts at rest). Then no checkpoint holds state 0: a save of
    /// it keeps nothing and a restore clears fresh levels, so its memory is free for the
    /// schedule ([`LevelOptimal::from_rest`](crate::schedule::LevelOptimal::from_rest), or
    /// Revolve with one snapshot more). Default `false`.
    fn starts_at_rest(&self) -> bool {
        false
    }

    /// Equal, independent parts of a level (the shots of a batch, one after another): a
    /// lossy [checkpoint format](crate::compression::CheckpointFormat) whose blocks share a
    /// scale never lets a block span two, so each part is stored as it would be alone.
    /// Default 1.
    fn level_parts(&self) -> usize {
        1
    }

    /// Whether the adjoint of step `k` needs the step's output `u_{k+1}` (Revolve's model, the
    /// default) or state `k` alone. When it needs state `k` alone, a reverse runs no forward
    /// step unless the step's outputs were never recorded (the last step's, in the first
    /// sweep): a full run then costs `p + 1` forward steps instead of `n + p`.
    fn adjoint_needs_next(&self) -> bool {
        true
    }

    /// Encodes the adjoint of step `k`, given state `k` and the output `next = u_{k+1}` of
    /// step `k`, just recomputed: `Some` whenever the operator's adjoint needs it, and also
    /// when the step had to run to record its outputs; `None` otherwise.
    ///
    /// # Errors
    /// Whatever the operator reports.
    fn encode_adjoint(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        k: u64,
        state: &[&wgpu::Buffer],
        next: Option<&wgpu::Buffer>,
    ) -> Result<()>;
}

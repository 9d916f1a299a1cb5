//! What a run did: [`RunStats`], counted by the interpreter ([`Revolver`](super::Revolver))
//! and by its backend ([`Backend::account`](super::Backend::account)). Its own file, below
//! both, so that the store traits do not import the interpreter.

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunStats {
    /// Forward step evaluations, recording steps included: advances plus one recording step
    /// per reverse (`n + p` for Revolve), or, with an adjoint that needs state `k` alone,
    /// advances plus the steps whose outputs were still unrecorded (`p + 1` for Revolve).
    pub forward_steps: u64,
    /// Forward steps taken by advances.
    pub advances: u64,
    /// Adjoint steps.
    pub reverse_steps: u64,
    /// Checkpoints taken.
    pub saves: u64,
    /// Checkpoints restored.
    pub restores: u64,
    /// Checkpoints dropped.
    pub frees: u64,
    /// Bytes copied to take or restore checkpoints ([`Store::bytes_copied`](super::Store::bytes_copied)).
    /// With the GPU backend only copies between tiers count
    /// ([`spilled_bytes`](Self::spilled_bytes) + [`restored_bytes`](Self::restored_bytes)):
    /// a checkpoint on the GPU keeps the buffers a step wrote. A [`MemoryStore`](super::MemoryStore)
    /// copies a state at every save and restore.
    pub bytes_copied: u64,
    /// Most checkpoints held at once.
    pub peak_slots: usize,
    /// Most bytes held by checkpoints in the fastest tier at once (on the GPU: distinct level
    /// buffers, since consecutive checkpoints share levels).
    pub peak_checkpoint_bytes: u64,
    /// Bytes of all level buffers the GPU backend allocated (checkpoints, live state, spare).
    pub device_bytes: u64,
    /// Wall time of the forward sweep (up to the first reverse), seconds.
    pub forward_seconds: f64,
    /// Wall time of the reverse sweep, seconds.
    pub reverse_seconds: f64,
    /// Checkpoints saved to a slower tier (host memory).
    pub host_saves: u64,
    /// Checkpoints restored from a slower tier.
    pub host_restores: u64,
    /// Bytes copied GPU → host.
    pub spilled_bytes: u64,
    /// Bytes copied host → GPU.
    pub restored_bytes: u64,
    /// Device slots moved to host because the GPU ran out of memory.
    pub demotions: u64,
    /// Most bytes held at once by checkpoints in the slower tiers together.
    pub peak_host_bytes: u64,
    /// Seconds the host spent on copies to and from host memory: encoding them, reading
    /// staging buffers, uploads, and waiting (below).
    pub transfer_seconds: f64,
    /// Of which seconds blocked until the GPU had run a spill's copies: the transfer time
    /// that overlapping did not hide.
    pub transfer_wait_seconds: f64,
    /// Restores from host memory whose upload the lookahead had issued already.
    pub prefetched_restores: u64,
    /// Checkpoints written to the disk tier.
    pub disk_saves: u64,
    /// Checkpoints read back from the disk tier.
    pub disk_restores: u64,
    /// Of which read while the lookahead saw their restore coming.
    pub disk_reads_ahead: u64,
    /// Bytes written to checkpoint files (headers included).
    pub disk_bytes_written: u64,
    /// Bytes read back from checkpoint files.
    pub disk_bytes_read: u64,
    /// Seconds the disk thread spent writing (in the background).
    pub disk_write_seconds: f64,
    /// Seconds the disk thread spent reading.
    pub disk_read_seconds: f64,
}

/// What one memory tier did: its own counts, reported by the tier
/// (`CheckpointTier::stats`, with the `gpu` feature) or by the backend for the GPU itself.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TierStats {
    /// The tier's name (`device`, `host`, `disk`).
    pub name: String,
    /// Checkpoints saved there.
    pub saves: u64,
    /// Checkpoints restored from there.
    pub restores: u64,
    /// Of which brought back ahead of their restore, from what the lookahead saw coming.
    pub reads_ahead: u64,
    /// Checkpoints moved there because the GPU ran out of memory (not counted as saves).
    pub demotions: u64,
    /// Bytes copied off the GPU to this tier.
    pub bytes_out: u64,
    /// Bytes copied back onto the GPU from this tier.
    pub bytes_in: u64,
    /// Bytes the tier's own storage wrote beyond those copies (files, headers included).
    pub bytes_written: u64,
    /// Bytes the tier's own storage read back.
    pub bytes_read: u64,
    /// Most bytes held there at once.
    pub peak_bytes: u64,
    /// Seconds spent writing its storage (in the background, for the disk).
    pub write_seconds: f64,
    /// Seconds spent reading its storage.
    pub read_seconds: f64,
    /// Seconds the run blocked waiting for this tier's copies or reads: what overlapping did
    /// not hide.
    pub wait_seconds: f64,
}

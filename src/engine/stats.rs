//! What a run did: [`RunStats`], counted by the interpreter ([`Revolver`](super::Revolver))
//! and by its backend ([`Backend::account`](super::Backend::account)). Its own file, below
//! both, so that the store traits do not import the interpreter.

use crate::schedule::Tier;

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// States joined from the live state and one held level ([`Action::Join`](crate::schedule::Action::Join)).
    #[serde(default)]
    pub joins: u64,
    /// Time levels a lossy [`CheckpointFormat`](crate::compression::CheckpointFormat)
    /// encoded at saves (one kernel each; a level two checkpoints share is encoded once); 0
    /// for exact checkpoints. Counted by the GPU backend.
    #[serde(default)]
    pub levels_encoded: u64,
    /// Time levels a lossy format decoded at restores and joins (one kernel each); 0 for
    /// exact checkpoints.
    #[serde(default)]
    pub levels_decoded: u64,
    /// Restored levels a lossy format did not decode: a level buffer still held their
    /// decoding (consecutive checkpoints share levels, so a state restored just after the one
    /// above it finds its newer level decoded already). The same bits as a decoding.
    #[serde(default)]
    pub decodings_reused: u64,
    /// Bytes copied to take or restore checkpoints ([`Store::bytes_copied`](super::Store::bytes_copied)).
    /// With the GPU backend only copies between tiers count (each tier's
    /// [`bytes_out`](TierStats::bytes_out) and [`bytes_in`](TierStats::bytes_in)): a
    /// checkpoint on the GPU keeps the buffers a step wrote. A [`MemoryStore`](super::MemoryStore)
    /// copies a state at every save and restore.
    pub bytes_copied: u64,
    /// Most checkpoints held at once.
    pub peak_slots: usize,
    /// Most bytes held by checkpoints in the fastest tier at once (on the GPU: distinct level
    /// buffers, since consecutive checkpoints share levels).
    pub peak_checkpoint_bytes: u64,
    /// Most bytes held at once by checkpoints in the slower tiers together.
    pub peak_slower_bytes: u64,
    /// Bytes of all level buffers the GPU backend allocated (checkpoints, live state, spare).
    pub device_bytes: u64,
    /// Wall time of the forward sweep (up to the first reverse), seconds.
    pub forward_seconds: f64,
    /// Wall time of the reverse sweep, seconds.
    pub reverse_seconds: f64,
    /// Seconds the host spent in the slower tiers' saves, restores and reads ahead: encoding
    /// copies, reading staging buffers, uploads, and waiting (each tier's
    /// [`wait_seconds`](TierStats::wait_seconds)).
    pub transfer_seconds: f64,
    /// Shots the operator stepped together in this run, when the caller batches shots (an
    /// [`AcousticOperator::batch`](crate::acoustic::AcousticOperator::batch)): every count
    /// above is then the batch's, shared by its shots. 0 or 1 for one shot; the engine never
    /// sets it.
    #[serde(default)]
    pub batch: u64,
    /// Compute dispatches the operator encoded in this run, when the caller counts them (an
    /// acoustic operator's [`dispatches`](crate::acoustic::GpuAcoustic::dispatches)); 0 when
    /// not counted. The engine never sets it.
    #[serde(default)]
    pub dispatches: u64,
    /// Each tier's own counts, fastest first (indexed by [`Tier`]): with the GPU backend the
    /// device, host memory, the disk when there is one, then any tier added. A backend that
    /// counts nothing per tier still gets one entry per tier with its
    /// [`peak_bytes`](TierStats::peak_bytes).
    pub tiers: Vec<TierStats>,
}

/// A tier that did nothing: what [`RunStats::tier`] answers for a tier the run did not have.
static NO_TIER: TierStats = TierStats {
    name: String::new(),
    saves: 0,
    restores: 0,
    reads_ahead: 0,
    demotions: 0,
    bytes_out: 0,
    bytes_in: 0,
    bytes_written: 0,
    bytes_read: 0,
    peak_bytes: 0,
    write_seconds: 0.0,
    read_seconds: 0.0,
    wait_seconds: 0.0,
};

impl RunStats {
    /// The counts of `tier`; all zero when the run had no such tier.
    pub fn tier(&self, tier: Tier) -> &TierStats {
        self.tiers.get(tier.0).unwrap_or(&NO_TIER)
    }

    /// The counts of the tier named `name` (`host`, `disk`); all zero when there is none.
    pub fn named(&self, name: &str) -> &TierStats {
        self.tiers
            .iter()
            .find(|t| t.name == name)
            .unwrap_or(&NO_TIER)
    }

    /// The sum of `f` over the tiers.
    pub fn total(&self, f: impl Fn(&TierStats) -> u64) -> u64 {
        self.tiers.iter().map(f).sum()
    }
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

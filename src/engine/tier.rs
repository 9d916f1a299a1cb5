//! [`CheckpointTier`]: a memory tier below the GPU, as data. The GPU backend
//! ([`GpuBackend`](super::GpuBackend)) keeps checkpoints that stay on the GPU itself (the
//! buffers a step wrote, [`Tier::DEVICE`]) and hands every other slot to one of an ordered list
//! of tiers, fastest first: `Tier(1)` is host memory, `Tier(2)` the disk when
//! `RevolverOptions::disk` names one, then any tier added with
//! [`Revolver::add_tier`](super::Revolver::add_tier).
//!
//! A tier sees the GPU only through [`TierIo`]: the open command encoder (copies encoded there
//! run in command order with the steps, so no later step can overwrite a level before it is
//! copied), a submission (before a queue write into level buffers that encoded work may still
//! read), and spare level buffers. The backend takes the level buffers a restore fills, so a
//! GPU out of memory can move device checkpoints to `Tier(1)` first; a tier never allocates
//! device memory with that side effect.

use std::rc::Rc;

use super::stats::TierStats;
use crate::compression::CheckpointFormat;
use crate::error::{Error, Result};
use crate::gpu::{Gpu, STATE_USAGE};
use crate::schedule::{Action, Tier};

/// A memory tier below the GPU: holds checkpoints in numbered slots, reports its own counts.
///
/// The backend guarantees the schedule's rules before it calls: `save` gets a slot this tier
/// does not hold, `restore` and `free` name the state the slot holds. Levels are passed newest
/// first, every one `level_bytes` long.
pub trait CheckpointTier {
    /// A short name for reports (`"host"`, `"disk"`).
    fn name(&self) -> &str;

    /// The placement puts `slots` slots in this tier: called before the run, so a tier can
    /// make its files now and report a bad directory before any step runs. The default does
    /// nothing.
    ///
    /// # Errors
    /// Whatever the tier reports.
    fn placed(&mut self, slots: usize) -> Result<()> {
        let _ = slots;
        Ok(())
    }

    /// Keeps state `step`, whose levels are `levels`, in `slot`. The levels are reused by
    /// later steps: copy them in command order (into [`TierIo::encoder`]), or after
    /// [`TierIo::submit`] and a wait. `demoted`: the GPU ran out of memory and the backend
    /// moves a device checkpoint here, which is no save of the schedule's (count it as a
    /// demotion).
    ///
    /// # Errors
    /// Whatever the tier reports (out of memory, a failed write).
    fn save(
        &mut self,
        io: &mut TierIo<'_, '_>,
        slot: usize,
        step: u64,
        levels: &[Rc<wgpu::Buffer>],
        demoted: bool,
    ) -> Result<()>;

    /// The levels of state `step` in `slot` when the tier brought them back to the GPU ahead
    /// of this restore (from [`prefetch`](Self::prefetch)): the restore, counted as one. `None`
    /// (the default) when it did not; then [`restore`](Self::restore) follows.
    fn restored_ahead(&mut self, slot: usize, step: u64) -> Option<Vec<Rc<wgpu::Buffer>>> {
        let _ = (slot, step);
        None
    }

    /// Writes state `step`, held in `slot`, into the level buffers `into` (taken for it by the
    /// backend). The slot keeps it.
    ///
    /// # Errors
    /// Whatever the tier reports; [`Error::CheckpointCorrupted`] for bytes that changed since
    /// their save.
    fn restore(
        &mut self,
        io: &mut TierIo<'_, '_>,
        slot: usize,
        step: u64,
        into: &[Rc<wgpu::Buffer>],
    ) -> Result<()>;

    /// Drops what `slot` holds (state `step`), and anything brought back ahead for it.
    fn free(&mut self, slot: usize, step: u64);

    /// The actions after the one about to run: a slow tier may start bringing back the next
    /// checkpoint it will restore ([`TierIo::placed_here`] says which slots are its). The
    /// default does nothing.
    ///
    /// # Errors
    /// Whatever the tier reports.
    fn prefetch(&mut self, io: &mut TierIo<'_, '_>, upcoming: &[Action]) -> Result<()> {
        let _ = (io, upcoming);
        Ok(())
    }

    /// Everything encoded so far went to the GPU in submission `index`: a tier that copies out
    /// through mapped buffers may map them now. Called after every submission but the tier's
    /// own ([`TierIo::submit`] answers those), once the call that made it returns. The
    /// default does nothing.
    fn submitted(&mut self, index: &wgpu::SubmissionIndex) {
        let _ = index;
    }

    /// Called after the backend submits and polls the GPU: takes whatever work finished
    /// (copies arrived, files written). The default does nothing.
    ///
    /// # Errors
    /// A failed copy or write: the run stops rather than go on without a checkpoint.
    fn collect(&mut self, io: &mut TierIo<'_, '_>) -> Result<()> {
        let _ = io;
        Ok(())
    }

    /// Bytes of checkpoints held now.
    fn held_bytes(&self) -> u64;

    /// What the tier did so far. [`TierStats::peak_bytes`] is the interpreter's to fill.
    fn stats(&self) -> TierStats;
}

/// The GPU side that the backend and its tiers share: the GPU, the open encoder, the level
/// buffers. Its own type, so a tier can borrow it while the backend holds the tier list.
pub(crate) struct Device<'g> {
    pub(crate) gpu: &'g Gpu,
    encoder: Option<wgpu::CommandEncoder>,
    /// Steps encoded since the last submission.
    pub(crate) encoded: usize,
    /// The first and the last work encoded since the last submission, `(phase, step)`: what
    /// a validation error at the submission is reported against.
    batch: Option<[(&'static str, u64); 2]>,
    /// Level buffers; one is reused once nobody holds it.
    pool: Vec<Rc<wgpu::Buffer>>,
    level_bytes: u64,
    /// Encoded level buffers of a lossy checkpoint format, `stored_bytes` each; reused as
    /// `pool`'s. Empty, and `stored_bytes == level_bytes`, for exact checkpoints.
    stored_pool: Vec<Rc<wgpu::Buffer>>,
    stored_bytes: u64,
    lossy: bool,
    /// Bytes of all level buffers allocated.
    pub(crate) device_bytes: u64,
    /// A submission made by a tier that the other tiers have not been told of.
    fresh: Option<wgpu::SubmissionIndex>,
    /// The latest submission: it carries everything encoded before it.
    last: Option<wgpu::SubmissionIndex>,
}

impl<'g> Device<'g> {
    /// The device side of levels of `level_bytes`, checkpoints stored in `format`, a stored
    /// level `stored_bytes` long.
    pub(crate) fn new(
        gpu: &'g Gpu,
        level_bytes: u64,
        stored_bytes: u64,
        format: CheckpointFormat,
    ) -> Self {
        Self {
            gpu,
            encoder: None,
            encoded: 0,
            batch: None,
            pool: Vec::new(),
            level_bytes,
            stored_pool: Vec::new(),
            stored_bytes,
            lossy: !format.is_exact(),
            device_bytes: 0,
            fresh: None,
            last: None,
        }
    }

    /// The open encoder, opened if need be.
    pub(crate) fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        let gpu = self.gpu;
        self.encoder.get_or_insert_with(|| {
            gpu.device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("revolver"),
                })
        })
    }

    /// A level buffer nobody holds, or a new one.
    pub(crate) fn free_or_new_level(&mut self) -> Result<Rc<wgpu::Buffer>> {
        if let Some(free) = self.pool.iter().find(|b| Rc::strong_count(b) == 1) {
            return Ok(Rc::clone(free));
        }
        let bytes = self.level_bytes;
        let buffer = Rc::new(self.gpu.create_buffer("time level", bytes, STATE_USAGE)?);
        self.pool.push(Rc::clone(&buffer));
        self.device_bytes += bytes;
        Ok(buffer)
    }

    /// A buffer for one stored level (a checkpoint's, as its format stores it) nobody holds,
    /// or a new one: a level buffer for exact checkpoints.
    pub(crate) fn free_or_new_stored(&mut self) -> Result<Rc<wgpu::Buffer>> {
        if !self.lossy {
            return self.free_or_new_level();
        }
        if let Some(free) = self.stored_pool.iter().find(|b| Rc::strong_count(b) == 1) {
            return Ok(Rc::clone(free));
        }
        let bytes = self.stored_bytes;
        let buffer = Rc::new(self.gpu.create_buffer("stored level", bytes, STATE_USAGE)?);
        self.stored_pool.push(Rc::clone(&buffer));
        self.device_bytes += bytes;
        Ok(buffer)
    }

    /// Gives the device back the buffers of both pools that nobody holds (for a lossy
    /// format, level and stored buffers are of two sizes and neither pool can use the
    /// other's); returns how many.
    pub(crate) fn release_unheld(&mut self) -> usize {
        let mut released = 0;
        let mut freed = 0;
        for pool in [&mut self.pool, &mut self.stored_pool] {
            let before = pool.len();
            pool.retain(|b| {
                let held = Rc::strong_count(b) > 1;
                if !held {
                    freed += b.size();
                }
                held
            });
            released += before - pool.len();
        }
        self.device_bytes = self.device_bytes.saturating_sub(freed);
        released
    }

    /// Bytes of one stored level.
    pub(crate) fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    /// Notes work encoded into the current batch, for error reports.
    pub(crate) fn note_batch(&mut self, phase: &'static str, k: u64) {
        let first = self.batch.map_or((phase, k), |[first, _]| first);
        self.batch = Some([first, (phase, k)]);
    }

    /// The submission a tier made that the others have not been told of.
    pub(crate) fn take_fresh(&mut self) -> Option<wgpu::SubmissionIndex> {
        self.fresh.take()
    }

    /// Submits what is encoded, if anything; returns its submission.
    ///
    /// Encoding errors (an operator's bind group that does not match its pipeline, say) reach
    /// wgpu only when the encoder finishes; a validation scope turns them into
    /// [`Error::Gpu`] here instead of a log line and silently wrong results.
    pub(crate) fn submit(&mut self) -> Result<Option<wgpu::SubmissionIndex>> {
        self.encoded = 0;
        let Some(encoder) = self.encoder.take() else {
            return Ok(None);
        };
        let scope = self
            .gpu
            .device()
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let commands = encoder.finish();
        let index = self.gpu.submit([commands]);
        let batch = self.batch.take();
        if let Some(e) = pollster::block_on(scope.pop()) {
            let context = match batch {
                Some([(p0, k0), (p1, k1)]) if (p0, k0) == (p1, k1) => {
                    format!("the {p0} of step {k0}")
                }
                Some([(p0, k0), (p1, k1)]) => format!(
                    "the steps from the {p0} of step {k0} to the {p1} of step {k1} (one \
                     batch; check_state_contract runs one step a batch)"
                ),
                None => "running the schedule".into(),
            };
            return Err(Error::Gpu {
                context,
                detail: e.to_string(),
            });
        }
        self.last = Some(index.clone());
        Ok(Some(index))
    }
}

/// What a [`CheckpointTier`] gets of the GPU for one call.
pub struct TierIo<'a, 'g> {
    device: &'a mut Device<'g>,
    placement: &'a [Tier],
    tier: Tier,
}

impl<'a, 'g> TierIo<'a, 'g> {
    pub(crate) fn new(device: &'a mut Device<'g>, placement: &'a [Tier], tier: Tier) -> Self {
        Self {
            device,
            placement,
            tier,
        }
    }

    /// The GPU.
    pub fn gpu(&self) -> &'g Gpu {
        self.device.gpu
    }

    /// This tier's number.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Whether the placement puts `slot` in this tier now.
    pub fn placed_here(&self, slot: usize) -> bool {
        self.placement.get(slot) == Some(&self.tier)
    }

    /// Bytes of one time level as a checkpoint stores it: the operator's level, or its
    /// encoding in a lossy [`CheckpointFormat`] (what a tier holds and moves).
    pub fn level_bytes(&self) -> u64 {
        self.device.stored_bytes()
    }

    /// The open encoder: copies encoded here run after the steps encoded before them and
    /// before the ones encoded after.
    pub fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.device.encoder()
    }

    /// Submits what is encoded, and returns the submission that carries everything encoded
    /// so far (an earlier one when nothing new was; `None` before the first). The backend
    /// tells the other tiers ([`CheckpointTier::submitted`]) once this call returns; this tier
    /// learns it here, and must not take the notice for copies it encodes afterwards.
    ///
    /// # Errors
    /// [`Error::Gpu`] when the encoded work fails validation.
    pub fn submit(&mut self) -> Result<Option<wgpu::SubmissionIndex>> {
        if let Some(index) = self.device.submit()? {
            self.device.fresh = Some(index);
        }
        Ok(self.device.last.clone())
    }

    /// A stored level buffer ([`level_bytes`](Self::level_bytes)) nobody holds (a new one if
    /// need be), or `None` when the GPU is out of
    /// memory: for bringing a checkpoint back ahead of its restore, which must never move
    /// another out.
    ///
    /// # Errors
    /// A failed allocation other than out of memory.
    pub fn spare_level(&mut self) -> Result<Option<Rc<wgpu::Buffer>>> {
        match self.device.free_or_new_stored() {
            Ok(level) => Ok(Some(level)),
            Err(Error::OutOfMemory { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes `bytes` into the level buffers `into` with queue writes, after submitting what
    /// is encoded ([`submit`](Self::submit)): a queue write runs before the *next*
    /// submission, and encoded work may still read these buffers (a state just dropped).
    /// Returns the bytes written.
    ///
    /// # Errors
    /// As [`submit`](Self::submit) and [`Gpu::write`].
    pub fn write_levels(&mut self, into: &[Rc<wgpu::Buffer>], bytes: &[Vec<u8>]) -> Result<u64> {
        self.submit()?;
        let mut written = 0;
        for (level, bytes) in into.iter().zip(bytes) {
            self.device.gpu.write(level, bytes)?;
            written += bytes.len() as u64;
        }
        Ok(written)
    }
}

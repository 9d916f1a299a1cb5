//! Checkpoints on their way to host memory: copies into reused `MAP_READ` staging buffers,
//! read by the host once the GPU has run them.
//!
//! A spill's copies are encoded into the same command stream as the steps, right after the
//! step that wrote the state, so nothing later can overwrite the levels before they are
//! copied, and the engine does not have to drain the queue to take a checkpoint. The staging
//! buffers are mapped after the submission that carries the copies and read when their map
//! callbacks have run; the GPU never waits for the host. Each spill in flight holds `levels`
//! staging buffers of host-visible memory, so their number is bounded: at the bound the host
//! waits for the oldest spill's submission only, while later work keeps the GPU busy.
//!
//! A spill's bytes arrive in host memory as a [`HostCopy`] with their
//! [checksum](super::checksum), taken as each piece is copied out of the staging buffer (the
//! piece still in cache), and verified before the bytes go back to the GPU.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::checksum::{self, Checksum};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// A checkpoint's levels in host memory, and their checksum taken when they arrived there.
pub(crate) struct HostCopy {
    pub levels: Vec<Vec<u8>>,
    pub checksum: u64,
}

impl HostCopy {
    /// The levels, once their checksum is found unchanged; state `step` in host slot `slot`.
    ///
    /// # Errors
    /// [`Error::CheckpointCorrupted`] (its path: `host memory, slot N`) when the bytes changed
    /// since they arrived.
    pub(crate) fn verified(&self, step: u64, slot: usize) -> Result<&[Vec<u8>]> {
        let sum = checksum::of_levels(&self.levels);
        if sum != self.checksum {
            return Err(Error::CheckpointCorrupted {
                step,
                path: PathBuf::from(format!("host memory, slot {slot}")),
                detail: format!(
                    "checksum {sum:016x}, {:016x} when it arrived from the GPU",
                    self.checksum
                ),
            });
        }
        Ok(&self.levels)
    }
}

/// Bytes copied out of a mapped staging buffer and hashed at a time: small enough that the
/// hash reads them from cache, right after the copy wrote them.
const PIECE: usize = 1 << 16;

/// Names one spill from [`Spills::start`] until its bytes are taken.
pub(crate) type SpillId = u64;

/// The map callbacks' tally: levels mapped, and levels whose map failed.
#[derive(Default)]
struct Tally {
    mapped: AtomicUsize,
    failed: AtomicUsize,
}

struct Spill {
    id: SpillId,
    staging: Vec<wgpu::Buffer>,
    /// The submission that carries the copies; `None` while they are still being encoded.
    submission: Option<wgpu::SubmissionIndex>,
    tally: Arc<Tally>,
}

/// One level's map callback: counts the level mapped or failed, and failed when wgpu drops
/// the callback without running it, so that a spill always finishes and no loop waiting for
/// it can spin for ever.
struct MapReport(Option<Arc<Tally>>);

impl MapReport {
    fn report(mut self, mapped: bool) {
        if let Some(tally) = self.0.take() {
            let counter = if mapped { &tally.mapped } else { &tally.failed };
            counter.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Drop for MapReport {
    fn drop(&mut self) {
        if let Some(tally) = self.0.take() {
            tally.failed.fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Spill {
    fn is_done(&self) -> bool {
        let t = &self.tally;
        t.mapped.load(Ordering::Acquire) + t.failed.load(Ordering::Acquire) == self.staging.len()
    }
}

/// The spills in flight, oldest first, and the staging buffers free for the next ones.
pub(crate) struct Spills {
    free: Vec<wgpu::Buffer>,
    in_flight: VecDeque<Spill>,
    next_id: SpillId,
    limit: usize,
}

impl Spills {
    /// At most `limit` spills (at least one) in flight at once.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            free: Vec::new(),
            in_flight: VecDeque::new(),
            next_id: 0,
            limit: limit.max(1),
        }
    }

    /// Whether a new spill must wait for the oldest one.
    pub(crate) fn is_full(&self) -> bool {
        self.in_flight.len() >= self.limit
    }

    /// The oldest spill in flight.
    pub(crate) fn oldest(&self) -> Option<SpillId> {
        self.in_flight.front().map(|s| s.id)
    }

    /// Whether some spill's copies are still in the engine's open encoder.
    pub(crate) fn has_unsubmitted(&self) -> bool {
        // Spills are submitted in order, so unsubmitted ones are at the back.
        self.in_flight
            .back()
            .is_some_and(|s| s.submission.is_none())
    }

    /// The submission to wait for before spill `id` can finish; `None` when it is not in
    /// flight or not submitted yet.
    pub(crate) fn submission_of(&self, id: SpillId) -> Option<wgpu::SubmissionIndex> {
        self.in_flight
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.submission.clone())
    }

    /// Blocks until spill `id`'s copies have run: if some spill is still in the open encoder,
    /// `submit` submits it (and returns the submission that carries everything encoded so
    /// far), then the wait on `gpu` is for that spill's submission, not the whole queue.
    /// Returns the seconds spent waiting for the GPU. The finished spill is then ready for
    /// [`take_finished`](Self::take_finished).
    ///
    /// # Errors
    /// As `submit` and [`Gpu::wait_for`].
    pub(crate) fn wait_for(
        &mut self,
        gpu: &Gpu,
        id: SpillId,
        submit: impl FnOnce() -> Result<Option<wgpu::SubmissionIndex>>,
    ) -> Result<f64> {
        if self.has_unsubmitted()
            && let Some(index) = submit()?
        {
            self.submitted(&index);
        }
        let Some(index) = self.submission_of(id) else {
            return Ok(0.0);
        };
        let start = std::time::Instant::now();
        gpu.wait_for(index)?;
        Ok(start.elapsed().as_secs_f64())
    }

    /// Encodes copies of `levels` into staging buffers (reused, or made here).
    ///
    /// # Errors
    /// As [`Gpu::create_buffer`] for a new staging buffer.
    pub(crate) fn start(
        &mut self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        levels: &[Rc<wgpu::Buffer>],
    ) -> Result<SpillId> {
        let mut staging = Vec::with_capacity(levels.len());
        for level in levels {
            let buffer = match self.free.iter().position(|b| b.size() == level.size()) {
                Some(i) => self.free.swap_remove(i),
                // MAP_READ: the host maps it to read the checkpoint; COPY_DST: the level is
                // copied into it. wgpu allows nothing else alongside MAP_READ.
                None => gpu.create_buffer(
                    "spill staging",
                    level.size(),
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                )?,
            };
            encoder.copy_buffer_to_buffer(level, 0, &buffer, 0, level.size());
            staging.push(buffer);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.in_flight.push_back(Spill {
            id,
            staging,
            submission: None,
            tally: Arc::default(),
        });
        Ok(id)
    }

    /// Records that `index` carries every spill encoded so far, and asks for their maps (a
    /// buffer may only be mapped once the commands that write it are submitted).
    pub(crate) fn submitted(&mut self, index: &wgpu::SubmissionIndex) {
        for spill in self.in_flight.iter_mut().rev() {
            if spill.submission.is_some() {
                break;
            }
            spill.submission = Some(index.clone());
            for buffer in &spill.staging {
                // No wait here: the callback runs in a later poll of the device, which the
                // engine bounds ([`Gpu::wait_for`] with its deadline).
                let report = MapReport(Some(Arc::clone(&spill.tally)));
                buffer.map_async(wgpu::MapMode::Read, .., move |result| {
                    report.report(result.is_ok());
                });
            }
        }
    }

    /// Takes the bytes of every finished spill, oldest first, with their checksum, and frees
    /// their staging buffers. Runs no callbacks itself: poll the device first.
    ///
    /// # Errors
    /// [`Error::Map`] when a staging buffer could not be mapped (the device was lost, or wgpu
    /// dropped the map request): the checkpoint's bytes are gone.
    pub(crate) fn take_finished(&mut self) -> Result<Vec<(SpillId, HostCopy)>> {
        let mut out = Vec::new();
        while self.in_flight.front().is_some_and(Spill::is_done) {
            let Some(spill) = self.in_flight.pop_front() else {
                break;
            };
            let failed = spill.tally.failed.load(Ordering::Acquire);
            if failed > 0 {
                return Err(Error::Map {
                    label: "spill staging".into(),
                    detail: format!(
                        "{failed} of {} levels of a checkpoint could not be mapped",
                        spill.staging.len()
                    ),
                });
            }
            let mut sum = Checksum::new();
            let levels = spill
                .staging
                .iter()
                .map(|buffer| {
                    let view = buffer.get_mapped_range(..).map_err(|e| Error::Map {
                        label: "spill staging".into(),
                        detail: e.to_string(),
                    })?;
                    // The checksum of the bytes as held, each piece hashed right after it
                    // was copied.
                    let mut bytes = Vec::with_capacity(view.len());
                    for piece in view.chunks(PIECE) {
                        let at = bytes.len();
                        bytes.extend_from_slice(piece);
                        sum.update(&bytes[at..]);
                    }
                    drop(view);
                    buffer.unmap();
                    Ok(bytes)
                })
                .collect::<Result<Vec<_>>>()?;
            let checksum = checksum::finish_levels(sum, &levels);
            self.free.extend(spill.staging);
            out.push((spill.id, HostCopy { levels, checksum }));
        }
        Ok(out)
    }
}

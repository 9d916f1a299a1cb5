//! The host tier of [`GpuBackend`]: checkpoints in host memory, and how they get there and
//! back.
//!
//! Where the device has host buffers ([`Gpu::has_host_buffers`](crate::gpu::Gpu::has_host_buffers)),
//! a host checkpoint is a set of GPU buffers in host memory: saving and restoring are copies
//! encoded in command order like the steps, so nothing waits and the host copies nothing.
//! Measured on an H100 (BENCHMARKS.md), the host's own copies through staging ran at the
//! host's memcpy speed (12 GB/s there) and cost a spilled run three times the all-on-GPU time.
//!
//! Otherwise (or with `RevolverOptions::host_buffers` off) the bytes go through staging
//! buffers into host `Vec`s, and, from the actions the interpreter reads ahead, the next one
//! is uploaded before it is needed. Ordering is the whole difficulty there, so here it is in
//! one place:
//! - a spill's copies go into the open encoder, after the step that wrote the state and before
//!   any later step that reuses its buffers;
//! - an upload is a queue write, which wgpu runs before the *next* submission: whatever is
//!   encoded must be submitted first, since it may still read the buffers the upload reuses
//!   (a state just dropped, or a checkpoint whose spill was just encoded).
//!
//! Bytes held in host `Vec`s carry the checksum taken when they arrived
//! ([`HostCopy`]); it is verified before every upload, so damage in host memory between a
//! save and its restore is [`Error::CheckpointCorrupted`], never a wrong gradient. Host
//! buffers are GPU allocations the host never touches: the GPU copies into and out of them
//! in command order, with no host-side copy to checksum.

use std::rc::Rc;
use std::time::Instant;

use super::{GpuBackend, GpuState, Held, HostBytes};
use crate::engine::operator::Operator;
use crate::engine::spills::{HostCopy, SpillId};
use crate::error::{Error, Result};
use crate::schedule::{Action, Tier};

/// A host checkpoint uploaded ahead of its restore.
pub(super) struct Prefetched {
    slot: usize,
    step: u64,
    state: GpuState,
}

impl<O: Operator> GpuBackend<'_, O> {
    /// Saves `state` into host slot `slot`: copies into host buffers, encoded in command
    /// order; or, without them, a spill whose bytes arrive when the GPU has run its copies
    /// (unless transfers do not overlap: then the host waits here).
    pub(super) fn save_to_host(&mut self, slot: usize, state: &GpuState) -> Result<()> {
        self.in_transfer(|r| {
            let bytes = r.copy_to_host(state)?;
            let pending = match bytes {
                HostBytes::Pending(id) => Some(id),
                _ => None,
            };
            r.slots[slot] = Some(Held::Host {
                step: state.step,
                bytes,
            });
            r.stats.host_saves += 1;
            if let Some(id) = pending
                && !r.options.overlap_transfers
            {
                r.await_spill(id)?;
            }
            Ok(())
        })
    }

    /// Encodes the copies of `state` to host memory: into host buffers where the device has
    /// them, else through staging buffers. Host buffers that cannot be had (host-visible
    /// memory is short) fall back to staging for this checkpoint: it is never lost.
    fn copy_to_host(&mut self, state: &GpuState) -> Result<HostBytes> {
        if self.host_buffers {
            match self.copy_to_host_buffers(state) {
                Ok(buffers) => return Ok(HostBytes::Buffers(buffers)),
                Err(Error::OutOfMemory { requested, .. }) => log::warn!(
                    "no host buffer of {requested} bytes for state {}: copying it out through staging instead",
                    state.step
                ),
                Err(e) => return Err(e),
            }
        }
        Ok(HostBytes::Pending(self.spill(state)?))
    }

    /// Copies of `state`'s levels into host buffers, encoded after the work that wrote them.
    fn copy_to_host_buffers(&mut self, state: &GpuState) -> Result<Vec<Rc<wgpu::Buffer>>> {
        let buffers = state
            .levels
            .iter()
            .map(|_| self.free_or_new_host_buffer())
            .collect::<Result<Vec<_>>>()?;
        let gpu = self.gpu;
        let encoder = self.encoder.get_or_insert_with(|| super::new_encoder(gpu));
        for (level, buffer) in state.levels.iter().zip(&buffers) {
            encoder.copy_buffer_to_buffer(level, 0, buffer, 0, level.size());
            self.stats.spilled_bytes += level.size();
        }
        Ok(buffers)
    }

    /// A host buffer no checkpoint holds, or a new one. A freed one may still be read by
    /// encoded copies: later copies into it come after them in command order.
    fn free_or_new_host_buffer(&mut self) -> Result<Rc<wgpu::Buffer>> {
        if let Some(free) = self.host_pool.iter().find(|b| Rc::strong_count(b) == 1) {
            return Ok(Rc::clone(free));
        }
        let bytes = self.operator.level_bytes();
        let buffer = Rc::new(self.gpu.host_buffer("host checkpoint level", bytes)?);
        self.host_pool.push(Rc::clone(&buffer));
        Ok(buffer)
    }

    /// A host-buffer checkpoint back in level buffers: copies encoded now, in order after
    /// whatever last used those level buffers.
    fn copy_from_host_buffers(
        &mut self,
        step: u64,
        buffers: &[Rc<wgpu::Buffer>],
    ) -> Result<GpuState> {
        let levels = buffers
            .iter()
            .map(|_| self.take_level())
            .collect::<Result<Vec<_>>>()?;
        let gpu = self.gpu;
        let encoder = self.encoder.get_or_insert_with(|| super::new_encoder(gpu));
        for (buffer, level) in buffers.iter().zip(&levels) {
            encoder.copy_buffer_to_buffer(buffer, 0, level, 0, level.size());
            self.stats.restored_bytes += level.size();
        }
        Ok(GpuState { step, levels })
    }

    /// The state in host slot `slot`, back in level buffers: the prefetched copy when the
    /// lookahead brought it back already, an upload now otherwise.
    pub(super) fn restore_from_host(&mut self, slot: usize, step: u64) -> Result<GpuState> {
        self.stats.host_restores += 1;
        if let Some(early) = self
            .prefetched
            .take_if(|p| p.slot == slot && p.step == step)
        {
            self.stats.prefetched_restores += 1;
            return Ok(early.state);
        }
        if let Some(Some(Held::Host {
            bytes: HostBytes::Buffers(buffers),
            ..
        })) = self.slots.get(slot)
        {
            let buffers = buffers.clone();
            return self.in_transfer(|r| r.copy_from_host_buffers(step, &buffers));
        }
        self.in_transfer(|r| {
            let bytes = r.host_bytes(slot)?;
            r.upload(step, bytes.verified(step, slot)?, true)?
                .ok_or_else(|| Error::Gpu {
                    context: "restoring a checkpoint from host memory".into(),
                    detail: "no level buffer for it".into(),
                })
        })
    }

    /// Moves the least used device checkpoint to host memory; false when none is left. Its
    /// buffers are free for reuse at once: the copies come first in command order.
    pub(super) fn demote_one(&mut self) -> Result<bool> {
        let victim = (0..self.slots.len())
            .filter(|&i| matches!(self.slots[i], Some(Held::Device(_))))
            .min_by_key(|&i| (self.uses[i], i));
        let Some(slot) = victim else { return Ok(false) };
        let Some(Held::Device(state)) = self.slots[slot].take() else {
            return Ok(false);
        };
        log::warn!(
            "GPU out of memory: checkpoint slot {slot} (state {}) moves to host memory",
            state.step
        );
        self.in_transfer(|r| {
            let bytes = r.copy_to_host(&state)?;
            r.slots[slot] = Some(Held::Host {
                step: state.step,
                bytes,
            });
            Ok(())
        })?;
        self.tiers[slot] = Tier::HOST;
        self.stats.demotions += 1;
        Ok(true)
    }

    /// Drops a prefetched copy of `slot` (the slot was freed).
    pub(super) fn forget_prefetch(&mut self, slot: usize) {
        if self.prefetched.as_ref().is_some_and(|p| p.slot == slot) {
            self.prefetched = None;
        }
    }

    /// Uploads the next host checkpoint the schedule restores, once its bytes are in host
    /// memory. At most one is held (`levels` buffers), and only in buffers that are free or
    /// can be made without moving a device checkpoint out.
    pub(super) fn prefetch_next(&mut self, upcoming: &[Action]) -> Result<()> {
        // Nothing to look for while no slot is in host memory (the usual all-on-GPU run): the
        // window is not scanned at every action for a restore that cannot be there.
        if !self.options.overlap_transfers
            || self.prefetched.is_some()
            || !self.tiers.contains(&Tier::HOST)
        {
            return Ok(());
        }
        // The first restore ahead from a slot that is in host memory now.
        let next = upcoming.iter().find_map(|action| match *action {
            Action::Restore { step, slot } if self.tiers.get(slot) == Some(&Tier::HOST) => {
                Some((slot, step))
            }
            _ => None,
        });
        let Some((slot, step)) = next else {
            return Ok(());
        };
        let bytes = match self.slots.get(slot) {
            Some(Some(Held::Host {
                step: held,
                bytes: HostBytes::Ready(bytes),
            })) if *held == step => Rc::clone(bytes),
            _ => return Ok(()),
        };
        let levels = bytes.verified(step, slot)?;
        if let Some(state) = self.in_transfer(|r| r.upload(step, levels, false))? {
            self.prefetched = Some(Prefetched { slot, step, state });
        }
        Ok(())
    }

    /// Test hook: the host copy (in a host `Vec`, through staging) that arrives after the
    /// next `copies` ones has one bit flipped once its checksum is taken, as damage in host
    /// memory would; its restore then fails with [`Error::CheckpointCorrupted`]. Copies in
    /// host buffers and on their way to the disk tier do not count. `None` disarms it.
    #[doc(hidden)]
    pub fn damage_host_copy_after(&self, copies: Option<u64>) {
        self.spills.damage_after(copies);
    }

    /// Moves the bytes of finished spills into their slots. A spill whose slot was freed
    /// meanwhile is dropped.
    pub(super) fn collect_spills(&mut self) -> Result<()> {
        for (id, copy) in self.spills.take_finished()? {
            // A spill for a disk slot goes on to its file (which has its own checksum).
            let HostCopy { levels, checksum } = copy;
            let Some(mut levels) = self.spill_to_file(id, levels)? else {
                continue;
            };
            if self.spills.take_damage()
                && let Some(level) = levels.iter_mut().find(|l| !l.is_empty())
            {
                let middle = level.len() / 2;
                level[middle] ^= 0x01;
            }
            let ready = Rc::new(HostCopy { levels, checksum });
            for held in self.slots.iter_mut().flatten() {
                if let Held::Host { bytes, .. } = held
                    && matches!(bytes, HostBytes::Pending(pending) if *pending == id)
                {
                    *bytes = HostBytes::Ready(Rc::clone(&ready));
                    break;
                }
            }
        }
        self.collect_disk()
    }

    /// Encodes the copies of `state` to staging for the disk tier.
    pub(super) fn spill_for_disk(&mut self, state: &GpuState) -> Result<SpillId> {
        self.in_transfer(|r| r.spill(state))
    }

    /// Waits until spill `id` has reached host memory (and, for a disk slot, its file's
    /// thread).
    pub(super) fn await_spill_timed(&mut self, id: SpillId) -> Result<()> {
        self.in_transfer(|r| r.await_spill(id))
    }

    /// Uploads levels read back from the disk into level buffers.
    pub(super) fn upload_levels(&mut self, step: u64, levels: &[Vec<u8>]) -> Result<GpuState> {
        self.in_transfer(|r| {
            r.upload(step, levels, true)?.ok_or_else(|| Error::Gpu {
                context: "restoring a checkpoint from the disk tier".into(),
                detail: "no level buffer for it".into(),
            })
        })
    }

    /// Encodes the copies of a state to host memory, first waiting for the oldest spill when
    /// too many are in flight.
    fn spill(&mut self, state: &GpuState) -> Result<SpillId> {
        while self.spills.is_full() {
            let Some(oldest) = self.spills.oldest() else {
                break;
            };
            self.await_spill(oldest)?;
        }
        let gpu = self.gpu;
        let encoder = self.encoder.get_or_insert_with(|| super::new_encoder(gpu));
        let id = self.spills.start(gpu, encoder, &state.levels)?;
        self.stats.spilled_bytes += state.levels.iter().map(|l| l.size()).sum::<u64>();
        Ok(id)
    }

    /// Blocks until spill `id` is in host memory: until its submission is done, not the
    /// whole queue.
    fn await_spill(&mut self, id: SpillId) -> Result<()> {
        if self.spills.has_unsubmitted() {
            self.flush(false)?;
        }
        if let Some(index) = self.spills.submission_of(id) {
            let start = Instant::now();
            self.gpu.wait_for(index)?;
            self.stats.transfer_wait_seconds += start.elapsed().as_secs_f64();
        }
        self.collect_spills()
    }

    /// The bytes of host slot `slot`, waiting for its spill if they are still on the way.
    fn host_bytes(&mut self, slot: usize) -> Result<Rc<HostCopy>> {
        if let Some(Some(Held::Host {
            bytes: HostBytes::Pending(id),
            ..
        })) = self.slots.get(slot)
        {
            self.await_spill(*id)?;
        }
        match self.slots.get(slot) {
            Some(Some(Held::Host {
                bytes: HostBytes::Ready(bytes),
                ..
            })) => Ok(Rc::clone(bytes)),
            _ => Err(Error::Gpu {
                context: format!("restoring checkpoint slot {slot} from host memory"),
                detail: "its copy from the GPU never completed".into(),
            }),
        }
    }

    /// Uploads a host checkpoint into level buffers. With `demote`, device checkpoints move to
    /// host memory if the GPU is out of memory; without, out of memory gives `None`.
    fn upload(&mut self, step: u64, bytes: &[Vec<u8>], demote: bool) -> Result<Option<GpuState>> {
        let mut levels = Vec::with_capacity(bytes.len());
        for _ in bytes {
            let level = if demote {
                self.take_level()?
            } else {
                match self.free_or_new_level() {
                    Ok(level) => level,
                    Err(Error::OutOfMemory { .. }) => return Ok(None),
                    Err(e) => return Err(e),
                }
            };
            levels.push(level);
        }
        // Submit first: encoded commands may still use these buffers (see the module docs).
        self.flush(false)?;
        for (level, bytes) in levels.iter().zip(bytes) {
            self.gpu.write(level, bytes)?;
            self.stats.restored_bytes += bytes.len() as u64;
        }
        Ok(Some(GpuState { step, levels }))
    }

    /// Runs `f`, adding its wall time to `transfer_seconds` unless an outer call already does.
    fn in_transfer<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let outer = self.transfer_started.is_none();
        if outer {
            self.transfer_started = Some(Instant::now());
        }
        let result = f(self);
        if outer && let Some(start) = self.transfer_started.take() {
            self.stats.transfer_seconds += start.elapsed().as_secs_f64();
        }
        result
    }
}

#[cfg(all(test, feature = "acoustic"))]
mod tests {
    use crate::Error;
    use crate::acoustic::{AcousticOperator, CpuTwin, Geometry, Model, Problem, TimeAxis};
    use crate::engine::{Revolver, RevolverOptions};
    use crate::gpu::Gpu;
    use crate::schedule::{Revolve, Tier};

    /// The GPU, or `None` (the test skipped, loudly) without an adapter; under CI a missing
    /// adapter fails, as in the integration tests.
    fn gpu() -> Option<Gpu> {
        match Gpu::new() {
            Ok(gpu) => Some(gpu),
            Err(e)
                if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false") =>
            {
                panic!("CI is set and no GPU adapter is usable: {e}")
            }
            Err(e) => {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "\n!!!!! SKIPPING GPU TEST: {e}\n");
                None
            }
        }
    }

    fn problem() -> (Problem, Vec<f64>) {
        let model =
            Model::from_fn(&[24, 20], 10.0, 4, |x, _, z| 2000.0 + 0.5 * z + 0.2 * x).unwrap();
        let geometry = Geometry::new(
            &model,
            vec![vec![120.0, 40.0]],
            vec![vec![40.0, 30.0], vec![200.0, 30.0]],
            10.0,
        )
        .unwrap();
        let time = TimeAxis::new(&model, 4, 17, None).unwrap();
        let problem = Problem::new(model, geometry, time, 4).unwrap();
        let wavelet: Vec<f64> = problem.source_series().iter().map(|w| 0.7 * w).collect();
        let observed = CpuTwin::new(&problem)
            .forward(&wavelet, false)
            .unwrap()
            .traces;
        (problem, observed)
    }

    /// Host copies through staging, overlapped (restored ahead by the lookahead) and not:
    /// undamaged, the gradient is the all-on-GPU run's, bit for bit; with one bit flipped in
    /// a host copy (the test hook), its restore fails as corrupted, naming the host slot.
    #[test]
    fn a_damaged_host_copy_is_caught_before_it_goes_back_to_the_gpu() {
        let Some(gpu) = gpu() else { return };
        let (problem, observed) = problem();
        let steps = 16;
        let run = |tier: Tier, overlap: bool, damage: Option<u64>| {
            let operator = AcousticOperator::new(&gpu, &problem, &observed)?;
            let options = RevolverOptions {
                host_buffers: false,
                overlap_transfers: overlap,
                ..RevolverOptions::default()
            };
            let revolver = Revolver::new(&gpu, operator, Revolve::new(steps, 3)?, options)?;
            let slots = revolver.tiers().len();
            let mut revolver = revolver.with_tiers(vec![tier; slots])?;
            revolver.backend().damage_host_copy_after(damage);
            let stats = revolver.apply_reverse()?;
            let gradient = revolver.operator().finish()?.gradient;
            Ok::<_, Error>((
                stats,
                gradient.iter().map(|g| g.to_bits()).collect::<Vec<_>>(),
            ))
        };
        let (_, reference) = run(Tier::DEVICE, true, None).unwrap();
        for overlap in [true, false] {
            let (stats, bits) = run(Tier::HOST, overlap, None).unwrap();
            assert!(stats.host_restores > 0, "{stats:?}");
            assert_eq!(bits, reference, "overlap {overlap}");
            for damage in [0, 1] {
                let err = run(Tier::HOST, overlap, Some(damage)).unwrap_err();
                let Error::CheckpointCorrupted { path, .. } = &err else {
                    panic!("overlap {overlap}, copy {damage}: {err}");
                };
                assert!(
                    path.to_string_lossy().starts_with("host memory, slot "),
                    "{err}"
                );
                assert!(err.to_string().contains("in host memory, slot"), "{err}");
            }
        }
    }
}

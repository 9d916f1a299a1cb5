//! The host tier: checkpoints in host memory, and how they get there and back. `Tier(1)` of
//! the GPU backend, and where device checkpoints go when the GPU runs out of memory.
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
//!   encoded must be submitted first ([`TierIo::write_levels`]), since it may still read the
//!   buffers the upload reuses (a state just dropped, or a checkpoint whose spill was just
//!   encoded).
//!
//! Bytes held in host `Vec`s carry the checksum taken when they arrived
//! ([`HostCopy`]); it is verified before every upload, so damage in host memory between a
//! save and its restore is [`Error::CheckpointCorrupted`], never a wrong gradient. Host
//! buffers are GPU allocations the host never touches: the GPU copies into and out of them
//! in command order, with no host-side copy to checksum.

use std::cell::Cell;
use std::rc::Rc;

use super::spills::{HostCopy, SpillId, Spills};
use super::stats::TierStats;
use super::tier::{CheckpointTier, TierIo};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::schedule::Action;

/// A host checkpoint: in host buffers the GPU copies to and from, or as bytes copied out
/// through staging, still on their way or here (shared with an upload).
enum HostBytes {
    Buffers(Vec<Rc<wgpu::Buffer>>),
    Pending(SpillId),
    Ready(Rc<HostCopy>),
}

struct Held {
    step: u64,
    bytes: HostBytes,
    /// Bytes of the state.
    size: u64,
}

/// A host checkpoint uploaded ahead of its restore.
struct Prefetched {
    slot: usize,
    step: u64,
    levels: Vec<Rc<wgpu::Buffer>>,
}

/// Test hook shared with the backend: host copies to let pass before one is damaged;
/// `u64::MAX` when disarmed.
pub(crate) type DamageHook = Rc<Cell<u64>>;

/// The host tier.
pub(crate) struct HostTier {
    /// Whether checkpoints live in host buffers (the option, and the device has them).
    host_buffers: bool,
    /// Whether spills are read when the GPU has run them and uploads go ahead of restores.
    overlap: bool,
    /// Host buffers of checkpoints, reused once no slot holds them.
    pool: Vec<Rc<wgpu::Buffer>>,
    /// Copies to host memory in flight, and their staging buffers.
    spills: Spills,
    held: Vec<Option<Held>>,
    prefetched: Option<Prefetched>,
    damage: DamageHook,
    stats: TierStats,
}

impl HostTier {
    /// Host buffers when `host_buffers` asks and `gpu` has them; at most `spills_in_flight`
    /// copies through staging in flight; with `overlap`, spills are not waited for and the next
    /// restore is uploaded ahead.
    pub(crate) fn new(
        gpu: &Gpu,
        host_buffers: bool,
        overlap: bool,
        spills_in_flight: usize,
        damage: DamageHook,
    ) -> Self {
        Self {
            host_buffers: host_buffers && gpu.has_host_buffers(),
            overlap,
            pool: Vec::new(),
            spills: Spills::new(spills_in_flight),
            held: Vec::new(),
            prefetched: None,
            damage,
            stats: TierStats {
                name: "host".into(),
                ..TierStats::default()
            },
        }
    }

    /// Encodes the copies of `levels` to host memory: into host buffers where the device has
    /// them, else through staging buffers. Host buffers that cannot be had (host-visible
    /// memory is short) fall back to staging for this checkpoint: it is never lost.
    fn copy_out(
        &mut self,
        io: &mut TierIo<'_, '_>,
        step: u64,
        levels: &[Rc<wgpu::Buffer>],
    ) -> Result<HostBytes> {
        if self.host_buffers {
            match self.copy_to_host_buffers(io, levels) {
                Ok(buffers) => return Ok(HostBytes::Buffers(buffers)),
                Err(Error::OutOfMemory { requested, .. }) => log::warn!(
                    "no host buffer of {requested} bytes for state {step}: copying it out through staging instead"
                ),
                Err(e) => return Err(e),
            }
        }
        Ok(HostBytes::Pending(self.spill(io, levels)?))
    }

    /// Copies of `levels` into host buffers, encoded after the work that wrote them.
    fn copy_to_host_buffers(
        &mut self,
        io: &mut TierIo<'_, '_>,
        levels: &[Rc<wgpu::Buffer>],
    ) -> Result<Vec<Rc<wgpu::Buffer>>> {
        let buffers = levels
            .iter()
            .map(|_| self.free_or_new_host_buffer(io))
            .collect::<Result<Vec<_>>>()?;
        let encoder = io.encoder();
        for (level, buffer) in levels.iter().zip(&buffers) {
            encoder.copy_buffer_to_buffer(level, 0, buffer, 0, level.size());
            self.stats.bytes_out += level.size();
        }
        Ok(buffers)
    }

    /// A host buffer no checkpoint holds, or a new one. A freed one may still be read by
    /// encoded copies: later copies into it come after them in command order.
    fn free_or_new_host_buffer(&mut self, io: &TierIo<'_, '_>) -> Result<Rc<wgpu::Buffer>> {
        if let Some(free) = self.pool.iter().find(|b| Rc::strong_count(b) == 1) {
            return Ok(Rc::clone(free));
        }
        let buffer = Rc::new(
            io.gpu()
                .host_buffer("host checkpoint level", io.level_bytes())?,
        );
        self.pool.push(Rc::clone(&buffer));
        Ok(buffer)
    }

    /// Encodes the copies of `levels` to staging, first waiting for the oldest spill when too
    /// many are in flight.
    fn spill(&mut self, io: &mut TierIo<'_, '_>, levels: &[Rc<wgpu::Buffer>]) -> Result<SpillId> {
        while self.spills.is_full() {
            let Some(oldest) = self.spills.oldest() else {
                break;
            };
            self.await_spill(io, oldest)?;
        }
        let gpu = io.gpu();
        let id = self.spills.start(gpu, io.encoder(), levels)?;
        self.stats.bytes_out += levels.iter().map(|l| l.size()).sum::<u64>();
        Ok(id)
    }

    /// Blocks until spill `id` is in host memory: until its submission is done, not the
    /// whole queue.
    fn await_spill(&mut self, io: &mut TierIo<'_, '_>, id: SpillId) -> Result<()> {
        let gpu = io.gpu();
        self.stats.wait_seconds += self.spills.wait_for(gpu, id, || io.submit())?;
        self.take_spills()
    }

    /// Moves the bytes of finished spills into their slots. A spill whose slot was freed
    /// meanwhile is dropped.
    fn take_spills(&mut self) -> Result<()> {
        for (id, copy) in self.spills.take_finished()? {
            let HostCopy {
                mut levels,
                checksum,
            } = copy;
            if take_damage(&self.damage)
                && let Some(level) = levels.iter_mut().find(|l| !l.is_empty())
            {
                let middle = level.len() / 2;
                level[middle] ^= 0x01;
            }
            let ready = Rc::new(HostCopy { levels, checksum });
            for held in self.held.iter_mut().flatten() {
                if matches!(held.bytes, HostBytes::Pending(pending) if pending == id) {
                    held.bytes = HostBytes::Ready(Rc::clone(&ready));
                    break;
                }
            }
        }
        Ok(())
    }

    /// The bytes of slot `slot`, waiting for its spill if they are still on the way.
    fn host_bytes(&mut self, io: &mut TierIo<'_, '_>, slot: usize) -> Result<Rc<HostCopy>> {
        if let Some(Some(Held {
            bytes: HostBytes::Pending(id),
            ..
        })) = self.held.get(slot)
        {
            let id = *id;
            self.await_spill(io, id)?;
        }
        match self.held.get(slot) {
            Some(Some(Held {
                bytes: HostBytes::Ready(bytes),
                ..
            })) => Ok(Rc::clone(bytes)),
            _ => Err(Error::Gpu {
                context: format!("restoring checkpoint slot {slot} from host memory"),
                detail: "its copy from the GPU never completed".into(),
            }),
        }
    }
}

/// Whether the host copy now arriving is the one the test hook damages.
fn take_damage(hook: &DamageHook) -> bool {
    match hook.get() {
        u64::MAX => false,
        0 => {
            hook.set(u64::MAX);
            true
        }
        n => {
            hook.set(n - 1);
            false
        }
    }
}

impl CheckpointTier for HostTier {
    fn name(&self) -> &str {
        &self.stats.name
    }

    /// Copies into host buffers, encoded in command order; or, without them, a spill whose
    /// bytes arrive when the GPU has run its copies (unless transfers do not overlap: then the
    /// host waits here).
    fn save(
        &mut self,
        io: &mut TierIo<'_, '_>,
        slot: usize,
        step: u64,
        levels: &[Rc<wgpu::Buffer>],
        demoted: bool,
    ) -> Result<()> {
        let bytes = self.copy_out(io, step, levels)?;
        let pending = match bytes {
            HostBytes::Pending(id) => Some(id),
            _ => None,
        };
        if self.held.len() <= slot {
            self.held.resize_with(slot + 1, || None);
        }
        self.held[slot] = Some(Held {
            step,
            bytes,
            size: levels.iter().map(|l| l.size()).sum(),
        });
        if demoted {
            self.stats.demotions += 1;
            return Ok(());
        }
        self.stats.saves += 1;
        if let Some(id) = pending
            && !self.overlap
        {
            self.await_spill(io, id)?;
        }
        Ok(())
    }

    fn restored_ahead(&mut self, slot: usize, step: u64) -> Option<Vec<Rc<wgpu::Buffer>>> {
        let early = self
            .prefetched
            .take_if(|p| p.slot == slot && p.step == step)?;
        self.stats.restores += 1;
        self.stats.reads_ahead += 1;
        Some(early.levels)
    }

    /// Copies back from host buffers, encoded in order after whatever last used the level
    /// buffers; or an upload of the verified bytes.
    fn restore(
        &mut self,
        io: &mut TierIo<'_, '_>,
        slot: usize,
        step: u64,
        into: &[Rc<wgpu::Buffer>],
    ) -> Result<()> {
        self.stats.restores += 1;
        if let Some(Some(Held {
            bytes: HostBytes::Buffers(buffers),
            ..
        })) = self.held.get(slot)
        {
            let encoder = io.encoder();
            for (buffer, level) in buffers.iter().zip(into) {
                encoder.copy_buffer_to_buffer(buffer, 0, level, 0, level.size());
                self.stats.bytes_in += level.size();
            }
            return Ok(());
        }
        let bytes = self.host_bytes(io, slot)?;
        self.stats.bytes_in += io.write_levels(into, bytes.verified(step, slot)?)?;
        Ok(())
    }

    fn free(&mut self, slot: usize, _step: u64) {
        if let Some(held) = self.held.get_mut(slot) {
            *held = None;
        }
        if self.prefetched.as_ref().is_some_and(|p| p.slot == slot) {
            self.prefetched = None;
        }
    }

    /// Uploads the next host checkpoint the schedule restores, once its bytes are in host
    /// memory. At most one is held (`levels` buffers), and only in buffers that are free or
    /// can be made without moving a device checkpoint out.
    fn prefetch(&mut self, io: &mut TierIo<'_, '_>, upcoming: &[Action]) -> Result<()> {
        // Nothing to look for while no slot is here (the usual all-on-GPU run): the window is
        // not scanned at every action for a restore that cannot be here.
        if !self.overlap || self.prefetched.is_some() || self.held.iter().all(Option::is_none) {
            return Ok(());
        }
        // The first restore ahead from a slot that is placed here now.
        let next = upcoming.iter().find_map(|action| match *action {
            Action::Restore { step, slot } if io.placed_here(slot) => Some((slot, step)),
            _ => None,
        });
        let Some((slot, step)) = next else {
            return Ok(());
        };
        let bytes = match self.held.get(slot) {
            Some(Some(Held {
                step: held,
                bytes: HostBytes::Ready(bytes),
                ..
            })) if *held == step => Rc::clone(bytes),
            _ => return Ok(()),
        };
        let data = bytes.verified(step, slot)?;
        let mut levels = Vec::with_capacity(data.len());
        for _ in data {
            let Some(level) = io.spare_level()? else {
                return Ok(());
            };
            levels.push(level);
        }
        self.stats.bytes_in += io.write_levels(&levels, data)?;
        self.prefetched = Some(Prefetched { slot, step, levels });
        Ok(())
    }

    fn submitted(&mut self, index: &wgpu::SubmissionIndex) {
        self.spills.submitted(index);
    }

    fn collect(&mut self, _io: &mut TierIo<'_, '_>) -> Result<()> {
        self.take_spills()
    }

    fn held_bytes(&self) -> u64 {
        self.held.iter().flatten().map(|h| h.size).sum()
    }

    fn stats(&self) -> TierStats {
        self.stats.clone()
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
            assert!(stats.tier(Tier::HOST).restores > 0, "{stats:?}");
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

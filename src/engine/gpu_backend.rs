//! [`GpuBackend`]: states as GPU level buffers, checkpoints kept by holding those buffers, and
//! beyond the device budget (or when the GPU runs out) in host memory (see [`host`]).

mod disk;
mod host;

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Instant;

use super::disk::{DiskTier, Done, JobId};
use super::operator::Operator;
use super::revolver::{Revolver, RevolverOptions, check_steps};
use super::spills::{SpillId, Spills};
use super::stats::RunStats;
use super::store::{Backend, Store};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, STATE_USAGE};
use crate::schedule::{Action, Multistage, Schedule, Tier};

/// One forward state on the GPU: its step and its levels, newest first.
#[derive(Clone)]
pub struct GpuState {
    step: u64,
    levels: Vec<Rc<wgpu::Buffer>>,
}

impl GpuState {
    /// The step this is the state before.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Its time levels, newest first.
    pub fn levels(&self) -> impl Iterator<Item = &wgpu::Buffer> {
        self.levels.iter().map(|b| b.as_ref())
    }
}

/// A checkpoint: on the GPU (the buffers themselves), in host memory (their bytes), or
/// nothing at all for the rest state of an operator that [starts at rest](Operator::starts_at_rest).
enum Held {
    Device(GpuState),
    Rest,
    Host { step: u64, bytes: HostBytes },
    Disk { step: u64, file: disk::DiskHeld },
}

/// A host checkpoint: in host buffers the GPU copies to and from, or as bytes copied out
/// through staging, still on their way or here (shared with an upload).
enum HostBytes {
    Buffers(Vec<Rc<wgpu::Buffer>>),
    Pending(SpillId),
    Ready(Rc<super::spills::HostCopy>),
}

/// The GPU side of a [`Revolver`]: an [`Operator`]'s states in level buffers, its checkpoints
/// in two tiers, [`Tier::DEVICE`] (the buffers a step wrote, nothing copied) and
/// [`Tier::HOST`] (host-memory buffers the GPU copies into and back out of in command order;
/// without them, bytes copied out through staging buffers without draining the queue, and
/// uploaded again ahead of their restore).
///
/// A level buffer is reused once neither the live state nor any checkpoint holds it, so the
/// backend holds at most `levels × (slots + 2) + 1` buffers (one state more for a prefetched
/// host checkpoint).
pub struct GpuBackend<'g, O: Operator> {
    gpu: &'g Gpu,
    operator: O,
    options: RevolverOptions,
    pool: Vec<Rc<wgpu::Buffer>>,
    /// Whether host checkpoints live in host buffers (the option, and the device has them).
    host_buffers: bool,
    /// Host buffers of host checkpoints, reused once no slot holds them.
    host_pool: Vec<Rc<wgpu::Buffer>>,
    /// Copies to host memory in flight, and their staging buffers.
    spills: Spills,
    /// The disk tier, made when a slot is placed there.
    disk: Option<DiskTier>,
    /// The disk read asked for ahead of its restore.
    read_ahead: Option<disk::ReadAhead>,
    /// Disk reads finished before their restore.
    disk_reads: HashMap<JobId, Done>,
    /// Reads whose slot was freed: their results are dropped.
    discarded_reads: Vec<JobId>,
    prefetched: Option<host::Prefetched>,
    /// Set while a transfer is being timed (transfers nest: an upload may demote).
    transfer_started: Option<Instant>,
    slots: Vec<Option<Held>>,
    tiers: Vec<Tier>,
    /// Saves and restores of each slot over the whole schedule (the demotion order).
    uses: Vec<u64>,
    encoder: Option<wgpu::CommandEncoder>,
    encoded: usize,
    /// The first and the last work encoded since the last submission, `(phase, step)`: what
    /// a validation error at the submission is reported against.
    batch: Option<[(&'static str, u64); 2]>,
    /// The counts only this backend knows: transfers, demotions, device bytes.
    stats: RunStats,
}

/// A schedule's own placement, checked against the slots it names and the budgets. The GPU
/// holds `device_levels` time levels of `level_bytes` at most when the schedule counts its
/// memory there in levels ([`Schedule::level_budget`]), else a whole state per slot.
fn check_own_tiers(
    tiers: Vec<Tier>,
    capacity: usize,
    (state_bytes, level_bytes): (u64, u64),
    device_levels: Option<u64>,
    options: &RevolverOptions,
) -> Result<Vec<Tier>> {
    if tiers.len() != capacity {
        return Err(Error::InvalidArgument {
            name: "schedule",
            reason: format!("it places {} of its {capacity} slots", tiers.len()),
        });
    }
    let slowest = if options.disk.is_some() {
        Tier::DISK
    } else {
        Tier::HOST
    };
    if let Some(&tier) = tiers.iter().find(|t| **t > slowest) {
        return Err(Error::InvalidArgument {
            name: "tiers",
            reason: format!(
                "the GPU backend has tiers 0 (device), 1 (host) and, with RevolverOptions::disk, 2 (disk); the placement names tier {}",
                tier.0
            ),
        });
    }
    for (tier, budget, name) in [
        (Tier::DEVICE, options.device_budget, "device_budget"),
        (Tier::HOST, options.host_budget, "host_budget"),
        (Tier::DISK, options.disk_budget, "disk_budget"),
    ] {
        let slots = tiers.iter().filter(|t| **t == tier).count() as u64;
        if let (Some(budget), Some(levels), Tier::DEVICE) = (budget, device_levels, tier) {
            if levels.saturating_mul(level_bytes) > budget {
                return Err(Error::InvalidArgument {
                    name,
                    reason: format!(
                        "the schedule holds up to {levels} time levels of {level_bytes} bytes on the GPU, {budget} bytes hold {}; plan it with fewer levels or raise the budget",
                        budget / level_bytes.max(1)
                    ),
                });
            }
            continue;
        }
        if let Some(budget) = budget
            && slots.saturating_mul(state_bytes) > budget
        {
            return Err(Error::InvalidArgument {
                name,
                reason: format!(
                    "the placement puts {slots} checkpoints of {state_bytes} bytes there, {budget} bytes hold {}; plan it with fewer slots in that tier or raise the budget",
                    budget / state_bytes.max(1)
                ),
            });
        }
    }
    Ok(tiers)
}

fn new_encoder(gpu: &Gpu) -> wgpu::CommandEncoder {
    gpu.device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("revolver"),
        })
}

impl<'a, 'g: 'a, O: Operator, S: Schedule> Revolver<'a, GpuBackend<'g, O>, S> {
    /// A revolver for a GPU `operator` under `schedule`. Slots go where the schedule says
    /// ([`Schedule::tiers`]) or else the most used stay on the GPU, as many as
    /// [`RevolverOptions::device_budget`] holds ([`Multistage`], from the schedule's own
    /// [`plan`](Schedule::planned); a schedule without one keeps its highest slots on the GPU).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the schedule and the operator disagree on the number of
    /// steps, the operator has no levels, or the schedule's own placement exceeds a budget;
    /// [`Error::InvalidSchedule`] for a schedule whose own plan is invalid;
    /// [`Error::CheckpointsDoNotFit`] when the budgets cannot hold the schedule's checkpoints.
    pub fn new(gpu: &'g Gpu, operator: O, schedule: S, options: RevolverOptions) -> Result<Self> {
        check_steps(schedule.steps(), operator.steps())?;
        if operator.levels() == 0 {
            return Err(Error::InvalidArgument {
                name: "operator",
                reason: "a state needs at least one time level".into(),
            });
        }
        let planned = schedule.planned()?;
        let capacity = schedule.slot_capacity();
        let state_bytes = operator.levels() as u64 * operator.level_bytes();
        // Without a plan, assume Revolve's pattern: the higher a slot, the more it is used.
        let (uses, needed) = match &planned {
            Some(p) => (p.slot_uses.clone(), p.stats.peak_slots),
            None => ((0..capacity as u64).collect(), capacity),
        };
        let mut budgets = vec![options.device_budget, options.host_budget];
        if options.disk.is_some() {
            budgets.push(options.disk_budget);
        }
        let sizes = (state_bytes, operator.level_bytes());
        let device_levels = schedule.level_budget().map(|b| b.levels);
        let tiers = match schedule.tiers() {
            Some(own) => check_own_tiers(own, capacity, sizes, device_levels, &options)?,
            None => Multistage::over_tiers(&uses, needed, state_bytes, &budgets)?
                .tiers()
                .to_vec(),
        };
        let spills = Spills::new(options.spills_in_flight);
        let host_buffers = options.host_buffers && gpu.has_host_buffers();
        let backend = GpuBackend {
            gpu,
            operator,
            options,
            pool: Vec::new(),
            host_buffers,
            host_pool: Vec::new(),
            spills,
            disk: None,
            read_ahead: None,
            disk_reads: HashMap::new(),
            discarded_reads: Vec::new(),
            prefetched: None,
            transfer_started: None,
            slots: (0..capacity).map(|_| None).collect(),
            tiers,
            uses,
            encoder: None,
            encoded: 0,
            batch: None,
            stats: RunStats::default(),
        };
        let mut backend = backend;
        backend.open_disk_if_placed()?;
        let plan = planned.map(|p| p.stats);
        let lookahead = backend.options.lookahead;
        Revolver::with_backend(backend, schedule, plan, lookahead)
    }

    /// Replaces the placement (a schedule planned for two tiers brings its own, which this
    /// overrides). Call before running.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `tiers` does not name every slot, names a tier the GPU
    /// backend does not have, or puts more checkpoints in a tier than its budget holds.
    pub fn with_tiers(mut self, tiers: Vec<Tier>) -> Result<Self> {
        let backend = self.backend_mut();
        let state_bytes = backend.state_bytes();
        let slots = backend.slots.len();
        backend.tiers = check_own_tiers(tiers, slots, (state_bytes, 0), None, &backend.options)?;
        backend.open_disk_if_placed()?;
        Ok(self)
    }

    /// The operator (to read its results after the run).
    pub fn operator(&self) -> &O {
        &self.backend().operator
    }

    /// Gives the operator back.
    pub fn into_operator(self) -> O {
        self.into_backend().operator
    }
}

impl<'g, O: Operator> GpuBackend<'g, O> {
    /// The operator (for a stop condition that reads the state through it, say).
    pub fn operator(&self) -> &O {
        &self.operator
    }

    /// The GPU it runs on.
    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }
}

impl<O: Operator> GpuBackend<'_, O> {
    fn state_bytes(&self) -> u64 {
        self.operator.levels() as u64 * self.operator.level_bytes()
    }

    /// A level buffer nobody holds, or a new one. When the GPU is out of memory, device
    /// checkpoints move to host memory (least used slot first) until a buffer is free or can be
    /// made: a checkpoint is never lost.
    fn take_level(&mut self) -> Result<Rc<wgpu::Buffer>> {
        loop {
            match self.free_or_new_level() {
                Err(e @ Error::OutOfMemory { .. }) => {
                    if !self.demote_one()? {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }

    /// State 0 of an operator that starts at rest, rebuilt: fresh levels cleared in the
    /// encoder, so the clear lands after the work already encoded that used those buffers.
    fn rest_state(&mut self) -> Result<GpuState> {
        let levels = (0..self.operator.levels())
            .map(|_| self.take_level())
            .collect::<Result<Vec<_>>>()?;
        let gpu = self.gpu;
        let encoder = self.encoder.get_or_insert_with(|| new_encoder(gpu));
        for level in &levels {
            encoder.clear_buffer(level, 0, None);
        }
        Ok(GpuState { step: 0, levels })
    }

    /// A level buffer nobody holds, or a new one.
    fn free_or_new_level(&mut self) -> Result<Rc<wgpu::Buffer>> {
        if let Some(free) = self.pool.iter().find(|b| Rc::strong_count(b) == 1) {
            return Ok(Rc::clone(free));
        }
        let bytes = self.operator.level_bytes();
        let buffer = Rc::new(self.gpu.create_buffer("time level", bytes, STATE_USAGE)?);
        self.pool.push(Rc::clone(&buffer));
        self.stats.device_bytes += bytes;
        Ok(buffer)
    }

    /// Notes work encoded into the current batch, for error reports.
    fn note_batch(&mut self, phase: &'static str, k: u64) {
        let first = self.batch.map_or((phase, k), |[first, _]| first);
        self.batch = Some([first, (phase, k)]);
    }

    /// Copies of `state`'s levels, encoded now, when the state contract is checked.
    fn contract_copies(&mut self, state: &GpuState) -> Result<Option<Vec<wgpu::Buffer>>> {
        if !self.options.check_state_contract {
            return Ok(None);
        }
        let bytes = self.operator.level_bytes();
        let copies = (0..state.levels.len())
            .map(|_| {
                self.gpu
                    .create_buffer("state contract copy", bytes, STATE_USAGE)
            })
            .collect::<Result<Vec<_>>>();
        // A check that cannot get memory is skipped, not the run: out of memory is the
        // engine's to handle (it spills), and a debug check must not change that.
        let copies = match copies {
            Err(Error::OutOfMemory { .. }) => {
                log::warn!(
                    "state contract not checked at step {}: no memory",
                    state.step
                );
                return Ok(None);
            }
            other => other?,
        };
        let gpu = self.gpu;
        let encoder = self.encoder.get_or_insert_with(|| new_encoder(gpu));
        for (level, copy) in state.levels.iter().zip(&copies) {
            encoder.copy_buffer_to_buffer(level, 0, copy, 0, bytes);
        }
        Ok(Some(copies))
    }

    /// Runs what is encoded and compares `state`'s levels with the copies taken before the
    /// operator's work: any difference breaks the contract.
    fn check_contract(
        &mut self,
        copies: Option<Vec<wgpu::Buffer>>,
        state: &GpuState,
        phase: &'static str,
    ) -> Result<()> {
        let Some(copies) = copies else {
            return Ok(());
        };
        self.flush(true)?;
        for (level, (buffer, copy)) in state.levels.iter().zip(&copies).enumerate() {
            let read = |b: &wgpu::Buffer| match self.gpu.read_back::<u32>(b) {
                Err(Error::OutOfMemory { .. }) => Ok(None),
                other => other.map(Some),
            };
            let (Some(now), Some(before)) = (read(buffer)?, read(copy)?) else {
                log::warn!(
                    "state contract not checked at step {}: no memory",
                    state.step
                );
                return Ok(());
            };
            if now != before {
                return Err(Error::StateContract {
                    phase,
                    step: state.step,
                    level,
                });
            }
        }
        Ok(())
    }

    /// One forward step from `state`; returns the next state and the new level.
    fn step(&mut self, state: &GpuState, record: bool) -> Result<(GpuState, Rc<wgpu::Buffer>)> {
        let next = self.take_level()?;
        let k = state.step;
        let copies = self.contract_copies(state)?;
        let refs: Vec<&wgpu::Buffer> = state.levels().collect();
        let gpu = self.gpu;
        let encoder = self.encoder.get_or_insert_with(|| new_encoder(gpu));
        self.operator
            .encode_forward(encoder, k, &refs, &next, record)?;
        self.note_batch("forward", k);
        self.check_contract(copies, state, "forward")?;
        let mut levels = Vec::with_capacity(state.levels.len());
        levels.push(Rc::clone(&next));
        levels.extend(state.levels.iter().take(state.levels.len() - 1).cloned());
        Ok((
            GpuState {
                step: k + 1,
                levels,
            },
            next,
        ))
    }

    /// Submits what is encoded; with `wait`, blocks until the GPU is done.
    ///
    /// Encoding errors (an operator's bind group that does not match its pipeline, say) reach
    /// wgpu only when the encoder finishes; a validation scope turns them into
    /// [`Error::Gpu`] here instead of a log line and silently wrong results.
    fn flush(&mut self, wait: bool) -> Result<()> {
        if let Some(encoder) = self.encoder.take() {
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
            self.spills.submitted(&index);
        }
        self.encoded = 0;
        if wait {
            self.gpu.wait()?;
        } else {
            // Runs the map callbacks of spills the GPU has finished; blocks on nothing.
            self.gpu.poll()?;
        }
        self.collect_spills()
    }
}

impl<O: Operator> Store for GpuBackend<'_, O> {
    type State = GpuState;

    fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    fn save(&mut self, slot: usize, step: u64, state: &GpuState) -> Result<()> {
        let tier = *self.tiers.get(slot).ok_or_else(|| slot_error(slot))?;
        debug_assert_eq!(step, state.step);
        if step == 0 && self.operator.starts_at_rest() {
            // Zeros are rebuilt on restore: nothing kept, nothing copied.
            self.slots[slot] = Some(Held::Rest);
            Ok(())
        } else if tier == Tier::DEVICE {
            self.slots[slot] = Some(Held::Device(state.clone()));
            Ok(())
        } else if tier == Tier::DISK {
            self.save_to_disk(slot, state)
        } else {
            self.save_to_host(slot, state)
        }
    }

    fn restore(&mut self, slot: usize, step: u64) -> Result<GpuState> {
        match self.slots.get(slot) {
            Some(Some(Held::Device(state))) => Ok(state.clone()),
            Some(Some(Held::Host { .. })) => self.restore_from_host(slot, step),
            Some(Some(Held::Disk { .. })) => self.restore_from_disk(slot, step),
            Some(Some(Held::Rest)) => self.rest_state(),
            _ => Err(slot_error(slot)),
        }
    }

    fn free(&mut self, slot: usize, _step: u64) -> Result<()> {
        *self.slots.get_mut(slot).ok_or_else(|| slot_error(slot))? = None;
        self.forget_prefetch(slot);
        self.forget_read_ahead(slot);
        Ok(())
    }

    fn prefetch(&mut self, upcoming: &[Action]) -> Result<()> {
        self.prefetch_next(upcoming)?;
        self.read_ahead_next(upcoming)
    }

    fn held_bytes(&self) -> Vec<u64> {
        let held: Vec<&Held> = self.slots.iter().flatten().collect();
        let distinct: HashSet<*const wgpu::Buffer> = held
            .iter()
            .filter_map(|h| match h {
                Held::Device(s) => Some(s.levels.iter().map(Rc::as_ptr)),
                Held::Host { .. } | Held::Disk { .. } | Held::Rest => None,
            })
            .flatten()
            .collect();
        let device = distinct.len() as u64 * self.operator.level_bytes();
        let count = |f: fn(&Held) -> bool| held.iter().filter(|h| f(h)).count() as u64;
        let host = count(|h| matches!(h, Held::Host { .. })) * self.state_bytes();
        let disk = count(|h| matches!(h, Held::Disk { .. })) * self.state_bytes();
        if self.tiers.contains(&Tier::DISK) {
            vec![device, host, disk]
        } else {
            vec![device, host]
        }
    }

    fn bytes_copied(&self) -> u64 {
        self.stats.spilled_bytes + self.stats.restored_bytes
    }
}

/// A slot the store does not have: the interpreter's checks make this unreachable.
fn slot_error(slot: usize) -> Error {
    Error::InvalidArgument {
        name: "slot",
        reason: format!("slot {slot} is not held by the GPU store"),
    }
}

impl<O: Operator> Backend for GpuBackend<'_, O> {
    fn initial(&mut self) -> Result<GpuState> {
        let levels = (0..self.operator.levels())
            .map(|_| self.take_level())
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&wgpu::Buffer> = levels.iter().map(|b| b.as_ref()).collect();
        self.operator.initialize(self.gpu, &refs)?;
        Ok(GpuState { step: 0, levels })
    }

    fn forward(&mut self, state: &GpuState, _k: u64, record: bool) -> Result<GpuState> {
        Ok(self.step(state, record)?.0)
    }

    fn reverse(&mut self, state: GpuState, k: u64, record: bool) -> Result<u64> {
        let next = if record || self.adjoint_needs_next() {
            Some(self.step(&state, record)?.1)
        } else {
            None
        };
        let copies = self.contract_copies(&state)?;
        let refs: Vec<&wgpu::Buffer> = state.levels().collect();
        let gpu = self.gpu;
        let encoder = self.encoder.get_or_insert_with(|| new_encoder(gpu));
        self.operator
            .encode_adjoint(encoder, k, &refs, next.as_deref())?;
        self.note_batch("adjoint", k);
        self.check_contract(copies, &state, "adjoint")?;
        Ok(u64::from(next.is_some()))
    }

    fn adjoint_needs_next(&self) -> bool {
        self.operator.adjoint_needs_next() || self.options.recompute_in_reverse
    }

    fn rebuilds_initial(&self) -> bool {
        self.operator.starts_at_rest()
    }

    fn step_done(&mut self) -> Result<()> {
        self.encoded += 1;
        if self.encoded >= self.options.steps_per_submit {
            self.flush(false)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.flush(true)
    }

    fn account(&self, stats: &mut RunStats) {
        let s = &self.stats;
        stats.device_bytes = s.device_bytes;
        stats.host_saves = s.host_saves;
        stats.host_restores = s.host_restores;
        stats.spilled_bytes = s.spilled_bytes;
        stats.restored_bytes = s.restored_bytes;
        stats.demotions = s.demotions;
        stats.transfer_seconds = s.transfer_seconds;
        stats.transfer_wait_seconds = s.transfer_wait_seconds;
        stats.prefetched_restores = s.prefetched_restores;
        stats.disk_saves = s.disk_saves;
        stats.disk_restores = s.disk_restores;
        stats.disk_reads_ahead = s.disk_reads_ahead;
        stats.disk_bytes_written = s.disk_bytes_written;
        stats.disk_bytes_read = s.disk_bytes_read;
        stats.disk_write_seconds = s.disk_write_seconds;
        stats.disk_read_seconds = s.disk_read_seconds;
    }
}

//! [`GpuBackend`]: states as GPU level buffers, checkpoints kept by holding those buffers, and
//! beyond the device budget (or when the GPU runs out) in the tiers below the GPU
//! ([`CheckpointTier`]): host memory, the disk, any tier added.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::rc::{Rc, Weak};
use std::time::Instant;

use super::disk::DiskTier;
use super::host::{DamageHook, HostTier};
use super::operator::Operator;
use super::revolver::{Revolver, RevolverOptions, check_steps};
use super::stats::{RunStats, TierStats};
use super::store::{Backend, Store};
use super::tier::{CheckpointTier, Device, TierIo};
use crate::error::{Error, Result};
use crate::gpu::{Codec, Gpu, STATE_USAGE};
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

/// A checkpoint: on the GPU (the buffers themselves, or in a lossy format their encodings:
/// `Encoded`), in a tier below it (`Tier(below + 1)`), or nothing at all for the rest state of
/// an operator that [starts at rest](Operator::starts_at_rest).
enum Held {
    Device(GpuState),
    Encoded(GpuState),
    Rest,
    Below(usize),
}

/// The GPU side of a [`Revolver`]: an [`Operator`]'s states in level buffers, its checkpoints
/// on the GPU ([`Tier::DEVICE`]: the buffers a step wrote, nothing copied) or in the tiers
/// below it, fastest first: [`Tier::HOST`] (host-memory buffers the GPU copies into and back
/// out of in command order; without them, bytes copied out through staging buffers without
/// draining the queue, and uploaded again ahead of their restore), [`Tier::DISK`] with
/// [`RevolverOptions::disk`], then any added with [`Revolver::add_tier`].
///
/// A level buffer is reused once neither the live state nor any checkpoint holds it, so the
/// backend holds at most `levels × (slots + 2) + 1` buffers (one state more for a prefetched
/// host checkpoint).
pub struct GpuBackend<'g, O: Operator> {
    device: Device<'g>,
    operator: O,
    options: RevolverOptions,
    /// The tiers below the GPU: `below[i]` is `Tier(i + 1)`.
    below: Vec<Box<dyn CheckpointTier>>,
    /// The host tier's test hook ([`damage_host_copy_after`](Self::damage_host_copy_after)).
    damage: DamageHook,
    /// Set while a transfer is being timed (transfers nest: a restore may demote).
    transfer_started: Option<Instant>,
    /// Seconds spent in the tiers' saves, restores and reads ahead.
    transfer_seconds: f64,
    slots: Vec<Option<Held>>,
    tiers: Vec<Tier>,
    /// Saves and restores of each slot over the whole schedule (the demotion order).
    uses: Vec<u64>,
    /// The GPU's own counts as a tier (the rebuilt rest state counts there).
    device_stats: TierStats,
    /// The kernels of a lossy checkpoint format; `None` for exact checkpoints.
    codec: Option<Codec>,
    /// The encoding of each live level buffer that has one held by a checkpoint, by the
    /// level buffer: a state saved next to one already held shares its encoded level, as
    /// exact checkpoints share level buffers (the level schedules count their memory so). A
    /// level decoded from an encoding maps to it too: encoding a decoded level gives back the
    /// same bits, so sharing never changes a bit, and a checkpoint's bits do not depend on
    /// its tier. An entry goes when its level buffer is taken for new data.
    encoded_levels: HashMap<*const wgpu::Buffer, Rc<wgpu::Buffer>>,
    /// The level buffers of `encoded_levels` that hold a decoding (not the level that was
    /// encoded, whose bits differ): a restore of a stored level already decoded into one of
    /// them takes that buffer, the same bits, instead of decoding again. Consecutive
    /// checkpoints share levels, so restoring state k just after state k + 1 finds `u_k`
    /// there. Weak: the pool decides when a buffer goes; an entry goes when its buffer is
    /// taken for new data.
    decoded_levels: HashMap<*const wgpu::Buffer, Weak<wgpu::Buffer>>,
    /// Levels encoded, decoded, and restored from a decoding already made.
    codec_counts: CodecCounts,
}

/// What a lossy checkpoint format's kernels did in a run ([`RunStats`]'s counts).
#[derive(Clone, Copy, Debug, Default)]
struct CodecCounts {
    encoded: u64,
    decoded: u64,
    reused: u64,
}

/// A schedule's own placement, checked against the slots it names and the budgets. The GPU
/// holds `device_levels` time levels of `level_bytes` at most when the schedule counts its
/// memory there in levels ([`Schedule::level_budget`]), else a whole state per slot.
fn check_own_tiers(
    tiers: Vec<Tier>,
    capacity: usize,
    (state_bytes, level_bytes): (u64, u64),
    device_levels: Option<u64>,
    budgets: &[(Option<u64>, &'static str)],
) -> Result<Vec<Tier>> {
    if tiers.len() != capacity {
        return Err(Error::InvalidArgument {
            name: "schedule",
            reason: format!("it places {} of its {capacity} slots", tiers.len()),
        });
    }
    let slowest = budgets.len().saturating_sub(1);
    if let Some(&tier) = tiers.iter().find(|t| t.0 > slowest) {
        return Err(Error::InvalidArgument {
            name: "tiers",
            reason: format!(
                "the GPU backend has tiers 0 (device) to {slowest} (1: host; 2: the disk with RevolverOptions::disk; then tiers added); the placement names tier {}",
                tier.0
            ),
        });
    }
    for (index, &(budget, name)) in budgets.iter().enumerate() {
        let tier = Tier(index);
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

impl<'a, 'g: 'a, O: Operator, S: Schedule> Revolver<'a, GpuBackend<'g, O>, S> {
    /// A revolver for a GPU `operator` under `schedule`. Slots go where the schedule says
    /// ([`Schedule::tiers`]) or else the most used stay on the GPU, as many as
    /// [`RevolverOptions::device_budget`] holds ([`Multistage`], from the schedule's own
    /// [`plan`](Schedule::planned); a schedule without one keeps its highest slots on the GPU).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the schedule and the operator disagree on the number of
    /// steps (or, for a schedule that joins, on the levels a state), the operator has no
    /// levels, or the schedule's own placement exceeds a budget;
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
        // A join takes a held state's level by the schedule's count of levels a state.
        if let Some(budget) = schedule.level_budget().filter(|b| b.joins)
            && budget.per_state != operator.levels() as u64
        {
            return Err(Error::InvalidArgument {
                name: "schedule",
                reason: format!(
                    "it joins states of {} levels, but the operator's states have {}: plan it \
                     with {} levels a state",
                    budget.per_state,
                    operator.levels(),
                    operator.levels()
                ),
            });
        }
        let planned = schedule.planned()?;
        let capacity = schedule.slot_capacity();
        let format = options.checkpoint_format;
        let parts = operator.level_parts();
        let stored_level_bytes = format.encoded_bytes_in(operator.level_bytes(), parts);
        let state_bytes = operator.levels() as u64 * stored_level_bytes;
        let codec = Codec::new(gpu, format)?;
        // Without a plan, assume Revolve's pattern: the higher a slot, the more it is used.
        let (uses, needed) = match &planned {
            Some(p) => (p.slot_uses.clone(), p.stats.peak_slots),
            None => ((0..capacity as u64).collect(), capacity),
        };
        let damage: DamageHook = Rc::new(Cell::new(u64::MAX));
        let mut below: Vec<Box<dyn CheckpointTier>> = vec![Box::new(HostTier::new(
            gpu,
            options.host_buffers,
            options.overlap_transfers,
            options.spills_in_flight,
            Rc::clone(&damage),
        ))];
        // The disk tier's registration: the rest of it is `DiskTier`.
        if let Some(dir) = &options.disk {
            below.push(Box::new(DiskTier::new(
                dir.clone(),
                options.disk_write_limit,
                options.spills_in_flight,
            )?));
        }
        let mut backend = GpuBackend {
            device: Device::new(gpu, operator.level_bytes(), stored_level_bytes, format),
            operator,
            options,
            below,
            damage,
            transfer_started: None,
            transfer_seconds: 0.0,
            slots: (0..capacity).map(|_| None).collect(),
            tiers: Vec::new(),
            uses,
            device_stats: TierStats {
                name: "device".into(),
                ..TierStats::default()
            },
            codec,
            encoded_levels: HashMap::new(),
            decoded_levels: HashMap::new(),
            codec_counts: CodecCounts::default(),
        };
        let budgets: Vec<Option<u64>> = backend.budgets().iter().map(|b| b.0).collect();
        let sizes = (state_bytes, stored_level_bytes);
        let device_levels = schedule.level_budget().map(|b| b.levels);
        backend.tiers = match schedule.tiers() {
            Some(own) => check_own_tiers(own, capacity, sizes, device_levels, &backend.budgets())?,
            None => Multistage::over_tiers(&backend.uses, needed, state_bytes, &budgets)?
                .tiers()
                .to_vec(),
        };
        backend.tell_placement()?;
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
        let budgets = backend.budgets();
        backend.tiers = check_own_tiers(tiers, slots, (state_bytes, 0), None, &budgets)?;
        backend.tell_placement()?;
        Ok(self)
    }

    /// Adds `tier` below the others (the slowest), as the next tier number, which it returns:
    /// `Tier(2)` without a disk tier, `Tier(3)` with one. Place slots there with
    /// [`with_tiers`](Self::with_tiers). It has no budget: the placement is the caller's.
    pub fn add_tier(&mut self, tier: Box<dyn CheckpointTier>) -> Tier {
        let backend = self.backend_mut();
        backend.below.push(tier);
        Tier(backend.below.len())
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
        self.device.gpu
    }

    /// Test hook: the host copy (in a host `Vec`, through staging) that arrives after the
    /// next `copies` ones has one bit flipped once its checksum is taken, as damage in host
    /// memory would; its restore then fails with [`Error::CheckpointCorrupted`]. Copies in
    /// host buffers and on their way to the disk tier do not count. `None` disarms it.
    #[doc(hidden)]
    pub fn damage_host_copy_after(&self, copies: Option<u64>) {
        self.damage.set(copies.unwrap_or(u64::MAX));
    }
}

impl<O: Operator> GpuBackend<'_, O> {
    /// Bytes of a checkpointed state, as its format stores it.
    fn state_bytes(&self) -> u64 {
        self.operator.levels() as u64 * self.device.stored_bytes()
    }

    /// Each tier's budget and its option's name, fastest first; added tiers have none.
    fn budgets(&self) -> Vec<(Option<u64>, &'static str)> {
        let o = &self.options;
        let mut budgets = vec![
            (o.device_budget, "device_budget"),
            (o.host_budget, "host_budget"),
        ];
        if o.disk.is_some() {
            budgets.push((o.disk_budget, "disk_budget"));
        }
        budgets.resize(self.below.len() + 1, (None, "tiers"));
        budgets
    }

    /// Tells each tier below the GPU how many slots the placement puts there.
    fn tell_placement(&mut self) -> Result<()> {
        for (i, tier) in self.below.iter_mut().enumerate() {
            let here = Tier(i + 1);
            tier.placed(self.tiers.iter().filter(|t| **t == here).count())?;
        }
        Ok(())
    }

    /// Runs `f` on tier `Tier(below + 1)` with its view of the GPU, timed as a transfer unless
    /// an outer call already is (a restore may demote); then tells the other tiers of a
    /// submission the call made.
    fn in_tier<T>(
        &mut self,
        below: usize,
        f: impl FnOnce(&mut dyn CheckpointTier, &mut TierIo<'_, '_>) -> Result<T>,
    ) -> Result<T> {
        let outer = self.transfer_started.is_none();
        if outer {
            self.transfer_started = Some(Instant::now());
        }
        let result = match self.below.get_mut(below) {
            Some(tier) => {
                let mut io = TierIo::new(&mut self.device, &self.tiers, Tier(below + 1));
                f(tier.as_mut(), &mut io)
            }
            None => Err(Error::InvalidArgument {
                name: "tiers",
                reason: format!("the GPU backend has no tier {}", below + 1),
            }),
        };
        // The caller answered its own submission; the others' copies all came before it.
        if let Some(index) = self.device.take_fresh() {
            for (i, tier) in self.below.iter_mut().enumerate() {
                if i != below {
                    tier.submitted(&index);
                }
            }
        }
        if outer && let Some(start) = self.transfer_started.take() {
            self.transfer_seconds += start.elapsed().as_secs_f64();
        }
        result
    }

    /// Moves the least used device checkpoint to the fastest tier below the GPU; false when
    /// none is left. Its buffers are free for reuse at once: the copies come first in command
    /// order.
    fn demote_one(&mut self) -> Result<bool> {
        let victim = (0..self.slots.len())
            .filter(|&i| matches!(self.slots[i], Some(Held::Device(_) | Held::Encoded(_))))
            .min_by_key(|&i| (self.uses[i], i));
        let Some(slot) = victim else { return Ok(false) };
        // A tier takes levels as the format stores them: the encodings, for a lossy one.
        let state = match self.slots[slot].take() {
            Some(Held::Device(state) | Held::Encoded(state)) => state,
            _ => return Ok(false),
        };
        log::warn!(
            "GPU out of memory: checkpoint slot {slot} (state {}) moves to host memory",
            state.step
        );
        self.in_tier(0, |tier, io| {
            tier.save(io, slot, state.step, &state.levels, true)
        })?;
        self.slots[slot] = Some(Held::Below(0));
        self.tiers[slot] = Tier::HOST;
        self.forget_unheld_encodings();
        Ok(true)
    }

    /// Out of GPU memory: first the buffers nobody holds go back to the device (with a lossy
    /// format a demotion frees stored buffers, which a level cannot use, and the other way
    /// round), then the least used device checkpoint moves to host memory. False when
    /// neither frees anything.
    fn make_room(&mut self) -> Result<bool> {
        self.forget_unheld_encodings();
        if self.codec.is_some() && self.device.release_unheld() > 0 {
            return Ok(true);
        }
        self.demote_one()
    }

    /// Drops the encoded levels no checkpoint holds any more: held by the stored pool and
    /// this map alone.
    fn forget_unheld_encodings(&mut self) {
        // A decoding whose level buffer the pool gave back names no buffer any more.
        let gone: Vec<_> = self
            .decoded_levels
            .iter()
            .filter(|(_, level)| level.strong_count() == 0)
            .map(|(key, _)| *key)
            .collect();
        for key in gone {
            self.decoded_levels.remove(&key);
            self.encoded_levels.remove(&key);
        }
        // An encoding is no checkpoint's when the stored pool and this map's entries are all
        // that hold it (a level and its decoding are two entries of one encoding).
        let mut entries: HashMap<*const wgpu::Buffer, usize> = HashMap::new();
        for encoded in self.encoded_levels.values() {
            *entries.entry(Rc::as_ptr(encoded)).or_default() += 1;
        }
        self.encoded_levels.retain(|_, encoded| {
            Rc::strong_count(encoded) > 1 + entries.get(&Rc::as_ptr(encoded)).unwrap_or(&0)
        });
        let encoded = &self.encoded_levels;
        self.decoded_levels
            .retain(|level, _| encoded.contains_key(level));
    }

    /// A level buffer that holds `encoded` decoded and has not been taken for new data since.
    fn decoding_of(&self, encoded: &Rc<wgpu::Buffer>) -> Option<Rc<wgpu::Buffer>> {
        self.encoded_levels
            .iter()
            .filter(|(_, e)| Rc::ptr_eq(e, encoded))
            .find_map(|(level, _)| self.decoded_levels.get(level)?.upgrade())
    }

    /// `state`'s levels encoded in the checkpoint format, in stored level buffers, for a
    /// checkpoint on the GPU or on its way to a tier below: a level whose encoding a
    /// checkpoint already holds shares it, the others are encoded in command order with the
    /// steps. Exact checkpoints are the levels themselves.
    fn stored_levels(&mut self, state: &GpuState) -> Result<Vec<Rc<wgpu::Buffer>>> {
        if self.codec.is_none() {
            return Ok(state.levels.clone());
        }
        self.forget_unheld_encodings();
        let len = self.operator.level_bytes() / 4;
        let mut stored = Vec::with_capacity(state.levels.len());
        for level in &state.levels {
            if let Some(held) = self.encoded_levels.get(&Rc::as_ptr(level)) {
                stored.push(Rc::clone(held));
                continue;
            }
            let encoded = self.take_stored()?;
            let (gpu, codec) = (self.device.gpu, self.codec.as_ref());
            if let Some(codec) = codec {
                let parts = self.operator.level_parts();
                codec.encode(gpu, self.device.encoder(), [level, &encoded], len, parts)?;
                self.codec_counts.encoded += 1;
            }
            self.encoded_levels
                .insert(Rc::as_ptr(level), Rc::clone(&encoded));
            stored.push(encoded);
        }
        Ok(stored)
    }

    /// State `step` decoded from its stored levels into level buffers: fresh ones, or those
    /// that hold a level's decoding already (exact checkpoints are their levels already).
    fn decoded(&mut self, step: u64, stored: Vec<Rc<wgpu::Buffer>>) -> Result<GpuState> {
        if self.codec.is_none() {
            return Ok(GpuState {
                step,
                levels: stored,
            });
        }
        let levels = stored
            .iter()
            .map(|encoded| self.decoded_level(encoded))
            .collect::<Result<_>>()?;
        Ok(GpuState { step, levels })
    }

    /// One stored level decoded into a level buffer, or the buffer that holds its decoding
    /// already.
    fn decoded_level(&mut self, encoded: &Rc<wgpu::Buffer>) -> Result<Rc<wgpu::Buffer>> {
        if let Some(level) = self.decoding_of(encoded) {
            self.codec_counts.reused += 1;
            return Ok(level);
        }
        let len = self.operator.level_bytes() / 4;
        let level = self.take_level()?;
        let (gpu, codec) = (self.device.gpu, self.codec.as_ref());
        if let Some(codec) = codec {
            let parts = self.operator.level_parts();
            codec.decode(gpu, self.device.encoder(), [encoded, &level], len, parts)?;
            self.codec_counts.decoded += 1;
        }
        // Encoding this level again would give `encoded`'s bits: share them.
        self.encoded_levels
            .insert(Rc::as_ptr(&level), Rc::clone(encoded));
        self.decoded_levels
            .insert(Rc::as_ptr(&level), Rc::downgrade(&level));
        Ok(level)
    }

    /// A stored level buffer nobody holds, or a new one; out of memory, device checkpoints
    /// move to host memory first, as for [`take_level`](Self::take_level).
    fn take_stored(&mut self) -> Result<Rc<wgpu::Buffer>> {
        loop {
            match self.device.free_or_new_stored() {
                Err(e @ Error::OutOfMemory { .. }) => {
                    if !self.make_room()? {
                        return Err(e);
                    }
                }
                other => return other,
            }
        }
    }

    /// A level buffer nobody holds, or a new one. When the GPU is out of memory, device
    /// checkpoints move to host memory (least used slot first) until a buffer is free or can be
    /// made: a checkpoint is never lost.
    fn take_level(&mut self) -> Result<Rc<wgpu::Buffer>> {
        loop {
            match self.device.free_or_new_level() {
                Err(e @ Error::OutOfMemory { .. }) => {
                    if !self.make_room()? {
                        return Err(e);
                    }
                }
                Ok(level) => {
                    // New data goes into it: its old encoding is not its own any more.
                    self.encoded_levels.remove(&Rc::as_ptr(&level));
                    self.decoded_levels.remove(&Rc::as_ptr(&level));
                    return Ok(level);
                }
                other => return other,
            }
        }
    }

    /// A state's worth of level buffers, taken as [`take_level`](Self::take_level) does.
    fn take_levels(&mut self) -> Result<Vec<Rc<wgpu::Buffer>>> {
        (0..self.operator.levels())
            .map(|_| self.take_level())
            .collect()
    }

    /// State 0 of an operator that starts at rest, rebuilt: fresh levels cleared in the
    /// encoder, so the clear lands after the work already encoded that used those buffers.
    fn rest_state(&mut self) -> Result<GpuState> {
        let levels = self.take_levels()?;
        let encoder = self.device.encoder();
        for level in &levels {
            encoder.clear_buffer(level, 0, None);
        }
        Ok(GpuState { step: 0, levels })
    }

    /// The state in a slot below the GPU, back in level buffers: those the tier brought back
    /// ahead, or fresh ones it fills.
    fn restore_from_below(&mut self, below: usize, slot: usize, step: u64) -> Result<GpuState> {
        if let Some(stored) = self
            .below
            .get_mut(below)
            .and_then(|t| t.restored_ahead(slot, step))
        {
            return self.decoded(step, stored);
        }
        // Timed as one transfer with the level buffers it takes (which may demote).
        let outer = self.transfer_started.is_none();
        if outer {
            self.transfer_started = Some(Instant::now());
        }
        let stored_levels = (0..self.operator.levels())
            .map(|_| self.take_stored())
            .collect::<Result<Vec<_>>>();
        let restored = stored_levels.and_then(|stored| {
            self.in_tier(below, |tier, io| tier.restore(io, slot, step, &stored))?;
            self.decoded(step, stored)
        });
        if outer && let Some(start) = self.transfer_started.take() {
            self.transfer_seconds += start.elapsed().as_secs_f64();
        }
        restored
    }

    /// Copies of `state`'s levels, encoded now, when the state contract is checked.
    fn contract_copies(&mut self, state: &GpuState) -> Result<Option<Vec<wgpu::Buffer>>> {
        if !self.options.check_state_contract {
            return Ok(None);
        }
        let bytes = self.operator.level_bytes();
        let copies = (0..state.levels.len())
            .map(|_| {
                self.device
                    .gpu
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
        let encoder = self.device.encoder();
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
            let read = |b: &wgpu::Buffer| match self.device.gpu.read_back::<u32>(b) {
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
        self.operator
            .encode_forward(self.device.encoder(), k, &refs, &next, record)?;
        self.device.note_batch("forward", k);
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

    /// Submits what is encoded; with `wait`, blocks until the GPU is done. Then every tier
    /// takes the work that finished.
    fn flush(&mut self, wait: bool) -> Result<()> {
        if let Some(index) = self.device.submit()? {
            for tier in &mut self.below {
                tier.submitted(&index);
            }
        }
        if wait {
            self.device.gpu.wait()?;
        } else {
            // Runs the map callbacks of copies the GPU has finished; blocks on nothing.
            self.device.gpu.poll()?;
        }
        for below in 0..self.below.len() {
            self.in_tier(below, |tier, io| tier.collect(io))?;
        }
        Ok(())
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
            // Zeros are rebuilt on restore: nothing kept, nothing copied. The GPU's save.
            self.slots[slot] = Some(Held::Rest);
            self.device_stats.saves += 1;
        } else if tier == Tier::DEVICE && self.codec.is_some() {
            let levels = self.stored_levels(state)?;
            self.slots[slot] = Some(Held::Encoded(GpuState { step, levels }));
            self.device_stats.saves += 1;
        } else if tier == Tier::DEVICE {
            self.slots[slot] = Some(Held::Device(state.clone()));
            self.device_stats.saves += 1;
        } else {
            let below = tier.0 - 1;
            let levels = self.stored_levels(state)?;
            self.in_tier(below, |t, io| t.save(io, slot, step, &levels, false))?;
            self.slots[slot] = Some(Held::Below(below));
        }
        Ok(())
    }

    fn restore(&mut self, slot: usize, step: u64) -> Result<GpuState> {
        match self.slots.get(slot) {
            Some(Some(Held::Device(state))) => {
                let state = state.clone();
                self.device_stats.restores += 1;
                Ok(state)
            }
            Some(Some(Held::Encoded(state))) => {
                let (step, stored) = (state.step, state.levels.clone());
                self.device_stats.restores += 1;
                self.decoded(step, stored)
            }
            Some(Some(Held::Below(below))) => self.restore_from_below(*below, slot, step),
            Some(Some(Held::Rest)) => {
                self.device_stats.restores += 1;
                self.rest_state()
            }
            _ => Err(slot_error(slot)),
        }
    }

    fn free(&mut self, slot: usize, step: u64) -> Result<()> {
        let held = self.slots.get_mut(slot).ok_or_else(|| slot_error(slot))?;
        if let Some(Held::Below(below)) = held.take()
            && let Some(tier) = self.below.get_mut(below)
        {
            tier.free(slot, step);
        }
        self.forget_unheld_encodings();
        Ok(())
    }

    fn prefetch(&mut self, upcoming: &[Action]) -> Result<()> {
        for below in 0..self.below.len() {
            self.in_tier(below, |tier, io| tier.prefetch(io, upcoming))?;
        }
        Ok(())
    }

    fn held_bytes(&self) -> Vec<u64> {
        let distinct: HashSet<*const wgpu::Buffer> = self
            .slots
            .iter()
            .flatten()
            .filter_map(|h| match h {
                Held::Device(s) | Held::Encoded(s) => Some(s.levels.iter().map(Rc::as_ptr)),
                Held::Below(_) | Held::Rest => None,
            })
            .flatten()
            .collect();
        // Exact checkpoints hold level buffers; lossy ones their encodings, all of one size.
        let device = distinct.len() as u64 * self.device.stored_bytes();
        std::iter::once(device)
            .chain(self.below.iter().map(|t| t.held_bytes()))
            .collect()
    }

    fn bytes_copied(&self) -> u64 {
        self.below
            .iter()
            .map(|t| {
                let s = t.stats();
                s.bytes_out + s.bytes_in
            })
            .sum()
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
        self.operator.initialize(self.device.gpu, &refs)?;
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
        self.operator
            .encode_adjoint(self.device.encoder(), k, &refs, next.as_deref())?;
        self.device.note_batch("adjoint", k);
        self.check_contract(copies, &state, "adjoint")?;
        Ok(u64::from(next.is_some()))
    }

    /// The live state's levels but its newest, then one level of the held state: from a GPU
    /// slot of a lossy format only that level is decoded (or found decoded already); a spilled
    /// state comes back whole, as for a restore, and one level of it is kept.
    fn join(&mut self, live: &GpuState, slot: usize, held: u64, step: u64) -> Result<GpuState> {
        debug_assert_eq!(live.step, step + 1);
        let q = live.levels.len() as u64;
        // State `held` is u_held, …: u_{step−q+1} is `held − (step − q + 1)` levels down.
        let index = (held + q)
            .checked_sub(step + 1)
            .ok_or_else(|| slot_error(slot))? as usize;
        let oldest = match self.slots.get(slot) {
            // Only the level the join takes is decoded.
            Some(Some(Held::Encoded(state))) => {
                let encoded = state.levels.get(index).cloned();
                let encoded = encoded.ok_or_else(|| slot_error(slot))?;
                self.device_stats.restores += 1;
                self.decoded_level(&encoded)?
            }
            _ => {
                let below = self.restore(slot, held)?;
                below
                    .levels
                    .get(index)
                    .cloned()
                    .ok_or_else(|| slot_error(slot))?
            }
        };
        let mut levels: Vec<_> = live.levels.iter().skip(1).cloned().collect();
        levels.push(oldest);
        Ok(GpuState { step, levels })
    }

    fn joins_levels(&self) -> bool {
        true
    }

    fn adjoint_needs_next(&self) -> bool {
        self.operator.adjoint_needs_next() || self.options.recompute_in_reverse
    }

    fn rebuilds_initial(&self) -> bool {
        self.operator.starts_at_rest()
    }

    fn step_done(&mut self) -> Result<()> {
        self.device.encoded += 1;
        if self.device.encoded >= self.options.steps_per_submit {
            self.flush(false)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.flush(true)
    }

    fn account(&self, stats: &mut RunStats) {
        stats.device_bytes = self.device.device_bytes;
        stats.transfer_seconds = self.transfer_seconds;
        stats.levels_encoded = self.codec_counts.encoded;
        stats.levels_decoded = self.codec_counts.decoded;
        stats.decodings_reused = self.codec_counts.reused;
        stats.tiers = std::iter::once(self.device_stats.clone())
            .chain(self.below.iter().map(|t| t.stats()))
            .collect();
    }
}

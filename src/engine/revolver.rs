//! [`Revolver`]: executes a schedule against an [`Operator`], with checkpoints in GPU buffers
//! and, beyond the device budget, in host memory (see [`host`]).

mod host;

use std::collections::HashSet;
use std::iter::Peekable;
use std::rc::Rc;
use std::time::Instant;

use super::operator::Operator;
use super::spills::{SpillId, Spills};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::schedule::{Action, Multistage, Schedule, ScheduleStats, Tier, Violation, simulate};

/// Level buffers: bound as storage by the operator's kernels; COPY_SRC and COPY_DST so a level
/// can be read back, or moved to and from host memory.
const LEVEL_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// Options of a run (faer-style, with defaults).
#[derive(Clone, Copy, Debug)]
pub struct RevolverOptions {
    /// Steps encoded per command buffer before it is submitted. Default 32.
    pub steps_per_submit: usize,
    /// GPU bytes for checkpoints (`levels × level_bytes` each); the slots beyond it live in
    /// host memory. The run also needs `levels + 1` working level buffers outside this budget,
    /// and `levels` more for a host checkpoint brought back ahead of its restore.
    /// Default `None`: every checkpoint on the GPU (spilling only if the device runs out).
    pub device_budget: Option<u64>,
    /// Host bytes for spilled checkpoints. Default `None`: unlimited.
    pub host_budget: Option<u64>,
    /// Overlap transfers with computation: spills are read when the GPU has run their copies
    /// (the host does not drain the queue), and the next host checkpoint to be restored is
    /// uploaded as soon as its bytes are in host memory. `false` waits for every spill and
    /// uploads at the restore: the baseline that shows what overlapping hides. Default `true`.
    pub overlap_transfers: bool,
    /// Spills in flight at once, each holding `levels` staging buffers of host-visible memory;
    /// at the bound the host waits for the oldest. Default 4 (0 counts as 1).
    pub spills_in_flight: usize,
}

impl Default for RevolverOptions {
    fn default() -> Self {
        Self {
            steps_per_submit: 32,
            device_budget: None,
            host_budget: None,
            overlap_transfers: true,
            spills_in_flight: 4,
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Forward step evaluations: advances plus one recording step per reverse (`n + p`).
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
    /// Bytes copied device-to-device to take or restore checkpoints: zero, since checkpoints
    /// keep the buffers a step wrote (see [`Operator`]).
    pub bytes_copied: u64,
    /// Most checkpoints held at once.
    pub peak_slots: usize,
    /// Most bytes held by checkpoints at once (distinct level buffers; consecutive checkpoints
    /// share levels).
    pub peak_checkpoint_bytes: u64,
    /// Bytes of all level buffers the engine allocated (checkpoints, live state, spare).
    pub device_bytes: u64,
    /// Wall time of the forward sweep (up to the first reverse), seconds.
    pub forward_seconds: f64,
    /// Wall time of the reverse sweep, seconds.
    pub reverse_seconds: f64,
    /// Checkpoints saved to host memory.
    pub host_saves: u64,
    /// Checkpoints restored from host memory.
    pub host_restores: u64,
    /// Bytes copied GPU → host.
    pub spilled_bytes: u64,
    /// Bytes copied host → GPU.
    pub restored_bytes: u64,
    /// Device slots moved to host because the GPU ran out of memory.
    pub demotions: u64,
    /// Most host bytes held at once.
    pub peak_host_bytes: u64,
    /// Seconds the host spent on copies to and from host memory: encoding them, reading
    /// staging buffers, uploads, and waiting (below).
    pub transfer_seconds: f64,
    /// Of which seconds blocked until the GPU had run a spill's copies: the transfer time
    /// that overlapping did not hide.
    pub transfer_wait_seconds: f64,
    /// Restores from host memory whose upload the lookahead had issued already.
    pub prefetched_restores: u64,
}

/// Progress of a run, in step evaluations (forward and adjoint alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Evaluations done.
    pub done: u64,
    /// Evaluations in the whole run.
    pub total: u64,
}

/// One forward state: its step and its levels, newest first.
#[derive(Clone)]
struct State {
    step: u64,
    levels: Vec<Rc<wgpu::Buffer>>,
}

/// A checkpoint: on the GPU (the buffers themselves) or in host memory (their bytes).
enum Held {
    Device(State),
    Host { step: u64, bytes: HostBytes },
}

/// A host checkpoint's bytes: still being copied, or here (shared with an upload).
enum HostBytes {
    Pending(SpillId),
    Ready(Rc<[Vec<u8>]>),
}

impl Held {
    fn step(&self) -> u64 {
        match self {
            Held::Device(s) => s.step,
            Held::Host { step, .. } => *step,
        }
    }
}

/// A schedule's own placement, checked against the slots it names and the budgets.
fn check_own_tiers(
    tiers: Vec<Tier>,
    capacity: usize,
    state_bytes: u64,
    options: &RevolverOptions,
) -> Result<Vec<Tier>> {
    if tiers.len() != capacity {
        return Err(Error::InvalidArgument {
            name: "schedule",
            reason: format!("it places {} of its {capacity} slots", tiers.len()),
        });
    }
    for (tier, budget, name) in [
        (Tier::Device, options.device_budget, "device_budget"),
        (Tier::Host, options.host_budget, "host_budget"),
    ] {
        let slots = tiers.iter().filter(|t| **t == tier).count() as u64;
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

/// Runs the adjoint of an [`Operator`]'s time loop under a checkpointing [`Schedule`],
/// pyrevolve style: [`apply_forward`](Self::apply_forward), then
/// [`apply_reverse`](Self::apply_reverse).
///
/// The schedule is simulated when the revolver is made, so an invalid one is refused before
/// anything runs. Checkpoints are the buffers the steps wrote (no copies); a level buffer is
/// reused once neither the live state nor any checkpoint holds it, so the engine holds at most
/// `levels × (slots + 2) + 1` buffers (one state more for a prefetched host checkpoint).
///
/// Host checkpoints travel through staging buffers without draining the queue; a second
/// reader of the schedule finds the next restore from host memory and uploads it early (see
/// [`RevolverOptions::overlap_transfers`]).
pub struct Revolver<'g, O: Operator, S: Schedule> {
    gpu: &'g Gpu,
    operator: O,
    actions: Peekable<S>,
    options: RevolverOptions,
    plan: ScheduleStats,
    pool: Vec<Rc<wgpu::Buffer>>,
    /// Copies to host memory in flight, and their staging buffers.
    spills: Spills,
    lookahead: host::Lookahead<S>,
    prefetched: Option<host::Prefetched>,
    /// Set while a transfer is being timed (transfers nest: an upload may demote).
    transfer_started: Option<Instant>,
    live: Option<State>,
    slots: Vec<Option<Held>>,
    tiers: Vec<Tier>,
    /// Saves and restores of each slot over the whole schedule.
    uses: Vec<u64>,
    /// Steps below this have run with `record = true`.
    recorded: u64,
    encoder: Option<wgpu::CommandEncoder>,
    encoded: usize,
    stats: RunStats,
    progress: Option<Box<dyn FnMut(Progress) + 'g>>,
    forward_done: bool,
    index: u64,
}

impl<'g, O: Operator, S: Schedule + Clone> Revolver<'g, O, S> {
    /// A revolver for `operator` under `schedule`. Slots go where the schedule says
    /// ([`Schedule::tiers`]) or else the most used stay on the GPU, as many as
    /// [`RevolverOptions::device_budget`] holds.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the schedule and the operator disagree on the number of
    /// steps, the operator has no levels, or the schedule's own placement exceeds a budget;
    /// [`Error::InvalidSchedule`] for an invalid schedule; [`Error::CheckpointsDoNotFit`]
    /// when the budgets cannot hold the schedule's checkpoints.
    pub fn new(gpu: &'g Gpu, operator: O, schedule: S, options: RevolverOptions) -> Result<Self> {
        if schedule.steps() != operator.steps() {
            return Err(Error::InvalidArgument {
                name: "schedule",
                reason: format!(
                    "the schedule reverses {} steps, the operator runs {}",
                    schedule.steps(),
                    operator.steps()
                ),
            });
        }
        if operator.levels() == 0 {
            return Err(Error::InvalidArgument {
                name: "operator",
                reason: "a state needs at least one time level".into(),
            });
        }
        let plan = simulate(schedule.clone())?;
        let capacity = schedule.slot_capacity();
        let state_bytes = operator.levels() as u64 * operator.level_bytes();
        let placement = Multistage::with_peak(
            schedule.clone(),
            plan.peak_slots,
            state_bytes,
            options.device_budget,
            options.host_budget,
        )?;
        let tiers = match schedule.tiers() {
            Some(own) => check_own_tiers(own, capacity, state_bytes, &options)?,
            None => placement.tiers().to_vec(),
        };
        let uses = placement.uses().to_vec();
        let slots = (0..capacity).map(|_| None).collect();
        Ok(Self {
            gpu,
            operator,
            lookahead: host::Lookahead::new(schedule.clone()),
            actions: schedule.peekable(),
            options,
            plan,
            pool: Vec::new(),
            spills: Spills::new(options.spills_in_flight),
            prefetched: None,
            transfer_started: None,
            live: None,
            slots,
            tiers,
            uses,
            recorded: 0,
            encoder: None,
            encoded: 0,
            stats: RunStats::default(),
            progress: None,
            forward_done: false,
            index: 0,
        })
    }
}

impl<'g, O: Operator, S: Schedule> Revolver<'g, O, S> {
    /// Calls `f` with the progress after every step (for a progress bar; the library itself
    /// never prints).
    pub fn on_progress(mut self, f: impl FnMut(Progress) + 'g) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// What the schedule will cost, as simulated.
    pub fn plan(&self) -> &ScheduleStats {
        &self.plan
    }

    /// What the run has done so far.
    pub fn stats(&self) -> &RunStats {
        &self.stats
    }

    /// The operator (to read its results after the run).
    pub fn operator(&self) -> &O {
        &self.operator
    }

    /// Gives the operator back.
    pub fn into_operator(self) -> O {
        self.operator
    }

    /// Runs the forward sweep: every action before the first reverse, taking checkpoints.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when a level buffer cannot be allocated; whatever the operator
    /// reports; [`Error::InvalidSchedule`] if the schedule contradicts the engine's state.
    pub fn apply_forward(&mut self) -> Result<()> {
        if self.forward_done {
            return Ok(());
        }
        let start = Instant::now();
        self.start()?;
        while let Some(&action) = self.actions.peek() {
            if matches!(action, Action::Reverse { .. } | Action::End) {
                break;
            }
            self.actions.next();
            self.execute(action)?;
        }
        self.flush(true)?;
        self.forward_done = true;
        self.stats.forward_seconds = start.elapsed().as_secs_f64();
        Ok(())
    }

    /// Runs the reverse sweep (after [`apply_forward`](Self::apply_forward), which it runs
    /// first if needed): every remaining action, each reverse recomputing its step and then
    /// calling the operator's adjoint.
    ///
    /// # Errors
    /// As [`apply_forward`](Self::apply_forward).
    pub fn apply_reverse(&mut self) -> Result<RunStats> {
        self.apply_forward()?;
        let start = Instant::now();
        while let Some(action) = self.actions.next() {
            self.execute(action)?;
        }
        self.flush(true)?;
        self.stats.reverse_seconds = start.elapsed().as_secs_f64();
        Ok(self.stats)
    }

    /// Allocates and initialises state 0.
    fn start(&mut self) -> Result<()> {
        let levels = (0..self.operator.levels())
            .map(|_| self.take_level())
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&wgpu::Buffer> = levels.iter().map(|b| b.as_ref()).collect();
        self.operator.initialize(self.gpu, &refs)?;
        self.live = Some(State { step: 0, levels });
        Ok(())
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

    /// A level buffer nobody holds, or a new one.
    fn free_or_new_level(&mut self) -> Result<Rc<wgpu::Buffer>> {
        if let Some(free) = self.pool.iter().find(|b| Rc::strong_count(b) == 1) {
            return Ok(Rc::clone(free));
        }
        let bytes = self.operator.level_bytes();
        let buffer = Rc::new(self.gpu.create_buffer("time level", bytes, LEVEL_USAGE)?);
        self.pool.push(Rc::clone(&buffer));
        self.stats.device_bytes += bytes;
        Ok(buffer)
    }

    fn invalid(&self, action: Action, violation: Violation) -> Error {
        Error::InvalidSchedule {
            index: self.index,
            action: Some(action),
            violation,
        }
    }

    fn live_at(&self, action: Action, step: u64) -> Result<State> {
        match &self.live {
            Some(state) if state.step == step => Ok(state.clone()),
            other => Err(self.invalid(
                action,
                Violation::NotLive {
                    needed: step,
                    live: other.as_ref().map(|s| s.step),
                },
            )),
        }
    }

    /// One forward step from `state`; returns the next state and the new level.
    fn step(&mut self, state: &State) -> Result<(State, Rc<wgpu::Buffer>)> {
        let next = self.take_level()?;
        let k = state.step;
        let record = k >= self.recorded;
        self.recorded = self.recorded.max(k + 1);
        let refs: Vec<&wgpu::Buffer> = state.levels.iter().map(|b| b.as_ref()).collect();
        let gpu = self.gpu;
        let encoder = self.encoder.get_or_insert_with(|| new_encoder(gpu));
        self.operator
            .encode_forward(encoder, k, &refs, &next, record)?;
        self.stats.forward_steps += 1;
        let mut levels = Vec::with_capacity(state.levels.len());
        levels.push(Rc::clone(&next));
        levels.extend(state.levels.iter().take(state.levels.len() - 1).cloned());
        Ok((
            State {
                step: k + 1,
                levels,
            },
            next,
        ))
    }

    fn execute(&mut self, action: Action) -> Result<()> {
        self.prefetch()?;
        match action {
            Action::Advance { from, to } => {
                let mut state = self.live_at(action, from)?;
                for _ in from..to {
                    let (next, _) = self.step(&state)?;
                    state = next;
                    self.stats.advances += 1;
                    self.after_step()?;
                }
                self.live = Some(state);
            }
            Action::Save { step, slot } => {
                let state = self.live_at(action, step)?;
                let capacity = self.slots.len();
                let Some(&tier) = self.tiers.get(slot) else {
                    return Err(self.invalid(action, Violation::SlotOutOfRange { slot, capacity }));
                };
                match tier {
                    Tier::Device => self.slots[slot] = Some(Held::Device(state)),
                    Tier::Host => self.save_to_host(slot, &state)?,
                }
                self.stats.saves += 1;
                self.account_checkpoints();
            }
            Action::Restore { step, slot } => {
                self.check_held(action, step, slot)?;
                let live = match &self.slots[slot] {
                    Some(Held::Device(state)) => state.clone(),
                    _ => self.restore_from_host(slot, step)?,
                };
                self.live = Some(live);
                self.stats.restores += 1;
            }
            Action::Free { step, slot } => {
                self.check_held(action, step, slot)?;
                self.slots[slot] = None;
                self.forget_prefetch(slot);
                self.stats.frees += 1;
            }
            Action::Reverse { step } => {
                let state = self.live_at(action, step)?;
                let (_, next) = self.step(&state)?;
                let refs: Vec<&wgpu::Buffer> = state.levels.iter().map(|b| b.as_ref()).collect();
                let encoder = self.encoder.as_mut().ok_or_else(|| Error::Gpu {
                    context: "reverse".into(),
                    detail: "no command encoder after the recording step".into(),
                })?;
                self.operator.encode_adjoint(encoder, step, &refs, &next)?;
                self.stats.reverse_steps += 1;
                // The live state is consumed; its buffers go back to the pool unless held.
                self.live = None;
                self.after_step()?;
            }
            Action::End => {}
        }
        self.index += 1;
        Ok(())
    }

    /// Checks that `slot` holds state `step`.
    fn check_held(&self, action: Action, step: u64, slot: usize) -> Result<()> {
        match self.slots.get(slot) {
            Some(Some(held)) if held.step() == step => Ok(()),
            Some(other) => Err(self.invalid(
                action,
                Violation::SlotMismatch {
                    slot,
                    expected: step,
                    holds: other.as_ref().map(Held::step),
                },
            )),
            None => Err(self.invalid(
                action,
                Violation::SlotOutOfRange {
                    slot,
                    capacity: self.slots.len(),
                },
            )),
        }
    }

    fn account_checkpoints(&mut self) {
        let held: Vec<&Held> = self.slots.iter().flatten().collect();
        self.stats.peak_slots = self.stats.peak_slots.max(held.len());
        let distinct: HashSet<*const wgpu::Buffer> = held
            .iter()
            .filter_map(|h| match h {
                Held::Device(s) => Some(s.levels.iter().map(Rc::as_ptr)),
                Held::Host { .. } => None,
            })
            .flatten()
            .collect();
        let bytes = distinct.len() as u64 * self.operator.level_bytes();
        self.stats.peak_checkpoint_bytes = self.stats.peak_checkpoint_bytes.max(bytes);
        let state_bytes = self.operator.levels() as u64 * self.operator.level_bytes();
        let host = held
            .iter()
            .filter(|h| matches!(h, Held::Host { .. }))
            .count() as u64
            * state_bytes;
        self.stats.peak_host_bytes = self.stats.peak_host_bytes.max(host);
    }

    /// Where each slot lives.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// Replaces the placement (a schedule planned for two tiers brings its own, which this
    /// overrides). Call before running.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `tiers` does not name every slot, or puts more
    /// checkpoints in a tier than its budget holds.
    pub fn with_tiers(mut self, tiers: Vec<Tier>) -> Result<Self> {
        let state_bytes = self.operator.levels() as u64 * self.operator.level_bytes();
        self.tiers = check_own_tiers(tiers, self.slots.len(), state_bytes, &self.options)?;
        Ok(self)
    }

    fn after_step(&mut self) -> Result<()> {
        self.encoded += 1;
        if self.encoded >= self.options.steps_per_submit {
            self.flush(false)?;
        }
        if let Some(report) = self.progress.as_mut() {
            report(Progress {
                done: self.stats.forward_steps + self.stats.reverse_steps,
                total: self.plan.total_forward + self.plan.reverse_steps,
            });
        }
        Ok(())
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
            let index = self.gpu.queue().submit([commands]);
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(Error::Gpu {
                    context: format!("running the schedule (before action #{})", self.index),
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

//! [`Revolver`]: executes a schedule against an [`Operator`], with checkpoints in GPU buffers.

use std::collections::HashSet;
use std::iter::Peekable;
use std::rc::Rc;
use std::time::Instant;

use super::operator::Operator;
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
    /// host memory. The run also needs `levels + 1` working level buffers outside this budget.
    /// Default `None`: every checkpoint on the GPU (spilling only if the device runs out).
    pub device_budget: Option<u64>,
    /// Host bytes for spilled checkpoints. Default `None`: unlimited.
    pub host_budget: Option<u64>,
}

impl Default for RevolverOptions {
    fn default() -> Self {
        Self {
            steps_per_submit: 32,
            device_budget: None,
            host_budget: None,
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
    /// Seconds the host spent blocked in copies to and from host memory. Copies are
    /// synchronous for now (each spill waits for the GPU to drain), so this is the time a
    /// prefetching store would have to hide.
    pub transfer_seconds: f64,
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
    Host { step: u64, levels: Vec<Vec<u8>> },
}

impl Held {
    fn step(&self) -> u64 {
        match self {
            Held::Device(s) => s.step,
            Held::Host { step, .. } => *step,
        }
    }
}

/// Runs the adjoint of an [`Operator`]'s time loop under a checkpointing [`Schedule`],
/// pyrevolve style: [`apply_forward`](Self::apply_forward), then
/// [`apply_reverse`](Self::apply_reverse).
///
/// The schedule is simulated when the revolver is made, so an invalid one is refused before
/// anything runs. Checkpoints are the buffers the steps wrote (no copies); a level buffer is
/// reused once neither the live state nor any checkpoint holds it, so the engine holds at most
/// `levels × (slots + 1) + 1` buffers.
pub struct Revolver<'g, O: Operator, S: Schedule> {
    gpu: &'g Gpu,
    operator: O,
    actions: Peekable<S>,
    options: RevolverOptions,
    plan: ScheduleStats,
    pool: Vec<Rc<wgpu::Buffer>>,
    /// Reused `MAP_READ | COPY_DST` buffers for copies to the host.
    staging: Vec<wgpu::Buffer>,
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
    /// A revolver for `operator` under `schedule`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the schedule and the operator disagree on the number of
    /// steps or the operator has no levels; [`Error::InvalidSchedule`] for an invalid schedule.
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
        let (tiers, uses) = (placement.tiers().to_vec(), placement.uses().to_vec());
        let slots = (0..capacity).map(|_| None).collect();
        Ok(Self {
            gpu,
            operator,
            actions: schedule.peekable(),
            options,
            plan,
            pool: Vec::new(),
            staging: Vec::new(),
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
            if let Some(free) = self.pool.iter().find(|b| Rc::strong_count(b) == 1) {
                return Ok(Rc::clone(free));
            }
            let bytes = self.operator.level_bytes();
            match self.gpu.create_buffer("time level", bytes, LEVEL_USAGE) {
                Ok(buffer) => {
                    let buffer = Rc::new(buffer);
                    self.pool.push(Rc::clone(&buffer));
                    self.stats.device_bytes += bytes;
                    return Ok(buffer);
                }
                Err(e @ Error::OutOfMemory { .. }) => {
                    if !self.demote_one()? {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Moves the least used device checkpoint to host memory; false when none is left.
    fn demote_one(&mut self) -> Result<bool> {
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
        let levels = self.spill(&state)?;
        self.slots[slot] = Some(Held::Host {
            step: state.step,
            levels,
        });
        self.tiers[slot] = Tier::Host;
        self.stats.demotions += 1;
        Ok(true)
    }

    /// Copies a state's levels to host memory through staging buffers (after everything
    /// encoded so far, which may still be writing them).
    fn spill(&mut self, state: &State) -> Result<Vec<Vec<u8>>> {
        let start = Instant::now();
        self.flush(false)?;
        let mut encoder =
            self.gpu
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("spill"),
                });
        let mut used = Vec::with_capacity(state.levels.len());
        for level in &state.levels {
            let staging = match self.staging.pop() {
                Some(b) => b,
                // MAP_READ: the host maps it; COPY_DST: the level is copied into it.
                None => self.gpu.create_buffer(
                    "spill staging",
                    level.size(),
                    wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                )?,
            };
            encoder.copy_buffer_to_buffer(level, 0, &staging, 0, level.size());
            used.push(staging);
        }
        self.gpu.queue().submit([encoder.finish()]);
        let mut out = Vec::with_capacity(used.len());
        for staging in used {
            let bytes = self.gpu.read_mapped(&staging)?;
            self.stats.spilled_bytes += bytes.len() as u64;
            out.push(bytes);
            self.staging.push(staging);
        }
        self.stats.transfer_seconds += start.elapsed().as_secs_f64();
        Ok(out)
    }

    /// Uploads host levels into free level buffers. Pending work is submitted first: a queue
    /// write lands before the *next* submission, so it must not overtake commands still
    /// waiting in the encoder that use the buffer it reuses.
    fn unspill(&mut self, step: u64, host: &[Vec<u8>]) -> Result<State> {
        let start = Instant::now();
        self.flush(false)?;
        let mut levels = Vec::with_capacity(host.len());
        for bytes in host {
            let level = self.take_level()?;
            self.gpu.write(&level, bytes)?;
            self.stats.restored_bytes += bytes.len() as u64;
            levels.push(level);
        }
        self.stats.transfer_seconds += start.elapsed().as_secs_f64();
        Ok(State { step, levels })
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
        let encoder = self.encoder.get_or_insert_with(|| {
            gpu.device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("revolver"),
                })
        });
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
                let held = match tier {
                    Tier::Device => Held::Device(state),
                    Tier::Host => {
                        self.stats.host_saves += 1;
                        Held::Host {
                            step,
                            levels: self.spill(&state)?,
                        }
                    }
                };
                self.slots[slot] = Some(held);
                self.stats.saves += 1;
                self.account_checkpoints();
            }
            Action::Restore { step, slot } => {
                self.check_held(action, step, slot)?;
                // Taken out while the levels upload, and put back: the slot keeps its state.
                let held = self.slots[slot].take();
                let live = match &held {
                    Some(Held::Device(state)) => Ok(state.clone()),
                    Some(Held::Host { levels, .. }) => {
                        self.stats.host_restores += 1;
                        self.unspill(step, levels)
                    }
                    None => Err(self.invalid(
                        action,
                        Violation::SlotMismatch {
                            slot,
                            expected: step,
                            holds: None,
                        },
                    )),
                };
                self.slots[slot] = held;
                self.live = Some(live?);
                self.stats.restores += 1;
            }
            Action::Free { step, slot } => {
                self.check_held(action, step, slot)?;
                self.slots[slot] = None;
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
        let host: u64 = held
            .iter()
            .map(|h| match h {
                Held::Host { levels, .. } => levels.iter().map(|l| l.len() as u64).sum(),
                Held::Device(_) => 0,
            })
            .sum();
        self.stats.peak_host_bytes = self.stats.peak_host_bytes.max(host);
    }

    /// Where each slot lives.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// Replaces the placement (say, [`TwoLevel::tiers`](crate::schedule::TwoLevel::tiers) for
    /// the cost-optimal schedule). Call before running.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `tiers` does not name every slot.
    pub fn with_tiers(mut self, tiers: Vec<Tier>) -> Result<Self> {
        if tiers.len() != self.slots.len() {
            return Err(Error::InvalidArgument {
                name: "tiers",
                reason: format!("{} tiers for {} slots", tiers.len(), self.slots.len()),
            });
        }
        self.tiers = tiers;
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
            self.gpu.queue().submit([commands]);
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(Error::Gpu {
                    context: format!("running the schedule (before action #{})", self.index),
                    detail: e.to_string(),
                });
            }
        }
        self.encoded = 0;
        if wait { self.gpu.wait() } else { Ok(()) }
    }
}

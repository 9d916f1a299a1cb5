//! [`Revolver`]: the action interpreter. It reads a schedule once, as a stream with a bounded
//! lookahead, checks every action against the schedule's rules before running it, and runs it
//! against a [`Backend`] (where states live and how they step). Written once for every
//! backend: GPU buffers with host spill, or any CPU state.

use std::ops::ControlFlow;
use std::time::Instant;

use super::stats::{RunStats, TierStats};
use super::store::Backend;
use crate::error::{Error, Result};
use crate::schedule::{Action, Schedule, ScheduleStats, Simulator, Tier, Violation};

/// Steps encoded into one command buffer before it is submitted, by default: enough to keep
/// the GPU fed, few enough that a long run does not hold thousands of bind groups in flight.
/// The acoustic store-all reference submits at the same rate.
pub const DEFAULT_STEPS_PER_SUBMIT: usize = 32;

/// A schedule and a time stepper must agree on the number of steps.
pub(crate) fn check_steps(schedule: u64, operator: u64) -> Result<()> {
    if schedule == operator {
        return Ok(());
    }
    Err(Error::InvalidArgument {
        name: "schedule",
        reason: format!("the schedule reverses {schedule} steps, the operator runs {operator}"),
    })
}

/// Options of a run (faer-style, with defaults). The GPU backend reads all of them; a CPU
/// backend only [`lookahead`](Self::lookahead).
#[derive(Clone, Debug)]
pub struct RevolverOptions {
    /// Steps encoded per command buffer before it is submitted. Default
    /// [`DEFAULT_STEPS_PER_SUBMIT`] (32).
    pub steps_per_submit: usize,
    /// GPU bytes for checkpoints (`levels × level_bytes` each); the slots beyond it live in
    /// host memory. The run also needs `levels + 1` working level buffers outside this budget,
    /// and `levels` more for a host checkpoint brought back ahead of its restore.
    /// Default `None`: every checkpoint on the GPU (spilling only if the device runs out).
    pub device_budget: Option<u64>,
    /// Host bytes for spilled checkpoints. Default `None`: unlimited.
    pub host_budget: Option<u64>,
    /// A directory for a third tier below host memory: each run writes its checkpoints
    /// beyond the host budget into a fresh subdirectory of it (removed when the run ends,
    /// fails or is interrupted), from the staging buffers by a background writer, each file
    /// with a checksum verified when it is read back (ahead of its restore). GPU backend
    /// only. Default `None`: no disk tier.
    pub disk: Option<std::path::PathBuf>,
    /// Bytes of checkpoints on the disk tier. Default `None`: unlimited.
    pub disk_budget: Option<u64>,
    /// Test hook: the disk writer fails as a full disk would once it has written this many
    /// bytes.
    #[doc(hidden)]
    pub disk_write_limit: Option<u64>,
    /// Overlap transfers with computation: spills are read when the GPU has run their copies
    /// (the host does not drain the queue), and the next host checkpoint to be restored is
    /// uploaded as soon as its bytes are in host memory. `false` waits for every spill and
    /// uploads at the restore: the baseline that shows what overlapping hides. Default `true`.
    pub overlap_transfers: bool,
    /// Keep host checkpoints in host-memory GPU buffers ([`Gpu::host_buffer`]) that the GPU
    /// copies to and from in command order, like any other work: no staging buffer, no map,
    /// no host-side copy and no wait, so a spill costs the copy engine's time alone. Used
    /// where the device has them ([`Gpu::has_host_buffers`]); `false`, or a device without
    /// them, copies through staging buffers into host `Vec`s (and
    /// [`overlap_transfers`](Self::overlap_transfers) applies). Same bits either way.
    /// Default `true`.
    ///
    /// [`Gpu::host_buffer`]: crate::gpu::Gpu::host_buffer
    /// [`Gpu::has_host_buffers`]: crate::gpu::Gpu::has_host_buffers
    pub host_buffers: bool,
    /// Spills in flight at once, each holding `levels` staging buffers of host-visible memory;
    /// at the bound the host waits for the oldest. Default 4 (0 counts as 1).
    pub spills_in_flight: usize,
    /// Actions read ahead of the one running, for a store to bring slow checkpoints back
    /// early. The schedule is read once; this bounds what is held of it. Default 1024 (0
    /// counts as 1).
    pub lookahead: usize,
    /// Run every reverse's forward step even when the operator's adjoint needs state `k`
    /// alone: Revolve's classic cost (`n + p` forward steps), to measure what a state-only
    /// adjoint saves. The results are the same bits; only the time and the counts change.
    /// GPU backend only. Default `false`.
    pub recompute_in_reverse: bool,
    /// Check the [`Operator`](crate::engine::Operator)'s state contract at every step: the
    /// levels of the state a forward step or an adjoint is given are copied before it and
    /// compared with what they hold after it, and a difference is
    /// [`Error::StateContract`], naming the step, the phase and the level. Each step then
    /// waits for the GPU and reads the state back: for developing an operator, not for
    /// production. GPU backend only. Default: on in debug builds, off in release.
    pub check_state_contract: bool,
    /// How checkpoints store their time levels ([`CheckpointFormat`]). `F32` (the default)
    /// keeps the levels a step wrote: the store-all gradient to the bit. A lossy format
    /// encodes each level on the GPU at a save (consecutive states held on the GPU share an
    /// encoded level, as they share a level buffer in `F32`) and decodes it at a restore;
    /// the tiers below the GPU move and hold the encoded bytes. Plan the schedule in the
    /// encoded size ([`CheckpointFormat::levels_in`]), or the memory saved buys nothing. GPU
    /// backend only.
    ///
    /// [`CheckpointFormat`]: crate::compression::CheckpointFormat
    /// [`CheckpointFormat::levels_in`]: crate::compression::CheckpointFormat::levels_in
    pub checkpoint_format: crate::compression::CheckpointFormat,
}

impl Default for RevolverOptions {
    fn default() -> Self {
        Self {
            steps_per_submit: DEFAULT_STEPS_PER_SUBMIT,
            device_budget: None,
            host_budget: None,
            disk: None,
            disk_budget: None,
            disk_write_limit: None,
            overlap_transfers: true,
            host_buffers: true,
            spills_in_flight: 4,
            lookahead: 1024,
            recompute_in_reverse: false,
            check_state_contract: cfg!(debug_assertions),
            checkpoint_format: crate::compression::CheckpointFormat::F32,
        }
    }
}

/// How an online forward sweep ended ([`Revolver::apply_forward_until`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForwardEnd {
    /// The run's steps: its last step's input was live when it ended.
    pub steps: u64,
    /// Whether the stop condition ended it; `false` when the schedule's most steps did.
    pub stopped: bool,
}

/// Progress of a run, in step evaluations (forward and adjoint alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Evaluations done.
    pub done: u64,
    /// Evaluations in the whole run; 0 when the schedule cannot tell ahead
    /// ([`Schedule::planned`] is `None`).
    pub total: u64,
}

/// What a progress callback answers: `()` goes on; [`ControlFlow::Break`] stops the run at
/// once with [`Error::Interrupted`] (a Ctrl-C, a time limit). A stopped run loses nothing
/// that outlives it: the checkpoints are dropped with the revolver, and the same call can be
/// made again.
pub trait ProgressReply {
    /// Whether the run goes on.
    fn go_on(self) -> bool;
}

impl ProgressReply for () {
    fn go_on(self) -> bool {
        true
    }
}

impl ProgressReply for ControlFlow<()> {
    fn go_on(self) -> bool {
        self.is_continue()
    }
}

/// Runs the adjoint of a time loop under a checkpointing [`Schedule`], pyrevolve style:
/// [`apply_forward`](Self::apply_forward), then [`apply_reverse`](Self::apply_reverse).
///
/// `B` is where the states live and how they step: [`GpuBackend`](super::GpuBackend)
/// (made by `Revolver::new` with the `gpu` feature) or [`CpuBackend`](super::CpuBackend)
/// (made by [`Revolver::on_cpu`]). The schedule is read once, [`RevolverOptions::lookahead`]
/// actions ahead; each action is checked against the schedule's rules just before it runs, so
/// a wrong schedule stops the run with [`Error::InvalidSchedule`] at its first wrong action,
/// before that action touches any state.
pub struct Revolver<'a, B: Backend, S: Schedule> {
    backend: B,
    schedule: S,
    /// Actions read from the schedule and not yet run.
    window: Window,
    lookahead: usize,
    checker: Simulator,
    plan: Option<ScheduleStats>,
    /// Step evaluations the whole run will make, as [`Progress::total`] reports them.
    progress_total: u64,
    live: Option<B::State>,
    /// The state just reversed, kept for a join below it when the schedule joins.
    reversed: Option<B::State>,
    /// Whether the schedule joins states ([`Action::Join`]).
    joins: bool,
    /// Steps below this have run with `record = true`.
    recorded: u64,
    stats: RunStats,
    /// Most bytes held at once in each tier.
    peaks: Vec<u64>,
    /// The progress callback; `false` stops the run.
    progress: Option<Box<dyn FnMut(Progress) -> bool + 'a>>,
    forward_done: bool,
}

impl<'a, B: Backend, S: Schedule> Revolver<'a, B, S> {
    /// A revolver that runs `schedule` on `backend`, reading `lookahead` actions ahead.
    /// `plan` is what the schedule said of itself ([`Schedule::planned`]), for progress and
    /// [`plan`](Self::plan).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a schedule that leaves state 0 out of its memory on a
    /// backend that cannot rebuild it.
    pub(crate) fn with_backend(
        backend: B,
        schedule: S,
        plan: Option<ScheduleStats>,
        lookahead: usize,
    ) -> Result<Self> {
        if schedule.level_budget().is_some_and(|b| b.initial_free) && !backend.rebuilds_initial() {
            return Err(Error::InvalidArgument {
                name: "schedule",
                reason: "it keeps no memory for state 0, but this operator does not start at \
                         rest (Operator::starts_at_rest): plan with LevelOptimal::new instead"
                    .into(),
            });
        }
        let joins = schedule.level_budget().is_some_and(|b| b.joins);
        if joins && !backend.joins_levels() {
            return Err(Error::InvalidArgument {
                name: "schedule",
                reason: "it joins states (Action::Join), which needs states that are level buffers (the GPU backend): plan without LevelOptimal::with_joins"
                    .into(),
            });
        }
        let checker = Simulator::for_schedule(&schedule);
        let progress_total = plan.map_or(0, |p| {
            planned_forward(&p, backend.adjoint_needs_next()) + p.reverse_steps
        });
        Ok(Self {
            backend,
            schedule,
            window: Window::default(),
            lookahead: lookahead.max(1),
            checker,
            plan,
            progress_total,
            live: None,
            reversed: None,
            joins,
            recorded: 0,
            stats: RunStats::default(),
            peaks: Vec::new(),
            progress: None,
            forward_done: false,
        })
    }

    /// Calls `f` with the progress after every step (for a progress bar; the library itself
    /// never prints). `f` may return `()`, or a [`ControlFlow`] whose `Break` stops the run
    /// with [`Error::Interrupted`] ([`ProgressReply`]).
    pub fn on_progress<R: ProgressReply>(mut self, mut f: impl FnMut(Progress) -> R + 'a) -> Self {
        self.progress = Some(Box::new(move |p| f(p).go_on()));
        self
    }

    /// What the schedule will cost, as its own planner says; `None` for a schedule that
    /// cannot tell ahead.
    pub fn plan(&self) -> Option<&ScheduleStats> {
        self.plan.as_ref()
    }

    /// The forward steps the run will take, as planned: [`ScheduleStats::total_forward`]
    /// when the adjoint needs the recomputed next state, else
    /// [`ScheduleStats::state_adjoint_total_forward`]. `None` for a schedule that does not
    /// plan itself.
    pub fn planned_forward_steps(&self) -> Option<u64> {
        let needs_next = self.backend.adjoint_needs_next();
        self.plan.as_ref().map(|p| planned_forward(p, needs_next))
    }

    /// What the run has done so far.
    pub fn stats(&self) -> RunStats {
        let mut stats = self.stats.clone();
        stats.bytes_copied = self.backend.bytes_copied();
        self.backend.account(&mut stats);
        // One entry per tier, each with its peak: a backend may count nothing per tier.
        if stats.tiers.len() < self.peaks.len() {
            let named = (stats.tiers.len()..self.peaks.len()).map(|i| TierStats {
                name: format!("tier {i}"),
                ..TierStats::default()
            });
            stats.tiers.extend(named);
        }
        for (tier, &peak) in stats.tiers.iter_mut().zip(&self.peaks) {
            tier.peak_bytes = peak;
        }
        stats
    }

    /// Where each slot lives.
    pub fn tiers(&self) -> &[Tier] {
        self.backend.tiers()
    }

    /// The backend (its operator, its store).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, to change before running.
    #[cfg(feature = "gpu")]
    pub(crate) fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Gives the backend back.
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// Runs the forward sweep: every action before the first reverse, taking checkpoints.
    ///
    /// # Errors
    /// [`Error::InvalidSchedule`] at the first action that breaks the schedule's rules;
    /// whatever the backend reports ([`Error::OutOfMemory`] when the GPU backend can neither
    /// allocate nor spill).
    pub fn apply_forward(&mut self) -> Result<()> {
        if self.forward_done {
            return Ok(());
        }
        let start = Instant::now();
        self.live = Some(self.backend.initial()?);
        loop {
            self.fill_window();
            match self.window.upcoming().first() {
                None | Some(Action::Reverse { .. } | Action::End) => break,
                Some(_) => {}
            }
            let Some(action) = self.window.pop_front() else {
                break;
            };
            self.execute(action)?;
        }
        self.backend.sync()?;
        self.forward_done = true;
        self.stats.forward_seconds = start.elapsed().as_secs_f64();
        Ok(())
    }

    /// Runs the forward sweep ([`apply_forward`](Self::apply_forward)) and then records the
    /// last step too, whose output a state-only adjoint otherwise first records in the reverse
    /// sweep ([`Operator::adjoint_needs_next`](super::Operator::adjoint_needs_next) false):
    /// for a caller that needs every output before the reverse, as a differentiable
    /// operator's forward does. The step's state is dropped; the reverse sweep then does not
    /// record it again, so a state-only adjoint's forward count is unchanged (with
    /// [`RevolverOptions::recompute_in_reverse`], or an adjoint that needs the next state,
    /// the reverse recomputes that step anyway: one step more).
    ///
    /// # Errors
    /// As [`apply_forward`](Self::apply_forward); [`Error::InvalidArgument`] when the forward
    /// sweep did not end on the last state, ready to reverse the last step (an online run).
    pub fn apply_forward_recording_all(&mut self) -> Result<()> {
        self.apply_forward()?;
        let steps = self.schedule.steps();
        if self.recorded >= steps {
            return Ok(());
        }
        self.fill_window();
        let last = steps - 1;
        match self.window.upcoming().first() {
            Some(&Action::Reverse { step }) if step == last && self.recorded == last => {}
            next => {
                return Err(Error::InvalidArgument {
                    name: "schedule",
                    reason: format!(
                        "its forward sweep ends before {next:?} with {} of {steps} steps \
                         recorded: only a sweep that ends on state {last} can record the rest",
                        self.recorded
                    ),
                });
            }
        }
        let action = Action::Advance {
            from: last,
            to: steps,
        };
        let state = self.live(action, last)?;
        drop(self.step(&state, last)?);
        self.after_step()?;
        self.backend.sync()
    }

    /// Runs the forward sweep of an online schedule ([`OnlineSchedule`]) to an end found on
    /// the way: before step `k` (every `every` steps, `k ≥ 1`), the work encoded so far runs
    /// and `stop(backend, state k, k)` says whether step `k` is the last. Without a stop, the
    /// schedule's most steps end the run, and [`ForwardEnd::stopped`] says so. The schedule
    /// decides before each step whether state `k` is kept ([`Online`]). Then
    /// [`apply_reverse`](Self::apply_reverse) reverses the steps that ran.
    ///
    /// Each check drains the queue once (the stop condition reads the state), so `every`
    /// trades the overshoot past the moment the condition holds against that wait.
    ///
    /// [`OnlineSchedule`]: crate::schedule::OnlineSchedule
    /// [`Online`]: crate::schedule::Online
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the schedule is not online or the forward sweep has
    /// run; whatever `stop` returns; as [`apply_forward`](Self::apply_forward).
    pub fn apply_forward_until(
        &mut self,
        every: u64,
        mut stop: impl FnMut(&B, &B::State, u64) -> Result<bool>,
    ) -> Result<ForwardEnd> {
        if self.forward_done {
            return Err(Error::InvalidArgument {
                name: "revolver",
                reason: "its forward sweep has run already".into(),
            });
        }
        if self.schedule.online().is_none() {
            return Err(Error::InvalidArgument {
                name: "schedule",
                reason: "apply_forward_until needs an online schedule (schedule::OnlineSchedule); \
                         a schedule that knows its steps runs with apply_forward"
                    .into(),
            });
        }
        let start = Instant::now();
        let max = self.schedule.steps();
        let every = every.max(1);
        self.live = Some(self.backend.initial()?);
        let mut k = 0u64;
        let stopped = loop {
            if k + 1 >= max {
                break false;
            }
            if k > 0 && k.is_multiple_of(every) {
                self.backend.sync()?;
                let state = self.live(Action::Advance { from: k, to: k + 1 }, k)?;
                if stop(&self.backend, &state, k)? {
                    break true;
                }
            }
            if let Some(control) = self.schedule.online() {
                control.grant_step();
            }
            loop {
                self.fill_window();
                let Some(action) = self.window.pop_front() else {
                    break;
                };
                self.execute(action)?;
            }
            k += 1;
        };
        let steps = self.schedule.online().map_or(max, |c| c.end());
        self.checker.end_at(steps)?;
        if !stopped {
            log::warn!("the stop condition never held: the run ends at its most steps, {steps}");
        }
        self.backend.sync()?;
        self.forward_done = true;
        self.stats.forward_seconds = start.elapsed().as_secs_f64();
        Ok(ForwardEnd { steps, stopped })
    }

    /// Runs the reverse sweep (after [`apply_forward`](Self::apply_forward), which it runs
    /// first if needed): every remaining action, each reverse recomputing its step where the
    /// adjoint needs it (or the step was never recorded) and then running its adjoint.
    ///
    /// # Errors
    /// As [`apply_forward`](Self::apply_forward); [`Error::InvalidSchedule`] when the schedule
    /// stops without its `End`.
    pub fn apply_reverse(&mut self) -> Result<RunStats> {
        self.apply_forward()?;
        let start = Instant::now();
        loop {
            self.fill_window();
            let Some(action) = self.window.pop_front() else {
                break;
            };
            self.execute(action)?;
        }
        self.checker.finish()?;
        self.backend.sync()?;
        self.stats.reverse_seconds = start.elapsed().as_secs_f64();
        Ok(self.stats())
    }

    /// Reads the schedule until `lookahead` actions wait beyond the next one.
    fn fill_window(&mut self) {
        while self.window.len() <= self.lookahead {
            match self.schedule.next() {
                Some(action) => self.window.push(action),
                None => break,
            }
        }
    }

    /// The live state (state `step`), which the checker has just confirmed is there.
    fn live(&self, action: Action, step: u64) -> Result<B::State> {
        self.live.clone().ok_or_else(|| Error::InvalidSchedule {
            index: self.checker.stats().actions.saturating_sub(1),
            action: Some(action),
            violation: Violation::NotLive {
                needed: step,
                live: None,
            },
        })
    }

    fn execute(&mut self, action: Action) -> Result<()> {
        // Checked before anything runs: a wrong action never reaches the backend.
        self.checker.check(action)?;
        self.backend.prefetch(self.window.upcoming())?;
        match action {
            Action::Advance { from, to } => {
                // The live state stays held until the advance ends, as a checkpoint might.
                let mut state = self.live(action, from)?;
                for k in from..to {
                    state = self.step(&state, k)?;
                    self.stats.advances += 1;
                    self.after_step()?;
                }
                self.live = Some(state);
            }
            Action::Save { step, slot } => {
                let state = self.live(action, step)?;
                self.backend.save(slot, step, &state)?;
                self.stats.saves += 1;
                self.account_checkpoints();
            }
            Action::Restore { step, slot } => {
                self.reversed = None;
                self.live = Some(self.backend.restore(slot, step)?);
                self.stats.restores += 1;
            }
            Action::Join { step, slot } => {
                // The checker confirmed state `step + 1` is live or just reversed, and what
                // the slot holds.
                let above = match (self.live.take(), self.reversed.take()) {
                    (Some(live), _) | (None, Some(live)) => live,
                    (None, None) => {
                        return Err(Error::InvalidSchedule {
                            index: self.checker.stats().actions.saturating_sub(1),
                            action: Some(action),
                            violation: Violation::NotLive {
                                needed: step + 1,
                                live: None,
                            },
                        });
                    }
                };
                let held = self.checker.held_in(slot).unwrap_or(0);
                self.live = Some(self.backend.join(&above, slot, held, step)?);
                self.stats.joins += 1;
            }
            Action::Free { step, slot } => {
                self.backend.free(slot, step)?;
                self.stats.frees += 1;
            }
            Action::Reverse { step } => {
                let state = self.live(action, step)?;
                let record = step >= self.recorded;
                self.recorded = self.recorded.max(step + 1);
                // A schedule that joins keeps the reversed state's levels (an adjoint reads
                // them) for a join below it; otherwise what nothing else holds can be reused.
                self.reversed = self.joins.then(|| state.clone());
                self.stats.forward_steps += self.backend.reverse(state, step, record)?;
                self.stats.reverse_steps += 1;
                self.live = None;
                self.after_step()?;
            }
            // Nothing joins after the end: the reversed state's levels go back to the pool.
            Action::End => self.reversed = None,
        }
        Ok(())
    }

    /// One forward step from `state` (state `k`).
    fn step(&mut self, state: &B::State, k: u64) -> Result<B::State> {
        let record = k >= self.recorded;
        self.recorded = self.recorded.max(k + 1);
        let next = self.backend.forward(state, k, record)?;
        self.stats.forward_steps += 1;
        Ok(next)
    }

    fn account_checkpoints(&mut self) {
        self.stats.peak_slots = self.stats.peak_slots.max(self.checker.held());
        let bytes = self.backend.held_bytes();
        let fastest = bytes.first().copied().unwrap_or(0);
        let slower: u64 = bytes.iter().skip(1).sum();
        self.stats.peak_checkpoint_bytes = self.stats.peak_checkpoint_bytes.max(fastest);
        self.stats.peak_slower_bytes = self.stats.peak_slower_bytes.max(slower);
        if self.peaks.len() < bytes.len() {
            self.peaks.resize(bytes.len(), 0);
        }
        for (peak, held) in self.peaks.iter_mut().zip(bytes) {
            *peak = (*peak).max(held);
        }
    }

    fn after_step(&mut self) -> Result<()> {
        self.backend.step_done()?;
        if let Some(report) = self.progress.as_mut() {
            let done = self.stats.forward_steps + self.stats.reverse_steps;
            if !report(Progress {
                done,
                total: self.progress_total,
            }) {
                return Err(Error::Interrupted { done });
            }
        }
        Ok(())
    }
}

/// The actions read ahead, oldest first, in one contiguous slice: a vector read from `head`,
/// compacted once the consumed part is at least as long as the rest (amortised O(1) an action,
/// where a ring buffer would have to be made contiguous for every look).
#[derive(Default)]
struct Window {
    actions: Vec<Action>,
    head: usize,
}

impl Window {
    fn len(&self) -> usize {
        self.actions.len() - self.head
    }

    fn push(&mut self, action: Action) {
        if self.head >= 64 && 2 * self.head >= self.actions.len() {
            self.actions.drain(..self.head);
            self.head = 0;
        }
        self.actions.push(action);
    }

    fn pop_front(&mut self) -> Option<Action> {
        let action = self.actions.get(self.head).copied()?;
        self.head += 1;
        Some(action)
    }

    /// The actions not yet run.
    fn upcoming(&self) -> &[Action] {
        &self.actions[self.head..]
    }
}

/// Forward steps of a planned run: with a state-only adjoint a reverse recomputes only a step
/// never recorded, the last one.
fn planned_forward(plan: &ScheduleStats, adjoint_needs_next: bool) -> u64 {
    if adjoint_needs_next {
        plan.total_forward
    } else {
        plan.state_adjoint_total_forward()
    }
}

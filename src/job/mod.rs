//! One gradient job: the survey, its records and the whole run policy, validated once, run on
//! one device, several, or the ranks of an MPI job, and summarised as one [`Summary`]. The
//! main job (`examples/acoustic_adjoint`) and the Python package are thin shells over it: an
//! option of either is a field of [`RunPolicy`] or an argument here, with the same name.
//!
//! ```no_run
//! use gpurevolve::acoustic::{Boundary, BoundaryKind, Model, TimeAxis};
//! use gpurevolve::job::{GradientJob, RunContext, RunPolicy, survey};
//! use gpurevolve::gpu::Gpu;
//! let model = Model::constant(&[100, 50], 10.0, 10, 2000.0)?;
//! let time = TimeAxis::new(&model, 8, 500, None)?;
//! let boundary = Boundary::new(BoundaryKind::Cpml, 2000.0)?;
//! let receivers: Vec<Vec<f64>> = (0..100).map(|x| vec![x as f64 * 10.0, 20.0]).collect();
//! let shots = survey(&model, &[vec![495.0, 20.0]], &receivers, 15.0, time, 8, boundary)?;
//! let observed = vec![vec![0.0; 500 * 100]]; // [shot][nt × receivers], from the field
//! let policy = RunPolicy { snaps: Some(20), ..RunPolicy::default() };
//! let job = GradientJob::new(shots, observed, policy)?;
//! let gpus = [Gpu::new()?];
//! let plan = job.plan(&gpus[0])?;
//! let result = job.run(&plan, &gpus, None, |_, _| {})?;
//! let summary = job.summary(&plan, &result, RunContext::of_devices(&gpus))?;
//! println!("{}", summary.to_json());
//! # Ok::<(), gpurevolve::Error>(())
//! ```

pub mod batching;
mod modelled;
mod policy;
mod summary;
pub mod tape;

pub use batching::{BatchOption, StepCost};
pub use modelled::{ModelledCost, modelled_cost};
pub use policy::{Batch, Placement, RunPolicy};
pub use summary::{GRADIENT_UNITS, ShotTraffic, Summary, to_json};
pub use tape::{Tape, TapeGradient, TapeInfo};

use crate::acoustic::{AcousticOperator, Boundary, Geometry, Model, Problem, TimeAxis};
use crate::engine::{
    Operator, Progress, ProgressReply, RevolverOptions, calibrate, calibrate_disk,
};
use crate::error::{Error, Result};
use crate::fwi::{Checkpointing, FwiGradient, Journal, Plans, Survey, check_shots, summed};
use crate::gpu::{Gpu, GpuOptions};
use crate::schedule::{AnySchedule, OnlineRun, Planned, Schedule, Tier};

/// One problem per source position, every shot with all `receivers`: the survey a job runs.
/// The survey's host memory is checked on one shot before the others are made.
///
/// # Errors
/// As [`Geometry::new`] and [`Problem::with_boundary`]; [`Error::HostMemory`] when the shots
/// cannot fit.
pub fn survey(
    model: &Model,
    sources: &[Vec<f64>],
    receivers: &[Vec<f64>],
    f0: f64,
    time: TimeAxis,
    space_order: usize,
    boundary: Boundary,
) -> Result<Vec<Problem>> {
    let sources: Vec<Vec<Vec<f64>>> = sources.iter().map(|s| vec![s.clone()]).collect();
    let receivers = vec![receivers.to_vec(); sources.len()];
    survey_of_shots(model, &sources, &receivers, f0, time, space_order, boundary)
}

/// One problem per shot, shot `i` with the sources `sources[i]` (fired together) and the
/// receivers `receivers[i]`: the survey of a differentiable operator ([`Tape`]). The
/// survey's host memory is checked on one shot before the others are made.
///
/// # Errors
/// As [`survey`]; [`Error::InvalidArgument`] when the lists' lengths differ.
pub fn survey_of_shots(
    model: &Model,
    sources: &[Vec<Vec<f64>>],
    receivers: &[Vec<Vec<f64>>],
    f0: f64,
    time: TimeAxis,
    space_order: usize,
    boundary: Boundary,
) -> Result<Vec<Problem>> {
    if sources.len() != receivers.len() {
        return Err(Error::InvalidArgument {
            name: "receivers",
            reason: format!(
                "{} receiver sets for {} shots",
                receivers.len(),
                sources.len()
            ),
        });
    }
    let shot = |(sources, receivers): (&Vec<Vec<f64>>, &Vec<Vec<f64>>)| {
        let geometry = Geometry::new(model, sources.clone(), receivers.clone(), f0)?;
        Problem::with_boundary(model.clone(), geometry, time, space_order, boundary)
    };
    let first = sources.first().ok_or_else(|| Error::InvalidArgument {
        name: "sources",
        reason: "at least one source (one shot) is needed".into(),
    })?;
    shot((first, &receivers[0]))?.check_survey(sources.len(), 1)?;
    sources.iter().zip(receivers).map(shot).collect()
}

/// The devices `spec` names: `None`, the best adapter; `"all"`, every hardware adapter (or
/// the software one where there is none); else indices into that list, such as `"0,2"` (an
/// index twice opens two devices on one adapter). `software` asks for the software adapter.
///
/// # Errors
/// [`Error::InvalidArgument`] for a list that does not parse; as [`Gpu::on_adapter`].
pub fn open_devices(spec: Option<&str>, software: bool) -> Result<Vec<Gpu>> {
    let options = GpuOptions {
        force_fallback_adapter: software,
        ..GpuOptions::default()
    };
    match spec.map(str::trim) {
        None => Ok(vec![Gpu::with_options(&options)?]),
        Some("all") => Gpu::all_devices(&options),
        Some(list) => list
            .split(',')
            .map(|i| {
                let index: usize = i.trim().parse().map_err(|_| Error::InvalidArgument {
                    name: "devices",
                    reason: format!("give `all` or adapter indices such as 0,2; got `{list}`"),
                })?;
                Gpu::on_adapter(index, &options)
            })
            .collect(),
    }
}

/// The costs that [`RunPolicy::costs`] takes, measured on `gpu` for the survey `shots` under
/// `policy`: a batch of the policy's size, at most the survey's ([`Batch::Auto`] measures
/// one shot), its checkpoint format and its disk tier (see
/// [`engine::measure_costs`](crate::engine::measure_costs)). Placement by cost with a lossy
/// format needs its costs given: measure them once, then give them, and every run plans the
/// same schedule, so gives the same bits.
///
/// # Errors
/// [`Error::InvalidArgument`] for no shots, or for a policy that placement by cost with
/// these costs would refuse (store_all, until_quiet, a lossy format with [`Batch::Auto`]:
/// see [`RunPolicy::check`]); as [`engine::measure_costs`](crate::engine::measure_costs)
/// and [`AcousticOperator::batch`].
pub fn measure_costs(gpu: &Gpu, shots: &[Problem], policy: &RunPolicy) -> Result<Vec<f64>> {
    let shot = shots.first().ok_or_else(|| Error::InvalidArgument {
        name: "shots",
        reason: "no shot to measure the costs of".into(),
    })?;
    // The run the costs are for: placement by cost, given costs of the form measured here.
    RunPolicy {
        placement: Placement::Optimal,
        costs: Some(vec![1.0; policy.cost_names().len()]),
        ..policy.clone()
    }
    .check()
    .map_err(|e| match e {
        Error::InvalidArgument { name, reason } => Error::InvalidArgument {
            name,
            reason: format!("{reason} (the costs measured are placement by cost's)"),
        },
        other => other,
    })?;
    let batch = match policy.batch {
        Batch::Shots(b) => b.clamp(1, shots.len()),
        Batch::Auto => 1,
    };
    // Its records are never used: the calibration steps forward and copies states.
    let zeros = vec![0.0; shot.time().nt * shot.geometry().receivers.len()];
    let mut operator = AcousticOperator::batch(gpu, &vec![shot; batch], &vec![&zeros[..]; batch])?;
    crate::engine::measure_costs(
        gpu,
        &mut operator,
        5,
        policy.checkpoint_format,
        policy.disk.as_deref(),
    )
}

/// A survey's gradient job: its shots, their observed records and the policy, checked.
pub struct GradientJob {
    shots: Vec<Problem>,
    observed: Vec<Vec<f64>>,
    policy: RunPolicy,
}

/// What a job plans before its first step: the checkpointing the policy resolved to, its
/// schedule, and what that will do.
#[derive(Clone, Debug)]
pub struct JobPlan {
    /// The resolved checkpointing.
    pub checkpointing: Checkpointing,
    /// Its schedule for the survey's step count (for a run until quiet, the longest run's).
    pub schedule: AnySchedule,
    /// What the schedule does; for a run until quiet, a run of every step.
    pub planned: Planned,
    /// Bytes of one state: of a batch's shots together.
    pub state_bytes: u64,
    /// Whether every reverse recomputes its step (`schedule` classic).
    pub recomputes: bool,
    /// Shots stepped together in each dispatch: the policy's, or the one
    /// [`Batch::Auto`] chose; at most the survey's shots.
    pub batch: usize,
    /// The step cost [`Batch::Auto`] measured, and the batch sizes it weighed with their
    /// modelled time per shot (none for a given batch size).
    pub step_cost: Option<StepCost>,
    /// The batch sizes weighed.
    pub batch_options: Vec<BatchOption>,
}

impl JobPlan {
    /// Forward steps per shot as planned: the acoustic adjoint needs only its state, so a
    /// reverse recomputes nothing and the last step runs once to record, unless the run
    /// recomputes in reverse on purpose.
    pub fn forward_steps(&self) -> u64 {
        if self.recomputes {
            self.planned.stats.total_forward
        } else {
            self.planned.stats.state_adjoint_total_forward()
        }
    }

    /// Step evaluations per shot (forward and reverse): what progress counts to.
    pub fn evaluations_per_shot(&self) -> u64 {
        self.forward_steps() + self.planned.stats.reverse_steps
    }
}

/// Where and how a job ran, for its [`Summary`]: what the job itself cannot know.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RunContext {
    /// The devices' adapter names (of rank 0's devices under MPI).
    pub devices: Vec<String>,
    /// MPI ranks (1 without MPI).
    pub ranks: usize,
    /// Shots read back from a journal, not run.
    pub resumed_shots: Vec<usize>,
    /// Seconds of the caller's own phases (`model`, `output`...), besides the sweeps.
    pub timings: Vec<(String, f64)>,
    /// The seed of a built-in model.
    pub seed: Option<u64>,
}

impl RunContext {
    /// One process on `gpus`.
    pub fn of_devices(gpus: &[Gpu]) -> Self {
        RunContext {
            devices: gpus.iter().map(|g| g.adapter_info().name.clone()).collect(),
            ranks: 1,
            ..RunContext::default()
        }
    }
}

impl GradientJob {
    /// A job of `shots` (problems on one grid, sharing a time axis) against `observed`
    /// records, one `[nt][receivers]` vector per shot. Under MPI a rank may leave the
    /// records of other ranks' shots empty.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no shots, a record of the wrong length or not finite,
    /// shots on different grids or time axes, and as [`RunPolicy::check`].
    pub fn new(shots: Vec<Problem>, observed: Vec<Vec<f64>>, policy: RunPolicy) -> Result<Self> {
        policy.check()?;
        let first = check_shots(&shots, &observed)?;
        for (i, (shot, record)) in shots.iter().zip(&observed).enumerate() {
            if shot.layout() != first.layout() || shot.time() != first.time() {
                return Err(Error::InvalidArgument {
                    name: "shots",
                    reason: format!("shot {i} is on another grid or time axis than shot 0"),
                });
            }
            let want = shot.time().nt * shot.geometry().receivers.len();
            if !record.is_empty() && record.len() != want {
                return Err(Error::InvalidArgument {
                    name: "observed",
                    reason: format!(
                        "shot {i}'s record holds {} samples; its nt × receivers is {want}",
                        record.len()
                    ),
                });
            }
            if let Some(k) = record.iter().position(|x| !x.is_finite()) {
                return Err(Error::InvalidArgument {
                    name: "observed",
                    reason: format!("shot {i}'s sample {k} is not finite"),
                });
            }
        }
        Ok(GradientJob {
            shots,
            observed,
            policy,
        })
    }

    /// The shots.
    pub fn shots(&self) -> &[Problem] {
        &self.shots
    }

    /// The observed records.
    pub fn observed(&self) -> &[Vec<f64>] {
        &self.observed
    }

    /// The policy.
    pub fn policy(&self) -> &RunPolicy {
        &self.policy
    }

    /// Takes the observed records back (the command line writes them out).
    pub fn into_observed(self) -> Vec<Vec<f64>> {
        self.observed
    }

    /// Steps per shot.
    pub fn steps(&self) -> u64 {
        self.shots[0].time().steps() as u64
    }

    /// Plans the checkpointing on `gpu`: the state's size from the operator, and, when the
    /// policy places by cost without given costs, a short calibration of the step and
    /// transfer costs there (logged).
    ///
    /// # Errors
    /// As [`RunPolicy::checkpointing`], [`Checkpointing::schedule`] and the calibrations.
    pub fn plan(&self, gpu: &Gpu) -> Result<JobPlan> {
        let first = &self.shots[0];
        let steps = self.steps();
        let (batch, step_cost, batch_options) = self.choose_batch(gpu)?;
        let policy = self.policy.for_batch(steps, batch)?;
        // The operator of a batch says how large a state is and serves the calibration; its
        // records are never used (zeros: a rank without records plans too).
        let zeros = vec![0.0; first.time().nt * first.geometry().receivers.len()];
        let probe = std::cell::RefCell::new(AcousticOperator::batch(
            gpu,
            &vec![first; batch],
            &vec![&zeros[..]; batch],
        )?);
        let state_bytes = {
            let p = probe.borrow();
            p.levels() as u64 * p.level_bytes()
        };
        let checkpointing = policy.resolve(
            steps,
            (state_bytes, batch),
            || {
                log::info!("measuring step and transfer costs for placement by cost");
                calibrate(gpu, &mut *probe.borrow_mut(), 5)
            },
            || {
                log::info!("measuring the disk tier's costs for placement by cost");
                let dir = self.policy.disk.as_deref().ok_or(Error::InvalidArgument {
                    name: "disk",
                    reason: "no directory for the disk tier".into(),
                })?;
                calibrate_disk(gpu, &*probe.borrow(), dir, 3)
            },
        )?;
        drop(probe);
        let schedule = checkpointing.schedule(steps)?;
        let planned = match checkpointing {
            // An online run knows no plan: that of a run of every step stands in.
            Checkpointing::UntilQuiet { snaps, .. } => OnlineRun::new(steps, snaps)?.planned()?,
            _ => schedule.planned()?,
        }
        .ok_or_else(|| Error::InvalidArgument {
            name: "schedule",
            reason: "the schedule does not plan itself".into(),
        })?;
        Ok(JobPlan {
            checkpointing,
            schedule,
            planned,
            state_bytes,
            recomputes: self.policy.recomputes(),
            batch,
            step_cost,
            batch_options,
        })
    }

    /// The batch size: the policy's (at most the survey's shots), or for [`Batch::Auto`] the
    /// size of least modelled time per shot ([`batching`]), with the step cost measured and
    /// the sizes weighed.
    fn choose_batch(&self, gpu: &Gpu) -> Result<(usize, Option<StepCost>, Vec<BatchOption>)> {
        let shots = self.shots.len();
        if let Batch::Shots(b) = self.policy.batch {
            return Ok((b.clamp(1, shots), None, Vec::new()));
        }
        let first = &self.shots[0];
        let steps = self.steps();
        let largest = batching::largest_batch(gpu, first).min(shots);
        if largest <= 1 {
            return Ok((1, None, Vec::new()));
        }
        // Measured at up to 16 shots: the line through two points reaches the rest.
        let cost = batching::step_cost(gpu, first, largest.min(16), 16)?;
        let mut options = Vec::new();
        for batch in batching::candidates(shots, largest) {
            let Some(forward_steps) = self.forward_steps_of_batch(steps, batch)? else {
                continue;
            };
            options.push(BatchOption {
                batch,
                forward_steps,
                seconds_per_shot: cost.seconds_per_shot(shots, batch, forward_steps, steps),
            });
        }
        let chosen = batching::best(&options).map_or(1, |o| o.batch);
        for o in &options {
            log::info!(
                "batch {:>4}: {:>7} forward steps a batch, modelled {:.3e} s a shot{}",
                o.batch,
                o.forward_steps,
                o.seconds_per_shot,
                if o.batch == chosen { "  (chosen)" } else { "" }
            );
        }
        Ok((chosen, Some(cost), options))
    }

    /// Forward steps a batch of `batch` shots runs in its share of the memory, as planned
    /// (by use: a placement by cost moves slots between tiers, not the steps' count much);
    /// `None` when the memory holds no snapshot of the batch.
    fn forward_steps_of_batch(&self, steps: u64, batch: usize) -> Result<Option<u64>> {
        let policy = match self.policy.for_batch(steps, batch) {
            Ok(policy) => RunPolicy {
                placement: Placement::Multistage,
                costs: None,
                ..policy
            },
            Err(_) => return Ok(None),
        };
        let no_costs = || Error::InvalidArgument {
            name: "placement",
            reason: "placement by use measures no costs".into(),
        };
        // A batch's state, two levels of the batch's shots: the encoded size plans the memory.
        let state_bytes = 2 * self.shots[0].level_bytes() * batch as u64;
        let checkpointing = policy.resolve(
            steps,
            (state_bytes, batch),
            || Err(no_costs()),
            || Err(no_costs()),
        )?;
        let planned = match checkpointing {
            Checkpointing::UntilQuiet { snaps, .. } => OnlineRun::new(steps, snaps)?.planned()?,
            ref c => c.schedule(steps)?.planned()?,
        };
        Ok(planned.map(|p| {
            if policy.recomputes() {
                p.stats.total_forward
            } else {
                p.stats.state_adjoint_total_forward()
            }
        }))
    }

    /// The engine's options of this policy.
    fn options(&self, plan: &JobPlan) -> RevolverOptions {
        RevolverOptions {
            device_budget: self.policy.device_memory,
            host_budget: self.policy.host_memory,
            disk: self.policy.disk.clone(),
            disk_budget: self.policy.disk_memory,
            recompute_in_reverse: plan.recomputes,
            checkpoint_format: self.policy.checkpoint_format,
            ..RevolverOptions::default()
        }
    }

    fn survey(&self, plan: &JobPlan) -> Survey<'_> {
        Survey {
            shots: &self.shots,
            observed: &self.observed,
            plans: Plans::planned(
                plan.checkpointing.clone(),
                self.steps(),
                plan.schedule.clone(),
            ),
            options: self.options(plan),
            batch: plan.batch,
        }
    }

    /// A fingerprint of this job on `gpus` under `plan`, for its [`Journal`]. Exact
    /// checkpoints give the same bits under any schedule, so the plan is not part of it; a
    /// lossy [`CheckpointFormat`](crate::compression::CheckpointFormat)'s bits depend on which
    /// states are restored, so its format and schedule are (a journal of another format or
    /// memory is not resumed).
    pub fn fingerprint(&self, plan: &JobPlan, gpus: &[Gpu]) -> u64 {
        let exact =
            Journal::fingerprint(gpus, &self.shots, &self.observed, self.policy.until_quiet);
        let format = self.policy.checkpoint_format;
        if format.is_exact() {
            return exact;
        }
        // The planned counts too: the same checkpointing planned another way (with joins, or
        // by a later version) restores other states.
        let stats = &plan.planned.stats;
        let plan = format!(
            "{format} {:?} {} advances {} saves {} joins {}",
            plan.checkpointing, plan.recomputes, stats.advances, stats.saves, stats.joins
        );
        xxhash_rust::xxh3::xxh3_64_with_seed(plan.as_bytes(), exact)
    }

    /// Runs every shot over `gpus` (one worker each), summed in shot order: the same bits
    /// whatever the devices. With a `journal`, each shot is recorded as it ends and the shots
    /// it holds are read back. `progress(shot, p)` is called after every step; a `Break`
    /// stops the run with [`Error::Interrupted`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `observed` for a shot without a record; as
    /// [`gradient_on_devices_journaled`](crate::fwi::gradient_on_devices_journaled).
    pub fn run<R: ProgressReply>(
        &self,
        plan: &JobPlan,
        gpus: &[Gpu],
        journal: Option<&Journal>,
        progress: impl Fn(usize, Progress) -> R + Sync,
    ) -> Result<FwiGradient> {
        // Only the ranks of an MPI job leave records empty: those of other ranks' shots.
        if let Some(i) = self.observed.iter().position(Vec::is_empty) {
            return Err(Error::InvalidArgument {
                name: "observed",
                reason: format!(
                    "shot {i} has no record; one process runs every shot, so each needs one"
                ),
            });
        }
        summed(gpus, &self.survey(plan), journal, progress)
    }

    /// As [`run`](Self::run), with the shots spread over the ranks of `world`
    /// ([`shots_of_rank`](crate::fwi::mpi::shots_of_rank)); each rank keeps its own
    /// `journal`. Rank 0 gets the total, the same bits as one process; the others `None`.
    ///
    /// # Errors
    /// As [`gradient_over_ranks_journaled`](crate::fwi::mpi::gradient_over_ranks_journaled).
    #[cfg(feature = "mpi")]
    pub fn run_over_ranks<C: mpi::traits::Communicator, R: ProgressReply>(
        &self,
        world: &C,
        plan: &JobPlan,
        gpus: &[Gpu],
        journal: Option<&Journal>,
        progress: impl Fn(usize, Progress) -> R + Sync,
    ) -> Result<Option<FwiGradient>> {
        crate::fwi::mpi::over_ranks(world, gpus, &self.survey(plan), journal, progress)
    }

    /// The sweep of shot 0 as it ran: the plan's schedule, or for a run until quiet, the
    /// online schedule replayed for the steps it ran.
    ///
    /// # Errors
    /// As [`OnlineRun::new`].
    pub fn shot_zero_schedule(
        &self,
        plan: &JobPlan,
        result: &FwiGradient,
    ) -> Result<Box<dyn Schedule>> {
        Ok(match plan.checkpointing {
            Checkpointing::UntilQuiet { snaps, .. } => {
                let steps = result.shots.first().map_or(1, |s| s.reverse_steps);
                Box::new(OnlineRun::new(steps, snaps)?)
            }
            _ => Box::new(plan.schedule.clone()),
        })
    }

    /// The summary of `result`, a run of this job under `plan`.
    ///
    /// # Errors
    /// None at present (a comparison that cannot be made is left out of
    /// [`Summary::modelled_cost`]); a `Result` so that a summary may check what it reads.
    pub fn summary(
        &self,
        plan: &JobPlan,
        result: &FwiGradient,
        context: RunContext,
    ) -> Result<Summary> {
        let first = &self.shots[0];
        let model = first.model();
        let boundary = first.boundary();
        let stats = &result.shots;
        let each = |f: fn(&crate::engine::RunStats) -> u64| stats.iter().map(f).collect();
        let sum = |f: fn(&crate::engine::RunStats) -> u64| stats.iter().map(f).sum::<u64>();
        // A shot's share of its batch's counts, which every shot of the batch carries: summed
        // over the shots, each batch counts once.
        let share = |s: &crate::engine::RunStats, x: f64| x / s.batch.max(1) as f64;
        let shared = |f: fn(&crate::engine::RunStats) -> f64| {
            stats.iter().map(|s| share(s, f(s))).sum::<f64>()
        };
        let shared_bytes = |f: fn(&crate::engine::RunStats) -> u64| {
            shared_sum(stats.iter().map(|s| share(s, f(s) as f64)))
        };
        let ranks = context.ranks.max(1);
        let mut rank_seconds = vec![0.0; ranks];
        for (i, s) in stats.iter().enumerate() {
            rank_seconds[i % ranks] += share(s, s.forward_seconds + s.reverse_seconds);
        }
        let sweep_seconds = shared(|s| s.forward_seconds + s.reverse_seconds);
        let shot_steps = sum(|s| s.forward_steps + s.reverse_steps).max(1) as f64;
        let modelled_seconds_per_shot = plan
            .batch_options
            .iter()
            .find(|o| o.batch == plan.batch)
            .map(|o| o.seconds_per_shot);
        let memory = plan.schedule.memory(plan.recomputes);
        let recompute_factor = if self.policy.until_quiet.is_some() {
            sum(|s| s.forward_steps) as f64 / sum(|s| s.reverse_steps).max(1) as f64
        } else {
            plan.forward_steps() as f64 / plan.planned.stats.steps.max(1) as f64
        };
        // Shot 0's placement as its run ended: the plan's, with any slot the GPU could not hold.
        let tiers = result.tiers.first().cloned().unwrap_or_default();
        let modelled = modelled_cost(
            plan.checkpointing.clone(),
            plan.schedule.clone(),
            &tiers,
            plan.state_bytes,
            self.policy.host_memory,
        );
        let mut timings: std::collections::BTreeMap<String, f64> =
            context.timings.into_iter().collect();
        timings.insert("forward sweeps".into(), shared(|s| s.forward_seconds));
        timings.insert("reverse sweeps".into(), shared(|s| s.reverse_seconds));
        Ok(Summary {
            adapter: context.devices.join(" + "),
            dimensions: model.dim(),
            shape: model.shape().to_vec(),
            spacing: model.spacing(),
            nbl: model.nbl(),
            boundary: boundary.kind().name().into(),
            boundary_velocity: boundary.reference_velocity(),
            space_order: first.space_order(),
            shots: self.shots.len(),
            batch: plan.batch,
            modelled_seconds_per_shot,
            measured_seconds_per_shot: sweep_seconds / stats.len().max(1) as f64,
            dispatches_per_shot_step: shared(|s| s.dispatches as f64) / shot_steps,
            receivers: first.geometry().receivers.len(),
            nt: first.time().nt,
            dt: first.time().dt,
            steps: plan.planned.stats.steps,
            schedule: memory.name.into(),
            snaps: memory.snaps,
            checkpoint_levels: memory.levels,
            checkpoint_format: self.policy.checkpoint_format.name().into(),
            checkpoint_bytes: memory.levels
                * policy::stored_level_bytes(
                    self.policy.checkpoint_format,
                    first.level_bytes() * plan.batch as u64,
                    plan.batch,
                ),
            peak_checkpoint_levels: plan.planned.stats.peak_levels,
            placement: self.policy.placement,
            device_slots: summary::slots_in(&result.tiers, Tier::DEVICE),
            host_slots: summary::slots_in(&result.tiers, Tier::HOST),
            disk_slots: summary::slots_in(&result.tiers, Tier::DISK),
            modelled_cost: modelled,
            ranks,
            resumed_shots: context.resumed_shots,
            rank_seconds,
            devices: context.devices,
            shot_devices: result.devices.clone(),
            shot_ranks: (0..stats.len()).map(|i| i % ranks).collect(),
            until_quiet: self.policy.until_quiet,
            forward_steps: each(|s| s.forward_steps),
            reverse_steps: each(|s| s.reverse_steps),
            saves: each(|s| s.saves),
            restores: each(|s| s.restores),
            levels_encoded: each(|s| s.levels_encoded),
            levels_decoded: each(|s| s.levels_decoded),
            recompute_factor,
            peak_checkpoint_bytes: stats
                .iter()
                .map(|s| s.peak_checkpoint_bytes)
                .max()
                .unwrap_or(0),
            bytes_copied: shared_bytes(|s| s.bytes_copied),
            spilled_bytes: shared_bytes(|s| s.total(|t| t.bytes_out)),
            tiers: ShotTraffic::of(stats),
            misfit: result.misfit,
            timings,
            gradient_units: GRADIENT_UNITS.into(),
            seed: context.seed,
        })
    }
}

/// A sum of shots' shares of their batches' byte counts, as bytes: whole batches add up to
/// whole numbers, up to rounding.
fn shared_sum(shares: impl Iterator<Item = f64>) -> u64 {
    shares.sum::<f64>().round() as u64
}

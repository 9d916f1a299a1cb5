//! The one-call helper: misfit and FWI gradient over several shots, each reversed with
//! checkpoints in GPU memory.
//!
//! ```no_run
//! use gpurevolve::acoustic::{Geometry, Model, Problem, TimeAxis};
//! use gpurevolve::fwi::{Checkpointing, gradient};
//! use gpurevolve::gpu::Gpu;
//! let start = Model::constant(&[100, 50], 10.0, 10, 2000.0)?;
//! let geometry = Geometry::new(&start, vec![vec![495.0, 20.0]], vec![vec![100.0, 20.0]], 15.0)?;
//! let time = TimeAxis::new(&start, 8, 500, None)?;
//! let shot = Problem::new(start, geometry, time, 8)?;
//! let observed = vec![0.0; 500]; // [nt][receivers], from the field or a true model
//! let gpu = Gpu::new()?;
//! let g = gradient(&gpu, &[shot], &[observed], Checkpointing::Snapshots(20), |_, _| {})?;
//! println!("J = {}, {} forward steps", g.misfit, g.shots[0].forward_steps);
//! # Ok::<(), gpurevolve::Error>(())
//! ```

mod journal;
#[cfg(feature = "mpi")]
pub mod mpi;
mod record;

pub use journal::Journal;
use record::ShotDone;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::acoustic::{AcousticOperator, Problem, Quiet};
use crate::engine::{Progress, ProgressReply, Revolver, RevolverOptions, RunStats};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::schedule::{
    AnySchedule, CostOptimal, LevelOptimal, OnlineSchedule, Revolve, StoreAll, Tier, TieredCosts,
    TieredLevels, TwoTier,
};

/// How each shot's forward states are kept.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Checkpointing {
    /// Revolve with this many snapshots (including the initial state's, which holds no memory:
    /// a shot starts at rest and the engine rebuilds it); the most used stay on the GPU, as
    /// many as the device budget holds, the rest in host memory
    /// ([`Multistage`](crate::schedule::Multistage)).
    Snapshots(u64),
    /// Every state kept: the reference.
    StoreAll,
    /// The fewest forward steps within this many time levels of checkpoint memory (two a
    /// snapshot, consecutive states sharing one, state 0 rebuilt rather than held):
    /// [`LevelOptimal::from_rest`] [with joins](LevelOptimal::with_joins) (a state rebuilt
    /// from the one just reversed and one held level), for the acoustic adjoint that needs only
    /// its state. Beyond
    /// what plans in about a second ([`MAX_PLAN_CELLS`](crate::schedule::MAX_PLAN_CELLS))
    /// Revolve's schedule in the same memory (half as many snapshots, and state 0's), with a
    /// warning in the log.
    Levels(u64),
    /// The least-cost schedule for `device` GPU and `host` host-memory snapshots under
    /// `costs` ([`TwoTier`]); measure the costs with
    /// [`calibrate`](crate::engine::calibrate).
    TwoTier {
        /// Snapshots on the GPU.
        device: usize,
        /// Snapshots in host memory.
        host: usize,
        /// Step and transfer costs ([`TieredCosts::two_tier`]).
        costs: TieredCosts,
    },
    /// The least-cost level schedule with `levels` GPU time levels and `host` host-memory
    /// snapshots under `costs` ([`TieredLevels::from_rest`]: consecutive states share levels on
    /// the GPU, host copies are whole states). Beyond what plans in a few seconds,
    /// [`Levels`](Self::Levels) in the same memory, placed by use, with a warning in the log.
    TieredLevels {
        /// Time levels on the GPU.
        levels: u64,
        /// Snapshots in host memory.
        host: u64,
        /// Step and transfer costs ([`TieredCosts::two_tier`]).
        costs: TieredCosts,
    },
    /// The least-cost schedule for `device` GPU, `host` host-memory and `disk` disk-tier
    /// snapshots under `costs` ([`CostOptimal`] over three tiers; the disk tier needs
    /// [`RevolverOptions::disk`]); measure the costs with
    /// [`calibrate`](crate::engine::calibrate) and
    /// [`calibrate_disk`](crate::engine::calibrate_disk).
    ThreeTier {
        /// Snapshots on the GPU.
        device: usize,
        /// Snapshots in host memory.
        host: usize,
        /// Snapshots on disk.
        disk: usize,
        /// Step and transfer costs: the device's, host memory's and the disk's, fastest first.
        costs: TieredCosts,
    },
    /// Each shot runs until its wavefield is quiet ([`Quiet`]: energy below `fraction` of
    /// its peak once the source has ended, checked every [`QUIET_EVERY`] steps) or for its
    /// `nt − 1` steps, whichever comes first, with online checkpointing in `snaps` slots
    /// ([`OnlineSchedule`]; state 0's holds nothing). Its misfit and gradient are those of the
    /// steps it ran: the samples after them count for nothing, and its traces are zero there.
    UntilQuiet {
        /// Slots, state 0's included.
        snaps: u64,
        /// Energy fraction of the peak at which a shot stops, in `(0, 1)`.
        fraction: f64,
    },
}

/// Steps between two checks of [`Checkpointing::UntilQuiet`]: each check waits for the GPU
/// once and reduces the wavefield, and a shot runs at most this many steps past the moment
/// it is quiet.
pub const QUIET_EVERY: u64 = 16;

impl Checkpointing {
    /// The energy fraction at which a shot stops, for [`Checkpointing::UntilQuiet`]; `None`
    /// for a run of every step.
    pub fn until_quiet(&self) -> Option<f64> {
        match self {
            Checkpointing::UntilQuiet { fraction, .. } => Some(*fraction),
            _ => None,
        }
    }

    /// The schedule for `steps` steps.
    ///
    /// # Errors
    /// As [`Revolve::new`], [`StoreAll::new`], [`LevelOptimal::new`] and [`TwoTier::new`].
    pub fn schedule(&self, steps: u64) -> Result<AnySchedule> {
        Ok(match *self {
            Checkpointing::Snapshots(s) => AnySchedule::Revolve(Revolve::new(steps, s)?),
            // With joins: the job's paths all run the GPU backend, whose states are level
            // buffers (a CPU Revolver refuses a joining schedule at construction).
            Checkpointing::Levels(levels) => match LevelOptimal::from_rest(steps, levels, 2) {
                Ok(plan) => AnySchedule::Levels(plan.with_joins()),
                Err(e @ Error::PlanTooLarge { .. }) => {
                    let snaps = (levels / 2 + 1).clamp(1, steps);
                    log::warn!("{e}: using Revolve with {snaps} snapshots instead");
                    AnySchedule::Revolve(Revolve::new(steps, snaps)?)
                }
                Err(e) => return Err(e),
            },
            Checkpointing::StoreAll => AnySchedule::StoreAll(StoreAll::new(steps)?),
            Checkpointing::ThreeTier {
                device,
                host,
                disk,
                ref costs,
            } => AnySchedule::CostOptimal(Box::new(CostOptimal::new(
                steps,
                &[device, host, disk],
                costs,
            )?)),
            Checkpointing::UntilQuiet { snaps, .. } => {
                AnySchedule::Online(Box::new(OnlineSchedule::new(steps, snaps)?))
            }
            Checkpointing::TwoTier {
                device,
                host,
                ref costs,
            } => AnySchedule::TwoTier(TwoTier::new(steps, device, host, costs)?),
            Checkpointing::TieredLevels {
                levels,
                host,
                ref costs,
            } => match TieredLevels::from_rest(steps, levels, host, 2, costs) {
                Ok(plan) => AnySchedule::TieredLevels(Box::new(plan)),
                Err(e @ Error::PlanTooLarge { .. }) => {
                    log::warn!("{e}: placing the level schedule by use instead");
                    return Checkpointing::Levels(levels + 2 * host).schedule(steps);
                }
                Err(e) => return Err(e),
            },
        })
    }
}

/// Which schedule keeps a shot's states within a memory of two-level snapshots: what the
/// main job's `--schedule` and the Python package's `schedule=` choose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ScheduleChoice {
    /// The fewest forward steps (the default): the memory counted in time levels that consecutive states
    /// share, for an adjoint that needs only its state ([`Checkpointing::Levels`]).
    #[default]
    Levels,
    /// Revolve's binomial schedule; state 0 is rebuilt, so it gets one snapshot more in the
    /// same memory.
    Revolve,
    /// Revolve as Revolve counts it: every reverse also recomputes its step (`n + p` forward
    /// steps), with pyrevolve's snapshot count. The same gradient bits.
    Classic,
}

impl ScheduleChoice {
    /// Every choice, in the order documented.
    pub const ALL: [ScheduleChoice; 3] = [Self::Levels, Self::Revolve, Self::Classic];

    /// Its name: `levels`, `revolve` or `classic`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Levels => "levels",
            Self::Revolve => "revolve",
            Self::Classic => "classic",
        }
    }

    /// Whether every reverse recomputes its step
    /// ([`RevolverOptions::recompute_in_reverse`]).
    pub fn recomputes(self) -> bool {
        self == Self::Classic
    }

    /// The checkpointing of `snaps` two-level snapshots of memory for `steps` steps.
    ///
    /// ```
    /// use gpurevolve::fwi::{Checkpointing, ScheduleChoice};
    /// assert_eq!(ScheduleChoice::Levels.checkpointing(20, 500), Checkpointing::Levels(40));
    /// assert_eq!(ScheduleChoice::Revolve.checkpointing(20, 500), Checkpointing::Snapshots(21));
    /// for choice in ScheduleChoice::ALL {
    ///     assert_eq!(choice.name().parse::<ScheduleChoice>()?, choice);
    /// }
    /// assert!("best".parse::<ScheduleChoice>().is_err());
    /// # Ok::<(), gpurevolve::Error>(())
    /// ```
    pub fn checkpointing(self, snaps: u64, steps: u64) -> Checkpointing {
        match self {
            Self::Levels => Checkpointing::Levels(2 * snaps),
            Self::Revolve => Checkpointing::Snapshots((snaps + 1).min(steps)),
            Self::Classic => Checkpointing::Snapshots(snaps),
        }
    }
}

impl std::str::FromStr for ScheduleChoice {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| Error::InvalidArgument {
                name: "schedule",
                reason: format!(
                    "unknown schedule {name:?}; use \"levels\", \"revolve\" or \"classic\""
                ),
            })
    }
}

/// The schedule of every shot, planned once: shots of one survey share their step count, and
/// a level plan can take about a second to make. A shot of another length is planned anew.
pub(crate) struct Plans {
    checkpointing: Checkpointing,
    steps: u64,
    first: AnySchedule,
}

impl Plans {
    fn new(checkpointing: Checkpointing, first: &Problem) -> Result<Self> {
        let steps = first.time().steps() as u64;
        Ok(Plans {
            first: checkpointing.schedule(steps)?,
            checkpointing,
            steps,
        })
    }

    /// Plans made already: `first` is `checkpointing`'s schedule for `steps` steps.
    pub(crate) fn planned(checkpointing: Checkpointing, steps: u64, first: AnySchedule) -> Self {
        Plans {
            checkpointing,
            steps,
            first,
        }
    }

    /// A fresh copy of the schedule for `shot` (a schedule is read once).
    pub(crate) fn for_shot(&self, shot: &Problem) -> Result<AnySchedule> {
        let steps = shot.time().steps() as u64;
        if steps == self.steps {
            Ok(self.first.clone())
        } else {
            self.checkpointing.schedule(steps)
        }
    }
}

/// What every path of a gradient runs: the shots, their records, their schedules and the
/// engine's options. The public functions and [`crate::job`] build one.
pub(crate) struct Survey<'a> {
    pub(crate) shots: &'a [Problem],
    /// One `[nt][receivers]` record per shot (a shot another MPI rank runs may have none).
    pub(crate) observed: &'a [Vec<f64>],
    pub(crate) plans: Plans,
    pub(crate) options: RevolverOptions,
    /// The most shots stepped together ([`AcousticOperator::batch`]): 1 runs each alone.
    pub(crate) batch: usize,
}

impl<'a> Survey<'a> {
    /// Checks the shots and plans their schedule.
    fn new(
        shots: &'a [Problem],
        observed: &'a [Vec<f64>],
        checkpointing: Checkpointing,
        options: RevolverOptions,
    ) -> Result<Self> {
        let first = check_shots(shots, observed)?;
        Ok(Survey {
            shots,
            observed,
            plans: Plans::new(checkpointing, first)?,
            options,
            batch: 1,
        })
    }

    /// The shots of `wanted` in batches, in order: each at most [`batch`](Self::batch)
    /// consecutive shots of `wanted` that [share their medium](Problem::shares_medium), as
    /// places in `wanted`.
    pub(crate) fn batches(&self, wanted: &[usize]) -> Vec<Vec<usize>> {
        let mut batches: Vec<Vec<usize>> = Vec::new();
        for (place, &shot) in wanted.iter().enumerate() {
            let joins = batches.last().is_some_and(|batch| {
                let first = batch.first().and_then(|&p| self.shots.get(wanted[p]));
                batch.len() < self.batch.max(1)
                    && first
                        .zip(self.shots.get(shot))
                        .is_some_and(|(f, s)| s.shares_medium(f))
            });
            match batches.last_mut() {
                Some(batch) if joins => batch.push(place),
                _ => batches.push(vec![place]),
            }
        }
        batches
    }
}

/// Misfit and gradient summed over shots.
#[derive(Clone, Debug)]
pub struct FwiGradient {
    /// `Σ_shots ½ Σ (d − d_obs)²`.
    pub misfit: f64,
    /// `∂J/∂m` on the padded grid, summed over shots in shot order
    /// ([`Problem::model_gradient`] gives that of the physical model).
    pub gradient: Vec<f64>,
    /// Each shot's run.
    pub shots: Vec<RunStats>,
    /// Each shot's predicted traces `[nt][receivers]`.
    pub traces: Vec<Vec<f64>>,
    /// Each shot's placement of checkpoint slots as the run ended: the planned one, with the
    /// slots moved to host memory when the GPU ran out of memory.
    pub tiers: Vec<Vec<Tier>>,
    /// The device each shot ran on: an index into the devices given to
    /// [`gradient_on_devices`] (0 for [`gradient`] and [`gradient_with`]).
    pub devices: Vec<usize>,
}

/// Misfit and gradient `∂J/∂m` of `shots` (problems on the same grid) against `observed`
/// traces (one `[nt][receivers]` vector per shot). `progress(shot, p)` is called after every
/// step; it returns `()`, or a [`ControlFlow`](std::ops::ControlFlow) whose `Break` stops the
/// run with [`Error::Interrupted`] ([`ProgressReply`]).
///
/// # Errors
/// [`Error::InvalidArgument`] for no shots, a count mismatch or shots on different grids; as
/// [`Revolver`] and [`AcousticOperator`] otherwise.
pub fn gradient<R: ProgressReply>(
    gpu: &Gpu,
    shots: &[Problem],
    observed: &[Vec<f64>],
    checkpointing: Checkpointing,
    progress: impl FnMut(usize, Progress) -> R,
) -> Result<FwiGradient> {
    gradient_with(
        gpu,
        shots,
        observed,
        checkpointing,
        RevolverOptions::default(),
        progress,
    )
}

/// As [`gradient`], with the engine's options: device and host budgets for checkpoints.
///
/// # Errors
/// As [`gradient`]; [`Error::CheckpointsDoNotFit`] when the budgets cannot hold the schedule.
pub fn gradient_with<R: ProgressReply>(
    gpu: &Gpu,
    shots: &[Problem],
    observed: &[Vec<f64>],
    checkpointing: Checkpointing,
    options: RevolverOptions,
    mut progress: impl FnMut(usize, Progress) -> R,
) -> Result<FwiGradient> {
    let survey = Survey::new(shots, observed, checkpointing, options)?;
    let mut total = empty_total(&shots[0], shots.len());
    for i in 0..shots.len() {
        for done in run_batch(gpu, &[i], &survey, &mut progress)? {
            add_shot(&mut total, done);
        }
    }
    Ok(total)
}

/// As [`gradient_with`], with the shots spread over several devices, one worker thread each,
/// taking the next shot from a shared queue. The per-shot gradients and misfits are summed
/// in shot order, as [`gradient_with`] sums them, so the result is bit for bit the same
/// whatever the number of devices or the order the shots finish in. `progress(shot, p)` is
/// called from the workers.
///
/// ```no_run
/// # use gpurevolve::acoustic::Problem;
/// # fn shots() -> (Vec<Problem>, Vec<Vec<f64>>) { unimplemented!() }
/// use gpurevolve::engine::RevolverOptions;
/// use gpurevolve::fwi::{Checkpointing, gradient_on_devices};
/// use gpurevolve::gpu::Gpu;
/// let (problems, observed) = shots();
/// let gpus = [Gpu::new()?, Gpu::new()?]; // two devices (here two on one adapter)
/// let g = gradient_on_devices(&gpus, &problems, &observed, Checkpointing::Levels(40),
///     RevolverOptions::default(), |_, _| {})?;
/// # Ok::<(), gpurevolve::Error>(())
/// ```
///
/// # Errors
/// As [`gradient_with`], for the first failing shot in shot order (the other workers stop
/// taking shots); [`Error::InvalidArgument`] for no devices.
pub fn gradient_on_devices<R: ProgressReply>(
    gpus: &[Gpu],
    shots: &[Problem],
    observed: &[Vec<f64>],
    checkpointing: Checkpointing,
    options: RevolverOptions,
    progress: impl Fn(usize, Progress) -> R + Sync,
) -> Result<FwiGradient> {
    let survey = Survey::new(shots, observed, checkpointing, options)?;
    summed(gpus, &survey, None, progress)
}

/// As [`gradient_on_devices`], keeping `journal`: each shot's result is recorded there as
/// soon as it finishes, and the shots the journal already holds are read back instead of run.
/// A survey killed part way (a signal, a lost device, a full disk) and run again with the
/// same journal ends with exactly the bits of an uninterrupted run: the shots are added in
/// shot order, each with the bits it had. The journal must be of these inputs
/// ([`Journal::fingerprint`]).
///
/// # Errors
/// As [`gradient_on_devices`]; [`Error::File`] when a record cannot be written. A shot
/// finished before the error stays recorded.
pub fn gradient_on_devices_journaled<R: ProgressReply>(
    gpus: &[Gpu],
    shots: &[Problem],
    observed: &[Vec<f64>],
    checkpointing: Checkpointing,
    options: RevolverOptions,
    journal: &Journal,
    progress: impl Fn(usize, Progress) -> R + Sync,
) -> Result<FwiGradient> {
    let survey = Survey::new(shots, observed, checkpointing, options)?;
    summed(gpus, &survey, Some(journal), progress)
}

/// Every shot of `survey`, run or read back ([`run_or_read`]), summed in shot order.
pub(crate) fn summed<R: ProgressReply>(
    gpus: &[Gpu],
    survey: &Survey<'_>,
    journal: Option<&Journal>,
    progress: impl Fn(usize, Progress) -> R + Sync,
) -> Result<FwiGradient> {
    let first = check_shots(survey.shots, survey.observed)?;
    let all: Vec<usize> = (0..survey.shots.len()).collect();
    let done = run_or_read(gpus, survey, &all, journal, progress)?;
    let mut total = empty_total(first, survey.shots.len());
    for shot in done {
        add_shot(&mut total, shot);
    }
    Ok(total)
}

/// The results of the shots in `wanted`, in that order: those `journal` holds read back, the
/// others run ([`shots_on_devices`]) and recorded in it as each finishes. Without a journal,
/// every shot runs.
fn run_or_read<R: ProgressReply>(
    gpus: &[Gpu],
    survey: &Survey<'_>,
    wanted: &[usize],
    journal: Option<&Journal>,
    progress: impl Fn(usize, Progress) -> R + Sync,
) -> Result<Vec<ShotDone>> {
    let finished = journal.map(Journal::finished).unwrap_or_default();
    let is_finished = |i: &usize| finished.binary_search(i).is_ok();
    let to_run: Vec<usize> = wanted.iter().copied().filter(|i| !is_finished(i)).collect();
    if let Some(journal) = journal
        && to_run.len() < wanted.len()
    {
        log::info!(
            "{} of {} shots read back from the journal in {}",
            wanted.len() - to_run.len(),
            wanted.len(),
            journal.dir().display()
        );
    }
    let ran = shots_on_devices(gpus, survey, &to_run, progress, &|i, done| {
        journal.map_or(Ok(()), |j| j.record(i, done))
    })?;
    let mut ran = ran.into_iter();
    wanted
        .iter()
        .map(|i| match journal {
            Some(journal) if is_finished(i) => journal.load(*i),
            _ => ran.next().ok_or_else(|| Error::InvalidArgument {
                name: "shots",
                reason: format!("shot {i} neither ran nor was in the journal"),
            }),
        })
        .collect()
}

/// The shots numbered in `wanted` (each at most once), in batches of consecutive shots
/// ([`Survey::batches`]) spread over `gpus`, one worker thread each taking the next batch from
/// a shared queue; their results in the order of `wanted`, not summed. `finished(i, result)`
/// is called on the worker as each shot's batch ends (a journal records it there); its error
/// counts as the shot's. After a failure the workers take no new batch, and the error of the
/// first failing shot in the order of `wanted` is returned.
fn shots_on_devices<R: ProgressReply>(
    gpus: &[Gpu],
    survey: &Survey<'_>,
    wanted: &[usize],
    progress: impl Fn(usize, Progress) -> R + Sync,
    finished: &(dyn Fn(usize, &ShotDone) -> Result<()> + Sync),
) -> Result<Vec<ShotDone>> {
    if gpus.is_empty() {
        return Err(Error::InvalidArgument {
            name: "gpus",
            reason: "at least one device is needed".into(),
        });
    }
    let batches = survey.batches(wanted);
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Result<ShotDone>>>> =
        Mutex::new((0..wanted.len()).map(|_| None).collect());
    let worker = |device: usize, gpu: &Gpu| {
        // Each worker builds its operators and revolvers itself: they hold `Rc`s and stay on
        // its thread.
        while !failed.load(Ordering::Relaxed) {
            let Some(places) = batches.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let shots: Vec<usize> = places.iter().map(|&place| wanted[place]).collect();
            if shots.iter().any(|&i| i >= survey.shots.len()) {
                break;
            }
            let mut progress = |i, p| progress(i, p);
            let done = run_batch(gpu, &shots, survey, &mut progress).and_then(|done| {
                done.into_iter()
                    .zip(&shots)
                    .map(|(done, &i)| {
                        let done = ShotDone { device, ..done };
                        finished(i, &done).map(|()| done)
                    })
                    .collect::<Result<Vec<ShotDone>>>()
            });
            let Ok(mut results) = results.lock() else {
                failed.store(true, Ordering::Relaxed);
                break;
            };
            match done {
                Ok(done) => {
                    for (&place, done) in places.iter().zip(done) {
                        results[place] = Some(Ok(done));
                    }
                }
                // The batch's first shot carries its error; its others stay unrun.
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    results[places[0]] = Some(Err(e));
                }
            }
        }
    };
    std::thread::scope(|scope| {
        let worker = &worker;
        for (device, gpu) in gpus.iter().enumerate().skip(1) {
            scope.spawn(move || worker(device, gpu));
        }
        // The first device's worker is the calling thread: a caller that checks for signals
        // in `progress` (Python may only on its main thread) sees that device's steps.
        worker(0, &gpus[0]);
    });
    let results = results.into_inner().map_err(|_| Error::InvalidArgument {
        name: "gpus",
        reason: "a device worker panicked".into(),
    })?;
    // The first error in order (shots after an error may not have run), else every result.
    let mut done = Vec::with_capacity(wanted.len());
    let mut skipped = false;
    for result in results {
        match result {
            Some(Err(e)) => return Err(e),
            Some(Ok(shot)) => done.push(shot),
            None => skipped = true,
        }
    }
    if skipped {
        return Err(Error::InvalidArgument {
            name: "shots",
            reason: "a shot number is out of range, or a device worker stopped without \
                     running its shot"
                .into(),
        });
    }
    Ok(done)
}

/// Checks the shots and their records; returns shot 0.
pub(crate) fn check_shots<'s>(shots: &'s [Problem], observed: &[Vec<f64>]) -> Result<&'s Problem> {
    let first = shots.first().ok_or_else(|| Error::InvalidArgument {
        name: "shots",
        reason: "at least one shot is needed".into(),
    })?;
    if observed.len() != shots.len() {
        return Err(Error::InvalidArgument {
            name: "observed",
            reason: format!("{} records for {} shots", observed.len(), shots.len()),
        });
    }
    if let Some(i) = shots.iter().position(|s| s.layout() != first.layout()) {
        return Err(Error::InvalidArgument {
            name: "shots",
            reason: format!("shot {i} is on another grid than shot 0"),
        });
    }
    Ok(first)
}

fn empty_total(first: &Problem, shots: usize) -> FwiGradient {
    FwiGradient {
        misfit: 0.0,
        gradient: vec![0.0; first.layout().len()],
        shots: Vec::with_capacity(shots),
        traces: Vec::with_capacity(shots),
        tiers: Vec::with_capacity(shots),
        devices: Vec::with_capacity(shots),
    }
}

/// Adds one shot to the total: the sum every path takes, in shot order.
fn add_shot(total: &mut FwiGradient, done: ShotDone) {
    total.misfit += done.misfit;
    for (t, g) in total.gradient.iter_mut().zip(&done.gradient) {
        *t += g;
    }
    total.shots.push(done.stats);
    total.traces.push(done.traces);
    total.tiers.push(done.tiers);
    total.devices.push(done.device);
}

/// The shots numbered in `batch` (consecutive among the shots this worker runs, sharing their
/// medium), stepped together on `gpu` under one schedule: each one's misfit and gradient, with
/// the bits it has alone. `progress(i, p)` is told every shot's progress; any `Break` stops the
/// batch. Under until-quiet each shot's `reverse_steps` is its own length, the steps of the
/// store-all run it equals; the batch's sweep ran to its longest.
fn run_batch<R: ProgressReply>(
    gpu: &Gpu,
    batch: &[usize],
    survey: &Survey<'_>,
    progress: &mut impl FnMut(usize, Progress) -> R,
) -> Result<Vec<ShotDone>> {
    let plans = &survey.plans;
    let shots: Vec<&Problem> = batch.iter().map(|&i| &survey.shots[i]).collect();
    let observed: Vec<&[f64]> = batch
        .iter()
        .map(|&i| survey.observed.get(i).map_or(&[][..], |o| &o[..]))
        .collect();
    let operator = AcousticOperator::batch(gpu, &shots, &observed)?;
    let schedule = plans.for_shot(shots[0])?;
    let options = &survey.options;
    let every_shot = |p: Progress| {
        // Every shot of the batch hears of the step, even after one has asked to stop.
        let mut go_on = true;
        for &i in batch {
            go_on &= progress(i, p).go_on();
        }
        if go_on {
            std::ops::ControlFlow::Continue(())
        } else {
            std::ops::ControlFlow::Break(())
        }
    };
    let mut revolver =
        Revolver::new(gpu, operator, schedule, options.clone())?.on_progress(every_shot);
    // Each shot's own length, where it ended before its batch.
    let mut shot_steps: Vec<Option<u64>> = vec![None; batch.len()];
    if let Checkpointing::UntilQuiet { fraction, .. } = plans.checkpointing {
        // Each shot stops at the first check where it is quiet, as it would alone; the batch
        // runs until its last one is.
        let mut quiet = shots
            .iter()
            .map(|shot| Quiet::new(shot, fraction))
            .collect::<Result<Vec<Quiet>>>()?;
        let mut ends: Vec<Option<u64>> = vec![None; shots.len()];
        let end = revolver.apply_forward_until(QUIET_EVERY, |backend, state, k| {
            let Some(level) = state.levels().next() else {
                return Ok(false);
            };
            for (shot, (quiet, end)) in quiet.iter_mut().zip(&mut ends).enumerate() {
                if end.is_none() && quiet.is_quiet(k, backend.operator().shot_energy(level, shot)?)
                {
                    *end = Some(k);
                }
            }
            Ok(ends.iter().all(Option::is_some))
        })?;
        for ((shot_end, quiet), &i) in ends.iter().zip(&quiet).zip(batch) {
            if shot_end.is_none() {
                log::warn!(
                    "shot {i}: the wavefield was not quiet after its {} steps (peak energy {:.3e})",
                    end.steps,
                    quiet.peak()
                );
            }
        }
        let last: Vec<usize> = ends
            .iter()
            .map(|e| e.unwrap_or(end.steps) as usize)
            .collect();
        revolver.operator().set_ends(&last)?;
        shot_steps = last.iter().map(|&e| Some(e as u64)).collect();
    } else {
        revolver.apply_forward()?;
    }
    let mut stats = revolver.apply_reverse()?;
    stats.batch = batch.len() as u64;
    stats.dispatches = revolver.operator().acoustic().dispatches();
    let infos = revolver.operator().finish_batch(batch)?;
    let tiers = revolver.tiers().to_vec();
    Ok(infos
        .into_iter()
        .zip(batch)
        .zip(shot_steps)
        .map(|((info, &i), steps)| {
            log::info!(
                "shot {i}: misfit {:.6e}, {} forward steps",
                info.misfit,
                stats.forward_steps
            );
            let mut stats = stats.clone();
            stats.reverse_steps = steps.unwrap_or(stats.reverse_steps);
            ShotDone {
                device: 0,
                misfit: info.misfit,
                gradient: info.gradient,
                stats,
                traces: info.traces,
                tiers: tiers.clone(),
            }
        })
        .collect())
}

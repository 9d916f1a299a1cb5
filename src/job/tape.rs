//! A forward that keeps its checkpoints, and a backward that takes any adjoint source: the
//! differentiable wave operator behind the Python package's `gpurevolve.torch` and
//! `gpurevolve.jax`.
//!
//! [`Tape::record`] fires each shot's source amplitudes (any time function, several sources a
//! shot), returns the traces, and keeps the schedule's checkpoints where the engine put them
//! (GPU, spilled to host memory or disk) until [`Tape::backward`] reverses them with the
//! adjoint source `∂L/∂d` a framework hands over. The backward returns `∂L/∂m` and `∂L/∂q`
//! (the gradient to every source amplitude). Dropping the tape frees its memory.
//!
//! The tape owns its device state on a thread of its own: an autograd framework may call the
//! backward from another thread than the forward (PyTorch does for CUDA tensors), and wgpu's
//! resources of a run are tied to the run that made them. Each call waits for that thread.
//!
//! With `∂L/∂d = d − d_obs` formed in float32, the backward's `∂L/∂m` is the L2 gradient of
//! [`GradientJob::run`](super::GradientJob::run), to the bit.
//!
//! ```no_run
//! use std::sync::Arc;
//! use gpurevolve::acoustic::{Boundary, BoundaryKind, Model, TimeAxis};
//! use gpurevolve::job::{RunPolicy, Tape, survey};
//! use gpurevolve::gpu::Gpu;
//! let model = Model::constant(&[100, 50], 10.0, 10, 2000.0)?;
//! let time = TimeAxis::new(&model, 8, 500, None)?;
//! let boundary = Boundary::new(BoundaryKind::Cpml, 2000.0)?;
//! let receivers: Vec<Vec<f64>> = (0..100).map(|x| vec![x as f64 * 10.0, 20.0]).collect();
//! let shots = survey(&model, &[vec![495.0, 20.0]], &receivers, 15.0, time, 8, boundary)?;
//! let wavelet: Vec<f64> = shots.iter().map(|s| s.source_series()).next().unwrap();
//! let mut tape = Tape::record(Arc::new(Gpu::new()?), shots, vec![wavelet], RunPolicy::default())?;
//! // Any misfit: here ∂L/∂d of L = Σ d⁴/4.
//! let adjoint: Vec<Vec<f64>> = tape.traces().iter().map(|t| t.iter().map(|d| d * d * d).collect()).collect();
//! let gradient = tape.backward(&adjoint, false)?;
//! println!("{} model cells, {} wavelet samples", gradient.gradient.len(), gradient.source_gradients[0].len());
//! # Ok::<(), gpurevolve::Error>(())
//! ```

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use super::{Batch, GradientJob, JobPlan, RunPolicy};
use crate::acoustic::{AcousticOperator, Problem, check_series};
use crate::engine::{GpuBackend, Revolver, RunStats};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::schedule::AnySchedule;

/// What a [`Tape::backward`] returns.
#[derive(Clone, Debug)]
pub struct TapeGradient {
    /// `∂L/∂m` of the physical model ([`Problem::model_gradient`] of the shots' padded
    /// gradients summed in shot order), in the model's shape.
    pub gradient: Vec<f64>,
    /// `∂L/∂q`: one `[nt][its sources]` series per shot, the gradient to its amplitudes.
    pub source_gradients: Vec<Vec<f64>>,
    /// What each batch's run did, recording and reverse sweep together (one entry per
    /// batch, in shot order): `forward_steps` is the schedule's whole count.
    pub stats: Vec<RunStats>,
}

/// What the recording did.
#[derive(Clone, Debug)]
pub struct TapeInfo {
    /// The checkpointing planned for each batch.
    pub plan: JobPlan,
    /// Shots stepped together; the tape holds one batch's checkpoints per batch.
    pub batch: usize,
    /// What each batch's forward sweep did (one entry per batch, in shot order).
    pub stats: Vec<RunStats>,
}

type Run<'g> = Revolver<'g, GpuBackend<'g, AcousticOperator<'g>>, AnySchedule>;

/// How often a call that waits for the tape's thread asks its `watch` whether to go on
/// ([`Tape::record_watched`], [`Tape::backward_watched`]; also once before the run starts): a
/// Ctrl-C is heard within this and one step, or at the first step after a phase without steps
/// (planning, building a batch's operator, reading the gradients back).
pub const WATCH_EVERY: Duration = Duration::from_millis(100);

/// A `watch` that never stops a call.
fn go_on() -> ControlFlow<()> {
    ControlFlow::Continue(())
}

enum Request {
    Backward { adjoint: Vec<Vec<f64>>, keep: bool },
}

enum Reply {
    Recorded(Vec<Vec<f64>>, Box<TapeInfo>),
    Reversed(TapeGradient),
}

/// The forward of a survey with its checkpoints kept for one [`backward`](Self::backward)
/// (or several, each asked to keep them). See the [module](self) docs.
pub struct Tape {
    requests: Option<mpsc::Sender<Request>>,
    replies: mpsc::Receiver<Result<Reply>>,
    worker: Option<thread::JoinHandle<()>>,
    traces: Vec<Vec<f64>>,
    info: TapeInfo,
    /// Each shot's receivers and sources, to check an adjoint source before it is sent.
    receivers: Vec<usize>,
    nt: usize,
    /// Whether the checkpoints are still held (no backward without `keep` has run, and no
    /// backward failed).
    live: bool,
    /// Set to stop the worker's run at its next step (a `watch` said stop).
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape")
            .field("shots", &self.traces.len())
            .field("nt", &self.nt)
            .field("batch", &self.info.batch)
            .field("live", &self.live)
            .finish()
    }
}

fn gone(what: &str) -> Error {
    Error::Gpu {
        context: "the tape's worker".into(),
        detail: format!("it stopped before {what} (a panic inside the run: a bug)"),
    }
}

impl Tape {
    /// Runs the forward of `shots` (problems on one grid and time axis, [`super::survey`],
    /// [`super::survey_of_shots`] or [`Problem::with_boundary`]), each firing its
    /// `amplitudes` (`[nt][its sources]`, in place of its Ricker wavelet), under `policy`
    /// (memory, tiers, schedule, batch, format; as [`GradientJob`]), on the GPU `gpu` owns
    /// (an `Arc<Gpu>`, a `Box<Gpu>`, or anything that derefs to one and can move to the
    /// tape's thread).
    ///
    /// Every batch holds its checkpoints until the backward (a job's batches run one after
    /// another): the memory budgets are shared among the batches, `snaps` is one batch's
    /// memory and defaults to one shot's default for each shot of a batch, and a batch
    /// larger than the GPU holds is lowered to the most it does (logged). One batch of every
    /// shot (`Batch::Shots(usize::MAX)`) holds one schedule for all.
    ///
    /// # Errors
    /// As [`GradientJob::new`], [`GradientJob::plan`] and the forward sweep;
    /// [`Error::InvalidArgument`] for an amplitude count or length that does not match, an
    /// amplitude that is not finite, or a run until quiet (its length is known only as it
    /// runs, and a framework needs the traces' shape first).
    pub fn record<G>(
        gpu: G,
        shots: Vec<Problem>,
        amplitudes: Vec<Vec<f64>>,
        policy: RunPolicy,
    ) -> Result<Tape>
    where
        G: std::ops::Deref<Target = Gpu> + Send + 'static,
    {
        Self::record_watched(gpu, shots, amplitudes, policy, &mut go_on)
    }

    /// [`record`](Self::record), asking `watch` before the forward starts and every
    /// [`WATCH_EVERY`] while it runs whether to go on (a Ctrl-C check, a time limit): a
    /// `Break` stops the run at its next step and the call returns [`Error::Interrupted`], with
    /// nothing held (or the tape, if the run had already ended).
    ///
    /// # Errors
    /// As [`record`](Self::record); [`Error::Interrupted`].
    pub fn record_watched<G>(
        gpu: G,
        shots: Vec<Problem>,
        amplitudes: Vec<Vec<f64>>,
        policy: RunPolicy,
        watch: &mut dyn FnMut() -> ControlFlow<()>,
    ) -> Result<Tape>
    where
        G: std::ops::Deref<Target = Gpu> + Send + 'static,
    {
        if policy.until_quiet.is_some() {
            return Err(Error::InvalidArgument {
                name: "until_quiet",
                reason: "a tape records every step: a framework needs the traces' shape before \
                         the run; leave until_quiet unset"
                    .into(),
            });
        }
        if amplitudes.len() != shots.len() {
            return Err(Error::InvalidArgument {
                name: "amplitudes",
                reason: format!("{} series for {} shots", amplitudes.len(), shots.len()),
            });
        }
        let receivers: Vec<usize> = shots.iter().map(|s| s.receivers().points).collect();
        let sources: Vec<usize> = shots.iter().map(|s| s.sources().points).collect();
        let nt = shots.first().map_or(0, |s| s.time().nt);
        for (i, (series, &n)) in amplitudes.iter().zip(&sources).enumerate() {
            check_series("amplitudes", i, series, nt, n, "sources")?;
        }
        let empty = vec![Vec::new(); shots.len()];
        let job = GradientJob::new(shots, empty, policy)?;
        let (requests, inbox) = mpsc::channel();
        let (outbox, replies) = mpsc::channel();
        // A stop asked before the run starts stops it at its first step.
        let stop = Arc::new(AtomicBool::new(watch().is_break()));
        let stopped = Arc::clone(&stop);
        let worker = thread::Builder::new()
            .name("gpurevolve tape".into())
            .spawn(move || serve(&gpu, job, &amplitudes, &stopped, &inbox, &outbox))
            .map_err(|e| Error::Gpu {
                context: "starting the tape's thread".into(),
                detail: e.to_string(),
            })?;
        let (traces, info) = match wait(&replies, &stop, watch) {
            Some(Ok(Reply::Recorded(traces, info))) => (traces, *info),
            Some(Ok(Reply::Reversed(_))) => return Err(gone("recording")),
            Some(Err(e)) => {
                let _ = worker.join();
                return Err(e);
            }
            None => {
                let _ = worker.join();
                return Err(gone("recording"));
            }
        };
        Ok(Tape {
            requests: Some(requests),
            replies,
            worker: Some(worker),
            traces,
            info,
            receivers,
            nt,
            live: true,
            stop,
        })
    }

    /// The traces of the forward: one `[nt][its receivers]` record per shot.
    pub fn traces(&self) -> &[Vec<f64>] {
        &self.traces
    }

    /// What the recording planned and did.
    pub fn info(&self) -> &TapeInfo {
        &self.info
    }

    /// Whether a [`backward`](Self::backward) can still run.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Reverses the recorded forward with `adjoint`, `∂L/∂d` of the traces (one
    /// `[nt][its receivers]` series per shot), and returns `∂L/∂m` and `∂L/∂q`. The
    /// checkpoints are spent by the reverse sweep; with `keep`, another backward may follow
    /// (as PyTorch's `retain_graph`): it first records the forward again (one more forward
    /// of the schedule, paid only if it comes).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a series count or length that does not match the
    /// traces, a value that is not finite (checked before anything runs: the tape stays
    /// usable), or a tape whose checkpoints are spent (a backward already ran without `keep`,
    /// or failed); as the reverse sweep.
    pub fn backward(&mut self, adjoint: &[Vec<f64>], keep: bool) -> Result<TapeGradient> {
        self.backward_watched(adjoint, keep, &mut go_on)
    }

    /// [`backward`](Self::backward), asking `watch` before it starts and every
    /// [`WATCH_EVERY`] while it runs whether to go on: a `Break` stops the run at its next step
    /// and the call returns [`Error::Interrupted`]; the checkpoints are then spent, as after
    /// any failed backward (unless the run had already ended: then its gradient is returned).
    ///
    /// # Errors
    /// As [`backward`](Self::backward); [`Error::Interrupted`].
    pub fn backward_watched(
        &mut self,
        adjoint: &[Vec<f64>],
        keep: bool,
        watch: &mut dyn FnMut() -> ControlFlow<()>,
    ) -> Result<TapeGradient> {
        if !self.live {
            return Err(Error::InvalidArgument {
                name: "backward",
                reason: "this tape's checkpoints are spent: a backward already ran without \
                         keep (retain_graph), or failed; run the forward again"
                    .into(),
            });
        }
        if adjoint.len() != self.receivers.len() {
            return Err(Error::InvalidArgument {
                name: "adjoint",
                reason: format!(
                    "{} series for {} shots: give ∂L/∂d of every shot's traces",
                    adjoint.len(),
                    self.receivers.len()
                ),
            });
        }
        for (i, (series, &n)) in adjoint.iter().zip(&self.receivers).enumerate() {
            check_series("adjoint", i, series, self.nt, n, "receivers")?;
        }
        let requests = self.requests.as_ref().ok_or_else(|| gone("the backward"))?;
        self.live = false;
        let request = Request::Backward {
            adjoint: adjoint.to_vec(),
            keep,
        };
        // A stop asked of an earlier call that ended before its next step is forgotten; one
        // asked before this run starts stops it at its first step.
        self.stop.store(watch().is_break(), Ordering::Relaxed);
        requests.send(request).map_err(|_| gone("the backward"))?;
        match wait(&self.replies, &self.stop, watch) {
            Some(Ok(Reply::Reversed(gradient))) => {
                self.live = keep;
                Ok(gradient)
            }
            Some(Ok(Reply::Recorded(..))) => Err(gone("the backward")),
            Some(Err(e)) => Err(e),
            None => Err(gone("the backward")),
        }
    }
}

/// The worker's reply, asking `watch` every [`WATCH_EVERY`] meanwhile and raising `stop` when
/// it says so (the worker's run then ends at its next step with [`Error::Interrupted`]);
/// `None` when the worker is gone.
fn wait(
    replies: &mpsc::Receiver<Result<Reply>>,
    stop: &AtomicBool,
    watch: &mut dyn FnMut() -> ControlFlow<()>,
) -> Option<Result<Reply>> {
    loop {
        match replies.recv_timeout(WATCH_EVERY) {
            Ok(reply) => return Some(reply),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if watch().is_break() {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
}

impl Drop for Tape {
    /// Frees the checkpoints: the worker ends when its requests close.
    fn drop(&mut self) {
        self.requests.take();
        if let Some(worker) = self.worker.take()
            && worker.join().is_err()
        {
            log::error!("the tape's worker panicked");
        }
    }
}

/// Plans the tape's runs. Unlike a job's batches, which run one after another, every batch of
/// a tape holds its checkpoints until the backward: the memory budgets (`device_memory`,
/// `host_memory`, `disk_memory`) are shared among the batches, each planned with its share;
/// `snaps` stays the memory of one batch, and by default is one shot's default for every shot
/// of the batch. A batch larger than the GPU holds is lowered to the most it does.
fn plan_tape(gpu: &Gpu, job: &mut GradientJob) -> Result<JobPlan> {
    let shots = job.shots.len();
    if let Batch::Shots(wanted) = job.policy.batch {
        let wanted = wanted.min(shots);
        let (most, limit) = crate::acoustic::largest_batch(gpu, &job.shots[0]);
        let most = most.max(1);
        if wanted > most {
            log::info!("a batch of {most} shots, the most {limit} allows (of {wanted} asked)");
        }
        job.policy.batch = Batch::Shots(wanted.min(most));
    }
    let default_snaps = job.policy.snaps.is_none() && !job.policy.store_all;
    if let (Batch::Shots(batch), true) = (job.policy.batch, default_snaps) {
        let one_shot = crate::schedule::min_snapshots_for_factor(job.steps(), 3.0)?;
        job.policy.snaps = Some(one_shot.saturating_mul(batch as u64));
    }
    let plan = job.plan(gpu)?;
    let batches = shots.div_ceil(plan.batch.max(1)) as u64;
    let policy = &mut job.policy;
    let budgets = [
        &mut policy.device_memory,
        &mut policy.host_memory,
        &mut policy.disk_memory,
    ];
    if batches <= 1 || budgets.iter().all(|b| b.is_none()) {
        return Ok(plan);
    }
    for budget in budgets.into_iter().flatten() {
        *budget /= batches;
    }
    // The batch stays the one chosen; the plan is made again in each batch's share.
    policy.batch = Batch::Shots(plan.batch);
    log::info!("{batches} batches held at once: each plans in its share of the memory budgets");
    job.plan(gpu)
}

/// The tape's thread: records, replies with the traces, then serves backwards until the
/// tape is dropped. With `keep`, the forward is recorded again at the next backward, not
/// after this one: a tape that is never reversed again pays nothing.
fn serve(
    gpu: &Gpu,
    mut job: GradientJob,
    amplitudes: &[Vec<f64>],
    stop: &Arc<AtomicBool>,
    requests: &mpsc::Receiver<Request>,
    replies: &mpsc::Sender<Result<Reply>>,
) {
    let plan = match plan_tape(gpu, &mut job) {
        Ok(plan) => plan,
        Err(e) => {
            let _ = replies.send(Err(e));
            return;
        }
    };
    let job = &job;
    let mut runs = match record(gpu, job, &plan, amplitudes, stop) {
        Ok((runs, traces, stats)) => {
            let info = TapeInfo {
                batch: plan.batch,
                plan: plan.clone(),
                stats,
            };
            if replies
                .send(Ok(Reply::Recorded(traces, Box::new(info))))
                .is_err()
            {
                return;
            }
            Some(runs)
        }
        Err(e) => {
            let _ = replies.send(Err(e));
            return;
        }
    };
    // Whether the last backward asked to keep the checkpoints, spent by its reverse sweep.
    let mut kept = false;
    for Request::Backward { adjoint, keep } in requests {
        let spent = match runs.take() {
            Some(runs) => Ok(runs),
            None if kept => record(gpu, job, &plan, amplitudes, stop).map(|(runs, _, _)| runs),
            None => Err(Error::InvalidArgument {
                name: "backward",
                reason: "this tape's checkpoints are spent".into(),
            }),
        };
        kept = keep;
        let reply = spent.and_then(|spent| reverse(spent, job, &adjoint).map(Reply::Reversed));
        if replies.send(reply).is_err() {
            return;
        }
    }
}

/// The forward of every batch, each keeping its checkpoints: the runs (with the shots of
/// each), every shot's traces in shot order, and the forward sweeps' counts. Each run, and
/// its reverse sweep later, stops at the first step after `stop` is raised.
#[allow(clippy::type_complexity)]
fn record<'g>(
    gpu: &'g Gpu,
    job: &GradientJob,
    plan: &JobPlan,
    amplitudes: &[Vec<f64>],
    stop: &Arc<AtomicBool>,
) -> Result<(Vec<(Vec<usize>, Run<'g>)>, Vec<Vec<f64>>, Vec<RunStats>)> {
    let survey = job.survey(plan);
    let all: Vec<usize> = (0..job.shots().len()).collect();
    let mut runs = Vec::new();
    let mut traces = Vec::with_capacity(all.len());
    let mut stats = Vec::new();
    for batch in survey.batches(&all) {
        let shots: Vec<&Problem> = batch.iter().map(|&i| &job.shots()[i]).collect();
        let series: Vec<&[f64]> = batch.iter().map(|&i| &amplitudes[i][..]).collect();
        let operator = AcousticOperator::traced(gpu, &shots, &series)?;
        let schedule = survey.plans.for_shot(shots[0])?;
        let stop = Arc::clone(stop);
        let mut run = Revolver::new(gpu, operator, schedule, survey.options.clone())?.on_progress(
            move |_| {
                if stop.load(Ordering::Relaxed) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        run.apply_forward_recording_all()?;
        traces.extend(run.operator().recorded_traces(&batch)?);
        stats.push(run.stats());
        runs.push((batch, run));
    }
    Ok((runs, traces, stats))
}

/// The reverse of every batch with its shots' `adjoint` series; the gradients summed as the
/// job sums them.
fn reverse(
    runs: Vec<(Vec<usize>, Run<'_>)>,
    job: &GradientJob,
    adjoint: &[Vec<f64>],
) -> Result<TapeGradient> {
    let shots = job.shots();
    let first = &shots[0];
    let mut padded: Vec<Option<Vec<f64>>> = vec![None; shots.len()];
    let mut source_gradients = vec![Vec::new(); shots.len()];
    let mut stats = Vec::new();
    for (batch, mut run) in runs {
        let series: Vec<&[f64]> = batch.iter().map(|&i| &adjoint[i][..]).collect();
        run.operator().set_adjoint_source(&series)?;
        stats.push(run.apply_reverse()?);
        let gradients = run.operator().finish_traced(&batch)?;
        for (&i, got) in batch.iter().zip(gradients) {
            padded[i] = Some(got.gradient);
            source_gradients[i] = got.source_gradient;
        }
    }
    // The job's sum: shot after shot, from zero, in f64.
    let mut total = vec![0.0; first.layout().len()];
    for shot in padded.iter().flatten() {
        for (t, g) in total.iter_mut().zip(shot) {
            *t += g;
        }
    }
    Ok(TapeGradient {
        gradient: first.model_gradient(&total)?,
        source_gradients,
        stats,
    })
}

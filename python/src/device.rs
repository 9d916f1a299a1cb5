//! `gpurevolve.Device`: one GPU opened once, shot records and checkpointed gradients from
//! numpy arrays; and the model helpers the main job uses.

use std::ops::ControlFlow;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gpurevolve::acoustic::{Boundary, BoundaryKind, GpuAcoustic, Model, Problem, TimeAxis};
use gpurevolve::gpu::Gpu;
use gpurevolve::job::{self, Batch, GradientJob, RunContext, RunPolicy};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::arrays::{Dtype, Floats, array, floats, optional_count, points, size};
use crate::{bad, to_py};

/// How often, at most, a long call takes the GIL back to check for Ctrl-C and to call the
/// progress callback.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Ctrl-C and the progress callback while the GPU works without the GIL: at most every
/// [`CHECK_EVERY`] (and at the end) it takes the GIL back, checks for signals and calls
/// `progress(done, total)`. An exception from either stops the run and is kept, to be raised
/// in place of the run's [`Interrupted`](gpurevolve::Error::Interrupted).
pub(crate) struct Watch<'p> {
    progress: Option<&'p Py<PyAny>>,
    last: Instant,
    stopped: Option<PyErr>,
}

impl<'p> Watch<'p> {
    pub(crate) fn new(progress: Option<&'p Py<PyAny>>) -> Self {
        Watch {
            progress,
            last: Instant::now(),
            stopped: None,
        }
    }

    fn tick(&mut self, done: u64, total: u64) -> ControlFlow<()> {
        if self.last.elapsed() < CHECK_EVERY && done < total {
            return ControlFlow::Continue(());
        }
        self.report(done, total)
    }

    /// Takes the GIL, checks for signals and calls `progress(done, total)`.
    fn report(&mut self, done: u64, total: u64) -> ControlFlow<()> {
        self.last = Instant::now();
        let progress = self.progress;
        let outcome = Python::attach(|py| {
            py.check_signals()?;
            match progress {
                Some(f) => f.call1(py, (done, total)).map(drop),
                None => Ok(()),
            }
        });
        match outcome {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.stopped = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    /// Checks for signals now (a call that reports no progress, as a tape's).
    pub(crate) fn check(&mut self) -> ControlFlow<()> {
        self.report(0, 1)
    }

    /// The exception that stopped the run, if one did.
    pub(crate) fn take_stopped(&mut self) -> Option<PyErr> {
        self.stopped.take()
    }

    /// The run's result, with the exception that stopped it raised in its place. An
    /// exception caught at the last check (Ctrl-C as the run ended) is raised too: the signal
    /// was consumed by that check, and dropping it would lose the user's Ctrl-C.
    pub(crate) fn finish<T>(&mut self, result: gpurevolve::Result<T>) -> PyResult<T> {
        match (result, self.stopped.take()) {
            (_, Some(e)) => Err(e),
            (result, None) => result.map_err(to_py),
        }
    }
}

/// SIGTERM and SIGHUP, while a call runs: `gpurevolve/_signals.py` turns each into an
/// exception the run's checks raise (as Ctrl-C), and sends the signal again once the run has
/// unwound, its disk files removed.
pub(crate) struct Termination {
    saved: Option<Py<PyAny>>,
}

impl Termination {
    pub(crate) fn enter(py: Python<'_>) -> Self {
        let saved = py
            .import("gpurevolve._signals")
            .and_then(|m| m.call_method0("enter"))
            .map(Bound::unbind);
        if let Err(e) = &saved {
            log::warn!("SIGTERM will not clean up this call's disk files: {e}");
        }
        Termination { saved: saved.ok() }
    }

    /// Restores the handlers; a `Terminated` error ends the process here, by its signal.
    pub(crate) fn leave<T>(self, py: Python<'_>, result: &PyResult<T>) {
        let Some(saved) = self.saved else { return };
        let error = match result {
            Err(e) => e.value(py).clone().into_any(),
            Ok(_) => py.None().into_bound(py),
        };
        // A signal that arrives as `leave` starts runs its handler there, which raises once
        // (and records the signal): the second call restores and delivers it.
        let mut left = Ok(());
        for _ in 0..2 {
            left = py
                .import("gpurevolve._signals")
                .and_then(|m| m.call_method1("leave", (saved.bind(py), &error)))
                .map(drop);
            if left.is_ok() {
                break;
            }
        }
        if let Err(e) = left {
            log::warn!("could not restore the signal handlers: {e}");
        }
    }
}

/// The GPUs opened once, with their compiled pipelines kept for every later call (an
/// inversion loop pays the start-up once). `devices` picks them as the main job's `--devices`
/// does: `None`, the best adapter; `"all"`, every adapter; an index or a list of indices into
/// the machine's adapters (an index twice opens two devices on one). `software=True` asks for
/// the software adapter (lavapipe), the one used when there is no GPU. A gradient spreads its
/// shots over the devices, with the same bits whatever they are.
#[pyclass(module = "gpurevolve", frozen)]
pub struct Device {
    /// Shared with the tapes recorded on it, which outlive a call.
    gpus: std::sync::Arc<Vec<Gpu>>,
}

/// The arguments every call shares, checked, as one problem per shot.
struct Survey {
    shots: Vec<Problem>,
    shape: Vec<usize>,
    dtype: Dtype,
    receivers: usize,
    time: TimeAxis,
}

/// Time axis wanted: a sample count, or a duration.
enum Length {
    Samples(usize),
    Seconds(f64),
}

impl Length {
    /// `nt` samples or `tmax` seconds, not both; 1.2 s when neither is given.
    fn of(nt: Option<&Bound<'_, PyAny>>, tmax: Option<f64>) -> PyResult<Self> {
        let nt = nt
            .filter(|n| !n.is_none())
            .map(|n| size(Some(n), "nt", 0))
            .transpose()?;
        match (nt, tmax) {
            (Some(_), Some(_)) => Err(bad("nt", "give nt or tmax, not both")),
            (Some(nt), None) => Ok(Length::Samples(nt)),
            (None, tmax) => Ok(Length::Seconds(tmax.unwrap_or(1.2))),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn survey(
    vp: &Bound<'_, PyAny>,
    spacing: f64,
    sources: &Bound<'_, PyAny>,
    receivers: &Bound<'_, PyAny>,
    f0: f64,
    length: Length,
    dt: Option<f64>,
    space_order: Option<&Bound<'_, PyAny>>,
    nbl: Option<&Bound<'_, PyAny>>,
    boundary: &str,
    boundary_velocity: Option<f64>,
) -> PyResult<Survey> {
    let (space_order, nbl) = (size(space_order, "space_order", 8)?, size(nbl, "nbl", 20)?);
    let Floats { data, shape, dtype } = floats(vp, "vp")?;
    if !(shape.len() == 2 || shape.len() == 3) {
        return Err(bad(
            "vp",
            format!("the model must have shape (nx, nz) or (nx, ny, nz), got {shape:?}"),
        ));
    }
    let model = Model::new(&shape, spacing, nbl, data).map_err(to_py)?;
    let sources = points(sources, "sources", shape.len())?;
    let receivers = points(receivers, "receivers", shape.len())?;
    let time = match length {
        Length::Samples(nt) => TimeAxis::new(&model, space_order, nt, dt),
        Length::Seconds(tmax) => TimeAxis::for_duration(&model, space_order, tmax, dt),
    }
    .map_err(to_py)?;
    let kind: BoundaryKind = boundary.parse().map_err(|e| bad("boundary", e))?;
    let boundary =
        Boundary::new(kind, boundary_velocity.unwrap_or(model.max_velocity())).map_err(to_py)?;
    let shots = job::survey(
        &model,
        &sources,
        &receivers,
        f0,
        time,
        space_order,
        boundary,
    )
    .map_err(to_py)?;
    Ok(Survey {
        shots,
        shape,
        dtype,
        receivers: receivers.len(),
        time,
    })
}

/// `devices` as the main job's `--devices` spells it: `None`, `"all"`, an index or indices.
fn device_spec(devices: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(devices) = devices.filter(|d| !d.is_none()) else {
        return Ok(None);
    };
    if devices.is_instance_of::<PyString>() {
        return Ok(Some(devices.extract()?));
    }
    let indices: Vec<Bound<'_, PyAny>> = match devices.extract::<Vec<Bound<'_, PyAny>>>() {
        Ok(list) => list,
        Err(_) => vec![devices.clone()],
    };
    let indices = indices
        .iter()
        .map(|i| crate::arrays::count(Some(i), "devices", 0).map(|i| i.to_string()))
        .collect::<PyResult<Vec<String>>>()?;
    if indices.is_empty() {
        return Err(bad("devices", "give at least one index, \"all\" or None"));
    }
    Ok(Some(indices.join(",")))
}

/// `snaps` as an int, `None` (the default memory) or `"all"` (the same as `store_all`).
fn snaps_of(snaps: Option<&Bound<'_, PyAny>>) -> PyResult<(Option<u64>, bool)> {
    match snaps.filter(|s| !s.is_none()) {
        None => Ok((None, false)),
        Some(s) if s.is_instance_of::<PyString>() => {
            let text: String = s.extract()?;
            if text == "all" {
                return Ok((None, true));
            }
            Err(bad(
                "snaps",
                format!("{text:?} is not a count; give an int, None or \"all\""),
            ))
        }
        Some(s) => {
            let count: i64 = s.extract().map_err(|_| {
                bad(
                    "snaps",
                    "give an int, None (Revolve within 3× the forward cost) or \"all\"",
                )
            })?;
            let count = u64::try_from(count)
                .map_err(|_| bad("snaps", format!("must be at least 1, got {count}")))?;
            Ok((Some(count), false))
        }
    }
}

/// `batch` as an int (shots per dispatch, at least 1) or `"auto"` (planned with the
/// checkpoints on the device).
fn batch_of(batch: &Bound<'_, PyAny>) -> PyResult<Batch> {
    if batch.is_instance_of::<PyString>() {
        let text: String = batch.extract()?;
        return text.parse().map_err(to_py);
    }
    let shots = crate::arrays::count(Some(batch), "batch", 1)?;
    let shots = usize::try_from(shots)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| bad("batch", format!("must be at least 1 shot, got {shots}")))?;
    Ok(Batch::Shots(shots))
}

/// `batch`: `None` (1), an int, or `"auto"`.
fn optional_batch(batch: Option<&Bound<'_, PyAny>>) -> PyResult<Batch> {
    Ok(batch
        .filter(|b| !b.is_none())
        .map(batch_of)
        .transpose()?
        .unwrap_or_default())
}

/// The run policy of the keywords `gradient` and `record` share, checked.
#[allow(clippy::too_many_arguments)]
fn policy_of(
    snaps: Option<&Bound<'_, PyAny>>,
    store_all: bool,
    schedule: &str,
    placement: &str,
    costs: Option<Vec<f64>>,
    until_quiet: Option<f64>,
    [device_memory, host_memory, disk_memory]: [Option<&Bound<'_, PyAny>>; 3],
    disk: Option<std::path::PathBuf>,
    batch: Option<&Bound<'_, PyAny>>,
    checkpoint_format: &str,
) -> PyResult<RunPolicy> {
    let (snaps, all) = snaps_of(snaps)?;
    Ok(RunPolicy {
        snaps,
        store_all: store_all || all,
        schedule: schedule.parse().map_err(to_py)?,
        placement: placement.parse().map_err(to_py)?,
        costs,
        until_quiet,
        device_memory: optional_count(device_memory, "device_memory")?,
        host_memory: optional_count(host_memory, "host_memory")?,
        disk,
        disk_memory: optional_count(disk_memory, "disk_memory")?,
        batch: optional_batch(batch)?,
        checkpoint_format: checkpoint_format.parse().map_err(to_py)?,
    })
}

#[pymethods]
impl Device {
    #[new]
    #[pyo3(signature = (devices = None, software = false))]
    fn new(py: Python<'_>, devices: Option<&Bound<'_, PyAny>>, software: bool) -> PyResult<Self> {
        let spec = device_spec(devices)?;
        let gpus = py
            .detach(|| job::open_devices(spec.as_deref(), software))
            .map_err(to_py)?;
        log::info!("opened {}", adapter_names(&gpus));
        Ok(Device {
            gpus: std::sync::Arc::new(gpus),
        })
    }

    /// The adapters' names, joined by ` + `.
    #[getter]
    fn adapter(&self) -> String {
        adapter_names(&self.gpus)
    }

    /// Whether the (first) adapter is a software one (correct, not fast).
    #[getter]
    fn is_software(&self) -> bool {
        self.gpus[0].is_software()
    }

    fn __repr__(&self) -> String {
        let software = if self.is_software() { ", software" } else { "" };
        format!("<gpurevolve.Device {:?}{software}>", self.adapter())
    }

    /// Shot records `(shots, nt, receivers)`: one shot per row of `sources`, every shot with
    /// all `receivers`. `nt` samples, or `tmax` seconds (default 1.2); `dt` defaults to
    /// `default_dt` of `vp`, `boundary_velocity` to the largest velocity of `vp`.
    /// `progress(done, total)` counts steps over all shots, at most every 0.1 s; Ctrl-C stops
    /// the run (`KeyboardInterrupt`).
    #[pyo3(signature = (
        vp, spacing, sources, receivers, f0 = 10.0, nt = None, tmax = None, dt = None,
        space_order = None, nbl = None, boundary = "cpml", boundary_velocity = None,
        progress = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        vp: &Bound<'py, PyAny>,
        spacing: f64,
        sources: &Bound<'py, PyAny>,
        receivers: &Bound<'py, PyAny>,
        f0: f64,
        nt: Option<&Bound<'py, PyAny>>,
        tmax: Option<f64>,
        dt: Option<f64>,
        space_order: Option<&Bound<'py, PyAny>>,
        nbl: Option<&Bound<'py, PyAny>>,
        boundary: &str,
        boundary_velocity: Option<f64>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let length = Length::of(nt, tmax)?;
        let survey = survey(
            vp,
            spacing,
            sources,
            receivers,
            f0,
            length,
            dt,
            space_order,
            nbl,
            boundary,
            boundary_velocity,
        )?;
        let mut records =
            Vec::with_capacity(survey.shots.len() * survey.time.nt * survey.receivers);
        let mut watch = Watch::new(progress.as_ref());
        let steps = survey.time.steps() as u64;
        let total = steps * survey.shots.len() as u64;
        let termination = Termination::enter(py);
        let mut run_all = || -> PyResult<()> {
            for (i, shot) in survey.shots.iter().enumerate() {
                let run = py.detach(|| {
                    GpuAcoustic::new(&self.gpus[0], shot)?.forward_with_progress(false, |p| {
                        watch.tick(i as u64 * steps + p.done, total)
                    })
                });
                // Which shot broke, for a record that is not finite.
                let run = run.map_err(|e| e.in_shot(i));
                records.extend(watch.finish(run)?.traces);
            }
            Ok(())
        };
        let ran = run_all();
        termination.leave(py, &ran);
        ran?;
        let shape = [survey.shots.len(), survey.time.nt, survey.receivers];
        array(py, records, &shape, survey.dtype)
    }

    /// The costs that `gradient`'s `costs` takes, measured on the (first) GPU for the first
    /// shot of this survey: `[step, to_host, to_gpu]`, with `disk` `[..., to_disk,
    /// from_disk]`, with a lossy `checkpoint_format` `[..., encode, decode]` (seconds; the
    /// copies move the state as the format stores it, `batch` shots of it). Placement by cost
    /// with a lossy format needs its costs given, since they choose the schedule and so the
    /// bits: measure them once, then give them to every run. The other keywords are
    /// `forward`'s and `gradient`'s.
    #[pyo3(signature = (
        vp, spacing, sources, receivers, f0 = 10.0, nt = None, tmax = None, dt = None,
        space_order = None, nbl = None, boundary = "cpml", boundary_velocity = None,
        disk = None, batch = None, checkpoint_format = "f32"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn measure_costs<'py>(
        &self,
        py: Python<'py>,
        vp: &Bound<'py, PyAny>,
        spacing: f64,
        sources: &Bound<'py, PyAny>,
        receivers: &Bound<'py, PyAny>,
        f0: f64,
        nt: Option<&Bound<'py, PyAny>>,
        tmax: Option<f64>,
        dt: Option<f64>,
        space_order: Option<&Bound<'py, PyAny>>,
        nbl: Option<&Bound<'py, PyAny>>,
        boundary: &str,
        boundary_velocity: Option<f64>,
        disk: Option<std::path::PathBuf>,
        batch: Option<&Bound<'py, PyAny>>,
        checkpoint_format: &str,
    ) -> PyResult<Vec<f64>> {
        let length = Length::of(nt, tmax)?;
        let survey = survey(
            vp,
            spacing,
            sources,
            receivers,
            f0,
            length,
            dt,
            space_order,
            nbl,
            boundary,
            boundary_velocity,
        )?;
        let policy = RunPolicy {
            disk,
            batch: optional_batch(batch)?,
            checkpoint_format: checkpoint_format.parse().map_err(to_py)?,
            ..RunPolicy::default()
        };
        let costs = py
            .detach(|| job::measure_costs(&self.gpus[0], &survey.shots, &policy))
            .map_err(to_py)?;
        // Ctrl-C while measuring: KeyboardInterrupt, not costs.
        py.check_signals()?;
        Ok(costs)
    }

    /// `(misfit, gradient, info)` of the shots of `sources` against `observed`
    /// `(shots, nt, receivers)`: misfit `½ Σ (d − d_obs)²` summed over shots, `∂J/∂m` of the
    /// physical model (shape and dtype of `vp`), and what the run did: the main job's
    /// `summary.json`, key for key (`gpurevolve.job.Summary` in the Rust docs).
    ///
    /// The keywords after `boundary_velocity` are the main job's options of the same name
    /// (`device_memory` is `--device-memory`): `snaps` (checkpoint memory in two-level
    /// snapshots, default the fewest for which Revolve takes at most 3 forward steps per
    /// step; `"all"` is `store_all=True`), `store_all`, `schedule` within that memory
    /// (`"levels"`, `"revolve"` or `"classic"`), `placement` (`"multistage"` or
    /// `"optimal"`, by cost), `costs` (for placement by cost, seconds:
    /// `[step, to_host, to_gpu]`, with a disk tier `[..., to_disk, from_disk]`; default
    /// measured; with a lossy `checkpoint_format` required, the copies of the encoded state
    /// and then the format's kernels on a state, `[..., encode, decode]`, which
    /// `measure_costs` measures), `until_quiet` (a fraction such as `1e-4`: each shot stops once its
    /// wavefield's energy is below that fraction of its peak after the source has ended, with
    /// online checkpointing; misfit and gradient are those of the steps run,
    /// `info["reverse_steps"]`), `device_memory` and `host_memory` (checkpoint bytes on each
    /// GPU, the rest spilling to host memory, and in host memory), `disk` (a directory for a
    /// tier below host memory; files in a fresh subdirectory, removed at the end) and
    /// `disk_memory` (its bytes), `batch` (shots stepped by each dispatch, sharing the time
    /// axis and one schedule within `snaps`: an int, default 1, or `"auto"`, the size that
    /// minimises the modelled time per shot; with f32 checkpoints the bits do not depend on
    /// it) and
    /// `checkpoint_format` (`"f32"`, exact, the default; `"bf16"` or `"int8"`: more
    /// checkpoints in the same memory and fewer bytes spilled, a gradient close to the exact
    /// one). The shots are spread over the device's GPUs.
    /// `progress(done, total)` counts step evaluations over all shots, at most every 0.1 s;
    /// Ctrl-C stops the run (`KeyboardInterrupt`).
    #[pyo3(signature = (
        vp, observed, spacing, sources, receivers, f0 = 10.0, dt = None, space_order = None,
        nbl = None, boundary = "cpml", boundary_velocity = None, snaps = None, store_all = false,
        schedule = "levels", placement = "multistage", costs = None, until_quiet = None,
        device_memory = None, host_memory = None, disk = None, disk_memory = None,
        batch = None, checkpoint_format = "f32", progress = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn gradient<'py>(
        &self,
        py: Python<'py>,
        vp: &Bound<'py, PyAny>,
        observed: &Bound<'py, PyAny>,
        spacing: f64,
        sources: &Bound<'py, PyAny>,
        receivers: &Bound<'py, PyAny>,
        f0: f64,
        dt: Option<f64>,
        space_order: Option<&Bound<'py, PyAny>>,
        nbl: Option<&Bound<'py, PyAny>>,
        boundary: &str,
        boundary_velocity: Option<f64>,
        snaps: Option<&Bound<'py, PyAny>>,
        store_all: bool,
        schedule: &str,
        placement: &str,
        costs: Option<Vec<f64>>,
        until_quiet: Option<f64>,
        device_memory: Option<&Bound<'py, PyAny>>,
        host_memory: Option<&Bound<'py, PyAny>>,
        disk: Option<std::path::PathBuf>,
        disk_memory: Option<&Bound<'py, PyAny>>,
        batch: Option<&Bound<'py, PyAny>>,
        checkpoint_format: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(f64, Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let clock = Instant::now();
        let policy = policy_of(
            snaps,
            store_all,
            schedule,
            placement,
            costs,
            until_quiet,
            [device_memory, host_memory, disk_memory],
            disk,
            batch,
            checkpoint_format,
        )?;
        let records = floats(observed, "observed")?;
        if records.shape.len() != 3 {
            return Err(bad(
                "observed",
                format!(
                    "must have shape (shots, nt, receivers), got {:?}",
                    records.shape
                ),
            ));
        }
        let [shots, nt, nrec] = [records.shape[0], records.shape[1], records.shape[2]];
        let survey = survey(
            vp,
            spacing,
            sources,
            receivers,
            f0,
            Length::Samples(nt),
            dt,
            space_order,
            nbl,
            boundary,
            boundary_velocity,
        )?;
        if shots != survey.shots.len() || nrec != survey.receivers {
            return Err(bad(
                "observed",
                format!(
                    "shape {:?} does not match {} sources and {} receivers; give (shots, nt, \
                     receivers) = ({}, nt, {})",
                    records.shape,
                    survey.shots.len(),
                    survey.receivers,
                    survey.shots.len(),
                    survey.receivers
                ),
            ));
        }
        let observed: Vec<Vec<f64>> = records
            .data
            .chunks(nt * nrec)
            .map(<[f64]>::to_vec)
            .collect();
        let job = GradientJob::new(survey.shots, observed, policy).map_err(to_py)?;
        let plan = py.detach(|| job.plan(&self.gpus[0])).map_err(to_py)?;

        // Progress over all shots, each counted as planned (an online run counts as one of
        // every step); shots run side by side on several devices.
        let per_shot = plan.evaluations_per_shot();
        let total = per_shot * shots as u64;
        let watch = Mutex::new((Watch::new(progress.as_ref()), vec![0u64; shots]));
        let termination = Termination::enter(py);
        let result = py.detach(|| {
            job.run(&plan, &self.gpus, None, |shot, p| {
                let Ok(mut guard) = watch.lock() else {
                    return ControlFlow::Break(());
                };
                let (watch, done) = &mut *guard;
                done[shot] = p.done.min(per_shot);
                watch.tick(done.iter().sum(), total)
            })
        });
        let result = match watch.into_inner() {
            Ok((mut watch, _)) => watch.finish(result),
            Err(_) => result.map_err(to_py),
        };
        termination.leave(py, &result);
        let result = result?;
        let gradient = job.shots()[0]
            .model_gradient(&result.gradient)
            .map_err(to_py)?;
        let gradient = array(py, gradient, &survey.shape, survey.dtype)?;
        let mut summary = job
            .summary(&plan, &result, RunContext::of_devices(&self.gpus))
            .map_err(to_py)?;
        summary
            .timings
            .insert("total".into(), clock.elapsed().as_secs_f64());
        // The summary's own JSON, read by Python's: the keys of summary.json by construction.
        let info = py
            .import("json")?
            .call_method1("loads", (job::to_json(&summary),))?;
        Ok((result.misfit, gradient, info))
    }

    /// Records the forward of a differentiable operator and keeps its checkpoints for a
    /// backward with any adjoint source (`gpurevolve.Tape`): `gpurevolve.torch` and
    /// `gpurevolve.jax` call it. Shot `i` fires `amplitudes[i]` `(nt, sources)` (any time
    /// functions, in this package's sign: the traces of `forward` for a Ricker wavelet) from
    /// `sources[i]` `(sources, dims)` and records at `receivers[i]` `(receivers, dims)`,
    /// positions in metres; `nt` is `amplitudes.shape[1]`, `dt` must keep the scheme stable
    /// (`default_dt`), and `f0` is the wavelets' peak frequency (Hz): it tunes the CPML (its
    /// α, as `forward`'s `f0` does) and is checked against the grid. The keywords after
    /// `boundary_velocity` are `gradient`'s, with two differences, because every batch of a
    /// tape holds its checkpoints until the backward: `batch` defaults to every shot the GPU
    /// holds in one batch, and the memory keywords are shared among the batches (`snaps` is
    /// one batch's, by default one shot's default for each of its shots). Runs on the
    /// device's first GPU; Ctrl-C on the main thread stops it (`KeyboardInterrupt`).
    #[pyo3(signature = (
        vp, spacing, amplitudes, sources, receivers, dt, f0, space_order = None, nbl = None,
        boundary = "cpml", boundary_velocity = None, snaps = None, store_all = false,
        schedule = "levels", placement = "multistage", costs = None, device_memory = None,
        host_memory = None, disk = None, disk_memory = None, batch = None,
        checkpoint_format = "f32"
    ))]
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        py: Python<'_>,
        vp: &Bound<'_, PyAny>,
        spacing: f64,
        amplitudes: &Bound<'_, PyAny>,
        sources: &Bound<'_, PyAny>,
        receivers: &Bound<'_, PyAny>,
        dt: f64,
        f0: f64,
        space_order: Option<&Bound<'_, PyAny>>,
        nbl: Option<&Bound<'_, PyAny>>,
        boundary: &str,
        boundary_velocity: Option<f64>,
        snaps: Option<&Bound<'_, PyAny>>,
        store_all: bool,
        schedule: &str,
        placement: &str,
        costs: Option<Vec<f64>>,
        device_memory: Option<&Bound<'_, PyAny>>,
        host_memory: Option<&Bound<'_, PyAny>>,
        disk: Option<std::path::PathBuf>,
        disk_memory: Option<&Bound<'_, PyAny>>,
        batch: Option<&Bound<'_, PyAny>>,
        checkpoint_format: &str,
    ) -> PyResult<crate::tape::Tape> {
        let mut policy = policy_of(
            snaps,
            store_all,
            schedule,
            placement,
            costs,
            None,
            [device_memory, host_memory, disk_memory],
            disk,
            batch,
            checkpoint_format,
        )?;
        let default_batch = batch.is_none_or(|b| b.is_none());
        let (space_order, nbl) = (size(space_order, "space_order", 8)?, size(nbl, "nbl", 20)?);
        crate::tape::record(
            py,
            &self.gpus,
            vp,
            spacing,
            amplitudes,
            sources,
            receivers,
            dt,
            f0,
            space_order,
            nbl,
            boundary,
            boundary_velocity,
            {
                if default_batch {
                    policy.batch = Batch::Shots(usize::MAX);
                }
                policy
            },
        )
    }
}

/// The adapters' names, joined by ` + `.
fn adapter_names(gpus: &[Gpu]) -> String {
    gpus.iter()
        .map(|g| g.adapter_info().name.clone())
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The model helpers read the velocity array with no absorbing layer.
fn model(vp: &Bound<'_, PyAny>, spacing: f64) -> PyResult<(Model, Dtype)> {
    let Floats { data, shape, dtype } = floats(vp, "vp")?;
    Ok((Model::new(&shape, spacing, 0, data).map_err(to_py)?, dtype))
}

/// The time step `forward` and `gradient` take when `dt` is None: 0.8 × the CFL limit of
/// `vp` for this spacing and space order. For an inversion, compute it once from the fastest
/// model and pass it to every call, so observed and predicted data share one time axis.
#[pyfunction]
#[pyo3(signature = (vp, spacing, space_order = None))]
pub fn default_dt(
    vp: &Bound<'_, PyAny>,
    spacing: f64,
    space_order: Option<&Bound<'_, PyAny>>,
) -> PyResult<f64> {
    let space_order = size(space_order, "space_order", 8)?;
    let (model, _) = model(vp, spacing)?;
    Ok(TimeAxis::new(&model, space_order, 2, None)
        .map_err(to_py)?
        .dt)
}

/// The main job's Marmousi-like model (m/s, float64): a water layer over faulted, folded
/// layers, of `shape` `(nx, nz)` or `(nx, ny, nz)`; `seed` varies its structure.
#[pyfunction]
#[pyo3(signature = (shape, spacing, seed = None))]
pub fn marmousi_like<'py>(
    py: Python<'py>,
    shape: Vec<Bound<'py, PyAny>>,
    spacing: f64,
    seed: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let shape = shape
        .iter()
        .map(|n| size(Some(n), "shape", 0))
        .collect::<PyResult<Vec<usize>>>()?;
    let seed = crate::arrays::count(seed, "seed", 0)?;
    let m = Model::marmousi_like(&shape, spacing, 0, seed).map_err(to_py)?;
    array(py, m.velocity().to_vec(), &shape, Dtype::F64)
}

/// The main job's starting model: `vp` smoothed by three box filters of half-width `radius`
/// cells over slowness (about a Gaussian), in the dtype of `vp`.
#[pyfunction]
#[pyo3(signature = (vp, radius))]
pub fn smoothed<'py>(
    py: Python<'py>,
    vp: &Bound<'py, PyAny>,
    radius: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let radius = size(Some(radius), "radius", 0)?;
    let (model, dtype) = model(vp, 1.0)?;
    let shape = model.shape().to_vec();
    array(
        py,
        model.smoothed(radius).velocity().to_vec(),
        &shape,
        dtype,
    )
}

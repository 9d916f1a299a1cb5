//! `gpurevolve.Device`: one GPU opened once, shot records and checkpointed gradients from
//! numpy arrays; and the model helpers the main job uses.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use gpurevolve::acoustic::{
    Boundary, BoundaryKind, Geometry, GpuAcoustic, Model, Problem, TimeAxis,
};
use gpurevolve::engine::{RevolverOptions, RunStats};
use gpurevolve::fwi::{self, Checkpointing, ScheduleChoice};
use gpurevolve::gpu::{Gpu, GpuOptions};
use gpurevolve::schedule;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::arrays::{Dtype, Floats, array, floats, optional_count, points, size};
use crate::{bad, to_py};

/// How often, at most, a long call takes the GIL back to check for Ctrl-C and to call the
/// progress callback.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Ctrl-C and the progress callback while the GPU works without the GIL: at most every
/// [`CHECK_EVERY`] (and at the end) it takes the GIL back, checks for signals and calls
/// `progress(done, total)`. An exception from either stops the run and is kept, to be raised
/// in place of the run's [`Interrupted`](gpurevolve::Error::Interrupted).
struct Watch<'p> {
    progress: Option<&'p Py<PyAny>>,
    last: Instant,
    stopped: Option<PyErr>,
}

impl<'p> Watch<'p> {
    fn new(progress: Option<&'p Py<PyAny>>) -> Self {
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

    /// The run's result, with the exception that stopped it raised in its place. An
    /// exception caught at the last check (Ctrl-C as the run ended) is raised too: the signal
    /// was consumed by that check, and dropping it would lose the user's Ctrl-C.
    fn finish<T>(&mut self, result: gpurevolve::Result<T>) -> PyResult<T> {
        match (result, self.stopped.take()) {
            (_, Some(e)) => Err(e),
            (result, None) => result.map_err(to_py),
        }
    }
}

/// SIGTERM and SIGHUP, while a call runs: `gpurevolve/_signals.py` turns each into an
/// exception the run's checks raise (as Ctrl-C), and sends the signal again once the run has
/// unwound, its disk files removed.
struct Termination {
    saved: Option<Py<PyAny>>,
}

impl Termination {
    fn enter(py: Python<'_>) -> Self {
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
    fn leave<T>(self, py: Python<'_>, result: &PyResult<T>) {
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

/// A GPU opened once, with its compiled pipelines kept for every later call (an inversion
/// loop pays the start-up once). `adapter` picks one of the machine's adapters by index;
/// `software=True` asks for a software adapter (lavapipe), the one used when there is no
/// GPU.
#[pyclass(module = "gpurevolve", frozen)]
pub struct Device {
    gpu: Gpu,
}

/// The arguments every call shares, checked, as one problem per shot.
struct Survey {
    shots: Vec<Problem>,
    shape: Vec<usize>,
    dtype: Dtype,
    receivers: usize,
    time: TimeAxis,
    boundary: Boundary,
}

/// Time axis wanted: a sample count, or a duration.
enum Length {
    Samples(usize),
    Seconds(f64),
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
    space_order: usize,
    nbl: usize,
    boundary: &str,
    boundary_velocity: Option<f64>,
) -> PyResult<Survey> {
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
    let count = receivers.len();
    let shot = |source: Vec<f64>| {
        let geometry = Geometry::new(&model, vec![source], receivers.clone(), f0).map_err(to_py)?;
        Problem::with_boundary(model.clone(), geometry, time, space_order, boundary).map_err(to_py)
    };
    // One shot first: the survey's host memory is checked before the others exist.
    if let Some(first) = sources.first() {
        shot(first.clone())?
            .check_survey(sources.len(), 1)
            .map_err(to_py)?;
    }
    let shots = sources
        .into_iter()
        .map(shot)
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Survey {
        shots,
        shape,
        dtype,
        receivers: count,
        time,
        boundary,
    })
}

/// The checkpointing of `snaps` (`None`, an int or `"all"`) under `choice`, as the main job
/// reads `--snaps` and `--schedule`.
fn checkpointing(
    snaps: Option<&Bound<'_, PyAny>>,
    choice: ScheduleChoice,
    steps: u64,
) -> PyResult<Checkpointing> {
    let snaps = match snaps {
        None => schedule::min_snapshots_for_factor(steps, 3.0).map_err(to_py)?,
        Some(s) if s.is_instance_of::<PyString>() => {
            let text: String = s.extract()?;
            if text == "all" {
                return Ok(Checkpointing::StoreAll);
            }
            return Err(bad(
                "snaps",
                format!("{text:?} is not a count; give an int, None or \"all\""),
            ));
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
            // Checked now, with Revolve's message, whichever schedule runs.
            schedule::Revolve::new(steps, count).map_err(to_py)?;
            count
        }
    };
    Ok(choice.checkpointing(snaps, steps))
}

/// Online checkpointing until quiet, in the memory of `snaps` two-level snapshots (as the
/// main job's `--until-quiet`: state 0's slot comes free).
fn until_quiet_checkpointing(
    snaps: Option<&Bound<'_, PyAny>>,
    fraction: f64,
    steps: u64,
) -> PyResult<Checkpointing> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(bad(
            "until_quiet",
            format!(
                "{fraction}: the fraction of the peak energy at which a shot stops must lie strictly between 0 and 1 (1e-4, say)"
            ),
        ));
    }
    let snaps = match checkpointing(snaps, ScheduleChoice::Classic, steps)? {
        Checkpointing::Snapshots(s) => s,
        _ => {
            return Err(bad(
                "snaps",
                "until_quiet keeps a number of snapshots, not \"all\"",
            ));
        }
    };
    Ok(Checkpointing::UntilQuiet {
        snaps: (snaps + 1).min(steps),
        fraction,
    })
}

#[pymethods]
impl Device {
    #[new]
    #[pyo3(signature = (adapter = None, software = false))]
    fn new(py: Python<'_>, adapter: Option<&Bound<'_, PyAny>>, software: bool) -> PyResult<Self> {
        let adapter = optional_count(adapter, "adapter")?.map(|a| a as usize);
        let options = GpuOptions {
            force_fallback_adapter: software,
            ..GpuOptions::default()
        };
        let gpu = py
            .detach(|| match adapter {
                Some(index) => Gpu::on_adapter(index, &options),
                None => Gpu::with_options(&options),
            })
            .map_err(to_py)?;
        log::info!("opened {}", gpu.adapter_info().name);
        Ok(Device { gpu })
    }

    /// The adapter's name.
    #[getter]
    fn adapter(&self) -> String {
        self.gpu.adapter_info().name.clone()
    }

    /// Whether the adapter is a software one (correct, not fast).
    #[getter]
    fn is_software(&self) -> bool {
        self.gpu.is_software()
    }

    fn __repr__(&self) -> String {
        format!(
            "Device(adapter={:?}, is_software={})",
            self.adapter(),
            if self.is_software() { "True" } else { "False" }
        )
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
        let nt = nt
            .filter(|n| !n.is_none())
            .map(|n| size(Some(n), "nt", 0))
            .transpose()?;
        let (space_order, nbl) = (size(space_order, "space_order", 8)?, size(nbl, "nbl", 20)?);
        let length = match (nt, tmax) {
            (Some(_), Some(_)) => return Err(bad("nt", "give nt or tmax, not both")),
            (Some(nt), None) => Length::Samples(nt),
            (None, tmax) => Length::Seconds(tmax.unwrap_or(1.2)),
        };
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
                    GpuAcoustic::new(&self.gpu, shot)?.forward_with_progress(false, |p| {
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

    /// `(misfit, gradient, info)` of the shots of `sources` against `observed`
    /// `(shots, nt, receivers)`: misfit `½ Σ (d − d_obs)²` summed over shots, `∂J/∂m` of the
    /// physical model (shape and dtype of `vp`), and what the runs did (the keys of the main
    /// job's `summary.json`). `snaps`: checkpoint memory in two-level snapshots (default: the
    /// fewest for which Revolve takes at most 3 forward steps per step), or `"all"`;
    /// `schedule` within it: `"levels"`, `"revolve"` or `"classic"`. `device_memory` and
    /// `host_memory` bound the checkpoint bytes on the GPU (the rest spill to host memory) and
    /// in host memory. `until_quiet` (a fraction such as `1e-4`) stops each shot once its
    /// wavefield's energy is below that fraction of its peak after the source has ended, with
    /// online checkpointing in the memory of `snaps` (`schedule` does not apply); the misfit
    /// and gradient are then those of the steps run (`info["reverse_steps"]` per shot), the
    /// store-all ones of a record that long, bit for bit. `disk` (a directory) adds a tier
    /// below host memory for the checkpoints beyond `host_memory` (files in a fresh
    /// subdirectory, removed at the end; `disk_memory` bounds it). `progress(done, total)` counts
    /// step evaluations over all shots, at most every 0.1 s (with `until_quiet`, `total` is
    /// that of shots that run to the end of `observed`); Ctrl-C stops the run
    /// (`KeyboardInterrupt`).
    #[pyo3(signature = (
        vp, observed, spacing, sources, receivers, f0 = 10.0, dt = None, space_order = None,
        nbl = None, boundary = "cpml", boundary_velocity = None, snaps = None,
        schedule = "levels", device_memory = None, host_memory = None, until_quiet = None,
        disk = None, disk_memory = None, progress = None
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
        schedule: &str,
        device_memory: Option<&Bound<'py, PyAny>>,
        host_memory: Option<&Bound<'py, PyAny>>,
        until_quiet: Option<f64>,
        disk: Option<std::path::PathBuf>,
        disk_memory: Option<&Bound<'py, PyAny>>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<(f64, Bound<'py, PyAny>, Bound<'py, PyDict>)> {
        let clock = Instant::now();
        let (space_order, nbl) = (size(space_order, "space_order", 8)?, size(nbl, "nbl", 20)?);
        let device_memory = optional_count(device_memory, "device_memory")?;
        let host_memory = optional_count(host_memory, "host_memory")?;
        let disk_memory = optional_count(disk_memory, "disk_memory")?;
        if disk_memory.is_some() && disk.is_none() {
            return Err(bad(
                "disk_memory",
                "it budgets the disk tier, which needs `disk` (a directory); give both, or \
                 neither",
            ));
        }
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
        if let Some(i) = records.data.iter().position(|x| !x.is_finite()) {
            return Err(bad(
                "observed",
                format!("value {i} (flat index) is not finite"),
            ));
        }
        let observed: Vec<Vec<f64>> = records
            .data
            .chunks(nt * nrec)
            .map(<[f64]>::to_vec)
            .collect();
        let steps = (nt - 1) as u64;
        let choice: ScheduleChoice = schedule.parse().map_err(to_py)?;
        let plan = match until_quiet {
            None => checkpointing(snaps, choice, steps)?,
            Some(fraction) => until_quiet_checkpointing(snaps, fraction, steps)?,
        };
        let options = RevolverOptions {
            device_budget: device_memory,
            host_budget: host_memory,
            disk,
            disk_budget: disk_memory,
            recompute_in_reverse: choice.recomputes(),
            ..RevolverOptions::default()
        };
        let memory = plan
            .schedule(steps)
            .map_err(to_py)?
            .memory(choice.recomputes());

        // Progress over all shots: each makes the same number of step evaluations (an online
        // run knows no total: that of a shot that runs its most steps stands in).
        let count = survey.shots.len() as u64;
        let online_total = match plan {
            Checkpointing::UntilQuiet { snaps, .. } => {
                let run = schedule::OnlineRun::new(steps, snaps).map_err(to_py)?;
                let stats = schedule::simulate(run).map_err(to_py)?;
                stats.state_adjoint_total_forward() + stats.reverse_steps
            }
            _ => 0,
        };
        let mut watch = Watch::new(progress.as_ref());
        let termination = Termination::enter(py);
        let result = py.detach(|| {
            fwi::gradient_with(
                &self.gpu,
                &survey.shots,
                &observed,
                plan,
                options,
                |shot, p| {
                    let total = p.total.max(online_total);
                    watch.tick(shot as u64 * total + p.done, count * total)
                },
            )
        });
        let result = watch.finish(result);
        termination.leave(py, &result);
        let result = result?;
        let gradient = survey.shots[0]
            .model_gradient(&result.gradient)
            .map_err(to_py)?;
        let gradient = array(py, gradient, &survey.shape, survey.dtype)?;

        // The keys of the main job's summary.json: per-shot lists where it has them.
        let info = PyDict::new(py);
        info.set_item("adapter", self.adapter())?;
        info.set_item("dimensions", survey.shape.len())?;
        info.set_item("shape", survey.shape.clone())?;
        info.set_item("spacing", spacing)?;
        info.set_item("nbl", nbl)?;
        info.set_item("boundary", survey.boundary.kind().name())?;
        info.set_item("boundary_velocity", survey.boundary.reference_velocity())?;
        info.set_item("space_order", space_order)?;
        info.set_item("shots", count)?;
        info.set_item("receivers", nrec)?;
        info.set_item("nt", nt)?;
        info.set_item("dt", survey.time.dt)?;
        info.set_item("steps", steps)?;
        info.set_item("schedule", memory.name)?;
        info.set_item("snaps", memory.snaps)?;
        info.set_item("checkpoint_levels", memory.levels)?;
        info.set_item(
            "checkpoint_bytes",
            memory.levels * survey.shots[0].level_bytes(),
        )?;
        let stats = &result.shots;
        let each = |f: fn(&RunStats) -> u64| stats.iter().map(f).collect::<Vec<u64>>();
        let forward_steps: u64 = stats.iter().map(|s| s.forward_steps).sum();
        info.set_item("forward_steps", each(|s| s.forward_steps))?;
        info.set_item("reverse_steps", each(|s| s.reverse_steps))?;
        info.set_item("saves", each(|s| s.saves))?;
        info.set_item("restores", each(|s| s.restores))?;
        // Per step run: a run until quiet may stop short of `steps`.
        let run_steps: u64 = stats.iter().map(|s| s.reverse_steps).sum();
        info.set_item(
            "recompute_factor",
            forward_steps as f64 / run_steps.max(1) as f64,
        )?;
        let peak = stats.iter().map(|s| s.peak_checkpoint_bytes).max();
        info.set_item("peak_checkpoint_bytes", peak.unwrap_or(0))?;
        info.set_item(
            "bytes_copied",
            stats.iter().map(|s| s.bytes_copied).sum::<u64>(),
        )?;
        info.set_item(
            "spilled_bytes",
            stats.iter().map(|s| s.spilled_bytes).sum::<u64>(),
        )?;
        let tiers = PyDict::new(py);
        tiers.set_item("host_saves", each(|s| s.host_saves))?;
        tiers.set_item("host_restores", each(|s| s.host_restores))?;
        tiers.set_item("bytes_to_host", each(|s| s.spilled_bytes))?;
        tiers.set_item("bytes_to_device", each(|s| s.restored_bytes))?;
        tiers.set_item("out_of_memory_demotions", each(|s| s.demotions))?;
        tiers.set_item("peak_host_bytes", each(|s| s.peak_host_bytes))?;
        tiers.set_item("disk_saves", each(|s| s.disk_saves))?;
        tiers.set_item("disk_restores", each(|s| s.disk_restores))?;
        tiers.set_item("bytes_to_disk", each(|s| s.disk_bytes_written))?;
        tiers.set_item("bytes_from_disk", each(|s| s.disk_bytes_read))?;
        info.set_item("tiers", tiers)?;
        info.set_item("until_quiet", until_quiet)?;
        info.set_item("misfit", result.misfit)?;
        let timings = PyDict::new(py);
        let seconds = |f: fn(&RunStats) -> f64| stats.iter().map(f).sum::<f64>();
        timings.set_item("forward sweeps", seconds(|s| s.forward_seconds))?;
        timings.set_item("reverse sweeps", seconds(|s| s.reverse_seconds))?;
        timings.set_item("total", clock.elapsed().as_secs_f64())?;
        info.set_item("timings", timings)?;
        info.set_item(
            "gradient_units",
            "dJ/dm, m = 1/c^2 in s^2/m^2; J = 1/2 sum (d - d_obs)^2, no dt weighting",
        )?;
        Ok((result.misfit, gradient, info))
    }
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

//! `gpurevolve.Tape`: the differentiable operator's forward, holding its checkpoints until a
//! backward with any adjoint source (`gpurevolve::job::Tape`). `gpurevolve.torch` and
//! `gpurevolve.jax` are built on it.

use std::sync::{Arc, Mutex};

use gpurevolve::acoustic::{Boundary, BoundaryKind, Model, TimeAxis};
use gpurevolve::gpu::Gpu;
use gpurevolve::job::{self, RunPolicy};
use pyo3::prelude::*;

use crate::arrays::{Dtype, Floats, array, floats};
use crate::device::{Termination, Watch};
use crate::{bad, to_py};

/// The first GPU of a `Device`, owned by a tape's thread as long as the tape lives.
pub(crate) struct FirstGpu(pub(crate) Arc<Vec<Gpu>>);

impl std::ops::Deref for FirstGpu {
    type Target = Gpu;
    fn deref(&self) -> &Gpu {
        &self.0[0]
    }
}

/// A recorded forward: its traces, and its checkpoints held (on the GPU, spilled to host
/// memory or disk as the policy allows) for `backward`. Made by `Device.record`. Dropping it,
/// or `close()`, frees them.
#[pyclass(module = "gpurevolve", frozen)]
pub struct Tape {
    tape: Mutex<Option<job::Tape>>,
    /// The physical model's shape and the dtype results take.
    shape: Vec<usize>,
    dtype: Dtype,
    /// `(shots, nt, receivers)` and `(shots, nt, sources)`.
    traces_shape: [usize; 3],
    sources_shape: [usize; 3],
    traces: Vec<f64>,
    /// `info`'s entries: a text (when not empty) or a count.
    info: Vec<(&'static str, String, u64)>,
}

/// Why a backward did not run.
enum Refused {
    Closed,
    Poisoned,
    Failed(gpurevolve::Error),
}

/// `(shots, count, dims)` positions in metres, as one list per shot.
fn shot_points(obj: &Bound<'_, PyAny>, name: &str, dims: usize) -> PyResult<Vec<Vec<Vec<f64>>>> {
    let a = floats(obj, name)?;
    if !(a.shape.len() == 3 && a.shape[2] == dims && a.shape[0] > 0 && a.shape[1] > 0) {
        return Err(bad(
            name,
            format!(
                "positions must have shape (shots, count, {dims}) for a {dims}D model, in \
                 metres, with at least one shot and one point; got shape {:?}",
                a.shape
            ),
        ));
    }
    Ok(a.data
        .chunks(a.shape[1] * dims)
        .map(|shot| shot.chunks(dims).map(<[f64]>::to_vec).collect())
        .collect())
}

/// `(shots, nt, points)` series as one `[nt][points]` vector per shot.
fn per_shot(a: &Floats) -> Vec<Vec<f64>> {
    let per = a.shape[1] * a.shape[2];
    a.data.chunks(per.max(1)).map(<[f64]>::to_vec).collect()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn record(
    py: Python<'_>,
    gpus: &Arc<Vec<Gpu>>,
    vp: &Bound<'_, PyAny>,
    spacing: f64,
    amplitudes: &Bound<'_, PyAny>,
    sources: &Bound<'_, PyAny>,
    receivers: &Bound<'_, PyAny>,
    dt: f64,
    f0: f64,
    space_order: usize,
    nbl: usize,
    boundary: &str,
    boundary_velocity: Option<f64>,
    policy: RunPolicy,
) -> PyResult<Tape> {
    let Floats { data, shape, dtype } = floats(vp, "vp")?;
    if !(shape.len() == 2 || shape.len() == 3) {
        return Err(bad(
            "vp",
            format!("the model must have shape (nx, nz) or (nx, ny, nz), got {shape:?}"),
        ));
    }
    let dims = shape.len();
    let model = Model::new(&shape, spacing, nbl, data).map_err(to_py)?;
    let amplitudes = floats(amplitudes, "amplitudes")?;
    let source_sets = shot_points(sources, "sources", dims)?;
    let receiver_sets = shot_points(receivers, "receivers", dims)?;
    let shots = source_sets.len();
    let [nsrc, nrec] = [source_sets[0].len(), receiver_sets[0].len()];
    if amplitudes.shape.len() != 3
        || amplitudes.shape[0] != shots
        || amplitudes.shape[2] != nsrc
        || amplitudes.shape[1] < 2
    {
        return Err(bad(
            "amplitudes",
            format!(
                "must have shape (shots, nt, sources) = ({shots}, nt ≥ 2, {nsrc}) for sources \
                 of shape {:?}; got {:?}",
                [shots, nsrc, dims],
                amplitudes.shape
            ),
        ));
    }
    if receiver_sets.len() != shots {
        return Err(bad(
            "receivers",
            format!(
                "{} shots of receivers for {shots} shots of sources",
                receiver_sets.len()
            ),
        ));
    }
    let nt = amplitudes.shape[1];
    let time = TimeAxis::new(&model, space_order, nt, Some(dt)).map_err(to_py)?;
    let kind: BoundaryKind = boundary.parse().map_err(|e| bad("boundary", e))?;
    let boundary =
        Boundary::new(kind, boundary_velocity.unwrap_or(model.max_velocity())).map_err(to_py)?;
    let problems = job::survey_of_shots(
        &model,
        &source_sets,
        &receiver_sets,
        f0,
        time,
        space_order,
        boundary,
    )
    .map_err(to_py)?;
    let series = per_shot(&amplitudes);
    let owner = FirstGpu(Arc::clone(gpus));
    // Ctrl-C (and SIGTERM, SIGHUP) stop the recording within `WATCH_EVERY` and a step.
    let mut watch = Watch::new(None);
    let termination = Termination::enter(py);
    let recorded = py.detach(|| {
        job::Tape::record_watched(owner, problems, series, policy, &mut || watch.check())
    });
    // The exception that stopped the run is raised in place of its `Interrupted`; a tape
    // recorded as it came is freed without the GIL (its thread may write to disk).
    let recorded = match (recorded, watch.take_stopped()) {
        (Ok(tape), Some(raised)) => {
            py.detach(|| drop(tape));
            Err(raised)
        }
        (_, Some(raised)) => Err(raised),
        (recorded, None) => recorded.map_err(to_py),
    };
    termination.leave(py, &recorded);
    let tape = recorded?;
    let traces: Vec<f64> = tape.traces().concat();
    let info = tape_info(&tape);
    Ok(Tape {
        tape: Mutex::new(Some(tape)),
        shape,
        dtype,
        traces_shape: [shots, nt, nrec],
        sources_shape: [shots, nt, nsrc],
        traces,
        info,
    })
}

/// What the recording did, as `info` gives it.
fn tape_info(tape: &job::Tape) -> Vec<(&'static str, String, u64)> {
    let info = tape.info();
    let sum = |f: fn(&gpurevolve::engine::RunStats) -> u64| info.stats.iter().map(f).sum::<u64>();
    vec![
        ("batch", String::new(), info.batch as u64),
        ("batches", String::new(), info.stats.len() as u64),
        ("checkpointing", format!("{:?}", info.plan.checkpointing), 0),
        (
            "planned_forward_steps",
            String::new(),
            info.plan.forward_steps(),
        ),
        (
            "recording_forward_steps",
            String::new(),
            sum(|s| s.forward_steps),
        ),
        (
            "checkpoint_bytes_on_device",
            String::new(),
            sum(|s| s.peak_checkpoint_bytes),
        ),
        (
            "checkpoint_bytes_slower",
            String::new(),
            sum(|s| s.peak_slower_bytes),
        ),
    ]
}

#[pymethods]
impl Tape {
    /// The traces of the forward, `(shots, nt, receivers)`, in the dtype of `vp`.
    #[getter]
    fn traces<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        array(py, self.traces.clone(), &self.traces_shape, self.dtype)
    }

    /// What the recording planned and did: `batch` (shots stepped together), `batches`,
    /// `checkpointing`, `planned_forward_steps` (a batch's), `recording_forward_steps`,
    /// the checkpoints' peak bytes on the device and in slower tiers.
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
        let dict = pyo3::types::PyDict::new(py);
        for (key, text, count) in &self.info {
            if text.is_empty() {
                dict.set_item(key, count)?;
            } else {
                dict.set_item(key, text)?;
            }
        }
        Ok(dict)
    }

    /// Whether a `backward` can still run (no backward without `keep` has, and `close` was
    /// not called).
    #[getter]
    fn live(&self, py: Python<'_>) -> bool {
        py.detach(|| {
            self.tape
                .lock()
                .map(|t| t.as_ref().is_some_and(job::Tape::is_live))
                .unwrap_or(false)
        })
    }

    /// `(grad_m, grad_amplitudes)` for the adjoint source `adjoint`, `∂L/∂traces` of shape
    /// `(shots, nt, receivers)`: `∂L/∂m` of the model (shape of `vp`; m = 1/vp², s²/m²) and
    /// `∂L/∂amplitudes`, `(shots, nt, sources)`. The reverse sweep spends the checkpoints:
    /// with `keep=True` the forward is run again after it (one more forward's cost), so
    /// that another backward may follow; without it a second backward is a `ValueError`.
    /// Ctrl-C on the main thread stops it (`KeyboardInterrupt`) and spends the checkpoints,
    /// unless the reverse sweep had already ended.
    #[pyo3(signature = (adjoint, keep = false))]
    fn backward<'py>(
        &self,
        py: Python<'py>,
        adjoint: &Bound<'py, PyAny>,
        keep: bool,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let adjoint = floats(adjoint, "adjoint")?;
        if adjoint.shape != self.traces_shape {
            return Err(bad(
                "adjoint",
                format!(
                    "∂L/∂traces must have the traces' shape (shots, nt, receivers) = {:?}, got \
                     {:?}",
                    self.traces_shape, adjoint.shape
                ),
            ));
        }
        let series = per_shot(&adjoint);
        // Ctrl-C (and SIGTERM, SIGHUP) stop the backward within `WATCH_EVERY` and a step,
        // spending the checkpoints.
        let mut watch = Watch::new(None);
        let termination = Termination::enter(py);
        // The lock is taken without the GIL: a thread that holds the GIL and waits for it
        // (`live`, `close`) never blocks the backward's return.
        let reversed = py.detach(|| {
            let mut guard = self.tape.lock().map_err(|_| Refused::Poisoned)?;
            let tape = guard.as_mut().ok_or(Refused::Closed)?;
            let reversed = tape.backward_watched(&series, keep, &mut || watch.check());
            reversed.map_err(Refused::Failed)
        });
        // The exception that stopped the run is raised in place of its `Interrupted`.
        let result = match (reversed, watch.take_stopped()) {
            (_, Some(raised)) => Err(raised),
            (Ok(gradient), None) => Ok(gradient),
            (Err(Refused::Closed), None) => Err(bad(
                "backward",
                "the tape was closed: record the forward again",
            )),
            (Err(Refused::Poisoned), None) => Err(bad(
                "backward",
                "a backward of this tape failed inside; record again",
            )),
            (Err(Refused::Failed(e)), None) => Err(to_py(e)),
        };
        termination.leave(py, &result);
        let gradient = result?;
        let grad_m = array(py, gradient.gradient, &self.shape, self.dtype)?;
        let grad_q = array(
            py,
            gradient.source_gradients.concat(),
            &self.sources_shape,
            self.dtype,
        )?;
        Ok((grad_m, grad_q))
    }

    /// Frees the checkpoints now; a later `backward` is a `ValueError`.
    fn close(&self, py: Python<'_>) {
        py.detach(|| {
            let tape = match self.tape.lock() {
                Ok(mut t) => t.take(),
                Err(poisoned) => poisoned.into_inner().take(),
            };
            drop(tape);
        });
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let [shots, nt, receivers] = self.traces_shape;
        let live = if self.live(py) { "live" } else { "spent" };
        format!(
            "<gpurevolve.Tape {shots} shots, nt {nt}, {receivers} receivers, {live}, model {:?}>",
            self.shape
        )
    }
}

/// The Ricker wavelet `forward` and `gradient` fire, sampled at `t_k = k·dt` for `k < nt`:
/// peak frequency `f0` (Hz), delayed by `t0` seconds (default `1/f0`), float64. In this
/// package's sign; Deepwave's callers (`gpurevolve.torch.scalar`) pass its negative to get
/// the same traces.
#[pyfunction]
#[pyo3(signature = (f0, nt, dt, t0 = None))]
pub fn ricker<'py>(
    py: Python<'py>,
    f0: f64,
    nt: &Bound<'py, PyAny>,
    dt: f64,
    t0: Option<f64>,
) -> PyResult<Bound<'py, PyAny>> {
    let nt = crate::arrays::size(Some(nt), "nt", 0)?;
    if !(f0.is_finite() && f0 > 0.0) {
        return Err(bad(
            "f0",
            format!("must be a positive frequency in Hz, got {f0}"),
        ));
    }
    if !(dt.is_finite() && dt > 0.0) {
        return Err(bad(
            "dt",
            format!("must be a positive time step in seconds, got {dt}"),
        ));
    }
    let t0 = t0.unwrap_or(1.0 / f0);
    if !t0.is_finite() {
        return Err(bad("t0", format!("must be finite, got {t0}")));
    }
    let series = (0..nt)
        .map(|k| gpurevolve::acoustic::ricker(f0, t0, k as f64 * dt))
        .collect();
    array(py, series, &[nt], Dtype::F64)
}

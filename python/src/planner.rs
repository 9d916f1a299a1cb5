//! The planner, pyrevolve style: Revolve's closed-form costs, and its schedule as an iterable
//! of actions for a user's own (CPU) code to carry out.

use gpurevolve::schedule::{self, Action as RustAction};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::count;
use crate::to_py;

/// What Revolve costs for `steps` steps with `snaps` snapshots (the initial state's
/// included), from the closed form of Griewank & Walther: a dict with `steps`, `snaps`,
/// `slots_used`, `repetitions` (t), `advances` (p, the fewest forward steps to place the
/// checkpoints), `total_forward` (n + p, with an adjoint that recomputes its step),
/// `state_adjoint_forward` (p + 1, with an adjoint that needs only its state, as the
/// acoustic one) and `recompute_factor` ((n + p) / n).
#[pyfunction]
pub fn plan<'py>(
    py: Python<'py>,
    steps: &Bound<'py, PyAny>,
    snaps: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let (steps, snaps) = (
        count(Some(steps), "steps", 0)?,
        count(Some(snaps), "snaps", 0)?,
    );
    let info = schedule::plan(steps, snaps).map_err(to_py)?;
    let d = PyDict::new(py);
    d.set_item("steps", info.steps)?;
    d.set_item("snaps", info.snaps)?;
    d.set_item("slots_used", info.slots_used)?;
    d.set_item("repetitions", info.repetitions)?;
    d.set_item("advances", info.advances)?;
    d.set_item("total_forward", info.total_forward)?;
    d.set_item("state_adjoint_forward", info.advances + 1)?;
    d.set_item("recompute_factor", info.recompute_factor)?;
    Ok(d)
}

/// One action of a schedule. `kind` is one of `"advance"` (run the live state forward from
/// state `start` to state `stop`), `"save"` (keep the live state, state `step`, in `slot`),
/// `"restore"` (make state `step` from `slot` the live state), `"free"` (empty `slot`),
/// `"reverse"` (run step `step` forward recording, then its adjoint; a restore or a join
/// follows), `"join"` (make state `step` live from the live state `step + 1`'s older levels and
/// the oldest level it needs from the state in `slot`; only level schedules with joins) and
/// `"end"`. Fields that do not apply are `None`.
#[pyclass(module = "gpurevolve", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct Action {
    kind: &'static str,
    start: Option<u64>,
    stop: Option<u64>,
    step: Option<u64>,
    slot: Option<usize>,
}

impl From<RustAction> for Action {
    fn from(action: RustAction) -> Self {
        let base = Action {
            kind: "end",
            start: None,
            stop: None,
            step: None,
            slot: None,
        };
        match action {
            RustAction::Advance { from, to } => Action {
                kind: "advance",
                start: Some(from),
                stop: Some(to),
                ..base
            },
            RustAction::Save { step, slot } => Action {
                kind: "save",
                step: Some(step),
                slot: Some(slot),
                ..base
            },
            RustAction::Restore { step, slot } => Action {
                kind: "restore",
                step: Some(step),
                slot: Some(slot),
                ..base
            },
            RustAction::Free { step, slot } => Action {
                kind: "free",
                step: Some(step),
                slot: Some(slot),
                ..base
            },
            RustAction::Reverse { step } => Action {
                kind: "reverse",
                step: Some(step),
                ..base
            },
            RustAction::Join { step, slot } => Action {
                kind: "join",
                step: Some(step),
                slot: Some(slot),
                ..base
            },
            _ => base,
        }
    }
}

#[pymethods]
impl Action {
    fn __repr__(&self) -> String {
        let field = |name: &str, v: Option<u64>| v.map(|v| format!(", {name}={v}"));
        let parts: String = [
            field("start", self.start),
            field("stop", self.stop),
            field("step", self.step),
            field("slot", self.slot.map(|s| s as u64)),
        ]
        .into_iter()
        .flatten()
        .collect();
        format!("Action('{}'{parts})", self.kind)
    }
}

/// Revolve's optimal schedule for `steps` steps and `snaps` snapshots, as an iterable of
/// `Action`s ending with `"end"`. It is read once, like a generator: make a new one to
/// read it again.
#[pyclass(module = "gpurevolve")]
pub struct Revolve {
    inner: schedule::Revolve,
    steps: u64,
    snaps: u64,
}

#[pymethods]
impl Revolve {
    #[new]
    fn new(steps: &Bound<'_, PyAny>, snaps: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (steps, snaps) = (
            count(Some(steps), "steps", 0)?,
            count(Some(snaps), "snaps", 0)?,
        );
        Ok(Revolve {
            inner: schedule::Revolve::new(steps, snaps).map_err(to_py)?,
            steps,
            snaps,
        })
    }

    /// Time steps reversed.
    #[getter]
    fn steps(&self) -> u64 {
        self.steps
    }

    /// Snapshots, the initial state's included.
    #[getter]
    fn snaps(&self) -> u64 {
        self.snaps
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self) -> Option<Action> {
        self.inner.next().map(Action::from)
    }

    fn __repr__(&self) -> String {
        format!("Revolve(steps={}, snaps={})", self.steps, self.snaps)
    }
}

//! The native half of the `gpurevolve` Python package: numpy arrays in, checkpointed GPU
//! gradients out.
//!
//! The Python half (`python/gpurevolve/__init__.py`) re-exports what is here and documents
//! it for Python users. This crate only converts: arrays to [`gpurevolve`]'s types and back,
//! and [`gpurevolve::Error`]s to Python exceptions by their [`ErrorKind`]. Every entry point
//! checks its input before touching the GPU, so bad input is an exception and never a panic.

mod arrays;
mod device;
mod planner;
mod tape;

use gpurevolve::{Error, ErrorKind};
use pyo3::exceptions::{PyKeyboardInterrupt, PyMemoryError, PyOSError, PyRuntimeError};
use pyo3::prelude::*;

pyo3::create_exception!(
    gpurevolve,
    GpuError,
    PyRuntimeError,
    "The GPU or its driver failed (no adapter, a lost device, a failed mapping). Not the \
     caller's input: the message says what the driver reported."
);

/// A gpurevolve error as the Python exception of its group: bad input is `ValueError`,
/// memory that can never or does not now fit is `MemoryError`, a stopped run
/// `KeyboardInterrupt`, a file `OSError`, and the device `gpurevolve.GpuError`.
pub(crate) fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error.kind() {
        ErrorKind::BadInput => pyo3::exceptions::PyValueError::new_err(message),
        ErrorKind::NeverFits | ErrorKind::DoesNotFitNow => PyMemoryError::new_err(message),
        ErrorKind::Interrupted => PyKeyboardInterrupt::new_err(message),
        ErrorKind::File => PyOSError::new_err(message),
        _ => GpuError::new_err(message),
    }
}

/// A `ValueError` naming the argument.
pub(crate) fn bad(name: &str, reason: impl std::fmt::Display) -> PyErr {
    pyo3::exceptions::PyValueError::new_err(format!("invalid argument `{name}`: {reason}"))
}

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<device::Device>()?;
    m.add_class::<tape::Tape>()?;
    m.add_class::<planner::Revolve>()?;
    m.add_class::<planner::Action>()?;
    m.add_function(wrap_pyfunction!(planner::plan, m)?)?;
    m.add_function(wrap_pyfunction!(device::default_dt, m)?)?;
    m.add_function(wrap_pyfunction!(tape::ricker, m)?)?;
    m.add_function(wrap_pyfunction!(device::marmousi_like, m)?)?;
    m.add_function(wrap_pyfunction!(device::smoothed, m)?)?;
    m.add("GpuError", m.py().get_type::<GpuError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

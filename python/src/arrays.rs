//! numpy arrays to `f64` vectors and back.
//!
//! Input arrays may be float32 or float64 and of any memory layout: they are read in C
//! (row-major) order through numpy's strides, so a transposed or sliced array gives the
//! values it shows, not the ones its buffer happens to hold. Outputs are new C-ordered
//! arrays of the dtype the caller's model came in.

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::bad;

/// The float types accepted and returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

/// An array read as `f64` values in C order, with its shape and dtype.
pub struct Floats {
    pub data: Vec<f64>,
    pub shape: Vec<usize>,
    pub dtype: Dtype,
}

/// The copy of `shape`'s values as `f64` must fit in host memory, checked before it is made:
/// a broadcast view of 10¹² cells costs numpy nothing and the copy everything.
fn check_copy(name: &str, shape: &[usize]) -> PyResult<()> {
    let cells: Vec<u64> = shape.iter().map(|&n| n as u64).collect();
    let bytes = gpurevolve::memory::product(&cells).and_then(|n| n.checked_mul(8));
    gpurevolve::memory::check_host(
        &format!("`{name}` of shape {shape:?}, read as float64"),
        bytes,
        "give a smaller array",
    )
    .map_err(crate::to_py)
}

/// Reads `obj` (argument `name`), a float32 or float64 numpy array.
pub fn floats(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Floats> {
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, f64>>() {
        check_copy(name, a.shape())?;
        return Ok(Floats {
            shape: a.shape().to_vec(),
            data: a.as_array().iter().copied().collect(),
            dtype: Dtype::F64,
        });
    }
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, f32>>() {
        check_copy(name, a.shape())?;
        return Ok(Floats {
            shape: a.shape().to_vec(),
            data: a.as_array().iter().map(|&x| f64::from(x)).collect(),
            dtype: Dtype::F32,
        });
    }
    // A numpy scalar (np.float32(2000.0)) has a dtype and no shape worth the name: it is
    // not a wrong dtype but not an array.
    let scalar = obj
        .getattr("ndim")
        .and_then(|n| n.extract::<usize>())
        .is_ok_and(|n| n == 0)
        || obj.is_instance_of::<pyo3::types::PyFloat>()
        || obj.is_instance_of::<pyo3::types::PyInt>();
    if scalar {
        return Err(PyTypeError::new_err(format!(
            "`{name}` must be a numpy array, got the scalar {}; build the array, e.g. \
             numpy.full(shape, value, dtype=numpy.float32)",
            obj.repr()?
        )));
    }
    let found = match obj.getattr("dtype") {
        Ok(dtype) => format!("an array of dtype {dtype}"),
        Err(_) => format!("a {}", obj.get_type().name()?),
    };
    Err(PyTypeError::new_err(format!(
        "`{name}` must be a float32 or float64 numpy array, got {found}; convert it with \
         numpy.asarray({name}, dtype=numpy.float32)"
    )))
}

/// Reads `obj` as an array of `dims`-dimensional points in metres, shape `(count, dims)`.
pub fn points(obj: &Bound<'_, PyAny>, name: &str, dims: usize) -> PyResult<Vec<Vec<f64>>> {
    let a = floats(obj, name)?;
    let ok = a.shape.len() == 2 && a.shape[1] == dims && a.shape[0] > 0;
    if !ok {
        return Err(bad(
            name,
            format!(
                "positions must have shape (count, {dims}) for a {dims}D model, x first and \
                 depth last, with at least one row; got shape {:?}",
                a.shape
            ),
        ));
    }
    Ok(a.data.chunks(dims).map(<[f64]>::to_vec).collect())
}

/// A new C-ordered array of `shape` holding `data`, as `dtype`.
pub fn array<'py>(
    py: Python<'py>,
    data: Vec<f64>,
    shape: &[usize],
    dtype: Dtype,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match dtype {
        Dtype::F64 => PyArray1::from_vec(py, data).reshape(shape)?.into_any(),
        Dtype::F32 => {
            let single: Vec<f32> = data.into_iter().map(|x| x as f32).collect();
            PyArray1::from_vec(py, single).reshape(shape)?.into_any()
        }
    })
}

/// A non-negative integer argument `name`, or `default` when it is `None`. Python's negative
/// or oversized ints are a `ValueError` naming the argument (pyo3's own conversion raises
/// `OverflowError`, which the package does not promise); a non-integer is a `TypeError`.
pub fn count(obj: Option<&Bound<'_, PyAny>>, name: &str, default: u64) -> PyResult<u64> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(default);
    };
    if !obj.is_instance_of::<pyo3::types::PyInt>() && obj.getattr("__index__").is_err() {
        return Err(PyTypeError::new_err(format!(
            "`{name}` must be an int, got {}",
            obj.repr()?
        )));
    }
    obj.extract::<u64>().map_err(|_| {
        bad(
            name,
            format!(
                "must be a non-negative integer below 2**64, got {}",
                obj.repr().map_or_else(|_| "?".into(), |r| r.to_string())
            ),
        )
    })
}

/// As [`count`], for an optional argument without a default.
pub fn optional_count(obj: Option<&Bound<'_, PyAny>>, name: &str) -> PyResult<Option<u64>> {
    match obj.filter(|o| !o.is_none()) {
        None => Ok(None),
        Some(o) => count(Some(o), name, 0).map(Some),
    }
}

/// As [`count`], as a `usize`.
pub fn size(obj: Option<&Bound<'_, PyAny>>, name: &str, default: usize) -> PyResult<usize> {
    let n = count(obj, name, default as u64)?;
    usize::try_from(n).map_err(|_| bad(name, format!("{n} is too large for this platform")))
}

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

/// Reads `obj` (argument `name`), a float32 or float64 numpy array.
pub fn floats(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Floats> {
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, f64>>() {
        return Ok(Floats {
            shape: a.shape().to_vec(),
            data: a.as_array().iter().copied().collect(),
            dtype: Dtype::F64,
        });
    }
    if let Ok(a) = obj.extract::<PyReadonlyArrayDyn<'_, f32>>() {
        return Ok(Floats {
            shape: a.shape().to_vec(),
            data: a.as_array().iter().map(|&x| f64::from(x)).collect(),
            dtype: Dtype::F32,
        });
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

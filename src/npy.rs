//! Minimal NumPy `.npy` I/O: C-ordered float32/float64 arrays, which is all gpurevolve exchanges
//! (models in, gradients, models and shot records out).
//!
//! The format: the magic `\x93NUMPY`, a version, a header length, a Python-dict header
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (nx, nz), }` padded to 64 bytes, then the
//! raw data.

use std::path::Path;

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

fn bad(path: &Path, detail: impl Into<String>) -> Error {
    Error::File {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// Reads a float32 or float64 `.npy` file (either byte order, C order) as float64.
/// Returns the shape and the values in C order.
///
/// # Errors
/// [`Error::File`] when the file cannot be read, is not `.npy`, is Fortran-ordered, holds
/// another dtype (the message names it), or its header promises more values than it holds.
pub fn read(path: impl AsRef<Path>) -> Result<(Vec<usize>, Vec<f64>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| bad(path, e.to_string()))?;
    parse(path, &bytes)
}

/// As [`read`], from the bytes of a `.npy` file already in memory.
///
/// The header is untrusted: the shape's product is computed with checked arithmetic and the
/// data must hold every value it promises before anything is allocated, so a small input never
/// causes a large allocation, and no input panics.
///
/// ```
/// let err = gpurevolve::npy::from_bytes(b"\x93NUMPY\x01\x00").unwrap_err();
/// assert!(err.to_string().contains("magic") || err.to_string().contains("truncated"));
/// ```
///
/// # Errors
/// As [`read`]; the path in [`Error::File`] is `<bytes>`.
pub fn from_bytes(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>)> {
    parse(Path::new("<bytes>"), bytes)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>)> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(path, "not a NumPy .npy file (bad magic)"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(path, format!("unsupported .npy version {v}"))),
    };
    let data = start + header_len;
    let header = bytes
        .get(start..data)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| bad(path, "truncated or non-text header"))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        Some(header[at..].trim_start().strip_prefix(':')?.trim_start())
    };
    let descr = field("descr")
        .and_then(|d| d.strip_prefix('\''))
        .and_then(|d| d.split('\'').next())
        .ok_or_else(|| bad(path, "header has no 'descr'"))?;
    if field("fortran_order").is_some_and(|f| f.starts_with("True")) {
        return Err(bad(
            path,
            "Fortran-ordered arrays are not supported; save with C order (np.ascontiguousarray)",
        ));
    }
    let shape: Vec<usize> = field("shape")
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(path, "header has no 'shape'"))?
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| bad(path, format!("bad shape entry `{s}`")))
        })
        .collect::<Result<_>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            bad(
                path,
                format!("shape {shape:?} holds more values than can be addressed"),
            )
        })?;
    let raw = &bytes[data.min(bytes.len())..];
    let values: Vec<f64> = match descr {
        "<f4" | ">f4" | "=f4" => {
            let big = descr.starts_with('>');
            need(path, raw, count, 4)?;
            raw.chunks_exact(4)
                .take(count)
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    (if big {
                        f32::from_be_bytes(b)
                    } else {
                        f32::from_le_bytes(b)
                    }) as f64
                })
                .collect()
        }
        "<f8" | ">f8" | "=f8" => {
            let big = descr.starts_with('>');
            need(path, raw, count, 8)?;
            raw.chunks_exact(8)
                .take(count)
                .map(|c| {
                    let b: [u8; 8] = c.try_into().unwrap_or_default();
                    if big {
                        f64::from_be_bytes(b)
                    } else {
                        f64::from_le_bytes(b)
                    }
                })
                .collect()
        }
        other => {
            return Err(bad(
                path,
                format!("dtype `{other}` is not supported; use float32 or float64"),
            ));
        }
    };
    Ok((shape, values))
}

/// Checks that `raw` holds `count` values of `size` bytes.
fn need(path: &Path, raw: &[u8], count: usize, size: usize) -> Result<()> {
    match count.checked_mul(size) {
        Some(bytes) if raw.len() >= bytes => Ok(()),
        promised => Err(bad(
            path,
            format!(
                "{} data bytes, the header promises {} values of {size} bytes{}",
                raw.len(),
                count,
                if promised.is_none() {
                    " (more than can be addressed)"
                } else {
                    ""
                }
            ),
        )),
    }
}

/// Writes `values` (C order, `shape`) as a little-endian float32 `.npy` file.
///
/// # Errors
/// [`Error::InvalidArgument`] when `shape` does not match the length; [`Error::File`] when the
/// file cannot be written.
pub fn write_f32(path: impl AsRef<Path>, shape: &[usize], values: &[f32]) -> Result<()> {
    let path = path.as_ref();
    if shape.iter().product::<usize>() != values.len() {
        return Err(Error::InvalidArgument {
            name: "shape",
            reason: format!("shape {shape:?} does not hold {} values", values.len()),
        });
    }
    let dims: Vec<String> = shape.iter().map(|n| n.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    let total = (10 + header.len() + 1).next_multiple_of(64);
    header.push_str(&" ".repeat(total - 10 - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total + 4 * values.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).map_err(|e| bad(path, e.to_string()))
}

//! Minimal NumPy `.npy` I/O: C-ordered float32/float64 arrays, which is all gpurevolve exchanges
//! (models in, gradients, models and shot records out).
//!
//! The format: the magic `\x93NUMPY`, a version, a header length, a Python-dict header
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (nx, nz), }` padded to 64 bytes, then the
//! raw data.
//!
//! Reading trusts nothing in a file: the header is read and parsed first (its length bounded),
//! the data's length is computed from the shape with checked arithmetic and compared with the
//! file's, and only then is memory reserved, fallibly. Writing is atomic
//! ([`write_atomically`](crate::fs::write_atomically)): a file under its final name is never partial.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The longest header read: every version-1 header fits (its length is 16 bits), and a float
/// array's header is under 200 bytes; NumPy's own reader refuses headers over 10,000 bytes.
const HEADER_LIMIT: usize = 1 << 16;

/// Data bytes read (and decoded) at a time.
const CHUNK: usize = 1 << 20;

fn bad(path: &Path, detail: impl Into<String>) -> Error {
    Error::File {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// A parsed header: what the data holds.
struct Header {
    shape: Vec<usize>,
    /// Values (the shape's product).
    count: usize,
    /// Bytes per value: 4 or 8.
    size: usize,
    big_endian: bool,
    /// `count × size`.
    data_bytes: u64,
}

/// The bytes before the header (10 for version 1, 12 for versions 2 and 3) from the first
/// ten bytes of a file.
fn preamble_len(path: &Path, first: &[u8]) -> Result<usize> {
    if first.len() < 10 || &first[..6] != MAGIC {
        return Err(bad(path, "not a NumPy .npy file (bad magic)"));
    }
    match first[6] {
        1 => Ok(10),
        2 | 3 => Ok(12),
        v => Err(bad(path, format!("unsupported .npy version {v}"))),
    }
}

/// The header's length, from the preamble (`preamble_len` bytes), bounded by
/// [`HEADER_LIMIT`].
fn header_len(path: &Path, preamble: &[u8]) -> Result<usize> {
    let len = match preamble {
        [.., a, b] if preamble.len() == 10 => u16::from_le_bytes([*a, *b]) as usize,
        [.., a, b, c, d] if preamble.len() == 12 => u32::from_le_bytes([*a, *b, *c, *d]) as usize,
        _ => return Err(bad(path, "truncated .npy preamble")),
    };
    if len > HEADER_LIMIT {
        return Err(bad(
            path,
            format!(
                "its header claims {len} bytes, more than the {HEADER_LIMIT} read for a float array: not a .npy file this reader can take"
            ),
        ));
    }
    Ok(len)
}

/// Parses the header dict; the data's size is computed with checked arithmetic.
fn parse_header(path: &Path, header: &[u8]) -> Result<Header> {
    let header = std::str::from_utf8(header).map_err(|_| bad(path, "non-text header"))?;
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
    let (size, big_endian) = match descr {
        "<f4" | "=f4" => (4, false),
        ">f4" => (4, true),
        "<f8" | "=f8" => (8, false),
        ">f8" => (8, true),
        other => {
            return Err(bad(
                path,
                format!("dtype `{other}` is not supported; use float32 or float64"),
            ));
        }
    };
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let data_bytes = count.and_then(|c| (c as u64).checked_mul(size as u64));
    match (count, data_bytes) {
        (Some(count), Some(data_bytes)) => Ok(Header {
            shape,
            count,
            size,
            big_endian,
            data_bytes,
        }),
        _ => Err(bad(
            path,
            format!(
                "shape {shape:?} is too large: its values ({size} bytes each) cannot be addressed"
            ),
        )),
    }
}

/// Appends the values in `raw` (whole values of `header`'s dtype) to `out` as float64.
fn decode(header: &Header, raw: &[u8], out: &mut Vec<f64>) {
    let big = header.big_endian;
    if header.size == 4 {
        out.extend(raw.chunks_exact(4).map(|c| {
            let b = [c[0], c[1], c[2], c[3]];
            f64::from(if big {
                f32::from_be_bytes(b)
            } else {
                f32::from_le_bytes(b)
            })
        }));
    } else {
        out.extend(raw.chunks_exact(8).map(|c| {
            let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
            if big {
                f64::from_be_bytes(b)
            } else {
                f64::from_le_bytes(b)
            }
        }));
    }
}

/// The error for data bytes that differ from the header's promise.
fn wrong_length(path: &Path, header: &Header, found: u64, longer: bool) -> Error {
    bad(
        path,
        format!(
            "{} data bytes, the header promises {} values of {} bytes ({} bytes): {}",
            found,
            header.count,
            header.size,
            header.data_bytes,
            if longer {
                "the file is longer than its header says (damaged, or not a .npy file)"
            } else {
                "the file is truncated"
            }
        ),
    )
}

/// Room for `header`'s values as float64, reserved fallibly after a check against the
/// machine's memory.
fn reserve_values(path: &Path, header: &Header) -> Result<Vec<f64>> {
    let what = format!(
        "the values of {} (shape {:?})",
        path.display(),
        header.shape
    );
    crate::memory::reserve(
        header.count,
        &what,
        "read a smaller array, or free host memory",
    )
}

/// Reads a float32 or float64 `.npy` file (either byte order, C order) as float64.
/// Returns the shape and the values in C order.
///
/// The header is read first, and the data's length, from the shape with checked arithmetic,
/// must be the file's, to the byte, before any memory is reserved for it: a damaged or hostile
/// file is an error, never an allocation without bound. A file that is not a regular file (a
/// pipe, `/dev/stdin`) is read as a stream: never more than the header promises, plus one byte
/// to prove the end.
///
/// # Errors
/// [`Error::File`] when the file cannot be read, is a directory, is not `.npy`, is
/// Fortran-ordered, holds another dtype (the message names it), has a shape too large to
/// address, or holds fewer or more data bytes than its header promises.
/// [`Error::HostMemory`] when its values do not fit in host memory.
pub fn read(path: impl AsRef<Path>) -> Result<(Vec<usize>, Vec<f64>)> {
    let path = path.as_ref();
    let io = |e: std::io::Error| bad(path, e.to_string());
    let mut file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(bad(path, "a directory, not a .npy file"));
    }
    // A regular file's length, known before reading; a stream proves its own.
    let length = meta.is_file().then_some(meta.len());
    let short = |what: &str, e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad(path, format!("truncated: the file ends inside its {what}"))
        } else {
            io(e)
        }
    };
    let mut preamble = [0u8; 12];
    file.read_exact(&mut preamble[..10]).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            bad(path, "not a NumPy .npy file (shorter than its magic)")
        } else {
            io(e)
        }
    })?;
    let start = preamble_len(path, &preamble[..10])?;
    file.read_exact(&mut preamble[10..start])
        .map_err(|e| short("preamble", e))?;
    let header_len = header_len(path, &preamble[..start])?;
    let data_start = (start + header_len) as u64;
    if length.is_some_and(|l| l < data_start) {
        return Err(bad(path, "truncated: the file ends inside its header"));
    }
    let mut header = vec![0u8; header_len];
    file.read_exact(&mut header)
        .map_err(|e| short("header", e))?;
    let header = parse_header(path, &header)?;
    if let Some(length) = length {
        let found = length - data_start;
        if found != header.data_bytes {
            return Err(wrong_length(
                path,
                &header,
                found,
                found > header.data_bytes,
            ));
        }
    }
    let mut values = reserve_values(path, &header)?;
    let mut chunk = vec![0u8; usize::try_from(header.data_bytes).map_or(CHUNK, |d| d.min(CHUNK))];
    let mut left = header.data_bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.read_exact(&mut chunk[..n]).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                wrong_length(path, &header, header.data_bytes - left, false)
            } else {
                io(e)
            }
        })?;
        decode(&header, &chunk[..n], &mut values);
        left -= n as u64;
    }
    // The end, proven: a stream, or a file that grew since its length was read.
    let mut one = [0u8; 1];
    let more = loop {
        match file.read(&mut one) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => break other.map_err(io)?,
        }
    };
    if more > 0 {
        return Err(wrong_length(path, &header, header.data_bytes + 1, true));
    }
    Ok((header.shape, values))
}

/// As [`read`], from the bytes of a `.npy` file already in memory.
///
/// The header is untrusted: the shape's product is computed with checked arithmetic and the
/// data must hold exactly the values it promises before anything is allocated, so a small
/// input never causes a large allocation, and no input panics.
///
/// ```
/// let err = gpurevolve::npy::from_bytes(b"\x93NUMPY\x01\x00").unwrap_err();
/// assert!(err.to_string().contains("magic") || err.to_string().contains("truncated"));
/// ```
///
/// # Errors
/// As [`read`]; the path in [`Error::File`] is `<bytes>`.
pub fn from_bytes(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>)> {
    let path = Path::new("<bytes>");
    let start = preamble_len(path, bytes)?;
    let len = header_len(path, bytes.get(..start).unwrap_or(&[]))?;
    let header = bytes
        .get(start..start + len)
        .ok_or_else(|| bad(path, "truncated header"))?;
    let header = parse_header(path, header)?;
    let raw = &bytes[start + len..];
    if raw.len() as u64 != header.data_bytes {
        return Err(wrong_length(
            path,
            &header,
            raw.len() as u64,
            raw.len() as u64 > header.data_bytes,
        ));
    }
    let mut values = Vec::with_capacity(header.count);
    decode(&header, raw, &mut values);
    Ok((header.shape, values))
}

/// Writes `values` (C order, `shape`) as a little-endian float32 `.npy` file, atomically
/// ([`write_atomically`](crate::fs::write_atomically)).
///
/// # Errors
/// [`Error::InvalidArgument`] when `shape` does not match the length; [`Error::File`] when the
/// file cannot be written.
pub fn write_f32(path: impl AsRef<Path>, shape: &[usize], values: &[f32]) -> Result<()> {
    let path = path.as_ref();
    if shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(values.len()) {
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
    let header_len = u16::try_from(header.len()).map_err(|_| Error::InvalidArgument {
        name: "shape",
        reason: format!("shape {shape:?} has too many axes for a .npy header"),
    })?;
    crate::fs::write_atomically(path, |out| {
        out.write_all(MAGIC)?;
        out.write_all(&[1, 0])?;
        out.write_all(&header_len.to_le_bytes())?;
        out.write_all(header.as_bytes())?;
        let mut bytes = Vec::with_capacity(4 * values.len().min(CHUNK / 4));
        for chunk in values.chunks(CHUNK / 4) {
            bytes.clear();
            bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            out.write_all(&bytes)?;
        }
        Ok(())
    })
}

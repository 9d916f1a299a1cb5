//! `.npy` I/O against files written by NumPy (tests/data, made with NumPy 2), and models read
//! from them.

use gpurevolve::acoustic::Model;
use gpurevolve::{Error, npy};

/// A fixture: under the crate that built this test, or, for a test binary carried to another
/// machine (`scripts/build-prebuilt.sh`), under the working directory, the repository's root.
fn data(name: &str) -> std::path::PathBuf {
    let built_here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let dir = if built_here.is_dir() {
        built_here
    } else {
        std::path::PathBuf::from("tests/data")
    };
    dir.join(name)
}

#[test]
fn reads_what_numpy_writes() {
    // np.arange(12, dtype=np.float32).reshape(3, 4) * 1.5
    let (shape, v) = npy::read(data("f32_3x4.npy")).unwrap();
    assert_eq!(shape, vec![3, 4]);
    assert_eq!(v, (0..12).map(|i| i as f64 * 1.5).collect::<Vec<_>>());
    // np.arange(24, dtype='>f8').reshape(2, 3, 4) + 0.25 (big-endian)
    let (shape, v) = npy::read(data("f64be_2x3x4.npy")).unwrap();
    assert_eq!(shape, vec![2, 3, 4]);
    assert_eq!(v, (0..24).map(|i| i as f64 + 0.25).collect::<Vec<_>>());
}

#[test]
fn refuses_what_it_cannot_read() {
    for (name, needle) in [("i32_4.npy", "dtype `<i4`"), ("f32_fortran.npy", "Fortran")] {
        let err = npy::read(data(name)).unwrap_err();
        assert!(
            matches!(err, Error::File { .. }) && err.to_string().contains(needle),
            "{err}"
        );
    }
    let err = npy::read(data("missing.npy")).unwrap_err();
    assert!(matches!(err, Error::File { .. }), "{err}");
    let err = npy::read(file!()).unwrap_err(); // a Rust file is not .npy
    assert!(err.to_string().contains("magic"), "{err}");
}

#[test]
fn round_trips_and_feeds_a_model() {
    let dir = std::env::temp_dir().join(format!("gpurevolve-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("v.npy");
    let v: Vec<f32> = (0..35).map(|i| 1500.0 + 7.0 * i as f32).collect();
    npy::write_f32(&path, &[5, 7], &v).unwrap();
    let (shape, back) = npy::read(&path).unwrap();
    assert_eq!(shape, vec![5, 7]);
    assert_eq!(back, v.iter().map(|&x| x as f64).collect::<Vec<_>>());
    let model = Model::from_npy(&path, 10.0, 4).unwrap();
    assert_eq!(model.shape(), &[5, 7]);
    assert_eq!(model.velocity()[8], 1556.0);
    // A velocity file with a bad value is refused by the model, naming the cell.
    let mut bad = v.clone();
    bad[3] = -1.0;
    npy::write_f32(&path, &[5, 7], &bad).unwrap();
    let err = Model::from_npy(&path, 10.0, 4).unwrap_err();
    assert!(err.to_string().contains("cell 3"), "{err}");
    assert!(npy::write_f32(&path, &[2, 2], &v).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A version-1 `.npy` header for `dict`, padded as NumPy pads it.
fn npy_header(dict: &str) -> Vec<u8> {
    let mut header = dict.to_string();
    let total = (10 + header.len() + 1).next_multiple_of(64);
    header.push_str(&" ".repeat(total - 10 - header.len() - 1));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

#[test]
fn a_shape_whose_product_wraps_is_refused() {
    // 2³² × 2³² wraps to 0 in 64 bits: unchecked, it passed the length check with no data.
    let bytes =
        npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }");
    let err = npy::from_bytes(&bytes).unwrap_err();
    assert!(err.to_string().contains("addressed"), "{err}");
    // A huge promise from a tiny file: refused before any allocation.
    let bytes =
        npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000), }");
    let err = npy::from_bytes(&bytes).unwrap_err();
    assert!(err.to_string().contains("promises"), "{err}");
}

/// `bytes` as a file in a fresh directory; the directory (to remove) and the file's path.
fn temp_file(name: &str, bytes: &[u8]) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("gpurevolve-npy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.npy"));
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

/// A float32 file of `values` values, cut or extended by `extra` bytes.
fn f32_file(values: usize, extra: isize) -> Vec<u8> {
    let mut bytes = npy_header(&format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({values},), }}"
    ));
    bytes.extend((0..values).flat_map(|i| (i as f32).to_le_bytes()));
    if extra < 0 {
        bytes.truncate(bytes.len() - extra.unsigned_abs());
    } else {
        bytes.extend(std::iter::repeat_n(0u8, extra as usize));
    }
    bytes
}

/// Runs `read` on another thread and waits at most a second for its result: a read without
/// bound fails the test instead of filling memory.
fn read_within_a_second(path: &str) -> gpurevolve::Result<(Vec<usize>, Vec<f64>)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = path.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(npy::read(owned));
    });
    rx.recv_timeout(std::time::Duration::from_secs(1))
        .unwrap_or_else(|_| panic!("reading {path} did not end within a second"))
}

/// Endless devices end at once with an error: the reader never takes more than a header's
/// bytes before it knows what the data holds.
#[cfg(unix)]
#[test]
fn endless_devices_end_with_an_error_within_a_second() {
    for device in ["/dev/zero", "/dev/urandom"] {
        if !std::path::Path::new(device).exists() {
            continue;
        }
        let err = read_within_a_second(device).unwrap_err();
        assert!(matches!(err, Error::File { .. }), "{device}: {err}");
        assert!(err.to_string().contains("magic"), "{device}: {err}");
    }
}

/// A header promising 10¹² × 10¹² float32 values: its size overflows, and is refused as too
/// large. One promising 10⁶ × 10⁶ (4 TB, which does not overflow) in a file of a few bytes is
/// refused as truncated, from the file's length, before any memory is asked for (asking would
/// have been a host-memory error).
#[test]
fn a_huge_header_is_refused_without_allocating() {
    for (shape, needle) in [
        ("(1000000000000, 1000000000000)", "too large"),
        ("(1000000, 1000000)", "truncated"),
    ] {
        let bytes = npy_header(&format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"
        ));
        let (dir, path) = temp_file("huge", &bytes);
        let err = npy::read(&path).unwrap_err();
        assert!(
            matches!(err, Error::File { .. }) && err.to_string().contains(needle),
            "{shape}: {err}"
        );
        let err = npy::from_bytes(&bytes).unwrap_err();
        assert!(matches!(err, Error::File { .. }), "{shape}: {err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// A file one byte short of its header's promise, or one byte (or a kilobyte) over it, is
/// refused, saying which; the exact file reads.
#[test]
fn truncated_and_over_long_files_are_refused() {
    for (extra, needle) in [
        (-1, "truncated"),
        (-4, "truncated"),
        (1, "longer"),
        (1024, "longer"),
    ] {
        let bytes = f32_file(10, extra);
        let (dir, path) = temp_file("length", &bytes);
        let err = npy::read(&path).unwrap_err();
        assert!(
            matches!(err, Error::File { .. }) && err.to_string().contains(needle),
            "{extra}: {err}"
        );
        let err = npy::from_bytes(&bytes).unwrap_err();
        assert!(err.to_string().contains(needle), "{extra}: {err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
    // Cut inside the header, and an empty file.
    let whole = f32_file(10, 0);
    for len in [0, 5, 12, 40] {
        let (dir, path) = temp_file("cut", &whole[..len]);
        let err = npy::read(&path).unwrap_err();
        assert!(matches!(err, Error::File { .. }), "{len}: {err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
    let (dir, path) = temp_file("exact", &whole);
    let (shape, values) = npy::read(&path).unwrap();
    assert_eq!((shape, values.len(), values[9]), (vec![10], 10, 9.0));
    // A directory is not a file.
    let err = npy::read(&dir).unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A pipe is read as a stream, never past its header's promise: the exact data reads, a byte
/// more is refused.
#[cfg(unix)]
#[test]
fn a_pipe_is_read_no_further_than_its_header_promises() {
    let dir = std::env::temp_dir().join(format!("gpurevolve-npy-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("pipe.npy");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("no mkfifo: pipe test skipped");
        std::fs::remove_dir_all(dir).unwrap();
        return;
    }
    for (extra, ok) in [(0, true), (1, false), (-1, false)] {
        let bytes = f32_file(1000, extra);
        let writer_path = fifo.clone();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let mut pipe = std::fs::OpenOptions::new()
                .write(true)
                .open(writer_path)
                .unwrap();
            // The reader may stop early and close its end: a broken pipe is fine.
            let _ = pipe.write_all(&bytes);
        });
        let result = read_within_a_second(fifo.to_str().unwrap());
        writer.join().unwrap();
        match result {
            Ok((shape, values)) => {
                assert!(ok, "{extra}: a pipe with the wrong length was read");
                assert_eq!((shape, values[999]), (vec![1000], 999.0));
            }
            Err(err) => assert!(!ok && matches!(err, Error::File { .. }), "{extra}: {err}"),
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The files in `dir`, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Writes are atomic: into a missing directory, a typed error and nothing made; after a
/// write, the file alone (no temporary left); a writer that fails halfway leaves neither the
/// final name nor a temporary, and an older file under the name as it was.
#[test]
fn writes_are_atomic_and_leave_no_temporary() {
    let dir = std::env::temp_dir().join(format!("gpurevolve-npy-atomic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("no such directory").join("v.npy");
    let err = npy::write_f32(&missing, &[2], &[1.0, 2.0]).unwrap_err();
    assert!(
        matches!(&err, Error::File { path, .. } if *path == missing),
        "{err}"
    );
    assert!(names(&dir).is_empty(), "{:?}", names(&dir));

    let path = dir.join("v.npy");
    npy::write_f32(&path, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    assert_eq!(names(&dir), ["v.npy"]);
    assert_eq!(npy::read(&path).unwrap().1[5], 6.0);
    let before = std::fs::read(&path).unwrap();

    // Fails halfway, over an existing file and under a new name.
    for name in ["v.npy", "new.json"] {
        let target = dir.join(name);
        let err = gpurevolve::fs::write_atomically(&target, |w| {
            w.write_all(&[7u8; 100_000])?;
            Err(std::io::Error::other("the writer failed halfway"))
        })
        .unwrap_err();
        assert!(
            matches!(&err, Error::File { path, .. } if *path == target)
                && err.to_string().contains("halfway"),
            "{err}"
        );
        assert_eq!(names(&dir), ["v.npy"]);
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // Any file, written whole.
    let json = dir.join("summary.json");
    gpurevolve::fs::write_atomically(&json, |w| w.write_all(b"{\"ok\": true}\n")).unwrap();
    assert_eq!(std::fs::read(&json).unwrap(), b"{\"ok\": true}\n");
    assert_eq!(names(&dir), ["summary.json", "v.npy"]);
    std::fs::remove_dir_all(dir).unwrap();
}

mod fuzz {
    use super::npy_header;
    use gpurevolve::npy;
    use proptest::prelude::*;

    fn dims() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![0u64..6, Just(u32::MAX as u64 + 1), any::<u64>()],
            0..4,
        )
        .prop_map(|d| {
            let parts: Vec<String> = d.iter().map(u64::to_string).collect();
            format!("({},)", parts.join(", "))
        })
    }

    proptest! {
        /// Random shapes, dtypes, data lengths and truncations: never a panic; whatever is
        /// accepted holds exactly the values its shape says, all read from the data.
        #[test]
        fn random_headers_and_truncations_never_panic(
            shape in dims(),
            descr in prop_oneof![Just("<f4"), Just(">f8"), Just("<i4"), Just("f4")],
            fortran in any::<bool>(),
            data_len in 0usize..200,
            cut in any::<prop::sample::Index>(),
            noise in any::<u8>(),
        ) {
            let dict = format!(
                "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
                if fortran { "True" } else { "False" }
            );
            let mut bytes = npy_header(&dict);
            bytes.extend((0..data_len).map(|i| (i as u8).wrapping_mul(noise)));
            for len in [bytes.len(), cut.index(bytes.len() + 1)] {
                if let Ok((shape, values)) = npy::from_bytes(&bytes[..len]) {
                    prop_assert_eq!(shape.iter().product::<usize>(), values.len());
                    prop_assert!(values.len() * 4 <= len);
                }
            }
        }

        /// Arbitrary bytes after the magic: never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..300)) {
            let mut bytes = b"\x93NUMPY".to_vec();
            bytes.extend(tail);
            let _ = npy::from_bytes(&bytes);
        }
    }
}

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

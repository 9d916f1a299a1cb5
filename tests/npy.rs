//! `.npy` I/O against files written by NumPy (tests/data, made with NumPy 2), and models read
//! from them.

use gpurevolve::acoustic::Model;
use gpurevolve::{Error, npy};

fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
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

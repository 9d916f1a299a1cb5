//! Inputs a careless or hostile user gives: sizes past any machine, overflowing arithmetic,
//! physics the grid cannot carry, records that overflow the misfit. Each is a typed error
//! that names the argument, before anything of its size is allocated; none panics, aborts,
//! or returns a non-finite number.

mod common;

use gpurevolve::acoustic::{Boundary, BoundaryKind, Geometry, Model, Problem, TimeAxis};
use gpurevolve::fwi::{self, Checkpointing};
use gpurevolve::{Error, ErrorKind};

fn small_model(nbl: usize) -> gpurevolve::Result<Model> {
    Model::constant(&[40, 30], 10.0, nbl, 2000.0)
}

fn names(err: &Error, argument: &str) -> bool {
    matches!(err, Error::InvalidArgument { name, .. } if *name == argument)
}

/// `--nbl 10^7` (10^5 aborted before): an extended grid of 4·10¹⁴ cells is refused by size.
#[test]
fn an_absorbing_layer_past_memory_never_fits() {
    let err = small_model(10_000_000).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NeverFits, "{err}");
    assert!(err.to_string().contains("nbl = 10000000"), "{err}");
    // Past 64 bits: the layer's width itself overflows.
    let err = small_model(usize::MAX / 2 + 1).unwrap_err();
    assert!(names(&err, "nbl"), "{err}");
    // A grid of 10¹² cells is refused before its velocities are allocated.
    let err = Model::constant(&[1_000_000, 1_000_000], 10.0, 0, 2000.0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NeverFits, "{err}");
}

/// `--nt 2^63`, `--nt 2^64 − 1`, `--tmax 1e9`, `--tmax 1e308`, `--dt 1e-300`: errors naming
/// `nt` or `tmax`, never a wrapped count of 0 or a panic.
#[test]
fn time_axes_past_any_run_are_refused_by_name() {
    let model = small_model(10).unwrap();
    for nt in [1usize << 63, usize::MAX, (1 << 40) + 2] {
        let err = TimeAxis::new(&model, 8, nt, None).unwrap_err();
        assert!(names(&err, "nt"), "{nt}: {err}");
    }
    for (tmax, dt) in [
        (1e12, None),
        (1e308, None),
        (1.2, Some(1e-300)),
        (f64::NAN, None),
    ] {
        let err = TimeAxis::for_duration(&model, 8, tmax, dt).unwrap_err();
        assert!(names(&err, "tmax"), "{tmax} {dt:?}: {err}");
        let text = err.to_string();
        assert!(
            text.len() < 400,
            "a message of {} characters: {text}",
            text.len()
        );
    }
    // A duration that fits gives the count the main job always gave.
    let axis = TimeAxis::for_duration(&model, 8, 0.3, Some(1e-3)).unwrap();
    assert_eq!(axis.nt, 301);
}

/// `--nt 10^12` (or 3·10⁷ receivers): the traces of one shot are checked against host memory
/// when the problem is built.
#[test]
fn traces_past_memory_never_fit() {
    let model = small_model(10).unwrap();
    let geometry =
        Geometry::new(&model, vec![vec![200.0, 0.0]], vec![vec![100.0, 0.0]], 10.0).unwrap();
    let time = TimeAxis::new(&model, 8, 1 << 39, None).unwrap();
    let boundary = Boundary::cpml(2000.0).unwrap();
    let err = Problem::with_boundary(model, geometry, time, 8, boundary).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NeverFits, "{err}");
    assert!(err.to_string().contains("traces of one shot"), "{err}");
}

/// `--f0 1e308`: the grid cannot carry it; the message gives the largest usable peak.
#[test]
fn a_peak_frequency_past_the_grid_is_refused_with_the_largest_usable() {
    let model = small_model(10).unwrap();
    let at = |f0: f64| Geometry::new(&model, vec![vec![200.0, 0.0]], vec![vec![100.0, 0.0]], f0);
    for f0 in [1e308, 101.0, f64::INFINITY, -5.0] {
        let err = at(f0).unwrap_err();
        assert!(names(&err, "f0"), "{f0}: {err}");
    }
    let err = at(1e308).unwrap_err().to_string();
    // 2000 m/s on a 10 m grid: two points a wavelength at 100 Hz.
    assert!(err.contains("f0 ≤ 100 Hz"), "{err}");
    assert!(at(100.0).is_ok() && at(10.0).is_ok());
}

/// `--boundary-velocity 1e308`, a velocity of 3·10³⁸ m/s, a spacing of 1e-300 m: each named,
/// none left to step NaN.
#[test]
fn values_whose_float32_coefficients_overflow_are_refused_by_name() {
    let err = Boundary::new(BoundaryKind::Cpml, 1e308).unwrap_err();
    assert!(names(&err, "boundary_velocity"), "{err}");
    let err = Model::constant(&[40, 30], 10.0, 10, 3e38).unwrap_err();
    assert!(names(&err, "velocity"), "{err}");
    let err = Model::constant(&[40, 30], 10.0, 10, 1e-20).unwrap_err();
    assert!(names(&err, "velocity"), "{err}");
    // A tiny spacing: every step count of a real record is past what a run may take.
    let tiny = Model::constant(&[40, 30], 1e-300, 10, 2000.0).unwrap();
    let err = TimeAxis::for_duration(&tiny, 8, 1.0, None).unwrap_err();
    assert!(names(&err, "tmax"), "{err}");
    assert!(!err.to_string().contains("000000000"), "{err}");
}

/// Observed records of 3·10³⁸ overflow the float32 adjoint sweep (the float64 misfit holds):
/// the gradient call fails with [`Error::NonFinite`] naming the shot, and returns no number.
#[test]
fn an_overflowing_misfit_is_an_error_not_a_number() {
    let Some(gpu) = common::gpu() else { return };
    let problem = common::random_problem(&[24, 20], 6, 4, 40, 7);
    let mut observed = common::observed(&problem, 0.5);
    let receivers = problem.geometry().receivers.len();
    // Random samples past the middle of the record, of either sign.
    for (i, v) in observed.iter_mut().enumerate().skip(20 * receivers) {
        *v = if i % 3 == 0 { 3e38 } else { -3e38 };
    }
    let err = fwi::gradient(
        &gpu,
        std::slice::from_ref(&problem),
        &[observed],
        Checkpointing::Snapshots(4),
        |_, _| {},
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::NonFinite { what, location } if what == "the gradient" && location.starts_with("shot 0")),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::BadInput);
}

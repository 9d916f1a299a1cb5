//! The float64 CPU twin: exact discrete adjoints (dot-product tests to 1e-12), typed errors.

mod common;

use common::{random_problem, random_problem_with};
use gpurevolve::Error;
use gpurevolve::acoustic::{Boundary, BoundaryKind, CpuTwin, Geometry, Model, Problem, TimeAxis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn relative_gap(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs())
}

fn dot_tests(problem: &Problem, seed: u64) {
    let twin = CpuTwin::new(problem);
    let mut rng = StdRng::seed_from_u64(seed);
    let (nt, ns, nr) = (
        problem.time().nt,
        problem.sources().points,
        problem.receivers().points,
    );
    // Forward map F: source series → receiver traces.
    let x = random(&mut rng, nt * ns);
    let y = random(&mut rng, nt * nr);
    let fwd = twin.forward(&x, true).unwrap();
    let adj = twin.adjoint(fwd.fields.as_ref().unwrap(), &y).unwrap();
    let (lhs, rhs) = (dot(&fwd.traces, &y), dot(&x, &adj.source_adjoint));
    let gap = relative_gap(lhs, rhs);
    assert!(
        gap <= 1e-12,
        "forward map: <Fx, y> = {lhs}, <x, F'y> = {rhs}, gap {gap:e}"
    );
    // Linearised map B: model perturbation → data; its adjoint is the gradient with residual y.
    let layout = problem.layout();
    let dm = layout
        .pad(&random(&mut rng, layout.extended_len()))
        .unwrap();
    let wavelet = problem.source_series();
    let born = twin.born(&wavelet, &dm).unwrap();
    let fields = twin.forward(&wavelet, true).unwrap().fields.unwrap();
    let grad = twin.adjoint(&fields, &y).unwrap().gradient;
    let (lhs, rhs) = (dot(&born, &y), dot(&dm, &grad));
    let gap = relative_gap(lhs, rhs);
    assert!(
        gap <= 1e-12,
        "Born map: <B dm, y> = {lhs}, <dm, B'y> = {rhs}, gap {gap:e}"
    );
}

#[test]
fn dot_product_tests_2d_every_order() {
    for (i, order) in [2, 4, 8, 16].into_iter().enumerate() {
        dot_tests(
            &random_problem(&[40, 36], 8, order, 120, i as u64),
            100 + i as u64,
        );
    }
}

#[test]
fn dot_product_tests_3d_every_order() {
    for (i, order) in [2, 4, 8].into_iter().enumerate() {
        dot_tests(
            &random_problem(&[14, 12, 13], 5, order, 50, 10 + i as u64),
            200 + i as u64,
        );
    }
}

/// The CPML's adjoint is its own code, not the step: the dot-product tests prove it the
/// transpose, with waves crossing the layer (sources and receivers anywhere, long runs).
#[test]
fn dot_product_tests_cpml_2d_every_order() {
    for (i, order) in [2, 4, 8, 16].into_iter().enumerate() {
        let problem =
            random_problem_with(&[30, 26], 8, order, 160, 40 + i as u64, BoundaryKind::Cpml);
        dot_tests(&problem, 300 + i as u64);
    }
}

#[test]
fn dot_product_tests_cpml_3d() {
    for (i, order) in [2, 8].into_iter().enumerate() {
        let problem = random_problem_with(
            &[10, 9, 11],
            5,
            order,
            60,
            50 + i as u64,
            BoundaryKind::Cpml,
        );
        dot_tests(&problem, 400 + i as u64);
    }
}

/// The GPU gradient forms `u_{k+1} − 2u_k + u_{k−1}` from the state alone; its twin must equal
/// the difference of a step and its injection, on random fields, inside the sponge too.
#[test]
fn the_second_difference_from_the_state_is_the_steps() {
    let mut rng = StdRng::seed_from_u64(rand::random());
    for (shape, order) in [(&[30usize, 26][..], 8), (&[14, 12, 10][..], 4)] {
        let problem = random_problem(shape, 4, order, 10, rng.random());
        let twin = CpuTwin::new(&problem);
        let layout = problem.layout();
        let field = |rng: &mut StdRng| layout.pad(&random(rng, layout.extended_len())).unwrap();
        let (prev, cur) = (field(&mut rng), field(&mut rng));
        let q = random(&mut rng, problem.sources().points);
        let mut next = vec![0.0; layout.len()];
        twin.step(&prev, &cur, &mut next);
        let a = problem.step_coefficients().0;
        problem.sources().inject(&mut next, &a, &q);
        let from_step: Vec<f64> = layout
            .unpad(&next)
            .unwrap()
            .iter()
            .zip(layout.unpad(&cur).unwrap())
            .zip(layout.unpad(&prev).unwrap())
            .map(|((n, c), p)| n - 2.0 * c + p)
            .collect();
        let from_state = layout
            .unpad(&twin.second_difference(&prev, &cur, &q).unwrap())
            .unwrap();
        let scale = from_step.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let worst = from_step
            .iter()
            .zip(&from_state)
            .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
        assert!(scale > 0.0);
        assert!(
            worst <= 1e-12 * scale,
            "{shape:?}: {worst:e} against {scale:e}"
        );
    }
    let problem = random_problem(&[20, 20], 4, 4, 10, 1);
    let n = problem.layout().len();
    assert!(matches!(
        CpuTwin::new(&problem).second_difference(&vec![0.0; n], &vec![0.0; n - 1], &[]),
        Err(Error::InvalidArgument { .. })
    ));
}

/// The absorbing layer belongs to the problem: two models on one boundary get the same damping,
/// and bad reference velocities are typed errors that say what to change.
#[test]
fn the_boundary_is_fixed_per_problem_not_per_model() {
    let slow = Model::constant(&[40, 30], 10.0, 8, 2000.0).unwrap();
    let fast = Model::constant(&[40, 30], 10.0, 8, 3000.0).unwrap();
    let geometry = |m: &Model| {
        Geometry::new(m, vec![vec![200.0, 20.0]], vec![vec![100.0, 20.0]], 12.0).unwrap()
    };
    let time = TimeAxis::new(&fast, 4, 50, None).unwrap();
    let boundary = Boundary::for_models(BoundaryKind::Sponge, &[&slow, &fast]).unwrap();
    assert_eq!(boundary.reference_velocity(), 3000.0);
    let on = |m: &Model| Problem::with_boundary(m.clone(), geometry(m), time, 4, boundary).unwrap();
    let (a, b) = (on(&slow), on(&fast));
    assert!(a.damping().iter().any(|&d| d > 0.0));
    assert_eq!(a.damping(), b.damping());
    assert_eq!(a.boundary(), boundary);
    // Each model's own boundary differs: the slower model would get a stronger layer.
    let own = Problem::with_boundary(
        slow.clone(),
        geometry(&slow),
        time,
        4,
        Boundary::sponge(slow.max_velocity()).unwrap(),
    )
    .unwrap();
    assert_ne!(own.damping(), a.damping());
    // The default layer is the CPML: no damping, memory fields in every level.
    let cpml = Problem::new(slow.clone(), geometry(&slow), time, 4).unwrap();
    assert_eq!(cpml.boundary().kind(), BoundaryKind::Cpml);
    assert!(cpml.damping().iter().all(|&d| d == 0.0));
    assert!(cpml.level_len() > cpml.layout().len());
    assert_eq!(a.level_len(), a.layout().len());
    // Bad references.
    for bad in [f64::NAN, 0.0, -1.0, f64::INFINITY] {
        assert!(matches!(
            Boundary::sponge(bad),
            Err(Error::InvalidArgument {
                name: "boundary_velocity",
                ..
            })
        ));
    }
    let too_slow = Boundary::sponge(2500.0).unwrap();
    let err = Problem::with_boundary(fast.clone(), geometry(&fast), time, 4, too_slow).unwrap_err();
    assert!(err.to_string().contains("at least 3000"), "{err}");
    assert!(Boundary::for_models(BoundaryKind::Sponge, &[]).is_err());
    // A CPML thinner than the stencil's reach says how many cells it needs; none at all is a
    // reflecting box, allowed.
    let thin = Model::constant(&[40, 30], 10.0, 3, 2000.0).unwrap();
    let t = TimeAxis::new(&thin, 8, 20, None).unwrap();
    let err = Problem::with_boundary(
        thin.clone(),
        geometry(&thin),
        t,
        8,
        Boundary::cpml(2000.0).unwrap(),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { name: "nbl", .. })
            && err.to_string().contains("at least 4"),
        "{err}"
    );
    // A physical grid narrower than the stencil's diameter between the CPML's two sides.
    let narrow = Model::constant(&[6, 30], 10.0, 8, 2000.0).unwrap();
    let g = Geometry::new(
        &narrow,
        vec![vec![20.0, 20.0]],
        vec![vec![30.0, 20.0]],
        12.0,
    )
    .unwrap();
    let t = TimeAxis::new(&narrow, 8, 20, None).unwrap();
    let err = Problem::with_boundary(narrow, g, t, 8, Boundary::cpml(2000.0).unwrap()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { name: "shape", .. })
            && err
                .to_string()
                .contains("at least 8 physical cells along x"),
        "{err}"
    );
    let bare = Model::constant(&[40, 30], 10.0, 0, 2000.0).unwrap();
    let t = TimeAxis::new(&bare, 8, 20, None).unwrap();
    let p = Problem::with_boundary(
        bare.clone(),
        geometry(&bare),
        t,
        8,
        Boundary::cpml(2000.0).unwrap(),
    )
    .unwrap();
    assert_eq!(p.level_len(), p.layout().len());
    assert_eq!(
        "sponge".parse::<BoundaryKind>().unwrap(),
        BoundaryKind::Sponge
    );
    assert!(
        "pml"
            .parse::<BoundaryKind>()
            .unwrap_err()
            .to_string()
            .contains("cpml or sponge")
    );
}

#[test]
fn born_is_the_derivative_of_the_forward_map() {
    // (F(m + h dm) − F(m − h dm)) / 2h → B dm with error O(h²).
    let problem = random_problem(&[30, 30], 6, 4, 100, 5);
    let mut rng = StdRng::seed_from_u64(6);
    let layout = problem.layout();
    let m0 = layout.unpad(problem.slowness_squared()).unwrap();
    let dm: Vec<f64> = m0.iter().map(|m| m * rng.random_range(-0.1..0.1)).collect();
    let wavelet = problem.source_series();
    let born = CpuTwin::new(&problem)
        .born(&wavelet, &layout.pad(&dm).unwrap())
        .unwrap();
    let mut errors = vec![];
    for h in [1e-2, 5e-3] {
        let shifted = |s: f64| {
            let m: Vec<f64> = m0.iter().zip(&dm).map(|(m, d)| m + s * h * d).collect();
            let p = problem.with_slowness_squared(&m).unwrap();
            CpuTwin::new(&p).forward(&wavelet, false).unwrap().traces
        };
        let (plus, minus) = (shifted(1.0), shifted(-1.0));
        let fd: Vec<f64> = plus
            .iter()
            .zip(&minus)
            .map(|(p, m)| (p - m) / (2.0 * h))
            .collect();
        let err: f64 = fd
            .iter()
            .zip(&born)
            .map(|(f, b)| (f - b).powi(2))
            .sum::<f64>()
            .sqrt();
        errors.push(err / born.iter().map(|b| b * b).sum::<f64>().sqrt());
    }
    // Second order: halving h divides the error by about 4.
    let ratio = errors[0] / errors[1];
    assert!(
        errors[1] < 1e-3 && (3.5..4.5).contains(&ratio),
        "errors {errors:?}, ratio {ratio}"
    );
}

#[test]
fn bad_input_is_typed() {
    let shape = [20usize, 20];
    assert!(matches!(
        Model::constant(&shape, 10.0, 4, f64::NAN),
        Err(Error::InvalidArgument {
            name: "velocity",
            ..
        })
    ));
    assert!(matches!(
        Model::constant(&shape, 10.0, 4, -1500.0),
        Err(Error::InvalidArgument {
            name: "velocity",
            ..
        })
    ));
    assert!(matches!(
        Model::constant(&shape, 0.0, 4, 1500.0),
        Err(Error::InvalidArgument {
            name: "spacing",
            ..
        })
    ));
    assert!(matches!(
        Model::constant(&[20], 10.0, 4, 1500.0),
        Err(Error::InvalidArgument { name: "shape", .. })
    ));
    let model = Model::constant(&shape, 10.0, 4, 1500.0).unwrap();
    let inside = vec![vec![50.0, 50.0]];
    // CFL: the limit is reported and anything above it refused.
    let limit = TimeAxis::critical_dt(&model, 8);
    assert!(TimeAxis::new(&model, 8, 100, Some(limit * 1.01)).is_err());
    assert!(TimeAxis::new(&model, 8, 100, Some(limit)).is_ok());
    assert!(TimeAxis::new(&model, 8, 1, None).is_err());
    assert!(TimeAxis::new(&model, 6, 100, None).is_err());
    // Sources and receivers outside the grid (extent 190 m), or NaN.
    for bad in [
        vec![-1.0, 50.0],
        vec![50.0, 190.5],
        vec![f64::NAN, 3.0],
        vec![1.0],
    ] {
        let err = Geometry::new(&model, vec![bad.clone()], inside.clone(), 10.0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    name: "sources",
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
        let err = Geometry::new(&model, inside.clone(), vec![bad.clone()], 10.0).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    name: "receivers",
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
    }
    // A grid smaller than the stencil: 3 + 2·1 = 5 cells < 17 for order 16.
    let tiny = Model::constant(&[3, 3], 10.0, 1, 1500.0).unwrap();
    let g = Geometry::new(&tiny, vec![vec![10.0, 10.0]], vec![vec![10.0, 10.0]], 10.0).unwrap();
    let t = TimeAxis::new(&tiny, 16, 10, None).unwrap();
    let err = Problem::new(tiny, g, t, 16).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { name: "shape", .. }),
        "{err}"
    );
}

#[test]
fn model_generators_are_what_they_say() {
    // Marmousi-like: reproducible from its seed, different across seeds, bounded, water on top,
    // faster with depth on average, and laterally varying (folds and faults).
    let shape = [120usize, 60];
    let a = Model::marmousi_like(&shape, 10.0, 5, 7).unwrap();
    assert_eq!(a, Model::marmousi_like(&shape, 10.0, 5, 7).unwrap());
    assert_ne!(a, Model::marmousi_like(&shape, 10.0, 5, 8).unwrap());
    let v = a.velocity();
    assert!(v.iter().all(|&c| (1500.0..=4700.0).contains(&c)));
    let at = |x: usize, z: usize| v[x * 60 + z];
    assert!((0..120).all(|x| at(x, 0) == 1500.0), "water layer");
    let mean = |z: usize| (0..120).map(|x| at(x, z)).sum::<f64>() / 120.0;
    assert!(mean(50) > mean(15) + 500.0, "velocity grows with depth");
    let row: Vec<f64> = (0..120).map(|x| at(x, 40)).collect();
    assert!(
        row.windows(2).filter(|w| w[0] != w[1]).count() >= 3,
        "layers fold or fault across x"
    );
    // Layers and circle.
    let l = Model::layered(
        &[4, 30],
        10.0,
        0,
        &[(0.0, 1500.0), (100.0, 2000.0), (200.0, 3000.0)],
    )
    .unwrap();
    assert_eq!(
        (l.velocity()[9], l.velocity()[10], l.velocity()[20]),
        (1500.0, 2000.0, 3000.0)
    );
    assert!(Model::layered(&[4, 30], 10.0, 0, &[(100.0, 1.0), (0.0, 2.0)]).is_err());
    let c = Model::circle(&[21, 21], 10.0, 0, 2000.0, 2500.0, 50.0).unwrap();
    assert_eq!(
        (c.velocity()[10 * 21 + 10], c.velocity()[0]),
        (2500.0, 2000.0)
    );
    assert_eq!(c.velocity().iter().filter(|&&v| v == 2500.0).count(), 81); // |(i, j)| ≤ 5 cells
    // Smoothing keeps a constant model, narrows the range of a rough one, keeps its mean slowness
    // away from the edges.
    let k = Model::constant(&[30, 30], 10.0, 0, 1800.0).unwrap();
    assert!(
        k.smoothed(4)
            .velocity()
            .iter()
            .all(|v| (v - 1800.0).abs() < 1e-9)
    );
    let s = a.smoothed(5);
    let range = |m: &Model| {
        m.velocity()
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)))
    };
    let ((lo, hi), (slo, shi)) = (range(&a), range(&s));
    assert!(slo > lo && shi < hi, "{lo}..{hi} vs {slo}..{shi}");
}

/// `model_gradient` is the transpose of the extension of a physical field into the absorbing
/// layer: `<E dm, g> = <dm, Eᵀ g>` for random `dm` and `g`, in 2D and 3D.
#[test]
fn model_gradient_is_the_extension_transposed() {
    let mut rng = StdRng::seed_from_u64(rand::random());
    for (shape, nbl) in [(vec![9, 7], 4), (vec![5, 6, 4], 3)] {
        let problem = random_problem(&shape, nbl, 4, 5, rng.random());
        let layout = problem.layout();
        // A model's extended m = 1/c² is E applied to its physical 1/c².
        let velocity: Vec<f64> = (0..shape.iter().product::<usize>())
            .map(|_| rng.random_range(1500.0..4500.0))
            .collect();
        let dm: Vec<f64> = velocity.iter().map(|c| 1.0 / (c * c)).collect();
        let model = Model::new(&shape, 10.0, nbl, velocity).unwrap();
        let e_dm = layout.pad(&model.extended_slowness_squared()).unwrap();
        let g = layout
            .pad(&random(&mut rng, layout.extended_len()))
            .unwrap();
        let folded = problem.model_gradient(&g).unwrap();
        assert_eq!(folded.len(), dm.len());
        let lhs: f64 = e_dm.iter().zip(&g).map(|(a, b)| a * b).sum();
        let rhs: f64 = dm.iter().zip(&folded).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(rhs.abs()),
            "{shape:?}: <E dm, g> = {lhs:e}, <dm, Eᵀg> = {rhs:e}"
        );
        // A cell off every edge (1, 1) or (1, 1, 1) is the padded gradient's own value.
        let cropped = problem.crop(&g).unwrap();
        let nz = shape[shape.len() - 1];
        let inner = if shape.len() == 3 {
            (shape[1] + 1) * nz + 1
        } else {
            nz + 1
        };
        assert_eq!(folded[inner].to_bits(), cropped[inner].to_bits());
    }
    let problem = random_problem(&[9, 7], 4, 4, 5, 1);
    assert!(problem.model_gradient(&[0.0; 3]).is_err());
}

#[test]
fn crop_and_velocity_gradient() {
    let problem = random_problem(&[9, 7], 3, 4, 5, 1);
    let layout = problem.layout();
    // The padded field of m cropped back to the physical grid is 1/c² of the model.
    let cropped = problem.crop(problem.slowness_squared()).unwrap();
    let want: Vec<f64> = problem
        .model()
        .velocity()
        .iter()
        .map(|c| 1.0 / (c * c))
        .collect();
    assert_eq!(cropped.len(), 63);
    assert!(
        cropped
            .iter()
            .zip(&want)
            .all(|(a, b)| (a - b).abs() <= 1e-18)
    );
    assert_eq!(
        layout.unpad(problem.slowness_squared()).unwrap().len(),
        layout.extended_len()
    );
    // dJ/dc from dJ/dm: with J = Σ g·m(c), the chain rule against a central difference.
    let g = [0.3, -1.2];
    let c = [1500.0, 2700.0];
    let jc = |c: &[f64]| g.iter().zip(c).map(|(g, c)| g / (c * c)).sum::<f64>();
    let vg = gpurevolve::acoustic::velocity_gradient(&g, &c);
    for i in 0..2 {
        let (mut up, mut dn) = (c, c);
        up[i] += 1e-3;
        dn[i] -= 1e-3;
        let fd = (jc(&up) - jc(&dn)) / 2e-3;
        assert!(
            (fd - vg[i]).abs() <= 1e-9 * vg[i].abs(),
            "{fd} vs {}",
            vg[i]
        );
    }
}

#[test]
fn model_generators_check_the_shape_before_building() {
    let huge = 1usize << 31; // 2⁶² cells: more than a vector of f64 can hold
    let shapes: [&[usize]; 8] = [
        &[0, 10],
        &[10, 0],
        &[0, 0, 0],
        &[10, 1, 10],
        &[7],
        &[huge, huge],
        &[usize::MAX, 2],
        &[huge, huge, huge],
    ];
    for shape in shapes {
        let results = [
            Model::constant(shape, 10.0, 4, 2000.0),
            Model::marmousi_like(shape, 10.0, 4, 1),
            Model::circle(shape, 10.0, 4, 2000.0, 2500.0, 30.0),
            Model::layered(shape, 10.0, 4, &[(0.0, 1500.0), (50.0, 2500.0)]),
            Model::from_fn(shape, 10.0, 4, |_, _, _| {
                panic!("the velocity function was called for shape {shape:?}")
            }),
            Model::new(shape, 10.0, 4, vec![2000.0; 4]),
        ];
        for r in results {
            assert!(
                matches!(r, Err(Error::InvalidArgument { name: "shape", .. })),
                "{shape:?}: {r:?}"
            );
        }
    }
}

#[test]
fn slices_of_the_wrong_length_are_typed_errors() {
    let problem = random_problem(&[12, 10], 3, 2, 20, 8);
    let layout = problem.layout();
    let twin = CpuTwin::new(&problem);
    let wavelet = problem.source_series();
    let fields = twin.forward(&wavelet, true).unwrap().fields.unwrap();
    let nr = problem.receivers().points;
    let residual = vec![0.5; problem.time().nt * nr];
    let padded = vec![1.0; layout.len()];
    let is_length_error = |e: Error, name: &str| {
        matches!(&e, Error::InvalidArgument { name: n, .. } if *n == name)
            && e.to_string().contains("expected")
    };
    assert!(is_length_error(
        twin.forward(&wavelet[1..], false).unwrap_err(),
        "sources"
    ));
    assert!(is_length_error(
        twin.adjoint(&fields[1..], &residual).unwrap_err(),
        "fields"
    ));
    let mut short = fields.clone();
    short[3].pop();
    assert!(is_length_error(
        twin.adjoint(&short, &residual).unwrap_err(),
        "fields"
    ));
    assert!(is_length_error(
        twin.adjoint(&fields, &residual[1..]).unwrap_err(),
        "residual"
    ));
    assert!(is_length_error(
        twin.born(&wavelet, &padded[1..]).unwrap_err(),
        "dm"
    ));
    assert!(is_length_error(
        problem.crop(&padded[1..]).unwrap_err(),
        "padded"
    ));
    assert!(is_length_error(
        layout.unpad(&padded[1..]).unwrap_err(),
        "padded"
    ));
    let extended = layout.unpad(&padded).unwrap();
    assert!(is_length_error(
        layout.pad(&extended[1..]).unwrap_err(),
        "extended"
    ));
    // The right lengths still work.
    assert_eq!(problem.crop(&padded).unwrap().len(), 12 * 10);
    assert!(twin.adjoint(&fields, &residual).is_ok());
}

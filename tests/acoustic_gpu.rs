//! The WGSL acoustic kernels against the float64 CPU twin, their adjoints, their gradient
//! (Taylor tests) and the physics, on whatever adapter is present (lavapipe in CI).

mod common;

use common::{random_problem, random_problem_with};

use gpurevolve::Error;
use gpurevolve::acoustic::BoundaryKind::{self, Cpml, Sponge};
use gpurevolve::acoustic::{
    Boundary, CpuTwin, Geometry, GpuAcoustic, Model, Problem, TimeAxis, misfit,
};
use gpurevolve::gpu::{CpmlDispatch, Gpu, GpuOptions, KernelOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn relative_l2(got: &[f64], want: &[f64]) -> f64 {
    let err: f64 = got.iter().zip(want).map(|(g, w)| (g - w).powi(2)).sum();
    (err / want.iter().map(|w| w * w).sum::<f64>()).sqrt()
}

fn random(rng: &mut StdRng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// Traces, gradient and source-side adjoint of the GPU against the twin: relative L2 ≤ 1e-5.
fn check_against_twin(gpu: &Gpu, problem: &Problem, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let twin = CpuTwin::new(problem);
    let acoustic = GpuAcoustic::new(gpu, problem).unwrap();
    let wavelet = problem.source_series();
    let cpu = twin.forward(&wavelet, true).unwrap();
    let fwd = acoustic.forward(true).unwrap();
    let e = relative_l2(&fwd.traces, &cpu.traces);
    assert!(
        e <= 1e-5,
        "order {}: traces differ by {e:e}",
        problem.space_order()
    );
    let y = random(&mut rng, cpu.traces.len());
    let cpu_adj = twin.adjoint(cpu.fields.as_ref().unwrap(), &y).unwrap();
    let gpu_adj = acoustic
        .adjoint(fwd.fields.as_ref().unwrap(), &y, true)
        .unwrap();
    let eg = relative_l2(&gpu_adj.gradient, &cpu_adj.gradient);
    let es = relative_l2(
        gpu_adj.source_adjoint.as_ref().unwrap(),
        &cpu_adj.source_adjoint,
    );
    eprintln!(
        "order {} {}D: relative L2 traces {e:e}, gradient {eg:e}, source adjoint {es:e}",
        problem.space_order(),
        problem.model().dim()
    );
    let e = relative_l2(&gpu_adj.gradient, &cpu_adj.gradient);
    assert!(
        e <= 1e-5,
        "order {}: gradients differ by {e:e}",
        problem.space_order()
    );
    let e = relative_l2(
        gpu_adj.source_adjoint.as_ref().unwrap(),
        &cpu_adj.source_adjoint,
    );
    assert!(
        e <= 1e-5,
        "order {}: source adjoints differ by {e:e}",
        problem.space_order()
    );
}

#[test]
fn gpu_matches_the_cpu_twin_2d() {
    let Some(gpu) = common::gpu() else { return };
    for (i, order) in [2, 4, 8, 16].into_iter().enumerate() {
        check_against_twin(
            &gpu,
            &random_problem(&[64, 64], 10, order, 200, i as u64),
            50 + i as u64,
        );
    }
}

#[test]
fn gpu_matches_the_cpu_twin_3d() {
    let Some(gpu) = common::gpu() else { return };
    for (i, order) in [2, 4, 8].into_iter().enumerate() {
        check_against_twin(
            &gpu,
            &random_problem(&[24, 24, 24], 6, order, 100, 10 + i as u64),
            60 + i as u64,
        );
    }
}

/// A device whose CPML kernels cover the grid as `dispatch` says.
fn gpu_with_dispatch(dispatch: CpmlDispatch) -> Option<Gpu> {
    common::gpu_with(&GpuOptions {
        kernels: KernelOptions {
            cpml_dispatch: dispatch,
            ..KernelOptions::default()
        },
        ..GpuOptions::default()
    })
}

/// Both ways of covering the grid with the CPML's kernels (`KernelOptions::cpml_dispatch`) match
/// the twin.
#[test]
fn gpu_matches_the_cpu_twin_with_a_cpml() {
    for dispatch in [CpmlDispatch::ByRegion, CpmlDispatch::OneKernel] {
        let Some(gpu) = gpu_with_dispatch(dispatch) else {
            return;
        };
        eprintln!("{dispatch:?}");
        for (i, order) in [2, 8, 16].into_iter().enumerate() {
            let problem = random_problem_with(&[48, 44], 8, order, 200, 20 + i as u64, Cpml);
            check_against_twin(&gpu, &problem, 70 + i as u64);
        }
        let problem = random_problem_with(&[20, 18, 22], 6, 4, 100, 30, Cpml);
        check_against_twin(&gpu, &problem, 80);
    }
}

/// The CPML's dispatch is a tuning knob: by region or as one kernel, the same arithmetic per
/// cell. The bits may differ, as each pipeline is compiled for its own constants and the
/// compiler may fuse multiply-adds differently, but only at float32 rounding.
#[test]
fn the_cpml_dispatch_changes_only_rounding() {
    let problems = [
        random_problem_with(&[37, 29], 6, 8, 60, 91, Cpml),
        random_problem_with(&[15, 13, 11], 4, 4, 30, 92, Cpml),
    ];
    let mut runs: Vec<Vec<Vec<f64>>> = Vec::new();
    for dispatch in [CpmlDispatch::ByRegion, CpmlDispatch::OneKernel] {
        let Some(gpu) = gpu_with_dispatch(dispatch) else {
            return;
        };
        let mut rng = StdRng::seed_from_u64(93);
        let mut run = Vec::new();
        for p in &problems {
            let acoustic = GpuAcoustic::new(&gpu, p).unwrap();
            let fwd = acoustic.forward(true).unwrap();
            let y = random(&mut rng, fwd.traces.len());
            let adj = acoustic
                .adjoint(fwd.fields.as_ref().unwrap(), &y, false)
                .unwrap();
            run.push(fwd.traces);
            run.push(adj.gradient);
        }
        runs.push(run);
    }
    for (i, (a, b)) in runs[0].iter().zip(&runs[1]).enumerate() {
        assert!(b.iter().any(|x| *x != 0.0));
        let e = relative_l2(a, b);
        eprintln!("output {i}: relative L2 between the dispatches {e:e}");
        assert!(e <= 1e-6, "output {i}: the dispatches differ by {e:e}");
    }
}

#[test]
fn gpu_dot_product_tests() {
    let Some(gpu) = common::gpu() else { return };
    let cases = [
        (vec![64usize, 64], 200usize, Sponge),
        (vec![24, 24, 24], 100, Sponge),
        (vec![48, 40], 200, Cpml),
        (vec![20, 18, 22], 100, Cpml),
    ];
    for (shape, nt, kind) in cases {
        let problem = random_problem_with(&shape, 8, 8, nt, 3, kind);
        let acoustic = GpuAcoustic::new(&gpu, &problem).unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let (ns, nr) = (problem.sources().points, problem.receivers().points);
        let x = random(&mut rng, nt * ns);
        let y = random(&mut rng, nt * nr);
        acoustic.set_source_series(&x).unwrap();
        let fwd = acoustic.forward(true).unwrap();
        let adj = acoustic
            .adjoint(fwd.fields.as_ref().unwrap(), &y, true)
            .unwrap();
        let (lhs, rhs) = (
            dot(&fwd.traces, &y),
            dot(&x, adj.source_adjoint.as_ref().unwrap()),
        );
        let gap = (lhs - rhs).abs() / lhs.abs().max(rhs.abs());
        assert!(
            gap <= 1e-5,
            "{shape:?} {kind:?}: <Fx, y> = {lhs}, <x, F'y> = {rhs}, gap {gap:e}"
        );
    }
}

/// Taylor test: `|J(m + h dm) − J(m)|` falls like `h` and `|J(m + h dm) − J(m) − h <g, dm>|` like
/// `h²`, over five halvings of `h`; the fitted slopes must be 1 ± 0.1 and 2 ± 0.1.
///
/// `amplitude` (relative to `m`) places the six step sizes where the first-order term dominates
/// the curvature at the largest `h` and the second-order term stays above float32 noise in `J`
/// at the smallest.
fn taylor(gpu: &Gpu, shape: &[usize], nt: usize, amplitude: f64, kind: BoundaryKind) {
    let truth = Model::circle(shape, 10.0, 8, 2000.0, 2300.0, 60.0).unwrap();
    let start = Model::constant(shape, 10.0, 8, 2000.0).unwrap();
    let extent = truth.extent();
    let at = |fx: f64, fz: f64| -> Vec<f64> {
        let mut p: Vec<f64> = extent.iter().map(|e| e / 2.0).collect();
        p[0] = extent[0] * fx;
        *p.last_mut().unwrap() = extent[extent.len() - 1] * fz;
        p
    };
    let sources = vec![at(0.5, 0.1)];
    let receivers: Vec<Vec<f64>> = (0..11).map(|i| at(i as f64 / 10.0, 0.9)).collect();
    let time = TimeAxis::new(&truth, 4, nt, None).unwrap();
    let boundary = Boundary::for_models(kind, &[&truth, &start]).unwrap();
    let problem = |model: Model| {
        let g = Geometry::new(&model, sources.clone(), receivers.clone(), 20.0).unwrap();
        Problem::with_boundary(model, g, time, 4, boundary).unwrap()
    };
    let observed = GpuAcoustic::new(gpu, &problem(truth))
        .unwrap()
        .forward(false)
        .unwrap()
        .traces;
    let p0 = problem(start);
    let info = GpuAcoustic::new(gpu, &p0)
        .unwrap()
        .gradient_store_all(&observed)
        .unwrap();
    let layout = *p0.layout();
    let m0 = layout.unpad(p0.slowness_squared()).unwrap();
    // A smooth perturbation.
    let dm: Vec<f64> = {
        let e = layout.extended;
        let mut i = 0;
        let mut out = vec![0.0; m0.len()];
        for x in 0..e[0] {
            for y in 0..e[1] {
                for z in 0..e[2] {
                    let s = (x as f64 * 0.21).sin() * (z as f64 * 0.17).cos()
                        + (y as f64 * 0.3).sin() * 0.3;
                    out[i] = amplitude * m0[i] * s;
                    i += 1;
                }
            }
        }
        out
    };
    let g_dm = dot(&layout.unpad(&info.gradient).unwrap(), &dm);
    eprintln!(
        "{shape:?}: J = {}, g.dm = {g_dm}, max|d_obs| = {}",
        info.misfit,
        observed.iter().fold(0f64, |a, b| a.max(b.abs()))
    );
    let (mut first, mut second, mut hs) = (vec![], vec![], vec![]);
    for j in 0..6 {
        let h = 0.5f64.powi(j);
        let m: Vec<f64> = m0.iter().zip(&dm).map(|(m, d)| m + h * d).collect();
        let p = p0.with_slowness_squared(&m).unwrap();
        let traces = GpuAcoustic::new(gpu, &p)
            .unwrap()
            .forward(false)
            .unwrap()
            .traces;
        let (j_h, _) = misfit(&traces, &observed);
        first.push((j_h - info.misfit).abs());
        second.push((j_h - info.misfit - h * g_dm).abs());
        hs.push(h);
    }
    let slope = |e: &[f64]| {
        // Least-squares slope of log e against log h.
        let (lx, ly): (Vec<f64>, Vec<f64>) =
            hs.iter().zip(e).map(|(h, e)| (h.ln(), e.ln())).unzip();
        let (mx, my) = (lx.iter().sum::<f64>() / 6.0, ly.iter().sum::<f64>() / 6.0);
        let cov: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
        cov / lx.iter().map(|x| (x - mx).powi(2)).sum::<f64>()
    };
    let (s1, s2) = (slope(&first), slope(&second));
    eprintln!("{shape:?} {kind:?} s1 {s1} s2 {s2} first {first:?} second {second:?}");
    assert!(
        (s1 - 1.0).abs() <= 0.1,
        "{shape:?} {kind:?}: first-order slope {s1} ({first:?})"
    );
    assert!(
        (s2 - 2.0).abs() <= 0.1,
        "{shape:?} {kind:?}: second-order slope {s2} ({second:?})"
    );
}

#[test]
fn taylor_test_2d() {
    let Some(gpu) = common::gpu() else { return };
    taylor(&gpu, &[40, 40], 160, 0.03, Sponge);
    taylor(&gpu, &[40, 40], 160, 0.03, Cpml);
}

#[test]
fn taylor_test_3d() {
    let Some(gpu) = common::gpu() else { return };
    taylor(&gpu, &[22, 20, 20], 120, 0.05, Sponge);
    taylor(&gpu, &[22, 20, 20], 120, 0.05, Cpml);
}

/// Index of the largest |sample| of receiver `r`.
fn peak(traces: &[f64], nr: usize, r: usize) -> usize {
    (0..traces.len() / nr)
        .max_by(|&a, &b| {
            traces[a * nr + r]
                .abs()
                .total_cmp(&traces[b * nr + r].abs())
        })
        .unwrap()
}

#[test]
fn direct_arrivals_travel_at_the_medium_velocity() {
    let Some(gpu) = common::gpu() else { return };
    let c = 1500.0;
    // 3D: the Green's function is a delayed delta, so the wavelet's peak (at t0 = 1/f0) arrives
    // at t0 + d/c.
    let model = Model::constant(&[40, 40, 40], 10.0, 10, c).unwrap();
    let src = vec![100.0, 195.0, 195.0];
    let receivers: Vec<Vec<f64>> = [150.0, 200.0, 250.0]
        .iter()
        .map(|x| vec![100.0 + x, 195.0, 195.0])
        .collect();
    let geometry = Geometry::new(&model, vec![src], receivers.clone(), 15.0).unwrap();
    let time = TimeAxis::new(&model, 8, 180, None).unwrap();
    let problem = Problem::new(model, geometry, time, 8).unwrap();
    let traces = GpuAcoustic::new(&gpu, &problem)
        .unwrap()
        .forward(false)
        .unwrap()
        .traces;
    for (r, x) in [150.0, 200.0, 250.0].iter().enumerate() {
        let want = (1.0 / 15.0 + x / c) / time.dt;
        let got = peak(&traces, 3, r) as f64;
        assert!(
            (got - want).abs() <= 1.0,
            "3D receiver at {x} m: peak at sample {got}, expected {want:.2}"
        );
    }
    // 2D: the Green's function has a tail that shifts the peak alike at every distance, so the
    // move-out between receivers is d/c.
    let model = Model::constant(&[120, 60], 10.0, 20, c).unwrap();
    let receivers: Vec<Vec<f64>> = [300.0, 500.0, 700.0]
        .iter()
        .map(|x| vec![100.0 + x, 300.0])
        .collect();
    let geometry = Geometry::new(&model, vec![vec![100.0, 300.0]], receivers, 15.0).unwrap();
    let time = TimeAxis::new(&model, 8, 500, None).unwrap();
    let problem = Problem::new(model, geometry, time, 8).unwrap();
    let traces = GpuAcoustic::new(&gpu, &problem)
        .unwrap()
        .forward(false)
        .unwrap()
        .traces;
    let first = peak(&traces, 3, 0) as f64;
    for (r, x) in [(1, 500.0), (2, 700.0)] {
        let want = first + (x - 300.0) / c / time.dt;
        let got = peak(&traces, 3, r) as f64;
        assert!(
            (got - want).abs() <= 1.0,
            "2D receiver at {x} m: peak at {got}, expected {want:.2}"
        );
    }
}

#[test]
fn same_inputs_give_the_same_bits() {
    let Some(gpu) = common::gpu() else { return };
    let problem = random_problem(&[48, 40], 8, 8, 120, 9);
    let observed = vec![0.25; problem.time().nt * problem.receivers().points];
    let acoustic = GpuAcoustic::new(&gpu, &problem).unwrap();
    let a = acoustic.gradient_store_all(&observed).unwrap();
    let b = GpuAcoustic::new(&gpu, &problem)
        .unwrap()
        .gradient_store_all(&observed)
        .unwrap();
    assert!(a.gradient.iter().any(|g| *g != 0.0));
    assert_eq!(
        a.gradient.iter().map(|g| g.to_bits()).collect::<Vec<_>>(),
        b.gradient.iter().map(|g| g.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(a.misfit.to_bits(), b.misfit.to_bits());
}

#[test]
fn a_field_larger_than_the_device_allows_is_typed() {
    let options = GpuOptions {
        max_buffer_size: Some(1 << 20),
        ..GpuOptions::default()
    };
    let Some(gpu) = common::gpu_with(&options) else {
        return;
    };
    // A time level: (600 + 2·10 + 2·4)² floats = 1.58 MB, and the CPML's memory fields, > 1 MiB.
    let model = Model::constant(&[600, 600], 10.0, 10, 2000.0).unwrap();
    let geometry =
        Geometry::new(&model, vec![vec![10.0, 10.0]], vec![vec![20.0, 20.0]], 10.0).unwrap();
    let time = TimeAxis::new(&model, 8, 10, None).unwrap();
    let problem = Problem::new(model, geometry, time, 8).unwrap();
    let err = GpuAcoustic::new(&gpu, &problem).unwrap_err();
    assert!(matches!(err, Error::BufferTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("time level"), "{err}");
}

#[test]
fn the_step_workgroup_shape_changes_nothing_but_speed() {
    let shapes = [
        ([64, 4, 1], [32, 4, 2]),
        ([16, 16, 1], [8, 8, 4]),
        ([7, 3, 1], [5, 3, 3]), // odd sizes: partial workgroups at every edge
    ];
    let problems = [
        random_problem(&[37, 29], 5, 8, 40, 71),
        random_problem(&[15, 13, 11], 3, 4, 25, 72),
    ];
    let mut reference: Vec<Vec<u64>> = Vec::new();
    for (i, (two, three)) in shapes.into_iter().enumerate() {
        let options = GpuOptions {
            kernels: KernelOptions {
                step_workgroup_2d: two,
                step_workgroup_3d: three,
                ..KernelOptions::default()
            },
            ..GpuOptions::default()
        };
        let Some(gpu) = common::gpu_with(&options) else {
            return;
        };
        for (j, p) in problems.iter().enumerate() {
            let traces = GpuAcoustic::new(&gpu, p)
                .unwrap()
                .forward(false)
                .unwrap()
                .traces;
            assert!(traces.iter().any(|t| *t != 0.0));
            let bits: Vec<u64> = traces.iter().map(|t| t.to_bits()).collect();
            if i == 0 {
                reference.push(bits);
            } else {
                assert_eq!(
                    bits, reference[j],
                    "shapes {two:?} / {three:?}, problem {j}"
                );
            }
        }
    }
    // Shapes the device cannot run are refused when it is opened, naming the knob.
    for bad in [[0, 4, 1], [1 << 20, 1, 1], [1024, 1024, 1]] {
        let options = GpuOptions {
            kernels: KernelOptions {
                step_workgroup_2d: bad,
                ..KernelOptions::default()
            },
            ..GpuOptions::default()
        };
        match Gpu::with_options(&options) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "step_workgroup_2d"),
            Err(Error::NoAdapter { .. }) if std::env::var("CI").is_err() => return,
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

/// The forward run with progress reports what the GPU finished, in order, ending at the
/// total, and records the bits of the plain run; a `Break` stops it with `Error::Interrupted`.
#[test]
fn a_forward_run_reports_progress_and_can_be_stopped() {
    let Some(gpu) = common::gpu() else { return };
    let problem = random_problem_with(&[30, 20], 8, 4, 150, rand::random(), Cpml);
    let acoustic = GpuAcoustic::new(&gpu, &problem).unwrap();
    let plain = acoustic.forward(false).unwrap().traces;
    let mut seen = Vec::new();
    let reported = acoustic
        .forward_with_progress(false, |p| seen.push(p))
        .unwrap()
        .traces;
    assert_eq!(bits(&plain), bits(&reported));
    let total = 149;
    assert!(seen.len() >= 2 && seen.iter().all(|p| p.total == total));
    assert!(seen.windows(2).all(|w| w[0].done < w[1].done));
    assert_eq!(seen.last().map(|p| p.done), Some(total));
    let stopped = acoustic.forward_with_progress(false, |p| {
        if p.done >= 64 {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    });
    assert!(
        matches!(stopped, Err(Error::Interrupted { done: 64 })),
        "{stopped:?}"
    );
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

//! The differentiable operator (`job::Tape`): a forward that keeps its checkpoints and a
//! backward with any adjoint source. With the L2 residual it is the job's gradient to the bit;
//! its source gradient is the exact transpose of the forward (a dot-product test on random
//! amplitudes and adjoint sources); a kept tape reverses twice with the same bits; bad input is
//! refused before anything runs.

mod common;

use std::sync::Arc;

use common::survey;
use gpurevolve::acoustic::{BoundaryKind, Problem};
use gpurevolve::gpu::Gpu;
use gpurevolve::job::{Batch, GradientJob, RunPolicy, Tape};
use gpurevolve::{Error, ErrorKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_series(rng: &mut StdRng, len: usize) -> Vec<f64> {
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// `a − b` in float32, as the residual kernel forms it.
fn f32_residual(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| f64::from(a as f32 - b as f32))
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The L2 case: the tape's traces and its gradient with `∂L/∂d = d − d_obs` are the job's,
/// to the bit, for batches of 1 and 3 (the last holds one), and spilled to host memory.
#[test]
fn the_l2_adjoint_source_gives_the_jobs_bits() {
    let Some(gpu) = common::gpu() else { return };
    let gpu = Arc::new(gpu);
    let (shots, observed) = survey(&[26, 22], BoundaryKind::Cpml, 40, 4, 71);
    let wavelets: Vec<Vec<f64>> = shots.iter().map(Problem::source_series).collect();
    for policy in [
        RunPolicy {
            snaps: Some(6),
            ..RunPolicy::default()
        },
        RunPolicy {
            snaps: Some(6),
            batch: Batch::Shots(3),
            ..RunPolicy::default()
        },
        RunPolicy {
            snaps: Some(6),
            device_memory: Some(2 * shots[0].level_bytes() * 2),
            ..RunPolicy::default()
        },
    ] {
        let job = GradientJob::new(shots.clone(), observed.clone(), policy.clone()).unwrap();
        let plan = job.plan(&gpu).unwrap();
        let want = job
            .run(&plan, std::slice::from_ref(&*gpu), None, |_, _| {})
            .unwrap();
        let want_gradient = shots[0].model_gradient(&want.gradient).unwrap();

        let mut tape = Tape::record(
            Arc::clone(&gpu),
            shots.clone(),
            wavelets.clone(),
            policy.clone(),
        )
        .unwrap();
        for (got, want) in tape.traces().iter().zip(&want.traces) {
            assert_eq!(common::bits(got), common::bits(want), "traces, {policy:?}");
        }
        let adjoint: Vec<Vec<f64>> = (tape.traces().iter().zip(&observed))
            .map(|(d, o)| f32_residual(d, o))
            .collect();
        let got = tape.backward(&adjoint, false).unwrap();
        assert!(want_gradient.iter().any(|&g| g != 0.0));
        assert_eq!(
            common::bits(&got.gradient),
            common::bits(&want_gradient),
            "gradient, {policy:?}"
        );
        let forward: u64 = got.stats.iter().map(|s| s.forward_steps).sum();
        let per_batch = want.shots[0].forward_steps;
        assert_eq!(forward, per_batch * got.stats.len() as u64, "{policy:?}");
    }
}

/// Every batch of a tape holds its checkpoints until the backward: the device budget is
/// shared among them (each spills beyond its share, and the bits stay the job's), and a
/// tape's default memory gives each shot of a batch one shot's default.
#[test]
fn a_tapes_batches_share_the_budgets_and_keep_one_shots_default_memory() {
    let Some(gpu) = common::gpu() else { return };
    let gpu = Arc::new(gpu);
    let (shots, observed) = survey(&[26, 22], BoundaryKind::Cpml, 40, 4, 76);
    let wavelets: Vec<Vec<f64>> = shots.iter().map(Problem::source_series).collect();
    let state = 2 * shots[0].level_bytes();
    let budget = 2 * 2 * state; // two snapshots of a batch of two
    let policy = RunPolicy {
        snaps: Some(12),
        batch: Batch::Shots(2),
        device_memory: Some(budget),
        ..RunPolicy::default()
    };
    let job = GradientJob::new(shots.clone(), observed.clone(), policy.clone()).unwrap();
    let plan = job.plan(&gpu).unwrap();
    let want = job
        .run(&plan, std::slice::from_ref(&*gpu), None, |_, _| {})
        .unwrap();
    let mut tape = Tape::record(Arc::clone(&gpu), shots.clone(), wavelets.clone(), policy).unwrap();
    let adjoint: Vec<Vec<f64>> = (tape.traces().iter().zip(&observed))
        .map(|(d, o)| f32_residual(d, o))
        .collect();
    assert_eq!(tape.info().stats.len(), 2);
    let got = tape.backward(&adjoint, false).unwrap();
    for stats in &got.stats {
        assert!(stats.peak_checkpoint_bytes <= budget / 2, "{stats:?}");
        assert!(
            stats.peak_slower_bytes > 0,
            "beyond its share a batch spills: {stats:?}"
        );
    }
    let want_gradient = shots[0].model_gradient(&want.gradient).unwrap();
    assert_eq!(common::bits(&got.gradient), common::bits(&want_gradient));

    // One batch of every shot, default memory: each shot's default snapshots.
    let alone = GradientJob::new(shots.clone(), observed, RunPolicy::default()).unwrap();
    let alone = alone.plan(&gpu).unwrap();
    let all = RunPolicy {
        batch: Batch::Shots(usize::MAX),
        ..RunPolicy::default()
    };
    let tape = Tape::record(Arc::clone(&gpu), shots, wavelets, all).unwrap();
    assert_eq!(tape.info().batch, 4);
    assert_eq!(tape.info().plan.forward_steps(), alone.forward_steps());
}

/// `⟨F q, y⟩ = ⟨q, Fᵀ y⟩`: the source gradient of a random adjoint source `y` is the
/// transpose of the map from random amplitudes `q` (two or three sources a shot) to traces.
#[test]
fn the_source_gradient_is_the_transpose_of_the_forward() {
    let Some(gpu) = common::gpu() else { return };
    let gpu = Arc::new(gpu);
    let mut rng = StdRng::seed_from_u64(72);
    for kind in [BoundaryKind::Cpml, BoundaryKind::Sponge] {
        let (shots, _) = survey(&[24, 20], kind, 36, 3, 73);
        let nt = shots[0].time().nt;
        let amplitudes: Vec<Vec<f64>> = shots
            .iter()
            .map(|s| random_series(&mut rng, nt * s.sources().points))
            .collect();
        let policy = RunPolicy {
            snaps: Some(4),
            batch: Batch::Shots(2),
            ..RunPolicy::default()
        };
        let mut tape =
            Tape::record(Arc::clone(&gpu), shots.clone(), amplitudes.clone(), policy).unwrap();
        let adjoint: Vec<Vec<f64>> = shots
            .iter()
            .map(|s| random_series(&mut rng, nt * s.receivers().points))
            .collect();
        let got = tape.backward(&adjoint, false).unwrap();
        for (i, ((d, y), (q, g))) in (tape.traces().iter().zip(&adjoint))
            .zip(amplitudes.iter().zip(&got.source_gradients))
            .enumerate()
        {
            let (lhs, rhs) = (dot(d, y), dot(q, g));
            assert!(lhs != 0.0);
            let relative = (lhs - rhs).abs() / lhs.abs();
            assert!(
                relative < 1e-4,
                "shot {i}, {kind:?}: {lhs} vs {rhs} ({relative:e})"
            );
            // The last sample is never injected: nothing depends on it.
            let sources = shots[i].sources().points;
            assert!(g[(nt - 1) * sources..].iter().all(|&x| x == 0.0));
        }
    }
}

/// With `keep`, a second backward gives the same bits; without it, a second backward is a
/// clear error, and so is one after a failed check... which leaves the tape usable.
#[test]
fn a_kept_tape_reverses_twice_and_a_spent_one_refuses() {
    let Some(gpu) = common::gpu() else { return };
    let gpu = Arc::new(gpu);
    let (shots, observed) = survey(&[24, 20], BoundaryKind::Cpml, 30, 2, 74);
    let wavelets: Vec<Vec<f64>> = shots.iter().map(Problem::source_series).collect();
    let policy = RunPolicy {
        snaps: Some(3),
        ..RunPolicy::default()
    };
    let mut tape = Tape::record(Arc::clone(&gpu), shots, wavelets, policy).unwrap();
    let adjoint: Vec<Vec<f64>> = (tape.traces().iter().zip(&observed))
        .map(|(d, o)| f32_residual(d, o))
        .collect();

    // Bad adjoint sources are refused before anything runs.
    let mut short = adjoint.clone();
    short[1].pop();
    let e = tape.backward(&short, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput);
    assert!(e.to_string().contains("shot 1"), "{e}");
    let e = tape.backward(&adjoint[..1], false).unwrap_err();
    assert!(e.to_string().contains("1 series for 2 shots"), "{e}");
    let mut nan = adjoint.clone();
    nan[0][5] = f64::NAN;
    assert!(matches!(
        tape.backward(&nan, false),
        Err(Error::InvalidArgument {
            name: "adjoint",
            ..
        })
    ));
    assert!(tape.is_live());

    let first = tape.backward(&adjoint, true).unwrap();
    assert!(tape.is_live());
    let second = tape.backward(&adjoint, false).unwrap();
    assert_eq!(
        common::bits(&first.gradient),
        common::bits(&second.gradient)
    );
    for (a, b) in first.source_gradients.iter().zip(&second.source_gradients) {
        assert_eq!(common::bits(a), common::bits(b));
    }
    assert!(!tape.is_live());
    let e = tape.backward(&adjoint, false).unwrap_err();
    assert!(e.to_string().contains("spent"), "{e}");
    drop(tape);
}

/// Recording refuses what it cannot run, naming the argument.
#[test]
fn recording_refuses_bad_amplitudes_and_runs_until_quiet() {
    let Some(gpu) = common::gpu() else { return };
    let gpu: Arc<Gpu> = Arc::new(gpu);
    let (shots, _) = survey(&[24, 20], BoundaryKind::Cpml, 30, 2, 75);
    let wavelets: Vec<Vec<f64>> = shots.iter().map(Problem::source_series).collect();
    let record = |amplitudes: Vec<Vec<f64>>, policy: RunPolicy| {
        Tape::record(Arc::clone(&gpu), shots.clone(), amplitudes, policy).unwrap_err()
    };
    let e = record(wavelets[..1].to_vec(), RunPolicy::default());
    assert!(e.to_string().contains("1 series for 2 shots"), "{e}");
    let mut long = wavelets.clone();
    long[0].push(0.0);
    assert!(
        record(long, RunPolicy::default())
            .to_string()
            .contains("shot 0")
    );
    let mut inf = wavelets.clone();
    inf[1][3] = f64::INFINITY;
    let e = record(inf, RunPolicy::default());
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                name: "amplitudes",
                ..
            }
        ),
        "{e}"
    );
    let quiet = RunPolicy {
        until_quiet: Some(1e-4),
        ..RunPolicy::default()
    };
    let e = record(wavelets.clone(), quiet);
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                name: "until_quiet",
                ..
            }
        ),
        "{e}"
    );
    let e = record(
        wavelets,
        RunPolicy {
            snaps: Some(0),
            ..RunPolicy::default()
        },
    );
    assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
}

/// A `watch` that says stop ends a recording and a backward at their next step with
/// `Interrupted`: nothing is held (the backward's checkpoints are spent) and the GPU records
/// again. The watch is asked before each run starts, so a stop asked at once always lands
/// before the run's end, on any GPU.
#[test]
fn a_watch_stops_a_recording_and_a_backward() {
    let Some(gpu) = common::gpu() else { return };
    let gpu: Arc<Gpu> = Arc::new(gpu);
    let steps_of = |e: &Error| match e {
        Error::Interrupted { done } => *done,
        other => panic!("not interrupted: {other}"),
    };
    let nt = 2_000;
    let (shots, _) = survey(&[16, 16], BoundaryKind::Cpml, nt, 1, 76);
    let wavelets: Vec<Vec<f64>> = shots.iter().map(Problem::source_series).collect();
    let mut asked = 0;
    let e = Tape::record_watched(
        Arc::clone(&gpu),
        shots.clone(),
        wavelets.clone(),
        RunPolicy::default(),
        &mut || {
            asked += 1;
            std::ops::ControlFlow::Break(())
        },
    )
    .unwrap_err();
    assert!(asked >= 1);
    assert!(steps_of(&e) < nt as u64 - 1, "{e}");
    assert_eq!(e.kind(), ErrorKind::Interrupted);
    let mut tape = Tape::record(Arc::clone(&gpu), shots, wavelets, RunPolicy::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(77);
    let adjoint: Vec<Vec<f64>> = tape
        .traces()
        .iter()
        .map(|t| random_series(&mut rng, t.len()))
        .collect();
    let mut asked = 0;
    let e = tape
        .backward_watched(&adjoint, true, &mut || {
            asked += 1;
            std::ops::ControlFlow::Break(())
        })
        .unwrap_err();
    assert!(asked >= 1);
    let planned = tape.info().plan.forward_steps() + nt as u64 - 1;
    assert!(steps_of(&e) < planned, "{e}");
    assert!(!tape.is_live());
    let e = tape.backward(&adjoint, false).unwrap_err();
    assert!(e.to_string().contains("spent"), "{e}");
}

//! Host-side overhead, counted exactly through `Gpu::counters`: the steady-state step loop
//! creates nothing, pipelines are compiled once per device (not per shot), and the engine
//! submits once per `steps_per_submit` steps. Counts, not timings, so they hold on any adapter.

mod common;

use common::random_problem;
use gpurevolve::acoustic::{AcousticOperator, CpuTwin, GpuAcoustic};
use gpurevolve::engine::{Revolver, RevolverOptions};
use gpurevolve::schedule::{Revolve, min_advances};

#[test]
fn the_steady_state_step_loop_creates_nothing() {
    let Some(gpu) = common::gpu() else { return };
    let problem = random_problem(&[40, 30], 6, 8, 80, 11);
    let acoustic = GpuAcoustic::new(&gpu, &problem).unwrap();
    let mut fields = [
        acoustic.level("a").unwrap(),
        acoustic.level("b").unwrap(),
        acoustic.level("c").unwrap(),
    ];
    let mut steps = |from: usize, to: usize| {
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        for k in from..to {
            let [prev, cur, next] = &fields;
            acoustic.encode_forward_step(&mut encoder, k, [prev, cur, next], k % 2 == 0);
            fields.rotate_left(1);
        }
        gpu.submit([encoder.finish()]);
        gpu.wait().unwrap();
    };
    // Three steps see every rotation of the three buffers; after that nothing is new.
    steps(0, 6);
    let before = gpu.counters();
    steps(6, 78);
    let during = gpu.counters().since(&before);
    assert_eq!(
        (during.buffers, during.pipelines, during.bind_groups),
        (0, 0, 0),
        "{during:?}"
    );
    assert_eq!(during.submissions, 1);
}

#[test]
fn pipelines_are_compiled_once_per_device_not_per_shot() {
    let Some(gpu) = common::gpu() else { return };
    let shot = |seed| random_problem(&[24, 20], 4, 8, 20, seed);
    let first = gpu.counters();
    let a = GpuAcoustic::new(&gpu, &shot(1)).unwrap();
    let compiled = gpu.counters().since(&first).pipelines;
    // Step, gradient, inject, sample, residual, gradient at the sources (the sponge's adjoint
    // step is the step).
    assert_eq!(compiled, 6);
    let before = gpu.counters();
    let b = GpuAcoustic::new(&gpu, &shot(2)).unwrap();
    assert_eq!(gpu.counters().since(&before).pipelines, 0);
    // Another order compiles only its own stencil kernels: the step and the gradient.
    let before = gpu.counters();
    let other = random_problem(&[24, 20], 4, 4, 20, 3);
    let c = GpuAcoustic::new(&gpu, &other).unwrap();
    assert_eq!(gpu.counters().since(&before).pipelines, 2);
    // Shared pipelines compute the same bits as freshly compiled ones did.
    let fresh = a.forward(false).unwrap().traces;
    let again = GpuAcoustic::new(&gpu, &shot(1))
        .unwrap()
        .forward(false)
        .unwrap()
        .traces;
    assert_eq!(fresh, again);
    drop((b, c));
}

#[test]
fn the_engine_submits_once_per_batch_of_steps_and_allocates_a_bounded_pool() {
    let Some(gpu) = common::gpu() else { return };
    let problem = random_problem(&[24, 20], 4, 4, 121, 7);
    let wavelet = problem.source_series();
    let observed = CpuTwin::new(&problem)
        .forward(&wavelet, false)
        .unwrap()
        .traces;
    let (n, s) = (120u64, 6u64);
    for per_submit in [1usize, 7, 32] {
        let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
        let options = RevolverOptions {
            // The contract check (on in debug builds) copies, waits and reads back each step.
            check_state_contract: false,
            steps_per_submit: per_submit,
            ..RevolverOptions::default()
        };
        let mut revolver =
            Revolver::new(&gpu, operator, Revolve::new(n, s).unwrap(), options).unwrap();
        let before = gpu.counters();
        let stats = revolver.apply_reverse().unwrap();
        let run = gpu.counters().since(&before);
        // A reverse encodes its recording step and its adjoint as one batch entry.
        let entries = stats.advances + stats.reverse_steps;
        assert_eq!(entries, min_advances(n, s).unwrap() + n);
        let batches = entries.div_ceil(per_submit as u64);
        // One submission a full batch, plus at most one at the end of each sweep.
        assert!(
            entries / per_submit as u64 <= run.submissions && run.submissions <= batches + 2,
            "{per_submit} steps a submission: {} submissions for {entries} entries",
            run.submissions
        );
        // Two levels a state: at most the checkpoints, the live state, one spare state and a
        // level, as the engine documents; never a buffer per step.
        assert!(
            run.buffers <= 2 * (s + 2) + 1,
            "{} buffers for {s} snapshots",
            run.buffers
        );
        assert_eq!(run.pipelines, 0, "the operator compiled before the run");
    }
}

//! Shots batched on the GPU (`RunPolicy::batch`, `AcousticOperator::batch`): every shot of a
//! batch gets exactly the bits it has alone — gradient, misfit and traces — whatever the batch
//! size, in 2D and 3D, under a CPML or a sponge, spilling to host memory or disk, and stopping
//! each shot at its own end when quiet; and a batch makes one dispatch for all its shots.

mod common;

use common::survey;
use gpurevolve::acoustic::{AcousticOperator, BoundaryKind, GpuAcoustic, Problem};
use gpurevolve::gpu::Gpu;
use gpurevolve::job::{Batch, GradientJob, RunContext, RunPolicy, Summary};
use gpurevolve::{Error, ErrorKind};

/// What a run gives, as bits: the summed gradient, the misfit, each shot's traces.
#[derive(Debug, PartialEq)]
struct Bits {
    gradient: Vec<u64>,
    misfit: u64,
    traces: Vec<Vec<u64>>,
}

fn run(
    gpus: &[Gpu],
    (shots, observed): &(Vec<Problem>, Vec<Vec<f64>>),
    policy: RunPolicy,
) -> (Bits, Summary) {
    let job = GradientJob::new(shots.clone(), observed.clone(), policy).unwrap();
    let plan = job.plan(&gpus[0]).unwrap();
    let result = job.run(&plan, gpus, None, |_, _| {}).unwrap();
    let summary = job
        .summary(&plan, &result, RunContext::of_devices(gpus))
        .unwrap();
    let bits = Bits {
        gradient: common::bits(&result.gradient),
        misfit: result.misfit.to_bits(),
        traces: result.traces.iter().map(|t| common::bits(t)).collect(),
    };
    (bits, summary)
}

fn batch(b: usize, policy: &RunPolicy) -> RunPolicy {
    RunPolicy {
        batch: Batch::Shots(b),
        ..policy.clone()
    }
}

/// Every batch size gives the bits of the shots run one at a time: 10 shots in batches of
/// 1, 2, 3 (the last holds one), 8 (the last holds two) and 10.
fn every_batch_size_gives_the_unbatched_bits(kind: BoundaryKind, shape: &[usize], seed: u64) {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let survey = survey(shape, kind, 33, 10, seed);
    // The memory of 24 one-shot snapshots, shared by a batch: a batch of 8 gets 3 of its own.
    let policy = RunPolicy {
        snaps: Some(24),
        ..RunPolicy::default()
    };
    let (alone, summary) = run(&gpus, &survey, batch(1, &policy));
    assert_eq!(summary.batch, 1);
    assert!(alone.misfit != 0 && alone.gradient.iter().any(|&g| g != 0));
    for b in [2, 3, 8, 10] {
        let (batched, summary) = run(&gpus, &survey, batch(b, &policy));
        assert_eq!(summary.batch, b);
        assert_eq!(batched, alone, "a batch of {b}, {kind:?}, {shape:?}");
    }
}

#[test]
fn batches_give_the_unbatched_bits_in_2d_with_a_cpml() {
    every_batch_size_gives_the_unbatched_bits(BoundaryKind::Cpml, &[26, 22], 61);
}

#[test]
fn batches_give_the_unbatched_bits_in_2d_with_a_sponge() {
    every_batch_size_gives_the_unbatched_bits(BoundaryKind::Sponge, &[26, 22], 62);
}

#[test]
fn batches_give_the_unbatched_bits_in_3d() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    for (kind, seed) in [(BoundaryKind::Cpml, 63), (BoundaryKind::Sponge, 64)] {
        let survey = survey(&[12, 10, 11], kind, 21, 5, seed);
        let policy = RunPolicy {
            snaps: Some(12),
            ..RunPolicy::default()
        };
        let (alone, _) = run(&gpus, &survey, batch(1, &policy));
        for b in [2, 3] {
            let (batched, _) = run(&gpus, &survey, batch(b, &policy));
            assert_eq!(batched, alone, "a batch of {b}, 3D, {kind:?}");
        }
    }
}

/// Spilled to host memory, to a disk tier, and over two devices: the same bits.
#[test]
fn batches_spill_and_share_devices_with_the_same_bits() {
    let Some(gpu) = common::gpu() else { return };
    let Some(second) = common::gpu() else { return };
    let survey = survey(&[26, 22], BoundaryKind::Cpml, 33, 5, 65);
    let policy = RunPolicy {
        snaps: Some(20),
        ..RunPolicy::default()
    };
    let (alone, _) = run(std::slice::from_ref(&gpu), &survey, batch(1, &policy));
    let state = 2 * survey.0[0].level_bytes();
    let disk = std::env::temp_dir().join(format!("gpurevolve-batch-{}", std::process::id()));
    std::fs::create_dir_all(&disk).unwrap();
    let spilling = [
        // Room for two snapshots of a batch of 3 on the GPU; the rest in host memory.
        RunPolicy {
            device_memory: Some(2 * 3 * state),
            ..batch(3, &policy)
        },
        // And then one in host memory, the rest on disk.
        RunPolicy {
            device_memory: Some(2 * 3 * state),
            host_memory: Some(3 * state),
            disk: Some(disk.clone()),
            ..batch(3, &policy)
        },
    ];
    for policy in spilling {
        let (batched, summary) = run(std::slice::from_ref(&gpu), &survey, policy.clone());
        assert!(summary.spilled_bytes > 0, "{policy:?} spilled nothing");
        assert_eq!(batched, alone, "{policy:?}");
    }
    std::fs::remove_dir_all(&disk).unwrap();
    let gpus = [gpu, second];
    let (batched, summary) = run(&gpus, &survey, batch(2, &policy));
    assert_eq!(batched, alone, "two devices");
    assert_eq!(summary.shot_devices.len(), 5);
}

/// Until quiet, each shot of a batch stops at its own end, as alone: sources deep in the model
/// and at its edge die down at different steps, and the batch runs until its last is quiet.
#[test]
fn a_batch_stops_each_shot_at_its_own_end() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let survey = survey(&[30, 24], BoundaryKind::Cpml, 400, 4, 66);
    let policy = RunPolicy {
        snaps: Some(40),
        until_quiet: Some(0.02),
        ..RunPolicy::default()
    };
    let (alone, alone_summary) = run(&gpus, &survey, batch(1, &policy));
    let ends = &alone_summary.reverse_steps;
    assert!(
        ends.iter().any(|&e| e != ends[0]) && ends.iter().all(|&e| e < 399),
        "the shots should stop at different steps, before the last: {ends:?}"
    );
    for b in [2, 3, 4] {
        let (batched, summary) = run(&gpus, &survey, batch(b, &policy));
        assert_eq!(batched, alone, "a batch of {b} until quiet");
        // Each shot reports its own length, as alone, though its batch ran to its longest:
        // a batch's forward sweep is at least as long as that of any of its shots alone.
        assert_eq!(&summary.reverse_steps, ends, "a batch of {b}");
        let alone_forward = &alone_summary.forward_steps;
        for (start, forward) in summary.forward_steps.iter().enumerate().step_by(b) {
            let longest = alone_forward[start..(start + b).min(4)].iter().max();
            assert!(
                Some(forward) >= longest,
                "a batch of {b}: {forward} < {longest:?}"
            );
        }
    }
}

/// A batch makes one dispatch of each kernel for all its shots: the dispatches per shot-step
/// fall as 1/B (store-all: every batch size runs the same steps).
#[test]
fn dispatches_per_shot_step_fall_as_one_over_the_batch() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let survey = survey(&[20, 18], BoundaryKind::Cpml, 17, 4, 67);
    let policy = RunPolicy {
        store_all: true,
        ..RunPolicy::default()
    };
    let (_, one) = run(&gpus, &survey, batch(1, &policy));
    assert!(one.dispatches_per_shot_step > 1.0, "{one:?}");
    for b in [2, 4] {
        let (_, many) = run(&gpus, &survey, batch(b, &policy));
        let ratio = one.dispatches_per_shot_step / many.dispatches_per_shot_step;
        assert!(
            (ratio - b as f64).abs() < 1e-9,
            "a batch of {b}: {} against {} dispatches per shot-step",
            many.dispatches_per_shot_step,
            one.dispatches_per_shot_step
        );
        assert!(many.measured_seconds_per_shot > 0.0);
    }
}

/// `auto` measures the step cost, weighs batch sizes within the memory, and gives the same
/// bits; its choice and model are in the summary.
#[test]
fn auto_chooses_a_batch_and_keeps_the_bits() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let survey = survey(&[20, 18], BoundaryKind::Sponge, 33, 6, 68);
    let policy = RunPolicy {
        snaps: Some(24),
        ..RunPolicy::default()
    };
    let (alone, _) = run(&gpus, &survey, batch(1, &policy));
    let auto = RunPolicy {
        batch: Batch::Auto,
        ..policy
    };
    // The plan weighs sizes up to the survey's and picks the least modelled time per shot;
    // the step cost is measured once per process, so the run below plans the same.
    let job = GradientJob::new(survey.0.clone(), survey.1.clone(), auto.clone()).unwrap();
    let plan = job.plan(&gpus[0]).unwrap();
    let sizes: Vec<usize> = plan.batch_options.iter().map(|o| o.batch).collect();
    assert_eq!(sizes, vec![1, 2, 3, 4, 6], "{:?}", plan.batch_options);
    let least = plan
        .batch_options
        .iter()
        .min_by(|a, b| a.seconds_per_shot.total_cmp(&b.seconds_per_shot))
        .unwrap();
    assert_eq!(plan.batch, least.batch, "{:?}", plan.batch_options);
    let cost = plan.step_cost.expect("auto measures the step");
    assert!(cost.forward_fixed + cost.forward_per_shot > 0.0, "{cost:?}");
    // More shots a batch, fewer snapshots each: never fewer forward steps.
    for pair in plan.batch_options.windows(2) {
        assert!(pair[0].forward_steps <= pair[1].forward_steps, "{pair:?}");
    }
    let (bits, summary) = run(&gpus, &survey, auto);
    assert_eq!(summary.batch, plan.batch);
    assert_eq!(
        summary.modelled_seconds_per_shot,
        Some(least.seconds_per_shot)
    );
    assert_eq!(bits, alone);
}

#[test]
fn bad_batches_are_typed_errors() {
    assert!(matches!(
        "0".parse::<Batch>(),
        Err(Error::InvalidArgument { name: "batch", .. })
    ));
    assert!("x".parse::<Batch>().is_err());
    assert_eq!("auto".parse::<Batch>().unwrap(), Batch::Auto);
    assert_eq!("7".parse::<Batch>().unwrap(), Batch::Shots(7));
    let zero = RunPolicy {
        batch: Batch::Shots(0),
        ..RunPolicy::default()
    };
    assert!(matches!(
        zero.check(),
        Err(Error::InvalidArgument { name: "batch", .. })
    ));
    // Less memory than one snapshot of the batch: say so, naming the batch.
    let small = RunPolicy {
        snaps: Some(3),
        batch: Batch::Shots(4),
        ..RunPolicy::default()
    };
    let e = small.for_batch(100, 4).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { name: "batch", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("raise snaps"), "{e}");
    // More memory than a batch's states: each batch keeps them all, under a given batch size
    // or auto (whose one-shot candidate must not fail on the memory meant for many shots);
    // one shot of a given batch size is checked as without batching.
    let ample = RunPolicy {
        snaps: Some(1000),
        batch: Batch::Shots(4),
        ..RunPolicy::default()
    };
    assert_eq!(ample.for_batch(100, 4).unwrap().snaps, Some(100));
    assert_eq!(ample.for_batch(100, 8).unwrap().snaps, Some(100));
    assert_eq!(ample.for_batch(1000, 8).unwrap().snaps, Some(125));
    let auto = RunPolicy {
        batch: Batch::Auto,
        ..ample.clone()
    };
    assert_eq!(auto.for_batch(100, 1).unwrap().snaps, Some(100));
    assert_eq!(ample.for_batch(100, 1).unwrap().snaps, Some(1000));
    let Some(gpu) = common::gpu() else { return };
    // Shots of another model cannot share a batch.
    let (shots, observed) = survey(&[20, 18], BoundaryKind::Sponge, 17, 1, 69);
    let (other, _) = survey(&[20, 18], BoundaryKind::Sponge, 17, 1, 70);
    let e = GpuAcoustic::batch(&gpu, &[&shots[0], &other[0]]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadInput, "{e}");
    assert!(GpuAcoustic::batch(&gpu, &[]).is_err());
    // One record per shot, each of its shot's length.
    let e = AcousticOperator::batch(&gpu, &[&shots[0], &shots[0]], &[&observed[0]]).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                name: "observed",
                ..
            }
        ),
        "{e}"
    );
    let short = &observed[0][1..];
    let e =
        AcousticOperator::batch(&gpu, &[&shots[0], &shots[0]], &[&observed[0], short]).unwrap_err();
    assert!(e.to_string().contains("shot 1 of the batch"), "{e}");
    // One shot more than the device's limits hold is refused, naming the batch and the most
    // that fit (auto never weighs more).
    for problem in [
        &shots[0],
        &survey(&[12, 10, 8], BoundaryKind::Cpml, 9, 1, 71).0[0],
    ] {
        let (most, limit) = gpurevolve::acoustic::largest_batch(&gpu, problem);
        assert!(most >= 2, "{most} ({limit})");
        let too_many = vec![problem; most + 1];
        let Err(e) = GpuAcoustic::batch(&gpu, &too_many) else {
            panic!("a batch of {} shots was accepted", most + 1);
        };
        assert!(
            matches!(e, Error::InvalidArgument { name: "batch", .. }),
            "{e}"
        );
        assert!(e.to_string().contains(&format!("at most {most}")), "{e}");
    }
    // The store-all reference paths keep one shot's results: a batch is refused, not written
    // past its one-shot gradient buffer.
    let pair = GpuAcoustic::batch(&gpu, &[&shots[0], &shots[0]]).unwrap();
    let twice: Vec<f64> = observed[0].iter().chain(&observed[0]).copied().collect();
    let e = pair.gradient_store_all(&twice).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { name: "shots", .. }),
        "{e}"
    );
    // One shot's operator finishes with `finish`; a batch's with `finish_batch` only.
    let record = &observed[0][..];
    let op = AcousticOperator::batch(&gpu, &[&shots[0], &shots[0]], &[record, record]).unwrap();
    assert!(op.finish().is_err());
}

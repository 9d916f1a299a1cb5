//! Lossy checkpoint formats through whole gradient jobs: more checkpoints in the same memory
//! (fewer forward steps), a gradient close to the exact one, the same bits on every run, on the
//! GPU or spilled to host memory or disk, and for every batch size; `f32` stays exact.

mod common;

use common::survey;
use gpurevolve::Error;
use gpurevolve::acoustic::{BoundaryKind, Problem};
use gpurevolve::compression::CheckpointFormat;
use gpurevolve::gpu::Gpu;
use gpurevolve::job::{Batch, GradientJob, Placement, RunContext, RunPolicy, Summary};

type Survey = (Vec<Problem>, Vec<Vec<f64>>);

fn run(gpus: &[Gpu], (shots, observed): &Survey, policy: RunPolicy) -> (Vec<f64>, Summary) {
    let job = GradientJob::new(shots.clone(), observed.clone(), policy).unwrap();
    let plan = job.plan(&gpus[0]).unwrap();
    let result = job.run(&plan, gpus, None, |_, _| {}).unwrap();
    let summary = job
        .summary(&plan, &result, RunContext::of_devices(gpus))
        .unwrap();
    (result.gradient, summary)
}

/// Asserts `a` and `b` are the same bits, saying how many words differ if not.
fn same(a: &[f64], b: &[f64], what: &str) {
    let differ = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.to_bits() != y.to_bits())
        .count();
    assert!(
        a.len() == b.len() && differ == 0,
        "{what}: {differ} of {} words differ",
        a.len()
    );
}

/// Correlation and relative L2 error of `g` against `exact`.
fn against(g: &[f64], exact: &[f64]) -> (f64, f64) {
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let (mg, me) = (mean(g), mean(exact));
    let (mut gg, mut ee, mut ge, mut diff) = (0.0, 0.0, 0.0, 0.0);
    for (a, b) in g.iter().zip(exact) {
        gg += (a - mg) * (a - mg);
        ee += (b - me) * (b - me);
        ge += (a - mg) * (b - me);
        diff += (a - b) * (a - b);
    }
    (
        ge / (gg * ee).sqrt(),
        (diff / exact.iter().map(|b| b * b).sum::<f64>()).sqrt(),
    )
}

fn with(format: CheckpointFormat, policy: &RunPolicy) -> RunPolicy {
    RunPolicy {
        checkpoint_format: format,
        ..policy.clone()
    }
}

/// Each lossy format: fewer forward steps in the memory of the exact run, a gradient that
/// correlates with the exact one (≥ 0.999 for bf16, ≥ 0.995 for int8, the bounds),
/// the same bits twice, spilled to host memory and to disk, and in batches of 2 and 3.
fn lossy_formats_hold_up(shape: &[usize], kind: BoundaryKind, seed: u64) {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let survey = survey(shape, kind, 161, 3, seed);
    let policy = RunPolicy {
        snaps: Some(6),
        ..RunPolicy::default()
    };
    let (exact, exact_summary) = run(&gpus, &survey, policy.clone());
    assert_eq!(exact_summary.checkpoint_format, "f32");
    // f32 named is the default, bit for bit.
    let (named, _) = run(&gpus, &survey, with(CheckpointFormat::F32, &policy));
    same(&named, &exact, "f32 named");
    for (format, least) in [
        (CheckpointFormat::Bf16, 0.999),
        (CheckpointFormat::Int8, 0.995),
    ] {
        let lossy = with(format, &policy);
        let (g, summary) = run(&gpus, &survey, lossy.clone());
        assert_eq!(summary.checkpoint_format, format.name());
        assert!(
            summary.forward_steps[0] < exact_summary.forward_steps[0] && summary.snaps > 6,
            "{format}: {} forward steps in {} snapshots, exact {}",
            summary.forward_steps[0],
            summary.snaps,
            exact_summary.forward_steps[0]
        );
        let (correlation, error) = against(&g, &exact);
        assert!(
            correlation >= least && error < 0.2,
            "{format}: correlation {correlation}, relative error {error}"
        );
        assert!(g != exact, "{format} changed nothing");
        let (again, _) = run(&gpus, &survey, lossy.clone());
        same(&again, &g, &format!("{format}: a second run"));
        // Spilled: one stored state's room on the GPU, the rest in host memory; then only
        // disk. The tiers move the encoded bytes, and give them back the same.
        let level = summary.checkpoint_bytes / summary.checkpoint_levels.max(1);
        let spilled = RunPolicy {
            device_memory: Some(2 * level),
            ..lossy.clone()
        };
        let (g_host, s_host) = run(&gpus, &survey, spilled);
        assert!(s_host.spilled_bytes > 0, "{format}: nothing spilled");
        same(&g_host, &g, &format!("{format}: spilled to host memory"));
        let dir = std::env::temp_dir().join(format!("gpurevolve-lossy-{seed}-{format}"));
        std::fs::create_dir_all(&dir).unwrap();
        let on_disk = RunPolicy {
            device_memory: Some(0),
            host_memory: Some(0),
            disk: Some(dir.clone()),
            ..lossy.clone()
        };
        let (g_disk, s_disk) = run(&gpus, &survey, on_disk);
        assert!(s_disk.tiers.disk_saves.iter().sum::<u64>() > 0);
        same(&g_disk, &g, &format!("{format}: on disk"));
        let _ = std::fs::remove_dir_all(&dir);
        // Batches: each shot's part of a batch's level is stored as it would be alone. The
        // memory of 6 snapshots a shot, so each batch plans the steps of one shot.
        for b in [2, 3] {
            let batched = RunPolicy {
                snaps: Some(6 * b as u64),
                batch: Batch::Shots(b),
                ..lossy.clone()
            };
            let (g_batch, _) = run(&gpus, &survey, batched);
            same(&g_batch, &g, &format!("{format}: batches of {b}"));
        }
    }
}

#[test]
fn lossy_formats_hold_up_in_2d_with_a_cpml() {
    lossy_formats_hold_up(&[40, 30], BoundaryKind::Cpml, 81);
}

#[test]
fn lossy_formats_hold_up_in_3d_with_a_sponge() {
    lossy_formats_hold_up(&[14, 12, 10], BoundaryKind::Sponge, 82);
}

#[test]
fn formats_parse_and_refuse_what_they_cannot_do() {
    for format in CheckpointFormat::ALL {
        assert_eq!(format.name().parse::<CheckpointFormat>().unwrap(), format);
    }
    let e = "f16".parse::<CheckpointFormat>().unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument {
                name: "checkpoint_format",
                ..
            }
        ),
        "{e}"
    );
}

/// Placement by cost with a lossy format: `calibrate_stored` measures the format's kernels
/// (the GPU tier's costs are theirs, host memory's add them to the copies of the encoded
/// bytes); the job takes the costs given (measured ones would tie the bits to timing, and are
/// refused), charges the kernels at every save and restore, and plans fewer saves when they
/// cost more; the gradient stays close to the exact one, the same bits twice.
#[test]
fn placement_by_cost_counts_the_encoding_kernels() {
    use gpurevolve::acoustic::AcousticOperator;
    use gpurevolve::engine::{calibrate, calibrate_stored};
    use gpurevolve::fwi::Checkpointing;
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let survey = survey(&[40, 30], BoundaryKind::Cpml, 121, 2, 84);
    let (shots, observed) = &survey;
    let mut operator = AcousticOperator::new(&gpus[0], &shots[0], &observed[0]).unwrap();
    let exact = calibrate(&gpus[0], &mut operator, 3).unwrap();
    assert_eq!(
        exact.tiers[0].write, 0.0,
        "an f32 checkpoint on the GPU keeps its buffers"
    );
    for format in [CheckpointFormat::Bf16, CheckpointFormat::Int8] {
        let costs = calibrate_stored(&gpus[0], &mut operator, 3, format).unwrap();
        let [gpu_tier, host_tier] = [costs.tiers[0], costs.tiers[1]];
        assert!(
            gpu_tier.write > 0.0 && gpu_tier.read > 0.0,
            "{format}: the kernels cost nothing? {costs:?}"
        );
        assert!(
            host_tier.write > gpu_tier.write && host_tier.read > gpu_tier.read,
            "{format}: host copies without the kernels? {costs:?}"
        );
    }

    let policy = RunPolicy {
        snaps: Some(6),
        ..RunPolicy::default()
    };
    let (exact_gradient, _) = run(&gpus, &survey, policy.clone());
    let level = shots[0].level_bytes();
    let by_cost = |codec: [f64; 2]| RunPolicy {
        placement: Placement::Optimal,
        checkpoint_format: CheckpointFormat::Bf16,
        // Room for two bf16 states on the GPU: the rest go to host memory.
        device_memory: Some(2 * level),
        costs: Some(vec![1.0, 2.0, 2.0, codec[0], codec[1]]),
        ..policy.clone()
    };
    let measured = RunPolicy {
        costs: None,
        ..by_cost([0.0; 2])
    };
    let e = measured.check().unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { name: "costs", .. }),
        "{e}"
    );
    let short = RunPolicy {
        costs: Some(vec![1.0, 2.0, 2.0]),
        ..by_cost([0.0; 2])
    };
    assert!(
        short
            .check()
            .unwrap_err()
            .to_string()
            .contains("ENCODE,DECODE")
    );

    let plan = |policy: &RunPolicy| {
        let job = GradientJob::new(shots.clone(), observed.clone(), policy.clone()).unwrap();
        job.plan(&gpus[0]).unwrap()
    };
    let (free, dear) = (plan(&by_cost([0.0, 0.0])), plan(&by_cost([1.5, 1.5])));
    match &dear.checkpointing {
        Checkpointing::TwoTier {
            device,
            host,
            costs,
        } => {
            assert_eq!(*device, 2, "two bf16 states in the room of one f32 state");
            assert!(*host > 0);
            assert_eq!([costs.tiers[0].write, costs.tiers[0].read], [1.5, 1.5]);
            assert_eq!([costs.tiers[1].write, costs.tiers[1].read], [3.5, 3.5]);
        }
        other => panic!("placement by cost planned {other:?}"),
    }
    assert!(
        dear.planned.stats.saves < free.planned.stats.saves,
        "kernels that cost 1.5 steps a save should save less: {} against {}",
        dear.planned.stats.saves,
        free.planned.stats.saves
    );
    let (g, summary) = run(&gpus, &survey, by_cost([1.5, 1.5]));
    assert!(summary.snaps > 6, "{summary:?}");
    let (correlation, error) = against(&g, &exact_gradient);
    assert!(
        correlation >= 0.999 && error < 0.2,
        "correlation {correlation}, error {error}"
    );
    let (again, _) = run(&gpus, &survey, by_cost([1.5, 1.5]));
    same(&again, &g, "bf16 placed by cost: a second run");
}

/// A batch's int8 state is its shots' blocks, none spanning two shots: the plan counts those
/// bytes, so the checkpoints it makes fit in the memory it was given (here 522-word levels,
/// 9 blocks a shot, 72 a batch of 8 where one level of 4176 words would be 66).
#[test]
fn a_lossy_batch_plans_with_its_shots_blocks() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let blocks = survey(&[6, 17], BoundaryKind::Sponge, 61, 8, 86);
    assert_eq!(blocks.0[0].level_len(), 522);
    let policy = RunPolicy {
        snaps: Some(64),
        batch: Batch::Shots(8),
        checkpoint_format: CheckpointFormat::Int8,
        ..RunPolicy::default()
    };
    let (_, summary) = run(&gpus, &blocks, policy);
    assert!(summary.snaps > 8, "{summary:?}");
    assert!(
        summary.peak_checkpoint_bytes <= summary.checkpoint_bytes,
        "held {} bytes of checkpoints in a plan of {}",
        summary.peak_checkpoint_bytes,
        summary.checkpoint_bytes
    );
    // bf16 pairs words across shots, so a batch of levels of an odd length stores a word
    // less than its shots alone: it still plans as they do, the same snapshots, the same bits.
    let odd = survey(&[5, 17], BoundaryKind::Sponge, 61, 2, 87);
    assert_eq!(odd.0[0].level_len() % 2, 1);
    let with = |batch: usize| RunPolicy {
        snaps: Some(5 * batch as u64),
        batch: Batch::Shots(batch),
        checkpoint_format: CheckpointFormat::Bf16,
        ..RunPolicy::default()
    };
    let (alone, alone_summary) = run(&gpus, &odd, with(1));
    let (batched, batched_summary) = run(&gpus, &odd, with(2));
    assert_eq!(alone_summary.snaps, batched_summary.snaps);
    same(
        &batched,
        &alone,
        "bf16 levels of an odd length, batches of 2",
    );
}

/// `job::measure_costs` gives the costs in the form `RunPolicy::costs` takes for the policy's
/// format and tiers, and a lossy placement by cost runs on them.
#[test]
fn measured_costs_are_the_form_a_lossy_placement_by_cost_takes() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let survey = survey(&[40, 30], BoundaryKind::Cpml, 121, 2, 85);
    let shots = &survey.0;
    let dir = std::env::temp_dir().join(format!("gpurevolve-costs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (format, disk, count) in [
        (CheckpointFormat::F32, false, 3),
        (CheckpointFormat::F32, true, 5),
        (CheckpointFormat::Bf16, false, 5),
        (CheckpointFormat::Int8, true, 7),
    ] {
        let policy = RunPolicy {
            snaps: Some(6),
            checkpoint_format: format,
            disk: disk.then(|| dir.clone()),
            ..RunPolicy::default()
        };
        let costs = gpurevolve::job::measure_costs(&gpus[0], shots, &policy).unwrap();
        assert_eq!(costs.len(), count, "{format}, disk {disk}: {costs:?}");
        assert!(
            costs.iter().all(|c| c.is_finite() && *c > 0.0),
            "{format}: {costs:?}"
        );
        let by_cost = RunPolicy {
            placement: Placement::Optimal,
            costs: Some(costs),
            ..policy
        };
        by_cost.check().unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
    // What placement by cost would refuse is refused before anything is measured; a batch
    // larger than the survey is measured as the run would cut it.
    for refused in [
        RunPolicy {
            store_all: true,
            ..RunPolicy::default()
        },
        RunPolicy {
            until_quiet: Some(1e-4),
            ..RunPolicy::default()
        },
        RunPolicy {
            batch: Batch::Auto,
            checkpoint_format: CheckpointFormat::Int8,
            ..RunPolicy::default()
        },
    ] {
        let e = gpurevolve::job::measure_costs(&gpus[0], shots, &refused).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
    }
    assert!(gpurevolve::job::measure_costs(&gpus[0], &[], &RunPolicy::default()).is_err());
    let huge = RunPolicy {
        batch: Batch::Shots(5000),
        ..RunPolicy::default()
    };
    assert_eq!(
        gpurevolve::job::measure_costs(&gpus[0], shots, &huge)
            .unwrap()
            .len(),
        3
    );
    // The lossy placement by cost runs on measured costs, with the bits of a second run.
    let lossy = RunPolicy {
        snaps: Some(6),
        checkpoint_format: CheckpointFormat::Bf16,
        device_memory: Some(2 * shots[0].level_bytes()),
        placement: Placement::Optimal,
        ..RunPolicy::default()
    };
    let costs = gpurevolve::job::measure_costs(&gpus[0], shots, &lossy).unwrap();
    let lossy = RunPolicy {
        costs: Some(costs),
        ..lossy
    };
    let (g, summary) = run(&gpus, &survey, lossy.clone());
    assert!(summary.spilled_bytes > 0, "{summary:?}");
    let (again, _) = run(&gpus, &survey, lossy);
    same(&again, &g, "bf16 placed by measured costs: a second run");
}

/// A journal resumes a lossy run only under the same format and schedule (they decide its
/// bits); exact runs share one fingerprint whatever the memory (it changes no bit).
#[test]
fn a_lossy_fingerprint_names_its_format_and_schedule() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let (shots, observed) = survey(&[20, 18], BoundaryKind::Cpml, 41, 2, 83);
    let fingerprint = |format, snaps| {
        let policy = RunPolicy {
            snaps: Some(snaps),
            checkpoint_format: format,
            ..RunPolicy::default()
        };
        let job = GradientJob::new(shots.clone(), observed.clone(), policy).unwrap();
        let plan = job.plan(&gpus[0]).unwrap();
        job.fingerprint(&plan, &gpus)
    };
    let f32_ = CheckpointFormat::F32;
    assert_eq!(fingerprint(f32_, 4), fingerprint(f32_, 6));
    let bf16 = fingerprint(CheckpointFormat::Bf16, 4);
    assert_eq!(bf16, fingerprint(CheckpointFormat::Bf16, 4));
    assert_ne!(bf16, fingerprint(f32_, 4));
    assert_ne!(bf16, fingerprint(CheckpointFormat::Bf16, 6));
    assert_ne!(bf16, fingerprint(CheckpointFormat::Int8, 4));
}

/// Online checkpointing (until quiet) restores states it then steps past held checkpoints:
/// a lossy run's bits must still not depend on where its checkpoints live.
#[test]
fn a_lossy_run_until_quiet_has_the_same_bits_on_every_tier() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let survey = survey(&[30, 24], BoundaryKind::Cpml, 300, 2, 84);
    for format in [CheckpointFormat::Bf16, CheckpointFormat::Int8] {
        let policy = RunPolicy {
            snaps: Some(4),
            until_quiet: Some(0.02),
            checkpoint_format: format,
            ..RunPolicy::default()
        };
        let (on_gpu, summary) = run(&gpus, &survey, policy.clone());
        assert!(
            summary.reverse_steps.iter().all(|&n| n < 299),
            "never quiet"
        );
        let level = summary.checkpoint_bytes / summary.checkpoint_levels.max(1);
        for device in [0, 3 * level] {
            let spilled = RunPolicy {
                device_memory: Some(device),
                ..policy.clone()
            };
            let (g, s) = run(&gpus, &survey, spilled);
            assert!(s.spilled_bytes > 0);
            same(
                &g,
                &on_gpu,
                &format!("{format} until quiet, {device} bytes on the GPU"),
            );
        }
    }
}

/// The GPU out of memory in a lossy run: device checkpoints move to host memory as encodings
/// (and buffers nobody holds go back to the device), and the bits stay those of the run with
/// room.
#[test]
fn a_lossy_run_out_of_gpu_memory_keeps_its_bits() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let survey = survey(&[30, 24], BoundaryKind::Cpml, 121, 2, 85);
    let policy = RunPolicy {
        snaps: Some(5),
        checkpoint_format: CheckpointFormat::Int8,
        ..RunPolicy::default()
    };
    let (with_room, _) = run(&gpus, &survey, policy.clone());
    let job = GradientJob::new(survey.0.clone(), survey.1.clone(), policy).unwrap();
    let plan = job.plan(&gpus[0]).unwrap();
    // One allocation fails, at points from the operator's own buffers into the run's levels
    // and encodings: a failure there must be survived (buffers nobody holds go back to the
    // device, or a checkpoint moves to host memory), never change a bit.
    let mut survived = 0;
    for after in [10, 20, 30, 45, 60, 90] {
        gpus[0].inject_out_of_memory_after(Some(after));
        let result = job.run(&plan, &gpus, None, |_, _| {});
        gpus[0].inject_out_of_memory_after(None);
        let result = match result {
            Ok(result) => result,
            // The operator's own buffers cannot move: that fault is a typed error.
            Err(e) => {
                eprintln!("fault after {after}: {e}");
                assert_eq!(e.kind(), gpurevolve::ErrorKind::DoesNotFitNow, "{e}");
                continue;
            }
        };
        survived += 1;
        same(
            &result.gradient,
            &with_room,
            &format!("int8, a fault after {after}"),
        );
    }
    assert!(
        survived >= 2,
        "only {survived} of 6 runs survived their fault"
    );
}

//! The one job (`gpurevolve::job`): every policy the main job and Python offer gives the
//! store-all gradient bits, on one device or two, and its summary is the run it describes.

mod common;

use common::random_problem;
use gpurevolve::Error;
use gpurevolve::acoustic::{CpuTwin, Problem};
use gpurevolve::fwi::ScheduleChoice;
use gpurevolve::gpu::Gpu;
use gpurevolve::job::{GradientJob, Placement, RunContext, RunPolicy, Summary, survey};

const NT: usize = 41;

/// Three shots of one random model and time axis (a job's shots share them), their sources
/// across the surface, and records from the float64 twin with a weaker source.
fn shots() -> (Vec<Problem>, Vec<Vec<f64>>) {
    let first = random_problem(&[30, 26], 4, 4, NT, 51);
    let model = first.model();
    let sources: Vec<Vec<f64>> = [40.0, 150.0, 260.0].map(|x| vec![x, 20.0]).to_vec();
    let receivers = &first.geometry().receivers;
    let shots = survey(
        model,
        &sources,
        receivers,
        20.0,
        *first.time(),
        4,
        first.boundary(),
    )
    .unwrap();
    let observed = shots
        .iter()
        .map(|p| {
            let wavelet: Vec<f64> = p.source_series().iter().map(|w| 0.7 * w).collect();
            CpuTwin::new(p).forward(&wavelet, false).unwrap().traces
        })
        .collect();
    (shots, observed)
}

/// The gradient's bits and the summary of a run of `policy` on `gpus`.
fn run(gpus: &[Gpu], policy: RunPolicy) -> (Vec<u64>, Summary) {
    let (shots, observed) = shots();
    let job = GradientJob::new(shots, observed, policy).unwrap();
    let plan = job.plan(&gpus[0]).unwrap();
    let result = job.run(&plan, gpus, None, |_, _| {}).unwrap();
    let summary = job
        .summary(&plan, &result, RunContext::of_devices(gpus))
        .unwrap();
    (common::bits(&result.gradient), summary)
}

#[test]
fn every_policy_gives_the_store_all_bits() {
    let Some(gpu) = common::gpu() else { return };
    let Some(second) = common::gpu() else { return };
    let gpus = [gpu, second];
    let store_all = RunPolicy {
        store_all: true,
        ..RunPolicy::default()
    };
    let (reference, summary) = run(&gpus[..1], store_all);
    assert_eq!(summary.schedule, "store-all");
    let state = 2 * 4 * (30 + 8) * (26 + 8); // two float32 levels of the padded grid
    let policies = [
        RunPolicy::default(),
        RunPolicy {
            snaps: Some(4),
            schedule: ScheduleChoice::Revolve,
            ..RunPolicy::default()
        },
        RunPolicy {
            snaps: Some(4),
            schedule: ScheduleChoice::Classic,
            device_memory: Some(state as u64),
            ..RunPolicy::default()
        },
        RunPolicy {
            snaps: Some(5),
            placement: Placement::Optimal,
            costs: Some(vec![1e-3, 2e-3, 2e-3]),
            device_memory: Some(state as u64),
            ..RunPolicy::default()
        },
        RunPolicy {
            snaps: Some(5),
            schedule: ScheduleChoice::Revolve,
            placement: Placement::Optimal,
            costs: Some(vec![1e-3, 2e-3, 2e-3]),
            device_memory: Some(2 * state as u64),
            ..RunPolicy::default()
        },
    ];
    for policy in policies {
        for devices in [1, 2] {
            let (bits, summary) = run(&gpus[..devices], policy.clone());
            assert!(bits == reference, "{policy:?} on {devices} devices");
            assert_eq!(summary.shots, 3);
            assert_eq!(summary.devices.len(), devices);
            assert_eq!(summary.placement, policy.placement);
            // The JSON is the summary, whole.
            let back: Summary = serde_json::from_str(&summary.to_json()).unwrap();
            assert_eq!(back, summary);
        }
    }
}

#[test]
fn a_policy_by_cost_reports_what_it_models_and_spills() {
    let Some(gpu) = common::gpu() else { return };
    let state = 2 * 4 * (30 + 8) * (26 + 8);
    let policy = RunPolicy {
        snaps: Some(5),
        schedule: ScheduleChoice::Revolve,
        placement: Placement::Optimal,
        costs: Some(vec![1e-3, 2e-3, 2e-3]),
        device_memory: Some(2 * state as u64),
        ..RunPolicy::default()
    };
    let (_, summary) = run(&[gpu], policy);
    assert_eq!(summary.schedule, "two-tier");
    let modelled = summary
        .modelled_cost
        .expect("a plan by cost models its cost");
    assert_eq!(modelled.step, 1e-3);
    let (optimal, by_use) = (modelled.two_tier.unwrap(), modelled.multistage.unwrap());
    assert!(optimal <= by_use, "{optimal} > {by_use}");
    assert!(
        summary.host_slots.iter().all(|&s| s > 0),
        "{:?}",
        summary.host_slots
    );
    assert!(summary.tiers.host_saves.iter().all(|&s| s > 0));
}

#[test]
fn a_bad_job_is_refused_before_any_step() {
    let (shots, mut observed) = shots();
    observed[1].pop();
    match GradientJob::new(shots.clone(), observed, RunPolicy::default()) {
        Err(Error::InvalidArgument { name, reason }) => {
            assert_eq!(name, "observed");
            assert!(reason.contains("shot 1"), "{reason}");
        }
        other => panic!("{:?}", other.err()),
    }
    let (_, mut observed) = self::shots();
    observed[2][7] = f64::NAN;
    assert!(GradientJob::new(shots.clone(), observed, RunPolicy::default()).is_err());
    let (_, observed) = self::shots();
    let bad = RunPolicy {
        until_quiet: Some(2.0),
        ..RunPolicy::default()
    };
    assert!(GradientJob::new(shots.clone(), observed.clone(), bad).is_err());
    assert!(GradientJob::new(Vec::new(), Vec::new(), RunPolicy::default()).is_err());
    // A record left empty (as MPI ranks leave other ranks' shots) cannot run in one process.
    let (_, mut empty) = self::shots();
    empty[1].clear();
    let job = GradientJob::new(shots.clone(), empty, RunPolicy::default()).unwrap();
    if let Some(gpu) = common::gpu() {
        let plan = job.plan(&gpu).unwrap();
        match job.run(&plan, &[gpu], None, |_, _| {}) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "observed"),
            other => panic!("{:?}", other.err()),
        }
    }
    assert!(GradientJob::new(shots, observed[..2].to_vec(), RunPolicy::default()).is_err());
}

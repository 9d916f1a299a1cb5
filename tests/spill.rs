//! Checkpoints beyond the GPU budget, or beyond what the GPU can allocate, live in host memory:
//! the gradient stays bit for bit the store-all gradient, the budget is respected, and no
//! checkpoint is lost.

mod common;

use common::{Scripted, bits, random_problem, random_problem_with, store_all as reference};
use gpurevolve::Error;
use gpurevolve::acoustic::{AcousticOperator, BoundaryKind, Problem};
use gpurevolve::engine::{Revolver, RevolverOptions, RunStats, calibrate};
use gpurevolve::gpu::Gpu;
use gpurevolve::schedule::{
    Action, LevelOptimal, Multistage, Revolve, Schedule, Tier, TierCost, TieredCosts, TieredLevels,
    TwoTier,
};

const STEPS: u64 = 60;
const SNAPS: u64 = 6;

fn setup() -> (Problem, Vec<f64>) {
    setup_with(BoundaryKind::Sponge)
}

fn setup_with(kind: BoundaryKind) -> (Problem, Vec<f64>) {
    let problem = random_problem_with(&[36, 30], 4, 4, STEPS as usize + 1, 31, kind);
    let observed = common::observed(&problem, 0.7);
    (problem, observed)
}

fn run(
    gpu: &Gpu,
    problem: &Problem,
    observed: &[f64],
    options: RevolverOptions,
) -> gpurevolve::Result<(Vec<f64>, f64, RunStats, Vec<Tier>)> {
    let operator = AcousticOperator::new(gpu, problem, observed)?;
    let mut revolver = Revolver::new(gpu, operator, Revolve::new(STEPS, SNAPS)?, options)?;
    let tiers = revolver.tiers().to_vec();
    let stats = revolver.apply_reverse()?;
    let info = revolver.operator().finish()?;
    Ok((info.gradient, info.misfit, stats, tiers))
}

/// The level schedule's slots spill like Revolve's: a host checkpoint is a copy of its two
/// levels (no sharing there), a device one keeps its buffers.
#[test]
fn level_schedules_spilled_give_the_store_all_bits() {
    let Some(gpu) = common::gpu() else { return };
    for kind in [BoundaryKind::Sponge, BoundaryKind::Cpml] {
        level_schedule_spilled(&gpu, kind);
    }
}

/// Under a CPML a level also carries the layer's memory fields: the budget counts them, and
/// spilled levels keep them.
fn level_schedule_spilled(gpu: &Gpu, kind: BoundaryKind) {
    let (problem, observed) = setup_with(kind);
    assert_eq!(
        problem.level_len() > problem.layout().len(),
        kind == BoundaryKind::Cpml
    );
    let reference = reference(gpu, &problem, &observed);
    let state = 2 * problem.level_bytes();
    let whole = LevelOptimal::new(STEPS, 2 * SNAPS + 1, 2).unwrap();
    // With joins, a join from a spilled slot brings its state back and keeps one level.
    for schedule in [whole.clone(), whole.with_joins()] {
        let slots = schedule.slot_capacity() as u64;
        for device_slots in [0, 1, 3, slots] {
            let options = RevolverOptions {
                device_budget: Some(device_slots * state),
                ..RevolverOptions::default()
            };
            let operator = AcousticOperator::new(gpu, &problem, &observed).unwrap();
            let mut revolver = Revolver::new(gpu, operator, schedule.clone(), options).unwrap();
            let planned = revolver.planned_forward_steps().unwrap();
            let stats = revolver.apply_reverse().unwrap();
            let info = revolver.operator().finish().unwrap();
            let label = format!(
                "{kind:?}: levels (joins: {}), {device_slots} of {slots} slots on the device",
                schedule.joins()
            );
            assert_eq!(stats.joins > 0, schedule.joins(), "{label}");
            assert_eq!(bits(&info.gradient), bits(&reference.gradient), "{label}");
            assert_eq!(info.misfit.to_bits(), reference.misfit.to_bits(), "{label}");
            assert_eq!(stats.forward_steps, planned, "{label}");
            assert_eq!(planned, schedule.advances() + 1, "{label}");
            assert_eq!(
                stats.tier(Tier::HOST).saves > 0,
                device_slots < slots,
                "{label}: {stats:?}"
            );
        }
    }
}

/// The least-cost level schedule over both tiers runs within its own budgets (GPU levels,
/// host slots), makes exactly its host copies, and gives the store-all bits.
#[test]
fn tiered_level_schedules_give_the_store_all_bits() {
    let Some(gpu) = common::gpu() else { return };
    for kind in [BoundaryKind::Sponge, BoundaryKind::Cpml] {
        let (problem, observed) = setup_with(kind);
        let reference = reference(&gpu, &problem, &observed);
        let level = problem.level_bytes();
        let costs = TieredCosts::two_tier(
            1.0,
            TierCost {
                write: 2.0,
                read: 2.0,
            },
        );
        for (levels, host) in [(0, 5), (3, 3), (7, 2)] {
            let schedule = TieredLevels::from_rest(STEPS, levels, host, 2, &costs).unwrap();
            let tiers = schedule.tiers().to_vec();
            let host_saves = schedule
                .clone()
                .filter(|a| matches!(a, Action::Save { slot, .. } if tiers[*slot] == Tier::HOST))
                .count() as u64;
            let options = RevolverOptions {
                device_budget: Some(levels * level),
                host_budget: Some(host * 2 * level),
                ..RevolverOptions::default()
            };
            let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
            let mut revolver = Revolver::new(&gpu, operator, schedule.clone(), options).unwrap();
            let planned = revolver.planned_forward_steps().unwrap();
            let stats = revolver.apply_reverse().unwrap();
            let info = revolver.operator().finish().unwrap();
            let label = format!("{kind:?}: {levels} GPU levels, {host} host slots");
            assert_eq!(bits(&info.gradient), bits(&reference.gradient), "{label}");
            assert_eq!(info.misfit.to_bits(), reference.misfit.to_bits(), "{label}");
            assert_eq!(stats.forward_steps, planned, "{label}");
            assert_eq!(
                stats.tier(Tier::HOST).saves,
                host_saves,
                "{label}: {stats:?}"
            );
            assert!(host_saves > 0, "{label}: the plan uses the host");
            assert!(
                stats.peak_checkpoint_bytes <= levels * level,
                "{label}: {} bytes on the GPU",
                stats.peak_checkpoint_bytes
            );
            assert!(
                stats.peak_slower_bytes <= host * 2 * level,
                "{label}: {stats:?}"
            );
        }
    }
}

#[test]
fn every_device_budget_gives_the_store_all_bits() {
    let Some(gpu) = common::gpu() else { return };
    let (problem, observed) = setup();
    let reference = reference(&gpu, &problem, &observed);
    let state = 2 * problem.level_bytes();
    for device_slots in 0..=SNAPS {
        let budget = device_slots * state;
        let options = RevolverOptions {
            device_budget: Some(budget),
            ..RevolverOptions::default()
        };
        let (gradient, misfit, stats, tiers) = run(&gpu, &problem, &observed, options).unwrap();
        let label = format!("{device_slots} device slots");
        assert_eq!(
            bits(&gradient),
            bits(&reference.gradient),
            "{label}: gradient bits"
        );
        assert_eq!(
            misfit.to_bits(),
            reference.misfit.to_bits(),
            "{label}: misfit bits"
        );
        assert_eq!(
            tiers.iter().filter(|t| **t == Tier::DEVICE).count() as u64,
            device_slots,
            "{label}"
        );
        // The device budget holds: checkpoints on the GPU never exceed it.
        assert!(
            stats.peak_checkpoint_bytes <= budget,
            "{label}: {} > {budget}",
            stats.peak_checkpoint_bytes
        );
        // Slot 0, the least used, holds only state 0, which a shot at rest keeps as nothing
        // (rebuilt when restored): placed in host memory it moves no bytes.
        if device_slots + 1 < SNAPS {
            assert!(
                stats.tier(Tier::HOST).saves > 0 && stats.tier(Tier::HOST).restores > 0,
                "{label}: {stats:?}"
            );
            assert_eq!(
                stats.total(|t| t.bytes_out),
                stats.tier(Tier::HOST).saves * state,
                "{label}"
            );
            assert_eq!(
                stats.total(|t| t.bytes_in),
                stats.tier(Tier::HOST).restores * state,
                "{label}"
            );
            assert_eq!(
                stats.bytes_copied,
                (stats.tier(Tier::HOST).saves + stats.tier(Tier::HOST).restores) * state,
                "{label}"
            );
        } else {
            assert_eq!(
                (stats.tier(Tier::HOST).saves, stats.total(|t| t.bytes_out)),
                (0, 0),
                "{label}"
            );
            assert_eq!(stats.bytes_copied, 0, "{label}");
        }
        assert_eq!(
            stats.forward_steps,
            gpurevolve::schedule::min_advances(STEPS, SNAPS).unwrap() + 1
        );
    }
}

#[test]
fn the_most_used_slots_stay_on_the_gpu() {
    let Some(gpu) = common::gpu() else { return };
    let (problem, observed) = setup();
    let state = 2 * problem.level_bytes();
    let options = RevolverOptions {
        device_budget: Some(2 * state),
        ..RevolverOptions::default()
    };
    let (_, _, stats, tiers) = run(&gpu, &problem, &observed, options).unwrap();
    // Revolve's deepest slots are saved and restored most: they get the GPU.
    let mut uses = vec![0u64; SNAPS as usize];
    for a in Revolve::new(STEPS, SNAPS).unwrap() {
        if let gpurevolve::schedule::Action::Save { slot, .. }
        | gpurevolve::schedule::Action::Restore { slot, .. } = a
        {
            uses[slot] += 1;
        }
    }
    // The placement's own count agrees, and so does the traffic the run reported.
    let placement = Multistage::new(
        Revolve::new(STEPS, SNAPS).unwrap(),
        state,
        Some(2 * state),
        None,
    )
    .unwrap();
    assert_eq!(placement.uses(), &uses[..]);
    assert_eq!(placement.tiers(), &tiers[..]);
    let traffic = placement.traffic(Revolve::new(STEPS, SNAPS).unwrap());
    // Slot 0 holds only state 0, which a shot at rest keeps as nothing (rebuilt on restore):
    // in host memory, its save and restores move no bytes.
    assert_eq!(tiers[0], Tier::HOST);
    assert_eq!(
        (
            traffic.host_saves - 1,
            traffic.host_restores - (uses[0] - 1)
        ),
        (
            stats.tier(Tier::HOST).saves,
            stats.tier(Tier::HOST).restores
        )
    );
    assert_eq!(traffic.device_saves + traffic.host_saves, stats.saves);
    let device_uses: Vec<u64> = (0..SNAPS as usize)
        .filter(|&i| tiers[i] == Tier::DEVICE)
        .map(|i| uses[i])
        .collect();
    let host_max = (0..SNAPS as usize)
        .filter(|&i| tiers[i] == Tier::HOST)
        .map(|i| uses[i])
        .max()
        .unwrap();
    assert!(
        device_uses.iter().all(|&u| u >= host_max),
        "uses {uses:?}, tiers {tiers:?}"
    );
}

#[test]
fn running_out_of_gpu_memory_spills_and_keeps_the_bits() {
    let Some(gpu) = common::gpu() else { return };
    let (problem, observed) = setup();
    let reference = reference(&gpu, &problem, &observed);
    // Operator buffers first (so the fault lands on a time level), then fail the 9th allocation.
    // The state-contract check (on in debug builds) allocates copies and would take the fault.
    let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let options = RevolverOptions {
        check_state_contract: false,
        ..RevolverOptions::default()
    };
    let mut revolver =
        Revolver::new(&gpu, operator, Revolve::new(STEPS, SNAPS).unwrap(), options).unwrap();
    gpu.inject_out_of_memory_after(Some(8));
    let stats = revolver.apply_reverse().unwrap();
    gpu.inject_out_of_memory_after(None);
    let info = revolver.operator().finish().unwrap();
    assert!(
        stats.total(|t| t.demotions) >= 1
            && stats.tier(Tier::HOST).saves + stats.tier(Tier::HOST).restores > 0,
        "{stats:?}"
    );
    // The placement reported is the one the run ended with: demoted slots in host memory.
    let on_device = revolver
        .tiers()
        .iter()
        .filter(|t| **t == Tier::DEVICE)
        .count();
    assert_eq!(
        on_device as u64,
        SNAPS - stats.total(|t| t.demotions),
        "{:?}",
        revolver.tiers()
    );
    assert_eq!(bits(&info.gradient), bits(&reference.gradient));
    assert_eq!(info.misfit.to_bits(), reference.misfit.to_bits());
}

#[test]
fn checkpoints_that_fit_nowhere_are_a_typed_error() {
    let Some(gpu) = common::gpu() else { return };
    let (problem, observed) = setup();
    let state = 2 * problem.level_bytes();
    let options = RevolverOptions {
        device_budget: Some(2 * state),
        host_budget: Some(state + 1),
        ..RevolverOptions::default()
    };
    let err = run(&gpu, &problem, &observed, options).unwrap_err();
    match err {
        Error::CheckpointsDoNotFit { needed, fits, .. } => {
            assert_eq!((needed, fits), (SNAPS as usize, vec![2, 1]));
        }
        other => panic!("expected CheckpointsDoNotFit, got {other}"),
    }
}

#[test]
fn the_cost_optimal_two_tier_schedule_runs_and_keeps_the_bits() {
    let Some(gpu) = common::gpu() else { return };
    let (problem, observed) = setup();
    let reference = reference(&gpu, &problem, &observed);
    // Costs measured here, then a plan for 2 GPU and 4 host slots.
    let mut probe = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let costs = calibrate(&gpu, &mut probe, 3).unwrap();
    assert!(
        [
            costs.forward,
            costs.tier(Tier::HOST).write,
            costs.tier(Tier::HOST).read
        ]
        .iter()
        .all(|c| c.is_finite() && *c > 0.0),
        "{costs:?}"
    );
    for costs in [
        costs,
        TieredCosts::two_tier(
            1.0,
            TierCost {
                write: 0.5,
                read: 0.5,
            },
        ),
    ] {
        let plan = TwoTier::new(STEPS, 2, 4, &costs).unwrap();
        let tiers = plan.tiers();
        // State 0 is rebuilt, not saved (a shot starts at rest): its save copies nothing.
        let host_saves = plan
            .clone()
            .filter(|a| {
                matches!(a, Action::Save { slot, step } if *step > 0 && tiers[*slot] == Tier::HOST)
            })
            .count() as u64;
        let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
        // The schedule brings its own placement.
        let mut revolver =
            Revolver::new(&gpu, operator, plan.clone(), RevolverOptions::default()).unwrap();
        assert_eq!(revolver.tiers(), &tiers[..]);
        let stats = revolver.apply_reverse().unwrap();
        let info = revolver.operator().finish().unwrap();
        assert_eq!(bits(&info.gradient), bits(&reference.gradient), "{costs:?}");
        assert_eq!(stats.tier(Tier::HOST).saves, host_saves);
        let state = 2 * problem.level_bytes();
        assert!(stats.peak_checkpoint_bytes <= 2 * state, "{stats:?}");
    }
}

#[test]
fn overlapped_and_blocking_transfers_give_the_same_bits() {
    let Some(gpu) = common::gpu() else { return };
    let (problem, observed) = setup();
    let reference = reference(&gpu, &problem, &observed);
    let state = 2 * problem.level_bytes();
    for device_slots in [0, 2, 4] {
        let mut traffic = None;
        // Through staging (blocking, and overlapped with 1 to 8 spills in flight), then in
        // host buffers.
        let configs = [
            (false, false, 4),
            (false, true, 1),
            (false, true, 2),
            (false, true, 8),
            (true, true, 4),
        ];
        for (host_buffers, overlap, in_flight) in configs {
            let options = RevolverOptions {
                device_budget: Some(device_slots * state),
                host_buffers,
                overlap_transfers: overlap,
                spills_in_flight: in_flight,
                // Small batches: spills and prefetches land in many different submissions.
                steps_per_submit: 3,
                ..RevolverOptions::default()
            };
            let (gradient, misfit, stats, _) = run(&gpu, &problem, &observed, options).unwrap();
            let label = format!(
                "{device_slots} device slots, host buffers {host_buffers}, overlap {overlap}, {in_flight} in flight"
            );
            assert_eq!(bits(&gradient), bits(&reference.gradient), "{label}");
            assert_eq!(misfit.to_bits(), reference.misfit.to_bits(), "{label}");
            // The same traffic either way: overlapping changes when copies run, not which.
            let moved = (
                stats.tier(Tier::HOST).saves,
                stats.tier(Tier::HOST).restores,
                stats.total(|t| t.bytes_out),
                stats.total(|t| t.bytes_in),
            );
            assert_eq!(*traffic.get_or_insert(moved), moved, "{label}");
            assert!(stats.tier(Tier::HOST).restores > 0, "{label}: {stats:?}");
            if host_buffers && gpu.has_host_buffers() {
                // Copies in command order: nothing to bring back early.
                assert_eq!(stats.tier(Tier::HOST).reads_ahead, 0, "{label}");
            } else if overlap {
                // Revolve restores a host slot again right after reversing from it: the
                // lookahead has the next one uploaded by then.
                assert!(
                    stats.tier(Tier::HOST).reads_ahead > 0
                        && stats.tier(Tier::HOST).reads_ahead <= stats.tier(Tier::HOST).restores,
                    "{label}: {stats:?}"
                );
            } else {
                assert_eq!(stats.tier(Tier::HOST).reads_ahead, 0, "{label}");
            }
        }
    }
}

#[test]
fn a_checkpoint_freed_while_its_spill_is_in_flight_does_not_leak_into_the_next() {
    let Some(gpu) = common::gpu() else { return };
    let problem = random_problem(&[30, 28], 4, 4, 7, 37);
    let observed = common::observed(&problem, 1.3);
    let reference = reference(&gpu, &problem, &observed);
    use Action::*;
    // Slot 1 (host) takes state 2, drops it before its copy can have landed, then takes
    // state 4; the restore must see state 4's bytes, not the dropped copy of state 2's.
    let actions = vec![
        Save { step: 0, slot: 0 },
        Advance { from: 0, to: 2 },
        Save { step: 2, slot: 1 },
        Free { step: 2, slot: 1 },
        Advance { from: 2, to: 4 },
        Save { step: 4, slot: 1 },
        Advance { from: 4, to: 5 },
        Reverse { step: 5 },
        Restore { step: 4, slot: 1 },
        Reverse { step: 4 },
        Free { step: 4, slot: 1 },
        Restore { step: 0, slot: 0 },
        Advance { from: 0, to: 3 },
        Save { step: 3, slot: 1 },
        Free { step: 3, slot: 1 },
        Reverse { step: 3 },
        Restore { step: 0, slot: 0 },
        Advance { from: 0, to: 2 },
        Reverse { step: 2 },
        Restore { step: 0, slot: 0 },
        Advance { from: 0, to: 1 },
        Reverse { step: 1 },
        Restore { step: 0, slot: 0 },
        Reverse { step: 0 },
        Free { step: 0, slot: 0 },
        End,
    ];
    // Through staging, overlapped and blocking; then in host buffers, where slot 1's
    // buffers are taken again by state 4 while state 2's copy into them is still encoded.
    for (host_buffers, overlap) in [(false, true), (false, false), (true, true)] {
        let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
        let schedule = Scripted(actions.clone().into_iter(), 6, 2);
        let options = RevolverOptions {
            host_buffers,
            overlap_transfers: overlap,
            ..RevolverOptions::default()
        };
        let mut revolver = Revolver::new(&gpu, operator, schedule, options)
            .unwrap()
            .with_tiers(vec![Tier::DEVICE, Tier::HOST])
            .unwrap();
        let stats = revolver.apply_reverse().unwrap();
        let info = revolver.operator().finish().unwrap();
        assert_eq!(
            (
                stats.tier(Tier::HOST).saves,
                stats.tier(Tier::HOST).restores
            ),
            (3, 1),
            "{stats:?}"
        );
        assert_eq!(
            bits(&info.gradient),
            bits(&reference.gradient),
            "host buffers {host_buffers}, overlap {overlap}"
        );
    }
}

#[test]
fn a_two_tier_plan_that_exceeds_the_device_budget_is_refused() {
    let Some(gpu) = common::gpu() else { return };
    let (problem, observed) = setup();
    let state = 2 * problem.level_bytes();
    let costs = TieredCosts::two_tier(
        1.0,
        TierCost {
            write: 2.0,
            read: 2.0,
        },
    );
    let plan = TwoTier::new(STEPS, 4, 2, &costs).unwrap();
    let options = RevolverOptions {
        device_budget: Some(3 * state),
        ..RevolverOptions::default()
    };
    let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    match Revolver::new(&gpu, operator, plan, options).err() {
        Some(Error::InvalidArgument { name, reason }) => {
            assert_eq!(name, "device_budget");
            assert!(
                reason.contains("puts 4 checkpoints") && reason.contains("hold 3"),
                "{reason}"
            );
        }
        other => panic!("expected a device_budget error, got {other:?}"),
    }
}

/// A lossy restore takes a level buffer that still holds its decoding instead of decoding
/// again (restoring state k just after state k + 1, `u_k` is decoded already), and a join
/// decodes only the level it takes: fewer kernels, the same bits as checkpoints held in host
/// memory, where every restore decodes what the tier brings back.
#[test]
fn lossy_restores_reuse_decodings_with_the_same_bits() {
    use gpurevolve::compression::CheckpointFormat;
    let Some(gpu) = common::gpu() else { return };
    let (problem, observed) = setup_with(BoundaryKind::Cpml);
    let whole = LevelOptimal::new(STEPS, 2 * SNAPS + 1, 2).unwrap();
    for format in [CheckpointFormat::Bf16, CheckpointFormat::Int8] {
        for schedule in [whole.clone(), whole.clone().with_joins()] {
            let run = |device_budget: Option<u64>| {
                let options = RevolverOptions {
                    device_budget,
                    checkpoint_format: format,
                    ..RevolverOptions::default()
                };
                let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
                let mut revolver =
                    Revolver::new(&gpu, operator, schedule.clone(), options).unwrap();
                let stats = revolver.apply_reverse().unwrap();
                (revolver.operator().finish().unwrap(), stats)
            };
            let label = format!("{format}, joins: {}", schedule.joins());
            let (on_gpu, gpu_stats) = run(None);
            let (on_host, host_stats) = run(Some(0));
            assert_eq!(bits(&on_gpu.gradient), bits(&on_host.gradient), "{label}");
            assert_eq!(gpu_stats.joins > 0, schedule.joins(), "{label}");
            assert_eq!(host_stats.decodings_reused, 0, "{label}: {host_stats:?}");
            assert!(gpu_stats.decodings_reused > 0, "{label}: {gpu_stats:?}");
            // Each restore from the host decodes both levels (state 0, at rest, is rebuilt);
            // on the GPU a restore decodes or reuses both, a join one.
            let from_host = host_stats.tier(Tier::HOST).restores;
            assert!(from_host > 0, "{label}: {host_stats:?}");
            assert_eq!(host_stats.levels_decoded, 2 * from_host, "{label}");
            assert!(
                gpu_stats.levels_decoded + gpu_stats.decodings_reused
                    <= 2 * gpu_stats.restores + gpu_stats.joins,
                "{label}: {gpu_stats:?}"
            );
            assert!(
                gpu_stats.levels_decoded < host_stats.levels_decoded,
                "{label}"
            );
            assert!(gpu_stats.levels_encoded > 0, "{label}");
        }
    }
}

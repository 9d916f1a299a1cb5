//! The disk tier: three tiers in one run give the store-all bits; a damaged checkpoint file,
//! a full disk and a missing directory are typed errors; the run's directory never outlives
//! the run.

mod common;

use std::path::{Path, PathBuf};

use common::{Scripted, bits, random_problem_with, store_all as reference};
use gpurevolve::Error;
use gpurevolve::acoustic::{AcousticOperator, BoundaryKind};
use gpurevolve::engine::{Revolver, RevolverOptions};
use gpurevolve::schedule::{Action, CostOptimal, Revolve, Schedule, Tier, TierCost, TieredCosts};

const STEPS: u64 = 60;

fn setup(kind: BoundaryKind) -> (gpurevolve::acoustic::Problem, Vec<f64>) {
    let problem = random_problem_with(&[34, 30], 4, 4, STEPS as usize + 1, 51, kind);
    let observed = common::observed(&problem, 0.7);
    (problem, observed)
}

/// Reverses steps `held..below` from the state `held` kept in `slot` (step `below` already
/// reversed), each by a restore and an advance, then frees the slot.
fn reverse_down_to(actions: &mut Vec<Action>, held: u64, slot: usize, below: u64) {
    use Action::*;
    for k in (held + 1..below).rev() {
        actions.extend([
            Restore { step: held, slot },
            Advance { from: held, to: k },
            Reverse { step: k },
        ]);
    }
    actions.extend([
        Restore { step: held, slot },
        Free { step: held, slot },
        Reverse { step: held },
    ]);
}

/// A fresh parent directory for one test.
fn parent(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpurevolve-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What is left in `parent`: the run directories the disk tier made.
fn leftovers(parent: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Two states on the GPU, two in host memory, the rest on disk, with host buffers and
/// through staging, CPML and sponge: the store-all bits, reads ahead of restores, and no
/// directory left.
#[test]
fn three_tiers_give_the_store_all_bits() {
    let Some(gpu) = common::gpu() else { return };
    let dir = parent("three-tiers");
    for kind in [BoundaryKind::Cpml, BoundaryKind::Sponge] {
        let (problem, observed) = setup(kind);
        let reference = reference(&gpu, &problem, &observed);
        let state = 2 * problem.level_bytes();
        for host_buffers in [true, false] {
            let options = RevolverOptions {
                device_budget: Some(2 * state),
                host_budget: Some(2 * state),
                disk: Some(dir.clone()),
                host_buffers,
                ..RevolverOptions::default()
            };
            let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
            let mut revolver =
                Revolver::new(&gpu, operator, Revolve::new(STEPS, 10).unwrap(), options).unwrap();
            let tiers = revolver.tiers().to_vec();
            let count = |t: Tier| tiers.iter().filter(|x| **x == t).count();
            assert_eq!(
                (count(Tier::DEVICE), count(Tier::HOST)),
                (2, 2),
                "{tiers:?}"
            );
            assert_eq!(count(Tier::DISK), 6, "{tiers:?}");
            let stats = revolver.apply_reverse().unwrap();
            let info = revolver.operator().finish().unwrap();
            let label = format!("{kind:?}, host buffers {host_buffers}: {stats:?}");
            assert_eq!(bits(&info.gradient), bits(&reference.gradient), "{label}");
            assert_eq!(info.misfit.to_bits(), reference.misfit.to_bits(), "{label}");
            assert!(
                stats.tier(Tier::DISK).saves > 0 && stats.tier(Tier::DISK).restores > 0,
                "{label}"
            );
            assert!(stats.tier(Tier::DISK).reads_ahead > 0, "{label}");
            let file = 40 + state;
            assert_eq!(
                stats.tier(Tier::DISK).bytes_read,
                stats.tier(Tier::DISK).restores * file,
                "{label}"
            );
            assert!(
                stats.tier(Tier::DISK).bytes_written >= stats.tier(Tier::DISK).saves * file,
                "{label}"
            );
            assert!(stats.tier(Tier::HOST).saves > 0, "{label}");
            // The run's directory lives as long as the revolver.
            assert_eq!(leftovers(&dir).len(), 1, "{label}");
            drop(revolver);
            assert!(leftovers(&dir).is_empty(), "{label}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// State 3 in a disk slot, then twelve steps before its first restore: its file is damaged
/// once written, and the restore fails naming the state and the file, not with a wrong
/// gradient. The directory goes with the failed run.
#[test]
fn a_damaged_checkpoint_file_is_caught_at_its_restore() {
    let Some(gpu) = common::gpu() else { return };
    let dir = parent("damaged");
    let n = 16u64;
    let problem = random_problem_with(&[34, 30], 4, 4, n as usize + 1, 52, BoundaryKind::Sponge);
    let observed = common::observed(&problem, 1.0);
    use Action::*;
    let mut actions = vec![
        Save { step: 0, slot: 0 },
        Advance { from: 0, to: 3 },
        Save { step: 3, slot: 1 },
        Advance { from: 3, to: 15 },
        Reverse { step: 15 },
    ];
    reverse_down_to(&mut actions, 3, 1, 15);
    reverse_down_to(&mut actions, 0, 0, 3);
    actions.push(End);
    let options = RevolverOptions {
        disk: Some(dir.clone()),
        // Each step submitted, so the spill reaches its file during the advance; the restore
        // read only when it is the next action, after the damage.
        steps_per_submit: 1,
        lookahead: 1,
        ..RevolverOptions::default()
    };
    let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let schedule = Scripted(actions.into_iter(), n, 2);
    let file_bytes = 40 + 2 * problem.level_bytes();
    let mut damaged: Option<PathBuf> = None;
    let result = {
        let mut revolver = Revolver::new(&gpu, operator, schedule, options)
            .unwrap()
            .with_tiers(vec![Tier::DEVICE, Tier::DISK])
            .unwrap()
            .on_progress(|_| {
                if damaged.is_some() {
                    return;
                }
                for run in leftovers(&dir) {
                    let file = run.join("slot-1.ckpt");
                    let len = std::fs::metadata(&file).map_or(0, |m| m.len());
                    if len == file_bytes {
                        let mut bytes = std::fs::read(&file).unwrap();
                        let middle = bytes.len() / 2;
                        bytes[middle] ^= 0x01;
                        std::fs::write(&file, bytes).unwrap();
                        damaged = Some(file);
                    }
                }
            });
        revolver.apply_reverse()
    };
    let file = damaged.expect("the checkpoint file was written during the advance");
    let err = result.unwrap_err();
    assert!(
        matches!(&err, Error::CheckpointCorrupted { step: 3, path, .. } if *path == file),
        "{err}"
    );
    assert!(err.to_string().contains("state 3"), "{err}");
    assert!(leftovers(&dir).is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

/// A disk that fills up stops the run with an error naming the directory and the bytes; a
/// directory that does not exist is refused before the run. Nothing is left behind.
#[test]
fn a_full_disk_and_a_missing_directory_are_typed_errors() {
    let Some(gpu) = common::gpu() else { return };
    let dir = parent("full");
    let (problem, observed) = setup(BoundaryKind::Sponge);
    let state = 2 * problem.level_bytes();
    let options = RevolverOptions {
        device_budget: Some(2 * state),
        host_budget: Some(state),
        disk: Some(dir.clone()),
        // Room for two checkpoint files.
        disk_write_limit: Some(2 * (40 + state)),
        ..RevolverOptions::default()
    };
    let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let mut revolver = Revolver::new(
        &gpu,
        operator,
        Revolve::new(STEPS, 10).unwrap(),
        options.clone(),
    )
    .unwrap();
    let err = revolver.apply_reverse().unwrap_err();
    assert!(
        matches!(&err, Error::DiskFull { needed, dir: full, .. } if *needed == 40 + state && full.starts_with(&dir)),
        "{err}"
    );
    assert_eq!(err.kind(), gpurevolve::ErrorKind::DoesNotFitNow);
    drop(revolver);
    assert!(leftovers(&dir).is_empty());

    let missing = RevolverOptions {
        disk: Some(dir.join("not there")),
        disk_write_limit: None,
        ..options
    };
    let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let err = Revolver::new(&gpu, operator, Revolve::new(STEPS, 10).unwrap(), missing)
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::InvalidArgument { name: "disk", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("not there"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The cost-optimal schedule over three tiers (disk-revolve's model, `schedule::CostOptimal`),
/// which places its own slots on the GPU, in host memory and on disk: the store-all bits,
/// and the disk used as planned.
#[test]
fn the_cost_optimal_three_tier_schedule_runs_and_keeps_the_bits() {
    let Some(gpu) = common::gpu() else { return };
    let dir = parent("cost-optimal");
    let (problem, observed) = setup(BoundaryKind::Cpml);
    let reference = reference(&gpu, &problem, &observed);
    let costs = TieredCosts {
        forward: 1.0,
        tiers: vec![
            TierCost {
                write: 0.0,
                read: 0.0,
            },
            TierCost {
                write: 1.0,
                read: 1.0,
            },
            TierCost {
                write: 4.0,
                read: 3.0,
            },
        ],
    };
    let plan = CostOptimal::new(STEPS, &[1, 2, 4], &costs).unwrap();
    let tiers = plan.tiers();
    assert_eq!(tiers.iter().filter(|t| **t == Tier::DISK).count(), 4);
    let options = RevolverOptions {
        disk: Some(dir.clone()),
        ..RevolverOptions::default()
    };
    let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let mut revolver = Revolver::new(&gpu, operator, plan.clone(), options).unwrap();
    assert_eq!(revolver.tiers(), &tiers[..]);
    let stats = revolver.apply_reverse().unwrap();
    let info = revolver.operator().finish().unwrap();
    assert_eq!(bits(&info.gradient), bits(&reference.gradient), "{stats:?}");
    assert_eq!(info.misfit.to_bits(), reference.misfit.to_bits());
    // Every save into a disk slot of a state other than 0 (which a shot at rest rebuilds)
    // went to a file.
    let disk_saves = plan
        .clone()
        .filter(
            |a| matches!(a, Action::Save { slot, step } if *step > 0 && tiers[*slot] == Tier::DISK),
        )
        .count() as u64;
    assert_eq!(stats.tier(Tier::DISK).saves, disk_saves, "{stats:?}");
    assert!(plan.slot_capacity() >= 7);
    drop(revolver);
    assert!(leftovers(&dir).is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

/// The disk tier's cost, measured as the engine pays it: positive and finite, its files gone
/// after; a missing directory is refused naming `disk`.
#[test]
fn the_disk_tiers_cost_is_measured_and_leaves_nothing() {
    let Some(gpu) = common::gpu() else { return };
    let dir = parent("calibrate");
    let (problem, observed) = setup(BoundaryKind::Cpml);
    let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
    let cost = gpurevolve::engine::calibrate_disk(&gpu, &operator, &dir, 2).unwrap();
    assert!(cost.write.is_finite() && cost.write > 0.0, "{cost:?}");
    assert!(cost.read.is_finite() && cost.read > 0.0, "{cost:?}");
    assert!(leftovers(&dir).is_empty());
    let err =
        gpurevolve::engine::calibrate_disk(&gpu, &operator, &dir.join("absent"), 1).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { name: "disk", .. }),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

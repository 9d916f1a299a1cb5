//! A survey killed part way loses nothing: the journal keeps each finished shot, and the run
//! resumed with it ends with exactly the bits of an uninterrupted run.

mod common;

use std::ops::ControlFlow;

use common::random_problem;
use gpurevolve::Error;
use gpurevolve::acoustic::Problem;
use gpurevolve::engine::RevolverOptions;
use gpurevolve::fwi::{
    Checkpointing, FwiGradient, Journal, gradient_on_devices, gradient_on_devices_journaled,
};
use rand::Rng;

const SHOTS: usize = 4;
const CHECKPOINTING: Checkpointing = Checkpointing::Levels(6);

/// Shots on random models of one grid, with random observed records.
fn survey() -> (Vec<Problem>, Vec<Vec<f64>>) {
    let mut rng = rand::rng();
    let shots: Vec<Problem> = (0..SHOTS)
        .map(|_| random_problem(&[26, 20], 4, 4, 37, rng.random()))
        .collect();
    let observed = shots
        .iter()
        .map(|p| common::observed(p, rng.random_range(0.5..0.9)))
        .collect();
    (shots, observed)
}

fn bits(g: &FwiGradient) -> (u64, Vec<u64>, Vec<Vec<u64>>) {
    (
        g.misfit.to_bits(),
        common::bits(&g.gradient),
        g.traces.iter().map(|t| common::bits(t)).collect(),
    )
}

fn temp(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "gpurevolve-journal-test-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Interrupted in shot 2: shots 0 and 1 are in the journal; resumed, shots 2 and 3 run and
/// the total is the uninterrupted one bit for bit (misfit, gradient, every shot's traces).
#[test]
fn a_resumed_survey_gives_the_uninterrupted_bits() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let (shots, observed) = survey();
    let options = RevolverOptions::default();
    let whole = gradient_on_devices(
        &gpus,
        &shots,
        &observed,
        CHECKPOINTING,
        options.clone(),
        |_, _| {},
    )
    .unwrap();
    let dir = temp("resume");
    let fingerprint = Journal::fingerprint(&gpus, &shots, &observed, None);
    let journal = Journal::open(&dir, fingerprint, false).unwrap();
    let stop_in_shot_2 = |shot: usize, p: gpurevolve::engine::Progress| {
        if shot == 2 && p.done > 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let err = gradient_on_devices_journaled(
        &gpus,
        &shots,
        &observed,
        CHECKPOINTING,
        options.clone(),
        &journal,
        stop_in_shot_2,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Interrupted { .. }), "{err}");
    assert_eq!(journal.finished(), vec![0, 1]);
    drop(journal);

    let journal = Journal::open(&dir, fingerprint, true).unwrap();
    let ran = std::sync::Mutex::new(Vec::new());
    let resumed = gradient_on_devices_journaled(
        &gpus,
        &shots,
        &observed,
        CHECKPOINTING,
        options.clone(),
        &journal,
        |shot, _| {
            ran.lock().unwrap().push(shot);
        },
    )
    .unwrap();
    let mut ran = ran.into_inner().unwrap();
    ran.dedup();
    assert_eq!(ran, vec![2, 3], "only the shots not journaled run");
    assert_eq!(bits(&resumed), bits(&whole));
    assert_eq!(resumed.shots.len(), SHOTS);
    assert_eq!(journal.finished(), vec![0, 1, 2, 3]);

    // A damaged record is not trusted: that shot runs again, with the same bits.
    let record = dir.join("shot-000001.bin");
    let mut bytes = std::fs::read(&record).unwrap();
    let at = rand::rng().random_range(0..bytes.len());
    bytes[at] ^= 1 << rand::rng().random_range(0..8);
    std::fs::write(&record, bytes).unwrap();
    let journal = Journal::open(&dir, fingerprint, true).unwrap();
    assert_eq!(journal.finished(), vec![0, 2, 3]);
    let again = gradient_on_devices_journaled(
        &gpus,
        &shots,
        &observed,
        CHECKPOINTING,
        options,
        &journal,
        |_, _| {},
    )
    .unwrap();
    assert_eq!(bits(&again), bits(&whole));
    journal.remove().unwrap();
    assert!(!dir.exists());
}

/// A journal of other inputs is refused when resuming, and cleared when starting afresh.
#[test]
fn a_journal_of_other_inputs_is_never_mixed_in() {
    let Some(gpu) = common::gpu() else { return };
    let gpus = [gpu];
    let (shots, mut observed) = survey();
    let dir = temp("other");
    let fingerprint = Journal::fingerprint(&gpus, &shots, &observed, None);
    Journal::open(&dir, fingerprint, false).unwrap();
    std::fs::write(dir.join("shot-000000.bin"), b"an old record").unwrap();
    // One observed sample changed by one bit: another run.
    observed[3][5] = f64::from_bits(observed[3][5].to_bits() ^ 1);
    let other = Journal::fingerprint(&gpus, &shots, &observed, None);
    assert_ne!(other, fingerprint);
    // No device is another run; two devices of one kind are the same as one; a stop until
    // quiet changes the run, and so does its fraction.
    assert_ne!(Journal::fingerprint(&[], &shots, &observed, None), other);
    let two = [common::gpu().unwrap(), common::gpu().unwrap()];
    assert_eq!(Journal::fingerprint(&two, &shots, &observed, None), other);
    let quiet = |f| Journal::fingerprint(&gpus, &shots, &observed, Some(f));
    assert_ne!(quiet(1e-3), other);
    assert_ne!(quiet(1e-3), quiet(2e-3));
    let err = Journal::open(&dir, other, true).unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument { name: "resume", .. }),
        "{err}"
    );
    // Starting afresh clears the old records.
    let fresh = Journal::open(&dir, other, false).unwrap();
    assert!(fresh.finished().is_empty());
    assert!(!dir.join("shot-000000.bin").exists());
    fresh.remove().unwrap();
}

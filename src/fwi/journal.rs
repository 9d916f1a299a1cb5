//! The journal of a survey: each finished shot's whole result in a file of its own, so that a
//! run killed at shot 900 of 1000 resumes with shot 900 and ends with exactly the bits an
//! uninterrupted run gives.
//!
//! A record holds what the shot contributes to the total (misfit, gradient, traces,
//! statistics), every float by its bits ([`record`](super::record)), and is written under a
//! temporary name and renamed into place, so a record either is whole or is absent. It
//! carries the run's *fingerprint*, a hash of everything that decides a shot's bits (devices'
//! kinds, models, boundary, geometry, time axis, observed records, a stop until quiet): a
//! journal of other inputs is refused, never mixed in. A record whose checksum fails is logged and its shot run again.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::record::{ShotDone, decode, encode};
use crate::acoustic::Problem;
use crate::engine::checksum::Checksum;
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// Record files start with this; the version is its last byte.
// 2: the statistics as serde JSON within the words.
const MAGIC: &[u8; 8] = b"GRVSHOT2";
/// The file holding the fingerprint of the run the journal belongs to.
const RUN_FILE: &str = "run";

/// A directory of finished shots' results for one run ([`Journal::fingerprint`]), read back
/// by [`gradient_on_devices_journaled`](super::gradient_on_devices_journaled).
///
/// ```no_run
/// # use gpurevolve::acoustic::Problem;
/// # fn shots() -> (Vec<Problem>, Vec<Vec<f64>>) { unimplemented!() }
/// use gpurevolve::engine::RevolverOptions;
/// use gpurevolve::fwi::{Checkpointing, Journal, gradient_on_devices_journaled};
/// use gpurevolve::gpu::Gpu;
/// let (problems, observed) = shots();
/// let checkpointing = Checkpointing::Levels(40);
/// let gpus = [Gpu::new()?];
/// let fingerprint = Journal::fingerprint(&gpus, &problems, &observed, None);
/// // `true`: keep what an earlier, killed run of the same inputs finished.
/// let journal = Journal::open("out/journal", fingerprint, true)?;
/// let g = gradient_on_devices_journaled(&gpus, &problems, &observed, checkpointing,
///     RevolverOptions::default(), &journal, |_, _| {})?;
/// journal.remove()?; // finished: the records are no longer needed
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    fingerprint: u64,
    /// The finished shots, once read (every record is read whole to be checked): kept, and
    /// extended by [`record`](Self::record).
    finished: std::sync::Mutex<Option<Vec<usize>>>,
}

impl Journal {
    /// Opens the journal in `dir` (made if missing) for the run whose inputs hash to
    /// `fingerprint`. With `resume`, the records already there are kept (none there: a fresh
    /// run); without, any earlier journal in `dir` is cleared.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `resume` when `dir` holds the journal of a run with
    /// other inputs; [`Error::File`] when `dir` cannot be made, read or written.
    pub fn open(dir: impl AsRef<Path>, fingerprint: u64, resume: bool) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let at = dir.clone();
        let io = move |e: std::io::Error| Error::File {
            path: at.clone(),
            detail: format!("the journal of finished shots: {e}"),
        };
        std::fs::create_dir_all(&dir).map_err(&io)?;
        let journal = Self {
            dir,
            fingerprint,
            finished: std::sync::Mutex::new(None),
        };
        let stored = std::fs::read_to_string(journal.dir.join(RUN_FILE)).ok();
        let stored = stored.and_then(|s| u64::from_str_radix(s.trim(), 16).ok());
        match stored {
            Some(f) if resume && f != fingerprint => {
                return Err(Error::InvalidArgument {
                    name: "resume",
                    reason: format!(
                        "the journal in {} is of a run with other inputs (models, geometry, time \
                         axis, records, --until-quiet, another kind of GPU, or a lossy checkpoint \
                         format or its memory); resume with the arguments and devices of that \
                         run, or start afresh without resuming",
                        journal.dir.display()
                    ),
                });
            }
            Some(_) if resume => {
                log::info!(
                    "resuming: {} shots already finished in {}",
                    journal.finished().len(),
                    journal.dir.display()
                );
                return Ok(journal);
            }
            _ => {}
        }
        if resume {
            // A warning, not a note: records may be there that this run now discards (the
            // run file was lost or damaged, so no record can be trusted to be of these inputs).
            let run_file = journal.dir.join(RUN_FILE);
            if run_file.exists() {
                log::warn!(
                    "the journal's run file {} is unreadable: its records cannot be matched to \
                     these inputs, and every shot runs again",
                    run_file.display()
                );
            } else {
                log::info!(
                    "nothing to resume in {}: every shot runs",
                    journal.dir.display()
                );
            }
        }
        journal.clear().map_err(&io)?;
        crate::fs::write_atomically(journal.dir.join(RUN_FILE), |w| {
            writeln!(w, "{fingerprint:016x}")
        })?;
        Ok(journal)
    }

    /// The fingerprint of a run: a hash of the bits of everything that decides each shot's
    /// misfit, gradient and traces (the kinds of device, models and grids, boundary, geometry,
    /// wavelet, time axis, records, and the energy fraction of a stop until quiet). Two runs
    /// with the same fingerprint give the same bits, shot by shot. The schedule, the budgets
    /// and the number of devices are not part of it: none changes a bit.
    pub fn fingerprint(
        devices: &[Gpu],
        shots: &[Problem],
        observed: &[Vec<f64>],
        until_quiet: Option<f64>,
    ) -> u64 {
        let mut sum = Checksum::new();
        // Another kind of adapter or driver may round differently: its name, driver and
        // backend, each kind once.
        let mut kinds: Vec<String> = devices
            .iter()
            .map(|g| {
                let a = g.adapter_info();
                format!("{}|{}|{}|{:?}", a.name, a.driver, a.driver_info, a.backend)
            })
            .collect();
        kinds.sort();
        kinds.dedup();
        for kind in &kinds {
            sum.update(kind.as_bytes());
            sum.update(&[0]);
        }
        let mut floats = |values: &[f64]| {
            sum.update(&(values.len() as u64).to_le_bytes());
            for v in values {
                sum.update(&v.to_bits().to_le_bytes());
            }
        };
        for shot in shots {
            let model = shot.model();
            let shape: Vec<f64> = model.shape().iter().map(|&n| n as f64).collect();
            floats(&shape);
            floats(&[model.nbl() as f64, model.spacing()]);
            floats(shot.slowness_squared());
            floats(shot.damping());
            floats(shot.laplacian());
            let g = shot.geometry();
            for point in g.sources.iter().chain(&g.receivers) {
                floats(point);
            }
            let t = shot.time();
            let b = shot.boundary();
            floats(&[
                g.f0,
                g.t0,
                g.sources.len() as f64,
                t.nt as f64,
                t.dt,
                shot.space_order() as f64,
                b.reference_velocity(),
            ]);
        }
        for record in observed {
            floats(record);
        }
        for shot in shots {
            sum.update(shot.boundary().kind().name().as_bytes());
        }
        // A stop found on the way changes a shot's length; which schedule finds it does not.
        match until_quiet {
            Some(fraction) => {
                sum.update(b"until quiet");
                sum.update(&fraction.to_bits().to_le_bytes());
            }
            None => sum.update(b"every step"),
        }
        sum.value()
    }

    /// The journal's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shots whose records are whole and of this run, in shot order. A damaged record is
    /// logged and left out: its shot runs again.
    pub fn finished(&self) -> Vec<usize> {
        let mut cache = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        cache.get_or_insert_with(|| self.read_finished()).clone()
    }

    /// [`finished`](Self::finished), read from the files.
    fn read_finished(&self) -> Vec<usize> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut shots: Vec<usize> = entries
            .flatten()
            .filter_map(|e| shot_of(&e.file_name().to_string_lossy()))
            .filter(|&i| match self.load(i) {
                Ok(_) => true,
                Err(e) => {
                    log::warn!("shot {i} runs again: {e}");
                    false
                }
            })
            .collect();
        shots.sort_unstable();
        shots
    }

    /// Removes the journal and its directory (after a run that finished).
    ///
    /// # Errors
    /// [`Error::File`] when it cannot be removed.
    pub fn remove(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).map_err(|e| Error::File {
            path: self.dir.clone(),
            detail: format!("removing the journal of finished shots: {e}"),
        })
    }

    fn path(&self, shot: usize) -> PathBuf {
        self.dir.join(format!("shot-{shot:06}.bin"))
    }

    /// Removes every record and the run file.
    fn clear(&self) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if shot_of(&name).is_some() || name == RUN_FILE {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// Records shot `shot`'s result, atomically.
    pub(super) fn record(&self, shot: usize, done: &ShotDone) -> Result<()> {
        let words = encode(done);
        let mut bytes = Vec::with_capacity(32 + 8 * words.len() + 8);
        bytes.extend_from_slice(MAGIC);
        for w in [self.fingerprint, shot as u64, words.len() as u64] {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        for w in &words {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        let mut sum = Checksum::new();
        sum.update(&bytes);
        bytes.extend_from_slice(&sum.value().to_le_bytes());
        crate::fs::write_atomically(self.path(shot), |w| w.write_all(&bytes))?;
        let mut cache = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(finished) = cache.as_mut()
            && let Err(at) = finished.binary_search(&shot)
        {
            finished.insert(at, shot);
        }
        Ok(())
    }

    /// Shot `shot`'s recorded result.
    pub(super) fn load(&self, shot: usize) -> Result<ShotDone> {
        let path = self.path(shot);
        let damaged = |detail: &str| Error::File {
            path: path.clone(),
            detail: format!("the journal's record of shot {shot} {detail}"),
        };
        // Records are regular files this code wrote: a link, a pipe or a device in their
        // place is not read (it could block, or never end).
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| damaged(&format!("cannot be read ({e})")))?;
        if !meta.is_file() {
            return Err(damaged("is not a regular file"));
        }
        let len = usize::try_from(meta.len()).map_err(|_| damaged("is too large"))?;
        let mut bytes = crate::memory::reserve(len, "a journal record", "free host memory")?;
        std::fs::File::open(&path)
            .and_then(|f| f.take(meta.len()).read_to_end(&mut bytes))
            .map_err(|e| damaged(&format!("cannot be read ({e})")))?;
        let Some((body, sum)) = bytes.split_last_chunk::<8>() else {
            return Err(damaged("is too short"));
        };
        // Another format first: its checksum may be laid out differently.
        if body.len() >= 8 && body[..7] == MAGIC[..7] && body[7] != MAGIC[7] {
            return Err(damaged(&format!(
                "was written by another version of gpurevolve (format {}, this one reads {})",
                char::from(body[7]),
                char::from(MAGIC[7])
            )));
        }
        let mut check = Checksum::new();
        check.update(body);
        if check.value() != u64::from_le_bytes(*sum) || body.len() < 32 || body.len() % 8 != 0 {
            return Err(damaged("is damaged (its checksum differs)"));
        }
        let words: Vec<u64> = body
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        if body[..8] != MAGIC[..] || words[1] != self.fingerprint || words[2] != shot as u64 {
            return Err(damaged("is of another run or another shot"));
        }
        decode(&words[4..])
            .filter(|_| words[3] as usize == words.len() - 4)
            .ok_or_else(|| damaged("does not hold one whole shot"))
    }
}

/// The shot of a record's file name, exactly as [`Journal::path`] makes it: `shot-000042.bin`.
fn shot_of(name: &str) -> Option<usize> {
    let shot: usize = name
        .strip_prefix("shot-")?
        .strip_suffix(".bin")?
        .parse()
        .ok()?;
    (name == format!("shot-{shot:06}.bin")).then_some(shot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RunStats;

    #[test]
    fn a_record_of_another_format_says_so_and_is_not_read() {
        let dir =
            std::env::temp_dir().join(format!("gpurevolve-journal-fmt-{}", std::process::id()));
        let journal = Journal::open(&dir, 0x1234, false).unwrap();
        let done = ShotDone {
            device: 0,
            misfit: 0.1 + 0.2,
            gradient: vec![1.5, -2.0],
            stats: RunStats::default(),
            traces: vec![0.25; 3],
            tiers: Vec::new(),
        };
        journal.record(0, &done).unwrap();
        assert_eq!(journal.load(0).unwrap().gradient, done.gradient);
        let path = journal.path(0);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[7] = b'1';
        std::fs::write(&path, bytes).unwrap();
        let err = journal
            .load(0)
            .err()
            .expect("a record of format 1 is refused");
        assert!(
            err.to_string()
                .contains("another version of gpurevolve (format 1"),
            "{err}"
        );
        journal.remove().unwrap();
    }
}

//! The disk tier: checkpoint files in a fresh directory, written and read by one background
//! thread, each with a checksum verified when it is read back.
//!
//! One thread does every write and read, in the order asked, so a read of a slot's file
//! always follows the write before it. The engine hands it the bytes a spill brought to host
//! memory and goes on; it asks for a read as soon as its lookahead sees the restore, and
//! takes the bytes when the restore comes. A failed write (a full disk) is reported at the
//! engine's next call, as a typed error: the run stops, it never goes on with a checkpoint
//! missing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::{Error, Result};

/// File magic and format version.
const MAGIC: &[u8; 8] = b"GRVCKPT1";
/// Magic, step, levels, level bytes, checksum: five 8-byte words.
const HEADER_BYTES: u64 = 40;

/// Names each job; results come back with it.
pub(crate) type JobId = u64;

enum Job {
    Write {
        id: JobId,
        path: PathBuf,
        step: u64,
        levels: Vec<Vec<u8>>,
    },
    Read {
        id: JobId,
        path: PathBuf,
        step: u64,
        levels: usize,
        level_bytes: u64,
    },
}

/// What a job did, and how long its file work took.
pub(crate) struct Done {
    pub id: JobId,
    pub seconds: f64,
    pub bytes: u64,
    /// The levels read, for a read.
    pub result: Result<Option<Vec<Vec<u8>>>>,
}

/// FNV-1a over 64-bit words (the tail bytes as one more word): a checksum against damage, not
/// an adversary, at memory speed.
fn checksum(levels: &[Vec<u8>]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for level in levels {
        let mut words = level.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            h = (h ^ u64::from_le_bytes(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            h = (h ^ u64::from_le_bytes(b)).wrapping_mul(0x0100_0000_01b3);
        }
        // Level boundaries count: two levels are not their concatenation.
        h = (h ^ level.len() as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The directory, its writer thread and the jobs in flight.
pub(crate) struct DiskTier {
    dir: PathBuf,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    next: JobId,
    /// Results that came back while the engine waited for another.
    finished: HashMap<JobId, Done>,
}

/// Makes the run directories' names unique within the process.
static RUNS: AtomicU64 = AtomicU64::new(0);

impl DiskTier {
    /// A fresh subdirectory of `parent` and its I/O thread. `write_limit`: a test hook, the
    /// writer fails as a full disk would once it has written that many bytes.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `disk` when `parent` is not a writable directory.
    pub(crate) fn new(parent: &Path, write_limit: Option<u64>) -> Result<Self> {
        let bad = |reason: String| Error::InvalidArgument {
            name: "disk",
            reason,
        };
        if !parent.is_dir() {
            return Err(bad(format!(
                "{} is not a directory: give an existing directory for the disk tier",
                parent.display()
            )));
        }
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("gpurevolve-{}-{run}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| {
            bad(format!(
                "cannot make a directory in {} ({e}): give a writable directory for the disk tier",
                parent.display()
            ))
        })?;
        let (jobs, inbox) = channel::<Job>();
        let (outbox, done) = channel::<Done>();
        let thread = std::thread::Builder::new()
            .name("gpurevolve disk".into())
            .spawn(move || {
                let mut written = 0u64;
                for job in inbox {
                    if outbox
                        .send(run_job(job, &mut written, write_limit))
                        .is_err()
                    {
                        break;
                    }
                }
            })
            .map_err(|e| bad(format!("cannot start the disk tier's thread: {e}")))?;
        log::info!("disk tier in {}", dir.display());
        Ok(Self {
            dir,
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            next: 0,
            finished: HashMap::new(),
        })
    }

    /// The run's directory.
    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a slot.
    pub(crate) fn path(&self, slot: usize) -> PathBuf {
        self.dir.join(format!("slot-{slot}.ckpt"))
    }

    fn send(&mut self, job: impl FnOnce(JobId) -> Job) -> Result<JobId> {
        let id = self.next;
        self.next += 1;
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job(id)));
        match sent {
            Some(Ok(())) => Ok(id),
            _ => Err(Error::File {
                path: self.dir.clone(),
                detail: "the disk tier's thread has stopped".into(),
            }),
        }
    }

    /// Queues a write of state `step`'s levels to `slot`'s file.
    pub(crate) fn write(&mut self, slot: usize, step: u64, levels: Vec<Vec<u8>>) -> Result<JobId> {
        let path = self.path(slot);
        self.send(|id| Job::Write {
            id,
            path,
            step,
            levels,
        })
    }

    /// Queues a read of `slot`'s file, which must hold state `step` in `levels` levels of
    /// `level_bytes`.
    pub(crate) fn read(
        &mut self,
        slot: usize,
        step: u64,
        levels: usize,
        level_bytes: u64,
    ) -> Result<JobId> {
        let path = self.path(slot);
        self.send(|id| Job::Read {
            id,
            path,
            step,
            levels,
            level_bytes,
        })
    }

    /// The results that have come back, without waiting.
    pub(crate) fn finished(&mut self) -> Vec<Done> {
        let mut out: Vec<Done> = self.finished.drain().map(|(_, d)| d).collect();
        out.extend(self.done.try_iter());
        out.sort_by_key(|d| d.id);
        out
    }

    /// Waits for job `id`'s result.
    ///
    /// # Errors
    /// [`Error::File`] when the thread stopped without it.
    pub(crate) fn wait(&mut self, id: JobId) -> Result<Done> {
        if let Some(done) = self.finished.remove(&id) {
            return Ok(done);
        }
        loop {
            match self.done.recv() {
                Ok(done) if done.id == id => return Ok(done),
                Ok(other) => {
                    self.finished.insert(other.id, other);
                }
                Err(_) => {
                    return Err(Error::File {
                        path: self.dir.clone(),
                        detail:
                            "the disk tier's thread stopped before a checkpoint's file was done"
                                .into(),
                    });
                }
            }
        }
    }
}

impl Drop for DiskTier {
    /// Stops the thread after its queued jobs, then removes the run's directory.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            log::warn!(
                "could not remove the disk tier's {}: {e}",
                self.dir.display()
            );
        }
    }
}

fn run_job(job: Job, written: &mut u64, limit: Option<u64>) -> Done {
    let start = Instant::now();
    match job {
        Job::Write {
            id,
            path,
            step,
            levels,
        } => {
            let bytes: u64 = levels.iter().map(|l| l.len() as u64).sum::<u64>() + HEADER_BYTES;
            let result = if limit.is_some_and(|l| *written + bytes > l) {
                Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device (the test hook's limit)",
                ))
            } else {
                write_file(&path, step, &levels)
            };
            let result = match result {
                Ok(()) => {
                    *written += bytes;
                    Ok(None)
                }
                Err(e) => Err(write_error(&path, bytes, &e)),
            };
            Done {
                id,
                seconds: start.elapsed().as_secs_f64(),
                bytes,
                result,
            }
        }
        Job::Read {
            id,
            path,
            step,
            levels,
            level_bytes,
        } => {
            let result = read_file(&path, step, levels, level_bytes).map(Some);
            Done {
                id,
                seconds: start.elapsed().as_secs_f64(),
                bytes: levels as u64 * level_bytes + HEADER_BYTES,
                result,
            }
        }
    }
}

/// A full disk is [`Error::DiskFull`] (naming the directory and the bytes), anything else a
/// file error.
fn write_error(path: &Path, bytes: u64, e: &std::io::Error) -> Error {
    let dir = path.parent().unwrap_or(path).to_path_buf();
    let full = e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(28);
    if full {
        Error::DiskFull {
            dir,
            needed: bytes,
            detail: e.to_string(),
        }
    } else {
        Error::File {
            path: path.to_path_buf(),
            detail: format!("writing a checkpoint: {e}"),
        }
    }
}

fn write_file(path: &Path, step: u64, levels: &[Vec<u8>]) -> std::io::Result<()> {
    let level_bytes = levels.first().map_or(0, |l| l.len() as u64);
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    file.write_all(MAGIC)?;
    for word in [step, levels.len() as u64, level_bytes, checksum(levels)] {
        file.write_all(&word.to_le_bytes())?;
    }
    for level in levels {
        file.write_all(level)?;
    }
    // Flushed, not synced: the files are scratch, removed with the run, and a checkpoint
    // that reached the page cache reads back the same (its checksum says so). Syncing each
    // file cost a factor of four in write bandwidth on the development machine.
    file.flush()
}

fn read_file(path: &Path, step: u64, levels: usize, level_bytes: u64) -> Result<Vec<Vec<u8>>> {
    let corrupted = |detail: String| Error::CheckpointCorrupted {
        step,
        path: path.to_path_buf(),
        detail,
    };
    let io = |e: std::io::Error| Error::File {
        path: path.to_path_buf(),
        detail: format!("reading a checkpoint: {e}"),
    };
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut header = [0u8; HEADER_BYTES as usize];
    file.read_exact(&mut header)
        .map_err(|e| corrupted(format!("its header cannot be read ({e})")))?;
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[8 * i..8 * i + 8]);
        u64::from_le_bytes(b)
    };
    if &header[..8] != MAGIC {
        return Err(corrupted("it is not a gpurevolve checkpoint file".into()));
    }
    let found = (word(1), word(2), word(3));
    if found != (step, levels as u64, level_bytes) {
        return Err(corrupted(format!(
            "its header says state {}, {} levels of {} bytes; expected state {step}, {levels} of {level_bytes}",
            found.0, found.1, found.2
        )));
    }
    let mut out = Vec::with_capacity(levels);
    for _ in 0..levels {
        let mut level = vec![0u8; level_bytes as usize];
        file.read_exact(&mut level)
            .map_err(|e| corrupted(format!("it is shorter than its header says ({e})")))?;
        out.push(level);
    }
    let mut extra = [0u8; 1];
    if file.read(&mut extra).map_err(io)? != 0 {
        return Err(corrupted("it is longer than its header says".into()));
    }
    let sum = checksum(&out);
    if sum != word(4) {
        return Err(corrupted(format!(
            "checksum {sum:016x}, written {:016x}",
            word(4)
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(seed: u64, n: usize, bytes: usize) -> Vec<Vec<u8>> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                (0..bytes)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (x >> 56) as u8
                    })
                    .collect()
            })
            .collect()
    }

    fn temp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "gpurevolve-disk-test-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Written and read back in order, on random bytes; any changed byte is caught, naming
    /// the state and the file; the directory goes when the tier does.
    #[test]
    fn files_round_trip_and_damage_is_caught() {
        let parent = temp();
        let mut disk = DiskTier::new(&parent, None).unwrap();
        let dir = disk.dir().to_path_buf();
        let state = levels(1, 2, 1001);
        let w = disk.write(3, 17, state.clone()).unwrap();
        let r = disk.read(3, 17, 2, 1001).unwrap();
        assert!(disk.wait(w).unwrap().result.is_ok());
        assert_eq!(disk.wait(r).unwrap().result.unwrap().unwrap(), state);
        // The wrong state, then a flipped byte.
        let r = disk.read(3, 18, 2, 1001).unwrap();
        let err = disk.wait(r).unwrap().result.unwrap_err();
        assert!(
            matches!(err, Error::CheckpointCorrupted { step: 18, .. }),
            "{err}"
        );
        let path = disk.path(3);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER_BYTES as usize + 1500] ^= 0x10;
        std::fs::write(&path, bytes).unwrap();
        let r = disk.read(3, 17, 2, 1001).unwrap();
        let err = disk.wait(r).unwrap().result.unwrap_err();
        assert!(
            matches!(&err, Error::CheckpointCorrupted { step: 17, path: p, .. } if *p == path),
            "{err}"
        );
        assert!(err.to_string().contains("slot-3.ckpt"), "{err}");
        drop(disk);
        assert!(!dir.exists());
        std::fs::remove_dir_all(parent).unwrap();
    }

    /// A full disk is a typed error naming the directory and the bytes; a missing directory
    /// is bad input.
    #[test]
    fn a_full_disk_and_a_missing_directory_are_typed() {
        let parent = temp();
        let mut disk = DiskTier::new(&parent, Some(3000)).unwrap();
        let ok = disk.write(0, 1, levels(2, 2, 1000)).unwrap();
        let full = disk.write(1, 2, levels(3, 2, 1000)).unwrap();
        assert!(disk.wait(ok).unwrap().result.is_ok());
        let err = disk.wait(full).unwrap().result.unwrap_err();
        assert!(
            matches!(&err, Error::DiskFull { needed: 2040, dir, .. } if dir == disk.dir()),
            "{err}"
        );
        drop(disk);
        let missing = parent.join("no such directory");
        let err = DiskTier::new(&missing, None).err().unwrap();
        assert!(
            matches!(err, Error::InvalidArgument { name: "disk", .. }),
            "{err}"
        );
        std::fs::remove_dir_all(parent).unwrap();
    }
}

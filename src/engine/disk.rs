//! The disk tier ([`DiskTier`], a [`CheckpointTier`]): checkpoint files in a fresh
//! directory, written and read by one background thread ([`DiskFiles`]), each with a checksum
//! verified when it is read back.
//!
//! One thread does every write and read, in the order asked, so a read of a slot's file
//! always follows the write before it. The engine hands it the bytes a spill brought to host
//! memory and goes on; it asks for a read as soon as its lookahead sees the restore, and
//! takes the bytes when the restore comes. A failed write (a full disk) is reported at the
//! engine's next call, as a typed error: the run stops, it never goes on with a checkpoint
//! missing.
//!
//! A file: the magic `GRVCKPT2`, then the state, the number of levels and the bytes of each
//! (8-byte little-endian words), the levels, and last the [checksum](super::checksum) of every
//! byte before it, header included.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use super::checksum::Checksum;
use super::scratch::ScratchDir;
use super::spills::{SpillId, Spills};
use super::stats::TierStats;
use super::tier::{CheckpointTier, TierIo};
use crate::error::{Error, Result};
use crate::schedule::Action;

/// File magic and format version. Version 2: an XXH3 checksum of the whole file, trailing.
const MAGIC: &[u8; 8] = b"GRVCKPT2";
/// Magic, step, levels, level bytes: four 8-byte words.
const HEADER_BYTES: usize = 32;
/// A file's bytes beyond its levels: the header, and the checksum after the levels.
const OVERHEAD_BYTES: u64 = HEADER_BYTES as u64 + 8;

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

/// The longest a checkpoint file's write or read may take before the run gives up on it.
const FILE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// The directory, its writer thread and the jobs in flight.
pub(crate) struct DiskFiles {
    dir: PathBuf,
    /// The locked run directory ([`ScratchDir`]), removed after the thread has stopped.
    scratch: Option<ScratchDir>,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    next: JobId,
    /// Results that came back while the engine waited for another.
    finished: HashMap<JobId, Done>,
    /// The thread passed [`FILE_DEADLINE`] on a file: it is left, not joined, on drop.
    hung: bool,
}

impl DiskFiles {
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
        let scratch = ScratchDir::create(parent).map_err(|e| {
            bad(format!(
                "cannot make a directory in {} ({e}): give a writable directory for the disk tier",
                parent.display()
            ))
        })?;
        let dir = scratch.path().to_path_buf();
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
            scratch: Some(scratch),
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            next: 0,
            finished: HashMap::new(),
            hung: false,
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
    /// [`Error::File`] when the thread stopped without it, or when it has not come after ten
    /// minutes.
    pub(crate) fn wait(&mut self, id: JobId) -> Result<Done> {
        if let Some(done) = self.finished.remove(&id) {
            return Ok(done);
        }
        loop {
            // A file that takes this long (a hung network file system) stops the run with a
            // typed error rather than waiting for ever.
            match self.done.recv_timeout(FILE_DEADLINE) {
                Ok(done) if done.id == id => return Ok(done),
                Ok(other) => {
                    self.finished.insert(other.id, other);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    // The thread is stuck in the file system: never joined (see `Drop`).
                    self.hung = true;
                    return Err(Error::File {
                        path: self.dir.clone(),
                        detail: format!(
                            "no checkpoint file was written or read back in {} s: the file \
                             system stopped answering (a hung network mount?); give --disk a \
                             local directory",
                            FILE_DEADLINE.as_secs()
                        ),
                    });
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
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

impl Drop for DiskFiles {
    /// Stops the thread after its queued jobs, then removes the run's directory. A thread
    /// stuck in the file system is left behind (detached), not waited for.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take()
            && !self.hung
        {
            let _ = thread.join();
        }
        // Removes the directory (and logs if it cannot).
        self.scratch = None;
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
            let bytes: u64 = levels.iter().map(|l| l.len() as u64).sum::<u64>() + OVERHEAD_BYTES;
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
                bytes: levels as u64 * level_bytes + OVERHEAD_BYTES,
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
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    write_checkpoint(&mut file, tier_seed(path), step, levels)?;
    // Flushed, not synced: the files are scratch, removed with the run, and a checkpoint
    // that reached the page cache reads back the same (its checksum says so). Syncing each
    // file cost a factor of four in write bandwidth on the development machine.
    file.flush()
}

/// Writes a checkpoint's header, levels and checksum to `out`, hashing the bytes as they go
/// (a level larger than the writer's buffer goes straight to the file: nothing is copied).
fn write_checkpoint(
    out: &mut impl Write,
    seed: u64,
    step: u64,
    levels: &[Vec<u8>],
) -> std::io::Result<()> {
    let level_bytes = levels.first().map_or(0, |l| l.len() as u64);
    let mut sum = Checksum::with_seed(seed);
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(MAGIC);
    for (i, word) in [step, levels.len() as u64, level_bytes]
        .into_iter()
        .enumerate()
    {
        header[8 * (i + 1)..8 * (i + 2)].copy_from_slice(&word.to_le_bytes());
    }
    sum.update(&header);
    out.write_all(&header)?;
    for level in levels {
        sum.update(level);
        out.write_all(level)?;
    }
    out.write_all(&sum.value().to_le_bytes())
}

/// The checksum's seed for the files in `path`'s directory: a run directory's own, so that a
/// whole, valid checkpoint file of another run (another shot's, with the same state number)
/// copied in its place does not pass for this run's.
fn tier_seed(path: &Path) -> u64 {
    let mut sum = Checksum::new();
    sum.update(path.parent().unwrap_or(path).as_os_str().as_encoded_bytes());
    sum.value()
}

fn read_file(path: &Path, step: u64, levels: usize, level_bytes: u64) -> Result<Vec<Vec<u8>>> {
    let file = std::fs::File::open(path).map_err(|e| Error::File {
        path: path.to_path_buf(),
        detail: format!("reading a checkpoint: {e}"),
    })?;
    read_checkpoint(
        &mut std::io::BufReader::new(file),
        path,
        step,
        levels,
        level_bytes,
    )
}

/// Reads a checkpoint that must hold state `step` in `levels` levels of `level_bytes`, from
/// `file` (named `path` in errors). Nothing is returned unless the checksum of every byte
/// read, header included, is the one written after them, and nothing follows it.
fn read_checkpoint(
    file: &mut impl Read,
    path: &Path,
    step: u64,
    levels: usize,
    level_bytes: u64,
) -> Result<Vec<Vec<u8>>> {
    let corrupted = |detail: String| Error::CheckpointCorrupted {
        step,
        path: path.to_path_buf(),
        detail,
    };
    let mut sum = Checksum::with_seed(tier_seed(path));
    let mut header = [0u8; HEADER_BYTES];
    file.read_exact(&mut header)
        .map_err(|e| corrupted(format!("its header cannot be read ({e})")))?;
    sum.update(&header);
    let word = |bytes: &[u8], i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[8 * i..8 * i + 8]);
        u64::from_le_bytes(b)
    };
    if &header[..8] != MAGIC {
        return Err(corrupted(
            "it is not a gpurevolve checkpoint file of this version".into(),
        ));
    }
    let found = (word(&header, 1), word(&header, 2), word(&header, 3));
    if found != (step, levels as u64, level_bytes) {
        return Err(corrupted(format!(
            "its header says state {}, {} levels of {} bytes; expected state {step}, {levels} of {level_bytes}",
            found.0, found.1, found.2
        )));
    }
    let short = |e: std::io::Error| corrupted(format!("it is shorter than its header says ({e})"));
    let mut out = Vec::with_capacity(levels);
    for _ in 0..levels {
        let mut level = vec![0u8; level_bytes as usize];
        file.read_exact(&mut level).map_err(short)?;
        sum.update(&level);
        out.push(level);
    }
    let mut written = [0u8; 8];
    file.read_exact(&mut written).map_err(short)?;
    let mut extra = [0u8; 1];
    let more = file.read(&mut extra).map_err(|e| Error::File {
        path: path.to_path_buf(),
        detail: format!("reading a checkpoint: {e}"),
    })?;
    if more != 0 {
        return Err(corrupted("it is longer than its header says".into()));
    }
    let (sum, written) = (sum.value(), word(&written, 0));
    if sum != written {
        return Err(corrupted(format!(
            "checksum {sum:016x}, written {written:016x}"
        )));
    }
    Ok(out)
}

/// A disk checkpoint on its way: its spill to host memory, then its write; or written.
#[derive(Clone, Copy, Debug)]
enum FileState {
    Spilling(SpillId),
    Writing(JobId),
    Written,
}

/// A checkpoint in the disk tier: state `step`, `levels` levels of `level_bytes`.
struct Held {
    step: u64,
    file: FileState,
    levels: usize,
    level_bytes: u64,
}

/// A read asked for ahead of its restore.
struct ReadAhead {
    slot: usize,
    step: u64,
    job: JobId,
}

/// The disk tier of the GPU backend: a checkpoint goes to host memory through staging (a
/// spill), from there to its slot's file by the disk thread ([`DiskFiles`]), and comes back
/// by a read the lookahead asks for ahead of the restore.
///
/// Ordering: the disk thread runs writes and reads in the order asked, so a read of a slot
/// follows the write before it; a spill's bytes reach the thread only once the GPU has run
/// its copies ([`collect`](CheckpointTier::collect)).
pub(crate) struct DiskTier {
    parent: PathBuf,
    /// Test hook: the writer fails as a full disk would past this many bytes.
    write_limit: Option<u64>,
    /// The directory and its thread, made when a slot is first placed here.
    files: Option<DiskFiles>,
    /// Copies to host memory on their way to a file.
    spills: Spills,
    held: Vec<Option<Held>>,
    read_ahead: Option<ReadAhead>,
    /// Reads finished before their restore.
    reads: HashMap<JobId, Done>,
    /// Reads whose slot was freed: their results are dropped.
    discarded: Vec<JobId>,
    stats: TierStats,
}

impl DiskTier {
    /// A disk tier in a fresh subdirectory of `parent` (made when a slot is first placed
    /// here), with at most `spills_in_flight` copies through staging in flight.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `disk` when `parent` is not a directory, used or not.
    pub(crate) fn new(
        parent: PathBuf,
        write_limit: Option<u64>,
        spills_in_flight: usize,
    ) -> Result<Self> {
        if !parent.is_dir() {
            return Err(Error::InvalidArgument {
                name: "disk",
                reason: format!(
                    "{} is not a directory: give an existing directory for the disk tier",
                    parent.display()
                ),
            });
        }
        Ok(Self {
            parent,
            write_limit,
            files: None,
            spills: Spills::new(spills_in_flight),
            held: Vec::new(),
            read_ahead: None,
            reads: HashMap::new(),
            discarded: Vec::new(),
            stats: TierStats {
                name: "disk".into(),
                ..TierStats::default()
            },
        })
    }

    /// The directory and its thread, made on first use.
    fn files(&mut self) -> Result<&mut DiskFiles> {
        if self.files.is_none() {
            self.files = Some(DiskFiles::new(&self.parent, self.write_limit)?);
        }
        self.files.as_mut().ok_or_else(|| Error::InvalidArgument {
            name: "disk",
            reason: "the disk tier could not be made".into(),
        })
    }

    /// Blocks until spill `id` has reached host memory and the disk thread.
    fn await_spill(&mut self, io: &mut TierIo<'_, '_>, id: SpillId) -> Result<()> {
        let gpu = io.gpu();
        self.stats.wait_seconds += self.spills.wait_for(gpu, id, || io.submit())?;
        self.take_spills()
    }

    /// Hands the bytes of finished spills to the disk thread (a spill whose slot was freed
    /// meanwhile is dropped), then takes the thread's finished jobs.
    fn take_spills(&mut self) -> Result<()> {
        for (id, copy) in self.spills.take_finished()? {
            // The file has its own checksum, taken by the thread as it writes.
            let target = self.held.iter().position(|held| {
                matches!(held, Some(Held { file: FileState::Spilling(pending), .. }) if *pending == id)
            });
            let Some(slot) = target else { continue };
            let Some(step) = self.held[slot].as_ref().map(|h| h.step) else {
                continue;
            };
            let job = self.files()?.write(slot, step, copy.levels)?;
            if let Some(held) = self.held[slot].as_mut() {
                held.file = FileState::Writing(job);
            }
        }
        self.take_files()
    }

    /// Takes the disk thread's finished jobs: a write done marks its checkpoint written, a
    /// failed one stops the run with its error; reads are kept for their restore.
    fn take_files(&mut self) -> Result<()> {
        let Some(files) = self.files.as_mut() else {
            return Ok(());
        };
        for done in files.finished() {
            self.file_done(done)?;
        }
        Ok(())
    }

    fn file_done(&mut self, done: Done) -> Result<()> {
        let write = self.held.iter().position(|held| {
            matches!(held, Some(Held { file: FileState::Writing(job), .. }) if *job == done.id)
        });
        if let Some(slot) = write {
            done.result?;
            self.stats.bytes_written += done.bytes;
            self.stats.write_seconds += done.seconds;
            if let Some(held) = self.held[slot].as_mut() {
                held.file = FileState::Written;
            }
            return Ok(());
        }
        if let Some(i) = self.discarded.iter().position(|&j| j == done.id) {
            self.discarded.swap_remove(i);
            return Ok(());
        }
        match done.result {
            // A write whose slot was freed (or rewritten) since: its error still stops the
            // run, a full disk is a full disk.
            Err(e) => Err(e),
            Ok(None) => {
                self.stats.bytes_written += done.bytes;
                self.stats.write_seconds += done.seconds;
                Ok(())
            }
            Ok(Some(_)) => {
                self.reads.insert(done.id, done);
                Ok(())
            }
        }
    }

    /// Job `job`'s result: kept from an earlier collection, or waited for (taking any other
    /// results that come first).
    fn result(&mut self, job: JobId) -> Result<Done> {
        if let Some(done) = self.reads.remove(&job) {
            return Ok(done);
        }
        self.take_files()?;
        if let Some(done) = self.reads.remove(&job) {
            return Ok(done);
        }
        let done = self.files()?.wait(job)?;
        // The thread answers in order, so every job before this one has answered too: a write
        // among them that failed (a full disk) is the cause of whatever this read found (no
        // file), and its error comes first. The others are taken now as well.
        self.take_files()?;
        Ok(done)
    }
}

impl CheckpointTier for DiskTier {
    fn name(&self) -> &str {
        &self.stats.name
    }

    /// Makes the directory now, so a bad one is reported before the run.
    fn placed(&mut self, slots: usize) -> Result<()> {
        if slots > 0 {
            self.files()?;
        }
        Ok(())
    }

    /// The copies to staging now; the file once the GPU has run them.
    fn save(
        &mut self,
        io: &mut TierIo<'_, '_>,
        slot: usize,
        step: u64,
        levels: &[Rc<wgpu::Buffer>],
        demoted: bool,
    ) -> Result<()> {
        self.files()?;
        while self.spills.is_full() {
            let Some(oldest) = self.spills.oldest() else {
                break;
            };
            self.await_spill(io, oldest)?;
        }
        let gpu = io.gpu();
        let id = self.spills.start(gpu, io.encoder(), levels)?;
        self.stats.bytes_out += levels.iter().map(|l| l.size()).sum::<u64>();
        if self.held.len() <= slot {
            self.held.resize_with(slot + 1, || None);
        }
        self.held[slot] = Some(Held {
            step,
            file: FileState::Spilling(id),
            levels: levels.len(),
            level_bytes: io.level_bytes(),
        });
        if demoted {
            self.stats.demotions += 1;
        } else {
            self.stats.saves += 1;
        }
        Ok(())
    }

    /// Read back (ahead if the lookahead asked) and uploaded.
    fn restore(
        &mut self,
        io: &mut TierIo<'_, '_>,
        slot: usize,
        step: u64,
        into: &[Rc<wgpu::Buffer>],
    ) -> Result<()> {
        self.stats.restores += 1;
        let Some(held) = self.held.get(slot).and_then(Option::as_ref) else {
            return Err(Error::InvalidArgument {
                name: "slot",
                reason: format!("slot {slot} is not held by the disk tier"),
            });
        };
        let (file, levels, level_bytes) = (held.file, held.levels, held.level_bytes);
        // The spill must have reached the disk thread, so the read follows the write.
        if let FileState::Spilling(id) = file {
            self.await_spill(io, id)?;
        }
        let job = match self.read_ahead.take() {
            Some(ahead) if ahead.slot == slot && ahead.step == step => {
                self.stats.reads_ahead += 1;
                ahead.job
            }
            other => {
                self.read_ahead = other;
                self.files()?.read(slot, step, levels, level_bytes)?
            }
        };
        let start = Instant::now();
        let done = self.result(job)?;
        self.stats.wait_seconds += start.elapsed().as_secs_f64();
        self.stats.read_seconds += done.seconds;
        self.stats.bytes_read += done.bytes;
        let levels = done.result?.unwrap_or_default();
        self.stats.bytes_in += io.write_levels(into, &levels)?;
        Ok(())
    }

    /// Drops the slot, and its read ahead (whose result is discarded).
    fn free(&mut self, slot: usize, _step: u64) {
        if let Some(held) = self.held.get_mut(slot) {
            *held = None;
        }
        if self.read_ahead.as_ref().is_some_and(|r| r.slot == slot)
            && let Some(ahead) = self.read_ahead.take()
        {
            self.discarded.push(ahead.job);
        }
    }

    /// Asks for the read of the next disk checkpoint the schedule restores, once its bytes
    /// are on their way to the file. One read ahead at a time.
    fn prefetch(&mut self, io: &mut TierIo<'_, '_>, upcoming: &[Action]) -> Result<()> {
        if self.read_ahead.is_some() || self.files.is_none() {
            return Ok(());
        }
        let next = upcoming.iter().find_map(|action| match *action {
            Action::Restore { step, slot } if io.placed_here(slot) => Some((slot, step)),
            _ => None,
        });
        let Some((slot, step)) = next else {
            return Ok(());
        };
        let queued = match self.held.get(slot) {
            Some(Some(held))
                if held.step == step
                    && matches!(held.file, FileState::Writing(_) | FileState::Written) =>
            {
                Some((held.levels, held.level_bytes))
            }
            _ => None,
        };
        if let Some((levels, level_bytes)) = queued {
            let job = self.files()?.read(slot, step, levels, level_bytes)?;
            self.read_ahead = Some(ReadAhead { slot, step, job });
        }
        Ok(())
    }

    fn submitted(&mut self, index: &wgpu::SubmissionIndex) {
        self.spills.submitted(index);
    }

    fn collect(&mut self, _io: &mut TierIo<'_, '_>) -> Result<()> {
        self.take_spills()
    }

    fn held_bytes(&self) -> u64 {
        self.held
            .iter()
            .flatten()
            .map(|h| h.levels as u64 * h.level_bytes)
            .sum()
    }

    fn stats(&self) -> TierStats {
        self.stats.clone()
    }
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
        use std::sync::atomic::{AtomicU64, Ordering};
        static RUNS: AtomicU64 = AtomicU64::new(0);
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
        let mut disk = DiskFiles::new(&parent, None).unwrap();
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
        bytes[HEADER_BYTES + 1500] ^= 0x10;
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

    /// `bytes` with bit `bit` (of the whole file, bit 0 the low bit of its first byte) flipped.
    fn flip(bytes: &mut [u8], bit: usize) {
        bytes[bit / 8] ^= 1 << (bit % 8);
    }

    /// A checkpoint file's bytes, as written to a file.
    fn file_bytes(step: u64, state: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        write_checkpoint(&mut out, tier_seed(Path::new("in memory")), step, state).unwrap();
        out
    }

    /// Reads `bytes` as the file of state `step`, `levels` levels of `level_bytes`.
    fn read_bytes(
        bytes: &[u8],
        step: u64,
        levels: usize,
        level_bytes: u64,
    ) -> Result<Vec<Vec<u8>>> {
        let path = Path::new("in memory");
        read_checkpoint(
            &mut std::io::Cursor::new(bytes),
            path,
            step,
            levels,
            level_bytes,
        )
    }

    fn is_corrupted(result: &Result<Vec<Vec<u8>>>) -> bool {
        matches!(result, Err(Error::CheckpointCorrupted { .. }))
    }

    /// A whole, valid checkpoint file of another run (another shot's run directory, the same
    /// state number) copied over this run's is refused: the checksum is keyed by the
    /// directory.
    #[test]
    fn another_runs_valid_file_does_not_pass_for_this_runs() {
        let (a, b) = (temp(), temp());
        let state = levels(5, 2, 96);
        write_file(&a.join("slot-1.ckpt"), 4, &state).unwrap();
        assert_eq!(read_file(&a.join("slot-1.ckpt"), 4, 2, 96).unwrap(), state);
        std::fs::copy(a.join("slot-1.ckpt"), b.join("slot-1.ckpt")).unwrap();
        let err = read_file(&b.join("slot-1.ckpt"), 4, 2, 96).unwrap_err();
        assert!(
            matches!(err, Error::CheckpointCorrupted { step: 4, .. }),
            "{err}"
        );
        std::fs::remove_dir_all(a).unwrap();
        std::fs::remove_dir_all(b).unwrap();
    }

    /// What FNV-1a over 64-bit words missed: bit 63 flipped in two different words of the
    /// levels (the flips cancelled exactly), and bit 63 of a header word. Both are caught
    /// now, in a file on disk.
    #[test]
    fn two_high_bit_flips_in_the_levels_are_caught() {
        let dir = temp();
        let path = dir.join("slot-0.ckpt");
        let state = levels(5, 2, 64);
        write_file(&path, 9, &state).unwrap();
        let clean = std::fs::read(&path).unwrap();
        assert_eq!(read_file(&path, 9, 2, 64).unwrap(), state);
        // Bit 63 of the first and the third payload words (little-endian: bit 7 of byte 7),
        // and bit 63 of two words in different levels.
        for (a, b) in [(7, 23), (7, 64 + 15), (0, 8)] {
            let mut bytes = clean.clone();
            bytes[HEADER_BYTES + a] ^= 0x80;
            bytes[HEADER_BYTES + b] ^= 0x80;
            std::fs::write(&path, &bytes).unwrap();
            let result = read_file(&path, 9, 2, 64);
            assert!(
                is_corrupted(&result),
                "flips at {a} and {b} were not caught"
            );
        }
        // The header's words are covered too: the level-bytes word's bit 63, and the
        // checksum's own.
        for byte in [31, clean.len() - 1] {
            let mut bytes = clean.clone();
            bytes[byte] ^= 0x80;
            std::fs::write(&path, &bytes).unwrap();
            assert!(is_corrupted(&read_file(&path, 9, 2, 64)), "byte {byte}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Every single bit and every pair of distinct bits of a small checkpoint (two levels of
    /// twelve bytes: 64 bytes, 512 bits, 130,816 pairs), header and checksum included: no
    /// damage reads back as data.
    #[test]
    fn every_flip_and_pair_of_flips_of_a_small_file_is_caught() {
        let state = levels(6, 2, 12);
        let clean = file_bytes(4, &state);
        assert_eq!(clean.len(), 64);
        assert_eq!(read_bytes(&clean, 4, 2, 12).unwrap(), state);
        let bits = 8 * clean.len();
        let mut bytes = clean.clone();
        for a in 0..bits {
            flip(&mut bytes, a);
            assert!(is_corrupted(&read_bytes(&bytes, 4, 2, 12)), "bit {a}");
            for b in a + 1..bits {
                flip(&mut bytes, b);
                assert!(
                    is_corrupted(&read_bytes(&bytes, 4, 2, 12)),
                    "bits {a} and {b}"
                );
                flip(&mut bytes, b);
            }
            flip(&mut bytes, a);
        }
        assert_eq!(bytes, clean);
        // Cut short or run on by a byte: caught too.
        assert!(is_corrupted(&read_bytes(&clean[..63], 4, 2, 12)));
        let mut longer = clean.clone();
        longer.push(0);
        assert!(is_corrupted(&read_bytes(&longer, 4, 2, 12)));
    }

    /// Removes its directory when dropped, so a failing case leaves nothing.
    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// A file of random levels of random size on disk reads back as written; with any one
        /// bit flipped, or any two distinct bits, anywhere in it (header and checksum
        /// included), the read fails as corrupted and returns no data. Half the cases flip
        /// bit 63 of two 8-byte words, the damage the old FNV-1a checksum could not see.
        #[test]
        fn any_one_or_two_flipped_bits_are_caught(
            seed in proptest::prelude::any::<u64>(),
            count in 1usize..4,
            level_bytes in 0usize..700,
            step in proptest::prelude::any::<u64>(),
            first in proptest::prelude::any::<proptest::sample::Index>(),
            second in proptest::prelude::any::<proptest::sample::Index>(),
            top_bits in proptest::prelude::any::<bool>(),
        ) {
            let dir = TempDir(temp());
            let path = dir.0.join("slot-0.ckpt");
            let state = levels(seed, count, level_bytes);
            write_file(&path, step, &state).unwrap();
            let clean = std::fs::read(&path).unwrap();
            let lb = level_bytes as u64;
            proptest::prop_assert_eq!(clean.len() as u64, count as u64 * lb + OVERHEAD_BYTES);
            proptest::prop_assert_eq!(read_file(&path, step, count, lb).unwrap(), state);
            let bits = 8 * clean.len();
            let words = clean.len() / 8;
            let (a, b) = if top_bits && words >= 2 {
                // Bit 63 of two different 8-byte words: what FNV-1a over words cancelled.
                let i = first.index(words);
                let mut j = second.index(words - 1);
                if j >= i {
                    j += 1;
                }
                (64 * i + 63, 64 * j + 63)
            } else {
                let a = first.index(bits);
                let mut b = second.index(bits - 1);
                if b >= a {
                    b += 1;
                }
                (a, b)
            };
            let mut bytes = clean.clone();
            flip(&mut bytes, a);
            std::fs::write(&path, &bytes).unwrap();
            let one = read_file(&path, step, count, lb);
            proptest::prop_assert!(is_corrupted(&one), "bit {} of {}: {:?}", a, bits, one.err());
            flip(&mut bytes, b);
            std::fs::write(&path, &bytes).unwrap();
            let two = read_file(&path, step, count, lb);
            proptest::prop_assert!(
                is_corrupted(&two),
                "bits {} and {} of {}: {:?}", a, b, bits, two.err()
            );
        }
    }

    /// A full disk is a typed error naming the directory and the bytes; a missing directory
    /// is bad input.
    #[test]
    fn a_full_disk_and_a_missing_directory_are_typed() {
        let parent = temp();
        let mut disk = DiskFiles::new(&parent, Some(3000)).unwrap();
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
        let err = DiskFiles::new(&missing, None).err().unwrap();
        assert!(
            matches!(err, Error::InvalidArgument { name: "disk", .. }),
            "{err}"
        );
        std::fs::remove_dir_all(parent).unwrap();
    }
}

//! The disk tier of [`GpuBackend`]: a checkpoint goes to host memory through staging (a
//! spill), from there to its slot's file by the disk thread, and comes back by a read the
//! lookahead asks for ahead of the restore.
//!
//! Ordering: the disk thread runs writes and reads in the order asked, so a read of a slot
//! follows the write before it; a spill's bytes reach the thread only once the GPU has run
//! its copies (`collect_disk`).

use std::time::Instant;

use super::{GpuBackend, GpuState, Held};
use crate::engine::disk::{DiskTier, Done, JobId};
use crate::engine::operator::Operator;
use crate::engine::spills::SpillId;
use crate::error::{Error, Result};
use crate::schedule::{Action, Tier};

/// A disk checkpoint on its way: its spill to host memory, then its write; or written.
#[derive(Clone, Copy, Debug)]
pub(super) enum DiskHeld {
    Spilling(SpillId),
    Writing(JobId),
    Written,
}

/// A read asked for ahead of its restore.
pub(super) struct ReadAhead {
    slot: usize,
    step: u64,
    job: JobId,
}

impl<O: Operator> GpuBackend<'_, O> {
    /// The disk tier, made on first use.
    fn disk(&mut self) -> Result<&mut DiskTier> {
        if self.disk.is_none() {
            let Some(parent) = self.options.disk.clone() else {
                return Err(Error::InvalidArgument {
                    name: "tiers",
                    reason: "a slot is placed on the disk tier, but RevolverOptions::disk names no directory".into(),
                });
            };
            self.disk = Some(DiskTier::new(&parent, self.options.disk_write_limit)?);
        }
        self.disk.as_mut().ok_or_else(|| Error::InvalidArgument {
            name: "disk",
            reason: "the disk tier could not be made".into(),
        })
    }

    /// Makes the disk tier now if the placement uses it, so a bad directory is reported
    /// before the run.
    pub(super) fn open_disk_if_placed(&mut self) -> Result<()> {
        if self.tiers.contains(&Tier::DISK) {
            self.disk()?;
        } else if let Some(dir) = &self.options.disk
            && !dir.is_dir()
        {
            // Unused this run (the other tiers hold every slot), but named wrongly all the same.
            return Err(Error::InvalidArgument {
                name: "disk",
                reason: format!(
                    "{} is not a directory: give an existing directory for the disk tier",
                    dir.display()
                ),
            });
        }
        Ok(())
    }

    /// Saves `state` into disk slot `slot`: its copies to staging now; the file once the GPU
    /// has run them.
    pub(super) fn save_to_disk(&mut self, slot: usize, state: &GpuState) -> Result<()> {
        self.disk()?;
        let id = self.spill_for_disk(state)?;
        self.slots[slot] = Some(Held::Disk {
            step: state.step,
            file: DiskHeld::Spilling(id),
        });
        self.stats.disk_saves += 1;
        Ok(())
    }

    /// The state in disk slot `slot`, read back (ahead if the lookahead asked) and uploaded.
    pub(super) fn restore_from_disk(&mut self, slot: usize, step: u64) -> Result<GpuState> {
        self.stats.disk_restores += 1;
        // The spill must have reached the disk thread, so the read follows the write.
        if let Some(Some(Held::Disk {
            file: DiskHeld::Spilling(id),
            ..
        })) = self.slots.get(slot)
        {
            let id = *id;
            self.await_spill_timed(id)?;
        }
        let job = match self.read_ahead.take() {
            Some(ahead) if ahead.slot == slot && ahead.step == step => {
                self.stats.disk_reads_ahead += 1;
                ahead.job
            }
            other => {
                self.read_ahead = other;
                let (levels, bytes) = (self.operator.levels(), self.operator.level_bytes());
                self.disk()?.read(slot, step, levels, bytes)?
            }
        };
        let start = Instant::now();
        let done = self.disk_result(job)?;
        self.stats.transfer_wait_seconds += start.elapsed().as_secs_f64();
        self.stats.disk_read_seconds += done.seconds;
        self.stats.disk_bytes_read += done.bytes;
        let levels = done.result?.unwrap_or_default();
        self.upload_levels(step, &levels)
    }

    /// Asks for the read of the next disk checkpoint the schedule restores, once its bytes
    /// are on their way to the file. One read ahead at a time.
    pub(super) fn read_ahead_next(&mut self, upcoming: &[Action]) -> Result<()> {
        if self.read_ahead.is_some() || self.disk.is_none() {
            return Ok(());
        }
        let next = upcoming.iter().find_map(|action| match *action {
            Action::Restore { step, slot } if self.tiers.get(slot) == Some(&Tier::DISK) => {
                Some((slot, step))
            }
            _ => None,
        });
        let Some((slot, step)) = next else {
            return Ok(());
        };
        let queued = matches!(
            self.slots.get(slot),
            Some(Some(Held::Disk { step: held, file: DiskHeld::Writing(_) | DiskHeld::Written }))
                if *held == step
        );
        if queued {
            let (levels, bytes) = (self.operator.levels(), self.operator.level_bytes());
            let job = self.disk()?.read(slot, step, levels, bytes)?;
            self.read_ahead = Some(ReadAhead { slot, step, job });
        }
        Ok(())
    }

    /// Drops the read ahead of `slot` (the slot was freed); its result is discarded.
    pub(super) fn forget_read_ahead(&mut self, slot: usize) {
        if self.read_ahead.as_ref().is_some_and(|r| r.slot == slot)
            && let Some(ahead) = self.read_ahead.take()
        {
            self.discarded_reads.push(ahead.job);
        }
    }

    /// Hands the bytes of a finished spill to the disk thread, when the spill was for a disk
    /// slot; returns the bytes back otherwise.
    pub(super) fn spill_to_file(
        &mut self,
        id: SpillId,
        levels: Vec<Vec<u8>>,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        let target = self.slots.iter().position(|held| {
            matches!(held, Some(Held::Disk { file: DiskHeld::Spilling(pending), .. }) if *pending == id)
        });
        let Some(slot) = target else {
            return Ok(Some(levels));
        };
        let Some(Held::Disk { step, .. }) = self.slots[slot] else {
            return Ok(Some(levels));
        };
        let job = self.disk()?.write(slot, step, levels)?;
        self.slots[slot] = Some(Held::Disk {
            step,
            file: DiskHeld::Writing(job),
        });
        Ok(None)
    }

    /// Takes the disk thread's finished jobs: a write done marks its checkpoint written, a
    /// failed one stops the run with its error; reads are kept for their restore.
    pub(super) fn collect_disk(&mut self) -> Result<()> {
        let Some(disk) = self.disk.as_mut() else {
            return Ok(());
        };
        for done in disk.finished() {
            self.file_done(done)?;
        }
        Ok(())
    }

    fn file_done(&mut self, done: Done) -> Result<()> {
        let write = self.slots.iter().position(|held| {
            matches!(held, Some(Held::Disk { file: DiskHeld::Writing(job), .. }) if *job == done.id)
        });
        if let Some(slot) = write {
            done.result?;
            self.stats.disk_bytes_written += done.bytes;
            self.stats.disk_write_seconds += done.seconds;
            if let Some(Held::Disk { file, .. }) = self.slots[slot].as_mut() {
                *file = DiskHeld::Written;
            }
            return Ok(());
        }
        if let Some(i) = self.discarded_reads.iter().position(|&j| j == done.id) {
            self.discarded_reads.swap_remove(i);
            return Ok(());
        }
        match done.result {
            // A write whose slot was freed (or rewritten) since: its error still stops the
            // run, a full disk is a full disk.
            Err(e) => Err(e),
            Ok(None) => {
                self.stats.disk_bytes_written += done.bytes;
                self.stats.disk_write_seconds += done.seconds;
                Ok(())
            }
            Ok(Some(_)) => {
                self.disk_reads.insert(done.id, done);
                Ok(())
            }
        }
    }

    /// Job `job`'s result: kept from an earlier collection, or waited for (taking any other
    /// results that come first).
    fn disk_result(&mut self, job: JobId) -> Result<Done> {
        if let Some(done) = self.disk_reads.remove(&job) {
            return Ok(done);
        }
        self.collect_disk()?;
        if let Some(done) = self.disk_reads.remove(&job) {
            return Ok(done);
        }
        let done = self.disk()?.wait(job)?;
        // The thread answers in order, so every job before this one has answered too: a write
        // among them that failed (a full disk) is the cause of whatever this read found (no
        // file), and its error comes first. The others are taken now as well.
        self.collect_disk()?;
        Ok(done)
    }
}

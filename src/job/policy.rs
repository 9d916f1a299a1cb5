//! The run policy: how each shot keeps its states and where its checkpoints live. One
//! struct, with the names the command line (`--device-memory`) and Python (`device_memory=`)
//! both use, resolved into a [`Checkpointing`] once the state's size and the step count are
//! known.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::compression::CheckpointFormat;
use crate::error::{Error, Result};
use crate::fwi::{Checkpointing, ScheduleChoice};
use crate::schedule::{self, Revolve, TierCost, TieredCosts};

/// How checkpoints are split between the GPU, host memory and the disk tier when the GPU's
/// budget holds fewer than the schedule's memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Revolve's (or the level) schedule; its most used slots stay on the GPU.
    #[default]
    Multistage,
    /// The schedule of least cost for the step and transfer costs (measured by a short
    /// calibration, or [`RunPolicy::costs`]): with [`ScheduleChoice::Levels`], the level
    /// schedule over the GPU's levels and whole snapshots in host memory (`tiered-levels`);
    /// otherwise, or with a disk tier, whole snapshots in Revolve's split structure
    /// (`two-tier`, `cost-optimal`).
    Optimal,
}

impl Placement {
    /// Its name: `multistage` or `optimal`.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Multistage => "multistage",
            Placement::Optimal => "optimal",
        }
    }
}

impl std::str::FromStr for Placement {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "multistage" => Ok(Placement::Multistage),
            "optimal" => Ok(Placement::Optimal),
            _ => Err(Error::InvalidArgument {
                name: "placement",
                reason: format!("unknown placement {name:?}; use \"multistage\" or \"optimal\""),
            }),
        }
    }
}

/// How many shots step together in each dispatch ([`RunPolicy::batch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Batch {
    /// This many shots a batch (the last may hold fewer); 1 runs each shot alone.
    Shots(usize),
    /// The batch size of least modelled time per shot for the checkpoint memory
    /// ([`super::batching`]), from a step cost measured on the device.
    Auto,
}

impl Default for Batch {
    fn default() -> Self {
        Batch::Shots(1)
    }
}

impl Batch {
    /// Its name: `auto`, or the number of shots.
    pub fn name(self) -> String {
        match self {
            Batch::Shots(n) => n.to_string(),
            Batch::Auto => "auto".into(),
        }
    }
}

impl std::str::FromStr for Batch {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        if text == "auto" {
            return Ok(Batch::Auto);
        }
        match text.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Batch::Shots(n)),
            _ => Err(invalid(
                "batch",
                format!(
                    "{text:?}: give \"auto\" or a whole number of shots, at least 1 (a batch \
                     larger than the survey holds all its shots)"
                ),
            )),
        }
    }
}

/// The whole checkpointing policy of a run. Every field is named as the command line's option
/// (`snaps` is `--snaps`) and Python's keyword; the defaults are theirs.
///
/// ```
/// use gpurevolve::job::{Placement, RunPolicy};
/// let policy = RunPolicy { snaps: Some(20), device_memory: Some(1 << 30), ..RunPolicy::default() };
/// assert_eq!(policy.placement, Placement::Multistage);
/// policy.check()?;
/// assert!(RunPolicy { until_quiet: Some(1.5), ..RunPolicy::default() }.check().is_err());
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunPolicy {
    /// Checkpoint memory, in snapshots of one shot's two time levels, held by each batch of
    /// shots: a batch of B shots gets `snaps / B` snapshots of its own ([`batch`](Self::batch))
    /// [default: the fewest with which classic Revolve takes at most 3 forward steps per step].
    pub snaps: Option<u64>,
    /// Keep every forward state (the reference; no recomputation).
    pub store_all: bool,
    /// The schedule within that memory.
    pub schedule: ScheduleChoice,
    /// How checkpoints are split between the tiers.
    pub placement: Placement,
    /// Costs for [`Placement::Optimal`], in seconds: a forward step, a state's copy to host
    /// memory and back (`[STEP, TO_HOST, TO_GPU]`), and with a disk tier to and from it
    /// (`[.., TO_DISK, FROM_DISK]`) [default: measured]. With a lossy
    /// [`checkpoint_format`](Self::checkpoint_format) they are needed (a lossy run's bits
    /// depend on its schedule, which measured costs would tie to timing), copies of the
    /// encoded state, followed by the format's kernels on a state, `[.., ENCODE, DECODE]`:
    /// every save and restore pays them, on the GPU too.
    /// [`measure_costs`](crate::job::measure_costs) measures them in this form.
    pub costs: Option<Vec<f64>>,
    /// Stop each shot once its wavefield's energy is below this fraction of its peak after
    /// the source has ended, with online checkpointing in the memory of `snaps`.
    pub until_quiet: Option<f64>,
    /// GPU bytes for checkpoints, on each device; the rest spill to host memory
    /// [default: all on the GPU, spilling only if it runs out].
    pub device_memory: Option<u64>,
    /// Host bytes for spilled checkpoints [default: unlimited].
    pub host_memory: Option<u64>,
    /// A directory for a third tier below host memory (files in a fresh subdirectory,
    /// removed at the end, each checksummed).
    pub disk: Option<PathBuf>,
    /// Bytes of checkpoints on the disk tier [default: unlimited].
    pub disk_memory: Option<u64>,
    /// Shots stepped together in each dispatch, or `auto` [default: 1]. A batch shares one
    /// schedule, and its shots share `snaps`: a batch of B shots gets `snaps / B` snapshots of
    /// B shots' states, the same memory. The gradient's bits do not depend on it.
    #[serde(default)]
    pub batch: Batch,
    /// How checkpoints store their time levels [default: `f32`, exact]. A lossy format
    /// (`bf16`, `int8`) holds more checkpoints in the memory of `snaps` (planned with the
    /// encoded size: fewer forward steps) and moves fewer bytes when they spill; the gradient
    /// is then close to, not equal to, the exact one ([`CheckpointFormat`]).
    #[serde(default)]
    pub checkpoint_format: CheckpointFormat,
}

/// Bytes of a time level of `level_bytes`, made of `parts` shots' equal parts, stored in
/// `format`, as planned: each shot's part as it is stored alone (no int8 block spans two
/// shots; bf16 may pair two shots' words, a word less), so a batch plans its shots' schedule
/// whatever its size, and within its memory.
pub(crate) fn stored_level_bytes(format: CheckpointFormat, level_bytes: u64, parts: usize) -> u64 {
    let parts = parts.max(1) as u64;
    parts * format.encoded_bytes(level_bytes / parts)
}

/// [`stored_level_bytes`] for a state of two levels (as the acoustic job's).
fn stored_state_bytes(format: CheckpointFormat, state_bytes: u64, parts: usize) -> u64 {
    2 * stored_level_bytes(format, state_bytes / 2, parts)
}

fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidArgument {
        name,
        reason: reason.into(),
    }
}

impl RunPolicy {
    /// The names of the [`costs`](Self::costs) this policy takes, in order: `STEP, TO_HOST,
    /// TO_GPU`, then `TO_DISK, FROM_DISK` with a disk tier, then `ENCODE, DECODE` for a lossy
    /// format.
    pub fn cost_names(&self) -> Vec<&'static str> {
        let mut names = vec!["STEP", "TO_HOST", "TO_GPU"];
        if self.disk.is_some() {
            names.extend(["TO_DISK", "FROM_DISK"]);
        }
        if !self.checkpoint_format.is_exact() {
            names.extend(["ENCODE", "DECODE"]);
        }
        names
    }

    /// Checks what can be checked before any problem exists: fields that exclude each other,
    /// the quiet fraction, the costs' count, and the disk tier's directory (it must exist and
    /// take a file).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field, saying what to change.
    pub fn check(&self) -> Result<()> {
        if self.store_all && self.snaps.is_some() {
            return Err(invalid(
                "snaps",
                "store_all keeps every state: give one or the other",
            ));
        }
        if self.store_all && self.until_quiet.is_some() {
            return Err(invalid(
                "until_quiet",
                "store_all runs every step: give one or the other",
            ));
        }
        if self.store_all && self.placement != Placement::Multistage {
            return Err(invalid(
                "placement",
                "store_all keeps every state where it is made: no placement applies",
            ));
        }
        if self.store_all && self.schedule != ScheduleChoice::default() {
            return Err(invalid(
                "schedule",
                "store_all keeps every state: no schedule applies, give one or the other",
            ));
        }
        if !self.checkpoint_format.is_exact()
            && self.placement == Placement::Optimal
            && self.costs.is_none()
        {
            return Err(invalid(
                "costs",
                format!(
                    "placement by cost chooses which states a {} run stores from the costs, and \
                     its bits depend on that: measured costs would make them depend on timing. \
                     Give the costs in seconds, STEP,TO_HOST,TO_GPU (with a disk tier \
                     ,TO_DISK,FROM_DISK) for the encoded state, then ENCODE,DECODE for the \
                     format's kernels on a state (the example's --measure-costs, or \
                     gpurevolve::job::measure_costs, measures them), or place by use \
                     (multistage)",
                    self.checkpoint_format
                ),
            ));
        }
        if !self.checkpoint_format.is_exact() && self.batch == Batch::Auto {
            return Err(invalid(
                "batch",
                format!(
                    "auto chooses the batch from measured step costs, and the batch sets each \
                     batch's share of snaps, so a {} run's bits would depend on timing: give \
                     a batch size",
                    self.checkpoint_format
                ),
            ));
        }
        if !self.checkpoint_format.is_exact() && self.store_all {
            return Err(invalid(
                "checkpoint_format",
                format!(
                    "store_all is the exact reference: it keeps f32 states, not {}; drop one \
                     or the other",
                    self.checkpoint_format
                ),
            ));
        }
        if self.batch == Batch::Shots(0) {
            return Err(invalid(
                "batch",
                "0 shots: give at least 1 (each shot alone), or \"auto\"",
            ));
        }
        if self.snaps == Some(0) {
            return Err(invalid(
                "snaps",
                "0 snapshots hold no state: give at least 1, or leave it to the default",
            ));
        }
        if let Some(fraction) = self.until_quiet {
            if !(fraction > 0.0 && fraction < 1.0) {
                return Err(invalid(
                    "until_quiet",
                    format!(
                        "{fraction}: the fraction of the peak energy at which a shot stops must lie strictly between 0 and 1 (1e-4, say)"
                    ),
                ));
            }
            if self.placement == Placement::Optimal {
                return Err(invalid(
                    "until_quiet",
                    "it plans online, without the costs placement \"optimal\" needs: use placement \"multistage\"",
                ));
            }
        }
        if let Some(costs) = &self.costs {
            if self.placement != Placement::Optimal || self.store_all || self.until_quiet.is_some()
            {
                return Err(invalid(
                    "costs",
                    "they are used by placement \"optimal\" only, which plans a fixed number of \
                     snapshots (not store_all, not until_quiet): drop the costs, or ask for it",
                ));
            }
            let names = self.cost_names();
            if costs.len() != names.len() {
                return Err(invalid(
                    "costs",
                    format!(
                        "{} numbers in seconds, {}, are needed; got {}",
                        names.len(),
                        names.join(","),
                        costs.len()
                    ),
                ));
            }
            if let Some(c) = costs.iter().find(|c| !(c.is_finite() && **c >= 0.0)) {
                return Err(invalid(
                    "costs",
                    format!("{c} is not a cost in seconds (finite, ≥ 0)"),
                ));
            }
        }
        if self.disk_memory.is_some() && self.disk.is_none() {
            return Err(invalid(
                "disk_memory",
                "it budgets the disk tier, which needs `disk` (a directory); give both, or neither",
            ));
        }
        if self.disk_memory == Some(0) {
            return Err(invalid(
                "disk_memory",
                "0 holds no checkpoint: give a positive number of bytes, or no disk tier",
            ));
        }
        if let Some(dir) = &self.disk {
            check_disk(dir)?;
        }
        Ok(())
    }

    /// Whether every reverse recomputes its step (`schedule` classic).
    pub fn recomputes(&self) -> bool {
        !self.store_all && self.until_quiet.is_none() && self.schedule.recomputes()
    }

    /// The snapshots of memory per shot: as given (checked against Revolve's bounds), or the
    /// fewest with which classic Revolve takes at most 3 forward steps per step.
    fn snaps_for(&self, steps: u64) -> Result<u64> {
        match self.snaps {
            Some(s) => {
                // Checked now, with Revolve's message: a cost-optimal plan builds no Revolve.
                Revolve::new(steps, s)?;
                Ok(s)
            }
            None => schedule::min_snapshots_for_factor(steps, 3.0),
        }
    }

    /// The policy of one batch of `batch` shots: the memory of [`snaps`](Self::snaps) (or its
    /// default for `steps` steps) shared by the batch's states, `snaps / batch` snapshots, at
    /// most `steps` (a share of memory larger than every state of the batch keeps them all).
    /// One shot of a batch size the user gave keeps the policy as given, its snapshots
    /// checked against the steps as without batching.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming `batch` when `snaps` cannot hold one snapshot of the
    /// batch; as the snapshots' check against `steps`.
    pub fn for_batch(&self, steps: u64, batch: usize) -> Result<RunPolicy> {
        let batch = batch.max(1) as u64;
        if self.store_all || (batch == 1 && self.batch != Batch::Auto) {
            return Ok(self.clone());
        }
        // The total is not checked against the steps: the batch's share is, when resolved.
        let snaps = match self.snaps {
            Some(s) => s,
            None => schedule::min_snapshots_for_factor(steps, 3.0)?,
        };
        if snaps < batch {
            return Err(invalid(
                "batch",
                format!(
                    "a batch of {batch} shots shares the memory of {snaps} one-shot snapshots \
                     (snaps), less than one snapshot of the batch: raise snaps to at least \
                     {batch}, or lower batch"
                ),
            ));
        }
        Ok(RunPolicy {
            snaps: Some((snaps / batch).min(steps.max(1))),
            ..self.clone()
        })
    }

    /// The checkpointing for `steps` steps with states of `state_bytes`; `measure` and
    /// `measure_disk` calibrate the costs when placement by cost needs them and none are
    /// given (each is called at most once, and only then).
    ///
    /// # Errors
    /// As [`RunPolicy::check`]; [`Error::InvalidArgument`] when the budgets cannot hold the
    /// memory a plan by cost places; as the calibrations.
    pub fn checkpointing(
        &self,
        steps: u64,
        state_bytes: u64,
        measure: impl FnOnce() -> Result<TieredCosts>,
        measure_disk: impl FnOnce() -> Result<TierCost>,
    ) -> Result<Checkpointing> {
        self.check()?;
        self.resolve(steps, (state_bytes, 1), measure, measure_disk)
    }

    /// [`checkpointing`](Self::checkpointing) for a policy already checked (a
    /// [`GradientJob`](super::GradientJob)'s: the disk directory is probed once), for states
    /// of `state_bytes` made of `parts` shots (a batch's).
    pub(crate) fn resolve(
        &self,
        steps: u64,
        (state_bytes, parts): (u64, usize),
        measure: impl FnOnce() -> Result<TieredCosts>,
        measure_disk: impl FnOnce() -> Result<TierCost>,
    ) -> Result<Checkpointing> {
        if self.store_all {
            return Ok(Checkpointing::StoreAll);
        }
        let snaps = self.snaps_for(steps)?;
        // The memory of `snaps` exact snapshots holds more encoded ones (every state at most).
        let stored_state_bytes = stored_state_bytes(self.checkpoint_format, state_bytes, parts);
        let snaps = match self.checkpoint_format {
            CheckpointFormat::F32 => snaps,
            _ => {
                let encoded = u128::from(snaps) * u128::from(state_bytes.max(1))
                    / u128::from(stored_state_bytes.max(1));
                u64::try_from(encoded).unwrap_or(u64::MAX).min(steps.max(1))
            }
        };
        let state_bytes = stored_state_bytes;
        if let Some(fraction) = self.until_quiet {
            // As Revolve's choice: state 0 is rebuilt, so its slot holds nothing.
            return Ok(Checkpointing::UntilQuiet {
                snaps: (snaps + 1).min(steps),
                fraction,
            });
        }
        let state_bytes = state_bytes.max(1);
        match self.placement {
            Placement::Multistage => Ok(self.schedule.checkpointing(snaps, steps)),
            Placement::Optimal if self.disk.is_some() => {
                self.three_tier(snaps, state_bytes, measure, measure_disk)
            }
            // The level schedule over tiers counts host copies but holds GPU levels for free:
            // a lossy format's kernels cost at every save and restore, GPU ones too, and the
            // state schedule over tiers counts them there.
            Placement::Optimal
                if self.schedule == ScheduleChoice::Levels && self.checkpoint_format.is_exact() =>
            {
                self.tiered_levels(snaps, state_bytes, measure)
            }
            Placement::Optimal => self.two_tier(snaps, state_bytes, measure),
        }
    }

    /// With a disk tier: as many snapshots on the GPU as `device_memory` holds, then in host
    /// memory as `host_memory` holds, the rest on disk.
    fn three_tier(
        &self,
        snaps: u64,
        state_bytes: u64,
        measure: impl FnOnce() -> Result<TieredCosts>,
        measure_disk: impl FnOnce() -> Result<TierCost>,
    ) -> Result<Checkpointing> {
        let snaps = count(snaps)?;
        let fits = |bytes: u64| count(bytes / state_bytes).unwrap_or(usize::MAX);
        let device = self.device_memory.map_or(snaps, |b| fits(b).min(snaps));
        let host = self
            .host_memory
            .map_or(snaps - device, |b| fits(b).min(snaps - device));
        let disk = snaps - device - host;
        if let Some(d) = self.disk_memory
            && fits(d) < disk
        {
            return Err(invalid(
                "disk_memory",
                format!(
                    "{d} bytes hold {} states of {state_bytes} bytes; the {snaps} snapshots need {disk} there besides {device} on the GPU and {host} in host memory: raise it or lower snaps",
                    fits(d)
                ),
            ));
        }
        let costs = match self.costs.as_deref() {
            Some(&[forward, to_host, to_gpu, to_disk, from_disk, ref codec @ ..]) => with_codec(
                TieredCosts {
                    forward,
                    tiers: vec![
                        TierCost::default(),
                        TierCost {
                            write: to_host,
                            read: to_gpu,
                        },
                        TierCost {
                            write: to_disk,
                            read: from_disk,
                        },
                    ],
                },
                codec,
            ),
            _ => {
                let mut costs = measure()?;
                let disk = if disk == 0 {
                    TierCost::default()
                } else {
                    measure_disk()?
                };
                costs.tiers.resize(2, TierCost::default());
                costs.tiers.push(disk);
                costs
            }
        };
        Ok(Checkpointing::ThreeTier {
            device,
            host,
            disk,
            costs,
        })
    }

    /// As many of the `snaps` snapshots on the GPU as `device_memory` holds, the rest in host
    /// memory, and the least-cost schedule for them.
    fn two_tier(
        &self,
        snaps: u64,
        state_bytes: u64,
        measure: impl FnOnce() -> Result<TieredCosts>,
    ) -> Result<Checkpointing> {
        let snaps = count(snaps)?;
        let fits = |bytes: u64| count(bytes / state_bytes).unwrap_or(usize::MAX);
        let device = self.device_memory.map_or(snaps, |b| fits(b).min(snaps));
        let host = snaps - device;
        if let Some(h) = self.host_memory
            && fits(h) < host
        {
            return Err(invalid(
                "host_memory",
                format!(
                    "{h} bytes hold {} states of {state_bytes} bytes; the {snaps} snapshots need {host} there besides the {device} on the GPU: raise it or lower snaps",
                    fits(h)
                ),
            ));
        }
        let costs = self.two_tier_costs(host > 0, measure)?;
        Ok(Checkpointing::TwoTier {
            device,
            host,
            costs,
        })
    }

    /// The level schedule by cost: as many of the `2 · snaps` levels on the GPU as
    /// `device_memory` holds, the rest as whole snapshots in host memory.
    fn tiered_levels(
        &self,
        snaps: u64,
        state_bytes: u64,
        measure: impl FnOnce() -> Result<TieredCosts>,
    ) -> Result<Checkpointing> {
        let level_bytes = (state_bytes / 2).max(1);
        let total = 2 * snaps;
        let levels = self
            .device_memory
            .map_or(total, |b| (b / level_bytes).min(total));
        let host = (total - levels) / 2;
        if let Some(h) = self.host_memory
            && h / state_bytes < host
        {
            return Err(invalid(
                "host_memory",
                format!(
                    "{h} bytes hold {} states of {state_bytes} bytes; the {snaps} snapshots' memory needs {host} there besides {levels} levels on the GPU: raise it or lower snaps",
                    h / state_bytes
                ),
            ));
        }
        let costs = self.two_tier_costs(host > 0, measure)?;
        Ok(Checkpointing::TieredLevels {
            levels,
            host,
            costs,
        })
    }

    /// The given costs as a step and the two copies, or measured when anything goes to the
    /// host.
    fn two_tier_costs(
        &self,
        host: bool,
        measure: impl FnOnce() -> Result<TieredCosts>,
    ) -> Result<TieredCosts> {
        Ok(match self.costs.as_deref() {
            Some(&[forward, write, read, ref codec @ ..]) => with_codec(
                TieredCosts::two_tier(forward, TierCost { write, read }),
                codec,
            ),
            // Nothing goes to the host: the plan is the GPU's alone whatever the copies cost.
            _ if !host => TieredCosts::two_tier(1.0, TierCost::default()),
            _ => measure()?,
        })
    }
}

/// Given costs with a lossy format's kernels, `[ENCODE, DECODE]` seconds a state: every save
/// encodes and every restore decodes, on the GPU (whose copies are otherwise free) as below it.
/// An upper bound: on the GPU the engine decodes no level that a level buffer holds decoded
/// already (about half of them when consecutive states are held) and one level a join.
/// `codec` is empty for `f32`.
fn with_codec(mut costs: TieredCosts, codec: &[f64]) -> TieredCosts {
    if let &[encode, decode] = codec {
        for tier in &mut costs.tiers {
            tier.write += encode;
            tier.read += decode;
        }
    }
    costs
}

fn count(n: u64) -> Result<usize> {
    usize::try_from(n)
        .map_err(|_| invalid("snaps", format!("{n} is more than this machine can count")))
}

/// The disk tier's directory must exist and take a file: checked by making and removing one,
/// before any GPU work.
fn check_disk(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(invalid(
            "disk",
            format!(
                "{}: this is a file, not a directory; give a directory for the disk tier",
                dir.display()
            ),
        ));
    }
    if !dir.is_dir() {
        return Err(invalid(
            "disk",
            format!(
                "{}: no such directory; give an existing directory for the disk tier",
                dir.display()
            ),
        ));
    }
    crate::fs::probe_writable(dir).map_err(|e| {
        invalid(
            "disk",
            format!(
                "{}: cannot write there ({e}); give a writable directory",
                dir.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(policy: RunPolicy) -> &'static str {
        match policy.check() {
            Err(Error::InvalidArgument { name, .. }) => name,
            other => panic!("{policy:?}: {other:?}"),
        }
    }

    #[test]
    fn each_bad_policy_names_its_field() {
        let optimal = RunPolicy {
            placement: Placement::Optimal,
            ..RunPolicy::default()
        };
        let cases = [
            (
                RunPolicy {
                    store_all: true,
                    snaps: Some(3),
                    ..RunPolicy::default()
                },
                "snaps",
            ),
            (
                RunPolicy {
                    store_all: true,
                    until_quiet: Some(0.1),
                    ..RunPolicy::default()
                },
                "until_quiet",
            ),
            (
                RunPolicy {
                    until_quiet: Some(1.0),
                    ..RunPolicy::default()
                },
                "until_quiet",
            ),
            (
                RunPolicy {
                    until_quiet: Some(f64::NAN),
                    ..RunPolicy::default()
                },
                "until_quiet",
            ),
            (
                RunPolicy {
                    until_quiet: Some(0.5),
                    ..optimal.clone()
                },
                "until_quiet",
            ),
            (
                RunPolicy {
                    costs: Some(vec![1.0, 2.0, 3.0]),
                    ..RunPolicy::default()
                },
                "costs",
            ),
            (
                RunPolicy {
                    costs: Some(vec![1.0, 2.0]),
                    ..optimal.clone()
                },
                "costs",
            ),
            (
                RunPolicy {
                    costs: Some(vec![1.0, f64::INFINITY, 3.0]),
                    ..optimal.clone()
                },
                "costs",
            ),
            (
                RunPolicy {
                    costs: Some(vec![1.0, -2.0, 3.0]),
                    ..optimal.clone()
                },
                "costs",
            ),
            (
                RunPolicy {
                    disk_memory: Some(10),
                    ..RunPolicy::default()
                },
                "disk_memory",
            ),
            (
                RunPolicy {
                    disk: Some("/no/such/dir".into()),
                    ..RunPolicy::default()
                },
                "disk",
            ),
        ];
        for (policy, field) in cases {
            assert_eq!(named(policy), field);
        }
        assert!(
            RunPolicy {
                costs: Some(vec![1.0, 2.0, 3.0]),
                ..optimal
            }
            .check()
            .is_ok()
        );
    }

    #[test]
    fn placement_by_cost_splits_the_memory_by_the_budgets() {
        let never = || -> Result<TieredCosts> { panic!("costs were given") };
        let never_disk = || -> Result<TierCost> { panic!("no disk tier") };
        // Five snapshots of 100 bytes, 250 bytes of GPU memory: 2 on the GPU, 3 in host memory.
        let policy = RunPolicy {
            snaps: Some(5),
            schedule: ScheduleChoice::Revolve,
            placement: Placement::Optimal,
            costs: Some(vec![1.0, 0.5, 0.5]),
            device_memory: Some(250),
            ..RunPolicy::default()
        };
        match policy.checkpointing(50, 100, never, never_disk).unwrap() {
            Checkpointing::TwoTier { device, host, .. } => assert_eq!((device, host), (2, 3)),
            other => panic!("{other:?}"),
        }
        // The level schedule counts the GPU in levels (half a state): 5 levels, and the other 5
        // snapshots' worth of levels as 2 whole states in host memory.
        let levels = RunPolicy {
            schedule: ScheduleChoice::Levels,
            ..policy.clone()
        };
        match levels.checkpointing(50, 100, never, never_disk).unwrap() {
            Checkpointing::TieredLevels { levels, host, .. } => assert_eq!((levels, host), (5, 2)),
            other => panic!("{other:?}"),
        }
        // A host budget too small for the rest is refused, naming it.
        let tight = RunPolicy {
            host_memory: Some(150),
            ..policy
        };
        match tight.checkpointing(50, 100, never, never_disk) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "host_memory"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn costs_are_measured_only_when_something_leaves_the_gpu() {
        let policy = RunPolicy {
            snaps: Some(4),
            schedule: ScheduleChoice::Revolve,
            placement: Placement::Optimal,
            ..RunPolicy::default()
        };
        let never = || -> Result<TieredCosts> { panic!("nothing goes to the host") };
        let checkpointing = policy.checkpointing(30, 64, never, || Ok(TierCost::default()));
        assert!(matches!(
            checkpointing,
            Ok(Checkpointing::TwoTier { host: 0, .. })
        ));
        let mut measured = false;
        let spilling = RunPolicy {
            device_memory: Some(64),
            ..policy
        };
        let measure = || {
            measured = true;
            Ok(TieredCosts::two_tier(
                1.0,
                TierCost {
                    write: 2.0,
                    read: 2.0,
                },
            ))
        };
        spilling
            .checkpointing(30, 64, measure, || Ok(TierCost::default()))
            .unwrap();
        assert!(measured);
    }
}

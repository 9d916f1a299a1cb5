//! What a run did, as one serde type: the command line writes it as `summary.json`, Python
//! returns it as `info`, and both therefore have the same keys by construction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::modelled::ModelledCost;
use super::policy::Placement;
use crate::engine::{RunStats, TierStats};
use crate::schedule::Tier;

/// Each shot's checkpoint traffic by tier (`summary.json`'s `tiers`), one entry per shot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShotTraffic {
    /// Saves kept on the GPU.
    pub device_saves: Vec<u64>,
    /// Restores from the GPU.
    pub device_restores: Vec<u64>,
    /// Saves that went to host memory.
    pub host_saves: Vec<u64>,
    /// Restores from host memory.
    pub host_restores: Vec<u64>,
    /// Bytes copied to host memory (disk spills pass through it).
    pub bytes_to_host: Vec<u64>,
    /// Bytes copied back to the GPU.
    pub bytes_to_device: Vec<u64>,
    /// Slots moved to host memory when the GPU ran out of memory.
    pub out_of_memory_demotions: Vec<u64>,
    /// The most bytes held in host memory at once.
    pub peak_host_bytes: Vec<u64>,
    /// Saves written to the disk tier.
    pub disk_saves: Vec<u64>,
    /// Restores read from the disk tier.
    pub disk_restores: Vec<u64>,
    /// Disk restores read ahead of their use.
    pub disk_reads_ahead: Vec<u64>,
    /// Bytes written to the disk tier.
    pub bytes_to_disk: Vec<u64>,
    /// Bytes read from the disk tier.
    pub bytes_from_disk: Vec<u64>,
    /// Seconds spent writing the disk tier.
    pub disk_write_seconds: Vec<f64>,
    /// Seconds spent reading the disk tier.
    pub disk_read_seconds: Vec<f64>,
}

impl ShotTraffic {
    /// The traffic of each shot's run, from its tiers' own counts: host memory and the disk
    /// by name; the bytes each way and the demotions summed over the tiers (disk spills pass
    /// through host memory); a save or restore in no tier of host memory counts as the GPU's.
    pub fn of(shots: &[RunStats]) -> Self {
        let each = |f: &dyn Fn(&RunStats) -> u64| shots.iter().map(f).collect::<Vec<u64>>();
        fn host(s: &RunStats) -> &TierStats {
            s.named("host")
        }
        fn disk(s: &RunStats) -> &TierStats {
            s.named("disk")
        }
        ShotTraffic {
            // What is not saved to a slower tier stays on the GPU (the rebuilt rest state too).
            device_saves: each(&|s| s.saves - s.total(|t| t.saves) + s.tier(Tier::DEVICE).saves),
            // A join restores its held state (counted by the tier it comes from).
            device_restores: each(&|s| {
                (s.restores + s.joins).saturating_sub(s.total(|t| t.restores))
                    + s.tier(Tier::DEVICE).restores
            }),
            host_saves: each(&|s| host(s).saves),
            host_restores: each(&|s| host(s).restores),
            bytes_to_host: each(&|s| s.total(|t| t.bytes_out)),
            bytes_to_device: each(&|s| s.total(|t| t.bytes_in)),
            out_of_memory_demotions: each(&|s| s.total(|t| t.demotions)),
            peak_host_bytes: each(&|s| host(s).peak_bytes),
            disk_saves: each(&|s| disk(s).saves),
            disk_restores: each(&|s| disk(s).restores),
            disk_reads_ahead: each(&|s| disk(s).reads_ahead),
            bytes_to_disk: each(&|s| disk(s).bytes_written),
            bytes_from_disk: each(&|s| disk(s).bytes_read),
            disk_write_seconds: shots.iter().map(|s| disk(s).write_seconds).collect(),
            disk_read_seconds: shots.iter().map(|s| disk(s).read_seconds).collect(),
        }
    }
}

/// The units of [`Summary::misfit`] and the gradient.
pub const GRADIENT_UNITS: &str =
    "dJ/dm, m = 1/c^2 in s^2/m^2; J = 1/2 sum (d - d_obs)^2, no dt weighting";

/// What a gradient run did: `summary.json`, and Python's `info`. Per-shot lists are in shot
/// order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Summary {
    /// The adapters' names, joined by ` + `.
    pub adapter: String,
    /// 2 or 3.
    pub dimensions: usize,
    /// The physical model's shape, depth last.
    pub shape: Vec<usize>,
    /// Grid spacing in metres.
    pub spacing: f64,
    /// Absorbing cells on each side.
    pub nbl: usize,
    /// `cpml` or `sponge`.
    pub boundary: String,
    /// The velocity the absorbing layer is tuned for, m/s.
    pub boundary_velocity: f64,
    /// Space order of the Laplacian.
    pub space_order: usize,
    /// Shots in the survey.
    pub shots: usize,
    /// Shots stepped together in each dispatch (the last batch may hold fewer). Per-shot
    /// counts below are those of the shot's batch, which its shots share.
    pub batch: usize,
    /// The modelled seconds per shot of that batch size, when `batch` was `auto` (`null`
    /// otherwise).
    pub modelled_seconds_per_shot: Option<f64>,
    /// Device-seconds per shot run, measured: the forward and reverse sweeps of every batch,
    /// summed over the devices and ranks that ran them, over the shots they ran (two devices
    /// side by side each count their own seconds; auto's calibration is not counted).
    pub measured_seconds_per_shot: f64,
    /// Compute dispatches per shot and step evaluation (forward or adjoint): a batch of `B`
    /// shots makes one dispatch of each kernel for all of them, so this falls as `1/B`.
    pub dispatches_per_shot_step: f64,
    /// Receivers per shot.
    pub receivers: usize,
    /// Time samples per trace.
    pub nt: usize,
    /// Time step in seconds.
    pub dt: f64,
    /// Steps per shot (`nt − 1`).
    pub steps: u64,
    /// The schedule that ran ([`ScheduleMemory::name`](crate::schedule::ScheduleMemory)).
    pub schedule: String,
    /// Its memory in two-level snapshots (as stored: a lossy format holds more).
    pub snaps: u64,
    /// How checkpoints stored their levels: `f32` (exact), `bf16` or `int8`.
    #[serde(default = "exact")]
    pub checkpoint_format: String,
    /// Its memory in time levels.
    pub checkpoint_levels: u64,
    /// Its memory in bytes.
    pub checkpoint_bytes: u64,
    /// The most time levels the plan holds at once.
    pub peak_checkpoint_levels: u64,
    /// How the slots were split between tiers.
    pub placement: Placement,
    /// Each shot's slots on the GPU, as its run ended (after any out-of-memory demotion): its
    /// batch's, each slot holding the batch's states.
    pub device_slots: Vec<u64>,
    /// Each shot's slots in host memory.
    pub host_slots: Vec<u64>,
    /// Each shot's slots on the disk tier.
    pub disk_slots: Vec<u64>,
    /// For a plan by cost, what it models (`null` otherwise).
    pub modelled_cost: Option<ModelledCost>,
    /// MPI ranks (1 without MPI).
    pub ranks: usize,
    /// Shots read back from a killed run's journal rather than run (rank 0's under MPI).
    pub resumed_shots: Vec<usize>,
    /// Each rank's seconds in its shots' forward and reverse sweeps.
    pub rank_seconds: Vec<f64>,
    /// The devices the shots ran on, by name.
    pub devices: Vec<String>,
    /// The device each shot ran on: an index into its rank's devices.
    pub shot_devices: Vec<usize>,
    /// The rank each shot ran on.
    pub shot_ranks: Vec<usize>,
    /// The fraction of its peak energy at which a shot stops, if the run stops when quiet.
    pub until_quiet: Option<f64>,
    /// Each shot's forward step evaluations.
    pub forward_steps: Vec<u64>,
    /// Each shot's reverse steps (its steps run; until quiet, its own length, though its
    /// batch ran to its longest shot's).
    pub reverse_steps: Vec<u64>,
    /// Each shot's checkpoint saves.
    pub saves: Vec<u64>,
    /// Each shot's checkpoint restores.
    pub restores: Vec<u64>,
    /// Each shot's time levels encoded by a lossy checkpoint format (one kernel each).
    #[serde(default)]
    pub levels_encoded: Vec<u64>,
    /// Each shot's time levels decoded by a lossy checkpoint format (one kernel each; a
    /// restored level whose decoding a level buffer still held is not decoded again).
    #[serde(default)]
    pub levels_decoded: Vec<u64>,
    /// Forward steps per step: as planned, or for runs that stopped when quiet, as run.
    pub recompute_factor: f64,
    /// The most checkpoint bytes any shot's batch held on the GPU at once.
    pub peak_checkpoint_bytes: u64,
    /// Bytes copied between GPU buffers, all shots.
    pub bytes_copied: u64,
    /// Bytes spilled to host memory, all shots.
    pub spilled_bytes: u64,
    /// Checkpoint traffic by tier.
    pub tiers: ShotTraffic,
    /// `½ Σ (d − d_obs)²`, summed over shots.
    pub misfit: f64,
    /// Seconds per phase (`forward sweeps`, `reverse sweeps`, `total`, and the command
    /// line's own).
    pub timings: BTreeMap<String, f64>,
    /// [`GRADIENT_UNITS`].
    pub gradient_units: String,
    /// The seed of a built-in model (`null` for given arrays).
    pub seed: Option<u64>,
}

/// Slots of each shot in `tier`.
pub(super) fn slots_in(tiers: &[Vec<Tier>], tier: Tier) -> Vec<u64> {
    tiers
        .iter()
        .map(|t| t.iter().filter(|&&x| x == tier).count() as u64)
        .collect()
}

impl Summary {
    /// As JSON: two-space indents, arrays on one line, so that each key is one line to read
    /// or `grep`. A non-finite float is written `null`.
    pub fn to_json(&self) -> String {
        to_json(self)
    }
}

/// `value` as JSON, objects indented by two spaces, arrays on one line.
pub fn to_json<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, OneLineArrays::default());
    // Writing to a Vec fails only for a map with non-string keys, which no summary has.
    if let Err(e) = value.serialize(&mut serializer) {
        log::error!("a summary did not serialise: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// serde_json's pretty formatter, keeping arrays on one line.
#[derive(Default)]
struct OneLineArrays {
    depth: usize,
    /// Whether the current object has had a key (for the closing brace's line).
    has_value: Vec<bool>,
}

impl OneLineArrays {
    fn indent<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for OneLineArrays {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth += 1;
        self.has_value.push(false);
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.depth -= 1;
        if self.has_value.pop().unwrap_or(false) {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if let Some(has) = self.has_value.last_mut() {
            *has = true;
        }
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

/// The checkpoint format of a summary written before formats existed.
fn exact() -> String {
    "f32".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_survives_json_and_keeps_its_lines() {
        let summary = Summary {
            adapter: "a \"quoted\" name".into(),
            shape: vec![48, 24],
            forward_steps: vec![7, 9],
            misfit: 0.1 + 0.2,
            dt: 1.234_567_890_123e-3,
            modelled_cost: Some(ModelledCost {
                step: 1e-6,
                two_tier: Some(3.5),
                ..ModelledCost::default()
            }),
            timings: [("total".to_owned(), 2.5)].into(),
            ..Summary::default()
        };
        let text = summary.to_json();
        let back: Summary = serde_json::from_str(&text).unwrap();
        assert_eq!(back, summary);
        assert!(text.contains("\n  \"forward_steps\": [7, 9],\n"), "{text}");
        assert!(
            text.contains("\n  \"modelled_cost\": {\n    \"step\": "),
            "{text}"
        );
        assert!(
            !text.contains("\"to_disk\""),
            "absent costs are left out: {text}"
        );
        assert!(text.ends_with("\n}"), "{text}");
    }
}

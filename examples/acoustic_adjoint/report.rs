//! `summary.json` and the closing table.

use gpurevolve::engine::RunStats;
use gpurevolve::fwi::FwiGradient;
use gpurevolve::schedule::{ScheduleMemory, ScheduleStats, Tier};

pub use super::json::Json;
use super::plan::{Modelled, count};
use super::setup::Setup;
use super::{Args, ScheduleKind};

/// What a run did, for `summary.json` and the closing table.
pub struct Report<'a> {
    pub args: &'a Args,
    pub setup: &'a Setup,
    pub adapter: String,
    /// The schedule that ran and its memory.
    pub schedule: ScheduleMemory,
    /// Bytes of one time level.
    pub level_bytes: u64,
    /// The devices the shots ran on, by name.
    pub devices: Vec<String>,
    pub planned: ScheduleStats,
    pub modelled: Modelled,
    pub result: &'a FwiGradient,
    /// Seconds per phase, in order.
    pub timings: Vec<(&'static str, f64)>,
    /// Each rank's seconds in its shots' forward and reverse sweeps (one entry without MPI).
    pub rank_seconds: Vec<f64>,
    /// The shots read back from the journal of a killed run (--resume), not run again
    /// (under MPI, rank 0's).
    pub resumed_shots: Vec<usize>,
}

impl Report<'_> {
    fn per_shot(&self, f: impl Fn(&RunStats) -> u64) -> Json {
        Json::Arr(self.result.shots.iter().map(|s| Json::Int(f(s))).collect())
    }

    /// Slots per shot in `tier` as each run ended (after any out-of-memory demotion).
    fn slots_in(&self, tier: Tier) -> Json {
        Json::Arr(
            self.result
                .tiers
                .iter()
                .map(|t| Json::Int(count(t, tier)))
                .collect(),
        )
    }

    fn sum(&self, f: impl Fn(&RunStats) -> u64) -> u64 {
        self.result.shots.iter().map(f).sum()
    }

    fn peak_checkpoint_bytes(&self) -> u64 {
        self.result
            .shots
            .iter()
            .map(|s| s.peak_checkpoint_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Forward steps per shot as planned: the acoustic adjoint needs only its state, so a
    /// reverse recomputes nothing and the last step runs once to record (unless the run
    /// recomputes in reverse on purpose, `--schedule classic`).
    fn planned_forward(&self) -> u64 {
        if self.args.schedule == ScheduleKind::Classic {
            self.planned.total_forward
        } else {
            self.planned.state_adjoint_total_forward()
        }
    }

    /// Forward steps per step: as planned, or, for runs that stopped when quiet, as run.
    fn recompute_factor(&self) -> f64 {
        if self.args.until_quiet.is_some() {
            let run = |f: fn(&RunStats) -> u64| self.sum(f) as f64;
            return run(|s| s.forward_steps) / run(|s| s.reverse_steps).max(1.0);
        }
        self.planned_forward() as f64 / self.planned.steps.max(1) as f64
    }

    /// `summary.json`.
    pub fn json(&self) -> Json {
        let (args, setup) = (self.args, self.setup);
        let truth = &setup.truth;
        let ScheduleMemory {
            name,
            snaps,
            levels,
        } = self.schedule;
        Json::Obj(vec![
            ("adapter", Json::Str(self.adapter.clone())),
            ("dimensions", Json::Int(truth.dim() as u64)),
            (
                "shape",
                Json::Arr(truth.shape().iter().map(|&n| Json::Int(n as u64)).collect()),
            ),
            ("spacing", Json::Num(truth.spacing())),
            ("nbl", Json::Int(truth.nbl() as u64)),
            ("boundary", Json::Str(setup.boundary.kind().name().into())),
            (
                "boundary_velocity",
                Json::Num(setup.boundary.reference_velocity()),
            ),
            ("space_order", Json::Int(args.space_order as u64)),
            ("shots", Json::Int(args.shots as u64)),
            ("receivers", Json::Int(setup.receivers as u64)),
            ("nt", Json::Int(setup.time.nt as u64)),
            ("dt", Json::Num(setup.time.dt)),
            ("steps", Json::Int(self.planned.steps)),
            ("schedule", Json::Str(name.into())),
            ("snaps", Json::Int(snaps)),
            ("checkpoint_levels", Json::Int(levels)),
            ("checkpoint_bytes", Json::Int(levels * self.level_bytes)),
            (
                "peak_checkpoint_levels",
                Json::Int(self.planned.peak_levels),
            ),
            (
                "placement",
                Json::Str(format!("{:?}", args.placement).to_lowercase()),
            ),
            ("device_slots", self.slots_in(Tier::DEVICE)),
            ("host_slots", self.slots_in(Tier::HOST)),
            ("disk_slots", self.slots_in(Tier::DISK)),
            ("modelled_cost", self.modelled.json()),
            ("ranks", Json::Int(self.rank_seconds.len() as u64)),
            (
                "resumed_shots",
                Json::Arr(
                    self.resumed_shots
                        .iter()
                        .map(|&i| Json::Int(i as u64))
                        .collect(),
                ),
            ),
            (
                "rank_seconds",
                Json::Arr(self.rank_seconds.iter().map(|&s| Json::Num(s)).collect()),
            ),
            (
                "devices",
                Json::Arr(
                    self.devices
                        .iter()
                        .map(|name| Json::Str(name.clone()))
                        .collect(),
                ),
            ),
            (
                "shot_devices",
                Json::Arr(
                    self.result
                        .devices
                        .iter()
                        .map(|&d| Json::Int(d as u64))
                        .collect(),
                ),
            ),
            // The rank each shot ran on; its device is `shot_devices`' index on that rank.
            (
                "shot_ranks",
                Json::Arr(
                    (0..self.result.devices.len())
                        .map(|i| Json::Int((i % self.rank_seconds.len().max(1)) as u64))
                        .collect(),
                ),
            ),
            (
                "until_quiet",
                self.args.until_quiet.map_or(Json::Null, Json::Num),
            ),
            ("forward_steps", self.per_shot(|s| s.forward_steps)),
            ("reverse_steps", self.per_shot(|s| s.reverse_steps)),
            ("saves", self.per_shot(|s| s.saves)),
            ("restores", self.per_shot(|s| s.restores)),
            ("recompute_factor", Json::Num(self.recompute_factor())),
            (
                "peak_checkpoint_bytes",
                Json::Int(self.peak_checkpoint_bytes()),
            ),
            ("bytes_copied", Json::Int(self.sum(|s| s.bytes_copied))),
            ("spilled_bytes", Json::Int(self.sum(|s| s.spilled_bytes))),
            (
                "tiers",
                Json::Obj(vec![
                    ("device_saves", self.per_shot(|s| s.saves - s.host_saves)),
                    (
                        "device_restores",
                        self.per_shot(|s| s.restores - s.host_restores),
                    ),
                    ("host_saves", self.per_shot(|s| s.host_saves)),
                    ("host_restores", self.per_shot(|s| s.host_restores)),
                    ("bytes_to_host", self.per_shot(|s| s.spilled_bytes)),
                    ("bytes_to_device", self.per_shot(|s| s.restored_bytes)),
                    ("out_of_memory_demotions", self.per_shot(|s| s.demotions)),
                    ("peak_host_bytes", self.per_shot(|s| s.peak_host_bytes)),
                    ("disk_saves", self.per_shot(|s| s.disk_saves)),
                    ("disk_restores", self.per_shot(|s| s.disk_restores)),
                    ("disk_reads_ahead", self.per_shot(|s| s.disk_reads_ahead)),
                    ("bytes_to_disk", self.per_shot(|s| s.disk_bytes_written)),
                    ("bytes_from_disk", self.per_shot(|s| s.disk_bytes_read)),
                    (
                        "disk_write_seconds",
                        Json::Arr(
                            self.result
                                .shots
                                .iter()
                                .map(|s| Json::Num(s.disk_write_seconds))
                                .collect(),
                        ),
                    ),
                    (
                        "disk_read_seconds",
                        Json::Arr(
                            self.result
                                .shots
                                .iter()
                                .map(|s| Json::Num(s.disk_read_seconds))
                                .collect(),
                        ),
                    ),
                ]),
            ),
            ("misfit", Json::Num(self.result.misfit)),
            (
                "timings",
                Json::Obj(
                    self.timings
                        .iter()
                        .map(|&(k, v)| (k, Json::Num(v)))
                        .collect(),
                ),
            ),
            (
                "gradient_units",
                Json::Str(
                    "dJ/dm, m = 1/c^2 in s^2/m^2; J = 1/2 sum (d - d_obs)^2, no dt weighting"
                        .into(),
                ),
            ),
            ("seed", Json::Int(args.seed)),
        ])
    }

    /// The closing table on stdout.
    pub fn print_table(&self) {
        let (args, setup) = (self.args, self.setup);
        let truth = &setup.truth;
        let ScheduleMemory {
            name,
            snaps,
            levels,
        } = self.schedule;
        let seconds = |name: &str| {
            self.timings
                .iter()
                .find(|(k, _)| *k == name)
                .map_or(0.0, |(_, v)| *v)
        };
        // Shot 0's placement as its run ended.
        let tiers = self.result.tiers.first().map_or(&[][..], |t| &t[..]);
        table(&[
            (
                "model",
                if args.model_npy.is_some() {
                    "from .npy".into()
                } else {
                    format!("{:?}", args.model).to_lowercase()
                },
            ),
            (
                "grid",
                format!(
                    "{:?} × {} m, nbl {}",
                    truth.shape(),
                    truth.spacing(),
                    truth.nbl()
                ),
            ),
            (
                "shots × receivers",
                format!("{} × {}", args.shots, setup.receivers),
            ),
            (
                "time samples, dt",
                format!("{}, {:.3e} s", setup.time.nt, setup.time.dt),
            ),
            (
                "schedule",
                format!(
                    "{name}, {snaps} snapshots' memory = {levels} levels ({} slots on the GPU, {} in host memory{})",
                    count(tiers, Tier::DEVICE),
                    count(tiers, Tier::HOST),
                    if args.disk.is_some() {
                        format!(", {} on disk", count(tiers, Tier::DISK))
                    } else {
                        String::new()
                    }
                ),
            ),
            if args.until_quiet.is_some() {
                (
                    "steps run, forward steps",
                    self.result
                        .shots
                        .iter()
                        .map(|s| {
                            // A shot that ran its most steps was never quiet: say so.
                            let never = if s.reverse_steps == self.planned.steps {
                                " (never quiet)"
                            } else {
                                ""
                            };
                            format!("{}, {}{never}", s.reverse_steps, s.forward_steps)
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            } else {
                (
                    "forward steps / shot",
                    format!(
                        "{} ({} as Revolve counts its schedule)",
                        self.planned_forward(),
                        self.planned.total_forward
                    ),
                )
            },
            (
                "recompute factor",
                format!("{:.3}", self.recompute_factor()),
            ),
            (
                "peak checkpoints on GPU",
                format!("{:.1} MB", self.peak_checkpoint_bytes() as f64 / 1e6),
            ),
            (
                "spilled to host",
                format!("{:.1} MB", self.sum(|s| s.spilled_bytes) as f64 / 1e6),
            ),
            (
                "to disk / read back",
                if args.disk.is_some() {
                    format!(
                        "{:.1} MB / {:.1} MB ({} slots)",
                        self.sum(|s| s.disk_bytes_written) as f64 / 1e6,
                        self.sum(|s| s.disk_bytes_read) as f64 / 1e6,
                        count(tiers, Tier::DISK)
                    )
                } else {
                    "no disk tier".into()
                },
            ),
            ("misfit", format!("{:.6e}", self.result.misfit)),
            (
                "forward / reverse",
                format!(
                    "{:.2} s / {:.2} s",
                    seconds("forward sweeps"),
                    seconds("reverse sweeps")
                ),
            ),
            ("total", format!("{:.2} s", seconds("total"))),
            ("output", format!("{}/", args.out.display())),
        ]);
    }
}

/// Prints `(key, value)` rows as a two-column table.
pub fn table(rows: &[(&str, String)]) {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let line = "─".repeat(width + 24);
    println!("{line}");
    for (key, value) in rows {
        println!("{key:<width$}{value:>24}");
    }
    println!("{line}");
}

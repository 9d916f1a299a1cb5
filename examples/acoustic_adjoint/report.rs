//! The closing table, read from the run's [`Summary`].

use std::io::Write;

use gpurevolve::job::Summary;

use super::Args;

/// The closing table on stdout; the slots shown are shot 0's as its run ended.
///
/// # Errors
/// When stdout cannot be written (a closed pipe, a full disk).
pub fn print_table(args: &Args, s: &Summary) -> Result<(), String> {
    let shot0 = |slots: &[u64]| slots.first().copied().unwrap_or(0);
    let seconds = |name: &str| s.timings.get(name).copied().unwrap_or(0.0);
    let sum = |v: &[u64]| v.iter().sum::<u64>();
    let mb = |bytes: u64| format!("{:.1} MB", bytes as f64 / 1e6);
    let disk = if args.disk.is_some() {
        format!(", {} on disk", shot0(&s.disk_slots))
    } else {
        String::new()
    };
    let steps = if s.until_quiet.is_some() {
        let each = s.reverse_steps.iter().zip(&s.forward_steps);
        let runs: Vec<String> = each
            .map(|(&run, &forward)| {
                // A shot that ran its most steps was never quiet: say so.
                let never = if run == s.steps { " (never quiet)" } else { "" };
                format!("{run}, {forward}{never}")
            })
            .collect();
        ("steps run, forward steps", runs.join("; "))
    } else {
        let forward = s.forward_steps.first().copied().unwrap_or(0);
        ("forward steps / shot", forward.to_string())
    };
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
            format!("{:?} × {} m, nbl {}", s.shape, s.spacing, s.nbl),
        ),
        (
            "shots × receivers",
            format!("{} × {}", s.shots, s.receivers),
        ),
        ("time samples, dt", format!("{}, {:.3e} s", s.nt, s.dt)),
        (
            "schedule",
            format!(
                "{}, {} snapshots' memory = {} levels ({} slots on the GPU, {} in host memory{disk})",
                s.schedule,
                s.snaps,
                s.checkpoint_levels,
                shot0(&s.device_slots),
                shot0(&s.host_slots),
            ),
        ),
        (
            "batch",
            format!(
                "{} shot{} a dispatch, {:.3} dispatches / shot-step",
                s.batch,
                if s.batch == 1 { "" } else { "s" },
                s.dispatches_per_shot_step
            ),
        ),
        (
            "seconds / shot",
            match s.modelled_seconds_per_shot {
                Some(m) => format!("{:.3} s (modelled {m:.3} s)", s.measured_seconds_per_shot),
                None => format!("{:.3} s", s.measured_seconds_per_shot),
            },
        ),
        steps,
        ("recompute factor", format!("{:.3}", s.recompute_factor)),
        (
            "levels encoded / decoded",
            if s.checkpoint_format == "f32" {
                "none (f32)".into()
            } else {
                format!(
                    "{} / {} ({}, shot 0)",
                    shot0(&s.levels_encoded),
                    shot0(&s.levels_decoded),
                    s.checkpoint_format
                )
            },
        ),
        ("peak checkpoints on GPU", mb(s.peak_checkpoint_bytes)),
        ("spilled to host", mb(s.spilled_bytes)),
        (
            "to disk / read back",
            if args.disk.is_some() {
                format!(
                    "{} / {}",
                    mb(sum(&s.tiers.bytes_to_disk)),
                    mb(sum(&s.tiers.bytes_from_disk))
                )
            } else {
                "no disk tier".into()
            },
        ),
        ("misfit", format!("{:.6e}", s.misfit)),
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
    ])
}

/// Prints `(key, value)` rows as a two-column table.
fn table(rows: &[(&str, String)]) -> Result<(), String> {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let line = "─".repeat(width + 24);
    let mut text = format!("{line}\n");
    for (key, value) in rows {
        text += &format!("{key:<width$}{value:>24}\n");
    }
    text += &format!("{line}\n");
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| format!("writing the summary table to stdout: {e}"))
}

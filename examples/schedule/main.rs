//! Command-line checkpoint planner: what a Revolve (or store-all) run costs, as a table, as
//! JSON, as an action list, or as an SVG picture of the sweep; and what the same memory costs
//! with an adjoint that needs only its state, under Revolve's schedule (`p + 1`) and under the
//! level-optimal schedule (`2s` time levels).
//!
//! ```text
//! cargo run --release --example schedule -- --steps 1000 --snaps 10
//! cargo run --release --example schedule -- --steps 1000 --factor 3 --json
//! cargo run --release --example schedule -- --steps 60 --snaps 4 --svg levels.svg
//! cargo run --release --example schedule -- --steps 60 --snaps 4 --show revolve --svg revolve.svg
//! cargo run --release --example schedule -- --steps 30 --snaps 3 --gif docs/schedule.gif
//! cargo run --release --example schedule -- --steps 3000 --factor 3 --grid 400,400,300 \
//!     --device-memory 40000000000
//! ```

mod animation;
#[path = "../common/cli.rs"]
mod cli;

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use gpurevolve::compression::CheckpointFormat;
use gpurevolve::schedule::{
    Action, LevelOptimal, OnlineRun, Revolve, Schedule, ScheduleStats, StoreAll,
    min_snapshots_for_factor, repetition_number, simulate,
};

/// Plan a checkpointed adjoint run: Revolve's optimal schedule for N steps and S snapshots.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Number of time steps to reverse.
    #[arg(long, value_name = "N")]
    steps: u64,
    /// Snapshots, including the one holding the initial state.
    #[arg(long, value_name = "S", conflicts_with_all = ["factor", "store_all"])]
    snaps: Option<u64>,
    /// Instead of --snaps: the fewest snapshots that keep forward steps ≤ F × N.
    #[arg(long, value_name = "F", conflicts_with = "store_all")]
    factor: Option<f64>,
    /// Keep every state (the reference schedule) instead of Revolve.
    #[arg(long)]
    store_all: bool,
    /// Print exactly one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Also print every action, one per line.
    #[arg(long)]
    actions: bool,
    /// Draw the schedule into this SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<std::path::PathBuf>,
    /// Animate the schedule into this GIF file, one frame an action (at most 200 steps).
    #[arg(long, value_name = "FILE")]
    gif: Option<std::path::PathBuf>,
    /// The schedule --actions lists and --svg draws (the table and JSON report both).
    #[arg(long, value_enum, default_value = "levels")]
    show: Shown,
    /// How checkpoints store their time levels: `f32`, or `bf16` / `int8`, whose encoded
    /// levels fit more snapshots in the memory of --snaps f32 snapshots (every figure is then
    /// for that many, and the table shows the f32 level schedule's forward steps beside).
    #[arg(long, default_value = "f32", value_name = "f32|bf16|int8")]
    checkpoint_format: CheckpointFormat,
    /// Bytes of one time level, for the encoded size (int8 rounds each level up to whole
    /// blocks) [default: the main job's, 240 × 110 cells and its CPML's memory fields].
    #[arg(long, value_name = "BYTES", default_value_t = MAIN_JOB_LEVEL_BYTES)]
    level_bytes: u64,
    /// Instead of --level-bytes: the physical grid, `NX,NZ` or `NX,NY,NZ` cells, whose level
    /// size (with --nbl, --space-order and --boundary) the figures use.
    #[arg(
        long,
        value_name = "NX,[NY,]NZ",
        value_delimiter = ',',
        conflicts_with = "level_bytes"
    )]
    grid: Option<Vec<usize>>,
    /// Absorbing cells on each side of --grid.
    #[arg(long, default_value_t = 20, requires = "grid")]
    nbl: usize,
    /// Space order of --grid's stencil.
    #[arg(long, default_value_t = 8, requires = "grid")]
    space_order: usize,
    /// Absorbing layer of --grid: `cpml` (its memory fields are part of every level) or
    /// `sponge`.
    #[arg(
        long,
        default_value = "cpml",
        value_parser = ["cpml", "sponge"],
        requires = "grid"
    )]
    boundary: String,
    /// GPU bytes for checkpoints (the main job's --device-memory): also show, for this
    /// schedule in each checkpoint format, the checkpoint bytes it holds at its peak and what
    /// spills to host memory.
    #[arg(long, value_name = "BYTES")]
    device_memory: Option<u64>,
}

/// Bytes of a time level of the main job (200 × 70 cells with a 20-cell CPML, order 8: the
/// padded field and the layer's memory fields): its `summary.json`'s `checkpoint_bytes` over
/// `checkpoint_levels`.
const MAIN_JOB_LEVEL_BYTES: u64 = 229_056;

/// The most actions drawn into an SVG; beyond this the picture is unreadable and huge.
const SVG_MAX_ACTIONS: u64 = 100_000;

fn main() -> ExitCode {
    let args: Args = match cli::parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    cli::exit(run(&args))
}

/// What `--actions` and `--svg` show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Shown {
    /// The level-optimal schedule within the memory of --snaps two-level snapshots.
    Levels,
    /// Revolve's schedule with --snaps snapshots.
    Revolve,
}

/// The schedule shown, boxed so the rest of the program does not care which.
fn schedule(args: &Args, snaps: u64) -> Result<Box<dyn Schedule>, gpurevolve::Error> {
    Ok(if args.store_all {
        Box::new(StoreAll::new(args.steps)?)
    } else if args.show == Shown::Levels {
        match LevelOptimal::new(args.steps, 2 * snaps, 2) {
            Ok(plan) => Box::new(plan),
            Err(gpurevolve::Error::PlanTooLarge { .. }) => {
                Box::new(Revolve::new(args.steps, snaps)?)
            }
            Err(e) => return Err(e),
        }
    } else {
        Box::new(Revolve::new(args.steps, snaps)?)
    })
}

/// What the level-optimal schedule in the memory of `snaps` two-level snapshots (state 0
/// held) costs; the inner `Err` says why it was not planned (too large to plan in about a
/// second), the outer one is any other error.
fn level_plan(steps: u64, snaps: u64) -> Result<Result<ScheduleStats, String>, String> {
    match LevelOptimal::new(steps, 2 * snaps, 2) {
        Ok(plan) => Ok(Ok(simulate(plan).map_err(|e| e.to_string())?)),
        Err(e @ gpurevolve::Error::PlanTooLarge { .. }) => Ok(Err(e.to_string())),
        Err(e) => Err(e.to_string()),
    }
}

/// The level schedule with joins in the same memory ([`LevelOptimal::with_joins`]), or `None`
/// where it is not planned (too large for the whole-state programme, or for the joins', whose
/// planning has a smaller bound: the whole-state schedule then stands).
fn joined_level_plan(steps: u64, snaps: u64) -> Result<Option<ScheduleStats>, String> {
    match LevelOptimal::new(steps, 2 * snaps, 2) {
        Ok(plan) => {
            let joined = plan.with_joins();
            if !joined.joins() {
                return Ok(None);
            }
            Ok(Some(simulate(joined).map_err(|e| e.to_string())?))
        }
        Err(gpurevolve::Error::PlanTooLarge { .. }) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn run(args: &Args) -> Result<(), String> {
    let snaps = match (args.snaps, args.factor, args.store_all) {
        (Some(s), _, _) => s,
        (None, Some(f), _) => min_snapshots_for_factor(args.steps, f).map_err(|e| e.to_string())?,
        (None, None, true) => args.steps.saturating_sub(1).max(1),
        (None, None, false) => return Err("give --snaps S, --factor F or --store-all".into()),
    };
    // A lossy format: the memory of `snaps` f32 snapshots holds more encoded ones.
    let format = args.checkpoint_format;
    if !format.is_exact() && args.store_all {
        return Err(format!(
            "--store-all keeps exact states: it takes no --checkpoint-format {format}"
        ));
    }
    let level_bytes = match &args.grid {
        Some(grid) => grid_level_bytes(args, grid)?,
        None => args.level_bytes,
    };
    if level_bytes == 0 || !level_bytes.is_multiple_of(4) {
        return Err(format!(
            "--level-bytes {level_bytes}: a level is whole f32 values, a positive multiple of 4 \
             bytes"
        ));
    }
    if args.device_memory == Some(0) {
        return Err("--device-memory 0: give the GPU's bytes for checkpoints, above 0".into());
    }
    let memory_snaps = snaps;
    let f32_levels = if format.is_exact() || args.store_all {
        None
    } else {
        level_plan(args.steps, snaps)?.ok()
    };
    let snaps = if f32_levels.is_some() {
        let level = level_bytes.max(4);
        let held =
            u128::from(snaps) * u128::from(level) / u128::from(format.encoded_bytes(level).max(1));
        u64::try_from(held)
            .unwrap_or(u64::MAX)
            .min(args.steps.max(1))
    } else {
        snaps
    };
    let f32_forward = f32_levels.map(|s| s.state_adjoint_total_forward());
    let classic = if args.store_all {
        simulate(StoreAll::new(args.steps).map_err(|e| e.to_string())?)
    } else {
        simulate(Revolve::new(args.steps, snaps).map_err(|e| e.to_string())?)
    }
    .map_err(|e| e.to_string())?;
    let reps = repetition_number(args.steps, snaps).map_err(|e| e.to_string())?;
    let name = if args.store_all {
        "store-all"
    } else {
        "revolve"
    };
    // The level schedule, or Revolve's with a state-only adjoint where it is too large.
    let levels = if args.store_all {
        Ok(classic)
    } else {
        level_plan(args.steps, snaps)?
    };
    let joined = if args.store_all {
        None
    } else {
        joined_level_plan(args.steps, snaps)?
    };
    let (level_stats, fallback) = match &levels {
        Ok(stats) => (*stats, None),
        Err(why) => (classic, Some(why.as_str())),
    };
    if let Some(why) = fallback {
        eprintln!("{why}: the level figures are Revolve's schedule with a state-only adjoint");
    }
    // The same slots when n is not known until the run ends (online checkpointing).
    let online = if args.store_all {
        classic
    } else {
        simulate(OnlineRun::new(args.steps, snaps).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?
    };

    let shown = schedule(args, snaps).map_err(|e| e.to_string())?;
    let (shown_name, shown_stats, state_only) =
        if args.store_all || args.show == Shown::Revolve || fallback.is_some() {
            (name, classic, false)
        } else {
            ("levels", level_stats, true)
        };
    if args.actions {
        // stdout holds exactly one JSON object with --json, so the list goes to stderr then.
        for (i, action) in shown.enumerate() {
            if args.json {
                eprintln!("{i:>8}  {action}");
            } else {
                println!("{i:>8}  {action}");
            }
        }
    }
    if let Some(path) = &args.svg {
        if shown_stats.actions > SVG_MAX_ACTIONS {
            return Err(format!(
                "{} actions are too many to draw (at most {SVG_MAX_ACTIONS}); use fewer steps",
                shown_stats.actions
            ));
        }
        let svg = draw(
            schedule(args, snaps).map_err(|e| e.to_string())?,
            &shown_stats,
            shown_name,
            snaps,
            state_only,
        );
        std::fs::write(path, svg).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.gif {
        if args.steps > animation::MAX_STEPS || shown_stats.actions > animation::MAX_FRAMES {
            return Err(format!(
                "{} steps and {} actions are too many to animate (at most {} and {}); use fewer steps",
                args.steps,
                shown_stats.actions,
                animation::MAX_STEPS,
                animation::MAX_FRAMES
            ));
        }
        let shown = schedule(args, snaps).map_err(|e| e.to_string())?;
        let tiers = shown.tiers().unwrap_or_default();
        animation::write(path, shown, args.steps, &tiers, state_only)?;
    }
    let fits: Vec<FormatFit> = args
        .device_memory
        .map(|memory| {
            CheckpointFormat::ALL
                .iter()
                .map(|&f| FormatFit::new(f, level_stats.peak_levels, level_bytes, memory))
                .collect()
        })
        .unwrap_or_default();
    if args.json {
        let format = (format.name(), memory_snaps, f32_forward);
        println!(
            "{}",
            json(
                name,
                snaps,
                reps,
                &classic,
                &level_stats,
                joined.as_ref(),
                &online,
                fallback.is_some(),
                format,
                (level_bytes, args.device_memory, &fits),
            )
        );
    } else {
        print_table(
            name,
            snaps,
            reps,
            &classic,
            &level_stats,
            joined.as_ref(),
            &online,
            fallback.is_some(),
        );
        if let Some(f32_forward) = f32_forward {
            let forward = level_stats.state_adjoint_total_forward();
            println!(
                "{}: the memory of {memory_snaps} f32 snapshots holds {snaps}; levels: {forward} \
                 forward steps, against {f32_forward} in f32{}",
                format.name(),
                if forward > f32_forward {
                    " (at this level size the format's block scales cost more than it saves)"
                } else {
                    ""
                }
            );
        }
        if let Some(memory) = args.device_memory {
            println!(
                "on a GPU with {} for checkpoints, this schedule's {snaps} snapshots (peak {} \
                 levels of {} in f32):",
                bytes(memory),
                level_stats.peak_levels,
                bytes(level_bytes)
            );
            for fit in &fits {
                let verdict = if fit.spilled_bytes == 0 {
                    "all on the GPU".to_owned()
                } else {
                    format!(
                        "spills {} ({} of its levels) to host memory",
                        bytes(fit.spilled_bytes),
                        fit.spilled_levels
                    )
                };
                println!(
                    "  {:<6}{:>12}  {verdict}",
                    fit.format,
                    bytes(fit.peak_bytes)
                );
            }
        }
    }
    Ok(())
}

/// Bytes of a level of `grid` with the acoustic kernels' layout and absorbing layer.
#[cfg(feature = "acoustic")]
fn grid_level_bytes(args: &Args, grid: &[usize]) -> Result<u64, String> {
    use gpurevolve::acoustic::{BoundaryKind, level_bytes_of};
    let kind: BoundaryKind = args
        .boundary
        .parse()
        .map_err(|e| format!("--boundary: {e}"))?;
    level_bytes_of(grid, args.nbl, args.space_order, kind).map_err(|e| format!("--grid: {e}"))
}

/// Without the acoustic kernels the planner knows no grid layout.
#[cfg(not(feature = "acoustic"))]
fn grid_level_bytes(_: &Args, _: &[usize]) -> Result<u64, String> {
    Err(
        "--grid sizes a level as the acoustic kernels lay it out: build with the default \
         features (or give --level-bytes)"
            .into(),
    )
}

/// A schedule's checkpoints in one format on a GPU of `--device-memory` bytes for them.
#[derive(serde::Serialize)]
struct FormatFit {
    format: &'static str,
    /// Bytes held at the schedule's peak (its peak levels, each encoded).
    peak_bytes: u64,
    /// Bytes beyond the GPU's, and the levels they are: what spills to host memory.
    spilled_bytes: u64,
    spilled_levels: u64,
}

impl FormatFit {
    fn new(format: CheckpointFormat, peak_levels: u64, level_bytes: u64, memory: u64) -> Self {
        let level = format.encoded_bytes(level_bytes).max(1);
        let peak_bytes = peak_levels.saturating_mul(level);
        // Whole levels spill: a level the GPU cannot hold entirely goes to the host.
        let on_gpu = (memory / level).min(peak_levels);
        let spilled_levels = peak_levels - on_gpu;
        FormatFit {
            format: format.name(),
            peak_bytes,
            spilled_bytes: spilled_levels.saturating_mul(level),
            spilled_levels,
        }
    }
}

/// `n` bytes with a decimal unit and three significant digits.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.3} {}", UNITS[unit])
    }
}

/// `--json`: one object on one line, by serde. The keys are the planner's interface (CI reads
/// `level_total_forward` and `online_state_adjoint_total_forward`).
#[derive(serde::Serialize)]
struct PlannerJson<'a> {
    schedule: &'a str,
    steps: u64,
    snaps: u64,
    repetitions: u64,
    advances: u64,
    total_forward: u64,
    reverse_steps: u64,
    saves: u64,
    restores: u64,
    frees: u64,
    peak_slots: usize,
    actions: u64,
    recompute_factor: f64,
    state_adjoint_total_forward: u64,
    levels: u64,
    level_total_forward: u64,
    level_peak_levels: u64,
    level_fallback: bool,
    /// The level schedule with joins in the same memory (`None`: not planned).
    level_joins_total_forward: Option<u64>,
    level_joins_peak_levels: Option<u64>,
    online_total_forward: u64,
    online_state_adjoint_total_forward: u64,
    /// The checkpoint format, the memory given (in f32 snapshots), and for a lossy format the
    /// f32 level schedule's forward steps in that memory.
    checkpoint_format: &'a str,
    memory_snaps: u64,
    f32_level_total_forward: Option<u64>,
    /// Bytes of one f32 time level (--level-bytes, or --grid's).
    level_bytes: u64,
    /// With --device-memory: that budget, and the schedule's peak bytes and spill in each
    /// format (empty without it).
    device_memory: Option<u64>,
    formats: &'a [FormatFit],
}

#[allow(clippy::too_many_arguments)]
fn json<'a>(
    name: &'a str,
    snaps: u64,
    reps: u64,
    s: &ScheduleStats,
    levels: &ScheduleStats,
    joined: Option<&ScheduleStats>,
    online: &ScheduleStats,
    fallback: bool,
    (checkpoint_format, memory_snaps, f32_level_total_forward): (&'a str, u64, Option<u64>),
    (level_bytes, device_memory, formats): (u64, Option<u64>, &'a [FormatFit]),
) -> String {
    let report = PlannerJson {
        schedule: name,
        steps: s.steps,
        snaps,
        repetitions: reps,
        advances: s.advances,
        total_forward: s.total_forward,
        reverse_steps: s.reverse_steps,
        saves: s.saves,
        restores: s.restores,
        frees: s.frees,
        peak_slots: s.peak_slots,
        actions: s.actions,
        recompute_factor: s.recompute_factor(),
        state_adjoint_total_forward: s.state_adjoint_total_forward(),
        levels: 2 * snaps,
        level_total_forward: levels.state_adjoint_total_forward(),
        level_peak_levels: levels.peak_levels,
        level_fallback: fallback,
        level_joins_total_forward: joined.map(|j| j.state_adjoint_total_forward()),
        level_joins_peak_levels: joined.map(|j| j.peak_levels),
        online_total_forward: online.total_forward,
        online_state_adjoint_total_forward: online.state_adjoint_total_forward(),
        checkpoint_format,
        memory_snaps,
        f32_level_total_forward,
        level_bytes,
        device_memory,
        formats,
    };
    serde_json::to_string(&report).unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn print_table(
    name: &str,
    snaps: u64,
    reps: u64,
    s: &ScheduleStats,
    levels: &ScheduleStats,
    joined: Option<&ScheduleStats>,
    online: &ScheduleStats,
    fallback: bool,
) {
    let level_row = if fallback {
        format!("{} (Revolve's)", levels.state_adjoint_total_forward())
    } else {
        levels.state_adjoint_total_forward().to_string()
    };
    let joins_row = joined.map_or_else(
        || "not planned".to_owned(),
        |j| j.state_adjoint_total_forward().to_string(),
    );
    let rows: [(&str, String); 18] = [
        ("schedule", name.to_owned()),
        ("steps (n)", s.steps.to_string()),
        ("snapshots (s)", snaps.to_string()),
        ("repetition number (t)", reps.to_string()),
        ("advances (p)", s.advances.to_string()),
        ("forward steps (n + p)", s.total_forward.to_string()),
        (
            "state-only adjoint (p + 1)",
            s.state_adjoint_total_forward().to_string(),
        ),
        ("levels (2s): forward steps", level_row),
        ("levels: peak levels held", levels.peak_levels.to_string()),
        ("levels with joins", joins_row),
        (
            "online (n unknown): n + p",
            online.total_forward.to_string(),
        ),
        (
            "online: p + 1",
            online.state_adjoint_total_forward().to_string(),
        ),
        ("reverse steps", s.reverse_steps.to_string()),
        ("saves", s.saves.to_string()),
        ("restores", s.restores.to_string()),
        ("frees", s.frees.to_string()),
        ("peak slots", s.peak_slots.to_string()),
        ("recompute factor", format!("{:.4}", s.recompute_factor())),
    ];
    for (key, value) in rows {
        println!("{key:<28}{value:>16}");
    }
}

/// The classic picture: time steps across, work (forward and reverse step evaluations) down.
/// Advances are diagonal blue runs, reverses red runs back to the left, saves green dots,
/// restores orange rings, frees grey crosses. With a `state_only` adjoint a reverse is one
/// evaluation (the adjoint), not two.
fn draw(
    actions: impl Iterator<Item = Action>,
    stats: &ScheduleStats,
    name: &str,
    snaps: u64,
    state_only: bool,
) -> String {
    let (forward, per_reverse) = if state_only {
        (stats.state_adjoint_total_forward(), 1)
    } else {
        (stats.total_forward, 2)
    };
    let work = (forward + stats.reverse_steps).max(1) as f64;
    let (w, h, margin) = (800.0, 900.0, 60.0);
    let sx = (w - 2.0 * margin) / stats.steps as f64;
    let sy = (h - 2.0 * margin) / work;
    let x = |step: u64| margin + step as f64 * sx;
    let y = |t: u64| margin + t as f64 * sy;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"13\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{margin}\" y=\"24\" font-size=\"16\">{name}: n = {}, s = {snaps}, {} forward steps \
         (recompute factor {:.2})</text>\n\
         <text x=\"{margin}\" y=\"{}\">time step →</text>\n\
         <text x=\"16\" y=\"{margin}\" transform=\"rotate(90 16 {margin})\">work (step evaluations) →</text>\n",
        stats.steps,
        forward,
        forward as f64 / stats.steps.max(1) as f64,
        h - 20.0
    );
    let _ = writeln!(
        svg,
        "<text x=\"{}\" y=\"44\" fill=\"#1f77b4\">advance</text><text x=\"{}\" y=\"44\" fill=\"#d62728\">reverse</text>\
         <text x=\"{}\" y=\"44\" fill=\"#2ca02c\">save</text><text x=\"{}\" y=\"44\" fill=\"#ff7f0e\">restore</text>\
         <text x=\"{}\" y=\"44\" fill=\"#7f7f7f\">free</text>",
        margin,
        margin + 70.0,
        margin + 140.0,
        margin + 190.0,
        margin + 255.0
    );
    let r = (sx.min(sy * 4.0) * 0.35).clamp(1.0, 5.0);
    let mut t = 0u64;
    for action in actions {
        match action {
            Action::Advance { from, to } => {
                let _ = writeln!(
                    svg,
                    "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1f77b4\"/>",
                    x(from),
                    y(t),
                    x(to),
                    y(t + to - from)
                );
                t += to - from;
            }
            Action::Reverse { step } => {
                let _ = writeln!(
                    svg,
                    "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d62728\" stroke-width=\"2\"/>",
                    x(step + 1),
                    y(t),
                    x(step),
                    y(t + per_reverse)
                );
                t += per_reverse;
            }
            Action::Save { step, .. } => {
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"#2ca02c\"/>",
                    x(step),
                    y(t)
                );
            }
            // A join restores too: drawn as one, at the state it makes live.
            Action::Restore { step, .. } | Action::Join { step, .. } => {
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r:.1}\" fill=\"none\" stroke=\"#ff7f0e\"/>",
                    x(step),
                    y(t)
                );
            }
            Action::Free { step, .. } => {
                let (cx, cy) = (x(step), y(t));
                let _ = writeln!(
                    svg,
                    "<path d=\"M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}\" stroke=\"#7f7f7f\"/>",
                    cx - r,
                    cy - r,
                    cx + r,
                    cy + r,
                    cx - r,
                    cy + r,
                    cx + r,
                    cy - r
                );
            }
            Action::End => {}
        }
    }
    svg.push_str("</svg>\n");
    svg
}

//! The main job: an FWI gradient with Revolve checkpointing on the GPU.
//!
//! With no arguments: builds a Marmousi-like 2D model (the truth) and a smoothed starting
//! model, simulates observed data from the truth for three shots, and computes the misfit and
//! the gradient at the starting model, each shot reversed with Revolve checkpoints held in GPU
//! buffers. Writes pictures, `.npy` arrays and `summary.json` into `--out` (default `out/`).
//!
//! ```text
//! cargo run --release --example acoustic_adjoint
//! cargo run --release --example acoustic_adjoint -- --shots 5 --snaps 20 --out run1
//! cargo run --release --example acoustic_adjoint -- --nx 60 --ny 40 --nz 40 --tmax 0.6
//! ```

#[path = "../common/boundary.rs"]
mod boundary;
#[path = "../common/cli.rs"]
mod cli;
mod figure;
mod images;
#[path = "../common/logger.rs"]
mod logger;
mod ranks;
mod report;
#[path = "../common/runtime_dir.rs"]
mod runtime_dir;
mod setup;

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use clap::{Parser, ValueEnum};
use gpurevolve::acoustic::GpuAcoustic;
use gpurevolve::compression::CheckpointFormat;
use gpurevolve::fwi::{FwiGradient, Journal, ScheduleChoice};
use gpurevolve::gpu::Gpu;
use gpurevolve::job::{self, Batch, GradientJob, JobPlan, Placement, RunContext, RunPolicy};
use gpurevolve::schedule::{Schedule, Tier};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use setup::Setup;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModelKind {
    /// Folded, faulted layers under water (procedural from --seed).
    Marmousi,
    /// Three flat layers.
    Layers,
    /// A fast circular inclusion in a constant background.
    Circle,
    /// 2000 m/s everywhere.
    Constant,
}

/// FWI gradient with Revolve checkpointing on the GPU (gpurevolve's main job).
#[derive(Parser, Debug)]
#[command(version, about, allow_negative_numbers = true)]
struct Args {
    /// Cells along x.
    #[arg(long, default_value_t = 200)]
    nx: usize,
    /// Cells along y; giving it makes the run 3D.
    #[arg(long)]
    ny: Option<usize>,
    /// Cells along z (depth).
    #[arg(long, default_value_t = 70)]
    nz: usize,
    /// Grid spacing in metres.
    #[arg(long, default_value_t = 15.0)]
    spacing: f64,
    /// Absorbing cells on each side (20: the CPML echoes −45 dB of the record, BENCHMARKS.md).
    #[arg(long, default_value_t = 20)]
    nbl: usize,
    /// The absorbing layer: a convolutional PML, or the (cheaper in memory, echoing) sponge.
    #[arg(long, value_enum, default_value = "cpml")]
    boundary: boundary::BoundaryArg,
    /// Velocity (m/s) the absorbing layer is tuned for, the same for the true and the starting
    /// model [default: the larger of their largest velocities].
    #[arg(long)]
    boundary_velocity: Option<f64>,
    /// Space order of the Laplacian: 2, 4, 8 or 16.
    #[arg(long, default_value_t = 8)]
    space_order: usize,
    /// Time samples per trace (instead of --tmax).
    #[arg(long, conflicts_with = "tmax")]
    nt: Option<usize>,
    /// Recording time in seconds [default: 1.2].
    #[arg(long)]
    tmax: Option<f64>,
    /// Time step in seconds [default: 0.8 × the CFL limit].
    #[arg(long)]
    dt: Option<f64>,
    /// Peak frequency of the Ricker source in Hz.
    #[arg(long, default_value_t = 10.0)]
    f0: f64,
    /// Shots, spread evenly across the surface (one shot sits at the centre).
    #[arg(long, default_value_t = 3)]
    shots: usize,
    /// Source depth in metres [default: 2 cells].
    #[arg(long)]
    src_depth: Option<f64>,
    /// Receiver depth in metres, one receiver per grid column [default: 2 cells].
    #[arg(long)]
    rec_depth: Option<f64>,
    /// Built-in true model.
    #[arg(long, value_enum, default_value = "marmousi")]
    model: ModelKind,
    /// True model from a .npy file of velocities in m/s, shape (nx, nz) or (nx, ny, nz); sets
    /// the grid.
    #[arg(long, conflicts_with_all = ["model", "nx", "ny", "nz"])]
    model_npy: Option<PathBuf>,
    /// Starting model from a .npy file [default: the truth smoothed].
    #[arg(long)]
    initial_npy: Option<PathBuf>,
    /// Checkpoint memory, in snapshots of one shot's two time levels, held by each batch of
    /// shots: a batch of B shots gets snaps/B snapshots of its own [default: the fewest with
    /// which classic Revolve takes at most 3 forward steps per step].
    #[arg(long, conflicts_with = "store_all")]
    snaps: Option<u64>,
    /// Shots stepped together in each dispatch, or `auto`: the size of least modelled time per
    /// shot, from a step cost measured on the device (once per device and grid). A batch
    /// shares one schedule and the memory of --snaps, so raise --snaps with --batch. A batch
    /// larger than --shots holds them all; one larger than the device holds is refused, naming
    /// the largest that fits. With exact (f32) checkpoints the gradient's bits do not depend
    /// on it; a lossy format's do when it changes each batch's share of --snaps.
    #[arg(long, default_value = "1", value_name = "B|auto")]
    batch: Batch,
    /// How checkpoints store their time levels: `f32` (exact: the store-all gradient to the
    /// bit), `bf16` (half the bytes) or `int8` (one byte a value, a power-of-two scale per 64
    /// values). A lossy format fits more checkpoints in --snaps' memory, so fewer forward
    /// steps, and spills fewer bytes; its gradient is close to the exact one, not equal.
    #[arg(long, default_value = "f32", value_name = "f32|bf16|int8")]
    checkpoint_format: CheckpointFormat,
    /// The schedule within that memory: `levels` (the fewest forward steps: the acoustic
    /// adjoint needs only its state, and the memory is counted in time levels that
    /// consecutive states share), `revolve` (Revolve's binomial schedule, for comparison) or
    /// `classic` (Revolve as Revolve counts it: every reverse also recomputes its step). With
    /// f32 checkpoints every schedule gives the same gradient bits; a lossy format's bits
    /// depend on the schedule.
    #[arg(long, default_value = "levels", conflicts_with = "store_all")]
    schedule: ScheduleChoice,
    /// Keep every forward state (the reference; no recomputation).
    #[arg(long)]
    store_all: bool,
    /// Stop each shot once its wavefield is quiet: energy below FRACTION of its peak after
    /// the source has ended (1e-4, say), checked every 16 steps; --tmax or --nt is then the
    /// longest a shot runs. The checkpoints follow an online schedule in the memory of --snaps
    /// (--schedule does not apply); a shot's traces are zero after its last step.
    #[arg(long, value_name = "FRACTION", conflicts_with = "store_all")]
    until_quiet: Option<f64>,
    /// A directory for a third tier below host memory: the checkpoints beyond --host-memory
    /// go to files in a fresh subdirectory of it (removed at the end, on error and on
    /// Ctrl-C), each with a checksum verified when read back.
    #[arg(long, value_name = "DIR")]
    disk: Option<PathBuf>,
    /// Bytes of checkpoints on the disk tier [default: unlimited].
    #[arg(long, value_name = "BYTES", requires = "disk")]
    disk_memory: Option<u64>,
    /// GPU bytes for checkpoints, on each device; the checkpoints beyond it spill to host
    /// memory, the most used stay on the GPU [default: all on the GPU, spilling only if it
    /// runs out].
    #[arg(long)]
    device_memory: Option<u64>,
    /// Host bytes for spilled checkpoints [default: unlimited].
    #[arg(long)]
    host_memory: Option<u64>,
    /// How checkpoints are split between the GPU and host memory when --device-memory holds
    /// fewer than --snaps: `multistage` (the most used stay on the GPU) or `optimal` (the
    /// schedule of least cost for the step and transfer costs, measured or --costs: with
    /// --schedule levels the level schedule over GPU levels and host snapshots,
    /// "tiered-levels"; otherwise, or with --disk, whole snapshots in Revolve's split
    /// structure, "two-tier" or "cost-optimal").
    #[arg(long, default_value = "multistage", conflicts_with = "store_all")]
    placement: Placement,
    /// Costs for --placement optimal, in seconds: a forward step, a state's copy to host memory,
    /// and its copy back, as `STEP,TO_HOST,TO_GPU`; with --disk also to and from the disk tier,
    /// `STEP,TO_HOST,TO_GPU,TO_DISK,FROM_DISK` [default: measured]. With a lossy
    /// --checkpoint-format they are required (measured ones would tie the run's bits to
    /// timing): the copies of the encoded state, then the format's kernels on a state,
    /// `...,ENCODE,DECODE`, charged at every save and restore.
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        value_name = "STEP,TO_HOST,TO_GPU[,TO_DISK,FROM_DISK][,ENCODE,DECODE]"
    )]
    costs: Option<Vec<f64>>,
    /// Devices to spread the shots over: `all` (every hardware adapter, or the software one
    /// where there is none) or indices into that list, such as `0,2` (an index twice opens two
    /// devices on one adapter) [default: the best adapter alone]. The gradient is the same to
    /// the bit whatever the devices.
    #[arg(long, value_name = "all|I,J,...")]
    devices: Option<String>,
    /// Use the software adapter (Mesa's lavapipe: correct, not fast), even with a GPU.
    #[arg(long)]
    software: bool,
    /// Output folder. While the shots run, it holds a journal of those finished
    /// (`journal/`, removed at the end) for --resume.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Continue a run that was killed, with the same arguments: the shots its journal in --out
    /// holds are read back, not run again, and the results are the bits of an uninterrupted
    /// run. Without it, a run starts afresh. Under MPI, with the same number of ranks.
    #[arg(long)]
    resume: bool,
    /// Measure the costs that --costs takes, for this model, --checkpoint-format, --batch and
    /// --disk, print them as a --costs argument and exit without a gradient. Placement by cost
    /// with a lossy format needs its costs given (they choose the schedule, and so the bits):
    /// measure them once, then give them to every run.
    #[arg(long, conflicts_with_all = ["resume", "costs"])]
    measure_costs: bool,
    /// Seed of the Marmousi-like model.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Set by the first Ctrl-C: every running sweep stops at its next step, and the run unwinds,
/// removing the disk tier's files (a second Ctrl-C quits at once).
static STOP: AtomicBool = AtomicBool::new(false);

/// How long a run may take to stop after the first signal before it is ended outright.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether a sweep goes on after Ctrl-C.
fn go_on() -> ControlFlow<()> {
    if STOP.load(Ordering::Relaxed) {
        ControlFlow::Break(())
    } else {
        ControlFlow::Continue(())
    }
}

fn main() -> ExitCode {
    runtime_dir::set_if_missing();
    logger::init();
    let args: Args = match cli::parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    // Ctrl-C, SIGTERM and SIGHUP (the `termination` feature): the first stops every sweep at
    // its next step and the run unwinds, removing the disk tier's files; a second quits at
    // once, after removing them.
    let handler = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            gpurevolve::engine::remove_scratch_directories();
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping at the next step (a second signal quits at once)");
        // A phase with no step to stop at (reading a pipe nobody writes, a long plan) would
        // keep the process alive past the signal: it is ended after a grace period.
        std::thread::spawn(|| {
            std::thread::sleep(STOP_GRACE);
            eprintln!(
                "still running {} s after the signal: quitting",
                STOP_GRACE.as_secs()
            );
            gpurevolve::engine::remove_scratch_directories();
            std::process::exit(130);
        });
    });
    if let Err(e) = handler {
        eprintln!("warning: Ctrl-C and SIGTERM will not clean up the disk tier ({e})");
    }
    if args.measure_costs {
        let measured = measure_costs(&args);
        if measured.is_err() && STOP.load(Ordering::SeqCst) {
            eprintln!("interrupted: no costs measured");
            return ExitCode::from(130);
        }
        return cli::exit(measured);
    }
    let result = run(&args);
    if result.is_err() && STOP.load(Ordering::SeqCst) {
        // Stopped by a signal, its files removed: the shell's convention for an interrupt.
        let journal = args.out.join("journal");
        if journaled_shots(&journal) > 0 {
            eprintln!(
                "interrupted: the shots that finished are kept in {}; run the same command \
                 with --resume to go on from there",
                journal.display()
            );
        } else {
            eprintln!("interrupted: nothing was kept; run it again to finish");
        }
        return ExitCode::from(130);
    }
    cli::exit(result)
}

/// `--measure-costs`: the costs of the first shot's batch on the first device, as a --costs
/// argument on stdout.
fn measure_costs(args: &Args) -> Result<(), String> {
    gpurevolve::gpu::wait_deadline_from_env().map_err(err)?;
    let setup = setup::setup(args)?;
    let gpus = job::open_devices(args.devices.as_deref(), args.software).map_err(err)?;
    let policy = policy(args);
    let costs = job::measure_costs(&gpus[0], &setup.start_shots, &policy).map_err(err)?;
    if STOP.load(Ordering::SeqCst) {
        return Err("interrupted: no costs measured".into());
    }
    eprintln!(
        "measured on {} for {} checkpoints: {} seconds",
        gpus[0].adapter_info().name,
        policy.checkpoint_format,
        policy.cost_names().join(",")
    );
    let numbers: Vec<String> = costs.iter().map(|c| format!("{c:.3e}")).collect();
    writeln!(std::io::stdout().lock(), "--costs {}", numbers.join(","))
        .map_err(|e| format!("writing the costs to stdout: {e}"))
}

/// The shot records in `dir` and in its ranks' directories under it.
fn journaled_shots(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                journaled_shots(&path)
            } else {
                usize::from(e.file_name().to_string_lossy().starts_with("shot-"))
            }
        })
        .sum()
}

fn err(e: gpurevolve::Error) -> String {
    e.to_string()
}

/// The run policy of the command line: each option under its own name.
fn policy(args: &Args) -> RunPolicy {
    RunPolicy {
        snaps: args.snaps,
        store_all: args.store_all,
        schedule: args.schedule,
        placement: args.placement,
        costs: args.costs.clone(),
        until_quiet: args.until_quiet,
        device_memory: args.device_memory,
        host_memory: args.host_memory,
        disk: args.disk.clone(),
        disk_memory: args.disk_memory,
        batch: args.batch,
        checkpoint_format: args.checkpoint_format,
    }
}

/// The middle `y` slice of a 3D array `(nx, ny, nz)`; 2D arrays pass through.
fn slice(data: &[f64], shape: &[usize]) -> (Vec<f64>, usize, usize) {
    match *shape {
        [nx, ny, nz] => {
            let y = ny / 2;
            let out = (0..nx)
                .flat_map(|x| data[(x * ny + y) * nz..][..nz].to_vec())
                .collect();
            (out, nx, nz)
        }
        _ => (data.to_vec(), shape[0], shape[shape.len() - 1]),
    }
}

fn write_npy(path: &Path, shape: &[usize], data: &[f64]) -> Result<(), String> {
    let v: Vec<f32> = data.iter().map(|&x| x as f32).collect();
    gpurevolve::npy::write_f32(path, shape, &v).map_err(err)
}

/// Records the seconds since `since` under `name` and restarts the clock.
fn lap(timings: &mut Vec<(String, f64)>, name: &str, since: &mut Instant) {
    timings.push((name.into(), since.elapsed().as_secs_f64()));
    *since = Instant::now();
}

fn run(args: &Args) -> Result<(), String> {
    // The library reads it when a device opens and passes over a value it cannot use with a
    // warning; the command line refuses it.
    gpurevolve::gpu::wait_deadline_from_env().map_err(err)?;
    let ranks = ranks::Ranks::join()?;
    ranks.same_arguments()?;
    let clock = Instant::now();
    let mut timings = Vec::new();
    let mut since = Instant::now();
    // Everything that can fail on one rank alone, agreed before any rank goes on.
    let prepared = ranks.agree(prepare(args, &ranks, &mut timings, &mut since));
    let Prepared {
        setup,
        gpus,
        mine,
        job,
        plan,
    } = prepared?;
    let per_shot = plan.evaluations_per_shot();
    // Each process journals its finished shots in --out, for --resume: one process in
    // journal/, each MPI rank in a directory of its own under it (the ranks need not share a
    // file system, and a resume needs the same number of ranks).
    let journal_dir = if ranks.size() == 1 {
        args.out.join("journal")
    } else {
        args.out
            .join("journal")
            .join(format!("rank-{}-of-{}", ranks.rank(), ranks.size()))
    };
    let fingerprint = job.fingerprint(&plan, &gpus);
    let journal =
        ranks.agree(Journal::open(&journal_dir, fingerprint, args.resume).map_err(err))?;
    let finished = journal.finished();
    if !finished.is_empty() {
        eprintln!(
            "resuming: {} of {} shots finished earlier, read back from {}",
            finished.len(),
            mine.len(),
            journal_dir.display()
        );
    }
    let bar = ProgressBar::new(per_shot * mine.len() as u64).with_style(
        ProgressStyle::with_template(
            "{msg:>9} [{bar:40}] {percent:>3}% {pos}/{len} step evaluations, eta {eta}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    if !ranks.is_root() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_message("gradient");
    // Each shot's evaluations so far; the bar shows their sum (shots run side by side on
    // several devices).
    let mut each = vec![0u64; args.shots];
    for &i in &finished {
        each[i] = per_shot;
    }
    bar.set_position(each.iter().sum());
    let done = std::sync::Mutex::new(each);
    let result = ranks.gradient(&job, &plan, &gpus, &journal, |shot, p| {
        if let Ok(mut done) = done.lock() {
            done[shot] = p.done;
            bar.set_position(done.iter().sum());
        }
        go_on()
    })?;
    bar.finish_and_clear();
    // Rank 0 summarises and writes everything: it gathers the observed records. Its summary
    // is made before the records leave the job, and its error raised only after the
    // collectives below, which every rank must reach.
    let summary = result.as_ref().map(|result| {
        let mut context = RunContext::of_devices(&gpus);
        context.ranks = ranks.size();
        context.resumed_shots = finished;
        context.timings = std::mem::take(&mut timings);
        context.seed = Some(args.seed);
        let shown = job.shot_zero_schedule(&plan, result).map_err(err)?;
        Ok::<_, String>((job.summary(&plan, result, context).map_err(err)?, shown))
    });
    let start_shot = job.shots()[0].clone();
    let own = job.into_observed().into_iter().enumerate();
    let own = own.filter(|(i, _)| mine.contains(i)).collect();
    let observed = ranks.gather(args.shots, own)?;
    // The other ranks' shots have reached rank 0: their journals have served. Agreed (a
    // collective), so that rank 0 finds journal/ empty at the end.
    let mut journal = Some(journal);
    let removed = match journal.take_if(|_| !ranks.is_root()) {
        Some(theirs) => theirs.remove().map_err(err),
        None => Ok(()),
    };
    ranks.agree(removed)?;
    let (Some(result), Some(observed), Some(journal), Some(summary)) =
        (result, observed, journal, summary)
    else {
        return Ok(()); // not rank 0
    };
    let (mut summary, shown) = summary?;
    since = Instant::now();
    // Shot 0's placement as its run ended: the plan's, with any slot the GPU could not hold.
    let tiers = result.tiers.first().cloned().unwrap_or_default();
    let gradient = start_shot.model_gradient(&result.gradient).map_err(err)?;
    let outputs = Outputs {
        gradient: &gradient,
        result: &result,
        recomputes: plan.recomputes,
    };
    write_outputs(args, &setup, &observed, outputs, shown, &tiers)?;
    summary
        .timings
        .insert("output".into(), since.elapsed().as_secs_f64());
    summary
        .timings
        .insert("total".into(), clock.elapsed().as_secs_f64());
    let mut text = summary.to_json();
    text.push('\n');
    gpurevolve::fs::write_atomically(args.out.join("summary.json"), |w| {
        w.write_all(text.as_bytes())
    })
    .map_err(err)?;
    journal.remove().map_err(err)?;
    if ranks.size() > 1 {
        // Every other rank has removed its own (agreed above).
        let _ = std::fs::remove_dir(args.out.join("journal"));
    }
    // Last: everything is written, so a closed stdout loses the table alone.
    report::print_table(args, &summary)
}

/// What every rank prepares before the gradient.
struct Prepared {
    setup: Setup,
    gpus: Vec<Gpu>,
    /// The shots this rank runs.
    mine: Vec<usize>,
    /// The job, with the observed records of this rank's shots (empty for the others).
    job: GradientJob,
    plan: JobPlan,
}

/// The problems, the devices, this rank's observed data and the plan.
fn prepare(
    args: &Args,
    ranks: &ranks::Ranks,
    timings: &mut Vec<(String, f64)>,
    since: &mut Instant,
) -> Result<Prepared, String> {
    let policy = policy(args);
    policy.check().map_err(err)?;
    let mut setup = setup::setup(args)?;
    if ranks.is_root() {
        setup::lock_out(&args.out)?;
    }
    lap(timings, "model", since);

    let gpus = job::open_devices(args.devices.as_deref(), args.software).map_err(err)?;
    let gpu = &gpus[0];
    if ranks.is_root() {
        let adapter = gpus
            .iter()
            .map(|g| g.adapter_info().name.clone())
            .collect::<Vec<_>>()
            .join(" + ");
        let many = if ranks.size() > 1 {
            format!(", one of {} ranks", ranks.size())
        } else {
            String::new()
        };
        let software = if gpu.is_software() {
            " (software: correct, not fast)"
        } else {
            ""
        };
        eprintln!("GPU: {adapter}{software}{many}");
    }
    let mine = ranks.shots(args.shots);
    let mut observed = vec![Vec::new(); args.shots];
    for &i in &mine {
        let acoustic = GpuAcoustic::new(gpu, &setup.true_shots[i]).map_err(err)?;
        observed[i] = acoustic
            .forward_with_progress(false, |_| go_on())
            .map_err(err)?
            .traces;
    }
    fail_if_asked(ranks, &mut observed);
    lap(timings, "observed data", since);
    let shots = std::mem::take(&mut setup.start_shots);
    let job = GradientJob::new(shots, observed, policy).map_err(err)?;
    let plan = job.plan(gpu).map_err(err)?;
    Ok(Prepared {
        setup,
        gpus,
        mine,
        job,
        plan,
    })
}

/// A test hook for the failure of one rank: with `GPUREVOLVE_FAIL_RANK=r`, rank `r`'s
/// observed records are cut short, bad input that only that rank sees.
fn fail_if_asked(ranks: &ranks::Ranks, observed: &mut [Vec<f64>]) {
    let asked = std::env::var("GPUREVOLVE_FAIL_RANK").ok();
    if asked.and_then(|r| r.parse::<usize>().ok()) == Some(ranks.rank()) {
        for record in observed.iter_mut().filter(|r| !r.is_empty()) {
            record.pop();
        }
    }
}

/// What the run computed, for the files.
struct Outputs<'a> {
    /// The gradient of the physical model.
    gradient: &'a [f64],
    result: &'a FwiGradient,
    /// Whether every reverse recomputed its step (the sweep is drawn with that cost).
    recomputes: bool,
}

/// The arrays and pictures: gradient, models, data, and the schedule's sweep.
fn write_outputs(
    args: &Args,
    setup: &Setup,
    observed: &[Vec<f64>],
    outputs: Outputs<'_>,
    schedule: impl Schedule,
    tiers: &[Tier],
) -> Result<(), String> {
    let Outputs {
        gradient,
        result,
        recomputes,
    } = outputs;
    let out = &args.out;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let (truth, start) = (&setup.truth, &setup.start);
    let shape = truth.shape().to_vec();
    write_npy(&out.join("gradient.npy"), &shape, gradient)?;
    write_npy(&out.join("true_model.npy"), &shape, truth.velocity())?;
    write_npy(&out.join("initial_model.npy"), &shape, start.velocity())?;
    let (nt, nrec) = (setup.time.nt, setup.receivers);
    let obs_shape = if args.shots == 1 {
        vec![nt, nrec]
    } else {
        vec![args.shots, nt, nrec]
    };
    write_npy(&out.join("observed.npy"), &obs_shape, &observed.concat())?;
    let sequential = images::Colour::Sequential;
    let (tv, sx, sz) = slice(truth.velocity(), &shape);
    let h_km = truth.spacing() / 1000.0;
    let section = if shape.len() == 3 {
        ", centre slice"
    } else {
        ""
    };
    let in_km = |title: &str, bar: &str| figure::Figure {
        title: format!("{title}{section}"),
        across: figure::Axis {
            label: "x (km)".into(),
            first: 0.0,
            last: (sx - 1) as f64 * h_km,
        },
        down: figure::Axis {
            label: "depth (km)".into(),
            first: 0.0,
            last: (sz - 1) as f64 * h_km,
        },
        side: figure::Side::Bar(bar.into(), (0.0, 1.0)),
    };
    let model = |title| in_km(title, "velocity (m/s)");
    images::field(
        &out.join("true_model.png"),
        &tv,
        sx,
        sz,
        sequential,
        model("True model"),
    )?;
    let (iv, _, _) = slice(start.velocity(), &shape);
    let initial = model("Initial model");
    images::field(
        &out.join("initial_model.png"),
        &iv,
        sx,
        sz,
        sequential,
        initial,
    )?;
    let (gv, _, _) = slice(gradient, &shape);
    // Clip the colours (not the data) so the structure below the acquisition footprint shows.
    let clip = images::Colour::Diverging(images::abs_quantile(&gv, 0.98));
    let g = in_km(
        "Gradient dJ/dm, summed over shots; colours clipped at the 98th percentile",
        "dJ/dm (per s²/m²)",
    );
    images::field(&out.join("gradient.png"), &gv, sx, sz, clip, g)?;
    let receivers = &setup.true_shots[0].geometry().receivers;
    let x_of = |p: Option<&Vec<f64>>| p.map_or(0.0, |p| p[0] / 1000.0);
    let gather = figure::Figure {
        title: "Observed shot gather, shot 1; colours clipped at the 98th percentile".into(),
        across: figure::Axis {
            label: "receiver x (km)".into(),
            first: x_of(receivers.first()),
            last: x_of(receivers.last()),
        },
        down: figure::Axis {
            label: "time (s)".into(),
            first: 0.0,
            last: (nt - 1) as f64 * setup.time.dt,
        },
        side: figure::Side::Bar("pressure (arb.)".into(), (0.0, 1.0)),
    };
    images::gather(&out.join("shot_gather.png"), &observed[0], nt, nrec, gather)?;
    let steps = schedule.steps();
    let work = result
        .shots
        .first()
        .map_or(0, |s| s.forward_steps + s.reverse_steps);
    // The acoustic adjoint needs only its state; `--schedule classic` recomputes each step.
    let reverse_cost = if recomputes { 2 } else { 1 };
    images::schedule(
        &out.join("schedule.png"),
        schedule,
        steps,
        work,
        reverse_cost,
        tiers,
    )
}

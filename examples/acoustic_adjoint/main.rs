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

#[path = "../common/cli.rs"]
mod cli;
mod images;
mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use gpurevolve::acoustic::{AcousticOperator, Geometry, GpuAcoustic, Model, Problem, TimeAxis};
use gpurevolve::engine::{RevolverOptions, calibrate};
use gpurevolve::fwi::{self, Checkpointing};
use gpurevolve::gpu::Gpu;
use gpurevolve::schedule::{self, Multistage, Revolve, Schedule, Tier, TwoLevelCosts};
use indicatif::{ProgressBar, ProgressStyle};
use report::Json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Placement {
    /// Revolve's schedule; its most used slots stay on the GPU.
    Multistage,
    /// The schedule with the least cost for the step and transfer costs (measured by a short
    /// calibration, or --costs).
    Optimal,
}

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
    /// Absorbing cells on each side.
    #[arg(long, default_value_t = 16)]
    nbl: usize,
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
    /// Revolve snapshots per shot [default: the fewest with at most 3 forward steps per step].
    #[arg(long, conflicts_with = "store_all")]
    snaps: Option<u64>,
    /// Keep every forward state (the reference; no recomputation).
    #[arg(long)]
    store_all: bool,
    /// GPU bytes for checkpoints; the checkpoints beyond it spill to host memory, the most used
    /// stay on the GPU [default: all on the GPU, spilling only if it runs out].
    #[arg(long)]
    device_memory: Option<u64>,
    /// Host bytes for spilled checkpoints [default: unlimited].
    #[arg(long)]
    host_memory: Option<u64>,
    /// How checkpoints are split between the GPU and host memory when --device-memory holds
    /// fewer than --snaps.
    #[arg(
        long,
        value_enum,
        default_value = "multistage",
        conflicts_with = "store_all"
    )]
    placement: Placement,
    /// Costs for --placement optimal, in seconds: a forward step, a state's copy to host memory,
    /// and its copy back, as `STEP,TO_HOST,TO_GPU` [default: measured].
    #[arg(long, value_delimiter = ',', value_name = "STEP,TO_HOST,TO_GPU")]
    costs: Option<Vec<f64>>,
    /// Output folder.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Seed of the Marmousi-like model.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> ExitCode {
    let args: Args = match cli::parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    cli::exit(run(&args))
}

fn err(e: gpurevolve::Error) -> String {
    e.to_string()
}

fn truth_model(args: &Args) -> Result<Model, String> {
    let (h, nbl) = (args.spacing, args.nbl);
    if let Some(path) = &args.model_npy {
        return Model::from_npy(path, h, nbl).map_err(err);
    }
    let shape: Vec<usize> = match args.ny {
        Some(ny) => vec![args.nx, ny, args.nz],
        None => vec![args.nx, args.nz],
    };
    let depth = (args.nz.max(2) - 1) as f64 * h;
    match args.model {
        ModelKind::Marmousi => Model::marmousi_like(&shape, h, nbl, args.seed),
        ModelKind::Layers => Model::layered(
            &shape,
            h,
            nbl,
            &[(0.0, 1500.0), (0.25 * depth, 2000.0), (0.6 * depth, 2800.0)],
        ),
        ModelKind::Circle => {
            let radius = 0.2
                * shape
                    .iter()
                    .map(|&n| (n.max(2) - 1) as f64 * h)
                    .fold(f64::MAX, f64::min);
            Model::circle(&shape, h, nbl, 2000.0, 2500.0, radius)
        }
        ModelKind::Constant => Model::constant(&shape, h, nbl, 2000.0),
    }
    .map_err(err)
}

fn starting_model(args: &Args, truth: &Model) -> Result<Model, String> {
    match &args.initial_npy {
        Some(path) => {
            let m = Model::from_npy(path, args.spacing, args.nbl).map_err(err)?;
            if m.shape() != truth.shape() {
                return Err(format!(
                    "--initial-npy has shape {:?}, the true model {:?}; give a starting model on the same grid",
                    m.shape(),
                    truth.shape()
                ));
            }
            Ok(m)
        }
        None => Ok(truth.smoothed((truth.shape().iter().min().copied().unwrap_or(8) / 8).max(2))),
    }
}

/// Positions in metres, one coordinate per model axis.
type Points = Vec<Vec<f64>>;

/// One geometry per shot, `(sources, receivers)`: sources spread along x at the surface,
/// receivers at every column.
fn geometries(args: &Args, model: &Model) -> Result<Vec<(Points, Points)>, String> {
    if args.shots == 0 {
        return Err("--shots must be at least 1".into());
    }
    let extent = model.extent();
    let h = model.spacing();
    let (src_z, rec_z) = (
        args.src_depth.unwrap_or(2.0 * h),
        args.rec_depth.unwrap_or(2.0 * h),
    );
    let ex = extent[0];
    let mid_y = if model.dim() == 3 {
        Some(extent[1] / 2.0)
    } else {
        None
    };
    let point = |x: f64, y: Option<f64>, z: f64| -> Vec<f64> {
        match y {
            Some(y) => vec![x, y, z],
            None => vec![x, z],
        }
    };
    let shape = model.shape();
    let mut receivers = Vec::new();
    for ix in 0..shape[0] {
        if model.dim() == 3 {
            for iy in 0..shape[1] {
                receivers.push(point(ix as f64 * h, Some(iy as f64 * h), rec_z));
            }
        } else {
            receivers.push(point(ix as f64 * h, None, rec_z));
        }
    }
    Ok((0..args.shots)
        .map(|i| {
            let x = if args.shots == 1 {
                ex / 2.0
            } else {
                ex * (i as f64 + 0.5) / args.shots as f64
            };
            (vec![point(x, mid_y, src_z)], receivers.clone())
        })
        .collect())
}

fn checkpointing(args: &Args, steps: u64) -> Result<Checkpointing, String> {
    if args.store_all {
        return Ok(Checkpointing::StoreAll);
    }
    if let Some(s) = args.snaps {
        // Checked now, not after the run: --placement optimal builds no Revolve of its own.
        Revolve::new(steps, s).map_err(err)?;
        return Ok(Checkpointing::Snapshots(s));
    }
    Ok(Checkpointing::Snapshots(
        schedule::min_snapshots_for_factor(steps, 3.0).map_err(err)?,
    ))
}

/// `--placement optimal`: as many of the `snaps` snapshots on the GPU as `--device-memory`
/// holds, the rest in host memory, and the least-cost schedule for them.
fn two_tier(
    args: &Args,
    snaps: u64,
    state_bytes: u64,
    measure: impl FnOnce() -> Result<TwoLevelCosts, String>,
) -> Result<Checkpointing, String> {
    let snaps = usize::try_from(snaps).map_err(|e| e.to_string())?;
    let fits = |bytes: u64| usize::try_from(bytes / state_bytes).unwrap_or(usize::MAX);
    let device = args.device_memory.map_or(snaps, |b| fits(b).min(snaps));
    let host = snaps - device;
    if let Some(h) = args.host_memory
        && fits(h) < host
    {
        return Err(format!(
            "--host-memory {h} holds {} states of {state_bytes} bytes; the {snaps} snapshots need {host} there besides the {device} on the GPU: raise it or lower --snaps",
            fits(h)
        ));
    }
    let costs = match args.costs.as_deref() {
        Some(&[forward, host_write, host_read]) => TwoLevelCosts {
            forward,
            host_write,
            host_read,
        },
        Some(other) => {
            return Err(format!(
                "--costs takes three numbers, STEP,TO_HOST,TO_GPU in seconds; got {}",
                other.len()
            ));
        }
        None if host == 0 => TwoLevelCosts {
            // Nothing goes to the host: the plan is Revolve's whatever the transfers cost.
            forward: 1.0,
            host_write: 0.0,
            host_read: 0.0,
        },
        None => measure()?,
    };
    Ok(Checkpointing::TwoTier {
        device,
        host,
        costs,
    })
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
fn lap(timings: &mut Vec<(&'static str, f64)>, name: &'static str, since: &mut Instant) {
    timings.push((name, since.elapsed().as_secs_f64()));
    *since = Instant::now();
}

fn run(args: &Args) -> Result<(), String> {
    if args.costs.is_some() && args.placement != Placement::Optimal {
        return Err("--costs is used by --placement optimal only; add it, or drop --costs".into());
    }
    let clock = Instant::now();
    let mut timings: Vec<(&'static str, f64)> = Vec::new();
    let mut since = Instant::now();

    let truth = truth_model(args)?;
    let start = starting_model(args, &truth)?;
    let order = args.space_order;
    // The truth is the faster model, so its CFL bound holds for both.
    let probe = TimeAxis::new(&truth, order, 2, args.dt).map_err(err)?;
    let nt = match (args.nt, args.tmax) {
        (Some(nt), _) => nt,
        (None, tmax) => {
            let tmax = tmax.unwrap_or(1.2);
            if !(tmax.is_finite() && tmax > 0.0) {
                return Err(format!("--tmax must be positive seconds, got {tmax}"));
            }
            (tmax / probe.dt).round() as usize + 1
        }
    };
    let time = TimeAxis::new(&truth, order, nt, Some(probe.dt)).map_err(err)?;
    let geoms = geometries(args, &truth)?;
    let problems = |model: &Model| -> Result<Vec<Problem>, String> {
        geoms
            .iter()
            .map(|(s, r)| {
                let g = Geometry::new(model, s.clone(), r.clone(), args.f0).map_err(err)?;
                Problem::new(model.clone(), g, time, order).map_err(err)
            })
            .collect()
    };
    let (true_shots, start_shots) = (problems(&truth)?, problems(&start)?);
    lap(&mut timings, "model", &mut since);

    let gpu = Gpu::new().map_err(err)?;
    let adapter = gpu.adapter_info().name.clone();
    eprintln!(
        "GPU: {adapter}{}",
        if gpu.is_software() {
            " (software: correct, not fast)"
        } else {
            ""
        }
    );
    let nrec = geoms[0].1.len();
    let mut observed = Vec::with_capacity(args.shots);
    for p in &true_shots {
        observed.push(
            GpuAcoustic::new(&gpu, p)
                .map_err(err)?
                .forward(false)
                .map_err(err)?
                .traces,
        );
    }
    lap(&mut timings, "observed data", &mut since);

    let steps = time.steps() as u64;
    let state_bytes = 2 * 4 * start_shots[0].layout().len() as u64;
    let mut plan = checkpointing(args, steps)?;
    let revolve_snaps = match plan {
        Checkpointing::Snapshots(s) => Some(s),
        _ => None,
    };
    if let (Placement::Optimal, Some(s)) = (args.placement, revolve_snaps) {
        plan = two_tier(args, s, state_bytes, || {
            eprintln!("measuring step and transfer costs for --placement optimal");
            let mut probe =
                AcousticOperator::new(&gpu, &start_shots[0], &observed[0]).map_err(err)?;
            calibrate(&gpu, &mut probe, 5).map_err(err)
        })?;
    }
    let sched = plan.schedule(steps).map_err(err)?;
    let sim = schedule::simulate(sched.clone()).map_err(err)?;
    let per_shot = sim.total_forward + sim.reverse_steps;
    let bar = ProgressBar::new(per_shot * args.shots as u64).with_style(
        ProgressStyle::with_template(
            "{msg:>9} [{bar:40}] {percent:>3}% {pos}/{len} step evaluations, eta {eta}",
        )
        .map_err(|e| e.to_string())?
        .progress_chars("=> "),
    );
    bar.set_message("gradient");
    let options = RevolverOptions {
        device_budget: args.device_memory,
        host_budget: args.host_memory,
        ..RevolverOptions::default()
    };
    let result = fwi::gradient_with(&gpu, &start_shots, &observed, plan, options, |shot, p| {
        bar.set_position(shot as u64 * per_shot + p.done);
    })
    .map_err(err)?;
    bar.finish_and_clear();
    let (fwd_s, rev_s) = result.shots.iter().fold((0.0, 0.0), |(f, r), s| {
        (f + s.forward_seconds, r + s.reverse_seconds)
    });
    timings.push(("forward sweeps", fwd_s));
    timings.push(("reverse sweeps", rev_s));
    since = Instant::now();

    // Outputs.
    let out = &args.out;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let shape = truth.shape().to_vec();
    let gradient = start_shots[0]
        .crop(&result.gradient)
        .map_err(|e| e.to_string())?;
    write_npy(&out.join("gradient.npy"), &shape, &gradient)?;
    write_npy(&out.join("true_model.npy"), &shape, truth.velocity())?;
    write_npy(&out.join("initial_model.npy"), &shape, start.velocity())?;
    let obs: Vec<f64> = observed.concat();
    let obs_shape = if args.shots == 1 {
        vec![nt, nrec]
    } else {
        vec![args.shots, nt, nrec]
    };
    write_npy(&out.join("observed.npy"), &obs_shape, &obs)?;
    let (tv, sx, sz) = slice(truth.velocity(), &shape);
    images::field(
        &out.join("true_model.png"),
        &tv,
        sx,
        sz,
        images::Colour::Sequential,
    )?;
    let (iv, _, _) = slice(start.velocity(), &shape);
    images::field(
        &out.join("initial_model.png"),
        &iv,
        sx,
        sz,
        images::Colour::Sequential,
    )?;
    let (gv, _, _) = slice(&gradient, &shape);
    // Clip the colours (not the data) so the structure below the acquisition footprint shows.
    let clip = images::abs_quantile(&gv, 0.98);
    images::field(
        &out.join("gradient.png"),
        &gv,
        sx,
        sz,
        images::Colour::Diverging(clip),
    )?;
    images::gather(&out.join("shot_gather.png"), &observed[0], nt, nrec)?;
    let tiers = match sched.tiers() {
        Some(own) => own,
        None => Multistage::new(
            sched.clone(),
            state_bytes,
            args.device_memory,
            args.host_memory,
        )
        .map_err(err)?
        .tiers()
        .to_vec(),
    };
    let work = sim.total_forward + sim.reverse_steps;
    images::schedule(
        &out.join("schedule.png"),
        sched.clone(),
        steps,
        work,
        &tiers,
    )?;
    lap(&mut timings, "output", &mut since);
    timings.push(("total", clock.elapsed().as_secs_f64()));

    let (snaps, name) = match plan {
        Checkpointing::Snapshots(s) => (s, "revolve"),
        Checkpointing::StoreAll => (sched.slot_capacity() as u64, "store-all"),
        Checkpointing::TwoTier { .. } => (sched.slot_capacity() as u64, "two-level"),
        _ => (sched.slot_capacity() as u64, "other"),
    };
    let modelled = model_costs(plan, sched.clone(), &tiers, state_bytes, args)?;
    let peak = result
        .shots
        .iter()
        .map(|s| s.peak_checkpoint_bytes)
        .max()
        .unwrap_or(0);
    let ints = |f: fn(&gpurevolve::engine::RunStats) -> u64| {
        Json::Arr(result.shots.iter().map(|s| Json::Int(f(s))).collect())
    };
    let summary = Json::Obj(vec![
        ("adapter", Json::Str(adapter.clone())),
        ("dimensions", Json::Int(truth.dim() as u64)),
        (
            "shape",
            Json::Arr(shape.iter().map(|&n| Json::Int(n as u64)).collect()),
        ),
        ("spacing", Json::Num(truth.spacing())),
        ("nbl", Json::Int(truth.nbl() as u64)),
        ("space_order", Json::Int(order as u64)),
        ("shots", Json::Int(args.shots as u64)),
        ("receivers", Json::Int(nrec as u64)),
        ("nt", Json::Int(nt as u64)),
        ("dt", Json::Num(time.dt)),
        ("steps", Json::Int(steps)),
        ("schedule", Json::Str(name.into())),
        ("snaps", Json::Int(snaps)),
        (
            "placement",
            Json::Str(format!("{:?}", args.placement).to_lowercase()),
        ),
        ("device_slots", Json::Int(count(&tiers, Tier::DEVICE))),
        ("host_slots", Json::Int(count(&tiers, Tier::HOST))),
        ("modelled_cost", modelled.json()),
        ("forward_steps", ints(|s| s.forward_steps)),
        ("reverse_steps", ints(|s| s.reverse_steps)),
        ("saves", ints(|s| s.saves)),
        ("restores", ints(|s| s.restores)),
        ("recompute_factor", Json::Num(sim.recompute_factor())),
        ("peak_checkpoint_bytes", Json::Int(peak)),
        (
            "bytes_copied",
            Json::Int(result.shots.iter().map(|s| s.bytes_copied).sum()),
        ),
        (
            "spilled_bytes",
            Json::Int(result.shots.iter().map(|s| s.spilled_bytes).sum()),
        ),
        (
            "tiers",
            Json::Obj(vec![
                ("device_saves", ints(|s| s.saves - s.host_saves)),
                ("device_restores", ints(|s| s.restores - s.host_restores)),
                ("host_saves", ints(|s| s.host_saves)),
                ("host_restores", ints(|s| s.host_restores)),
                ("bytes_to_host", ints(|s| s.spilled_bytes)),
                ("bytes_to_device", ints(|s| s.restored_bytes)),
                ("out_of_memory_demotions", ints(|s| s.demotions)),
                ("peak_host_bytes", ints(|s| s.peak_host_bytes)),
            ]),
        ),
        ("misfit", Json::Num(result.misfit)),
        (
            "timings",
            Json::Obj(timings.iter().map(|&(k, v)| (k, Json::Num(v))).collect()),
        ),
        (
            "gradient_units",
            Json::Str(
                "dJ/dm, m = 1/c^2 in s^2/m^2; J = 1/2 sum (d - d_obs)^2, no dt weighting".into(),
            ),
        ),
        ("seed", Json::Int(args.seed)),
    ]);
    let mut text = String::new();
    summary.write(&mut text, 0);
    text.push('\n');
    std::fs::write(out.join("summary.json"), text).map_err(|e| format!("summary.json: {e}"))?;

    report::table(&[
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
            format!("{shape:?} × {} m, nbl {}", truth.spacing(), truth.nbl()),
        ),
        ("shots × receivers", format!("{} × {nrec}", args.shots)),
        ("time samples, dt", format!("{nt}, {:.3e} s", time.dt)),
        (
            "schedule",
            format!(
                "{name}, {snaps} snapshots ({} on the GPU, {} in host memory)",
                count(&tiers, Tier::DEVICE),
                count(&tiers, Tier::HOST)
            ),
        ),
        (
            "forward steps / shot",
            format!("{} (n + p)", sim.total_forward),
        ),
        ("recompute factor", format!("{:.3}", sim.recompute_factor())),
        (
            "peak checkpoints on GPU",
            format!("{:.1} MB", peak as f64 / 1e6),
        ),
        (
            "spilled to host",
            format!(
                "{:.1} MB",
                result.shots.iter().map(|s| s.spilled_bytes).sum::<u64>() as f64 / 1e6
            ),
        ),
        ("misfit", format!("{:.6e}", result.misfit)),
        ("forward / reverse", format!("{fwd_s:.2} s / {rev_s:.2} s")),
        ("total", format!("{:.2} s", clock.elapsed().as_secs_f64())),
        ("output", format!("{}/", out.display())),
    ]);
    Ok(())
}

fn count(tiers: &[Tier], tier: Tier) -> u64 {
    tiers.iter().filter(|t| **t == tier).count() as u64
}

/// For a two-level plan: its modelled cost, and that of Revolve's schedule with the same
/// snapshots placed by use (multistage), in the units of its costs.
struct Modelled {
    costs: Option<TwoLevelCosts>,
    optimal: f64,
    multistage: f64,
}

impl Modelled {
    fn json(&self) -> Json {
        let Some(c) = self.costs else {
            return Json::Null;
        };
        Json::Obj(vec![
            ("step", Json::Num(c.forward)),
            ("to_host", Json::Num(c.host_write)),
            ("to_gpu", Json::Num(c.host_read)),
            ("two_level", Json::Num(self.optimal)),
            ("multistage", Json::Num(self.multistage)),
        ])
    }
}

fn model_costs(
    plan: Checkpointing,
    schedule: impl Schedule,
    tiers: &[Tier],
    state_bytes: u64,
    args: &Args,
) -> Result<Modelled, String> {
    let Checkpointing::TwoTier {
        device,
        host,
        costs,
    } = plan
    else {
        return Ok(Modelled {
            costs: None,
            optimal: 0.0,
            multistage: 0.0,
        });
    };
    let steps = schedule.steps();
    let optimal = costs.evaluate(schedule, tiers);
    let revolve = Revolve::new(steps, (device + host) as u64).map_err(err)?;
    let placed = Multistage::new(
        revolve.clone(),
        state_bytes,
        Some(device as u64 * state_bytes),
        args.host_memory,
    )
    .map_err(err)?;
    let multistage = costs.evaluate(revolve, placed.tiers());
    Ok(Modelled {
        costs: Some(costs),
        optimal,
        multistage,
    })
}

//! How much of what the receivers record is the absorbing layer's echo: each layer width
//! against a domain so wide that no boundary echo returns within the record.
//!
//! ```text
//! cargo run --release --example boundary_echo                          # 2D, the main job's grid
//! cargo run --release --example boundary_echo -- --model layers --nbl 10,16,20,40
//! cargo run --release --example boundary_echo -- --dim 3 --nx 40 --nz 30 --tmax 0.45 --wide 60
//! cargo run --release --example boundary_echo -- --boundary cpml --nbl 20
//! ```
//!
//! The echo energy is `Σ (d − d_wide)² / Σ d_wide²` in dB over all receivers and samples,
//! with `d` the traces recorded with `nbl` absorbing cells and `d_wide` those of the same
//! shot, same physical grid and time step, with `--wide` cells. All runs share the boundary's
//! reference velocity (the model's largest). The wide run must be wide enough: the example
//! refuses a `--wide` whose own echo could return before `--tmax`. Its own layer is a sponge,
//! whose interior equations are the CPML's (`η = 0` and no memory terms there).
//!
//! Each run's wall time per step is printed too: the ratio of the CPML's to the sponge's at
//! one width is the CPML's cost per step (one process, same adapter).

#[path = "common/boundary.rs"]
mod boundary;
#[path = "common/cli.rs"]
mod cli;
#[path = "common/runtime_dir.rs"]
mod runtime_dir;

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use gpurevolve::acoustic::{
    Boundary, BoundaryKind, Geometry, GpuAcoustic, Model, Problem, TimeAxis,
};
use gpurevolve::gpu::Gpu;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// 2000 m/s everywhere.
    Constant,
    /// The main job's three flat layers: 1500, 2000 and 2800 m/s.
    Layers,
}

/// Boundary echo energy of the absorbing layer, against a wide-domain run.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The model.
    #[arg(long, value_enum, default_value = "constant")]
    model: Kind,
    /// 2 or 3 dimensions.
    #[arg(long, default_value_t = 2)]
    dim: usize,
    /// Physical cells along x (and y in 3D).
    #[arg(long, default_value_t = 200)]
    nx: usize,
    /// Physical cells along z.
    #[arg(long, default_value_t = 70)]
    nz: usize,
    /// Grid spacing in metres.
    #[arg(long, default_value_t = 15.0)]
    spacing: f64,
    /// Record length in seconds.
    #[arg(long, default_value_t = 1.2)]
    tmax: f64,
    /// Peak frequency of the Ricker source in Hz.
    #[arg(long, default_value_t = 10.0)]
    f0: f64,
    /// Space order.
    #[arg(long, default_value_t = 8)]
    space_order: usize,
    /// Layer widths to measure, in cells.
    #[arg(long, value_delimiter = ',', default_value = "10,16,20,40")]
    nbl: Vec<usize>,
    /// Absorbing cells of the reference run.
    #[arg(long, default_value_t = 200)]
    wide: usize,
    /// Absorbing layers to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "cpml,sponge")]
    boundary: Vec<boundary::BoundaryArg>,
}

fn main() -> ExitCode {
    runtime_dir::set_if_missing();
    let args: Args = match cli::parse() {
        Ok(args) => args,
        Err(code) => return code,
    };
    cli::exit(run(&args))
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn model(args: &Args, nbl: usize) -> Result<Model, String> {
    let shape: Vec<usize> = match args.dim {
        2 => vec![args.nx, args.nz],
        3 => vec![args.nx, args.nx, args.nz],
        d => return Err(format!("--dim must be 2 or 3, got {d}")),
    };
    let depth = (args.nz.max(2) - 1) as f64 * args.spacing;
    match args.model {
        Kind::Constant => Model::constant(&shape, args.spacing, nbl, 2000.0),
        Kind::Layers => Model::layered(
            &shape,
            args.spacing,
            nbl,
            &[(0.0, 1500.0), (0.25 * depth, 2000.0), (0.6 * depth, 2800.0)],
        ),
    }
    .map_err(err)
}

/// The main job's acquisition: a source at the centre two cells deep, a receiver on every
/// surface cell two cells deep (in 3D, along the centre line).
fn geometry(args: &Args, model: &Model) -> Result<Geometry, String> {
    let h = args.spacing;
    let extent = model.extent();
    let (x, z) = (extent[0] / 2.0, 2.0 * h);
    let (source, receivers): (Vec<f64>, Vec<Vec<f64>>) = if args.dim == 3 {
        let y = extent[1] / 2.0;
        (
            vec![x, y, z],
            (0..args.nx).map(|i| vec![i as f64 * h, y, z]).collect(),
        )
    } else {
        (
            vec![x, z],
            (0..args.nx).map(|i| vec![i as f64 * h, z]).collect(),
        )
    };
    Geometry::new(model, vec![source], receivers, args.f0).map_err(err)
}

/// One run's traces and its wall time per step in seconds.
fn traces(
    gpu: &Gpu,
    args: &Args,
    (nbl, kind): (usize, BoundaryKind),
    dt: f64,
    nt: usize,
) -> Result<(Vec<f64>, f64), String> {
    let model = model(args, nbl)?;
    let time = TimeAxis::new(&model, args.space_order, nt, Some(dt)).map_err(err)?;
    let boundary = Boundary::new(kind, model.max_velocity()).map_err(err)?;
    let problem = Problem::with_boundary(
        model.clone(),
        geometry(args, &model)?,
        time,
        args.space_order,
        boundary,
    )
    .map_err(err)?;
    let acoustic = GpuAcoustic::new(gpu, &problem).map_err(err)?;
    let clock = std::time::Instant::now();
    let traces = acoustic.forward(false).map_err(err)?.traces;
    Ok((traces, clock.elapsed().as_secs_f64() / (nt - 1) as f64))
}

fn run(args: &Args) -> Result<(), String> {
    if !(args.tmax.is_finite() && args.tmax > 0.0) {
        return Err(format!(
            "--tmax must be positive seconds, got {}",
            args.tmax
        ));
    }
    let probe = model(args, args.wide)?;
    // The wide run's own echo travels at least 2 × wide cells (into its layer and back)
    // beyond the farthest receiver's distance to the edge: it must not arrive in the record.
    let echo_path = 2.0 * args.wide as f64 * args.spacing;
    if echo_path / probe.max_velocity() <= args.tmax {
        return Err(format!(
            "--wide {} cells: its own echo could return after {:.3} s, within --tmax {}; widen it",
            args.wide,
            echo_path / probe.max_velocity(),
            args.tmax
        ));
    }
    let time = TimeAxis::new(&probe, args.space_order, 2, None).map_err(err)?;
    let nt = (args.tmax / time.dt).round() as usize + 1;
    let gpu = Gpu::new().map_err(err)?;
    println!(
        "{:?} model, {}D, {} × {} cells of {} m, order {}, {nt} samples, dt {:.3e} s; against {} cells; {}",
        args.model,
        args.dim,
        args.nx,
        args.nz,
        args.spacing,
        args.space_order,
        time.dt,
        args.wide,
        gpu.adapter_info().name
    );
    let (reference, _) = traces(&gpu, args, (args.wide, BoundaryKind::Sponge), time.dt, nt)?;
    let energy: f64 = reference.iter().map(|x| x * x).sum();
    if energy <= 0.0 {
        return Err("the wide run recorded nothing".into());
    }
    println!(
        "{:>6} {:>8} {:>18} {:>14}",
        "nbl", "layer", "echo energy (dB)", "ms per step"
    );
    for &nbl in &args.nbl {
        for layer in &args.boundary {
            let (d, per_step) = traces(&gpu, args, (nbl, layer.kind()), time.dt, nt)?;
            let echo: f64 = d
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            println!(
                "{nbl:>6} {:>8} {:>18.1} {:>14.3}",
                layer.kind().name(),
                10.0 * (echo / energy).log10(),
                1e3 * per_step
            );
        }
    }
    Ok(())
}

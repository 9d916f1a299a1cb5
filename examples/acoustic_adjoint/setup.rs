//! The problems the main job solves: the true and starting models, the time axis and one
//! acquisition geometry per shot.

use gpurevolve::acoustic::{Boundary, Model, Problem, TimeAxis};
use gpurevolve::job::{self, Batch};

use super::{Args, ModelKind, err};

/// Positions in metres, one coordinate per model axis.
type Points = Vec<Vec<f64>>;

/// The true and starting models and each shot's problem on both.
pub struct Setup {
    pub truth: Model,
    pub start: Model,
    pub time: TimeAxis,
    pub receivers: usize,
    pub true_shots: Vec<Problem>,
    pub start_shots: Vec<Problem>,
}

/// Builds everything from the command line, checking it all before any GPU work.
pub fn setup(args: &Args) -> Result<Setup, String> {
    // --measure-costs writes nothing, and needs the starting model's first batch alone.
    if !args.measure_costs {
        check_out(&args.out)?;
    }
    let truth = truth_model(args)?;
    let start = starting_model(args, &truth)?;
    let order = args.space_order;
    // The faster model's CFL bound holds for both (the start may be the faster one).
    let fastest = if start.max_velocity() > truth.max_velocity() {
        &start
    } else {
        &truth
    };
    let time = match args.nt {
        Some(nt) => TimeAxis::new(fastest, order, nt, args.dt),
        None => TimeAxis::for_duration(fastest, order, args.tmax.unwrap_or(1.2), args.dt),
    }
    .map_err(err)?;
    let geoms = geometries(args, &truth)?;
    // One boundary for both models: the observed and the synthetic data differ only where
    // the models do, and the gradient is the derivative of the misfit.
    let kind = args.boundary.kind();
    let boundary = match args.boundary_velocity {
        Some(v) => Boundary::new(kind, v),
        None => Boundary::for_models(kind, &[&truth, &start]),
    }
    .map_err(err)?;
    let (sources, receivers) = (&geoms.0, &geoms.1);
    let problems = |model: &Model, sources: &[Vec<f64>]| {
        job::survey(model, sources, receivers, args.f0, time, order, boundary).map_err(err)
    };
    // One shot first: the survey's host memory, for both models, is checked before the rest
    // exist.
    problems(&truth, &sources[..1])?[0]
        .check_survey(args.shots, 2)
        .map_err(err)?;
    let (true_shots, start_shots) = if args.measure_costs {
        let batch = match args.batch {
            Batch::Shots(b) => b.clamp(1, sources.len()),
            Batch::Auto => 1,
        };
        (Vec::new(), problems(&start, &sources[..batch])?)
    } else {
        (problems(&truth, sources)?, problems(&start, sources)?)
    };
    Ok(Setup {
        receivers: receivers.len(),
        truth,
        start,
        time,
        true_shots,
        start_shots,
    })
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

/// The survey's `(sources, receivers)`: one source per shot spread along x at the surface,
/// receivers at every column, the same for every shot.
fn geometries(args: &Args, model: &Model) -> Result<(Points, Points), String> {
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
    let per_shot = (model.dim() as u64 * 8 + 24)
        * (shape[0] as u64 * shape[1..].iter().product::<usize>() as u64
            / shape[shape.len() - 1] as u64
            + 1);
    gpurevolve::memory::check_host(
        &format!("the positions of {} shots", args.shots),
        gpurevolve::memory::product(&[args.shots as u64, per_shot]),
        "use fewer --shots",
    )
    .map_err(err)?;
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
    let sources = (0..args.shots)
        .map(|i| {
            let x = if args.shots == 1 {
                ex / 2.0
            } else {
                ex * (i as f64 + 0.5) / args.shots as f64
            };
            point(x, mid_y, src_z)
        })
        .collect();
    Ok((sources, receivers))
}

/// `--out` must be a folder this process can write, checked (and made) before the first step,
/// so that no computation is thrown away for want of a place to put it.
fn check_out(out: &std::path::Path) -> Result<(), String> {
    if out.exists() && !out.is_dir() {
        return Err(format!(
            "--out {}: this is a file; give a folder for the results",
            out.display()
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| {
        format!(
            "--out {}: cannot make the folder ({e}); give a writable folder",
            out.display()
        )
    })?;
    gpurevolve::fs::probe_writable(out).map_err(|e| {
        format!(
            "--out {}: cannot write there ({e}); give a writable folder",
            out.display()
        )
    })
}

/// Takes `--out` for this run: an exclusive lock on `.gpurevolve.lock` there, held until the
/// process ends (two runs into one folder would remove each other's journal), then removes
/// the temporaries a killed run's atomic writes left (`.NAME.tmp-PID-N`): with the lock held,
/// no one else is writing them.
pub fn lock_out(out: &std::path::Path) -> Result<(), String> {
    let path = out.join(".gpurevolve.lock");
    let file = std::fs::File::create(&path)
        .map_err(|e| format!("--out {}: cannot write there ({e})", out.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(format!(
                "--out {}: another run is writing there (it holds {}); give another folder, or \
                 wait for it",
                out.display(),
                path.display()
            ));
        }
        // A file system without locks: carry on unguarded.
        Err(std::fs::TryLockError::Error(_)) => {}
    }
    // Held for the process's life: the kernel releases it at exit, however the run ends.
    std::mem::forget(file);
    let journal = out.join("journal");
    let mut dirs = vec![out.to_path_buf(), journal.clone()];
    if let Ok(ranks) = std::fs::read_dir(&journal) {
        dirs.extend(ranks.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".tmp-") && entry.path().is_file() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

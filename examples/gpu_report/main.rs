//! The GPU report: what gpurevolve does on the GPU it runs on, in one table (and one JSON file).
//!
//! Run through `scripts/gpu-report.sh`, which runs the tests first and passes their outcome in
//! `--tests`. On a software adapter it refuses unless `--allow-software`, which runs small
//! cases labelled as such (CI does, so the report cannot rot).
//!
//! ```text
//! cargo run --release --example gpu_report -- --json report.json
//! cargo run --release --example gpu_report -- --allow-software
//! ```

#[path = "../common/cli.rs"]
mod cli;
mod measure;
mod transfers;

#[path = "../common/runtime_dir.rs"]
mod runtime_dir;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use gpurevolve::gpu::Gpu;

/// Measure gpurevolve on this machine's GPU: correctness against the float64 twin, kernel
/// throughput against a copy, checkpointing and spilling costs, and host-side cost per step.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Run on a software adapter (small cases, labelled as not GPU figures).
    #[arg(long)]
    allow_software: bool,
    /// Write the table as JSON here as well.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// The outcome of the test suite on this device, as the script ran it (`passed`,
    /// `failed: NAMES`, `skipped`).
    #[arg(long, default_value = "not run")]
    tests: String,
    /// Run only these sections (comma-separated: correctness, kernels, checkpointing,
    /// transfers, spilling, host, tuning) [default: all].
    #[arg(long, value_delimiter = ',', value_name = "SECTION,...")]
    only: Vec<Section>,
}

/// The report's sections, for `--only`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Section {
    Correctness,
    Kernels,
    Checkpointing,
    Transfers,
    Spilling,
    Host,
    Tuning,
}

/// One figure of the report.
#[derive(serde::Serialize)]
pub struct Row {
    section: &'static str,
    case: String,
    what: String,
    value: f64,
    unit: &'static str,
}

impl Row {
    pub fn new(
        section: &'static str,
        case: &str,
        what: &str,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Row {
            section,
            case: case.to_owned(),
            what: what.to_owned(),
            value,
            unit,
        }
    }
}

/// Sizes: a data-centre GPU's (the issue's cases), or small ones for a software adapter.
struct Sizes {
    grids_2d: &'static [usize],
    grid_3d: &'static [usize],
    reps: usize,
    checkpoint_edge: usize,
    checkpoint_steps: u64,
    spill_edge: usize,
    spill_steps: u64,
    /// One checkpoint level for the transfer pieces.
    transfer_bytes: u64,
    workgroups_2d: &'static [[u32; 3]],
    workgroups_3d: &'static [[u32; 3]],
    submits: &'static [usize],
}

const GPU_SIZES: Sizes = Sizes {
    grids_2d: &[4096, 4096],
    grid_3d: &[384, 384, 384],
    reps: 50,
    checkpoint_edge: 1024,
    checkpoint_steps: 2000,
    spill_edge: 1024,
    spill_steps: 1000,
    // A level of the main job's 2000 × 800 grid with its layer, about 7 MB; 64 MB too.
    transfer_bytes: 7 << 20,
    workgroups_2d: &[
        [64, 4, 1],
        [32, 8, 1],
        [128, 2, 1],
        [256, 1, 1],
        [16, 16, 1],
        [32, 4, 1],
    ],
    workgroups_3d: &[[32, 4, 2], [64, 2, 2], [32, 8, 1], [16, 8, 4], [64, 4, 1]],
    submits: &[4, 16, 32, 128],
};

const SOFTWARE_SIZES: Sizes = Sizes {
    grids_2d: &[192, 192],
    grid_3d: &[40, 40, 40],
    reps: 8,
    checkpoint_edge: 48,
    checkpoint_steps: 200,
    spill_edge: 48,
    spill_steps: 200,
    transfer_bytes: 1 << 20,
    workgroups_2d: &[[64, 4, 1], [16, 16, 1]],
    workgroups_3d: &[[32, 4, 2], [8, 8, 4]],
    submits: &[8, 32],
};

fn run(args: &Args) -> Result<(), String> {
    let clock = Instant::now();
    let gpu = Gpu::new().map_err(|e| e.to_string())?;
    let info = gpu.adapter_info().clone();
    let software = gpu.is_software();
    if software && !args.allow_software {
        return Err(format!(
            "`{}` is a software adapter: its timings say nothing about a GPU; install the GPU's Vulkan driver, or pass --allow-software for a labelled run on small cases",
            info.name
        ));
    }
    let label = if software {
        "SOFTWARE ADAPTER: small cases, CPU timings, not GPU figures"
    } else {
        "GPU"
    };
    eprintln!(
        "adapter: {} ({:?}, {:?}, driver {} {}) — {label}",
        info.name, info.device_type, info.backend, info.driver, info.driver_info
    );
    let sizes = if software {
        &SOFTWARE_SIZES
    } else {
        &GPU_SIZES
    };
    let mut rows = Vec::new();
    // A section that fails is reported and the rest still run: on a lent GPU the time is
    // short, and one case the device refuses must not cost every other figure. Each
    // section's rows are printed as it ends, so a run cut off by a time limit keeps them.
    let mut failed: Vec<String> = Vec::new();
    let mut section = |name: &str, result: Result<Vec<Row>, gpurevolve::Error>| {
        let at = clock.elapsed().as_secs_f64();
        match result {
            Ok(found) => {
                eprintln!("{name}: done at {at:.0} s");
                for row in &found {
                    eprintln!(
                        "  {} | {} | {} {}",
                        row.case,
                        row.what,
                        figure(row.value),
                        row.unit
                    );
                }
                rows.extend(found);
            }
            Err(e) => {
                eprintln!("{name}: FAILED at {at:.0} s: {e}");
                failed.push(format!("{name}: {e}"));
            }
        }
    };
    let wanted = |s: Section| args.only.is_empty() || args.only.contains(&s);
    if wanted(Section::Correctness) {
        section("correctness", measure::correctness(&gpu));
    }
    // A GPU left idle (by the CPU-bound twin above, say) drops its clocks, and a short case
    // measured right after ran at half speed on an H100: each timed case starts busy.
    let warm = |gpu: &Gpu| {
        if !software && let Err(e) = transfers::warm_up(gpu, 0.5) {
            eprintln!("warm-up: {e}");
        }
    };
    if wanted(Section::Kernels) {
        for order in [2, 4, 8, 16] {
            warm(&gpu);
            section(
                "kernels 2D",
                measure::kernels(&gpu, sizes.grids_2d, order, sizes.reps),
            );
        }
        warm(&gpu);
        section(
            "kernels 3D",
            measure::kernels(&gpu, sizes.grid_3d, 8, sizes.reps),
        );
    }
    if wanted(Section::Checkpointing) {
        section(
            "checkpointing",
            measure::checkpointing(&gpu, sizes.checkpoint_edge, sizes.checkpoint_steps),
        );
    }
    if wanted(Section::Transfers) {
        section(
            "transfers",
            transfers::transfers(&gpu, sizes.transfer_bytes, sizes.reps.min(20)),
        );
    }
    if wanted(Section::Spilling) {
        section(
            "spilling",
            measure::spilling(&gpu, sizes.spill_edge, sizes.spill_steps),
        );
    }
    if wanted(Section::Host) {
        section("host cost", measure::host_cost(&gpu, 256));
    }
    if wanted(Section::Tuning) {
        // The tuning knobs, swept: the best is printed; GpuOptions and RevolverOptions set
        // them.
        let (edge, n) = (sizes.checkpoint_edge, sizes.checkpoint_steps);
        section(
            "tuning 2D",
            measure::workgroup_sweep(sizes.grids_2d, sizes.workgroups_2d, sizes.reps),
        );
        section(
            "tuning 3D",
            measure::workgroup_sweep(sizes.grid_3d, sizes.workgroups_3d, sizes.reps),
        );
        section(
            "tuning CPML",
            measure::cpml_sweep(&[sizes.grids_2d, sizes.grid_3d], sizes.reps),
        );
        section(
            "tuning submissions",
            measure::submit_sweep(&gpu, edge, n / 2, sizes.submits),
        );
    }
    let seconds = clock.elapsed().as_secs_f64();

    println!(
        "gpurevolve GPU report — {} ({:?}) — {label}",
        info.name, info.backend
    );
    println!("tests on this device: {}", args.tests);
    let mut last = ("", String::new());
    for row in &rows {
        if (row.section, &row.case) != (last.0, &last.1) {
            println!("\n{} — {}", row.section, row.case);
            last = (row.section, row.case.clone());
        }
        println!("  {:<52} {:>12} {}", row.what, figure(row.value), row.unit);
    }
    println!("\n{} figures in {seconds:.0} s", rows.len());
    for failure in &failed {
        println!("FAILED: {failure}");
    }
    // The tests' bound for GPU against the float64 twin.
    let wrong: Vec<String> = rows
        .iter()
        .filter(|r| r.section == "correctness" && (r.value.is_nan() || r.value > 1e-5))
        .map(|r| format!("{} {} = {:e}", r.case, r.what, r.value))
        .collect();
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "adapter": info.name,
            "backend": format!("{:?}", info.backend),
            "device_type": format!("{:?}", info.device_type),
            "driver": format!("{} {}", info.driver, info.driver_info),
            "software": software.to_string(),
            "label": label,
            "tests": args.tests,
            "seconds": seconds,
            "failed": failed,
            "rows": rows,
        });
        let mut text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        text.push('\n');
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if !failed.is_empty() {
        return Err(format!(
            "{} section(s) failed: {}",
            failed.len(),
            failed.join("; ")
        ));
    }
    if !wrong.is_empty() {
        return Err(format!(
            "this device's results differ from the float64 twin beyond 1e-5: {}",
            wrong.join("; ")
        ));
    }
    Ok(())
}

/// Four significant digits, in plain notation where that stays short.
fn figure(x: f64) -> String {
    let magnitude = x.abs();
    if x == 0.0 || (1e-3..1e5).contains(&magnitude) {
        let decimals = (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.3e}")
    }
}

fn main() -> ExitCode {
    runtime_dir::set_if_missing();
    match cli::parse::<Args>() {
        Ok(args) => cli::exit(run(&args)),
        Err(code) => code,
    }
}

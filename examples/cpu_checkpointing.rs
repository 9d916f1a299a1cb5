//! Checkpointing a CPU time stepper: the gradient of a Lorenz-96 misfit with respect to the
//! initial state and the forcing, reversed under Revolve with the states in host memory. No
//! GPU: it runs with `--no-default-features` too.
//!
//! Two styles, as in pyrevolve:
//! - *modernised* (the default): a [`CpuOperator`] and a [`MemoryStore`] handed to
//!   [`Revolver::on_cpu`], then `apply_forward()` / `apply_reverse()`;
//! - *classic* (`--classic`): the program iterates the schedule's actions and keeps the states
//!   itself.
//!
//! Either way the run is repeated with every state stored, and the gradients must agree bit for
//! bit.
//!
//! ```text
//! cargo run --release --example cpu_checkpointing -- --steps 2000 --snaps 20
//! cargo run --release --example cpu_checkpointing -- --steps 2000 --snaps 20 --classic
//! ```

#[path = "common/cli.rs"]
mod cli;
#[path = "common/lorenz96.rs"]
mod lorenz96;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use gpurevolve::engine::{MemoryStore, Revolver, RevolverOptions};
use gpurevolve::schedule::{Revolve, Schedule, StoreAll};
use lorenz96::{Gradient, Lorenz96, Lorenz96Operator, classic_gradient};

/// Reverse a Lorenz-96 run with Revolve checkpoints in host memory and check its gradient
/// against the store-all one.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Time steps (dt = 0.002).
    #[arg(long, default_value_t = 2000)]
    steps: u64,
    /// Snapshots, including the one holding the initial state.
    #[arg(long, default_value_t = 20)]
    snaps: u64,
    /// Variables of the Lorenz-96 system (at least 4).
    #[arg(long, default_value_t = 40)]
    vars: usize,
    /// Drive the schedule by hand (pyrevolve's classic interface) instead of the Revolver.
    #[arg(long)]
    classic: bool,
    /// Seed of the random initial state and observations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The gradient and the forward steps it took, in the chosen style.
fn gradient(
    problem: &Lorenz96,
    schedule: impl Schedule,
    classic: bool,
) -> Result<(Gradient, u64), String> {
    if classic {
        return Ok(classic_gradient(problem, schedule));
    }
    let store = MemoryStore::new(schedule.slot_capacity(), 8 * problem.x0.len() as u64);
    let operator = Lorenz96Operator::new(problem.clone());
    let mut revolver = Revolver::on_cpu(operator, store, schedule, RevolverOptions::default())
        .map_err(|e| e.to_string())?;
    revolver.apply_forward().map_err(|e| e.to_string())?;
    let stats = revolver.apply_reverse().map_err(|e| e.to_string())?;
    let (operator, _) = revolver.into_backend().into_parts();
    Ok((operator.finish(), stats.forward_steps))
}

fn run(args: &Args) -> Result<(), String> {
    if args.vars < 4 {
        return Err(format!(
            "--vars must be at least 4 (the stencil's width), got {}",
            args.vars
        ));
    }
    let steps = usize::try_from(args.steps).map_err(|e| e.to_string())?;
    let problem = Lorenz96::synthetic(args.vars, steps, 8.0, 8.5, args.seed);
    let revolve = Revolve::new(args.steps, args.snaps).map_err(|e| e.to_string())?;
    let store_all = StoreAll::new(args.steps).map_err(|e| e.to_string())?;

    let start = Instant::now();
    let (checkpointed, forward) = gradient(&problem, revolve, args.classic)?;
    let checkpointed_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let (reference, reference_forward) = gradient(&problem, store_all, args.classic)?;
    let reference_seconds = start.elapsed().as_secs_f64();

    let bits = |g: &Gradient| {
        let mut v: Vec<u64> = g.d_x0.iter().map(|x| x.to_bits()).collect();
        v.extend([g.misfit.to_bits(), g.d_forcing.to_bits()]);
        v
    };
    if !checkpointed.misfit.is_finite() {
        return Err(format!(
            "the run diverged (misfit {}); use fewer --steps",
            checkpointed.misfit
        ));
    }
    let same = bits(&checkpointed) == bits(&reference);
    let norm = checkpointed.d_x0.iter().map(|g| g * g).sum::<f64>().sqrt();
    let style = if args.classic {
        "classic (actions by hand)"
    } else {
        "modernised (Revolver::on_cpu)"
    };
    println!("style                  {style}");
    println!("steps, snapshots       {}, {}", args.steps, args.snaps);
    println!("misfit J               {:.12e}", checkpointed.misfit);
    println!("|dJ/dx0|               {norm:.12e}");
    println!("dJ/dF                  {:.12e}", checkpointed.d_forcing);
    println!("forward steps          {forward} (store-all {reference_forward})");
    println!(
        "wall time              {checkpointed_seconds:.3} s (store-all {reference_seconds:.3} s)"
    );
    println!(
        "equal to store-all     {}",
        if same { "bit for bit" } else { "NO" }
    );
    if same {
        Ok(())
    } else {
        Err("the checkpointed gradient differs from the store-all gradient".into())
    }
}

fn main() -> ExitCode {
    match cli::parse::<Args>() {
        Ok(args) => cli::exit(run(&args)),
        Err(code) => code,
    }
}

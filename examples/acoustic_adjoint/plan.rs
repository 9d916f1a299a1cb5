//! How each shot keeps its states: the schedule from `--snaps`/`--schedule`/`--store-all`,
//! the two-tier plan of `--placement optimal`, and the modelled costs reported for it.

use gpurevolve::fwi::Checkpointing;
use gpurevolve::schedule::{
    self, AnySchedule, Multistage, Planned, Revolve, Schedule, Tier, TwoLevelCosts,
};

use super::report::Json;
use super::{Args, Placement, err};

/// The checkpointing for `steps` steps with states of `state_bytes`; `measure` calibrates
/// the step and transfer costs when `--placement optimal` needs them and `--costs` is absent.
pub fn checkpointing(
    args: &Args,
    steps: u64,
    state_bytes: u64,
    measure: impl FnOnce() -> Result<TwoLevelCosts, String>,
) -> Result<Checkpointing, String> {
    if args.store_all {
        return Ok(Checkpointing::StoreAll);
    }
    let snaps = match args.snaps {
        Some(s) => {
            // Checked now, not after the run: --placement optimal builds no Revolve of its own.
            Revolve::new(steps, s).map_err(err)?;
            s
        }
        None => schedule::min_snapshots_for_factor(steps, 3.0).map_err(err)?,
    };
    if let Some(fraction) = args.until_quiet {
        // The fraction is checked with the rest of the command line (setup).
        if args.placement == Placement::Optimal {
            return Err("--until-quiet plans online, without the costs --placement optimal needs: use --placement multistage".into());
        }
        // As Revolve's choice: state 0 is rebuilt, so its slot holds nothing.
        return Ok(Checkpointing::UntilQuiet {
            snaps: (snaps + 1).min(steps),
            fraction,
        });
    }
    match args.placement {
        Placement::Multistage => Ok(args.schedule.choice().checkpointing(snaps, steps)),
        Placement::Optimal => two_tier(args, snaps, state_bytes, measure),
    }
}

/// What the schedule will do, for the progress bar and the report: its own plan, or for an
/// online run the plan of a run that lasts its most steps.
pub fn planned(checkpointing: Checkpointing, schedule: &AnySchedule) -> Result<Planned, String> {
    let own = match checkpointing {
        Checkpointing::UntilQuiet { snaps, .. } => {
            schedule::OnlineRun::new(schedule.steps(), snaps)
                .map_err(err)?
                .planned()
        }
        _ => schedule.planned(),
    };
    own.map_err(err)?
        .ok_or_else(|| "the schedule does not plan itself".to_owned())
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

/// Slots in `tier`.
pub fn count(tiers: &[Tier], tier: Tier) -> u64 {
    tiers.iter().filter(|t| **t == tier).count() as u64
}

/// For a two-level plan: its modelled cost, and that of Revolve's schedule with the same
/// snapshots placed by use (multistage), in the units of its costs.
pub struct Modelled {
    costs: Option<TwoLevelCosts>,
    optimal: f64,
    multistage: f64,
}

impl Modelled {
    pub fn json(&self) -> Json {
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

/// The modelled costs of `plan` run as `schedule` on `tiers` (its own placement).
pub fn model_costs(
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

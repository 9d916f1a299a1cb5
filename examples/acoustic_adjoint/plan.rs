//! How each shot keeps its states: the schedule from `--snaps`/`--schedule`/`--store-all`,
//! the two-tier plan of `--placement optimal`, and the modelled costs reported for it.

use gpurevolve::fwi::{Checkpointing, ThreeTierCosts};
use gpurevolve::schedule::{
    self, AnySchedule, LevelOptimal, Multistage, Planned, Revolve, Schedule, Tier, TierCost,
    TwoTier, TwoTierCosts,
};

use super::report::Json;
use super::{Args, Placement, ScheduleKind, err};

/// The checkpointing for `steps` steps with states of `state_bytes`; `measure` calibrates
/// the step and transfer costs when `--placement optimal` needs them and `--costs` is absent.
pub fn checkpointing(
    args: &Args,
    steps: u64,
    state_bytes: u64,
    measure: impl FnOnce() -> Result<TwoTierCosts, String>,
    measure_disk: impl FnOnce() -> Result<TierCost, String>,
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
        Placement::Optimal if args.disk.is_some() => {
            three_tier(args, snaps, state_bytes, measure, measure_disk)
        }
        Placement::Optimal if args.schedule == ScheduleKind::Levels => {
            tiered_levels(args, snaps, state_bytes, measure)
        }
        Placement::Optimal => two_tier(args, snaps, state_bytes, measure),
    }
}

/// `--placement optimal` with `--disk`: as many snapshots on the GPU as `--device-memory`
/// holds, then in host memory as `--host-memory` holds, the rest on disk, and the least-cost
/// schedule over the three tiers.
fn three_tier(
    args: &Args,
    snaps: u64,
    state_bytes: u64,
    measure: impl FnOnce() -> Result<TwoTierCosts, String>,
    measure_disk: impl FnOnce() -> Result<TierCost, String>,
) -> Result<Checkpointing, String> {
    let snaps = usize::try_from(snaps).map_err(|e| e.to_string())?;
    let fits = |bytes: u64| usize::try_from(bytes / state_bytes).unwrap_or(usize::MAX);
    let device = args.device_memory.map_or(snaps, |b| fits(b).min(snaps));
    let host = args
        .host_memory
        .map_or(snaps - device, |b| fits(b).min(snaps - device));
    let disk = snaps - device - host;
    if let Some(d) = args.disk_memory
        && fits(d) < disk
    {
        return Err(format!(
            "--disk-memory {d} holds {} states of {state_bytes} bytes; the {snaps} snapshots need {disk} there besides {device} on the GPU and {host} in host memory: raise it or lower --snaps",
            fits(d)
        ));
    }
    let costs = match args.costs.as_deref() {
        Some(&[forward, to_host, to_gpu, to_disk, from_disk]) => ThreeTierCosts {
            forward,
            host: TierCost {
                write: to_host,
                read: to_gpu,
            },
            disk: TierCost {
                write: to_disk,
                read: from_disk,
            },
        },
        Some(other) => {
            return Err(format!(
                "--costs with --disk takes five numbers, STEP,TO_HOST,TO_GPU,TO_DISK,FROM_DISK in seconds; got {}",
                other.len()
            ));
        }
        None => {
            let two = measure()?;
            let disk = if disk == 0 {
                TierCost::default()
            } else {
                measure_disk()?
            };
            ThreeTierCosts {
                forward: two.forward,
                host: TierCost {
                    write: two.host_write,
                    read: two.host_read,
                },
                disk,
            }
        }
    };
    Ok(Checkpointing::ThreeTier {
        device,
        host,
        disk,
        costs,
    })
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
    measure: impl FnOnce() -> Result<TwoTierCosts, String>,
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
    let costs = two_tier_costs(args, host > 0, measure)?;
    Ok(Checkpointing::TwoTier {
        device,
        host,
        costs,
    })
}

/// `--placement optimal` with the level schedule: as many of the `2 · snaps` levels on the GPU
/// as `--device-memory` holds, the rest as whole snapshots in host memory, and the least-cost
/// level schedule for them.
fn tiered_levels(
    args: &Args,
    snaps: u64,
    state_bytes: u64,
    measure: impl FnOnce() -> Result<TwoTierCosts, String>,
) -> Result<Checkpointing, String> {
    let level_bytes = (state_bytes / 2).max(1);
    let total = 2 * snaps;
    let levels = args
        .device_memory
        .map_or(total, |b| (b / level_bytes).min(total));
    let host = (total - levels) / 2;
    if let Some(h) = args.host_memory
        && h / state_bytes < host
    {
        return Err(format!(
            "--host-memory {h} holds {} states of {state_bytes} bytes; the {snaps} snapshots' memory needs {host} there besides {levels} levels on the GPU: raise it or lower --snaps",
            h / state_bytes
        ));
    }
    let costs = two_tier_costs(args, host > 0, measure)?;
    Ok(Checkpointing::TieredLevels {
        levels,
        host,
        costs,
    })
}

/// `--costs` as a step and the two copies, or measured when anything goes to the host.
fn two_tier_costs(
    args: &Args,
    host: bool,
    measure: impl FnOnce() -> Result<TwoTierCosts, String>,
) -> Result<TwoTierCosts, String> {
    Ok(match args.costs.as_deref() {
        Some(&[forward, host_write, host_read]) => TwoTierCosts {
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
        // Nothing goes to the host: the plan is the GPU's alone whatever the copies cost.
        None if !host => TwoTierCosts {
            forward: 1.0,
            host_write: 0.0,
            host_read: 0.0,
        },
        None => measure()?,
    })
}

/// Slots in `tier`.
pub fn count(tiers: &[Tier], tier: Tier) -> u64 {
    tiers.iter().filter(|t| **t == tier).count() as u64
}

/// For a plan by cost: its modelled cost, and in the units of its costs those of the
/// alternatives in the same memory: the same kind of schedule with its slots placed by use
/// (multistage; `None` when that does not fit the tiers' memory), and for the level schedule
/// Revolve's shape over whole snapshots.
pub struct Modelled {
    costs: Option<TwoTierCosts>,
    /// The disk tier's costs, for a three-tier plan.
    disk: Option<TierCost>,
    /// The key of `optimal` in the report.
    name: &'static str,
    optimal: f64,
    multistage: Option<f64>,
    /// Other plans in the same memory, by name.
    others: Vec<(&'static str, f64)>,
}

impl Modelled {
    pub fn json(&self) -> Json {
        let Some(c) = self.costs else {
            return Json::Null;
        };
        let mut fields = vec![
            ("step", Json::Num(c.forward)),
            ("to_host", Json::Num(c.host_write)),
            ("to_gpu", Json::Num(c.host_read)),
        ];
        match self.disk {
            Some(d) => fields.extend([
                ("to_disk", Json::Num(d.write)),
                ("from_disk", Json::Num(d.read)),
                ("cost_optimal", Json::Num(self.optimal)),
            ]),
            None => fields.push((self.name, Json::Num(self.optimal))),
        }
        fields.push(("multistage", self.multistage.map_or(Json::Null, Json::Num)));
        fields.extend(self.others.iter().map(|&(k, v)| (k, Json::Num(v))));
        Json::Obj(fields)
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
    if let Checkpointing::ThreeTier {
        device,
        host,
        disk,
        costs,
    } = plan
    {
        let tiered = costs.tiered();
        let steps = schedule.steps();
        let optimal = tiered.evaluate(schedule, tiers);
        let revolve = Revolve::new(steps, (device + host + disk) as u64).map_err(err)?;
        let plan = schedule::planned(revolve.clone()).map_err(err)?;
        let budgets = [
            Some(device as u64 * state_bytes),
            Some(host as u64 * state_bytes),
            None,
        ];
        let placed = Multistage::over_tiers(
            &plan.slot_uses,
            plan.stats.peak_slots,
            state_bytes,
            &budgets,
        )
        .map_err(err)?;
        return Ok(Modelled {
            costs: Some(TwoTierCosts {
                forward: costs.forward,
                host_write: costs.host.write,
                host_read: costs.host.read,
            }),
            disk: Some(costs.disk),
            name: "cost_optimal",
            optimal,
            multistage: Some(tiered.evaluate(revolve, placed.tiers())),
            others: Vec::new(),
        });
    }
    if let Checkpointing::TieredLevels {
        levels,
        host,
        costs,
    } = plan
    {
        // Against, in the same memory: the level schedule with its slots placed by use (a
        // host slot holds a whole state there, so it may not fit), and Revolve's shape by cost.
        let steps = schedule.steps();
        let optimal = costs.evaluate(schedule, tiers);
        let by_use = LevelOptimal::from_rest(steps, levels + 2 * host, 2).map_err(err)?;
        let placed = Multistage::new(
            by_use.clone(),
            state_bytes,
            Some(levels * state_bytes / 2),
            Some(host * state_bytes),
        );
        let multistage = placed.ok().map(|p| costs.evaluate(by_use, p.tiers()));
        // Revolve's shape holds state 0 in one of its GPU snapshots (given one more, it could
        // put state 0 in host memory and hold more on the GPU than these levels).
        let device = usize::try_from(levels / 2).map_err(|e| e.to_string())?;
        let host_slots = usize::try_from(host).map_err(|e| e.to_string())?;
        let two_tier = TwoTier::new(steps, device.max(1), host_slots, costs).map_err(err)?;
        let tiers = two_tier.tiers();
        return Ok(Modelled {
            costs: Some(costs),
            disk: None,
            name: "tiered_levels",
            optimal,
            multistage,
            others: vec![("two_tier", costs.evaluate(two_tier, &tiers))],
        });
    }
    let Checkpointing::TwoTier {
        device,
        host,
        costs,
    } = plan
    else {
        return Ok(Modelled {
            costs: None,
            disk: None,
            name: "",
            optimal: 0.0,
            multistage: None,
            others: Vec::new(),
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
        disk: None,
        name: "two_tier",
        optimal,
        multistage: Some(multistage),
        others: Vec::new(),
    })
}

//! For a plan by cost: its modelled cost, and in the same units those of the alternatives in
//! the same memory, so that a run says what placing by cost bought it.

use serde::{Deserialize, Serialize};

use crate::fwi::Checkpointing;
use crate::schedule::{
    self, LevelOptimal, Multistage, Revolve, Schedule, Tier, TieredCosts, TwoTier,
};

/// The costs a plan by cost used and what they model, in seconds (or multiples of a step):
/// `summary.json`'s `modelled_cost`. The key of the plan's own cost is its schedule's name
/// (`two_tier`, `tiered_levels`, `cost_optimal`); `multistage` is the same memory placed by
/// use (`None` where that does not fit the tiers' budgets).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelledCost {
    /// A forward step.
    pub step: f64,
    /// A state's copy to host memory.
    pub to_host: f64,
    /// A state's copy back to the GPU.
    pub to_gpu: f64,
    /// A state's copy to the disk tier (three tiers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_disk: Option<f64>,
    /// A state's copy back from the disk tier (three tiers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_disk: Option<f64>,
    /// The cost-optimal schedule over three tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_optimal: Option<f64>,
    /// The level schedule by cost, over GPU levels and host snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiered_levels: Option<f64>,
    /// Revolve's shape by cost over two tiers (also the alternative to `tiered_levels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_tier: Option<f64>,
    /// The same memory placed by use.
    pub multistage: Option<f64>,
}

/// The modelled costs of `plan` run as `schedule` on `tiers` (its own placement); `None` for
/// a plan placed by use. `host_memory` bounds the host tier of the alternatives.
///
/// An alternative that cannot be made (a level plan too large to make, a placement that
/// does not fit the budgets) is left out (`None`).
pub fn modelled_cost(
    plan: Checkpointing,
    schedule: impl Schedule,
    tiers: &[Tier],
    state_bytes: u64,
    host_memory: Option<u64>,
) -> Option<ModelledCost> {
    let steps = schedule.steps();
    match plan {
        Checkpointing::ThreeTier {
            device,
            host,
            disk,
            costs,
        } => {
            let optimal = costs.evaluate(schedule, tiers);
            let budgets = [
                Some(device as u64 * state_bytes),
                Some(host as u64 * state_bytes),
                None,
            ];
            let by_use = revolve_by_use(steps, device + host + disk, state_bytes, &budgets, &costs);
            Some(ModelledCost {
                step: costs.forward,
                to_host: costs.tier(Tier::HOST).write,
                to_gpu: costs.tier(Tier::HOST).read,
                to_disk: Some(costs.tier(Tier::DISK).write),
                from_disk: Some(costs.tier(Tier::DISK).read),
                cost_optimal: Some(optimal),
                multistage: by_use,
                ..ModelledCost::default()
            })
        }
        Checkpointing::TieredLevels {
            levels,
            host,
            costs,
        } => {
            // Against, in the same memory: the level schedule with its slots placed by use (a
            // host slot holds a whole state there, so it may not fit), and Revolve's shape by
            // cost.
            let optimal = costs.evaluate(schedule, tiers);
            // Each alternative is left out where it cannot be made (a level plan too large,
            // a placement that does not fit): the run itself is not at stake.
            let multistage = LevelOptimal::from_rest(steps, levels + 2 * host, 2)
                .ok()
                .and_then(|by_use| {
                    let placed = Multistage::new(
                        by_use.clone(),
                        state_bytes,
                        Some(levels * state_bytes / 2),
                        Some(host * state_bytes),
                    );
                    placed.ok().map(|p| costs.evaluate(by_use, p.tiers()))
                });
            // Revolve's shape holds state 0 in one of its GPU snapshots.
            let device = usize::try_from(levels / 2).unwrap_or(usize::MAX);
            let host_slots = usize::try_from(host).unwrap_or(usize::MAX);
            let two_tier = TwoTier::new(steps, device.max(1), host_slots, &costs)
                .ok()
                .map(|two| {
                    let placement = two.tiers();
                    costs.evaluate(two, &placement)
                });
            Some(ModelledCost {
                step: costs.forward,
                to_host: costs.tier(Tier::HOST).write,
                to_gpu: costs.tier(Tier::HOST).read,
                tiered_levels: Some(optimal),
                two_tier,
                multistage,
                ..ModelledCost::default()
            })
        }
        Checkpointing::TwoTier {
            device,
            host,
            costs,
        } => {
            let optimal = costs.evaluate(schedule, tiers);
            let budgets = [Some(device as u64 * state_bytes), host_memory];
            let by_use = revolve_by_use(steps, device + host, state_bytes, &budgets, &costs);
            Some(ModelledCost {
                step: costs.forward,
                to_host: costs.tier(Tier::HOST).write,
                to_gpu: costs.tier(Tier::HOST).read,
                two_tier: Some(optimal),
                multistage: by_use,
                ..ModelledCost::default()
            })
        }
        _ => None,
    }
}

/// Revolve with `snaps` snapshots, its slots placed by use on tiers of `budgets` (fastest
/// first): its modelled cost under `costs`, or `None` where it cannot be made or does not fit.
fn revolve_by_use(
    steps: u64,
    snaps: usize,
    state_bytes: u64,
    budgets: &[Option<u64>],
    costs: &TieredCosts,
) -> Option<f64> {
    let revolve = Revolve::new(steps, snaps as u64).ok()?;
    let plan = schedule::planned(revolve.clone()).ok()?;
    let placed =
        Multistage::over_tiers(&plan.slot_uses, plan.stats.peak_slots, state_bytes, budgets)
            .ok()?;
    Some(costs.evaluate(revolve, placed.tiers()))
}

//! The cost-optimal schedule for two memory tiers: `m` fast (GPU) slots whose saves and
//! restores are free, `d` slow (host) slots that cost `host_write` to fill and `host_read` to
//! restore, and `forward` per recomputed step. The two-tier case of
//! [`CostOptimal`](super::CostOptimal), which documents the dynamic program.

use super::action::{Action, Planned, Schedule, Tier};
use super::cost_optimal::{CostOptimal, TierCost, TieredCosts};
use crate::error::Result;

/// Unit costs of the two-tier model (seconds, or multiples of a forward step).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TwoTierCosts {
    /// One recomputed forward step.
    pub forward: f64,
    /// Saving a checkpoint to the slow tier (a device → host copy).
    pub host_write: f64,
    /// Restoring a checkpoint from the slow tier (a host → device copy).
    pub host_read: f64,
}

impl TwoTierCosts {
    /// The cost of running `actions` with slots placed on `tiers`:
    /// `forward · advances + host_write · host saves + host_read · host restores`.
    pub fn evaluate(&self, actions: impl IntoIterator<Item = Action>, tiers: &[Tier]) -> f64 {
        let on_host = |slot: usize| tiers.get(slot) != Some(&Tier::DEVICE);
        actions.into_iter().fold(0.0, |cost, action| {
            cost + match action {
                Action::Advance { from, to } => self.forward * (to - from) as f64,
                Action::Save { slot, .. } if on_host(slot) => self.host_write,
                Action::Restore { slot, .. } if on_host(slot) => self.host_read,
                _ => 0.0,
            }
        })
    }
}

impl From<TwoTierCosts> for TieredCosts {
    /// The GPU tier free, the host tier at the given costs.
    fn from(c: TwoTierCosts) -> Self {
        TieredCosts {
            forward: c.forward,
            tiers: vec![
                TierCost::default(),
                TierCost {
                    write: c.host_write,
                    read: c.host_read,
                },
            ],
        }
    }
}

/// The cost-optimal two-tier schedule: an iterator of actions whose slots `0..m` are fast and
/// `m..m + d` slow (see [`TwoTier::tiers`]).
///
/// ```
/// use gpurevolve::schedule::{min_advances, simulate, TwoTier, TwoTierCosts};
/// // Free host copies: the optimum is Revolve's with all 2 + 3 slots.
/// let free = TwoTierCosts { forward: 1.0, host_write: 0.0, host_read: 0.0 };
/// let s = TwoTier::new(100, 2, 3, free)?;
/// assert_eq!(s.cost(), min_advances(100, 5)? as f64);
/// simulate(s)?;
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct TwoTier {
    plan: CostOptimal,
}

impl TwoTier {
    /// Plans `steps` steps with `fast` GPU slots and `slow` host slots under `costs`.
    ///
    /// # Errors
    /// As [`CostOptimal::new`].
    pub fn new(steps: u64, fast: usize, slow: usize, costs: TwoTierCosts) -> Result<Self> {
        Ok(Self {
            plan: CostOptimal::new(steps, &[fast, slow], &costs.into())?,
        })
    }

    /// The least cost: `forward · advances + host_write · host saves + host_read · host
    /// restores` (the recording and adjoint steps, the same for every schedule, excluded).
    pub fn cost(&self) -> f64 {
        self.plan.cost()
    }

    /// The tier of each slot: `0..fast` on the GPU, the rest on the host.
    pub fn tiers(&self) -> Vec<Tier> {
        self.plan.tiers()
    }
}

impl Iterator for TwoTier {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        self.plan.next()
    }
}

impl Schedule for TwoTier {
    fn steps(&self) -> u64 {
        self.plan.steps()
    }

    fn slot_capacity(&self) -> usize {
        self.plan.slot_capacity()
    }

    fn tiers(&self) -> Option<Vec<Tier>> {
        Some(TwoTier::tiers(self))
    }

    fn planned(&self) -> Result<Option<Planned>> {
        self.plan.planned()
    }
}

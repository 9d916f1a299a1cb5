//! The cost-optimal schedule for two memory tiers: `m` fast (GPU) slots whose saves and
//! restores are free, `d` slow (host) slots that cost their tier's `write` to fill and `read`
//! to restore, and `forward` per recomputed step ([`TieredCosts::two_tier`]). The two-tier case of
//! [`CostOptimal`](super::CostOptimal), which documents the dynamic program.

use super::action::{Action, Planned, Schedule, Tier};
use super::cost_optimal::{CostOptimal, TieredCosts};
use crate::error::Result;

/// The cost-optimal two-tier schedule: an iterator of actions whose slots `0..m` are fast and
/// `m..m + d` slow (see [`TwoTier::tiers`]).
///
/// ```
/// use gpurevolve::schedule::{min_advances, simulate, TierCost, TieredCosts, TwoTier};
/// // Free host copies: the optimum is Revolve's with all 2 + 3 slots.
/// let free = TieredCosts::two_tier(1.0, TierCost::default());
/// let s = TwoTier::new(100, 2, 3, &free)?;
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
    pub fn new(steps: u64, fast: usize, slow: usize, costs: &TieredCosts) -> Result<Self> {
        Ok(Self {
            plan: CostOptimal::new(steps, &[fast, slow], costs)?,
        })
    }

    /// The least cost: `forward · advances + write · host saves + read · host
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

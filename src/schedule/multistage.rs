//! Multistage placement: which checkpoint slots live in which memory tier, fastest first
//! (Stumm & Walther, SIAM J. Sci. Comput. 31(3), 2009).
//!
//! The binomial schedule is kept; the slots written and read most often go to the fastest
//! tier, as many as its budget holds, the next most used to the next tier, and so on. For
//! Revolve these are the deepest slots, which hold the states the most recent sweeps restart
//! from.

use super::action::{Action, Schedule, Tier};
use super::simulate::planned;
use crate::error::{Error, Result};

/// Saves and restores per tier, as [`Multistage::traffic`] counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierTraffic {
    /// Saves into device slots.
    pub device_saves: u64,
    /// Restores from device slots.
    pub device_restores: u64,
    /// Saves into slower slots (each a copy of a state out of GPU memory).
    pub host_saves: u64,
    /// Restores from slower slots (each a copy of a state back into GPU memory).
    pub host_restores: u64,
}

/// A placement of a schedule's slots on the tiers.
///
/// ```
/// use gpurevolve::schedule::{Multistage, Revolve, Tier};
/// // 10 snapshots of 1 MB, 4 MB of GPU memory for them: 4 slots on the GPU.
/// let place = Multistage::new(Revolve::new(1000, 10)?, 1 << 20, Some(4 << 20), None)?;
/// assert_eq!(place.tiers().iter().filter(|t| **t == Tier::DEVICE).count(), 4);
/// let traffic = place.traffic(Revolve::new(1000, 10)?);
/// assert!(traffic.device_restores > traffic.host_restores); // the busiest slots are fast
///
/// // Three tiers: 2 MB of GPU memory, 3 MB of host memory, the rest on disk.
/// let uses = gpurevolve::schedule::planned(Revolve::new(1000, 10)?)?.slot_uses;
/// let place = Multistage::over_tiers(&uses, 10, 1 << 20, &[Some(2 << 20), Some(3 << 20), None])?;
/// let count = |t| place.tiers().iter().filter(|x| **x == t).count();
/// assert_eq!((count(Tier(0)), count(Tier(1)), count(Tier(2))), (2, 3, 5));
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Multistage {
    tiers: Vec<Tier>,
    uses: Vec<u64>,
}

impl Multistage {
    /// Places the slots of `schedule` for states of `state_bytes`, with at most
    /// `device_budget` bytes of checkpoints on the GPU and `host_budget` on the host (`None`:
    /// unlimited).
    ///
    /// # Errors
    /// [`Error::InvalidSchedule`] for an invalid schedule; [`Error::CheckpointsDoNotFit`] when
    /// the two budgets together hold fewer slots than the schedule uses at once.
    pub fn new<S: Schedule>(
        schedule: S,
        state_bytes: u64,
        device_budget: Option<u64>,
        host_budget: Option<u64>,
    ) -> Result<Self> {
        let plan = planned(schedule)?;
        let budgets = [device_budget, host_budget];
        Self::over_tiers(
            &plan.slot_uses,
            plan.stats.peak_slots,
            state_bytes,
            &budgets,
        )
    }

    /// Places slots used `uses[slot]` times (saves plus restores) on tiers whose budgets are
    /// `budgets`, fastest first (`None`: unlimited), for a schedule that holds at most `needed`
    /// slots at once.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no tiers; [`Error::CheckpointsDoNotFit`] when the budgets
    /// together hold fewer than `needed` slots.
    pub fn over_tiers(
        uses: &[u64],
        needed: usize,
        state_bytes: u64,
        budgets: &[Option<u64>],
    ) -> Result<Self> {
        if budgets.is_empty() {
            return Err(Error::InvalidArgument {
                name: "budgets",
                reason: "at least one memory tier is needed".into(),
            });
        }
        let capacity = uses.len();
        let state_bytes = state_bytes.max(1);
        let fits: Vec<usize> = budgets
            .iter()
            .map(|budget| {
                budget.map_or(capacity, |b| {
                    usize::try_from(b / state_bytes)
                        .unwrap_or(usize::MAX)
                        .min(capacity)
                })
            })
            .collect();
        let total = fits.iter().fold(0usize, |a, b| a.saturating_add(*b));
        if total < needed {
            return Err(Error::CheckpointsDoNotFit {
                needed,
                state_bytes,
                fits,
            });
        }
        let mut order: Vec<usize> = (0..capacity).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(uses[i]), i));
        let slowest = Tier(budgets.len() - 1);
        let mut tiers = vec![slowest; capacity];
        let mut next = order.into_iter();
        for (tier, &fit) in fits.iter().enumerate() {
            for slot in next.by_ref().take(fit) {
                tiers[slot] = Tier(tier);
            }
        }
        Ok(Self {
            tiers,
            uses: uses.to_vec(),
        })
    }

    /// The tier of each slot.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// Saves plus restores of each slot over the schedule.
    pub fn uses(&self) -> &[u64] {
        &self.uses
    }

    /// Saves and restores per tier when `schedule` runs with this placement.
    pub fn traffic(&self, schedule: impl IntoIterator<Item = Action>) -> TierTraffic {
        let mut t = TierTraffic::default();
        for action in schedule {
            match action {
                Action::Save { slot, .. } => match self.tiers.get(slot).copied() {
                    Some(Tier::DEVICE) => t.device_saves += 1,
                    _ => t.host_saves += 1,
                },
                // A join brings its held state back as a restore does.
                Action::Restore { slot, .. } | Action::Join { slot, .. } => {
                    match self.tiers.get(slot).copied() {
                        Some(Tier::DEVICE) => t.device_restores += 1,
                        _ => t.host_restores += 1,
                    }
                }
                _ => {}
            }
        }
        t
    }
}

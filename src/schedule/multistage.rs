//! Multistage placement: which checkpoint slots live in fast (GPU) memory and which in slow
//! (host) memory (Stumm & Walther, SIAM J. Sci. Comput. 31(3), 2009).
//!
//! The binomial schedule is kept; the slots written and read most often go to the fast tier, as
//! many as its budget holds. For Revolve these are the deepest slots, which hold the states
//! the most recent sweeps restart from.

use super::action::{Action, Schedule};
use super::simulate::simulate;
use crate::error::{Error, Result};

/// Where a slot's checkpoints live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Fast memory: GPU buffers.
    Device,
    /// Slow memory: the host, reached through staging copies.
    Host,
}

/// Saves and restores per tier, as [`Multistage::traffic`] counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TierTraffic {
    /// Saves into device slots.
    pub device_saves: u64,
    /// Restores from device slots.
    pub device_restores: u64,
    /// Saves into host slots (each a device → host copy of a state).
    pub host_saves: u64,
    /// Restores from host slots (each a host → device copy of a state).
    pub host_restores: u64,
}

/// A placement of a schedule's slots on the two tiers.
///
/// ```
/// use gpurevolve::schedule::{Multistage, Revolve, Tier};
/// // 10 snapshots of 1 MB, 4 MB of GPU memory for them: 4 slots on the GPU.
/// let place = Multistage::new(Revolve::new(1000, 10)?, 1 << 20, Some(4 << 20), None)?;
/// assert_eq!(place.tiers().iter().filter(|t| **t == Tier::Device).count(), 4);
/// let traffic = place.traffic(Revolve::new(1000, 10)?);
/// assert!(traffic.device_restores > traffic.host_restores); // the busiest slots are fast
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
    pub fn new<S: Schedule + Clone>(
        schedule: S,
        state_bytes: u64,
        device_budget: Option<u64>,
        host_budget: Option<u64>,
    ) -> Result<Self> {
        let needed = simulate(schedule.clone())?.peak_slots;
        Self::with_peak(schedule, needed, state_bytes, device_budget, host_budget)
    }

    /// As [`Multistage::new`] for a schedule already simulated, whose peak is `needed` slots.
    pub(crate) fn with_peak(
        schedule: impl Schedule,
        needed: usize,
        state_bytes: u64,
        device_budget: Option<u64>,
        host_budget: Option<u64>,
    ) -> Result<Self> {
        let capacity = schedule.slot_capacity();
        let state_bytes = state_bytes.max(1);
        let fits = |budget: Option<u64>| {
            budget.map_or(capacity, |b| {
                usize::try_from(b / state_bytes)
                    .unwrap_or(usize::MAX)
                    .min(capacity)
            })
        };
        let (device, host) = (fits(device_budget), fits(host_budget));
        if device + host < needed {
            return Err(Error::CheckpointsDoNotFit {
                needed,
                state_bytes,
                device,
                host,
                fit: device + host,
            });
        }
        let mut uses = vec![0u64; capacity];
        for action in schedule {
            if let Action::Save { slot, .. } | Action::Restore { slot, .. } = action
                && let Some(u) = uses.get_mut(slot)
            {
                *u += 1;
            }
        }
        let mut order: Vec<usize> = (0..capacity).collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(uses[i]), i));
        let mut tiers = vec![Tier::Host; capacity];
        for &slot in order.iter().take(device) {
            tiers[slot] = Tier::Device;
        }
        Ok(Self { tiers, uses })
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
                Action::Save { slot, .. } => match self.tiers.get(slot) {
                    Some(Tier::Device) => t.device_saves += 1,
                    _ => t.host_saves += 1,
                },
                Action::Restore { slot, .. } => match self.tiers.get(slot) {
                    Some(Tier::Device) => t.device_restores += 1,
                    _ => t.host_restores += 1,
                },
                _ => {}
            }
        }
        t
    }
}

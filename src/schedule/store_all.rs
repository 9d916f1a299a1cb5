//! The reference schedule: every state kept, no step advanced twice.

use super::action::{Action, Planned, Schedule};
use super::simulate::planned;
use crate::error::{Error, Result};

/// Keeps every state `0..n − 1` in its own slot (slot `k` holds state `k`) during one forward
/// sweep, then reverses by restoring each in turn.
///
/// No step is advanced more than once (repetition number 1): the run evaluates `2n − 1` forward
/// steps, `n − 1` in the sweep and one recording step per reverse, which is
/// `n + p(n, n − 1)`, the least any schedule of this vocabulary can do. It is the reference a
/// checkpointed run must reproduce bit for bit, at the price of `n − 1` slots.
///
/// ```
/// use gpurevolve::schedule::{simulate, StoreAll};
/// let stats = simulate(StoreAll::new(10)?)?;
/// assert_eq!((stats.advances, stats.peak_slots), (9, 9));
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct StoreAll {
    steps: u64,
    phase: Phase,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Forward sweep at state `k`: save it, then advance (or reverse the last step).
    Save(u64),
    Advance(u64),
    /// Reverse sweep: restore state `k`, free its slot, reverse step `k`.
    Restore(u64),
    Free(u64),
    Reverse(u64),
    End,
    Done,
}

impl StoreAll {
    /// The store-all schedule for `steps` time steps.
    ///
    /// # Errors
    /// [`Error::ZeroSteps`]; [`Error::InvalidArgument`] when `steps − 1` slots do not fit in
    /// `usize`.
    pub fn new(steps: u64) -> Result<Self> {
        if steps == 0 {
            return Err(Error::ZeroSteps);
        }
        if usize::try_from(steps - 1).is_err() {
            return Err(Error::InvalidArgument {
                name: "steps",
                reason: format!("{} slots do not fit in this address space", steps - 1),
            });
        }
        let last = steps - 1;
        let phase = if last == 0 {
            Phase::Reverse(0)
        } else {
            Phase::Save(0)
        };
        Ok(Self { steps, phase })
    }
}

impl Iterator for StoreAll {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        let last = self.steps - 1;
        let (action, phase) = match self.phase {
            Phase::Save(k) => (
                Action::Save {
                    step: k,
                    slot: k as usize,
                },
                Phase::Advance(k),
            ),
            Phase::Advance(k) => {
                let next = if k + 1 == last {
                    Phase::Reverse(last)
                } else {
                    Phase::Save(k + 1)
                };
                (Action::Advance { from: k, to: k + 1 }, next)
            }
            Phase::Reverse(k) => {
                let next = if k == 0 {
                    Phase::End
                } else {
                    Phase::Restore(k - 1)
                };
                (Action::Reverse { step: k }, next)
            }
            Phase::Restore(k) => (
                Action::Restore {
                    step: k,
                    slot: k as usize,
                },
                Phase::Free(k),
            ),
            Phase::Free(k) => (
                Action::Free {
                    step: k,
                    slot: k as usize,
                },
                Phase::Reverse(k),
            ),
            Phase::End => (Action::End, Phase::Done),
            Phase::Done => return None,
        };
        self.phase = phase;
        Some(action)
    }
}

impl Schedule for StoreAll {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn slot_capacity(&self) -> usize {
        (self.steps - 1) as usize
    }

    /// Replays a copy of the schedule (it is valid by construction).
    fn planned(&self) -> Result<Option<Planned>> {
        planned(self.clone()).map(Some)
    }
}

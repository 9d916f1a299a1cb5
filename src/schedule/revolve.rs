//! Griewank & Walther's offline binomial schedule (Revolve, ACM TOMS Algorithm 799).

use super::action::{Action, Planned, Schedule};
use super::plan::{beta_capped, plan, repetitions_unchecked};
use super::simulate::planned;
use super::walk::{Move, Walk};
use crate::error::{Error, Result};

/// The optimal offline checkpointing schedule for `steps` steps and `snaps` snapshots.
///
/// It evaluates exactly `steps + p(steps, snaps)` forward steps (see
/// [`min_advances`](super::min_advances)) and never holds more than `min(snaps, steps − 1)`
/// slots. Slots are used as a stack: the slot of a checkpoint is its depth, so slot 0 holds
/// state 0 and the highest slots change most often.
///
/// Each call to `next` does constant work except after a `Save`, where choosing the next
/// checkpoint costs `O(log t)` binomial evaluations; nothing allocates after construction
/// unless the stack outgrows the first 4096 slots.
///
/// ```
/// use gpurevolve::schedule::{simulate, Revolve};
/// let stats = simulate(Revolve::new(10, 3)?)?;
/// assert_eq!((stats.advances, stats.total_forward, stats.peak_slots), (15, 25, 3));
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Revolve {
    steps: u64,
    snaps: u64,
    walk: Walk<()>,
}

impl Revolve {
    /// The schedule for `steps` time steps with `snaps` snapshots (including the one holding
    /// the initial state).
    ///
    /// # Errors
    /// [`Error::ZeroSteps`], [`Error::ZeroSnapshots`], [`Error::CountOverflow`] when the number
    /// of forward steps does not fit in 64 bits, and [`Error::InvalidArgument`] for more
    /// snapshots than steps (at most `steps − 1` are ever used; a mixed-up argument, most
    /// likely) or when the slots used do not fit in `usize`.
    pub fn new(steps: u64, snaps: u64) -> Result<Self> {
        let info = plan(steps, snaps)?;
        if snaps > steps {
            return Err(Error::InvalidArgument {
                name: "snaps",
                reason: format!(
                    "{snaps} snapshots for {steps} steps: {steps} already keep every state; ask \
                     for at most {steps}, or keep every state (store-all)"
                ),
            });
        }
        let capacity = usize::try_from(info.slots_used).map_err(|_| Error::InvalidArgument {
            name: "snaps",
            reason: format!(
                "{} slots do not fit in this platform's address space",
                info.slots_used
            ),
        })?;
        Ok(Self {
            steps,
            snaps,
            walk: Walk::new(steps, capacity.min(4096)),
        })
    }

    /// Number of snapshots allowed.
    pub fn snaps(&self) -> u64 {
        self.snaps
    }
}

/// How far to advance from a checkpoint with `range` steps still to reverse above it and
/// `avail` snapshots for that range (the checkpoint's own included); `range ≥ 2`.
///
/// The cost of splitting at `j` (advance `j`, checkpoint, reverse the right part with one
/// snapshot fewer, then the left part) is `f(j) = j + p(range − j, avail − 1) + p(j, avail)`.
/// `p(·, a)` is convex with increments `p(x + 1, a) − p(x, a) = t(x + 1, a)`, so `f` is convex
/// and its smallest minimiser is the first `j` where `f(j + 1) − f(j) ≥ 0`. With
/// `t = t(range, avail)` that is `max(1, range − β(avail − 1, t), β(avail, t − 2))`: the right
/// part gets as many steps as `avail − 1` snapshots reverse at repetition `t`, unless the left
/// part must first reach repetition `t − 1`. The tests check the result against `p` computed
/// by closed form and by exhaustive recursion.
pub(crate) fn split(range: u64, avail: u64) -> u64 {
    if avail == 1 {
        return range - 1;
    }
    let t = repetitions_unchecked(range, avail);
    let right_capacity = beta_capped(avail - 1, t, range as u128) as u64;
    let left_floor = if t >= 2 {
        beta_capped(avail, t - 2, range as u128) as u64
    } else {
        0
    };
    (range - right_capacity).max(left_floor).clamp(1, range - 1)
}

impl Iterator for Revolve {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        let snaps = self.snaps;
        self.walk.next(|stack, live, end| {
            if stack.last().map(|&(step, _)| step) != Some(live) {
                return Move::Save(());
            }
            // `live` is checkpointed at depth len − 1, so this range may use the snapshots above.
            let avail = snaps - (stack.len() as u64 - 1);
            Move::Advance(live + split(end - live, avail))
        })
    }
}

impl Schedule for Revolve {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn slot_capacity(&self) -> usize {
        // Fits: checked in `new`.
        self.snaps.min(self.steps - 1) as usize
    }

    /// Replays a copy of the schedule (it is valid by construction).
    fn planned(&self) -> Result<Option<Planned>> {
        planned(self.clone()).map(Some)
    }
}

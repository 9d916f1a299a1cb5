//! The stack interpreter that Revolve and the level schedule share: both hold checkpoints as
//! a stack (a checkpoint's slot is its depth), reverse the last step of the live range, and
//! differ only in where they split a range and what they remember of a checkpoint.

use super::action::Action;

/// What a schedule does next from a checkpointed or freshly reached state.
pub(super) enum Move<T> {
    /// Advance the live state to this step.
    Advance(u64),
    /// Save the live state, remembering this of it.
    Save(T),
}

/// The walk through one bisection schedule: held checkpoints, the live state, the part still
/// to reverse.
#[derive(Clone, Debug)]
pub(super) struct Walk<T> {
    /// Steps of the held checkpoints and what the schedule keeps of each, increasing; index
    /// = slot.
    stack: Vec<(u64, T)>,
    /// Step of the live state; `None` right after a `Reverse`.
    live: Option<u64>,
    /// Steps `end..steps` are reversed; the next to reverse is `end − 1`.
    end: u64,
    finished: bool,
}

impl<T: Copy> Walk<T> {
    /// The walk over `steps` steps from state 0, with room for `capacity` checkpoints.
    pub(super) fn new(steps: u64, capacity: usize) -> Self {
        Self {
            stack: Vec::with_capacity(capacity),
            live: Some(0),
            end: steps,
            finished: false,
        }
    }

    /// The next action. `decide(stack, live, end)` chooses between advancing and saving when
    /// the live state is not the one just before the step to reverse; `stack` then holds the
    /// checkpoints, the newest last.
    pub(super) fn next(
        &mut self,
        decide: impl FnOnce(&[(u64, T)], u64, u64) -> Move<T>,
    ) -> Option<Action> {
        if self.finished {
            return None;
        }
        if self.end == 0 {
            self.finished = true;
            return Some(Action::End);
        }
        let top = self.stack.last().map(|&(step, _)| step);
        let Some(live) = self.live else {
            // Nothing live after a reverse: the newest checkpoint is the closest state below
            // the next step to reverse (both schedules checkpoint state 0 first).
            let step = top?;
            self.live = Some(step);
            return Some(Action::Restore {
                step,
                slot: self.stack.len() - 1,
            });
        };
        if live + 1 == self.end {
            if top == Some(live) {
                // The checkpoint's last use is this reverse: free its slot first, so a store
                // may hand its buffers to the live state instead of copying them.
                self.stack.pop();
                return Some(Action::Free {
                    step: live,
                    slot: self.stack.len(),
                });
            }
            self.live = None;
            self.end -= 1;
            return Some(Action::Reverse { step: live });
        }
        match decide(&self.stack, live, self.end) {
            Move::Advance(to) => {
                self.live = Some(to);
                Some(Action::Advance { from: live, to })
            }
            Move::Save(kept) => {
                self.stack.push((live, kept));
                Some(Action::Save {
                    step: live,
                    slot: self.stack.len() - 1,
                })
            }
        }
    }
}

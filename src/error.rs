//! The crate's one error type.
//!
//! Variants fall into three groups, and the messages say what to change:
//!
//! * **bad input** ([`Error::ZeroSteps`], [`Error::ZeroSnapshots`], [`Error::InvalidArgument`],
//!   [`Error::CountOverflow`]): fix the call;
//! * **can never fit** ([`Error::BufferTooLarge`], [`Error::SnapshotBudget`]): no amount of
//!   waiting or freeing helps on this device or budget; shrink the problem;
//! * **does not fit now** ([`Error::OutOfMemory`]): the device is full at the moment; free
//!   something, or let the checkpoint store spill to host memory.
//!
//! The bottom of the crate: it imports nothing from it. The two schedule words a rejected
//! schedule's error names, [`Action`] and [`Violation`], are therefore defined here; the
//! crate shows them as `schedule::Action` and `schedule::Violation`.

use std::fmt;

/// Everything that can go wrong in gpurevolve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A schedule was asked for zero time steps.
    #[error("the number of time steps must be at least 1, got 0")]
    ZeroSteps,

    /// A schedule was asked for zero snapshots.
    #[error(
        "the number of snapshots must be at least 1 (the snapshot that holds the initial state), got 0"
    )]
    ZeroSnapshots,

    /// A count derived from the arguments does not fit in 64 bits.
    #[error(
        "{what} overflows 64 bits for {steps} steps and {snaps} snapshots; use fewer steps or more snapshots"
    )]
    CountOverflow {
        /// Which count overflowed.
        what: &'static str,
        /// The number of steps asked for.
        steps: u64,
        /// The number of snapshots asked for.
        snaps: u64,
    },

    /// An argument is outside the range the function accepts.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong and what would be accepted.
        reason: String,
    },

    /// A byte budget holds not even one snapshot (can never fit).
    #[error(
        "a budget of {budget_bytes} bytes holds no snapshot of {state_bytes} bytes; give at least {state_bytes} bytes"
    )]
    SnapshotBudget {
        /// The budget offered.
        budget_bytes: u64,
        /// The size of one snapshot.
        state_bytes: u64,
    },

    /// A budget of time levels holds not even one state (can never fit).
    #[error(
        "a budget of {levels} time levels holds no state of {needed} levels; give at least {needed}"
    )]
    LevelBudget {
        /// The budget offered.
        levels: u64,
        /// Levels of one state.
        needed: u64,
    },

    /// A plan would take more memory or time than a planner allows (about a second): plan
    /// with Revolve instead, whose plan is a closed form.
    #[error(
        "planning {steps} steps within {levels} time levels is too large to plan in about a \
         second ({why}); use Revolve's schedule"
    )]
    PlanTooLarge {
        /// Steps asked for.
        steps: u64,
        /// Levels asked for.
        levels: u64,
        /// Which bound it exceeds.
        why: String,
    },

    /// A progress callback stopped the run ([`ProgressReply`](crate::engine::ProgressReply)).
    /// Nothing that outlives the run is lost; the same call can be made again.
    #[error("interrupted after {done} step evaluations; nothing was kept, run it again to finish")]
    Interrupted {
        /// Step evaluations done before the stop.
        done: u64,
    },

    /// The checkpoints a schedule holds at once fit in no memory tier (can never fit with
    /// these budgets).
    #[error(
        "{needed} checkpoints of {} do not fit: the schedule holds that many at once, but {}; \
         raise a budget, or ask for less checkpoint memory (fewer snapshots)",
        bytes(*state_bytes),
        tier_fits(fits)
    )]
    CheckpointsDoNotFit {
        /// Checkpoints the schedule holds at once.
        needed: usize,
        /// Bytes of one checkpoint.
        state_bytes: u64,
        /// How many checkpoints each tier's budget holds, fastest first: the GPU, host memory,
        /// and the disk tier when there is one.
        fits: Vec<usize>,
    },

    /// The simulator rejected a schedule.
    #[error("invalid schedule at action #{index}{}: {violation}", action.map(|a| format!(" ({a})")).unwrap_or_default())]
    InvalidSchedule {
        /// Zero-based position of the offending action (the count of actions when the
        /// schedule ended early).
        index: u64,
        /// The offending action; `None` when the schedule ended without one.
        action: Option<Action>,
        /// Why it was rejected.
        violation: Violation,
    },

    /// No GPU adapter could be found.
    #[error(
        "no GPU adapter found ({detail}). On Debian/Ubuntu without a GPU, install the software \
         Vulkan driver: `apt-get install mesa-vulkan-drivers libvulkan1`; with a GPU, install its \
         Vulkan driver (and loader, `libvulkan1`)"
    )]
    NoAdapter {
        /// What wgpu reported.
        detail: String,
    },

    /// The adapter refused to open a device.
    #[error("the GPU adapter `{adapter}` could not open a device: {detail}")]
    RequestDevice {
        /// The adapter's name.
        adapter: String,
        /// What wgpu reported.
        detail: String,
    },

    /// A buffer is larger than the device can ever allocate (can never fit).
    #[error(
        "`{label}` needs {requested} bytes but this device allows at most {max} bytes for {limit}; \
         use a smaller grid or a device with larger limits"
    )]
    BufferTooLarge {
        /// What the buffer is for.
        label: String,
        /// Bytes asked for.
        requested: u64,
        /// The device's limit.
        max: u64,
        /// Which limit (`max_buffer_size`, `max_storage_buffer_binding_size`, ...).
        limit: &'static str,
    },

    /// The device is out of memory now (does not fit now).
    #[error(
        "the GPU is out of memory allocating `{label}` ({requested} bytes); free GPU buffers, \
         lower the device budget so checkpoints spill to host memory, or use fewer snapshots"
    )]
    OutOfMemory {
        /// What the buffer is for.
        label: String,
        /// Bytes asked for.
        requested: u64,
    },

    /// An operator wrote a buffer of the state it was given, which it may only read
    /// ([`RevolverOptions::check_state_contract`](crate::engine::RevolverOptions)): a
    /// checkpoint holding that buffer would be corrupted.
    #[error(
        "the operator broke the state contract in the {phase} of step {step}: it wrote level \
         {level} of the state (buffer {level} of `state`, u_(k-{level})), which it may only \
         read; write only `next`"
    )]
    StateContract {
        /// `forward` or `adjoint`.
        phase: &'static str,
        /// The step.
        step: u64,
        /// Which level of the state changed (0: the newest).
        level: usize,
    },

    /// wgpu reported a validation or internal error: a bug in gpurevolve or in the
    /// caller's WGSL, never a condition to retry.
    #[error("GPU error in {context}: {detail}")]
    Gpu {
        /// What gpurevolve was doing.
        context: String,
        /// What wgpu reported.
        detail: String,
    },

    /// Another process of an MPI job failed (feature `mpi`): every rank stops, with the
    /// message of the first failing rank.
    #[error("rank {rank} of the MPI job failed: {message}")]
    RankFailed {
        /// The first failing rank.
        rank: usize,
        /// Its error.
        message: String,
    },

    /// A file could not be read or written, or is not in the expected format.
    #[error("{}: {detail}", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        detail: String,
    },

    /// The disk tier's directory ran out of space: free some, or give the disk tier
    /// another directory.
    #[error("the disk tier in {} is full: {needed} more bytes were needed for a checkpoint ({detail})", dir.display())]
    DiskFull {
        /// The directory the checkpoints were written to.
        dir: std::path::PathBuf,
        /// Bytes of the checkpoint that did not fit.
        needed: u64,
        /// What the operating system said.
        detail: String,
    },

    /// A checkpoint read back from the disk tier is not what was written (its checksum or its
    /// header differs): the file was changed or damaged between save and restore.
    #[error("the checkpoint of state {step} in {} is corrupted: {detail}", path.display())]
    CheckpointCorrupted {
        /// The state it holds.
        step: u64,
        /// Its file.
        path: std::path::PathBuf,
        /// What differs.
        detail: String,
    },

    /// Host memory cannot hold what the arguments ask for. With more than the machine's
    /// memory (RAM and swap) it can never fit; with more than is free now it does not fit now.
    #[error(
        "{what} needs {} of host memory, but {}; {hint}",
        bytes(*needed),
        if *needed > *total { format!("this machine has {} in all", bytes(*total)) }
        else { format!("only {} is free now", bytes(*available)) }
    )]
    HostMemory {
        /// What would be allocated, with the argument that sizes it.
        what: String,
        /// Bytes it needs.
        needed: u64,
        /// Bytes free now (Linux: `MemAvailable` plus free swap).
        available: u64,
        /// Bytes the machine has (RAM and swap).
        total: u64,
        /// What to change.
        hint: String,
    },

    /// A result that must be finite is not (an overflow to infinity, or NaN): it is never
    /// returned or written.
    #[error(
        "{what} is not finite{}: the computation overflowed float32 or went unstable; check the \
         velocities, the time step and the source frequency",
        if location.is_empty() { String::new() } else { format!(" ({location})") }
    )]
    NonFinite {
        /// The value (`the misfit`, `the gradient`, ...).
        what: String,
        /// Where it first appeared (shot, step), when that is known; else empty.
        location: String,
    },

    /// The GPU device was lost (a driver reset, the device destroyed, a hung kernel killed by
    /// the driver). Nothing it held can be read back; the run stops.
    #[error("the GPU device was lost while {context}: {detail}")]
    DeviceLost {
        /// What gpurevolve was doing.
        context: String,
        /// What wgpu or the driver reported.
        detail: String,
    },

    /// A wait for the GPU passed its deadline
    /// ([`GpuOptions::wait_deadline`](crate::gpu::GpuOptions::wait_deadline), default 600 s,
    /// or `GPUREVOLVE_WAIT_DEADLINE_S`): the device stopped answering.
    #[error(
        "waited {} s for {what} without an answer: the GPU (or its driver) stopped responding, \
         and the run stops (work that is really this long: raise GPUREVOLVE_WAIT_DEADLINE_S)",
        num(*seconds)
    )]
    Timeout {
        /// What was waited for.
        what: String,
        /// The deadline, in seconds.
        seconds: f64,
    },

    /// Mapping a buffer for reading or writing failed.
    #[error("mapping GPU buffer `{label}` failed: {detail}")]
    Map {
        /// What the buffer is for.
        label: String,
        /// What wgpu reported.
        detail: String,
    },
}

/// A user's number in a message: as typed for everyday magnitudes, in exponent form
/// otherwise (`1e-300`, never three hundred digits).
pub(crate) fn num(x: f64) -> String {
    if x == 0.0 || !x.is_finite() || (1e-3..1e7).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// A byte count for people: `1.5 GB`, `512 kB`, `12 bytes` (SI units, three figures).
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} bytes");
    }
    let mut value = n as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    let digits = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.digits$} {unit}")
}

/// "the device budget holds 2, the host budget 1": what each tier's budget holds.
fn tier_fits(fits: &[usize]) -> String {
    const TIERS: [&str; 3] = [
        "the device budget",
        "host memory's budget",
        "the disk tier's budget",
    ];
    let parts: Vec<String> = fits
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "{} holds {n}",
                TIERS.get(i).unwrap_or(&"a further tier's budget")
            )
        })
        .collect();
    parts.join(", ")
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The group an [`Error`] belongs to: what the caller can do about it. Bindings map it to
/// their own exception types (the Python package: `ValueError`, `MemoryError`,
/// `KeyboardInterrupt`, `gpurevolve.GpuError`, `OSError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Fix the call: an argument, a schedule, a plan too large to make.
    BadInput,
    /// Can never fit with these budgets or on this device: shrink the problem.
    NeverFits,
    /// Does not fit now: free memory, or let checkpoints spill.
    DoesNotFitNow,
    /// The caller's progress callback stopped the run.
    Interrupted,
    /// The GPU or its driver failed, an operator broke its contract, or another process of
    /// the job failed.
    Device,
    /// A file could not be read or written.
    File,
}

impl Error {
    /// The same error with the shot it came from: a [`Error::NonFinite`] gets `shot N` in
    /// front of its location (the kernels that found it know no shot); any other error is
    /// returned as it is.
    ///
    /// ```
    /// use gpurevolve::Error;
    /// let e = Error::NonFinite { what: "the misfit".into(), location: String::new() };
    /// assert!(e.in_shot(3).to_string().contains("(shot 3)"));
    /// ```
    #[must_use]
    pub fn in_shot(self, shot: usize) -> Error {
        match self {
            Error::NonFinite { what, location } => Error::NonFinite {
                what,
                location: if location.is_empty() {
                    format!("shot {shot}")
                } else {
                    format!("shot {shot}, {location}")
                },
            },
            other => other,
        }
    }

    /// The group this error belongs to.
    ///
    /// ```
    /// use gpurevolve::{Error, ErrorKind};
    /// assert_eq!(Error::ZeroSteps.kind(), ErrorKind::BadInput);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::ZeroSteps
            | Error::ZeroSnapshots
            | Error::CountOverflow { .. }
            | Error::InvalidArgument { .. }
            | Error::PlanTooLarge { .. }
            | Error::InvalidSchedule { .. } => ErrorKind::BadInput,
            Error::SnapshotBudget { .. }
            | Error::LevelBudget { .. }
            | Error::CheckpointsDoNotFit { .. }
            | Error::BufferTooLarge { .. } => ErrorKind::NeverFits,
            Error::OutOfMemory { .. } => ErrorKind::DoesNotFitNow,
            Error::Interrupted { .. } => ErrorKind::Interrupted,
            Error::NoAdapter { .. }
            | Error::RequestDevice { .. }
            | Error::StateContract { .. }
            | Error::Gpu { .. }
            | Error::Map { .. }
            | Error::RankFailed { .. } => ErrorKind::Device,
            Error::File { .. } | Error::CheckpointCorrupted { .. } => ErrorKind::File,
            Error::DiskFull { .. } => ErrorKind::DoesNotFitNow,
            Error::HostMemory { needed, total, .. } => {
                if needed > total {
                    ErrorKind::NeverFits
                } else {
                    ErrorKind::DoesNotFitNow
                }
            }
            Error::NonFinite { .. } => ErrorKind::BadInput,
            Error::DeviceLost { .. } | Error::Timeout { .. } => ErrorKind::Device,
        }
    }
}

/// One instruction of a checkpointing schedule.
///
/// The engine holds one *live* forward state (the state before some step `k`, "state `k`")
/// and a set of numbered *slots* that each hold one saved state; after a reverse, the state
/// just reversed stays in the working buffers for a [`Join`](Action::Join). Steps are reversed once each,
/// in the order `n − 1, …, 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Advance the live state from state `from` to state `to` (`to − from` forward steps, nothing
    /// recorded).
    Advance {
        /// Step of the live state before.
        from: u64,
        /// Step of the live state after; `to > from`.
        to: u64,
    },
    /// Keep the live state (state `step`) in `slot`, which must be empty. The live state stays.
    Save {
        /// Step of the state saved.
        step: u64,
        /// Slot it goes into.
        slot: usize,
    },
    /// Make the state held in `slot` (state `step`) the live state. The slot keeps it.
    Restore {
        /// Step of the state restored.
        step: u64,
        /// Slot it comes from.
        slot: usize,
    },
    /// Empty `slot`, which holds state `step` and is needed no more.
    Free {
        /// Step of the state dropped.
        step: u64,
        /// Slot emptied.
        slot: usize,
    },
    /// Make state `step` live from the live state `step + 1` and the state held in `slot`: the
    /// live state's older levels are state `step`'s newer ones, and the held state (state `j`,
    /// `step − q + 1 ≤ j < step` for `q` levels a state) holds its oldest, `u_{step−q+1}`.
    /// Nothing runs and the live levels are not copied. Only for a schedule with a
    /// [`LevelBudget`](crate::schedule::LevelBudget) that allows joins, run by a backend whose
    /// states are level buffers ([`LevelOptimal::with_joins`](crate::schedule::LevelOptimal::with_joins)).
    Join {
        /// Step of the state made live.
        step: u64,
        /// Slot of the held state that gives its oldest level.
        slot: usize,
    },
    /// Run step `step` forward from the live state while recording what its adjoint needs, then
    /// run the adjoint of step `step`. The live state's levels stay in the working buffers
    /// (an adjoint reads them), but only a `Join` below it or a `Restore` may follow before
    /// the next `Advance`, `Save` or `Reverse`.
    Reverse {
        /// The step reversed.
        step: u64,
    },
    /// The schedule is complete: every step reversed, every slot empty.
    End,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Action::Advance { from, to } => write!(f, "advance {from}→{to}"),
            Action::Save { step, slot } => write!(f, "save state {step} into slot {slot}"),
            Action::Restore { step, slot } => write!(f, "restore state {step} from slot {slot}"),
            Action::Free { step, slot } => write!(f, "free slot {slot} (state {step})"),
            Action::Reverse { step } => write!(f, "reverse step {step}"),
            Action::Join { step, slot } => {
                write!(f, "join state {step} from the live state and slot {slot}")
            }
            Action::End => f.write_str("end"),
        }
    }
}

/// Why the simulator rejected an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// The action needs the live state to be state `needed`, but it is `live` (`None`: nothing
    /// is live since the last reverse).
    NotLive {
        /// The state the action needs.
        needed: u64,
        /// The live state.
        live: Option<u64>,
    },
    /// An advance that does not move forward.
    EmptyAdvance,
    /// An advance to a state at or past the next step to reverse, which can never be needed.
    AdvancePastReverse {
        /// Where the advance ends.
        to: u64,
        /// The next step to reverse (`None`: every step is reversed).
        next_reverse: Option<u64>,
    },
    /// A slot index at or above the schedule's capacity.
    SlotOutOfRange {
        /// The slot named.
        slot: usize,
        /// The schedule's slot capacity.
        capacity: usize,
    },
    /// A save into a slot that still holds a state.
    SlotOccupied {
        /// The slot named.
        slot: usize,
        /// The state it holds.
        holds: u64,
    },
    /// A restore or free that names a state the slot does not hold.
    SlotMismatch {
        /// The slot named.
        slot: usize,
        /// The state the action expects.
        expected: u64,
        /// What the slot holds.
        holds: Option<u64>,
    },
    /// A reverse out of order: steps are reversed once each, from `n − 1` down to 0.
    ReverseOutOfOrder {
        /// The step the action reverses.
        step: u64,
        /// The step that must be reversed next (`None`: all are done).
        expected: Option<u64>,
    },
    /// `End` while steps remain to be reversed.
    EndBeforeDone {
        /// Steps not yet reversed.
        remaining: u64,
    },
    /// `End` with slots still held.
    EndWithHeldSlots {
        /// Slots still held.
        held: usize,
    },
    /// A save that makes the saved states hold more time levels than the schedule's
    /// [`LevelBudget`](crate::schedule::LevelBudget).
    LevelBudgetExceeded {
        /// Levels held after the save.
        held: u64,
        /// The budget.
        budget: u64,
    },
    /// A join from a schedule without a level budget that allows joins.
    JoinNotAllowed,
    /// A join whose slot does not hold the level it needs: state `step` needs a held state
    /// `j` with `step − q + 1 ≤ j < step`.
    JoinTooFar {
        /// The state joined.
        step: u64,
        /// The slot named.
        slot: usize,
        /// The state the slot holds (`None`: it is empty).
        held: Option<u64>,
    },
    /// A join of a state whose step is reversed already.
    JoinPastReverse {
        /// The state joined.
        step: u64,
        /// The next step to reverse (`None`: every step is reversed).
        next_reverse: Option<u64>,
    },
    /// An action after `End`.
    ActionAfterEnd,
    /// The schedule stopped without `End`.
    MissingEnd,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Violation::NotLive { needed, live: None } => {
                write!(
                    f,
                    "needs live state {needed}, but no state is live since the last reverse"
                )
            }
            Violation::NotLive {
                needed,
                live: Some(live),
            } => write!(f, "needs live state {needed}, but the live state is {live}"),
            Violation::EmptyAdvance => {
                f.write_str("an advance must move at least one step forward")
            }
            Violation::AdvancePastReverse {
                to,
                next_reverse: Some(next),
            } => write!(
                f,
                "advances to state {to}, past the next step to reverse ({next})"
            ),
            Violation::AdvancePastReverse {
                to,
                next_reverse: None,
            } => write!(
                f,
                "advances to state {to}, but every step is already reversed"
            ),
            Violation::SlotOutOfRange { slot, capacity } => {
                write!(f, "slot {slot} is out of range (capacity {capacity})")
            }
            Violation::SlotOccupied { slot, holds } => {
                write!(f, "slot {slot} still holds state {holds}")
            }
            Violation::SlotMismatch {
                slot,
                expected,
                holds,
            } => match holds {
                Some(h) => write!(f, "slot {slot} holds state {h}, not {expected}"),
                None => write!(f, "slot {slot} is empty, not holding state {expected}"),
            },
            Violation::ReverseOutOfOrder {
                step,
                expected: Some(e),
            } => write!(f, "reverses step {step}, but step {e} is next"),
            Violation::ReverseOutOfOrder {
                step,
                expected: None,
            } => write!(
                f,
                "reverses step {step}, but every step is already reversed"
            ),
            Violation::EndBeforeDone { remaining } => {
                write!(f, "ends with {remaining} steps not reversed")
            }
            Violation::EndWithHeldSlots { held } => write!(f, "ends with {held} slots still held"),
            Violation::JoinNotAllowed => f.write_str(
                "joins need a schedule whose level budget allows them (LevelOptimal::with_joins)",
            ),
            Violation::JoinTooFar {
                step,
                slot,
                held: None,
            } => write!(f, "joins state {step} with slot {slot}, which is empty"),
            Violation::JoinTooFar {
                step,
                slot,
                held: Some(held),
            } => write!(
                f,
                "joins state {step} with state {held} (slot {slot}): the held state must be below it by fewer steps than a state has levels"
            ),
            Violation::JoinPastReverse {
                step,
                next_reverse: Some(next),
            } => write!(
                f,
                "joins state {step}, whose step is reversed already (step {next} is next)"
            ),
            Violation::JoinPastReverse {
                step,
                next_reverse: None,
            } => write!(f, "joins state {step}, but every step is reversed already"),
            Violation::LevelBudgetExceeded { held, budget } => write!(
                f,
                "holds {held} time levels, above the schedule's budget of {budget}"
            ),
            Violation::ActionAfterEnd => f.write_str("an action after the end"),
            Violation::MissingEnd => f.write_str("the schedule stops without an end action"),
        }
    }
}

//! # gpurevolve
//!
//! GPU-resident checkpointing for adjoint wave solvers.
//!
//! The gradient of a misfit over an `n`-step explicit time loop (full-waveform inversion,
//! reverse-time migration, any adjoint of a time stepper) needs the forward states in reverse
//! order; storing them all rarely fits. Revolve (Griewank & Walther, "Algorithm 799: Revolve",
//! ACM TOMS 26(1), 2000) keeps `s` optimally placed checkpoints and recomputes the rest with
//! the provably fewest forward steps. gpurevolve runs that schedule where wave solvers run now:
//! on the GPU, through wgpu, with checkpoints held in GPU buffers.
//!
//! ## Layers
//!
//! | module | knows | does |
//! |---|---|---|
//! | [`schedule`] | nothing of GPUs | the action vocabulary, [`Revolve`](schedule::Revolve), [`StoreAll`](schedule::StoreAll), [`LevelOptimal`](schedule::LevelOptimal) (memory in time levels, for adjoints that need only their state), planning arithmetic, a simulator that checks any schedule and counts its cost |
//! | `gpu` (feature `gpu`) | wgpu | adapter and device with the adapter's own limits, typed out-of-memory through error scopes, staging read-back, dispatch helpers, WGSL kernels from `shaders/` |
//! | [`engine`] | schedules (and `gpu`) | the action interpreter [`Revolver`](engine::Revolver) over a [`Store`](engine::Store) of states: GPU buffers with host spill, or any CPU value |
//! | `acoustic`, `fwi` (feature `acoustic`) | `gpu`, `engine` | the acoustic wave solver in WGSL with a float64 CPU twin; the multi-shot FWI gradient |
//! | [`job`] (feature `acoustic`) | all of the above | one gradient job: the run policy, planning, running on devices or MPI ranks, and the `Summary` the main job and Python both return |
//!
//! ## Features
//!
//! `default = ["gpu", "acoustic"]`. With `--no-default-features` the crate builds without
//! wgpu and still offers the schedules, the planning arithmetic, the simulator, `.npy` I/O and
//! the CPU engine ([`Revolver::on_cpu`](engine::Revolver::on_cpu)).
//!
//! ## Counting conventions
//!
//! Steps are numbered `0..n`; state `k` is the state before step `k`. The `s` snapshots
//! *include* the one holding the initial state. An *advance* is a forward step that does not
//! immediately precede its own reverse; every reverse of step `k` runs step `k` forward once
//! more to record what its adjoint needs. A full adjoint run therefore evaluates `n + p(n, s)`
//! forward steps, `p` being the fewest advances: `p = n − 1` when every state fits
//! (`s ≥ n − 1`), `p = n(n − 1)/2` with a single snapshot.
//!
//! An adjoint that needs only state `k` (the acoustic one;
//! [`Operator::adjoint_needs_next`](engine::Operator::adjoint_needs_next)) runs no step in a
//! reverse but the last, once, to record it: `p + 1` forward steps. Counting memory in time
//! levels that consecutive checkpoints share does better again
//! ([`LevelOptimal`](schedule::LevelOptimal)), and the engine counts what actually ran.
//!
//! ## Example
//!
//! Plan a run, check the schedule symbolically, and look at its first actions:
//!
//! ```
//! use gpurevolve::schedule::{self, Action, Revolve};
//!
//! // 1000 steps, 10 snapshots: every step is advanced at most 4 times.
//! let plan = schedule::plan(1000, 10)?;
//! assert_eq!((plan.repetitions, plan.advances, plan.total_forward), (4, 3636, 4636));
//!
//! // The simulator runs the schedule on "which state is where" and counts what it did.
//! let stats = schedule::simulate(Revolve::new(1000, 10)?)?;
//! assert_eq!(stats.total_forward, plan.total_forward);
//! assert!(stats.peak_slots <= 10);
//!
//! // An engine consumes the actions one by one.
//! let mut actions = Revolve::new(1000, 10)?;
//! assert_eq!(actions.next(), Some(Action::Save { step: 0, slot: 0 }));
//! assert!(matches!(actions.next(), Some(Action::Advance { from: 0, .. })));
//!
//! // With an adjoint that needs only its state: Revolve costs p + 1, and the level-optimal
//! // schedule in the same memory (20 levels of two-level states) less again.
//! let levels = schedule::simulate(schedule::LevelOptimal::new(1000, 20, 2)?)?;
//! assert_eq!(stats.state_adjoint_total_forward(), 3637);
//! assert!(levels.state_adjoint_total_forward() < 3637);
//! # Ok::<(), gpurevolve::Error>(())
//! ```
//!
//! Errors are one type, [`Error`], whose variants separate bad input, what can never fit on
//! the device, and what does not fit now.
#![warn(missing_docs)]
// Without the GPU the docs still name the GPU backend, whose links then have no target.
#![cfg_attr(not(feature = "gpu"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(feature = "acoustic")]
pub mod acoustic;
pub mod compression;
pub mod engine;
mod error;
pub mod fs;
#[cfg(feature = "acoustic")]
pub mod fwi;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod guide;
#[cfg(feature = "acoustic")]
pub mod job;
pub mod memory;
pub mod npy;
pub mod schedule;

pub use error::{Error, ErrorKind, Result};

/// The README's Rust examples, compiled as doc tests (they need the acoustic solver).
#[cfg(all(doctest, feature = "acoustic"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

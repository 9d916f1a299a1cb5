//! Checkpointing for time steppers whose states are host values: [`CpuOperator`], the
//! [`MemoryStore`] that holds their checkpoints, and the [`CpuBackend`] that joins the two for
//! [`Revolver::on_cpu`]. No GPU involved: this builds without the `gpu` feature.

use super::revolver::{Revolver, RevolverOptions, check_steps};
use super::store::{Backend, Store};
use crate::error::{Error, Result};
use crate::schedule::{Schedule, Tier};

/// A time stepper on the CPU whose adjoint the engine drives, pyrevolve's "modernised"
/// interface: a forward operator, a reverse operator, and states the engine keeps.
///
/// The adjoint lives inside the operator (adjoint variables, gradient accumulators): the
/// engine calls [`adjoint`](Self::adjoint) once per step, for `k = n − 1` down to 0.
pub trait CpuOperator {
    /// A forward state: everything step `k` reads (a `Vec<f64>`, a struct of arrays).
    type State: Clone;

    /// Number of time steps `n`.
    fn steps(&self) -> u64;

    /// State 0.
    ///
    /// # Errors
    /// Whatever the operator reports.
    fn initial(&mut self) -> Result<Self::State>;

    /// Forward step `k`: state `k + 1` from state `k`. `record` is true the first time step
    /// `k` runs; record outputs (a misfit, traces) then, and skip them on recomputation.
    ///
    /// # Errors
    /// Whatever the operator reports.
    fn forward(&mut self, k: u64, state: &Self::State, record: bool) -> Result<Self::State>;

    /// Whether the adjoint of step `k` needs state `k + 1` (the default, Revolve's model) or
    /// state `k` alone, as [`Backend::adjoint_needs_next`] says of backends.
    fn adjoint_needs_next(&self) -> bool {
        true
    }

    /// The adjoint of step `k`, given state `k` and its successor `next`, just recomputed:
    /// `Some` whenever the adjoint needs it and when the step ran to record its outputs,
    /// `None` otherwise.
    ///
    /// # Errors
    /// Whatever the operator reports.
    fn adjoint(&mut self, k: u64, state: &Self::State, next: Option<&Self::State>) -> Result<()>;
}

/// Checkpoints held as values in host memory, any `Clone` type, in numbered slots.
///
/// Every slot is in RAM; [`with_tiers`](Self::with_tiers) labels slots with tiers so that a
/// run's per-tier accounting matches a placement (the slots a GPU backend would keep on the
/// device, say). A store whose slow tier is a disk implements [`Store`] itself.
#[derive(Clone, Debug)]
pub struct MemoryStore<T> {
    slots: Vec<Option<T>>,
    tiers: Vec<Tier>,
    state_bytes: u64,
    copied: u64,
}

impl<T> MemoryStore<T> {
    /// `slots` slots in one tier, for states of `state_bytes` bytes (for accounting only).
    pub fn new(slots: usize, state_bytes: u64) -> Self {
        Self {
            slots: (0..slots).map(|_| None).collect(),
            tiers: vec![Tier(0); slots],
            state_bytes,
            copied: 0,
        }
    }

    /// One slot per entry of `tiers`, labelled with it: the placement of a
    /// [`Multistage`](crate::schedule::Multistage) or a [`CostOptimal`](crate::schedule::CostOptimal) plan.
    pub fn with_tiers(tiers: &[Tier], state_bytes: u64) -> Self {
        let tiers = tiers.to_vec();
        Self {
            slots: tiers.iter().map(|_| None).collect(),
            tiers,
            state_bytes,
            copied: 0,
        }
    }
}

fn missing(slot: usize) -> Error {
    Error::InvalidArgument {
        name: "slot",
        reason: format!("slot {slot} holds no state in the memory store"),
    }
}

impl<T: Clone> Store for MemoryStore<T> {
    type State = T;

    fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    fn save(&mut self, slot: usize, _step: u64, state: &T) -> Result<()> {
        let entry = self.slots.get_mut(slot).ok_or_else(|| missing(slot))?;
        *entry = Some(state.clone());
        self.copied += self.state_bytes;
        Ok(())
    }

    fn restore(&mut self, slot: usize, _step: u64) -> Result<T> {
        let state = self
            .slots
            .get(slot)
            .and_then(Option::clone)
            .ok_or_else(|| missing(slot))?;
        self.copied += self.state_bytes;
        Ok(state)
    }

    fn free(&mut self, slot: usize, _step: u64) -> Result<()> {
        *self.slots.get_mut(slot).ok_or_else(|| missing(slot))? = None;
        Ok(())
    }

    fn held_bytes(&self) -> Vec<u64> {
        let tiers = self.tiers.iter().map(|t| t.0 + 1).max().unwrap_or(1);
        let mut bytes = vec![0u64; tiers];
        for (held, tier) in self.slots.iter().zip(&self.tiers) {
            if held.is_some() {
                bytes[tier.0] += self.state_bytes;
            }
        }
        bytes
    }

    fn bytes_copied(&self) -> u64 {
        self.copied
    }
}

/// A [`CpuOperator`] with its checkpoints in a [`Store`] of its states: the backend of
/// [`Revolver::on_cpu`].
#[derive(Debug)]
pub struct CpuBackend<O, St> {
    operator: O,
    store: St,
}

impl<O, St> CpuBackend<O, St> {
    /// The operator.
    pub fn operator(&self) -> &O {
        &self.operator
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }

    /// The operator and the store, given back.
    pub fn into_parts(self) -> (O, St) {
        (self.operator, self.store)
    }
}

impl<O: CpuOperator, St: Store<State = O::State>> Store for CpuBackend<O, St> {
    type State = O::State;

    fn tiers(&self) -> &[Tier] {
        self.store.tiers()
    }

    fn save(&mut self, slot: usize, step: u64, state: &O::State) -> Result<()> {
        self.store.save(slot, step, state)
    }

    fn restore(&mut self, slot: usize, step: u64) -> Result<O::State> {
        self.store.restore(slot, step)
    }

    fn free(&mut self, slot: usize, step: u64) -> Result<()> {
        self.store.free(slot, step)
    }

    fn prefetch(&mut self, upcoming: &[crate::schedule::Action]) -> Result<()> {
        self.store.prefetch(upcoming)
    }

    fn held_bytes(&self) -> Vec<u64> {
        self.store.held_bytes()
    }

    fn bytes_copied(&self) -> u64 {
        self.store.bytes_copied()
    }
}

impl<O: CpuOperator, St: Store<State = O::State>> Backend for CpuBackend<O, St> {
    fn initial(&mut self) -> Result<O::State> {
        self.operator.initial()
    }

    fn forward(&mut self, state: &O::State, k: u64, record: bool) -> Result<O::State> {
        self.operator.forward(k, state, record)
    }

    fn reverse(&mut self, state: O::State, k: u64, record: bool) -> Result<u64> {
        let next = if record || self.operator.adjoint_needs_next() {
            Some(self.operator.forward(k, &state, record)?)
        } else {
            None
        };
        self.operator.adjoint(k, &state, next.as_ref())?;
        Ok(u64::from(next.is_some()))
    }

    fn adjoint_needs_next(&self) -> bool {
        self.operator.adjoint_needs_next()
    }
}

impl<'a, O: CpuOperator, St: Store<State = O::State>, S: Schedule>
    Revolver<'a, CpuBackend<O, St>, S>
{
    /// A revolver for a CPU `operator` under `schedule`, its checkpoints in `store` (a
    /// [`MemoryStore`] with at least the schedule's slots, or a store of your own).
    ///
    /// ```
    /// use gpurevolve::engine::{CpuOperator, MemoryStore, Revolver, RevolverOptions};
    /// use gpurevolve::schedule::Revolve;
    ///
    /// /// x ← x + dt·(−x³), reversed: the adjoint of the final value against x₀.
    /// struct Decay { n: u64, lambda: f64 }
    /// impl CpuOperator for Decay {
    ///     type State = f64;
    ///     fn steps(&self) -> u64 { self.n }
    ///     fn initial(&mut self) -> gpurevolve::Result<f64> { Ok(1.0) }
    ///     fn forward(&mut self, _k: u64, x: &f64, _record: bool) -> gpurevolve::Result<f64> {
    ///         Ok(x - 0.01 * x.powi(3))
    ///     }
    ///     fn adjoint(&mut self, _k: u64, x: &f64, _next: Option<&f64>) -> gpurevolve::Result<()> {
    ///         self.lambda *= 1.0 - 0.03 * x * x;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let decay = Decay { n: 100, lambda: 1.0 };
    /// let store = MemoryStore::new(5, 8);
    /// let mut run = Revolver::on_cpu(decay, store, Revolve::new(100, 5)?, RevolverOptions::default())?;
    /// let stats = run.apply_reverse()?;
    /// assert_eq!(stats.forward_steps, 100 + gpurevolve::schedule::min_advances(100, 5)?);
    /// let (decay, _) = run.into_backend().into_parts();
    /// assert!(decay.lambda > 0.0 && decay.lambda < 1.0); // ∂x_n/∂x_0
    /// # Ok::<(), gpurevolve::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the schedule and the operator disagree on the number of
    /// steps, or the store has fewer slots than the schedule addresses;
    /// [`Error::InvalidSchedule`] for a schedule whose own plan is invalid.
    pub fn on_cpu(operator: O, store: St, schedule: S, options: RevolverOptions) -> Result<Self> {
        check_steps(schedule.steps(), operator.steps())?;
        if store.tiers().len() < schedule.slot_capacity() {
            return Err(Error::InvalidArgument {
                name: "store",
                reason: format!(
                    "the store has {} slots, the schedule addresses {}; make it with at least that many",
                    store.tiers().len(),
                    schedule.slot_capacity()
                ),
            });
        }
        let plan = schedule.planned()?.map(|p| p.stats);
        let backend = CpuBackend { operator, store };
        Revolver::with_backend(backend, schedule, plan, options.lookahead)
    }
}

//! Lorenz-96 (`dxᵢ/dt = (xᵢ₊₁ − xᵢ₋₂) xᵢ₋₁ − xᵢ + F`, cyclic), stepped with forward Euler, and
//! its exact discrete adjoint: a small nonlinear CPU time stepper whose gradient the checkpointing
//! engine reverses. Shared by `examples/cpu_checkpointing.rs` and `tests/cpu_engine.rs`.
//!
//! The misfit is `J = ½ Σₖ₌₁ⁿ |xₖ − dₖ|²` against observations `dₖ` of every state; the
//! gradients are `∂J/∂x₀` and `∂J/∂F`.

#![allow(dead_code)] // each user takes the parts it needs

use gpurevolve::engine::CpuOperator;
use gpurevolve::schedule::{Action, Schedule};

/// The right-hand side `f(x)`.
pub fn rhs(x: &[f64], forcing: f64) -> Vec<f64> {
    let n = x.len();
    (0..n)
        .map(|i| {
            let at = |d: isize| x[(i as isize + d).rem_euclid(n as isize) as usize];
            (at(1) - at(-2)) * at(-1) - at(0) + forcing
        })
        .collect()
}

/// One Euler step: `x + dt·f(x)`.
pub fn step(x: &[f64], forcing: f64, dt: f64) -> Vec<f64> {
    x.iter()
        .zip(rhs(x, forcing))
        .map(|(xi, fi)| xi + dt * fi)
        .collect()
}

/// The step's tangent linear map at `x`: `dx + dt·J(x)·dx`.
pub fn tangent(x: &[f64], dx: &[f64], dt: f64) -> Vec<f64> {
    let n = x.len() as isize;
    let at = |v: &[f64], i: usize, d: isize| v[(i as isize + d).rem_euclid(n) as usize];
    (0..x.len())
        .map(|i| {
            let jdx = at(x, i, -1) * (at(dx, i, 1) - at(dx, i, -2))
                + (at(x, i, 1) - at(x, i, -2)) * at(dx, i, -1)
                - dx[i];
            dx[i] + dt * jdx
        })
        .collect()
}

/// Its adjoint: `mu + dt·J(x)ᵀ·mu`.
pub fn adjoint_step(x: &[f64], mu: &[f64], dt: f64) -> Vec<f64> {
    let n = x.len() as isize;
    let at = |v: &[f64], j: usize, d: isize| v[(j as isize + d).rem_euclid(n) as usize];
    (0..x.len())
        .map(|j| {
            // Row i of J touches x_{i+1}, x_{i−2}, x_{i−1}, x_i: column j is hit by
            // i = j − 1, j + 2, j + 1 and j.
            let jt_mu = at(mu, j, -1) * at(x, j, -2) - at(mu, j, 2) * at(x, j, 1)
                + at(mu, j, 1) * (at(x, j, 2) - at(x, j, -1))
                - mu[j];
            mu[j] + dt * jt_mu
        })
        .collect()
}

/// The problem: initial state, forcing, step, and the observed states `d₁ … dₙ`.
#[derive(Clone, Debug)]
pub struct Lorenz96 {
    pub x0: Vec<f64>,
    pub forcing: f64,
    pub dt: f64,
    pub observed: Vec<Vec<f64>>,
}

/// Misfit and gradients.
#[derive(Clone, Debug, Default)]
pub struct Gradient {
    pub misfit: f64,
    pub d_x0: Vec<f64>,
    pub d_forcing: f64,
}

impl Lorenz96 {
    /// A problem of `vars` variables over `steps` steps, observed from a run with forcing
    /// `true_forcing` and a perturbed start; the model starts from a random state.
    pub fn synthetic(
        vars: usize,
        steps: usize,
        forcing: f64,
        true_forcing: f64,
        seed: u64,
    ) -> Self {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut random = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let x0: Vec<f64> = (0..vars).map(|_| forcing + random()).collect();
        let dt = 0.002;
        let mut truth: Vec<f64> = x0.iter().map(|x| x + 0.1 * random()).collect();
        let mut observed = Vec::with_capacity(steps);
        for _ in 0..steps {
            truth = step(&truth, true_forcing, dt);
            observed.push(truth.clone());
        }
        Self {
            x0,
            forcing,
            dt,
            observed,
        }
    }

    pub fn steps(&self) -> u64 {
        self.observed.len() as u64
    }

    /// The misfit alone, one forward sweep.
    pub fn misfit(&self) -> f64 {
        let mut x = self.x0.clone();
        let mut misfit = 0.0;
        for d in &self.observed {
            x = step(&x, self.forcing, self.dt);
            misfit += half_square_distance(&x, d);
        }
        misfit
    }
}

fn half_square_distance(x: &[f64], d: &[f64]) -> f64 {
    0.5 * x.iter().zip(d).map(|(a, b)| (a - b) * (a - b)).sum::<f64>()
}

/// The operator the engine drives (pyrevolve's "modernised" style): forward steps record the
/// misfit, the adjoint accumulates `λ` and `∂J/∂F`.
///
/// Two formulations of one adjoint, with the same operations in the same order (so the same
/// bits): by default the adjoint of step `k` adds the misfit term of `xₖ₊₁` and needs that
/// state (Revolve's model); `state_only` adds the term of `xₖ` instead, after its own step,
/// and seeds `λₙ` when the last step is recorded, so a reverse needs state `k` alone.
pub struct Lorenz96Operator {
    pub problem: Lorenz96,
    pub gradient: Gradient,
    /// Before the adjoint of step `k`: `∂J/∂xₖ₊₁` from the steps after `k + 1` (default), or
    /// the whole `∂J/∂xₖ₊₁` (state-only).
    lambda: Vec<f64>,
    state_only: bool,
}

impl Lorenz96Operator {
    pub fn new(problem: Lorenz96) -> Self {
        let lambda = vec![0.0; problem.x0.len()];
        Self {
            problem,
            gradient: Gradient::default(),
            lambda,
            state_only: false,
        }
    }

    /// The formulation whose adjoint needs state `k` alone.
    pub fn state_only(problem: Lorenz96) -> Self {
        Self {
            state_only: true,
            ..Self::new(problem)
        }
    }

    /// Adds the misfit's term of a state `x` observed as `observed[d]` to `λ`: `λ + (x − d)`.
    fn add_misfit_term(&mut self, x: &[f64], d: usize) {
        let d = &self.problem.observed[d];
        for (l, (x, d)) in self.lambda.iter_mut().zip(x.iter().zip(d)) {
            *l += x - d;
        }
    }

    /// The gradients once the reverse sweep is done.
    pub fn finish(mut self) -> Gradient {
        self.gradient.d_x0 = self.lambda;
        self.gradient
    }

    fn record(&mut self, k: u64, next: &[f64]) {
        self.gradient.misfit += half_square_distance(next, &self.problem.observed[k as usize]);
    }

    fn adjoint_of(&mut self, k: u64, x: &[f64], next: &[f64]) {
        self.add_misfit_term(next, k as usize);
        self.adjoint_after_term(x);
    }

    /// With `λ = ∂J/∂xₖ₊₁` whole: `∂J/∂F`, and `λ ← ∂J/∂xₖ` but for `xₖ`'s own misfit term.
    fn adjoint_after_term(&mut self, x: &[f64]) {
        self.gradient.d_forcing += self.problem.dt * self.lambda.iter().sum::<f64>();
        self.lambda = adjoint_step(x, &self.lambda, self.problem.dt);
    }
}

impl CpuOperator for Lorenz96Operator {
    type State = Vec<f64>;

    fn steps(&self) -> u64 {
        self.problem.steps()
    }

    fn initial(&mut self) -> gpurevolve::Result<Vec<f64>> {
        Ok(self.problem.x0.clone())
    }

    fn adjoint_needs_next(&self) -> bool {
        !self.state_only
    }

    fn forward(&mut self, k: u64, x: &Vec<f64>, record: bool) -> gpurevolve::Result<Vec<f64>> {
        let next = step(x, self.problem.forcing, self.problem.dt);
        if record {
            self.record(k, &next);
            if self.state_only && k + 1 == self.problem.steps() {
                // λₙ = 0 + (xₙ − dₙ), as the default formulation forms it in its first adjoint.
                self.add_misfit_term(&next, k as usize);
            }
        }
        Ok(next)
    }

    fn adjoint(&mut self, k: u64, x: &Vec<f64>, next: Option<&Vec<f64>>) -> gpurevolve::Result<()> {
        match (self.state_only, next) {
            (false, Some(next)) => self.adjoint_of(k, x, next),
            (false, None) => {
                return Err(gpurevolve::Error::InvalidArgument {
                    name: "next",
                    reason: format!("the adjoint of step {k} needs state {}", k + 1),
                });
            }
            (true, _) => {
                self.adjoint_after_term(x);
                if k > 0 {
                    self.add_misfit_term(x, k as usize - 1);
                }
            }
        }
        Ok(())
    }
}

/// The same gradient in pyrevolve's "classic" style: the caller iterates the schedule's
/// actions and keeps the states itself, here in a vector of optional states.
pub fn classic_gradient(problem: &Lorenz96, schedule: impl Schedule) -> (Gradient, u64) {
    let mut op = Lorenz96Operator::new(problem.clone());
    let mut slots: Vec<Option<Vec<f64>>> = vec![None; schedule.slot_capacity()];
    let mut live = Some(problem.x0.clone());
    let mut recorded = 0; // steps below this have added their misfit
    let mut forward_steps = 0;
    let (forcing, dt) = (problem.forcing, problem.dt);
    for action in schedule {
        match action {
            Action::Advance { from, to } => {
                let mut x = live.take().expect("the schedule advances the live state");
                for k in from..to {
                    let next = step(&x, forcing, dt);
                    if k >= recorded {
                        op.record(k, &next);
                        recorded = k + 1;
                    }
                    x = next;
                    forward_steps += 1;
                }
                live = Some(x);
            }
            Action::Save { slot, .. } => slots[slot] = live.clone(),
            Action::Restore { slot, .. } => live = slots[slot].clone(),
            Action::Free { slot, .. } => slots[slot] = None,
            // Only level schedules with joins join, and this state is one vector, not levels.
            Action::Join { .. } => {
                unreachable!("a schedule with joins given to a one-vector state")
            }
            Action::Reverse { step: k } => {
                let x = live.take().expect("the schedule reverses the live state");
                let next = step(&x, forcing, dt);
                if k >= recorded {
                    op.record(k, &next);
                    recorded = k + 1;
                }
                forward_steps += 1;
                op.adjoint_of(k, &x, &next);
            }
            Action::End => {}
        }
    }
    (op.finish(), forward_steps)
}

//! The float64 CPU twin of every acoustic kernel: the reference the WGSL kernels are tested
//! against, and the place where the discrete adjoint is checked to 1e-12.
//!
//! The adjoint. With `ū_k = ∂J/∂u_k` and `ψ_k = a ⊙ ū_k`, the adjoint recursion of
//! `u_{k+1} = 2b·u_k − (2b − 1)·u_{k−1} + a·(L u_k + q_k)` is
//! `ψ_k = 2b·ψ_{k+1} − (2b − 1)·ψ_{k+2} + a·(L ψ_{k+1} + Sᵀ r_k)`, because `L` is symmetric and the
//! coefficients are diagonal: the *same* step, run backwards in time with the data residual
//! `r_k` injected at the receivers. Differentiating the update in `m` gives
//! `∂J/∂m = −Σ_k ψ_{k+1} ⊙ (u_{k+1} − 2u_k + u_{k−1}) / Δt²`.
//!
//! Under a CPML the step also carries the layer's memory fields, and the adjoint step is its
//! transpose, no longer the step itself: `src/acoustic/cpml.rs` derives both. The gradient's
//! form is unchanged, as the memory fields do not depend on `m`.

use super::cpml::for_each_cell;
use super::grid::check_len;
use super::problem::Problem;
use crate::error::Result;

/// The CPU twin of a [`Problem`].
#[derive(Debug)]
pub struct CpuTwin<'p> {
    problem: &'p Problem,
    a: Vec<f64>,
    b: Vec<f64>,
}

/// What a forward run returns.
#[derive(Clone, Debug)]
pub struct CpuForward {
    /// Receiver traces `[nt][receivers]`; sample 0 records the zero initial field.
    pub traces: Vec<f64>,
    /// `u_0 … u_{nt−1}` (padded), when asked for.
    pub fields: Option<Vec<Vec<f64>>>,
}

/// What an adjoint run returns.
#[derive(Clone, Debug)]
pub struct CpuAdjoint {
    /// `∂J/∂m` on the padded grid.
    pub gradient: Vec<f64>,
    /// Adjoint of the source series, `[nt][sources]`: `∂J/∂s_k = I ψ_{k+1}` (zero at `k = nt − 1`).
    pub source_adjoint: Vec<f64>,
}

impl<'p> CpuTwin<'p> {
    /// The twin of `problem`.
    pub fn new(problem: &'p Problem) -> Self {
        let (a, b) = problem.step_coefficients();
        Self { problem, a, b }
    }

    /// `next = 2b·cur − (2b − 1)·prev + a·(L cur + CPML terms)` on the extended cells, with
    /// the Laplacian in the difference form the kernel uses, `Σₖ cₖ Σ_axes ((u₋ₖ − u) + (u₊ₖ − u))`.
    /// Fields are time levels ([`Problem::level_len`] values: under a CPML, the layer's memory
    /// fields follow the field, and `next`'s are written too).
    ///
    /// # Panics
    /// When a level is shorter than [`Problem::level_len`]: this is the kernel's inner loop,
    /// left unchecked like slice indexing.
    pub fn step(&self, prev: &[f64], cur: &[f64], next: &mut [f64]) {
        let cpml = self.problem.cpml();
        for_each_cell(self.problem.layout(), |i, c| {
            let pml = cpml.map_or(0.0, |p| p.forward_cell(cur, i, c, Some(&mut *next)));
            let b = self.b[i];
            next[i] = 2.0 * b * cur[i] - (2.0 * b - 1.0) * prev[i]
                + self.a[i] * (self.laplacian(cur, i) + pml);
        });
    }

    /// The adjoint step: `out` ← the transpose of [`step`](Self::step) applied to the adjoint
    /// levels `near` (`ψ_{k+1}`) and `far` (`ψ_{k+2}`), for `ψ = a ⊙ ū`. Without a CPML this is
    /// `step` itself.
    ///
    /// # Panics
    /// As [`step`](Self::step).
    pub fn adjoint_step(&self, far: &[f64], near: &[f64], out: &mut [f64]) {
        let Some(cpml) = self.problem.cpml() else {
            return self.step(far, near, out);
        };
        for_each_cell(self.problem.layout(), |i, c| {
            let pml = cpml.adjoint_cell(near, i, c, out);
            let b = self.b[i];
            out[i] = 2.0 * b * near[i] - (2.0 * b - 1.0) * far[i]
                + self.a[i] * (self.laplacian(near, i) + pml);
        });
    }

    /// `(L u)_i` in the kernel's difference form.
    fn laplacian(&self, u: &[f64], i: usize) -> f64 {
        let layout = self.problem.layout();
        let strides = layout.strides();
        let axes: &[usize] = if layout.dim == 3 { &[0, 1, 2] } else { &[0, 2] };
        let centre = u[i];
        let mut lap = 0.0;
        for (k, ck) in self.problem.laplacian().iter().enumerate().skip(1) {
            let mut pairs = 0.0;
            for &axis in axes {
                let s = strides[axis];
                pairs += (u[i - k * s] - centre) + (u[i + k * s] - centre);
            }
            lap += ck * pairs;
        }
        lap
    }

    /// The twin of the GPU gradient's input: `u_{k+1} − 2u_k + u_{k−1}` (one padded field)
    /// formed from the state (two levels) alone, `2(b − 1)(u_k − u_{k−1}) + a (L u_k + CPML
    /// terms + Sᵀq_k)`, with `sources_k` the source
    /// values of step `k`. Equal to the difference of [`step`](Self::step) plus injection,
    /// which is what lets a checkpointed adjoint skip recomputing `u_{k+1}`.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for fields that are not one padded field each or a
    /// wrong number of source values.
    pub fn second_difference(
        &self,
        prev: &[f64],
        cur: &[f64],
        sources_k: &[f64],
    ) -> Result<Vec<f64>> {
        let p = self.problem;
        let (n, level) = (p.layout().len(), p.level_len());
        check_len("prev", prev.len(), level)?;
        check_len("cur", cur.len(), level)?;
        check_len("sources_k", sources_k.len(), p.sources().points)?;
        let mut d = vec![0.0; n];
        let cpml = p.cpml();
        for_each_cell(p.layout(), |i, c| {
            let pml = cpml.map_or(0.0, |p| p.forward_cell(cur, i, c, None));
            d[i] = 2.0 * (self.b[i] - 1.0) * (cur[i] - prev[i])
                + self.a[i] * (self.laplacian(cur, i) + pml);
        });
        p.sources().inject(&mut d, &self.a, sources_k);
        Ok(d)
    }

    /// Runs `nt − 1` steps from rest, injecting `sources[k]` (`[nt][sources]`) in step `k` and
    /// recording every `u_k`. Keeps all fields when `keep` (the store-all reference).
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] when `sources` is not `nt × sources` values.
    pub fn forward(&self, sources: &[f64], keep: bool) -> Result<CpuForward> {
        let p = self.problem;
        let (nt, ns, nr) = (p.time().nt, p.sources().points, p.receivers().points);
        check_len("sources", sources.len(), nt * ns)?;
        let (n, level) = (p.layout().len(), p.level_len());
        let (mut prev, mut cur, mut next) = (vec![0.0; level], vec![0.0; level], vec![0.0; level]);
        let mut traces = vec![0.0; nt * nr];
        let mut fields = keep.then(|| vec![cur[..n].to_vec()]);
        for k in 0..nt - 1 {
            self.step(&prev, &cur, &mut next);
            p.sources()
                .inject(&mut next, &self.a, &sources[k * ns..(k + 1) * ns]);
            p.receivers()
                .sample(&next, &mut traces[(k + 1) * nr..(k + 2) * nr]);
            if let Some(f) = fields.as_mut() {
                f.push(next[..n].to_vec());
            }
            (prev, cur, next) = (cur, next, prev);
        }
        Ok(CpuForward { traces, fields })
    }

    /// The adjoint sweep over stored fields `u_0 … u_{nt−1}` with receiver-side input
    /// `residual` (`[nt][receivers]`; sample 0 is never used, as `u_0` does not depend on
    /// anything).
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] when `fields` is not `nt` padded fields or `residual`
    /// not `nt × receivers` values.
    pub fn adjoint(&self, fields: &[Vec<f64>], residual: &[f64]) -> Result<CpuAdjoint> {
        let p = self.problem;
        let (nt, ns, nr) = (p.time().nt, p.sources().points, p.receivers().points);
        let n = p.layout().len();
        check_len("fields", fields.len(), nt)?;
        if let Some(f) = fields.iter().find(|f| f.len() != n) {
            check_len("fields", f.len(), n)?;
        }
        check_len("residual", residual.len(), nt * nr)?;
        let inv_dt2 = 1.0 / (p.time().dt * p.time().dt);
        // psi_near = ψ_{k+2}, psi_far = ψ_{k+3}; both zero before the last step.
        let level = p.level_len();
        let (mut far, mut near, mut psi) = (vec![0.0; level], vec![0.0; level], vec![0.0; level]);
        let mut gradient = vec![0.0; n];
        let mut source_adjoint = vec![0.0; nt * ns];
        let zero = vec![0.0; n];
        for k in (0..nt - 1).rev() {
            self.adjoint_step(&far, &near, &mut psi);
            p.receivers()
                .inject(&mut psi, &self.a, &residual[(k + 1) * nr..(k + 2) * nr]);
            let (u_next, u, u_prev) = (
                &fields[k + 1],
                &fields[k],
                if k > 0 { &fields[k - 1] } else { &zero },
            );
            p.layout().for_each_extended(|i| {
                gradient[i] -= psi[i] * (u_next[i] - 2.0 * u[i] + u_prev[i]) * inv_dt2;
            });
            p.sources()
                .sample(&psi, &mut source_adjoint[k * ns..(k + 1) * ns]);
            (far, near, psi) = (near, psi, far);
        }
        Ok(CpuAdjoint {
            gradient,
            source_adjoint,
        })
    }

    /// The linearised (Born) data `∂d/∂m · dm` for a perturbation `dm` (padded grid).
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] when `sources` is not `nt × sources` values or `dm`
    /// not one padded field.
    pub fn born(&self, sources: &[f64], dm: &[f64]) -> Result<Vec<f64>> {
        let p = self.problem;
        let (nt, ns, nr) = (p.time().nt, p.sources().points, p.receivers().points);
        let n = p.layout().len();
        check_len("sources", sources.len(), nt * ns)?;
        check_len("dm", dm.len(), n)?;
        let inv_dt2 = 1.0 / (p.time().dt * p.time().dt);
        let level = p.level_len();
        let (mut prev, mut cur, mut next) = (vec![0.0; level], vec![0.0; level], vec![0.0; level]);
        let (mut dprev, mut dcur, mut dnext) =
            (vec![0.0; level], vec![0.0; level], vec![0.0; level]);
        let mut traces = vec![0.0; nt * nr];
        for k in 0..nt - 1 {
            self.step(&prev, &cur, &mut next);
            p.sources()
                .inject(&mut next, &self.a, &sources[k * ns..(k + 1) * ns]);
            self.step(&dprev, &dcur, &mut dnext);
            // ∂u_{k+1}/∂m at fixed u_k, u_{k−1}: −a (u_{k+1} − 2u_k + u_{k−1}) / Δt².
            p.layout().for_each_extended(|i| {
                dnext[i] -= self.a[i] * dm[i] * (next[i] - 2.0 * cur[i] + prev[i]) * inv_dt2;
            });
            p.receivers()
                .sample(&dnext, &mut traces[(k + 1) * nr..(k + 2) * nr]);
            (prev, cur, next) = (cur, next, prev);
            (dprev, dcur, dnext) = (dcur, dnext, dprev);
        }
        Ok(traces)
    }
}

/// The misfit `J = ½ Σ (d − d_obs)²` over all samples and receivers (no Δt weighting), and the
/// residual `d − d_obs`.
pub fn misfit(predicted: &[f64], observed: &[f64]) -> (f64, Vec<f64>) {
    let residual: Vec<f64> = predicted.iter().zip(observed).map(|(p, o)| p - o).collect();
    (0.5 * residual.iter().map(|r| r * r).sum::<f64>(), residual)
}

/// The gradient with respect to velocity from the gradient with respect to `m = 1/c²`:
/// `∂J/∂c = ∂J/∂m · dm/dc = −2 ∂J/∂m / c³`, cell by cell (any grid, equal lengths).
pub fn velocity_gradient(m_gradient: &[f64], velocity: &[f64]) -> Vec<f64> {
    m_gradient
        .iter()
        .zip(velocity)
        .map(|(g, c)| -2.0 * g / (c * c * c))
        .collect()
}

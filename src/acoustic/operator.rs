//! The acoustic solver as an [`Operator`]: what the engine needs to checkpoint an FWI gradient.

use super::gpu::{AdjointInput, GpuAcoustic, GradientInfo};
use super::problem::Problem;
use crate::engine::Operator;
use crate::error::Result;
use crate::gpu::Gpu;

/// One shot's misfit and gradient as an [`Operator`]: two time levels `[u_k, u_{k−1}]` (under a
/// CPML each level also carries the layer's memory fields, so [`Operator::level_bytes`] is
/// [`Problem::level_bytes`] and every budget counts them), the adjoint wavefield and the
/// gradient held inside.
#[derive(Debug)]
pub struct AcousticOperator<'g> {
    acoustic: GpuAcoustic<'g>,
    observed_host: Vec<f64>,
    observed: wgpu::Buffer,
    residual: wgpu::Buffer,
    gradient: wgpu::Buffer,
    /// `[ψ_{k+3}, ψ_{k+2}, out]` before the adjoint of step `k`.
    psi: [wgpu::Buffer; 3],
    /// The energy reduction, made at the first [`energy`](Self::energy) check and kept for
    /// the later ones.
    pub(super) sum_squares: std::cell::OnceCell<crate::gpu::SumSquares>,
}

impl<'g> AcousticOperator<'g> {
    /// The operator for `problem` against `observed` traces (`[nt][receivers]`).
    ///
    /// # Errors
    /// As [`GpuAcoustic::new`]; [`crate::Error::InvalidArgument`] for a wrong trace length.
    pub fn new(gpu: &'g Gpu, problem: &Problem, observed: &[f64]) -> Result<Self> {
        let acoustic = GpuAcoustic::new(gpu, problem)?;
        let observed_gpu = acoustic.upload_receiver_traces("observed", observed)?;
        let residual = acoustic.receiver_buffer("residual")?;
        let gradient = acoustic.field("gradient")?;
        let psi = [
            acoustic.level("psi")?,
            acoustic.level("psi")?,
            acoustic.level("psi")?,
        ];
        Ok(Self {
            acoustic,
            observed_host: observed.to_vec(),
            observed: observed_gpu,
            residual,
            gradient,
            psi,
            sum_squares: std::cell::OnceCell::new(),
        })
    }

    /// The kernels.
    pub fn acoustic(&self) -> &GpuAcoustic<'g> {
        &self.acoustic
    }

    /// Reads the results after the reverse sweep: misfit, gradient, predicted traces.
    ///
    /// # Errors
    /// As [`Gpu::read_back`]; [`Error::NonFinite`](crate::Error::NonFinite) when any of them
    /// is NaN or infinite.
    pub fn finish(&self) -> Result<GradientInfo> {
        let (misfit, _) = self
            .acoustic
            .misfit_of(&self.residual, &self.observed_host)?;
        let gradient: Vec<f32> = self.acoustic.gpu().read_back(&self.gradient)?;
        let info = GradientInfo {
            misfit,
            gradient: gradient.iter().map(|&g| g as f64).collect(),
            traces: self.acoustic.read_traces()?,
        };
        let acoustic = &self.acoustic;
        super::finite::check_gradient(&info, info.traces.len() / acoustic.nt(), acoustic.dt())?;
        Ok(info)
    }
}

impl Operator for AcousticOperator<'_> {
    fn levels(&self) -> usize {
        2
    }

    fn level_bytes(&self) -> u64 {
        self.acoustic.level_bytes()
    }

    fn steps(&self) -> u64 {
        (self.acoustic.nt() - 1) as u64
    }

    fn encode_forward(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        k: u64,
        state: &[&wgpu::Buffer],
        next: &wgpu::Buffer,
        record: bool,
    ) -> Result<()> {
        let [cur, prev] = [state[0], state[1]];
        self.acoustic
            .encode_forward_step(encoder, k as usize, [prev, cur, next], record);
        Ok(())
    }

    /// A shot starts at rest: both levels zero.
    fn starts_at_rest(&self) -> bool {
        true
    }

    /// The gradient term is formed from state `k` and the residual from the recorded traces:
    /// the engine never recomputes `u_{k+1}` for this adjoint.
    fn adjoint_needs_next(&self) -> bool {
        false
    }

    fn encode_adjoint(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        k: u64,
        state: &[&wgpu::Buffer],
        _next: Option<&wgpu::Buffer>,
    ) -> Result<()> {
        let [cur, prev] = [state[0], state[1]];
        let [far, near, out] = &self.psi;
        let input = AdjointInput::Residual {
            observed: &self.observed,
            residual: &self.residual,
        };
        self.acoustic.encode_adjoint_step(
            encoder,
            k as usize,
            [prev, cur],
            [far, near, out],
            input,
            &self.gradient,
            None,
        );
        // [far, near, out] → [near, out, far], as in the store-all sweep.
        self.psi.rotate_left(1);
        Ok(())
    }
}

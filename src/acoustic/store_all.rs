//! The store-all reference path on the GPU: every forward field kept, the adjoint sweep over
//! them, and the misfit. What a checkpointed run must reproduce bit for bit, and what the
//! GPU dot-product tests use.

use super::gpu::{AdjointInput, GpuAcoustic, GpuAdjoint, GpuForward, GradientInfo};
use super::kernels::{FIELD_USAGE, STEPS_PER_SUBMIT, to_f32};
use crate::engine::{Progress, ProgressReply};
use crate::error::{Error, Result};

impl GpuAcoustic<'_> {
    /// The store-all reference paths keep one shot's gradient and misfit: a batch of several
    /// shots is refused (the job runs batches through [`AcousticOperator`](super::AcousticOperator)).
    fn one_shot(&self, what: &str) -> Result<()> {
        if self.shots() > 1 {
            return Err(Error::InvalidArgument {
                name: "shots",
                reason: format!(
                    "{what} runs one shot, not a batch of {}: make one GpuAcoustic per shot, or \
                     run the batch through AcousticOperator",
                    self.shots()
                ),
            });
        }
        Ok(())
    }

    /// The traces recorded so far, `[nt][receivers]`.
    ///
    /// # Errors
    /// As [`Gpu::read_back`](crate::gpu::Gpu::read_back).
    pub fn read_traces(&self) -> Result<Vec<f64>> {
        let t: Vec<f32> = self.gpu.read_back(&self.traces)?;
        Ok(t.iter().map(|&x| x as f64).collect())
    }

    /// Runs all `nt − 1` steps from rest and returns the traces; keeps every field `u_k` when
    /// `keep` (the store-all reference), else rotates three buffers.
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the fields do not fit now, and as [`Gpu::read_back`](crate::gpu::Gpu::read_back).
    pub fn forward(&self, keep: bool) -> Result<GpuForward> {
        self.forward_with_progress(keep, |_| ())
    }

    /// As [`forward`](Self::forward), calling `progress` with the steps the GPU has finished
    /// after each batch of steps it submits. Then at most two batches are in flight, so the
    /// count is what ran, not what was encoded; a [`ControlFlow::Break`](std::ops::ControlFlow)
    /// from `progress` stops the run with [`Error::Interrupted`] ([`ProgressReply`]).
    ///
    /// # Errors
    /// As [`forward`](Self::forward); [`Error::Interrupted`].
    pub fn forward_with_progress<R: ProgressReply>(
        &self,
        keep: bool,
        mut progress: impl FnMut(Progress) -> R,
    ) -> Result<GpuForward> {
        let total = (self.nt - 1) as u64;
        let (mut prev, mut cur) = (self.level("u_-1")?, self.level("u_0")?);
        // Without `keep`, three buffers rotate: the one two steps old is overwritten next.
        let mut spare = if keep { None } else { Some(self.level("u")?) };
        let mut kept = if keep { vec![cur.clone()] } else { Vec::new() };
        let mut encoder = self.encoder();
        // The batch before the last one submitted: waited for before reporting it.
        let mut in_flight: Option<(wgpu::SubmissionIndex, u64)> = None;
        for k in 0..self.nt - 1 {
            let next = match spare.take() {
                Some(buffer) => buffer,
                None => self.level("u")?,
            };
            self.encode_forward_step(&mut encoder, k, [&prev, &cur, &next], true);
            if keep {
                kept.push(next.clone());
            }
            let two_old = std::mem::replace(&mut prev, std::mem::replace(&mut cur, next));
            if !keep {
                spare = Some(two_old);
            }
            if (k + 1) % STEPS_PER_SUBMIT == 0 {
                let batch = std::mem::replace(&mut encoder, self.encoder()).finish();
                let index = self.gpu.submit([batch]);
                if let Some((earlier, done)) = in_flight.replace((index, k as u64 + 1)) {
                    self.gpu.wait_for(earlier)?;
                    if !progress(Progress { done, total }).go_on() {
                        return Err(Error::Interrupted { done });
                    }
                }
            }
        }
        self.gpu.submit([encoder.finish()]);
        let traces = self.read_traces()?;
        super::finite::check_traces(&traces, traces.len() / self.nt, self.dt())?;
        if !progress(Progress { done: total, total }).go_on() {
            return Err(Error::Interrupted { done: total });
        }
        Ok(GpuForward {
            traces,
            fields: keep.then_some(kept),
        })
    }

    /// A zeroed `[nt][receivers]` float32 buffer (residuals, adjoint inputs).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] or [`Error::BufferTooLarge`].
    pub fn receiver_buffer(&self, label: &str) -> Result<wgpu::Buffer> {
        self.gpu.create_buffer(
            label,
            (self.nt * self.receivers.points as usize * 4) as u64,
            FIELD_USAGE,
        )
    }

    /// Uploads receiver-side traces `[nt][receivers]` (observed data, adjoint inputs).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a wrong length; as [`Gpu::upload`](crate::gpu::Gpu::upload).
    pub fn upload_receiver_traces(&self, label: &str, traces: &[f64]) -> Result<wgpu::Buffer> {
        let want = self.nt * self.receivers.points as usize;
        if traces.len() != want {
            return Err(Error::InvalidArgument {
                name: "traces",
                reason: format!("{} samples; [nt][receivers] needs {want}", traces.len()),
            });
        }
        self.gpu.upload(label, &to_f32(traces), FIELD_USAGE)
    }

    /// The misfit `½ Σ r²` of a residual buffer filled by a reverse sweep. Sample 0 is never
    /// computed on the GPU (`u_0` is the rest state and records zero), so its residual is
    /// `−d_obs[0]`, taken from `observed`.
    ///
    /// # Errors
    /// As [`Gpu::read_back`](crate::gpu::Gpu::read_back); [`Error::InvalidArgument`] for a
    /// batch of several shots.
    pub fn misfit_of(&self, residual: &wgpu::Buffer, observed: &[f64]) -> Result<(f64, Vec<f64>)> {
        self.one_shot("misfit_of")?;
        let nr = self.receivers.points as usize;
        let mut r: Vec<f64> = self
            .gpu
            .read_back::<f32>(residual)?
            .iter()
            .map(|&x| x as f64)
            .collect();
        r.truncate(self.nt * nr);
        let misfit = misfit_of_residual(&mut r, observed, nr);
        Ok((misfit, r))
    }

    /// The adjoint sweep over stored fields `u_0 … u_{nt−1}` injecting `input`.
    fn reverse_sweep(
        &self,
        fields: &[wgpu::Buffer],
        input: AdjointInput<'_>,
        source_adjoint: bool,
    ) -> Result<(wgpu::Buffer, Option<wgpu::Buffer>)> {
        if fields.len() != self.nt {
            return Err(Error::InvalidArgument {
                name: "fields",
                reason: format!("{} fields for nt = {}", fields.len(), self.nt),
            });
        }
        let grad = self.field("gradient")?;
        let zero = self.level("u_-1")?;
        let src_adj = if source_adjoint {
            Some(self.gpu.create_buffer(
                "source adjoint",
                (self.nt * self.sources.points as usize * 4) as u64,
                FIELD_USAGE,
            )?)
        } else {
            None
        };
        let mut psi = [self.level("psi")?, self.level("psi")?, self.level("psi")?];
        let mut encoder = self.encoder();
        for (count, k) in (0..self.nt - 1).rev().enumerate() {
            let u_prev = if k > 0 { &fields[k - 1] } else { &zero };
            let [far, near, out] = &psi;
            self.encode_adjoint_step(
                &mut encoder,
                k,
                [u_prev, &fields[k]],
                [far, near, out],
                input,
                &grad,
                src_adj.as_ref(),
            );
            // [far, near, out] → [near, out, far]: ψ_{k+2} is the next far field, ψ_{k+1} the
            // next near one, and the old far buffer is overwritten next.
            psi.rotate_left(1);
            if (count + 1) % STEPS_PER_SUBMIT == 0 {
                self.gpu
                    .submit([std::mem::replace(&mut encoder, self.encoder()).finish()]);
            }
        }
        self.gpu.submit([encoder.finish()]);
        Ok((grad, src_adj))
    }

    /// The adjoint sweep over stored fields `u_0 … u_{nt−1}` with a given receiver-side input
    /// (`[nt][receivers]`; sample 0 is never used): the transpose of the forward map and of
    /// the linearised map, for dot-product tests.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for wrong lengths or a batch of several shots;
    /// [`Error::OutOfMemory`]; as [`Gpu::read_back`](crate::gpu::Gpu::read_back).
    pub fn adjoint(
        &self,
        fields: &[wgpu::Buffer],
        input: &[f64],
        source_adjoint: bool,
    ) -> Result<GpuAdjoint> {
        self.one_shot("adjoint")?;
        let input = self.upload_receiver_traces("adjoint input", input)?;
        let (grad, src_adj) =
            self.reverse_sweep(fields, AdjointInput::Given(&input), source_adjoint)?;
        let gradient: Vec<f32> = self.gpu.read_back(&grad)?;
        let source_adjoint = match src_adj {
            Some(b) => Some(
                self.gpu
                    .read_back::<f32>(&b)?
                    .iter()
                    .map(|&x| x as f64)
                    .collect(),
            ),
            None => None,
        };
        Ok(GpuAdjoint {
            gradient: gradient.iter().map(|&x| x as f64).collect(),
            source_adjoint,
        })
    }

    /// Misfit and gradient `∂J/∂m` for `observed` traces (`[nt][receivers]`) with every forward
    /// field kept in GPU memory: the reference that checkpointed runs must reproduce bit for
    /// bit. The residual is computed on the GPU in the reverse sweep, as in a checkpointed run.
    ///
    /// # Errors
    /// As [`forward`](Self::forward) and [`adjoint`](Self::adjoint) (a batch is refused).
    pub fn gradient_store_all(&self, observed: &[f64]) -> Result<GradientInfo> {
        self.one_shot("gradient_store_all")?;
        let observed_gpu = self.upload_receiver_traces("observed", observed)?;
        let fwd = self.forward(true)?;
        let fields = fwd.fields.unwrap_or_default();
        let residual = self.receiver_buffer("residual")?;
        let input = AdjointInput::Residual {
            observed: &observed_gpu,
            residual: &residual,
        };
        let (grad, _) = self.reverse_sweep(&fields, input, false)?;
        let (misfit, _) = self.misfit_of(&residual, observed)?;
        let gradient: Vec<f32> = self.gpu.read_back(&grad)?;
        let info = GradientInfo {
            misfit,
            gradient: gradient.iter().map(|&x| x as f64).collect(),
            traces: fwd.traces,
        };
        super::finite::check_gradient(&info, info.traces.len() / self.nt, self.dt())?;
        Ok(info)
    }
}

/// `½ Σ r²` of one shot's residual `[nt][receivers]` read back from the GPU, whose sample 0 the
/// GPU never computes: it is set to `−d_obs[0]` here first.
pub(super) fn misfit_of_residual(residual: &mut [f64], observed: &[f64], receivers: usize) -> f64 {
    let first = receivers.min(residual.len());
    for (x, o) in residual[..first].iter_mut().zip(observed) {
        *x = -o;
    }
    0.5 * residual.iter().map(|x| x * x).sum::<f64>()
}

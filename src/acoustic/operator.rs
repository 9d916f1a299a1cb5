//! The acoustic solver as an [`Operator`]: what the engine needs to checkpoint an FWI gradient.

use super::gpu::{AdjointInput, GpuAcoustic, GradientInfo};
use super::problem::Problem;
use crate::engine::Operator;
use crate::error::Result;
use crate::gpu::Gpu;

/// One shot's misfit and gradient as an [`Operator`]: two time levels `[u_k, u_{k−1}]` (under a
/// CPML each level also carries the layer's memory fields, so [`Operator::level_bytes`] is
/// [`Problem::level_bytes`] and every budget counts them), the adjoint wavefield and the
/// gradient held inside. Or those of a batch of shots stepped together
/// ([`batch`](Self::batch)): then a level holds every shot's, and so does a checkpoint.
#[derive(Debug)]
pub struct AcousticOperator<'g> {
    acoustic: GpuAcoustic<'g>,
    /// What the reverse sweep injects at the receivers.
    input: ReceiverInput,
    /// Each shot's last sample: `nt − 1`, or where it stopped, quiet, before its batch.
    ends: std::cell::RefCell<Vec<usize>>,
    gradient: wgpu::Buffer,
    /// `[ψ_{k+3}, ψ_{k+2}, out]` before the adjoint of step `k`.
    psi: [wgpu::Buffer; 3],
    /// The energy reduction, made at the first [`energy`](Self::energy) check and kept for
    /// the later ones.
    pub(super) sum_squares: std::cell::OnceCell<crate::gpu::SumSquares>,
}

/// What the reverse sweep injects at the receivers: the L2 residual against records, or an
/// adjoint source the caller gives (a framework's `dL/d(traces)`).
#[derive(Debug)]
enum ReceiverInput {
    /// `d − d_obs`, formed on the GPU from the recorded traces ([`AdjointInput::Residual`]).
    Residual {
        /// Each shot's record, `[nt][its receivers]`.
        observed_host: Vec<Vec<f64>>,
        observed: wgpu::Buffer,
        residual: wgpu::Buffer,
    },
    /// Given values ([`AcousticOperator::set_adjoint_source`]), and the adjoint wavefield
    /// sampled at the sources: the gradient to the source amplitudes.
    Given {
        values: wgpu::Buffer,
        source_adjoint: wgpu::Buffer,
    },
}

/// Checks shot `i`'s `[nt][points]` series `name` (`what` names the points): its length,
/// and every value finite in float32, as the kernels read it.
pub(crate) fn check_series(
    name: &'static str,
    i: usize,
    series: &[f64],
    nt: usize,
    points: usize,
    what: &str,
) -> Result<()> {
    if series.len() != nt * points {
        return Err(crate::Error::InvalidArgument {
            name,
            reason: format!(
                "shot {i}: {} values; [nt][{what}] is {nt} × {points} = {}",
                series.len(),
                nt * points
            ),
        });
    }
    if let Some(at) = series.iter().position(|&x| !(x as f32).is_finite()) {
        return Err(crate::Error::InvalidArgument {
            name,
            reason: format!(
                "shot {i}: value {at} ([{}][{}]) is {}, not a finite float32",
                at / points.max(1),
                at % points.max(1),
                series[at]
            ),
        });
    }
    Ok(())
}

/// One shot's gradients after a reverse sweep with a given adjoint source
/// ([`AcousticOperator::traced`]).
#[derive(Debug)]
pub struct TracedGradient {
    /// `∂L/∂m` on the padded grid (see [`Problem::model_gradient`]).
    pub gradient: Vec<f64>,
    /// `∂L/∂q`, the gradient to the shot's source amplitudes, `[nt][its sources]` (the
    /// transpose of the injection: the same interpolation weights and `v²Δt²` scaling).
    pub source_gradient: Vec<f64>,
}

impl<'g> AcousticOperator<'g> {
    /// The operator for `problem` against `observed` traces (`[nt][receivers]`).
    ///
    /// # Errors
    /// As [`GpuAcoustic::new`]; [`crate::Error::InvalidArgument`] for a wrong trace length.
    pub fn new(gpu: &'g Gpu, problem: &Problem, observed: &[f64]) -> Result<Self> {
        Self::batch(gpu, &[problem], &[observed])
    }

    /// The operator of a batch of `shots` ([`GpuAcoustic::batch`]) against their `observed`
    /// traces (one `[nt][its receivers]` record per shot): every step steps every shot, and
    /// [`finish_batch`](Self::finish_batch) returns each shot's misfit, gradient and traces
    /// with the bits it has alone.
    ///
    /// # Errors
    /// As [`GpuAcoustic::batch`]; [`crate::Error::InvalidArgument`] for a record count or a
    /// trace length that does not match.
    pub fn batch(gpu: &'g Gpu, shots: &[&Problem], observed: &[&[f64]]) -> Result<Self> {
        if observed.len() != shots.len() {
            return Err(crate::Error::InvalidArgument {
                name: "observed",
                reason: format!(
                    "{} records for a batch of {} shots",
                    observed.len(),
                    shots.len()
                ),
            });
        }
        let acoustic = GpuAcoustic::batch(gpu, shots)?;
        let nt = acoustic.nt();
        for (i, (shot, record)) in shots.iter().zip(observed).enumerate() {
            let want = nt * shot.receivers().points;
            if record.len() != want {
                return Err(crate::Error::InvalidArgument {
                    name: "observed",
                    reason: format!(
                        "shot {i} of the batch: {} samples; [nt][receivers] needs {want}",
                        record.len()
                    ),
                });
            }
        }
        let rows: Vec<(&[f64], usize)> = (observed.iter().zip(shots))
            .map(|(record, shot)| (*record, shot.receivers().points))
            .collect();
        let interleaved = super::gpu::interleave(nt, &rows);
        let observed_gpu = acoustic.upload_receiver_traces("observed", &interleaved)?;
        let residual = acoustic.receiver_buffer("residual")?;
        let input = ReceiverInput::Residual {
            observed_host: observed.iter().map(|o| o.to_vec()).collect(),
            observed: observed_gpu,
            residual,
        };
        Self::with_input(acoustic, input)
    }

    /// The operator of a batch of `shots` ([`GpuAcoustic::batch`]) that fires each shot's
    /// `amplitudes` (`[nt][its sources]`, in place of its Ricker wavelet) and, in the reverse
    /// sweep, injects the adjoint source given by
    /// [`set_adjoint_source`](Self::set_adjoint_source): any misfit's `∂L/∂d`.
    /// [`finish_traced`](Self::finish_traced) then returns `∂L/∂m` and `∂L/∂q`. With
    /// `∂L/∂d = d − d_obs` formed in float32 this is the L2 operator of
    /// [`batch`](Self::batch), to the bit.
    ///
    /// # Errors
    /// As [`GpuAcoustic::batch`]; [`crate::Error::InvalidArgument`] for an amplitude count or
    /// length that does not match, or an amplitude that is not finite.
    pub fn traced(gpu: &'g Gpu, shots: &[&Problem], amplitudes: &[&[f64]]) -> Result<Self> {
        if amplitudes.len() != shots.len() {
            return Err(crate::Error::InvalidArgument {
                name: "amplitudes",
                reason: format!(
                    "{} series for a batch of {} shots",
                    amplitudes.len(),
                    shots.len()
                ),
            });
        }
        let acoustic = GpuAcoustic::batch(gpu, shots)?;
        let nt = acoustic.nt();
        for (i, (shot, series)) in shots.iter().zip(amplitudes).enumerate() {
            check_series(
                "amplitudes",
                i,
                series,
                nt,
                shot.sources().points,
                "sources",
            )?;
        }
        let rows: Vec<(&[f64], usize)> = (amplitudes.iter().zip(shots))
            .map(|(series, shot)| (*series, shot.sources().points))
            .collect();
        acoustic.set_source_series(&super::gpu::interleave(nt, &rows))?;
        let values = acoustic.receiver_buffer("adjoint source")?;
        let source_adjoint = acoustic.gpu().create_buffer(
            "source adjoint",
            (nt * acoustic.sources.points as usize * 4) as u64,
            super::kernels::FIELD_USAGE,
        )?;
        Self::with_input(
            acoustic,
            ReceiverInput::Given {
                values,
                source_adjoint,
            },
        )
    }

    fn with_input(acoustic: GpuAcoustic<'g>, input: ReceiverInput) -> Result<Self> {
        // A level's length per shot, as every batched buffer: a shot's gradient is the first
        // `layout.len()` values of its part.
        let gradient = acoustic.level("gradient")?;
        let psi = [
            acoustic.level("psi")?,
            acoustic.level("psi")?,
            acoustic.level("psi")?,
        ];
        Ok(Self {
            ends: std::cell::RefCell::new(vec![acoustic.nt() - 1; acoustic.shots()]),
            acoustic,
            input,
            gradient,
            psi,
            sum_squares: std::cell::OnceCell::new(),
        })
    }

    /// Sets the adjoint source of an operator made by [`traced`](Self::traced): one
    /// `[nt][its receivers]` series per shot of the batch, `∂L/∂d` of the traces the forward
    /// sweep recorded. Call it before the reverse sweep.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for an operator of records ([`batch`](Self::batch)),
    /// a series count or length that does not match, or a value that is not finite; as
    /// [`Gpu::write`].
    pub fn set_adjoint_source(&self, adjoint: &[&[f64]]) -> Result<()> {
        let ReceiverInput::Given { values, .. } = &self.input else {
            return Err(crate::Error::InvalidArgument {
                name: "adjoint",
                reason: "this operator injects the residual against its records; make it with \
                         AcousticOperator::traced to give an adjoint source"
                    .into(),
            });
        };
        let nt = self.acoustic.nt();
        let receivers = &self.acoustic.shot_receivers;
        if adjoint.len() != receivers.len() {
            return Err(crate::Error::InvalidArgument {
                name: "adjoint",
                reason: format!(
                    "{} series for a batch of {} shots",
                    adjoint.len(),
                    receivers.len()
                ),
            });
        }
        for (i, (series, &n)) in adjoint.iter().zip(receivers).enumerate() {
            check_series("adjoint", i, series, nt, n, "receivers")?;
        }
        let rows: Vec<(&[f64], usize)> = adjoint
            .iter()
            .copied()
            .zip(receivers.iter().copied())
            .collect();
        let interleaved = super::gpu::interleave(nt, &rows);
        self.acoustic
            .gpu()
            .write(values, &super::kernels::to_f32(&interleaved))
    }

    /// The traces the forward sweep recorded, one `[nt][its receivers]` record per shot of
    /// the batch. `numbers` are the batch's shots as the caller numbers them, for errors.
    ///
    /// # Errors
    /// As [`Gpu::read_back`]; [`Error::NonFinite`](crate::Error::NonFinite) for a record
    /// that is not finite.
    pub fn recorded_traces(&self, numbers: &[usize]) -> Result<Vec<Vec<f64>>> {
        let acoustic = &self.acoustic;
        let traces = acoustic.split_traces(&acoustic.read_traces()?);
        for (i, record) in traces.iter().enumerate() {
            let receivers = record.len() / acoustic.nt().max(1);
            super::finite::check_traces(record, receivers, acoustic.dt())
                .map_err(|e| e.in_shot(numbers.get(i).copied().unwrap_or(i)))?;
        }
        Ok(traces)
    }

    /// Reads each shot's gradients after the reverse sweep of an operator made by
    /// [`traced`](Self::traced), in the batch's order. `numbers` are the batch's shots as the
    /// caller numbers them, for errors (as [`finish_batch`](Self::finish_batch)).
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for an operator of records; as [`Gpu::read_back`];
    /// [`Error::NonFinite`](crate::Error::NonFinite) for a gradient that is not finite.
    pub fn finish_traced(&self, numbers: &[usize]) -> Result<Vec<TracedGradient>> {
        let ReceiverInput::Given { source_adjoint, .. } = &self.input else {
            return Err(crate::Error::InvalidArgument {
                name: "finish_traced",
                reason: "this operator was made against records: use finish or finish_batch".into(),
            });
        };
        let acoustic = &self.acoustic;
        let gradient: Vec<f32> = acoustic.gpu().read_back(&self.gradient)?;
        let gradients = acoustic.split_shots(&gradient, acoustic.layout().len());
        let sources: Vec<f32> = acoustic.gpu().read_back(source_adjoint)?;
        let sources: Vec<f64> = sources.iter().map(|&x| f64::from(x)).collect();
        let per_shot = acoustic.split_sources(&sources);
        let mut out = Vec::with_capacity(gradients.len());
        for (i, (gradient, source_gradient)) in gradients.into_iter().zip(per_shot).enumerate() {
            let gradient: Vec<f64> = gradient.iter().map(|&g| f64::from(g)).collect();
            let finite = gradient
                .iter()
                .chain(&source_gradient)
                .all(|g| g.is_finite());
            if !finite {
                let e = crate::Error::NonFinite {
                    what: "the gradient".into(),
                    location: String::new(),
                };
                return Err(e.in_shot(numbers.get(i).copied().unwrap_or(i)));
            }
            out.push(TracedGradient {
                gradient,
                source_gradient,
            });
        }
        Ok(out)
    }

    /// The kernels.
    pub fn acoustic(&self) -> &GpuAcoustic<'g> {
        &self.acoustic
    }

    /// Shots in the batch (1 for [`new`](Self::new)).
    pub fn shots(&self) -> usize {
        self.acoustic.shots()
    }

    /// Sets the last sample of each shot of the batch, before the reverse sweep: a shot that
    /// stopped early (quiet, [`Quiet`](super::Quiet)) while others ran on counts nothing
    /// after its end, and its adjoint starts there, exactly as when it runs alone.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for a count other than the shots' or a sample past
    /// the time axis; as [`Gpu::write`].
    pub fn set_ends(&self, ends: &[usize]) -> Result<()> {
        let nt = self.acoustic.nt();
        if ends.len() != self.shots() || ends.iter().any(|&e| e >= nt) {
            return Err(crate::Error::InvalidArgument {
                name: "ends",
                reason: format!(
                    "{ends:?}: one last sample per shot of the batch ({}), each below nt = {nt}",
                    self.shots()
                ),
            });
        }
        let per_point: Vec<u32> = ends
            .iter()
            .zip(&self.acoustic.shot_receivers)
            .flat_map(|(&e, &n)| std::iter::repeat_n(e as u32, n))
            .collect();
        if !per_point.is_empty() {
            self.acoustic
                .receivers
                .set_ends(self.acoustic.gpu(), &per_point)?;
        }
        self.ends.replace(ends.to_vec());
        Ok(())
    }

    /// Reads the results of a one-shot operator after the reverse sweep: misfit, gradient,
    /// predicted traces.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a batch of several shots
    /// (use [`finish_batch`](Self::finish_batch)); as [`finish_batch`](Self::finish_batch).
    pub fn finish(&self) -> Result<GradientInfo> {
        if self.shots() != 1 {
            return Err(crate::Error::InvalidArgument {
                name: "finish",
                reason: format!(
                    "a batch of {} shots has one result per shot: use finish_batch",
                    self.shots()
                ),
            });
        }
        let mut shots = self.read_results(None)?;
        Ok(shots.remove(0))
    }

    /// Reads each shot's results after the reverse sweep, in the batch's order: misfit,
    /// gradient, predicted traces (zero after a shot's end), each with the bits of the shot
    /// run alone. `numbers` are the batch's shots as the caller numbers them (a survey's), for
    /// errors; a shot without a number is named by its place in the batch.
    ///
    /// # Errors
    /// As [`Gpu::read_back`]; [`Error::NonFinite`](crate::Error::NonFinite) when any of them
    /// is NaN or infinite, naming the shot.
    pub fn finish_batch(&self, numbers: &[usize]) -> Result<Vec<GradientInfo>> {
        self.read_results(Some(numbers))
    }

    fn read_results(&self, numbers: Option<&[usize]>) -> Result<Vec<GradientInfo>> {
        let ReceiverInput::Residual {
            observed_host,
            residual,
            ..
        } = &self.input
        else {
            return Err(crate::Error::InvalidArgument {
                name: "finish",
                reason: "this operator was given an adjoint source: use finish_traced".into(),
            });
        };
        let acoustic = &self.acoustic;
        let (nt, dt) = (acoustic.nt(), acoustic.dt());
        let residual: Vec<f32> = acoustic.gpu().read_back(residual)?;
        let residual: Vec<f64> = residual.iter().map(|&x| f64::from(x)).collect();
        let gradient: Vec<f32> = acoustic.gpu().read_back(&self.gradient)?;
        let gradients = acoustic.split_shots(&gradient, acoustic.layout().len());
        let traces = acoustic.split_traces(&acoustic.read_traces()?);
        let residuals = acoustic.split_traces(&residual);
        let ends = self.ends.borrow().clone();
        let shots =
            (gradients.into_iter().zip(traces).zip(residuals)).zip(observed_host.iter().zip(&ends));
        let mut infos = Vec::with_capacity(self.shots());
        for (i, (((gradient, mut traces), mut residual), (observed, &end))) in shots.enumerate() {
            let receivers = traces.len() / nt.max(1);
            // Samples after the shot's end were recorded while its batch ran on: alone, the
            // shot never recorded them.
            traces[(end + 1) * receivers..].fill(0.0);
            let misfit = super::store_all::misfit_of_residual(&mut residual, observed, receivers);
            let info = GradientInfo {
                misfit,
                gradient: gradient.iter().map(|&g| f64::from(g)).collect(),
                traces,
            };
            super::finite::check_gradient(&info, receivers, dt).map_err(|e| match numbers {
                Some(numbers) => e.in_shot(numbers.get(i).copied().unwrap_or(i)),
                None => e,
            })?;
            infos.push(info);
        }
        Ok(infos)
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

    /// The shots of the batch: a lossy checkpoint stores each as it would alone.
    fn level_parts(&self) -> usize {
        self.shots()
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
        let (input, source_adjoint) = match &self.input {
            ReceiverInput::Residual {
                observed, residual, ..
            } => (AdjointInput::Residual { observed, residual }, None),
            ReceiverInput::Given {
                values,
                source_adjoint,
            } => (AdjointInput::Given(values), Some(source_adjoint)),
        };
        self.acoustic.encode_adjoint_step(
            encoder,
            k as usize,
            [prev, cur],
            [far, near, out],
            input,
            &self.gradient,
            source_adjoint,
        );
        // [far, near, out] → [near, out, far], as in the store-all sweep.
        self.psi.rotate_left(1);
        Ok(())
    }
}

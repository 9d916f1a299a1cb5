//! The acoustic kernels on the GPU: [`GpuAcoustic`] uploads a [`Problem`] once and encodes
//! forward steps, adjoint steps and gradient accumulation into command buffers.
//!
//! The adjoint of step `k` reads the state `(u_k, u_{k−1})` only: the gradient term is formed
//! from it (`shaders/acoustic_step.wgsl`) and the data residual from the traces the forward
//! sweep recorded, so a checkpointed run never recomputes `u_{k+1}` for it
//! ([`Operator::adjoint_needs_next`](crate::engine::Operator::adjoint_needs_next)).

use std::cell::Cell;

use bytemuck::{Pod, Zeroable};

use super::cpml_kernels::CpmlKernels;
use super::geometry::PointPlan;
use super::grid::Layout;
use super::kernels::{BindKey, FIELD_USAGE, STEP_WGSL, to_f32};
use super::points::{PointBuffers, PointKernels};
use super::problem::Problem;
use crate::error::{Error, Result};
use crate::gpu::{BindGroupCache, Gpu};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GridUniform {
    padded: [u32; 3],
    inv_dt2: f32,
    /// Extended sizes and the CPML's width (0 without one).
    extended: [u32; 4],
    coeffs: [f32; 12],
    first: [f32; 12],
    psi_offset: [u32; 4],
    slab_len: [u32; 4],
    /// A level's length (words from one shot to the next in a batched buffer), the shots in
    /// the batch, and in 3D the workgroups along x of one shot.
    batch: [u32; 4],
}

/// What the adjoint step injects at the receivers.
#[derive(Clone, Copy, Debug)]
pub enum AdjointInput<'a> {
    /// The data residual, computed in the step from the recorded traces and `observed`
    /// (`[nt][receivers]`), and written into `residual` (same shape) on the way.
    Residual {
        /// Observed traces on the GPU.
        observed: &'a wgpu::Buffer,
        /// Where the residual is written.
        residual: &'a wgpu::Buffer,
    },
    /// A given receiver-side series (`[nt][receivers]`), as in a dot-product test.
    Given(&'a wgpu::Buffer),
}

/// Bind groups kept at once: rotating buffers reuse a handful; a store-all run binds a new
/// buffer every step, so the cache is bounded rather than kept forever.
const BIND_GROUPS_KEPT: usize = 256;

/// The acoustic problem resident on the GPU: one shot, or a batch of shots stepped together
/// ([`batch`](Self::batch)).
///
/// ```no_run
/// use gpurevolve::acoustic::{GpuAcoustic, Geometry, Model, Problem, TimeAxis};
/// use gpurevolve::gpu::Gpu;
/// let model = Model::constant(&[64, 64], 10.0, 10, 2000.0)?;
/// let geometry = Geometry::new(&model, vec![vec![320.0, 20.0]], vec![vec![100.0, 20.0]], 15.0)?;
/// let time = TimeAxis::new(&model, 8, 300, None)?;
/// let problem = Problem::new(model, geometry, time, 8)?;
/// let gpu = Gpu::new()?;
/// let acoustic = GpuAcoustic::new(&gpu, &problem)?;
/// let traces = acoustic.forward(false)?.traces; // [nt][receivers]
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Debug)]
pub struct GpuAcoustic<'g> {
    pub(super) gpu: &'g Gpu,
    layout: Layout,
    pub(super) nt: usize,
    dt: f64,
    /// One shot's time level, in words.
    level_len: usize,
    /// Shots in the batch, and each one's receivers (its columns of the traces).
    pub(super) batch: usize,
    pub(super) shot_receivers: Vec<usize>,
    /// Each shot's sources (its columns of the source series).
    shot_sources: Vec<usize>,
    stencils: Stencils,
    step_groups: [u32; 3],
    points: PointKernels,
    grid: wgpu::Buffer,
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    pub(super) sources: PointBuffers,
    pub(super) receivers: PointBuffers,
    source_values: wgpu::Buffer,
    pub(super) traces: wgpu::Buffer,
    bind_groups: BindGroupCache<BindKey>,
    /// Dispatches encoded so far (see [`GpuAcoustic::dispatches`]).
    pub(super) dispatched: Cell<u64>,
}

/// The kernels of the step (forward and adjoint) and of the gradient.
#[derive(Debug)]
enum Stencils {
    /// The sponge's (or no layer's): `shaders/acoustic_step.wgsl` over the whole grid.
    Plain {
        step: wgpu::ComputePipeline,
        gradient: wgpu::ComputePipeline,
    },
    /// A CPML's (src/acoustic/cpml_kernels.rs), with its `(A, B)` table.
    Cpml {
        kernels: CpmlKernels,
        profile: wgpu::Buffer,
    },
}

/// The store-all forward run on the GPU.
#[derive(Debug)]
pub struct GpuForward {
    /// Receiver traces `[nt][receivers]`.
    pub traces: Vec<f64>,
    /// `u_0 … u_{nt−1}` as GPU buffers, when kept.
    pub fields: Option<Vec<wgpu::Buffer>>,
}

/// What the adjoint sweep returns.
#[derive(Debug)]
pub struct GpuAdjoint {
    /// `∂J/∂m` on the padded grid.
    pub gradient: Vec<f64>,
    /// Adjoint of the source series `[nt][sources]`, when asked for.
    pub source_adjoint: Option<Vec<f64>>,
}

/// Misfit and gradient of one shot.
#[derive(Debug)]
pub struct GradientInfo {
    /// `J = ½ Σ (d − d_obs)²`.
    pub misfit: f64,
    /// `∂J/∂m` on the padded grid (see [`Layout::unpad`]).
    pub gradient: Vec<f64>,
    /// The predicted traces `[nt][receivers]`.
    pub traces: Vec<f64>,
}

/// Each shot's `[nt][points]` series as one `[nt][points of every shot]` series: row `k` of
/// every shot, shot after shot (the batched layout of source series and traces). `rows` pairs
/// a shot's series with its points.
pub(super) fn interleave(nt: usize, rows: &[(&[f64], usize)]) -> Vec<f64> {
    let mut interleaved = Vec::with_capacity(rows.iter().map(|(s, _)| s.len()).sum());
    for k in 0..nt {
        for &(series, n) in rows {
            interleaved.extend_from_slice(&series[k * n..(k + 1) * n]);
        }
    }
    interleaved
}

/// The inverse of [`interleave`]: each shot's columns of `[nt][points of every shot]`, as
/// `[nt][its points]`, for shots of `counts` points.
fn split_columns(nt: usize, series: &[f64], counts: &[usize]) -> Vec<Vec<f64>> {
    let all: usize = counts.iter().sum();
    let mut first = 0;
    counts
        .iter()
        .map(|&n| {
            let columns = first..first + n;
            first += n;
            series
                .chunks(all.max(1))
                .take(nt)
                .flat_map(|row| row[columns.clone()].iter().copied())
                .collect()
        })
        .collect()
}

/// The most shots of `problem` one batch can hold on `gpu`, and the limit that binds (for
/// errors): each batched buffer (a time level, the traces, records and residuals, the source
/// series) within the device's buffer limits, the kernels' 2³¹-word indices, the step's and
/// the CPML's dispatches, and the point kernels' one row of workgroups. 0 when one shot does
/// not fit.
pub fn largest_batch(gpu: &Gpu, problem: &Problem) -> (usize, &'static str) {
    let limits = gpu.limits();
    let buffer = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let per_dim = u64::from(limits.max_compute_workgroups_per_dimension);
    let nt = problem.time().nt as u64;
    let layout = problem.layout();
    let (wg, dim3) = if layout.dim == 3 {
        (gpu.options().kernels.step_workgroup_3d, true)
    } else {
        (gpu.options().kernels.step_workgroup_2d, false)
    };
    let x_groups = (layout.extended[0] as u64).div_ceil(u64::from(wg[2]).max(1));
    let reach = per_dim * u64::from(super::points::POINTS_WORKGROUP);
    let points = |plan: &PointPlan| plan.points.max(plan.cells.len()) as u64;
    let fits = |whole: u64, one: u64| whole.checked_div(one).unwrap_or(u64::MAX);
    let bounds = [
        (
            fits(buffer, problem.level_bytes()),
            "the device's buffer size for a time level",
        ),
        (
            fits(buffer, nt * problem.receivers().points as u64 * 4),
            "the device's buffer size for the traces",
        ),
        (
            fits(buffer, nt * problem.sources().points as u64 * 4),
            "the device's buffer size for the source series",
        ),
        (
            fits(i32::MAX as u64, problem.level_len() as u64),
            "the kernels' 2^31-word indices",
        ),
        (
            if dim3 {
                fits(per_dim, x_groups)
            } else {
                per_dim * u64::from(wg[2])
            },
            "the device's workgroups per dispatch dimension for the step",
        ),
        (
            per_dim,
            "the device's workgroups per dispatch dimension for the absorbing layer",
        ),
        (
            fits(reach, points(problem.receivers())),
            "one dispatch of the receivers on the device",
        ),
        (
            fits(reach, points(problem.sources())),
            "one dispatch of the sources on the device",
        ),
        (u64::from(u32::MAX), "32-bit shot counts"),
    ];
    let (most, limit) = bounds
        .into_iter()
        .min_by_key(|&(n, _)| n)
        .unwrap_or((1, "none"));
    (usize::try_from(most).unwrap_or(usize::MAX), limit)
}

impl<'g> GpuAcoustic<'g> {
    /// Compiles the kernels for `problem`'s order and dimension and uploads its coefficients,
    /// source wavelet and point plans.
    ///
    /// # Errors
    /// [`Error::BufferTooLarge`] when a field exceeds the device's buffer limits (can never
    /// fit), [`Error::OutOfMemory`] when the device is full, [`Error::InvalidArgument`] when
    /// the grid needs more workgroups than a dispatch holds, [`Error::Gpu`] on a kernel that
    /// does not compile.
    pub fn new(gpu: &'g Gpu, problem: &Problem) -> Result<Self> {
        Self::batch(gpu, &[problem])
    }

    /// A batch of `shots` stepped together: each dispatch steps every shot. A batched buffer
    /// holds the shots' fields one after another, [`Problem::level_len`] words apart; a time
    /// level ([`level_bytes`](Self::level_bytes)) is the batch's, traces are `[nt][receivers of
    /// every shot]`, shot after shot, and so is the source series. Each shot's numbers are
    /// the bits it has alone: no kernel reads another shot's words.
    ///
    /// # Errors
    /// As [`new`](Self::new); [`Error::InvalidArgument`] for no shots, or shots that do not
    /// [share their medium](Problem::shares_medium) with the first; [`Error::BufferTooLarge`]
    /// when the batch's time level exceeds the device's buffer limits (a smaller batch may fit).
    pub fn batch(gpu: &'g Gpu, shots: &[&Problem]) -> Result<Self> {
        let Some(problem) = shots.first() else {
            return Err(Error::InvalidArgument {
                name: "shots",
                reason: "a batch needs at least one shot".into(),
            });
        };
        if let Some(i) = shots.iter().position(|s| !s.shares_medium(problem)) {
            return Err(Error::InvalidArgument {
                name: "shots",
                reason: format!(
                    "shot {i} of the batch has another grid, time axis, order, absorbing \
                     layer or model than its first: only shots that differ in their sources, \
                     receivers and wavelets can run together"
                ),
            });
        }
        let batch = shots.len();
        let layout = *problem.layout();
        let limits = gpu.limits();
        // Before compiling or uploading anything: can a field ever exist on this device?
        gpu.check_buffer_size("time level", problem.level_bytes(), FIELD_USAGE)?;
        // And a batch of them? Say how many would (the checks below stay as the backstop).
        let (most, limit) = largest_batch(gpu, problem);
        if batch > 1 && batch > most {
            return Err(Error::InvalidArgument {
                name: "batch",
                reason: format!(
                    "a batch of {batch} shots exceeds {limit}: lower batch to at most {}",
                    most.max(1)
                ),
            });
        }
        let batch_bytes = problem.level_bytes().saturating_mul(batch as u64);
        gpu.check_buffer_size("batch's time level", batch_bytes, FIELD_USAGE)?;
        // The kernels index a batched field in u32 words and the CPML's memory fields in i32
        // (negative means outside a slab): a batch's level must stay under 2³¹ words, whatever
        // the device's buffer limits allow.
        if (batch as u64).saturating_mul(problem.level_len() as u64) > i32::MAX as u64 {
            return Err(Error::InvalidArgument {
                name: "batch",
                reason: format!(
                    "a batch of {batch} shots of {} words a level exceeds the kernels' 2^31 \
                     word indices: use a batch of at most {}",
                    problem.level_len(),
                    (i32::MAX as usize / problem.level_len().max(1)).max(1)
                ),
            });
        }
        // The step kernel's workgroup shape, `(z, y or x, x)` with `z` contiguous in memory, is
        // a tuning knob of the device (`GpuOptions::kernels`); the WGSL's `override WORKGROUP_X/Y/Z` have
        // no default, so the dispatch below and the kernel always agree.
        let (dim, wg) = if layout.dim == 3 {
            ("3d", gpu.options().kernels.step_workgroup_3d)
        } else {
            ("2d", gpu.options().kernels.step_workgroup_2d)
        };
        let e = layout.extended;
        let groups = |cells: usize, size: u32| cells.div_ceil(size as usize) as u32;
        // The shots ride on the dispatch's z dimension: in 2D one per z invocation, in 3D
        // (where z is the x axis) one run of x's workgroups after another.
        let x_groups = groups(e[0], wg[2]);
        let step_groups = if layout.dim == 3 {
            [
                groups(e[2], wg[0]),
                groups(e[1], wg[1]),
                x_groups.saturating_mul(batch as u32),
            ]
        } else {
            [
                groups(e[2], wg[0]),
                groups(e[0], wg[1]),
                groups(batch, wg[2]),
            ]
        };
        // A CPML region's dispatch holds one shot per workgroup along z.
        if step_groups
            .iter()
            .chain(&[batch as u32])
            .any(|&g| g > limits.max_compute_workgroups_per_dimension)
            || batch > u32::MAX as usize
        {
            return Err(Error::InvalidArgument {
                name: "shape",
                reason: format!(
                    "an extended grid of {e:?} in a batch of {batch} shots needs \
                     {step_groups:?} workgroups, above this device's {} per dimension: use a \
                     smaller batch or grid",
                    limits.max_compute_workgroups_per_dimension
                ),
            });
        }
        let step_constants = [
            ("RADIUS", layout.radius as f64),
            ("WORKGROUP_X", f64::from(wg[0])),
            ("WORKGROUP_Y", f64::from(wg[1])),
            ("WORKGROUP_Z", f64::from(wg[2])),
        ];
        let stencils = match problem.cpml() {
            // The gradient is the step's derivative: the same stencil, shape and dispatch.
            None => Stencils::Plain {
                step: gpu.compute_pipeline(
                    "acoustic step",
                    STEP_WGSL,
                    &format!("step_{dim}"),
                    &step_constants,
                )?,
                gradient: gpu.compute_pipeline(
                    "acoustic gradient",
                    STEP_WGSL,
                    &format!("gradient_{dim}"),
                    &step_constants,
                )?,
            },
            Some(cpml) => {
                let table: Vec<f32> = cpml
                    .profile_table()
                    .iter()
                    .flat_map(|ab| ab.map(|v| v as f32))
                    .collect();
                Stencils::Cpml {
                    kernels: CpmlKernels::new(gpu, &layout, cpml, wg, &step_constants)?,
                    profile: gpu.upload("cpml profile", &table, wgpu::BufferUsages::STORAGE)?,
                }
            }
        };
        let points = PointKernels::new(gpu)?;

        // Uniforms: UNIFORM to bind them, COPY_DST (added by `upload`) to fill them.
        // c₁ … c_r; the kernel's difference form needs no c₀ (slot 0 stays zero).
        let mut c = [0f32; 12];
        for (k, ck) in problem.laplacian().iter().enumerate().skip(1) {
            c[k] = *ck as f32;
        }
        let p = layout.padded;
        let dt = problem.time().dt;
        let cpml = problem.cpml();
        let mut first = [0f32; 12];
        let (mut psi_offset, mut slab_len, mut width) = ([0u32; 4], [0u32; 4], 0u32);
        if let Some(cpml) = cpml {
            for (k, ck) in cpml.first().iter().enumerate().skip(1) {
                first[k] = *ck as f32;
            }
            // A level was checked against the device's buffer limits above: under 2³⁰ values,
            // so these fit the uniform's u32 and the kernel's i32 indices.
            for d in 0..3 {
                psi_offset[d] = cpml.psi_offsets()[d] as u32;
                slab_len[d] = cpml.slab_lens()[d] as u32;
            }
            width = cpml.width() as u32;
        }
        let grid_uniform = GridUniform {
            padded: [p[0] as u32, p[1] as u32, p[2] as u32],
            inv_dt2: (1.0 / (dt * dt)) as f32,
            extended: [e[0] as u32, e[1] as u32, e[2] as u32, width],
            coeffs: c,
            first,
            psi_offset,
            slab_len,
            batch: [problem.level_len() as u32, batch as u32, x_groups, 0],
        };
        let grid = gpu.upload("grid", &[grid_uniform], wgpu::BufferUsages::UNIFORM)?;

        let (a, b) = problem.step_coefficients();
        // The CPML's kernels take b as 1 (η = 0 there, so b = a·m/Δt² rounds to 1 in float32)
        // and never read it; the halo's b is 0.
        debug_assert!(
            problem.cpml().is_none() || b.iter().all(|&v| v == 0.0 || v as f32 == 1.0),
            "a CPML problem with damping"
        );
        let a = gpu.upload("a", &to_f32(&a), wgpu::BufferUsages::STORAGE)?;
        let b = gpu.upload("b", &to_f32(&b), wgpu::BufferUsages::STORAGE)?;
        let nt = problem.time().nt;
        let stride = problem.level_len();
        let plans = |plan: fn(&Problem) -> &PointPlan| {
            let plans: Vec<&PointPlan> = shots.iter().map(|s| plan(s)).collect();
            PointPlan::batched(&plans, stride)
        };
        let sources = points.buffers(gpu, &plans(Problem::sources), nt, dt, stride)?;
        let receivers = points.buffers(gpu, &plans(Problem::receivers), nt, dt, stride)?;
        let series: Vec<Vec<f64>> = shots.iter().map(|s| s.source_series()).collect();
        let rows: Vec<(&[f64], usize)> = (series.iter().zip(shots))
            .map(|(series, shot)| (&series[..], shot.sources().points))
            .collect();
        let interleaved = interleave(nt, &rows);
        let source_values = gpu.upload(
            "source series",
            &to_f32(&interleaved),
            wgpu::BufferUsages::STORAGE,
        )?;
        let traces = gpu.create_buffer(
            "traces",
            (nt * receivers.points as usize * 4) as u64,
            FIELD_USAGE,
        )?;
        Ok(Self {
            gpu,
            layout,
            level_len: problem.level_len(),
            batch,
            shot_receivers: shots.iter().map(|s| s.receivers().points).collect(),
            shot_sources: shots.iter().map(|s| s.sources().points).collect(),
            nt,
            dt,
            stencils,
            step_groups,
            points,
            grid,
            a,
            b,
            sources,
            receivers,
            source_values,
            traces,
            bind_groups: BindGroupCache::new(BIND_GROUPS_KEPT),
            dispatched: Cell::new(0),
        })
    }

    /// The GPU this runs on.
    pub fn gpu(&self) -> &'g Gpu {
        self.gpu
    }

    /// The field layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Bytes of one padded field (a gradient, say).
    pub fn field_bytes(&self) -> u64 {
        self.layout.len() as u64 * 4
    }

    /// Bytes of one time level: the padded field, then under a CPML the layer's memory fields
    /// ([`Problem::level_len`]), for every shot of the batch. What the steps read and write,
    /// and what a checkpoint holds.
    pub fn level_bytes(&self) -> u64 {
        (self.level_len * self.batch) as u64 * 4
    }

    /// Words from one shot's part of a batched level to the next's ([`Problem::level_len`]).
    pub fn level_len(&self) -> usize {
        self.level_len
    }

    /// Shots in the batch (1 for [`new`](Self::new)).
    pub fn shots(&self) -> usize {
        self.batch
    }

    /// Each shot's part of a batched level read back (`[shot][level]`, a level's length
    /// apart), cut to its first `len` values: a shot's field of a gradient, say.
    pub(super) fn split_shots<T: Copy>(&self, batched: &[T], len: usize) -> Vec<Vec<T>> {
        batched
            .chunks(self.level_len)
            .take(self.batch)
            .map(|shot| shot[..len.min(shot.len())].to_vec())
            .collect()
    }

    /// Each shot's columns of `[nt][receivers of every shot]` traces, as `[nt][its
    /// receivers]`.
    pub(super) fn split_traces(&self, traces: &[f64]) -> Vec<Vec<f64>> {
        split_columns(self.nt, traces, &self.shot_receivers)
    }

    /// Each shot's columns of a `[nt][sources of every shot]` series, as `[nt][its sources]`.
    pub(super) fn split_sources(&self, series: &[f64]) -> Vec<Vec<f64>> {
        split_columns(self.nt, series, &self.shot_sources)
    }

    /// A new zeroed field buffer (wgpu zero-fills new buffers).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] or [`Error::BufferTooLarge`].
    pub fn field(&self, label: &str) -> Result<wgpu::Buffer> {
        self.gpu
            .create_buffer(label, self.field_bytes(), FIELD_USAGE)
    }

    /// A new zeroed time level (forward or adjoint wavefield with its memory fields).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] or [`Error::BufferTooLarge`].
    pub fn level(&self, label: &str) -> Result<wgpu::Buffer> {
        self.gpu
            .create_buffer(label, self.level_bytes(), FIELD_USAGE)
    }

    /// Replaces the source series (`[nt][sources]`; the Ricker wavelet by default).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a wrong length.
    pub fn set_source_series(&self, series: &[f64]) -> Result<()> {
        let want = self.nt * self.sources.points as usize;
        if series.len() != want {
            return Err(Error::InvalidArgument {
                name: "series",
                reason: format!("{} values; [nt][sources] needs {want}", series.len()),
            });
        }
        self.gpu.write(&self.source_values, &to_f32(series))
    }

    /// The step (`adjoint` false) or the adjoint step from levels `prev`, `cur` into `next`:
    /// the plain stencil, then under a CPML the layer's terms (or their transpose).
    fn encode_stencil(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        adjoint: bool,
        [prev, cur, next]: [&wgpu::Buffer; 3],
    ) {
        let buffers = [prev.clone(), cur.clone(), next.clone()];
        let (grid, a) = (self.grid.as_entire_binding(), self.a.as_entire_binding());
        let levels = [
            (3, prev.as_entire_binding()),
            (4, cur.as_entire_binding()),
            (5, next.as_entire_binding()),
        ];
        let (kernels, profile) = match &self.stencils {
            Stencils::Cpml { kernels, profile } => (kernels, profile),
            Stencils::Plain { step, .. } => {
                let [p, c, n] = levels;
                let entries = [(0, grid), (1, a), (2, self.b.as_entire_binding()), p, c, n];
                let kernel = ("step", step, self.step_groups);
                self.dispatch_cached(pass, kernel, BindKey::Step(buffers), &entries);
                return;
            }
        };
        let regions = if adjoint {
            &kernels.adjoint
        } else {
            &kernels.step
        };
        // The CPML's kernels never read b (η = 0, so b = 1 there).
        let [p, c, n] = levels;
        let entries = [(0, grid), (1, a), p, c, n, (8, profile.as_entire_binding())];
        for region in regions {
            let key = BindKey::LayerStep(adjoint, region.axes, buffers.clone());
            let kernel = ("cpml step", &region.pipeline, self.region_groups(region));
            self.dispatch_cached(pass, kernel, key, &entries);
        }
    }

    /// `grad −= ψ_{k+1} (u_{k+1} − 2u_k + u_{k−1}) / Δt²` with the difference formed from the
    /// state (see [`encode_adjoint_step`](Self::encode_adjoint_step)): the plain kernel, or
    /// under a CPML each region's.
    fn encode_gradient(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        [u_prev, u, psi_out, grad]: [&wgpu::Buffer; 4],
    ) {
        let buffers = [u_prev.clone(), u.clone(), psi_out.clone(), grad.clone()];
        let common = [
            (0, self.grid.as_entire_binding()),
            (1, self.a.as_entire_binding()),
            (4, u.as_entire_binding()),
            (6, psi_out.as_entire_binding()),
            (7, grad.as_entire_binding()),
        ];
        let (kernels, profile) = match &self.stencils {
            Stencils::Cpml { kernels, profile } => (kernels, profile),
            Stencils::Plain { gradient, .. } => {
                // The damped form also reads b and u_{k−1}.
                let [g, a, u, psi, grad] = common;
                let (b, u_prev) = (self.b.as_entire_binding(), u_prev.as_entire_binding());
                let entries = [g, a, (2, b), (3, u_prev), u, psi, grad];
                let kernel = ("gradient", gradient, self.step_groups);
                self.dispatch_cached(pass, kernel, BindKey::Gradient(buffers), &entries);
                return;
            }
        };
        // The CPML's (b = 1) reads neither b nor u_{k−1}.
        let [g, a, u, psi, grad] = common;
        let entries = [g, a, u, psi, grad, (8, profile.as_entire_binding())];
        for region in &kernels.gradient {
            let key = BindKey::LayerGradient(region.axes, buffers.clone());
            let kernel = (
                "cpml gradient",
                &region.pipeline,
                self.region_groups(region),
            );
            self.dispatch_cached(pass, kernel, key, &entries);
        }
    }

    /// A CPML region's workgroups for the batch: its own in x and y, the shots in z.
    fn region_groups(&self, region: &super::cpml_kernels::LayerRegion) -> [u32; 3] {
        [region.groups[0], region.groups[1], self.batch as u32]
    }

    /// Dispatches `pipeline` over `groups` with the bind group cached under `key`, made from
    /// `entries` only the first time.
    fn dispatch_cached(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        (label, pipeline, [x, y, z]): (&str, &wgpu::ComputePipeline, [u32; 3]),
        key: BindKey,
        entries: &[(u32, wgpu::BindingResource<'_>)],
    ) {
        let bg = self.bind_groups.get_or_create(key, || {
            let layout = pipeline.get_bind_group_layout(0);
            self.gpu.bind_group(label, &layout, entries)
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bg, &[]);
        pass.dispatch_workgroups(x, y, z);
        self.count_dispatch();
    }

    /// Encodes forward step `k` (`0 ≤ k < nt − 1`): `next` ← step of (`prev`, `cur`) with the
    /// source at `t_k` injected; when `record`, also samples `next` into trace sample `k + 1`.
    /// `next` must differ from `prev` and `cur`, which are only read: a state can be
    /// checkpointed by keeping its buffers.
    pub fn encode_forward_step(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        k: usize,
        [prev, cur, next]: [&wgpu::Buffer; 3],
        record: bool,
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("forward step"),
            timestamp_writes: None,
        });
        self.encode_stencil(&mut pass, false, [prev, cur, next]);
        let (gpu, cache) = (self.gpu, &self.bind_groups);
        self.points.encode_inject(
            gpu,
            cache,
            &mut pass,
            &self.sources,
            k,
            [&self.source_values, &self.a, next],
        );
        self.count_dispatch();
        if record {
            self.points.encode_sample(
                gpu,
                cache,
                &mut pass,
                &self.receivers,
                k + 1,
                [next, &self.traces],
            );
            self.count_dispatch();
        }
    }

    /// Encodes the adjoint of step `k`, given the forward state `u_{k−1}, u_k` (and, for
    /// [`AdjointInput::Residual`], the traces recorded by the forward steps):
    ///
    /// 1. the receiver-side input at sample `k + 1`: with [`AdjointInput::Residual`],
    ///    `r_{k+1} = d_{k+1} − d_obs` is computed here from the recorded trace sample into its
    ///    buffer; with [`AdjointInput::Given`], the buffer's sample `k + 1` is used as is;
    /// 2. `psi_out = ψ_{k+1}` ← step of (`psi_far = ψ_{k+3}`, `psi_near = ψ_{k+2}`) with that
    ///    input injected at the receivers;
    /// 3. `grad −= ψ_{k+1} (u_{k+1} − 2u_k + u_{k−1}) / Δt²`, with the difference formed from
    ///    the state as `2(b − 1)(u_k − u_{k−1}) + a (L u_k + Sᵀq_k)`;
    /// 4. when `source_adjoint` is given, `ψ_{k+1}` sampled at the sources into its sample `k`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_adjoint_step(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        k: usize,
        [u_prev, u]: [&wgpu::Buffer; 2],
        [psi_far, psi_near, psi_out]: [&wgpu::Buffer; 3],
        input: AdjointInput<'_>,
        grad: &wgpu::Buffer,
        source_adjoint: Option<&wgpu::Buffer>,
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("adjoint step"),
            timestamp_writes: None,
        });
        let (gpu, cache, receivers) = (self.gpu, &self.bind_groups, &self.receivers);
        let injected = match input {
            AdjointInput::Residual { observed, residual } => {
                self.points.encode_residual(
                    gpu,
                    cache,
                    &mut pass,
                    receivers,
                    k + 1,
                    [&self.traces, observed, residual],
                );
                self.count_dispatch();
                residual
            }
            AdjointInput::Given(values) => values,
        };
        self.encode_stencil(&mut pass, true, [psi_far, psi_near, psi_out]);
        self.points.encode_inject(
            gpu,
            cache,
            &mut pass,
            receivers,
            k + 1,
            [injected, &self.a, psi_out],
        );
        self.count_dispatch();
        self.encode_gradient(&mut pass, [u_prev, u, psi_out, grad]);
        self.points.encode_source_gradient(
            gpu,
            cache,
            &mut pass,
            &self.sources,
            k,
            [&self.source_values, &self.a, psi_out, grad],
        );
        self.count_dispatch();
        if let Some(out) = source_adjoint {
            let sources = &self.sources;
            self.points
                .encode_sample(gpu, cache, &mut pass, sources, k, [psi_out, out]);
            self.count_dispatch();
        }
    }

    pub(super) fn encoder(&self) -> wgpu::CommandEncoder {
        self.gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("acoustic"),
            })
    }

    /// Compute dispatches encoded so far by this problem's kernels: the host-side work of a
    /// step is counted, not guessed (a forward step is a stencil and an injection, plus a
    /// sample when recording).
    pub fn dispatches(&self) -> u64 {
        self.dispatched.get()
    }

    pub(super) fn count_dispatch(&self) {
        self.dispatched.set(self.dispatched.get() + 1);
    }

    /// Time samples per trace.
    pub fn nt(&self) -> usize {
        self.nt
    }

    /// Time step in seconds.
    pub fn dt(&self) -> f64 {
        self.dt
    }
}

//! The acoustic kernels on the GPU: [`GpuAcoustic`] uploads a [`Problem`] once and encodes
//! forward steps, adjoint steps and gradient accumulation into command buffers.

use std::cell::RefCell;
use std::collections::HashMap;

use bytemuck::{Pod, Zeroable};

use super::geometry::PointPlan;
use super::grid::Layout;
use super::problem::Problem;
use crate::error::{Error, Result};
use crate::gpu::{Dispatch1d, Gpu, dispatch_1d};

const STEP_WGSL: &str = include_str!("../../shaders/acoustic_step.wgsl");
const POINTS_WGSL: &str = include_str!("../../shaders/acoustic_points.wgsl");
const GRADIENT_WGSL: &str = include_str!("../../shaders/acoustic_gradient.wgsl");

/// Steps encoded into one command buffer before it is submitted: enough to keep the GPU fed,
/// few enough that a long run does not hold thousands of bind groups in flight.
pub(super) const STEPS_PER_SUBMIT: usize = 32;

/// Field buffers: bound as storage; COPY_SRC to read back or copy into a checkpoint; COPY_DST
/// to restore one from host memory.
pub const FIELD_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GridUniform {
    padded: [u32; 4],
    extended: [u32; 4],
    coeffs: [f32; 12],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SampleUniform {
    k: u32,
    points: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GradientUniform {
    inv_dt2: f32,
    len: u32,
    row: u32,
    _pad: u32,
}

/// One plan's buffers: the gather for injection, the taps for sampling, and a table of
/// per-sample uniforms addressed by dynamic offset (the time index changes every step, and a
/// `write_buffer` per step would land before the whole submission, not between its steps).
#[derive(Debug)]
pub(super) struct PointBuffers {
    cells: wgpu::Buffer,
    offsets: wgpu::Buffer,
    entries: wgpu::Buffer,
    taps: wgpu::Buffer,
    table: wgpu::Buffer,
    pub(super) points: u32,
    cell_count: u32,
}

/// What the adjoint step injects at the receivers.
#[derive(Clone, Copy, Debug)]
pub enum AdjointInput<'a> {
    /// The data residual, computed in the step from the forward field and `observed`
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

/// What the bind-group cache is keyed by: the kernel and the buffers bound to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum BindKey {
    Step([wgpu::Buffer; 3]),
    Inject(bool, [wgpu::Buffer; 2]),
    Sample(bool, [wgpu::Buffer; 2]),
    Residual([wgpu::Buffer; 3]),
    Gradient([wgpu::Buffer; 5]),
}

/// The acoustic problem resident on the GPU.
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
    step: wgpu::ComputePipeline,
    step_groups: [u32; 3],
    inject: wgpu::ComputePipeline,
    sample: wgpu::ComputePipeline,
    residual: wgpu::ComputePipeline,
    gradient: wgpu::ComputePipeline,
    gradient_dispatch: Dispatch1d,
    grid: wgpu::Buffer,
    gradient_params: wgpu::Buffer,
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    pub(super) sources: PointBuffers,
    pub(super) receivers: PointBuffers,
    source_values: wgpu::Buffer,
    pub(super) traces: wgpu::Buffer,
    table_stride: u64,
    bind_groups: RefCell<HashMap<BindKey, wgpu::BindGroup>>,
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

pub(super) fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn entry(binding: u32, ty: wgpu::BindingType) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty,
        count: None,
    }
}

fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    entry(
        binding,
        wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
    )
}

fn sample_table_entry() -> wgpu::BindGroupLayoutEntry {
    entry(
        0,
        wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(size_of::<SampleUniform>() as u64),
        },
    )
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
        let layout = *problem.layout();
        let limits = gpu.limits();
        // Before compiling or uploading anything: can a field ever exist on this device?
        gpu.check_buffer_size("wavefield", layout.len() as u64 * 4, FIELD_USAGE)?;
        let radius = [("RADIUS", layout.radius as f64)];
        let (entry_point, wg) = if layout.dim == 3 {
            ("step_3d", [32, 4, 2])
        } else {
            ("step_2d", [64, 4, 1])
        };
        let e = layout.extended;
        let step_groups = [
            e[2].div_ceil(wg[0]) as u32,
            if layout.dim == 3 {
                e[1].div_ceil(wg[1])
            } else {
                e[0].div_ceil(wg[1])
            } as u32,
            if layout.dim == 3 {
                e[0].div_ceil(wg[2])
            } else {
                1
            } as u32,
        ];
        if step_groups
            .iter()
            .any(|&g| g > limits.max_compute_workgroups_per_dimension)
        {
            return Err(Error::InvalidArgument {
                name: "shape",
                reason: format!(
                    "an extended grid of {e:?} needs {step_groups:?} workgroups, above this \
                     device's {} per dimension",
                    limits.max_compute_workgroups_per_dimension
                ),
            });
        }
        let step = gpu.compute_pipeline("acoustic step", STEP_WGSL, entry_point, &radius, None)?;

        let device = gpu.device();
        let inject_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("inject"),
            entries: &[
                sample_table_entry(),
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, true),
                storage(5, true),
                storage(6, false),
            ],
        });
        let sample_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("sample"),
            entries: &[
                sample_table_entry(),
                storage(7, true),
                storage(8, true),
                storage(9, false),
            ],
        });
        let pipeline_layout = |label, bgl: &wgpu::BindGroupLayout| {
            device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(label),
                bind_group_layouts: &[Some(bgl)],
                immediate_size: 0,
            })
        };
        let inject = gpu.compute_pipeline(
            "inject",
            POINTS_WGSL,
            "inject",
            &[],
            Some(&pipeline_layout("inject", &inject_layout)),
        )?;
        let sample = gpu.compute_pipeline(
            "sample",
            POINTS_WGSL,
            "sample_points",
            &[],
            Some(&pipeline_layout("sample", &sample_layout)),
        )?;
        let residual_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("residual"),
            entries: &[
                sample_table_entry(),
                storage(7, true),
                storage(8, true),
                storage(9, false),
                storage(10, true),
            ],
        });
        let residual = gpu.compute_pipeline(
            "residual",
            POINTS_WGSL,
            "sample_residual",
            &[],
            Some(&pipeline_layout("residual", &residual_layout)),
        )?;
        let gradient = gpu.compute_pipeline("gradient", GRADIENT_WGSL, "gradient", &[], None)?;

        // Uniforms: UNIFORM to bind them, COPY_DST (added by `upload`) to fill them.
        // c₁ … c_r; the kernel's difference form needs no c₀ (slot 0 stays zero).
        let mut c = [0f32; 12];
        for (k, ck) in problem.laplacian().iter().enumerate().skip(1) {
            c[k] = *ck as f32;
        }
        let p = layout.padded;
        let grid_uniform = GridUniform {
            padded: [p[0] as u32, p[1] as u32, p[2] as u32, 0],
            extended: [e[0] as u32, e[1] as u32, e[2] as u32, 0],
            coeffs: c,
        };
        let grid = gpu.upload("grid", &[grid_uniform], wgpu::BufferUsages::UNIFORM)?;
        let gradient_dispatch = dispatch_1d(
            layout.len() as u64,
            256,
            limits.max_compute_workgroups_per_dimension,
        )?;
        let dt = problem.time().dt;
        let gradient_params = gpu.upload(
            "gradient params",
            &[GradientUniform {
                inv_dt2: (1.0 / (dt * dt)) as f32,
                len: layout.len() as u32,
                row: gradient_dispatch.row,
                _pad: 0,
            }],
            wgpu::BufferUsages::UNIFORM,
        )?;

        let (a, b) = problem.step_coefficients();
        let a = gpu.upload("a", &to_f32(&a), wgpu::BufferUsages::STORAGE)?;
        let b = gpu.upload("b", &to_f32(&b), wgpu::BufferUsages::STORAGE)?;
        let nt = problem.time().nt;
        let table_stride = (limits.min_uniform_buffer_offset_alignment as u64)
            .max(size_of::<SampleUniform>() as u64);
        let sources = Self::point_buffers(gpu, problem.sources(), nt, table_stride)?;
        let receivers = Self::point_buffers(gpu, problem.receivers(), nt, table_stride)?;
        let source_values = gpu.upload(
            "source series",
            &to_f32(&problem.source_series()),
            wgpu::BufferUsages::STORAGE,
        )?;
        let traces = gpu.create_buffer(
            "traces",
            (nt * problem.receivers().points * 4) as u64,
            FIELD_USAGE,
        )?;
        Ok(Self {
            gpu,
            layout,
            nt,
            dt,
            step,
            step_groups,
            inject,
            sample,
            residual,
            gradient,
            gradient_dispatch,
            grid,
            gradient_params,
            a,
            b,
            sources,
            receivers,
            source_values,
            traces,
            table_stride,
            bind_groups: RefCell::new(HashMap::new()),
        })
    }

    fn point_buffers(gpu: &Gpu, plan: &PointPlan, nt: usize, stride: u64) -> Result<PointBuffers> {
        let usage = wgpu::BufferUsages::STORAGE;
        let pairs = |v: &mut dyn Iterator<Item = (usize, f64)>| -> Vec<[u32; 2]> {
            v.map(|(i, w)| [i as u32, (w as f32).to_bits()]).collect()
        };
        let cells: Vec<u32> = plan.cells.iter().map(|&c| c as u32).collect();
        let offsets: Vec<u32> = plan.offsets.iter().map(|&o| o as u32).collect();
        let entries = pairs(&mut plan.entries.iter().copied());
        let taps = pairs(&mut plan.taps.iter().flatten().copied());
        let mut table = vec![0u8; nt * stride as usize];
        for k in 0..nt {
            let entry = SampleUniform {
                k: k as u32,
                points: plan.points as u32,
                _pad: [0; 2],
            };
            let at = k * stride as usize;
            table[at..at + size_of::<SampleUniform>()].copy_from_slice(bytemuck::bytes_of(&entry));
        }
        Ok(PointBuffers {
            cells: gpu.upload("plan cells", &cells, usage)?,
            offsets: gpu.upload("plan offsets", &offsets, usage)?,
            entries: gpu.upload("plan entries", &entries, usage)?,
            taps: gpu.upload("plan taps", &taps, usage)?,
            table: gpu.upload("sample table", &table, wgpu::BufferUsages::UNIFORM)?,
            points: plan.points as u32,
            cell_count: plan.cells.len() as u32,
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

    /// Bytes of one field.
    pub fn field_bytes(&self) -> u64 {
        self.layout.len() as u64 * 4
    }

    /// A new zeroed field buffer (wgpu zero-fills new buffers).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] or [`Error::BufferTooLarge`].
    pub fn field(&self, label: &str) -> Result<wgpu::Buffer> {
        self.gpu
            .create_buffer(label, self.field_bytes(), FIELD_USAGE)
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

    fn bind_group(
        &self,
        key: BindKey,
        entries: &[(u32, wgpu::BindingResource<'_>)],
    ) -> wgpu::BindGroup {
        let mut cache = self.bind_groups.borrow_mut();
        if let Some(bg) = cache.get(&key) {
            return bg.clone();
        }
        // Rotating buffers reuse a handful of bind groups; a store-all run binds a new buffer
        // every step, so the cache is bounded rather than kept forever.
        if cache.len() >= 256 {
            cache.clear();
        }
        let (layout, label) = match &key {
            BindKey::Step(_) => (self.step.get_bind_group_layout(0), "step"),
            BindKey::Inject(..) => (self.inject.get_bind_group_layout(0), "inject"),
            BindKey::Sample(..) => (self.sample.get_bind_group_layout(0), "sample"),
            BindKey::Residual(_) => (self.residual.get_bind_group_layout(0), "residual"),
            BindKey::Gradient(_) => (self.gradient.get_bind_group_layout(0), "gradient"),
        };
        let entries: Vec<wgpu::BindGroupEntry<'_>> = entries
            .iter()
            .map(|(binding, resource)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: resource.clone(),
            })
            .collect();
        let bg = self
            .gpu
            .device()
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(label),
                layout: &layout,
                entries: &entries,
            });
        cache.insert(key, bg.clone());
        bg
    }

    fn table_binding(table: &wgpu::Buffer) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: table,
            offset: 0,
            size: wgpu::BufferSize::new(size_of::<SampleUniform>() as u64),
        })
    }

    fn encode_stencil(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        prev: &wgpu::Buffer,
        cur: &wgpu::Buffer,
        next: &wgpu::Buffer,
    ) {
        let bg = self.bind_group(
            BindKey::Step([prev.clone(), cur.clone(), next.clone()]),
            &[
                (0, self.grid.as_entire_binding()),
                (1, self.a.as_entire_binding()),
                (2, self.b.as_entire_binding()),
                (3, prev.as_entire_binding()),
                (4, cur.as_entire_binding()),
                (5, next.as_entire_binding()),
            ],
        );
        pass.set_pipeline(&self.step);
        pass.set_bind_group(0, &bg, &[]);
        let [x, y, z] = self.step_groups;
        pass.dispatch_workgroups(x, y, z);
    }

    fn encode_inject(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        receivers: bool,
        k: usize,
        values: &wgpu::Buffer,
        field: &wgpu::Buffer,
    ) {
        let plan = if receivers {
            &self.receivers
        } else {
            &self.sources
        };
        let bg = self.bind_group(
            BindKey::Inject(receivers, [values.clone(), field.clone()]),
            &[
                (0, Self::table_binding(&plan.table)),
                (1, plan.cells.as_entire_binding()),
                (2, plan.offsets.as_entire_binding()),
                (3, plan.entries.as_entire_binding()),
                (4, values.as_entire_binding()),
                (5, self.a.as_entire_binding()),
                (6, field.as_entire_binding()),
            ],
        );
        pass.set_pipeline(&self.inject);
        pass.set_bind_group(0, &bg, &[(k as u64 * self.table_stride) as u32]);
        pass.dispatch_workgroups(plan.cell_count.div_ceil(64), 1, 1);
    }

    fn encode_sample(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        receivers: bool,
        k: usize,
        field: &wgpu::Buffer,
        traces: &wgpu::Buffer,
    ) {
        let plan = if receivers {
            &self.receivers
        } else {
            &self.sources
        };
        let bg = self.bind_group(
            BindKey::Sample(receivers, [field.clone(), traces.clone()]),
            &[
                (0, Self::table_binding(&plan.table)),
                (7, plan.taps.as_entire_binding()),
                (8, field.as_entire_binding()),
                (9, traces.as_entire_binding()),
            ],
        );
        pass.set_pipeline(&self.sample);
        pass.set_bind_group(0, &bg, &[(k as u64 * self.table_stride) as u32]);
        pass.dispatch_workgroups(plan.points.div_ceil(64), 1, 1);
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
        self.encode_stencil(&mut pass, prev, cur, next);
        self.encode_inject(&mut pass, false, k, &self.source_values, next);
        if record {
            self.encode_sample(&mut pass, true, k + 1, next, &self.traces);
        }
    }

    /// Encodes `residual[k][r] = S u − observed[k][r]` at the receivers.
    fn encode_residual(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        k: usize,
        u: &wgpu::Buffer,
        observed: &wgpu::Buffer,
        residual: &wgpu::Buffer,
    ) {
        let plan = &self.receivers;
        let bg = self.bind_group(
            BindKey::Residual([u.clone(), residual.clone(), observed.clone()]),
            &[
                (0, Self::table_binding(&plan.table)),
                (7, plan.taps.as_entire_binding()),
                (8, u.as_entire_binding()),
                (9, residual.as_entire_binding()),
                (10, observed.as_entire_binding()),
            ],
        );
        pass.set_pipeline(&self.residual);
        pass.set_bind_group(0, &bg, &[(k as u64 * self.table_stride) as u32]);
        pass.dispatch_workgroups(plan.points.div_ceil(64), 1, 1);
    }

    /// Encodes the adjoint of step `k`, given the forward fields `u_{k−1}, u_k, u_{k+1}`:
    ///
    /// 1. the receiver-side input at sample `k + 1`: with [`AdjointInput::Residual`],
    ///    `r_{k+1} = S u_{k+1} − d_obs` is computed here into its buffer; with
    ///    [`AdjointInput::Given`], the buffer's sample `k + 1` is used as is;
    /// 2. `psi_out = ψ_{k+1}` ← step of (`psi_far = ψ_{k+3}`, `psi_near = ψ_{k+2}`) with that
    ///    input injected at the receivers;
    /// 3. `grad −= ψ_{k+1} (u_{k+1} − 2u_k + u_{k−1}) / Δt²`;
    /// 4. when `source_adjoint` is given, `ψ_{k+1}` sampled at the sources into its sample `k`.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_adjoint_step(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        k: usize,
        [u_prev, u, u_next]: [&wgpu::Buffer; 3],
        [psi_far, psi_near, psi_out]: [&wgpu::Buffer; 3],
        input: AdjointInput<'_>,
        grad: &wgpu::Buffer,
        source_adjoint: Option<&wgpu::Buffer>,
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("adjoint step"),
            timestamp_writes: None,
        });
        let injected = match input {
            AdjointInput::Residual { observed, residual } => {
                self.encode_residual(&mut pass, k + 1, u_next, observed, residual);
                residual
            }
            AdjointInput::Given(values) => values,
        };
        self.encode_stencil(&mut pass, psi_far, psi_near, psi_out);
        self.encode_inject(&mut pass, true, k + 1, injected, psi_out);
        let bg = self.bind_group(
            BindKey::Gradient([
                psi_out.clone(),
                u_next.clone(),
                u.clone(),
                u_prev.clone(),
                grad.clone(),
            ]),
            &[
                (0, self.gradient_params.as_entire_binding()),
                (1, psi_out.as_entire_binding()),
                (2, u_next.as_entire_binding()),
                (3, u.as_entire_binding()),
                (4, u_prev.as_entire_binding()),
                (5, grad.as_entire_binding()),
            ],
        );
        pass.set_pipeline(&self.gradient);
        pass.set_bind_group(0, &bg, &[]);
        let [x, y, z] = self.gradient_dispatch.groups;
        pass.dispatch_workgroups(x, y, z);
        if let Some(out) = source_adjoint {
            self.encode_sample(&mut pass, false, k, psi_out, out);
        }
    }

    pub(super) fn encoder(&self) -> wgpu::CommandEncoder {
        self.gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("acoustic"),
            })
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

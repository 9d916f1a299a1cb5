//! The point kernels of `shaders/acoustic_points.wgsl` on the host side: injection at the
//! sources (and, in the adjoint, at the receivers), sampling into traces, the data residual from
//! the recorded traces, and the source term of the gradient.

use bytemuck::{Pod, Zeroable};

use super::geometry::PointPlan;
use super::kernels::BindKey;
use crate::error::{Error, Result};
use crate::gpu::{BindGroupCache, Gpu};

const POINTS_WGSL: &str = include_str!("../../shaders/acoustic_points.wgsl");

/// Invocations per workgroup of every point kernel: the WGSL's `override WORKGROUP_SIZE` has no
/// default, so this is its only definition.
pub(super) const POINTS_WORKGROUP: u32 = 64;

/// One sample's uniforms: the time index, the number of points, `1/Δt²` and the words from
/// one shot's field to the next in a batched buffer.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SampleUniform {
    k: u32,
    points: u32,
    inv_dt2: f32,
    stride: u32,
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
    /// Per point, the last sample its shot records: the residual is zero after it.
    ends: wgpu::Buffer,
    pub(super) points: u32,
    cell_count: u32,
}

/// The four point pipelines and the stride of their per-sample uniform tables.
#[derive(Debug)]
pub(super) struct PointKernels {
    inject: wgpu::ComputePipeline,
    sample: wgpu::ComputePipeline,
    residual: wgpu::ComputePipeline,
    source_gradient: wgpu::ComputePipeline,
    table_stride: u64,
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

/// The per-sample uniform, bound at a dynamic offset into its table.
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

fn table_binding(table: &wgpu::Buffer) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer: table,
        offset: 0,
        size: wgpu::BufferSize::new(size_of::<SampleUniform>() as u64),
    })
}

impl PointKernels {
    /// Compiles the kernels. Their layouts are explicit: a layout derived from the shader
    /// cannot express the dynamic offset of the sample table.
    ///
    /// # Errors
    /// [`crate::Error::Gpu`] if a kernel does not compile.
    pub(super) fn new(gpu: &Gpu) -> Result<Self> {
        let pipeline = |label, entry_point, entries: &[wgpu::BindGroupLayoutEntry]| {
            let size = [("WORKGROUP_SIZE", f64::from(POINTS_WORKGROUP))];
            gpu.compute_pipeline_with_layout(label, POINTS_WGSL, entry_point, &size, entries)
        };
        let inject = pipeline(
            "inject",
            "inject",
            &[
                sample_table_entry(),
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, true),
                storage(5, true),
                storage(6, false),
            ],
        )?;
        let sample = pipeline(
            "sample",
            "sample_points",
            &[
                sample_table_entry(),
                storage(7, true),
                storage(8, true),
                storage(9, false),
            ],
        )?;
        let residual = pipeline(
            "residual",
            "trace_residual",
            &[
                sample_table_entry(),
                storage(9, false),
                storage(10, true),
                storage(12, true),
                storage(13, true),
            ],
        )?;
        let source_gradient = pipeline(
            "gradient at sources",
            "gradient_at_sources",
            &[
                sample_table_entry(),
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, true),
                storage(5, true),
                storage(6, false),
                storage(11, true),
            ],
        )?;
        let table_stride = (gpu.limits().min_uniform_buffer_offset_alignment as u64)
            .max(size_of::<SampleUniform>() as u64);
        Ok(Self {
            inject,
            sample,
            residual,
            source_gradient,
            table_stride,
        })
    }

    /// Uploads `plan` for `nt` samples of `dt` seconds, its fields `shot_stride` words apart in a
    /// batched buffer ([`PointPlan::batched`]).
    ///
    /// # Errors
    /// As [`Gpu::upload`]; [`Error::InvalidArgument`] naming `batch` when the plan has more
    /// points or cells than one dispatch of this device reaches (a batch of many shots with
    /// many receivers each).
    pub(super) fn buffers(
        &self,
        gpu: &Gpu,
        plan: &PointPlan,
        nt: usize,
        dt: f64,
        shot_stride: usize,
    ) -> Result<PointBuffers> {
        // One invocation per point or cell, in one row of workgroups: past that the dispatch
        // would be refused, and the traces or injections silently missing.
        let reach = u64::from(gpu.limits().max_compute_workgroups_per_dimension)
            * u64::from(POINTS_WORKGROUP);
        let most = plan.points.max(plan.cells.len()) as u64;
        if most > reach.min(u64::from(u32::MAX)) {
            return Err(Error::InvalidArgument {
                name: "batch",
                reason: format!(
                    "the batch's {} points touch {} cells, more than one dispatch of this \
                     device reaches ({reach}): use a smaller batch or fewer receivers",
                    plan.points,
                    plan.cells.len()
                ),
            });
        }
        let usage = wgpu::BufferUsages::STORAGE;
        let pairs = |v: &mut dyn Iterator<Item = (usize, f64)>| -> Vec<[u32; 2]> {
            v.map(|(i, w)| [i as u32, (w as f32).to_bits()]).collect()
        };
        let cells: Vec<u32> = plan.cells.iter().map(|&c| c as u32).collect();
        let offsets: Vec<u32> = plan.offsets.iter().map(|&o| o as u32).collect();
        let entries = pairs(&mut plan.entries.iter().copied());
        let taps = pairs(&mut plan.taps.iter().flatten().copied());
        let stride = self.table_stride as usize;
        let mut table = vec![0u8; nt * stride];
        for k in 0..nt {
            let entry = SampleUniform {
                k: k as u32,
                points: plan.points as u32,
                inv_dt2: (1.0 / (dt * dt)) as f32,
                stride: shot_stride as u32,
            };
            let at = k * stride;
            table[at..at + size_of::<SampleUniform>()].copy_from_slice(bytemuck::bytes_of(&entry));
        }
        Ok(PointBuffers {
            cells: gpu.upload("plan cells", &cells, usage)?,
            offsets: gpu.upload("plan offsets", &offsets, usage)?,
            entries: gpu.upload("plan entries", &entries, usage)?,
            taps: gpu.upload("plan taps", &taps, usage)?,
            table: gpu.upload("sample table", &table, wgpu::BufferUsages::UNIFORM)?,
            // COPY_DST (added by `upload`): a batch's shots that stop early rewrite it.
            ends: gpu.upload(
                "last samples",
                // One word at least: a binding cannot be empty.
                &vec![(nt - 1) as u32; plan.points.max(1)],
                usage,
            )?,
            points: plan.points as u32,
            cell_count: plan.cells.len() as u32,
        })
    }

    /// The dynamic offset of sample `k` in a table.
    fn offset(&self, k: usize) -> u32 {
        (k as u64 * self.table_stride) as u32
    }

    /// Binds the plan's sample table (binding 0) and `entries` to `pipeline`, the bind group
    /// cached under `key` and made only on a miss, and dispatches `invocations` at sample `k`.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &self,
        gpu: &Gpu,
        cache: &BindGroupCache<BindKey>,
        pass: &mut wgpu::ComputePass<'_>,
        (label, pipeline): (&str, &wgpu::ComputePipeline),
        key: BindKey,
        plan: &PointBuffers,
        k: usize,
        entries: &[(u32, wgpu::BindingResource<'_>)],
        invocations: u32,
    ) {
        let bg = cache.get_or_create(key, || {
            let mut all = vec![(0, table_binding(&plan.table))];
            all.extend(entries.iter().cloned());
            gpu.bind_group(label, &pipeline.get_bind_group_layout(0), &all)
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bg, &[self.offset(k)]);
        pass.dispatch_workgroups(invocations.div_ceil(POINTS_WORKGROUP), 1, 1);
    }

    /// `field[cell] += a[cell] · Σ weight · values[k][point]` over the plan's cells: a gather,
    /// one invocation per touched cell in a fixed order, so no atomics.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn encode_inject(
        &self,
        gpu: &Gpu,
        cache: &BindGroupCache<BindKey>,
        pass: &mut wgpu::ComputePass<'_>,
        plan: &PointBuffers,
        k: usize,
        [values, a, field]: [&wgpu::Buffer; 3],
    ) {
        let key = BindKey::Inject([plan.cells.clone(), values.clone(), field.clone()]);
        let [cells, offsets, entries] = plan.gather();
        let bindings = [
            cells,
            offsets,
            entries,
            (4, values.as_entire_binding()),
            (5, a.as_entire_binding()),
            (6, field.as_entire_binding()),
        ];
        let pipeline = ("inject", &self.inject);
        self.dispatch(
            gpu,
            cache,
            pass,
            pipeline,
            key,
            plan,
            k,
            &bindings,
            plan.cell_count,
        );
    }

    /// `traces[k][point] = Σ weight · field[tap]` at the plan's points.
    pub(super) fn encode_sample(
        &self,
        gpu: &Gpu,
        cache: &BindGroupCache<BindKey>,
        pass: &mut wgpu::ComputePass<'_>,
        plan: &PointBuffers,
        k: usize,
        [field, traces]: [&wgpu::Buffer; 2],
    ) {
        let key = BindKey::Sample([plan.taps.clone(), field.clone(), traces.clone()]);
        let bindings = [
            (7, plan.taps.as_entire_binding()),
            (8, field.as_entire_binding()),
            (9, traces.as_entire_binding()),
        ];
        let pipeline = ("sample", &self.sample);
        self.dispatch(
            gpu,
            cache,
            pass,
            pipeline,
            key,
            plan,
            k,
            &bindings,
            plan.points,
        );
    }

    /// `residual[k][r] = recorded[k][r] − observed[k][r]` at the plan's points.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn encode_residual(
        &self,
        gpu: &Gpu,
        cache: &BindGroupCache<BindKey>,
        pass: &mut wgpu::ComputePass<'_>,
        plan: &PointBuffers,
        k: usize,
        [recorded, observed, residual]: [&wgpu::Buffer; 3],
    ) {
        let key = BindKey::Residual([recorded.clone(), residual.clone(), observed.clone()]);
        let bindings = [
            (9, residual.as_entire_binding()),
            (10, observed.as_entire_binding()),
            (12, recorded.as_entire_binding()),
            (13, plan.ends.as_entire_binding()),
        ];
        let pipeline = ("residual", &self.residual);
        self.dispatch(
            gpu,
            cache,
            pass,
            pipeline,
            key,
            plan,
            k,
            &bindings,
            plan.points,
        );
    }

    /// `grad[cell] −= ψ[cell] · a[cell] · Σ weight · values[k][point] / Δt²` over the plan's
    /// cells: the source term of the gradient, the injection's gather.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn encode_source_gradient(
        &self,
        gpu: &Gpu,
        cache: &BindGroupCache<BindKey>,
        pass: &mut wgpu::ComputePass<'_>,
        plan: &PointBuffers,
        k: usize,
        [values, a, psi, grad]: [&wgpu::Buffer; 4],
    ) {
        let key = BindKey::SourceGradient([plan.cells.clone(), psi.clone(), grad.clone()]);
        let [cells, offsets, entries] = plan.gather();
        let bindings = [
            cells,
            offsets,
            entries,
            (4, values.as_entire_binding()),
            (5, a.as_entire_binding()),
            (6, grad.as_entire_binding()),
            (11, psi.as_entire_binding()),
        ];
        let pipeline = ("gradient at sources", &self.source_gradient);
        self.dispatch(
            gpu,
            cache,
            pass,
            pipeline,
            key,
            plan,
            k,
            &bindings,
            plan.cell_count,
        );
    }
}

impl PointBuffers {
    /// Sets the last sample of each point's shot (`ends` per point).
    ///
    /// # Errors
    /// As [`Gpu::write`].
    pub(super) fn set_ends(&self, gpu: &Gpu, ends: &[u32]) -> Result<()> {
        gpu.write(&self.ends, ends)
    }

    /// The gather's bindings (1–3): touched cells, their offsets, their (point, weight) entries.
    fn gather(&self) -> [(u32, wgpu::BindingResource<'_>); 3] {
        [
            (1, self.cells.as_entire_binding()),
            (2, self.offsets.as_entire_binding()),
            (3, self.entries.as_entire_binding()),
        ]
    }
}

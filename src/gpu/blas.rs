//! Host side of `shaders/blas.wgsl`.

use bytemuck::{Pod, Zeroable};

use super::{Gpu, dispatch_1d};
use crate::error::{Error, Result};

const SHADER: &str = include_str!("../../shaders/blas.wgsl");

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct AxpyParams {
    a: f32,
    len: u32,
    row: u32,
    _pad: u32,
}

/// `y ← a·x + y` on float32 storage buffers (summing per-shot gradients, say).
///
/// The pipeline is compiled once in [`Axpy::new`]; each [`encode`](Axpy::encode) makes one small
/// uniform buffer and bind group, so call it per vector operation, not per element.
#[derive(Debug)]
pub struct Axpy {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    max_groups_per_dim: u32,
}

impl Axpy {
    /// Invocations per workgroup: the shader's `override WORKGROUP_SIZE`, set from here.
    pub const WORKGROUP_SIZE: u32 = 256;

    /// Compiles the kernel.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the shader does not compile on this device.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let size = [("WORKGROUP_SIZE", f64::from(Self::WORKGROUP_SIZE))];
        let pipeline = gpu.compute_pipeline("axpy", SHADER, "axpy", &size)?;
        let layout = pipeline.get_bind_group_layout(0);
        Ok(Self {
            pipeline,
            layout,
            max_groups_per_dim: gpu.limits().max_compute_workgroups_per_dimension,
        })
    }

    /// Caps the workgroups per dispatch dimension below the device's limit, so tests can
    /// exercise the two-dimensional dispatch on small vectors.
    #[doc(hidden)]
    pub fn with_max_groups_per_dim(mut self, groups: u32) -> Self {
        self.max_groups_per_dim = groups.min(self.max_groups_per_dim);
        self
    }

    /// Records `y[i] ← a·x[i] + y[i]` for `i < len` into `encoder`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when either buffer holds fewer than `len` floats or `len` is
    /// zero; [`Error::OutOfMemory`] if the uniform buffer cannot be made.
    pub fn encode(
        &self,
        gpu: &Gpu,
        encoder: &mut wgpu::CommandEncoder,
        a: f32,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        len: u64,
    ) -> Result<()> {
        let floats = x.size().min(y.size()) / 4;
        if len == 0 || len > floats || len > u32::MAX as u64 {
            return Err(Error::InvalidArgument {
                name: "len",
                reason: format!("axpy over {len} elements; the buffers hold {floats} floats"),
            });
        }
        let dispatch = dispatch_1d(len, Self::WORKGROUP_SIZE, self.max_groups_per_dim)?;
        let params = AxpyParams {
            a,
            len: len as u32,
            row: dispatch.row,
            _pad: 0,
        };
        // UNIFORM: bound as `var<uniform>`; COPY_DST (added by `upload`): filled by the queue.
        let uniforms = gpu.upload("axpy params", &[params], wgpu::BufferUsages::UNIFORM)?;
        let bind_group = gpu.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("axpy"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniforms.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: x.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: y.as_entire_binding(),
                },
            ],
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("axpy"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        let [gx, gy, gz] = dispatch.groups;
        pass.dispatch_workgroups(gx, gy, gz);
        Ok(())
    }
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ReduceParams {
    len: u32,
    chunk: u32,
    row: u32,
    offset: u32,
}

/// `Σ x[i]²` of a float32 storage buffer (a wavefield's energy, say), reduced on the GPU
/// without atomics: each workgroup sums a fixed chunk in a fixed order and the host adds the
/// partial sums in order, in float64. The same input gives the same bits.
#[derive(Debug)]
pub struct SumSquares {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    max_groups_per_dim: u32,
}

impl SumSquares {
    /// Invocations per workgroup (the shader's `REDUCE_SIZE`).
    pub const WORKGROUP_SIZE: u32 = 256;
    /// Elements each workgroup adds up.
    pub const CHUNK: u32 = 16 * Self::WORKGROUP_SIZE;

    /// Compiles the kernel.
    ///
    /// # Errors
    /// [`Error::Gpu`] if the shader does not compile on this device.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        // The module's other entry point sizes its workgroups by this override.
        let size = [("WORKGROUP_SIZE", f64::from(Axpy::WORKGROUP_SIZE))];
        let pipeline = gpu.compute_pipeline("sum of squares", SHADER, "sum_squares", &size)?;
        let layout = pipeline.get_bind_group_layout(0);
        Ok(Self {
            pipeline,
            layout,
            max_groups_per_dim: gpu.limits().max_compute_workgroups_per_dimension,
        })
    }

    /// Caps the workgroups per dispatch dimension, so tests can exercise the two-dimensional
    /// dispatch on small vectors.
    #[doc(hidden)]
    pub fn with_max_groups_per_dim(mut self, groups: u32) -> Self {
        self.max_groups_per_dim = groups.clamp(1, self.max_groups_per_dim);
        self
    }

    /// `Σ x[i]²` over the first `len` floats of `x`, after the work submitted before it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `x` holds fewer than `len` floats or `len` is zero;
    /// [`Error::OutOfMemory`]; as [`Gpu::read_back`].
    pub fn sum(&self, gpu: &Gpu, x: &wgpu::Buffer, len: u64) -> Result<f64> {
        self.sum_from(gpu, x, 0, len)
    }

    /// `Σ x[i]²` over the `len` floats of `x` from float `offset` on: one shot's field in a
    /// batched buffer, say.
    ///
    /// # Errors
    /// As [`sum`](Self::sum), for `offset + len` floats.
    pub fn sum_from(&self, gpu: &Gpu, x: &wgpu::Buffer, offset: u64, len: u64) -> Result<f64> {
        let floats = x.size() / 4;
        let end = offset.saturating_add(len);
        if len == 0 || end > floats || end > u64::from(u32::MAX) {
            return Err(Error::InvalidArgument {
                name: "len",
                reason: format!(
                    "a sum over {len} elements from element {offset}; the buffer holds \
                     {floats} floats"
                ),
            });
        }
        let groups = len.div_ceil(u64::from(Self::CHUNK));
        let row = groups.min(u64::from(self.max_groups_per_dim));
        let rows = groups.div_ceil(row);
        let params = ReduceParams {
            len: len as u32,
            chunk: Self::CHUNK,
            row: row as u32,
            offset: offset as u32,
        };
        // UNIFORM: bound as `var<uniform>`.
        let uniforms = gpu.upload(
            "sum of squares params",
            &[params],
            wgpu::BufferUsages::UNIFORM,
        )?;
        // STORAGE: the kernel writes one partial sum a workgroup; COPY_SRC: read back.
        let partial = gpu.create_buffer(
            "partial sums",
            row * rows * 4,
            wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        )?;
        let bind_group = gpu.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("sum of squares"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: uniforms.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: x.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 5,
                    resource: partial.as_entire_binding(),
                },
            ],
        });
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("sum of squares"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(row as u32, rows as u32, 1);
        }
        gpu.submit([encoder.finish()]);
        let sums: Vec<f32> = gpu.read_back(&partial)?;
        // Workgroups past the last chunk (the dispatch's rectangle) wrote zeros.
        Ok(sums.iter().map(|&s| f64::from(s)).sum())
    }
}

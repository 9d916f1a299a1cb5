//! The GPU layer: adapter and device set-up, limits, error-scoped allocation, staging
//! transfers and dispatch helpers. Knows wgpu; knows nothing of schedules or physics.

mod bind_cache;
mod blas;
mod compression;
mod context;
mod counters;
mod dispatch;
mod external;
mod kernel_options;
mod pipelines;

pub use bind_cache::BindGroupCache;
pub use blas::{Axpy, SumSquares};
pub use compression::Codec;
pub use context::{Gpu, GpuOptions, wait_deadline_from_env};
pub use counters::GpuCounters;
pub use dispatch::{Dispatch1d, dispatch_1d};
pub use kernel_options::{CpmlDispatch, KernelOptions};

/// Usage of every buffer that holds a time level of a state (a wavefield): `STORAGE` so the
/// kernels bind it, `COPY_SRC` to read it back or copy it out to host memory, `COPY_DST` to
/// restore it from host memory. The engine's level buffers and the acoustic fields share it.
pub const STATE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// Bytes of every buffer gpurevolve creates are rounded up to this (wgpu's copy alignment).
pub const COPY_ALIGNMENT: u64 = wgpu::COPY_BUFFER_ALIGNMENT;

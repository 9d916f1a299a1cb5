//! The GPU layer: adapter and device set-up, limits, error-scoped allocation, staging
//! transfers and dispatch helpers. Knows wgpu; knows nothing of schedules or physics.

mod blas;
mod context;
mod dispatch;

pub use blas::Axpy;
pub use context::{Gpu, GpuOptions};
pub use dispatch::{Dispatch1d, dispatch_1d};

/// Bytes of every buffer gpurevolve creates are rounded up to this (wgpu's copy alignment).
pub const COPY_ALIGNMENT: u64 = wgpu::COPY_BUFFER_ALIGNMENT;

//! The plumbing the acoustic kernel families share: the WGSL sources, the bind-group cache's
//! key, the usage of field buffers, how often work is submitted.
//!
//! Below every kernel family: [`GpuAcoustic`](super::GpuAcoustic) (`gpu.rs`) owns the cache and
//! drives the families; the CPML's kernels (`cpml_kernels.rs`) and the point kernels
//! (`points.rs`) bind through that cache with this key, so they take what they share from here
//! and never import the `gpu.rs` that imports them.

use crate::gpu::STATE_USAGE;

/// The step family: forward, adjoint and gradient over the whole grid, and the bindings and
/// helpers the CPML's kernels share.
pub(super) const STEP_WGSL: &str = include_str!("../../shaders/acoustic_step.wgsl");
/// The CPML's kernels use the step family's bindings and helpers: one module of both files.
pub(super) const CPML_WGSL: &str = concat!(
    include_str!("../../shaders/acoustic_step.wgsl"),
    include_str!("../../shaders/acoustic_cpml.wgsl")
);

/// Field buffers: the usage of every state buffer ([`STATE_USAGE`]).
pub const FIELD_USAGE: wgpu::BufferUsages = STATE_USAGE;

/// Steps encoded into one command buffer before it is submitted, as the engine does
/// ([`RevolverOptions::steps_per_submit`](crate::engine::RevolverOptions::steps_per_submit)).
pub(super) const STEPS_PER_SUBMIT: usize = crate::engine::DEFAULT_STEPS_PER_SUBMIT;

/// What the bind-group cache is keyed by: the kernel and the buffers bound to it (for the
/// point kernels, a buffer of the plan names the plan).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum BindKey {
    Step([wgpu::Buffer; 3]),
    /// A region's step (`false`) or adjoint step (`true`) under a CPML, by its axes.
    LayerStep(bool, u32, [wgpu::Buffer; 3]),
    LayerGradient(u32, [wgpu::Buffer; 4]),
    Inject([wgpu::Buffer; 3]),
    Sample([wgpu::Buffer; 3]),
    Residual([wgpu::Buffer; 3]),
    SourceGradient([wgpu::Buffer; 3]),
    Gradient([wgpu::Buffer; 4]),
}

/// A host float64 array as the kernels' float32.
pub(super) fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

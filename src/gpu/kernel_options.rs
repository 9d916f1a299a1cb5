//! The shapes of the kernels compiled on a device ([`GpuOptions::kernels`](super::GpuOptions)):
//! tuning knobs, swept by the GPU report, that change speed and never results. Fixed when the
//! device opens (its pipelines are compiled once), but a struct of their own: they tune the
//! kernels, not the choice of the device, its limits or how long to wait for it.

/// Workgroup shapes and dispatch choices of the acoustic kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOptions {
    /// Workgroup shape `[x, y, z]` of the 2D acoustic step kernel (`x` along the contiguous
    /// `z` axis). Default `[64, 4, 1]`.
    pub step_workgroup_2d: [u32; 3],
    /// Workgroup shape of the 3D acoustic step kernel. Default `[32, 4, 2]`.
    pub step_workgroup_3d: [u32; 3],
    /// How the acoustic CPML's kernels cover the grid. Default [`CpmlDispatch::Auto`].
    pub cpml_dispatch: CpmlDispatch,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            step_workgroup_2d: [64, 4, 1],
            step_workgroup_3d: [32, 4, 2],
            cpml_dispatch: CpmlDispatch::Auto,
        }
    }
}

/// How the acoustic CPML's kernels cover the grid ([`KernelOptions::cpml_dispatch`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CpmlDispatch {
    /// [`ByRegion`](Self::ByRegion) on a software adapter, [`OneKernel`](Self::OneKernel) on a
    /// GPU.
    #[default]
    Auto,
    /// One dispatch per region of the grid (4 in 2D, 8 in 3D), each compiled for the axes whose
    /// layer its cells are near: no branch costs anything where its code is not needed, as a
    /// SIMD software adapter runs both sides of every branch.
    ByRegion,
    /// One dispatch over the whole grid, each cell testing which layers it is near: where a
    /// dispatch costs more than a branch that is coherent across a warp.
    OneKernel,
}

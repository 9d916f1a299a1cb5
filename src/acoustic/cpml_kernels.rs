//! The CPML's kernels on the GPU (`shaders/acoustic_cpml.wgsl`) and the cells each dispatch
//! covers.
//!
//! Under a CPML the step, the adjoint step and the gradient are these kernels, not the sponge's
//! plain ones. An axis's layer terms are zero outside its *band*: the layer and, inside it, the
//! reach of the stencil that carries them (the memory terms' `D₁` forward, the Laplacian's `D₂`
//! in the transpose). Two ways to cover the grid, chosen by [`CpmlDispatch`]:
//!
//! - **by region**: the grid is cut by which axes' bands a cell lies in (4 regions in 2D, 8 in
//!   3D, the interior among them), and each region's kernel is compiled for exactly its axes;
//! - **one kernel**: a single dispatch over the grid whose cells test their own bands.
//!
//! On a SIMD software adapter (llvmpipe) a branch runs its whole length whichever way its lanes
//! go, so code compiled into the interior's kernel costs the whole grid; regions pay only where
//! the layer is. On a real GPU a warp runs a branch only where it straddles a band's edge, and
//! a dispatch costs microseconds: one kernel.

use super::cpml::{Cpml, MEMORY_RADIUS};
use super::grid::Layout;
use super::kernels::CPML_WGSL;
use crate::error::{Error, Result};
use crate::gpu::{CpmlDispatch, Gpu};

/// `AXES` of the one kernel that tests each cell's bands (`shaders/acoustic_cpml.wgsl`).
const PER_CELL: u32 = 8;

/// One dispatch of a CPML kernel: its cells (bit `d` of `axes` set when they lie in axis `d`'s
/// band; [`PER_CELL`] for the whole grid), its pipeline and its workgroups.
#[derive(Debug)]
pub(super) struct LayerRegion {
    pub(super) axes: u32,
    pub(super) pipeline: wgpu::ComputePipeline,
    pub(super) groups: [u32; 3],
}

/// The CPML's step, adjoint step and gradient, each as the dispatches that cover the grid.
#[derive(Debug)]
pub(super) struct CpmlKernels {
    pub(super) step: Vec<LayerRegion>,
    pub(super) adjoint: Vec<LayerRegion>,
    pub(super) gradient: Vec<LayerRegion>,
}

impl CpmlKernels {
    /// Compiles the kernels for `layout`'s order and dimension, with the step's workgroup shape
    /// `wg` and specialisation constants (`RADIUS`, `WORKGROUP_*`).
    pub(super) fn new(
        gpu: &Gpu,
        layout: &Layout,
        cpml: &Cpml,
        wg: [u32; 3],
        step_constants: &[(&str, f64)],
    ) -> Result<Self> {
        let one_kernel = match gpu.options().kernels.cpml_dispatch {
            CpmlDispatch::ByRegion => false,
            CpmlDispatch::OneKernel => true,
            _ => !gpu.is_software(),
        };
        let first_radius = layout.radius.min(MEMORY_RADIUS);
        let size: u32 = wg.iter().product();
        let max = gpu.limits().max_compute_workgroups_per_dimension;
        let kernels = |name: &str, band_radius: usize| {
            let reach = cpml.width() + band_radius;
            let mut constants = step_constants.to_vec();
            constants.push(("FIRST_RADIUS", first_radius as f64));
            constants.push(("BAND_RADIUS", band_radius as f64));
            constants.push(("LAYER_WORKGROUP", f64::from(size)));
            let masks = if one_kernel {
                vec![PER_CELL]
            } else {
                let axes: u32 = if layout.dim == 3 { 0b111 } else { 0b101 };
                (0..8).filter(|m| m & !axes == 0).collect()
            };
            let mut regions = Vec::new();
            for mask in masks {
                let Some(groups) = region_groups(layout, mask, reach, size, max) else {
                    continue;
                };
                let groups = groups?;
                let mut constants = constants.clone();
                constants.push(("AXES", f64::from(mask)));
                let dim = if layout.dim == 3 { "3d" } else { "2d" };
                let pipeline = gpu.compute_pipeline(
                    &format!("cpml {name}, axes {mask:03b}"),
                    CPML_WGSL,
                    &format!("layer_{name}_{dim}"),
                    &constants,
                )?;
                regions.push(LayerRegion {
                    axes: mask,
                    pipeline,
                    groups,
                });
            }
            Ok::<_, crate::Error>(regions)
        };
        Ok(Self {
            step: kernels("step", first_radius)?,
            gradient: kernels("gradient", first_radius)?,
            adjoint: kernels("adjoint", layout.radius)?,
        })
    }
}

/// The cells per axis `(x, y, z)` of region `mask` of bands reaching `reach` cells in from the
/// grid's edge, or `None` for an empty region.
fn region_extent(layout: &Layout, mask: u32, reach: usize) -> Option<[usize; 3]> {
    let e = layout.extended;
    let extent = [0, 1, 2].map(|d| match () {
        _ if mask == PER_CELL || (layout.dim == 2 && d == 1) => e[d],
        _ if mask & (1 << d) != 0 => (2 * reach).min(e[d]),
        _ => e[d].saturating_sub(2 * reach),
    });
    extent.iter().all(|&n| n > 0).then_some(extent)
}

/// Workgroups of `size` invocations for the cells of region `mask` (see [`region_extent`]),
/// counted flat: a row of them, or rows of the most a dimension holds (`max`). `None` for an
/// empty region; `Some(Err)` when not even that holds it.
fn region_groups(
    layout: &Layout,
    mask: u32,
    reach: usize,
    size: u32,
    max: u32,
) -> Option<Result<[u32; 3]>> {
    let cells: usize = region_extent(layout, mask, reach)?.iter().product();
    let total = cells.div_ceil(size as usize);
    let rows = total.div_ceil(max as usize);
    Some(match u32::try_from(total) {
        Ok(total) if total <= max => Ok([total, 1, 1]),
        _ if rows <= max as usize => Ok([max, rows as u32, 1]),
        _ => Err(Error::InvalidArgument {
            name: "shape",
            reason: format!(
                "an extended grid of {:?} needs more than {max}² workgroups of {size}: use a \
                 smaller grid",
                layout.extended
            ),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The regions of every mask tile the extended grid exactly once, whether the two sides'
    /// bands meet or not; the one kernel covers it all.
    #[test]
    fn regions_tile_the_grid() {
        let cases = [
            (2, [30, 1, 20], 6),
            (2, [9, 1, 40], 6),
            (3, [12, 10, 8], 3),
            (3, [5, 7, 9], 4),
        ];
        for (dim, extended, reach) in cases {
            let layout = Layout::new(dim, extended, 2);
            let axes: u32 = if dim == 3 { 0b111 } else { 0b101 };
            let total: usize = (0..8u32)
                .filter(|m| m & !axes == 0)
                .filter_map(|m| region_extent(&layout, m, reach))
                .map(|e| e.iter().product::<usize>())
                .sum();
            let cells: usize = extended.iter().product();
            assert_eq!(total, cells, "{extended:?}, reach {reach}");
            let whole = region_extent(&layout, PER_CELL, reach).unwrap();
            assert_eq!(whole.iter().product::<usize>(), cells);
        }
    }
}

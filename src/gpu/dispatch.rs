//! Dispatch geometry: covering `len` elements with workgroups when one dimension is not enough.

use crate::error::{Error, Result};

/// Workgroup counts for a one-dimensional kernel over `len` elements.
///
/// A dimension holds at most `max_compute_workgroups_per_dimension` workgroups (65 535 by
/// default), so long vectors spill into the `y` dimension. A kernel recovers its element
/// index as `gid.x + gid.y * row`, where `row` is passed in its uniforms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dispatch1d {
    /// Workgroups in `x`, `y`, `z`.
    pub groups: [u32; 3],
    /// Elements per row of `x` workgroups: `groups[0] × workgroup_size`.
    pub row: u32,
}

/// Workgroup counts covering `len` elements with `workgroup_size` invocations per group and at
/// most `max_per_dim` groups in a dimension.
///
/// ```
/// use gpurevolve::gpu::dispatch_1d;
/// let d = dispatch_1d(1_000_000, 256, 65_535)?;
/// assert_eq!(d.groups, [3907, 1, 1]);
/// let d = dispatch_1d(100, 4, 7)?; // 25 groups: 7 per row, 4 rows
/// assert_eq!((d.groups, d.row), ([7, 4, 1], 28));
/// # Ok::<(), gpurevolve::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] when `workgroup_size` or `max_per_dim` is zero, or `len` needs
/// more than `max_per_dim²` groups.
pub fn dispatch_1d(len: u64, workgroup_size: u32, max_per_dim: u32) -> Result<Dispatch1d> {
    if workgroup_size == 0 || max_per_dim == 0 {
        return Err(Error::InvalidArgument {
            name: "workgroup_size",
            reason: "workgroup size and groups per dimension must be positive".into(),
        });
    }
    let groups = len.div_ceil(workgroup_size as u64).max(1);
    let x = groups.min(max_per_dim as u64);
    let y = groups.div_ceil(x);
    let row = x * workgroup_size as u64;
    if y > max_per_dim as u64 || row > u32::MAX as u64 {
        return Err(Error::InvalidArgument {
            name: "len",
            reason: format!(
                "{len} elements need {groups} workgroups of {workgroup_size}, more than a 2D \
                 dispatch of {max_per_dim} × {max_per_dim} holds"
            ),
        });
    }
    Ok(Dispatch1d {
        groups: [x as u32, y as u32, 1],
        row: row as u32,
    })
}

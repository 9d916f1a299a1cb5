//! [`GpuCounters`]: what a [`Gpu`] has created and submitted, so that host-side overhead can be
//! counted exactly (on any adapter, the software one included) and checked in tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// Objects created and command buffers submitted through a [`Gpu`](super::Gpu) since it was opened.
///
/// A time loop in its steady state creates nothing and submits once per
/// [`steps_per_submit`](crate::engine::RevolverOptions::steps_per_submit) steps; these counts
/// are how that is checked. Take two snapshots and subtract ([`GpuCounters::since`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuCounters {
    /// Buffers created by [`Gpu::create_buffer`](super::Gpu::create_buffer) (and [`Gpu::upload`](super::Gpu::upload)).
    pub buffers: u64,
    /// Compute pipelines compiled by [`Gpu::compute_pipeline`](super::Gpu::compute_pipeline) (cache hits are not counted).
    pub pipelines: u64,
    /// Bind groups created by [`Gpu::bind_group`](super::Gpu::bind_group).
    pub bind_groups: u64,
    /// Submissions through [`Gpu::submit`](super::Gpu::submit).
    pub submissions: u64,
}

impl GpuCounters {
    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &GpuCounters) -> GpuCounters {
        GpuCounters {
            buffers: self.buffers - earlier.buffers,
            pipelines: self.pipelines - earlier.pipelines,
            bind_groups: self.bind_groups - earlier.bind_groups,
            submissions: self.submissions - earlier.submissions,
        }
    }
}

/// The live counters inside a [`Gpu`] (atomic: the device may be shared across threads).
#[derive(Debug, Default)]
pub(super) struct Counters {
    buffers: AtomicU64,
    pipelines: AtomicU64,
    bind_groups: AtomicU64,
    submissions: AtomicU64,
}

impl Counters {
    pub(super) fn buffer(&self) {
        self.buffers.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn pipeline(&self) {
        self.pipelines.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn bind_group(&self) {
        self.bind_groups.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn submission(&self) {
        self.submissions.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> GpuCounters {
        GpuCounters {
            buffers: self.buffers.load(Ordering::Relaxed),
            pipelines: self.pipelines.load(Ordering::Relaxed),
            bind_groups: self.bind_groups.load(Ordering::Relaxed),
            submissions: self.submissions.load(Ordering::Relaxed),
        }
    }
}

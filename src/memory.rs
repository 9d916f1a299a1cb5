//! Host memory: what the machine holds, and sizes checked against it before anything is
//! allocated.
//!
//! Rust aborts the process when an allocation fails, and Linux's overcommit lets a huge
//! allocation succeed and kills the process later, when the pages are touched. Neither is an
//! answer to a user who asked for a grid too large: every size that user input sets is
//! computed with checked arithmetic and compared here with the machine's memory (and the
//! cgroup's limit) before the vectors of that size exist, and a file's values are reserved
//! with `try_reserve` ([`reserve`]), so an oversized request is an [`Error::HostMemory`] that
//! names the argument to change.

use crate::error::{Error, Result};

/// The machine's memory, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostMemory {
    /// Free now: `MemAvailable` plus free swap.
    pub available: u64,
    /// All of it: RAM plus swap.
    pub total: u64,
}

impl HostMemory {
    /// Reads `/proc/meminfo` (Linux), capped by the cgroup's `memory.max` where one is set (a
    /// batch job's or a container's limit, past which the kernel's OOM killer strikes, whatever
    /// the machine has). `None` elsewhere: sizes are then checked only against the address
    /// space, and an allocation that fails is still an error, never an abort.
    ///
    /// Swap counts towards what the machine has in all, not towards what is free now: a run
    /// that would live in swap is told so rather than left to crawl.
    pub fn now() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/meminfo").ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = text.lines().find(|l| l.starts_with(name))?;
            let kb: u64 = line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()?;
            kb.checked_mul(1024)
        };
        let swap_total = field("SwapTotal:").unwrap_or(0);
        let mut memory = HostMemory {
            available: field("MemAvailable:")?,
            total: field("MemTotal:")?.saturating_add(swap_total),
        };
        if let Some((limit, used)) = cgroup_limit() {
            memory.total = memory.total.min(limit);
            memory.available = memory.available.min(limit.saturating_sub(used));
        }
        Some(memory)
    }
}

/// The cgroup (v2) memory limit of this process and its use, where a limit is set.
fn cgroup_limit() -> Option<(u64, u64)> {
    let read = |name: &str| std::fs::read_to_string(format!("/sys/fs/cgroup/{name}")).ok();
    // "max" (no limit) does not parse.
    let limit: u64 = read("memory.max")?.trim().parse().ok()?;
    let used: u64 = read("memory.current")
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0);
    Some((limit, used))
}

/// `factors` multiplied, or `None` on overflow of 64 bits.
pub fn product(factors: &[u64]) -> Option<u64> {
    factors.iter().try_fold(1u64, |p, &f| p.checked_mul(f))
}

/// Checks that `needed` bytes (`None`: a size that overflowed 64 bits) fit in host memory
/// now, before they are allocated.
///
/// `what` names the allocation and the argument that sizes it (`"the traces (--nt × receivers)"`);
/// `hint` says what to change.
///
/// # Errors
/// [`Error::HostMemory`]: more than the machine has (can never fit), or more than is free now
/// (does not fit now).
///
/// ```
/// use gpurevolve::memory::check_host;
/// assert!(check_host("a small array", Some(1024), "use fewer cells").is_ok());
/// let err = check_host("the wavefield (--nx × --nz)", None, "use fewer cells").unwrap_err();
/// assert_eq!(err.kind(), gpurevolve::ErrorKind::NeverFits);
/// ```
pub fn check_host(what: &str, needed: Option<u64>, hint: &str) -> Result<()> {
    match needed {
        Some(n) if n <= isize::MAX as u64 && HostMemory::now().is_none_or(|m| n <= m.available) => {
            Ok(())
        }
        needed => Err(too_large(what, needed, hint)),
    }
}

/// [`Error::HostMemory`] for `needed` bytes (`None`: past 64 bits) against the memory now;
/// without `/proc/meminfo`, against the address space.
fn too_large(what: &str, needed: Option<u64>, hint: &str) -> Error {
    let (available, total) = HostMemory::now()
        .map_or((isize::MAX as u64, isize::MAX as u64), |m| {
            (m.available, m.total)
        });
    Error::HostMemory {
        what: what.to_owned(),
        needed: needed.unwrap_or(u64::MAX),
        available,
        total,
        hint: hint.to_owned(),
    }
}

/// An empty vector with room for `len` values, reserved with `try_reserve_exact` after
/// [`check_host`]: a failed allocation is an error, not an abort.
///
/// # Errors
/// [`Error::HostMemory`] as [`check_host`], or when the allocator refuses.
pub fn reserve<T>(len: usize, what: &str, hint: &str) -> Result<Vec<T>> {
    let bytes = (len as u64).checked_mul(std::mem::size_of::<T>() as u64);
    check_host(what, bytes, hint)?;
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| too_large(what, bytes, hint))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn sizes_past_the_machine_never_fit_and_small_ones_do() {
        assert_eq!(product(&[3, 5, 7]), Some(105));
        assert_eq!(product(&[u64::MAX, 2]), None);
        let m = HostMemory::now().expect("/proc/meminfo on Linux");
        assert!(m.available <= m.total && m.total > 0);
        assert!(check_host("x", Some(1 << 20), "h").is_ok());
        let err = check_host("x", m.total.checked_add(1), "h").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NeverFits);
        assert!(err.to_string().contains("in all"), "{err}");
        let err =
            reserve::<u64>(usize::MAX / 2, "the traces (--nt)", "use a smaller --nt").unwrap_err();
        assert!(err.to_string().contains("--nt"), "{err}");
        let v = reserve::<f32>(5, "x", "h").unwrap();
        assert!(v.is_empty() && v.capacity() >= 5);
    }
}

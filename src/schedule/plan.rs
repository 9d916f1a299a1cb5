//! Planning arithmetic of binomial checkpointing (the README's "Counting conventions").
//!
//! Conventions: `steps` (`n`) time steps numbered `0..n`; `snaps` (`s`) snapshots *including*
//! the one that holds the initial state. `β(s, t) = C(s + t, s)` is the most steps `s`
//! snapshots reverse when no step is advanced more than `t` times; the repetition number
//! `t(n, s)` is the smallest `t` with `β(s, t) ≥ n`; the fewest advances (forward steps that
//! do not immediately precede their own reverse) are `p(n, s) = t·n − C(s + t, t − 1)`.
//!
//! All counts are exact integers: binomials are computed in `u128`, capped where only a
//! comparison is needed, so no input overflows silently.

use crate::error::{Error, Result};

/// `min(C(s + t, t), cap)`, exactly, without overflow and in at most ~130 multiplications.
pub(crate) fn beta_capped(s: u64, t: u64, cap: u128) -> u128 {
    // C(s + t, k) with k = min(s, t) = Π_{i=1..k} (hi + i) / i, hi = max(s, t). Every partial
    // product is itself a binomial C(hi + i, i), so each division is exact, and the partial
    // products grow at least like 2^i: the loop stops at the cap long before k when k is large.
    let (hi, k) = (s.max(t) as u128, s.min(t));
    let mut c: u128 = 1;
    for i in 1..=k as u128 {
        let factor = hi + i;
        c = match c.checked_mul(factor) {
            Some(product) => product / i,
            None => {
                // c·factor ≥ 2^128: divide first. With g = gcd(c, i), i/g divides factor.
                let g = gcd(c, i);
                match (c / g).checked_mul(factor / (i / g)) {
                    Some(v) => v,
                    None => return cap,
                }
            }
        };
        if c >= cap {
            return cap;
        }
    }
    c.min(cap)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Smallest `t` with `β(snaps, t) ≥ steps`; `snaps ≥ 1`.
pub(crate) fn repetitions_unchecked(steps: u64, snaps: u64) -> u64 {
    if steps <= 1 {
        return 0;
    }
    if snaps == 1 {
        // β(1, t) = t + 1.
        return steps - 1;
    }
    let reaches = |t: u64| beta_capped(snaps, t, steps as u128) >= steps as u128;
    // Exponential search, then bisection on (lo, hi]. With snaps ≥ 2, t ≤ √(2·steps) < 2^33.
    let mut hi = 1u64;
    while !reaches(hi) {
        hi *= 2;
    }
    let mut lo = hi / 2;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if reaches(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

fn check(steps: u64, snaps: u64) -> Result<()> {
    if steps == 0 {
        return Err(Error::ZeroSteps);
    }
    if snaps == 0 {
        return Err(Error::ZeroSnapshots);
    }
    Ok(())
}

/// `β(snaps, reps) = C(snaps + reps, snaps)`: the most steps that `snaps` snapshots can
/// reverse if no step is advanced more than `reps` times.
///
/// ```
/// assert_eq!(gpurevolve::schedule::max_steps(3, 2).unwrap(), 10);
/// ```
///
/// # Errors
/// [`Error::ZeroSnapshots`] for `snaps = 0`; [`Error::CountOverflow`] when the count exceeds
/// `u64::MAX`.
pub fn max_steps(snaps: u64, reps: u64) -> Result<u64> {
    if snaps == 0 {
        return Err(Error::ZeroSnapshots);
    }
    let cap = u64::MAX as u128 + 1;
    match beta_capped(snaps, reps, cap) {
        v if v == cap => Err(Error::CountOverflow {
            what: "the number of reversible steps",
            steps: reps,
            snaps,
        }),
        v => Ok(v as u64),
    }
}

/// Repetition number `t(steps, snaps)`: the smallest `t` with `β(snaps, t) ≥ steps`, i.e. how
/// often the most-advanced step is advanced in an optimal schedule.
///
/// ```
/// assert_eq!(gpurevolve::schedule::repetition_number(1000, 10).unwrap(), 4);
/// ```
///
/// # Errors
/// [`Error::ZeroSteps`], [`Error::ZeroSnapshots`].
pub fn repetition_number(steps: u64, snaps: u64) -> Result<u64> {
    check(steps, snaps)?;
    Ok(repetitions_unchecked(steps, snaps))
}

/// `p(steps, snaps)`: the fewest advances (forward steps that do not immediately precede their
/// own reverse) with which `snaps` snapshots reverse `steps` steps. The full adjoint run then
/// evaluates `steps + p` forward steps. With `snaps ≥ steps − 1`, `p = steps − 1`; with
/// `snaps = 1`, `p = steps·(steps − 1)/2`.
///
/// ```
/// assert_eq!(gpurevolve::schedule::min_advances(10, 3).unwrap(), 15);
/// assert_eq!(gpurevolve::schedule::min_advances(10000, 20).unwrap(), 37976);
/// ```
///
/// # Errors
/// [`Error::ZeroSteps`], [`Error::ZeroSnapshots`], [`Error::CountOverflow`] when `p` exceeds
/// `u64::MAX`.
pub fn min_advances(steps: u64, snaps: u64) -> Result<u64> {
    check(steps, snaps)?;
    let t = repetitions_unchecked(steps, snaps);
    if t == 0 {
        return Ok(0);
    }
    // t·n < 2^128 because t < n < 2^64, and C(s + t, t − 1) = β(s + 1, t − 1) ≤ t·n.
    let tn = t as u128 * steps as u128;
    let p = tn - beta_capped(snaps.saturating_add(1), t - 1, tn);
    u64::try_from(p).map_err(|_| Error::CountOverflow {
        what: "the number of advances",
        steps,
        snaps,
    })
}

/// What a plan for `steps` steps with `snaps` snapshots costs (faer-style `Info` result).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanInfo {
    /// Time steps `n`.
    pub steps: u64,
    /// Snapshots `s` allowed (including the initial state's).
    pub snaps: u64,
    /// Snapshots actually used at peak: `min(s, n − 1)` (none for `n = 1`).
    pub slots_used: u64,
    /// Repetition number `t(n, s)`.
    pub repetitions: u64,
    /// Fewest advances `p(n, s)`.
    pub advances: u64,
    /// Forward step evaluations of the whole adjoint run, `n + p`.
    pub total_forward: u64,
    /// `total_forward / steps`.
    pub recompute_factor: f64,
}

/// Plans a Revolve run: repetition number, advances, forward steps and snapshots used.
///
/// ```
/// let plan = gpurevolve::schedule::plan(1000, 10).unwrap();
/// assert_eq!((plan.repetitions, plan.advances, plan.total_forward), (4, 3636, 4636));
/// ```
///
/// # Errors
/// As [`min_advances`].
pub fn plan(steps: u64, snaps: u64) -> Result<PlanInfo> {
    let advances = min_advances(steps, snaps)?;
    let total_forward = steps.checked_add(advances).ok_or(Error::CountOverflow {
        what: "the number of forward steps",
        steps,
        snaps,
    })?;
    Ok(PlanInfo {
        steps,
        snaps,
        slots_used: snaps.min(steps - 1),
        repetitions: repetitions_unchecked(steps, snaps),
        advances,
        total_forward,
        recompute_factor: total_forward as f64 / steps as f64,
    })
}

/// The fewest snapshots whose Revolve run evaluates at most `factor × steps` forward steps.
///
/// The smallest factor there is, `(2n − 1)/n`, needs `n − 1` snapshots (every state kept).
///
/// ```
/// use gpurevolve::schedule::{min_snapshots_for_factor, plan};
/// let s = min_snapshots_for_factor(1000, 5.0).unwrap();
/// assert!(plan(1000, s).unwrap().recompute_factor <= 5.0);
/// assert!(plan(1000, s - 1).unwrap().recompute_factor > 5.0);
/// ```
///
/// # Errors
/// [`Error::ZeroSteps`]; [`Error::InvalidArgument`] when `factor` is not finite or is below the
/// smallest factor reachable.
pub fn min_snapshots_for_factor(steps: u64, factor: f64) -> Result<u64> {
    if steps == 0 {
        return Err(Error::ZeroSteps);
    }
    let best = (2 * steps as u128 - 1) as f64 / steps as f64;
    if !factor.is_finite() || factor < best {
        return Err(Error::InvalidArgument {
            name: "factor",
            reason: format!(
                "a recompute factor of {factor} is out of reach for {steps} steps; the smallest is \
                 {best} (every state kept, {} snapshots)",
                steps.saturating_sub(1).max(1)
            ),
        });
    }
    let fits = |snaps: u64| -> bool {
        // An overflowing count is certainly above any finite factor of a u64 step count.
        min_advances(steps, snaps)
            .map(|p| (steps as u128 + p as u128) as f64 / steps as f64 <= factor)
            .unwrap_or(false)
    };
    // p(n, s) falls as s grows and reaches its floor at s = n − 1, which fits by the check above.
    let (mut lo, mut hi) = (0u64, steps.saturating_sub(1).max(1));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// The most snapshots of `state_bytes` each that fit in `budget_bytes`.
///
/// ```
/// assert_eq!(gpurevolve::schedule::max_snapshots_in_budget(1 << 30, 8 << 20).unwrap(), 128);
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] for `state_bytes = 0`; [`Error::SnapshotBudget`] when not even
/// one snapshot fits.
pub fn max_snapshots_in_budget(budget_bytes: u64, state_bytes: u64) -> Result<u64> {
    if state_bytes == 0 {
        return Err(Error::InvalidArgument {
            name: "state_bytes",
            reason: "a snapshot of 0 bytes; give the size of one time-step state".into(),
        });
    }
    match budget_bytes / state_bytes {
        0 => Err(Error::SnapshotBudget {
            budget_bytes,
            state_bytes,
        }),
        n => Ok(n),
    }
}

//! Results are finite or they are errors: a NaN or an infinity never leaves the library as a
//! number. The traces say where a run first went wrong, since sample `k` is recorded at
//! step `k`.

use super::gpu::GradientInfo;
use crate::error::{Error, Result};

/// The first time sample of `traces` (`[nt][receivers]`) that holds a non-finite value.
fn first_bad_sample(traces: &[f64], receivers: usize) -> Option<usize> {
    let i = traces.iter().position(|v| !v.is_finite())?;
    Some(i / receivers.max(1))
}

/// [`Error::NonFinite`] naming the first sample (and its time) where the traces stopped being
/// finite.
pub(crate) fn check_traces(traces: &[f64], receivers: usize, dt: f64) -> Result<()> {
    match first_bad_sample(traces, receivers) {
        None => Ok(()),
        Some(k) => Err(Error::NonFinite {
            what: "the recorded traces".into(),
            location: format!("first at time sample {k}, t = {:.4e} s", k as f64 * dt),
        }),
    }
}

/// Misfit, gradient and traces of one shot must all be finite.
pub(crate) fn check_gradient(info: &GradientInfo, receivers: usize, dt: f64) -> Result<()> {
    check_traces(&info.traces, receivers, dt)?;
    if !info.misfit.is_finite() {
        return Err(Error::NonFinite {
            what: "the misfit".into(),
            location: "the predicted traces are finite, so the observed records are too large \
                       or not finite"
                .into(),
        });
    }
    if let Some(i) = info.gradient.iter().position(|g| !g.is_finite()) {
        return Err(Error::NonFinite {
            what: "the gradient".into(),
            location: format!(
                "first at padded cell {i}; the adjoint sweep overflowed float32: are the \
                 observed records on the scale of the predicted ones?"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bad_sample_is_named() {
        let mut traces = vec![1.0; 12];
        assert!(check_traces(&traces, 3, 0.5).is_ok());
        traces[7] = f64::NAN;
        traces[10] = f64::INFINITY;
        let err = check_traces(&traces, 3, 0.5).unwrap_err();
        assert!(
            err.to_string().contains("time sample 2, t = 1.0000e0 s"),
            "{err}"
        );
        let info = GradientInfo {
            misfit: f64::INFINITY,
            gradient: vec![0.5; 4],
            traces: vec![1.0; 6],
        };
        let err = check_gradient(&info, 3, 0.1).unwrap_err().in_shot(4);
        assert!(
            err.to_string()
                .contains("the misfit is not finite (shot 4, "),
            "{err}"
        );
        let info = GradientInfo {
            misfit: 1.0,
            gradient: vec![0.5, f64::NEG_INFINITY],
            traces: vec![1.0; 6],
        };
        let err = check_gradient(&info, 3, 0.1).unwrap_err();
        assert!(err.to_string().contains("padded cell 1"), "{err}");
    }
}

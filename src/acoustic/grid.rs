//! Grid layout and finite-difference stencils shared by the CPU twin and the WGSL kernels.
//!
//! Three nested boxes per axis: the *physical* grid `n` (the model as given), the *extended*
//! grid `N = n + 2·nbl` (physical plus the absorbing layer on every side), and the *padded*
//! grid `P = N + 2·r` in memory, whose halo of `r` (stencil radius) zeros makes every stencil
//! read in bounds. Only extended cells are ever written, so the halo stays zero and the
//! Laplacian is exactly symmetric (zero Dirichlet outside the extended grid): the adjoint
//! needs no special boundary code.
//!
//! 2D grids are `(x, z)`; 3D grids `(x, y, z)`; `z` (depth) is last and fastest in memory,
//! as in a C-ordered NumPy array of shape `(nx, nz)` or `(nx, ny, nz)`.

use crate::error::{Error, Result};

/// Coefficients `c₀ … c_r` of the centred second derivative of order `2r` (times `h²`):
/// `u'' ≈ (c₀ u₀ + Σₖ cₖ (u₋ₖ + uₖ)) / h²`, with `cₖ = 2(−1)^{k+1} (r!)² / (k² (r−k)! (r+k)!)`
/// and `c₀ = −2 Σ cₖ`.
pub fn second_derivative_coefficients(radius: usize) -> Vec<f64> {
    let mut c: Vec<f64> = (0..=radius)
        .map(|k| 2.0 * signed_ratio(radius, k) / (k * k).max(1) as f64)
        .collect();
    c[0] = -2.0 * c[1..].iter().sum::<f64>();
    c
}

/// Coefficients `c₁ … c_r` (slot 0 zero) of the centred first derivative of order `2r`:
/// `u' ≈ Σₖ cₖ (uₖ − u₋ₖ) / h`, `cₖ = (−1)^{k+1} (r!)² / (k (r−k)! (r+k)!)`.
pub(crate) fn first_derivative_coefficients(radius: usize) -> Vec<f64> {
    (0..=radius)
        .map(|k| {
            if k == 0 {
                0.0
            } else {
                signed_ratio(radius, k) / k as f64
            }
        })
        .collect()
}

/// `(−1)^{k+1} (r!)² / ((r−k)! (r+k)!)`, the factor both centred derivatives share, computed as
/// `Π_{j=1..k} (r − k + j) / (r + j)` without overflow (slot 0 is overwritten by callers).
fn signed_ratio(radius: usize, k: usize) -> f64 {
    let ratio: f64 = (1..=k)
        .map(|j| (radius - k + j) as f64 / (radius + j) as f64)
        .product();
    if k % 2 == 1 { ratio } else { -ratio }
}

/// The space orders gpurevolve implements.
pub const SPACE_ORDERS: [usize; 4] = [2, 4, 8, 16];

/// Memory layout of one field: extended sizes, padded sizes, radius.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// 2 or 3.
    pub dim: usize,
    /// Extended cells per axis `(x, y, z)`; `y` is 1 in 2D.
    pub extended: [usize; 3],
    /// Padded cells per axis; `y` is 1 in 2D (no halo along a missing axis).
    pub padded: [usize; 3],
    /// Stencil radius `r` (space order / 2).
    pub radius: usize,
}

impl Layout {
    /// The layout of an extended grid with stencil radius `radius`.
    pub(crate) fn new(dim: usize, extended: [usize; 3], radius: usize) -> Self {
        let pad = |n: usize| n + 2 * radius;
        let padded = if dim == 2 {
            [pad(extended[0]), 1, pad(extended[2])]
        } else {
            [pad(extended[0]), pad(extended[1]), pad(extended[2])]
        };
        Self {
            dim,
            extended,
            padded,
            radius,
        }
    }

    /// Values in one padded field.
    pub fn len(&self) -> usize {
        self.padded.iter().product()
    }

    /// Never true: a layout has at least one cell (kept for clippy's `len` convention).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Extended (non-halo) cells.
    pub fn extended_len(&self) -> usize {
        self.extended.iter().product()
    }

    /// Offset of the halo along each axis (`r`, or 0 along `y` in 2D).
    fn halo(&self) -> [usize; 3] {
        [
            self.radius,
            if self.dim == 3 { self.radius } else { 0 },
            self.radius,
        ]
    }

    /// Padded index of extended cell `(x, y, z)`.
    pub fn index(&self, x: usize, y: usize, z: usize) -> usize {
        let h = self.halo();
        ((x + h[0]) * self.padded[1] + (y + h[1])) * self.padded[2] + (z + h[2])
    }

    /// Strides of the padded array along `(x, y, z)`.
    pub fn strides(&self) -> [usize; 3] {
        [self.padded[1] * self.padded[2], self.padded[2], 1]
    }

    /// Calls `f(padded_index)` for every extended cell, in memory order.
    pub fn for_each_extended(&self, mut f: impl FnMut(usize)) {
        for x in 0..self.extended[0] {
            for y in 0..self.extended[1] {
                let row = self.index(x, y, 0);
                for z in 0..self.extended[2] {
                    f(row + z);
                }
            }
        }
    }

    /// Copies an extended-grid array (C order) into a padded field with a zero halo.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `extended` does not hold one value per extended cell.
    pub fn pad(&self, extended: &[f64]) -> Result<Vec<f64>> {
        check_len("extended", extended.len(), self.extended_len())?;
        let mut out = vec![0.0; self.len()];
        let mut i = 0;
        self.for_each_extended(|p| {
            out[p] = extended[i];
            i += 1;
        });
        Ok(out)
    }

    /// The extended cells of a padded field, in C order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `padded` is not one padded field.
    pub fn unpad<T: Copy>(&self, padded: &[T]) -> Result<Vec<T>> {
        check_len("padded", padded.len(), self.len())?;
        let mut out = Vec::with_capacity(self.extended_len());
        self.for_each_extended(|p| out.push(padded[p]));
        Ok(out)
    }
}

/// A slice argument of the wrong length, as a typed error that says which length is wanted.
pub(crate) fn check_len(name: &'static str, got: usize, want: usize) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            name,
            reason: format!("{got} values given, {want} expected"),
        })
    }
}

pub(crate) fn check_space_order(order: usize) -> Result<usize> {
    if SPACE_ORDERS.contains(&order) {
        Ok(order / 2)
    } else {
        Err(Error::InvalidArgument {
            name: "space_order",
            reason: format!("space order {order} is not implemented; use one of {SPACE_ORDERS:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coefficients_match_the_textbook_tables() {
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-14);
        assert!(close(&second_derivative_coefficients(1), &[-2.0, 1.0]));
        assert!(close(
            &second_derivative_coefficients(2),
            &[-2.5, 4.0 / 3.0, -1.0 / 12.0]
        ));
        assert!(close(
            &second_derivative_coefficients(4),
            &[
                -205.0 / 72.0,
                8.0 / 5.0,
                -1.0 / 5.0,
                8.0 / 315.0,
                -1.0 / 560.0
            ]
        ));
        // Order 16: exact on x^2 … x^16 (a polynomial of degree 2r + 1 is differentiated exactly).
        let c = second_derivative_coefficients(8);
        for p in (2..=16).step_by(2) {
            let d2: f64 = (1..=8).map(|k| 2.0 * c[k] * (k as f64).powi(p)).sum();
            let want = if p == 2 { 2.0 } else { 0.0 };
            assert!((d2 - want).abs() < 1e-6 * (8f64).powi(p), "x^{p}: {d2}");
        }
    }

    #[test]
    fn first_derivative_coefficients_match_the_textbook_and_are_exact_on_odd_powers() {
        let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-14);
        assert!(close(&first_derivative_coefficients(1), &[0.0, 0.5]));
        assert!(close(
            &first_derivative_coefficients(2),
            &[0.0, 2.0 / 3.0, -1.0 / 12.0]
        ));
        let c = first_derivative_coefficients(8);
        for p in (1..=15).step_by(2) {
            let d1: f64 = (1..=8).map(|k| 2.0 * c[k] * (k as f64).powi(p)).sum();
            let want = if p == 1 { 1.0 } else { 0.0 };
            assert!((d1 - want).abs() < 1e-6 * 8f64.powi(p), "x^{p}: {d1}");
        }
    }

    #[test]
    fn padding_round_trips_and_keeps_a_zero_halo() {
        let layout = Layout::new(3, [3, 4, 5], 2);
        assert_eq!(layout.padded, [7, 8, 9]);
        let data: Vec<f64> = (0..60).map(|i| i as f64 + 1.0).collect();
        let padded = layout.pad(&data).unwrap();
        assert_eq!(layout.unpad(&padded).unwrap(), data);
        // Wrong lengths are typed errors, not panics.
        assert!(layout.pad(&data[1..]).is_err());
        assert!(layout.unpad(&padded[1..]).is_err());
        assert_eq!(
            padded.iter().filter(|v| **v == 0.0).count(),
            layout.len() - 60
        );
        let flat = Layout::new(2, [3, 1, 5], 4);
        assert_eq!(flat.padded, [11, 1, 13]);
        assert_eq!(flat.index(0, 0, 0), 4 * 13 + 4);
    }
}

//! Constant-density acoustic waves: models, geometry, the discretisation of the README's "Numerics", the
//! float64 CPU twin and the WGSL kernels. Knows the GPU layer; knows nothing of schedules.
//!
//! `m ∂²u/∂t² + η ∂u/∂t − ∇²u = q`, `m = 1/c²`, leapfrog in time, centred Laplacian of
//! order 2, 4, 8 or 16, SI units throughout. The absorbing layer ([`Boundary`]) is a
//! convolutional PML (memory fields in the layer, its exact discrete adjoint) or a tapered
//! sponge (`η > 0` in the layer, centred damping), fixed per problem.

mod boundary;
mod cpml;
mod cpml_kernels;
mod cpu;
pub(crate) mod finite;
mod geometry;
mod gpu;
mod grid;
mod kernels;
mod model;
mod operator;
mod points;
mod problem;
mod quiet;
mod store_all;

pub use boundary::{Boundary, BoundaryKind};
pub use cpu::{CpuAdjoint, CpuForward, CpuTwin, misfit, velocity_gradient};
pub use geometry::{Geometry, PointPlan, TimeAxis, ricker};
pub use gpu::{AdjointInput, GpuAcoustic, GpuAdjoint, GpuForward, GradientInfo, largest_batch};
pub use grid::{Layout, SPACE_ORDERS, second_derivative_coefficients};
pub use kernels::FIELD_USAGE;
pub use model::Model;
pub(crate) use operator::check_series;
pub use operator::{AcousticOperator, TracedGradient};
pub use problem::{Problem, level_bytes_of};
pub use quiet::Quiet;

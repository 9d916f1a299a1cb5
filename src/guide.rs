//! The user guide: one page per topic, written in `docs/guide/*.md` and shown here by rustdoc.
//! Their Rust examples run as doc tests.
//!
//! | page | what |
//! |---|---|
//! | [`getting_started`] | what gpurevolve is, set-up, the two commands, a first gradient, the layout of the code |
//! | [`main_job`] | the main job's options and outputs, `summary.json` |
//! | [`schedules`] | Revolve, counting conventions, level schedules, tiers and placement, online checkpointing, the planner |
//! | [`custom_operator`] | the engine and the `Operator` trait: your own GPU kernels, a CPU code, a new memory tier |
//! | [`python`] | the Python package |
//! | [`python_reference`] | every Python function's signature and docstring (generated) |
//! | [`scale_out`] | several GPUs, MPI ranks, resuming a killed survey |
//! | [`robustness`] | exit codes, errors, signals, checksums, deadlines |
//! | [`numerics`] | the acoustic equations, the absorbing layers, the gradient, validation |
//!
//! The README has the two commands; `BENCHMARKS.md` has every measured figure with its
//! command.

// The page's example needs the acoustic solver; without it the page says so.
#[cfg_attr(
    feature = "acoustic",
    doc = include_str!("../docs/guide/getting-started.md")
)]
#[cfg_attr(
    not(feature = "acoustic"),
    doc = "# Getting started\n\nThis build has no `acoustic` feature: see `docs/guide/getting-started.md`."
)]
pub mod getting_started {}

#[doc = include_str!("../docs/guide/main-job.md")]
pub mod main_job {}

#[doc = include_str!("../docs/guide/schedules.md")]
pub mod schedules {}

#[doc = include_str!("../docs/guide/custom-operator.md")]
pub mod custom_operator {}

#[doc = include_str!("../docs/guide/python.md")]
pub mod python {}

#[doc = include_str!("../docs/guide/python-reference.md")]
pub mod python_reference {}

#[doc = include_str!("../docs/guide/scale-out.md")]
pub mod scale_out {}

#[doc = include_str!("../docs/guide/robustness.md")]
pub mod robustness {}

#[doc = include_str!("../docs/guide/numerics.md")]
pub mod numerics {}

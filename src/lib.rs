//! gpurevolve
#![warn(missing_docs)]

mod error;
pub mod gpu;
pub mod schedule;

pub use error::{Error, Result};

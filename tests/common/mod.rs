//! Shared test helpers.

use gpurevolve::gpu::{Gpu, GpuOptions};

/// Whether the tests run under CI, where a missing GPU adapter is a failure, not a skip.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The GPU for a test. Without an adapter: under CI the test fails; elsewhere it is skipped
/// with a message that cannot be missed.
pub fn gpu() -> Option<Gpu> {
    gpu_with(&GpuOptions::default())
}

/// As [`gpu`], opened with `options`.
#[allow(dead_code)] // each test crate uses its own subset of the helpers
pub fn gpu_with(options: &GpuOptions) -> Option<Gpu> {
    match Gpu::with_options(options) {
        Ok(gpu) => Some(gpu),
        Err(e) if under_ci() => panic!("CI is set and no GPU adapter is usable: {e}"),
        Err(e) => {
            // Straight to the stderr handle: libtest captures `eprintln!`, and a skip must show.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "\n!!!!! SKIPPING GPU TEST: {e}\n");
            None
        }
    }
}

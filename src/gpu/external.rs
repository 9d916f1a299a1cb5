//! [`Gpu::from_device`]: gpurevolve on a device that another code (a simulation, a renderer, a
//! larger solver) already opened.

use super::{Gpu, GpuOptions};
use crate::error::{Error, Result};

/// A device limit: its name, how to read it, and the least gpurevolve needs.
type Required = (&'static str, fn(&wgpu::Limits) -> u64, u64);

/// What gpurevolve's kernels need of a device beyond WebGPU's guaranteed minimum: the point
/// kernels bind six storage buffers, and their per-sample uniforms sit at a dynamic offset.
const REQUIRED: [Required; 2] = [
    (
        "max_storage_buffers_per_shader_stage",
        |l| u64::from(l.max_storage_buffers_per_shader_stage),
        6,
    ),
    (
        "max_dynamic_uniform_buffers_per_pipeline_layout",
        |l| u64::from(l.max_dynamic_uniform_buffers_per_pipeline_layout),
        1,
    ),
];

impl Gpu {
    /// Wraps a device and queue that the caller opened, with `options` for gpurevolve's own
    /// knobs (its adapter-choosing fields are ignored: the device is chosen already). `info` is
    /// the adapter's description where the caller has one; without it the `Gpu` reports an
    /// adapter named "external device" of unknown type. The limits are the device's own.
    ///
    /// What gpurevolve then assumes and does:
    /// - it needs no optional feature, and of the limits only that the device can bind six
    ///   storage buffers in a shader stage and one dynamic uniform buffer (checked here), and
    ///   that its buffers are as large as the problem's fields (checked at each allocation);
    /// - it creates buffers, pipelines and bind groups on the device and submits its own command
    ///   buffers to the queue; out of memory is caught by error scopes as for a device it opens;
    /// - it waits only for its own submissions ([`Gpu::wait`] waits for the last one made
    ///   through [`Gpu::submit`]; spills wait for theirs), so work the application submits
    ///   afterwards never blocks it;
    /// - it keeps the application's uncaptured-error handler (a device gpurevolve opens gets a
    ///   handler that logs instead of panicking);
    /// - it sets the device's lost callback (wgpu keeps one per device, so this replaces one
    ///   the application set; [`Gpu::lost`] says why the device was lost), and each of its
    ///   waits ends within `options.wait_deadline` ([`GpuOptions::wait_deadline`]), so a device
    ///   lost or hung ends gpurevolve's calls with [`Error::DeviceLost`] or [`Error::Timeout`].
    ///
    /// ```no_run
    /// # async fn open() -> (wgpu::Device, wgpu::Queue, wgpu::AdapterInfo) { unimplemented!() }
    /// let (device, queue, info) = pollster::block_on(open()); // the application's own
    /// let gpu = gpurevolve::gpu::Gpu::from_device(device, queue, Some(info), &Default::default())?;
    /// # Ok::<(), gpurevolve::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the limit the device lacks, or a workgroup shape in
    /// `options` it cannot run.
    pub fn from_device(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: Option<wgpu::AdapterInfo>,
        options: &GpuOptions,
    ) -> Result<Self> {
        let limits = device.limits();
        for (name, get, needed) in REQUIRED {
            let has = get(&limits);
            if has < needed {
                return Err(Error::InvalidArgument {
                    name: "device",
                    reason: format!(
                        "the device was opened with {name} = {has}; gpurevolve's kernels need at least {needed}: request it when opening the device"
                    ),
                });
            }
        }
        super::context::check_workgroups(&options.kernels, &limits)?;
        let info = info.unwrap_or_else(|| wgpu::AdapterInfo {
            name: "external device".into(),
            ..wgpu::AdapterInfo::new(wgpu::DeviceType::Other, wgpu::Backend::Noop)
        });
        log::info!("GPU: wrapping the application's device `{}`", info.name);
        Ok(Self::assemble(device, queue, info, limits, options.clone()))
    }
}

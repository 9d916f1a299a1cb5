//! [`Gpu`]: one adapter, its device and queue, and the allocation and transfer helpers that turn
//! wgpu's asynchronous errors into typed, synchronous [`Error`]s.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::COPY_ALIGNMENT;
use super::counters::{Counters, GpuCounters};
use super::kernel_options::KernelOptions;
use super::pipelines::PipelineCache;
use crate::error::{Error, Result};

/// How to choose and open the GPU (faer-style parameters with defaults).
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Backends to look at. Default: `WGPU_BACKEND` from the environment, else all.
    pub backends: wgpu::Backends,
    /// Prefer the discrete GPU. Default: `HighPerformance`.
    pub power_preference: wgpu::PowerPreference,
    /// Accept only a software ("fallback") adapter. Default: `false`; a software adapter is
    /// still used when it is the only one.
    pub force_fallback_adapter: bool,
    /// Open the device with buffers limited to this many bytes (both `max_buffer_size` and
    /// `max_storage_buffer_binding_size`), to rehearse a smaller device. Default: `None`, the
    /// adapter's own limits.
    pub max_buffer_size: Option<u64>,
    /// The shapes of the kernels compiled on this device: speed, never results.
    pub kernels: KernelOptions,
    /// The longest any one wait for the device may last: a wait for a submission, for a
    /// buffer's map. Past it the wait ends in [`Error::Timeout`] naming what it waited for,
    /// instead of blocking for ever on a device that stopped answering.
    ///
    /// Default: 600 s, or the seconds in the environment variable `GPUREVOLVE_WAIT_DEADLINE_S`
    /// (read once per process; a value that is not a positive number is ignored, with a
    /// warning). Generous on purpose: the deadline bounds one wait, and one wait can cover a
    /// whole batch of steps queued before it, which on a software adapter (lavapipe on two
    /// cores) or for a large 3D grid legitimately takes minutes. A device that has not
    /// answered in ten minutes has hung; a run cut short by a tight deadline is lost work.
    pub wait_deadline: Duration,
}

/// The default [`GpuOptions::wait_deadline`] where the environment does not set one.
const DEFAULT_WAIT_DEADLINE: Duration = Duration::from_secs(600);

/// The environment variable that overrides [`DEFAULT_WAIT_DEADLINE`], in seconds.
const WAIT_DEADLINE_VAR: &str = "GPUREVOLVE_WAIT_DEADLINE_S";

/// [`GpuOptions::wait_deadline`]'s default: `GPUREVOLVE_WAIT_DEADLINE_S` when it holds a
/// positive number of seconds, else [`DEFAULT_WAIT_DEADLINE`] (with a warning if it is set
/// to something else). Read once.
fn default_wait_deadline() -> Duration {
    static DEADLINE: OnceLock<Duration> = OnceLock::new();
    *DEADLINE.get_or_init(|| match wait_deadline_from_env() {
        Ok(deadline) => deadline.unwrap_or(DEFAULT_WAIT_DEADLINE),
        Err(e) => {
            log::warn!(
                "{e}; waiting at most {} s for the GPU",
                DEFAULT_WAIT_DEADLINE.as_secs()
            );
            DEFAULT_WAIT_DEADLINE
        }
    })
}

/// The deadline `GPUREVOLVE_WAIT_DEADLINE_S` sets, `None` when it is not set: what a program
/// calls first to refuse a value the default would pass over with only a warning.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the variable when it is set and not a positive number of
/// seconds.
pub fn wait_deadline_from_env() -> Result<Option<Duration>> {
    let Ok(text) = std::env::var(WAIT_DEADLINE_VAR) else {
        return Ok(None);
    };
    parse_deadline(&text)
        .map(Some)
        .ok_or_else(|| Error::InvalidArgument {
            name: WAIT_DEADLINE_VAR,
            reason: format!(
                "{text:?}: give the longest wait for the GPU as a positive number of seconds, \
                 or unset it ({} s)",
                DEFAULT_WAIT_DEADLINE.as_secs()
            ),
        })
}

/// A positive, finite number of seconds as a deadline.
fn parse_deadline(text: &str) -> Option<Duration> {
    let seconds: f64 = text.trim().parse().ok()?;
    (seconds > 0.0)
        .then(|| Duration::try_from_secs_f64(seconds).ok())
        .flatten()
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self {
            backends: wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all()),
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            max_buffer_size: None,
            kernels: KernelOptions::default(),
            wait_deadline: default_wait_deadline(),
        }
    }
}

/// A GPU device ready for compute: the handle every other part of gpurevolve works through.
///
/// ```no_run
/// let gpu = gpurevolve::gpu::Gpu::new()?;
/// let x = gpu.upload("x", &[1.0f32, 2.0, 3.0], wgpu::BufferUsages::STORAGE)?;
/// assert_eq!(gpu.read_back::<f32>(&x)?, vec![1.0, 2.0, 3.0]);
/// # Ok::<(), gpurevolve::Error>(())
/// ```
#[derive(Debug)]
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    /// The options it was opened with.
    options: GpuOptions,
    /// Test hook: allocations left before one is reported out of memory (`u64::MAX`: never).
    allocations_before_fault: AtomicU64,
    /// What has been created and submitted (see [`Gpu::counters`]).
    pub(super) counters: Counters,
    /// Compiled pipelines, shared by every kernel family and shot on this device.
    pub(super) pipelines: PipelineCache,
    /// The last submission made through [`Gpu::submit`]: what [`Gpu::wait`] waits for, so that
    /// gpurevolve never blocks on work another user of the device submitted later.
    pub(super) last_submission: Mutex<Option<wgpu::SubmissionIndex>>,
    /// Whether (and why) the device was lost: set by wgpu's device-lost callback, by a poll
    /// that reported the loss, or by [`Gpu::destroy_for_test`].
    loss: Arc<DeviceLoss>,
}

/// A device's loss, once it is known: checked before every wait and submission, so that
/// each call after the loss fails at once with [`Error::DeviceLost`].
#[derive(Debug, Default)]
struct DeviceLoss {
    lost: AtomicBool,
    /// What wgpu or the driver said (the first report wins).
    detail: Mutex<Option<String>>,
}

impl DeviceLoss {
    fn record(&self, detail: String) {
        // A poisoned lock still records the loss: only the detail is lost.
        if let Ok(mut held) = self.detail.lock() {
            held.get_or_insert(detail);
        }
        self.lost.store(true, Ordering::Release);
    }

    fn detail(&self) -> Option<String> {
        if !self.lost.load(Ordering::Acquire) {
            return None;
        }
        let held = self.detail.lock().ok().and_then(|d| d.clone());
        Some(held.unwrap_or_else(|| "lost".into()))
    }
}

/// The adapters of `options`' backends that a multi-device run uses: the hardware ones, or
/// the software ones where there is no hardware (or when forced).
fn usable_adapters(options: &GpuOptions) -> Vec<wgpu::Adapter> {
    let adapters = pollster::block_on(instance(options).enumerate_adapters(options.backends));
    let software = |a: &wgpu::Adapter| a.get_info().device_type == wgpu::DeviceType::Cpu;
    let any_hardware = adapters.iter().any(|a| !software(a));
    let want_software = options.force_fallback_adapter || !any_hardware;
    adapters
        .into_iter()
        .filter(|a| software(a) == want_software)
        .collect()
}

/// The wgpu instance for `options`' backends, without a display.
fn instance(options: &GpuOptions) -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: options.backends,
        ..wgpu::InstanceDescriptor::new_without_display_handle().with_env()
    })
}

impl Gpu {
    /// Opens the best adapter with [`GpuOptions::default`].
    ///
    /// # Errors
    /// [`Error::NoAdapter`] (with install instructions) or [`Error::RequestDevice`].
    pub fn new() -> Result<Self> {
        Self::with_options(&GpuOptions::default())
    }

    /// Opens an adapter chosen by `options`, with the adapter's own limits rather than wgpu's
    /// conservative defaults, so buffers may be as large as the hardware allows.
    ///
    /// # Errors
    /// [`Error::NoAdapter`] or [`Error::RequestDevice`]; [`Error::InvalidArgument`] for a
    /// workgroup shape the device cannot run (a zero, an axis above its
    /// `max_compute_workgroup_size_*`, or more invocations than
    /// `max_compute_invocations_per_workgroup`).
    pub fn with_options(options: &GpuOptions) -> Result<Self> {
        let instance = instance(options);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: options.power_preference,
            force_fallback_adapter: options.force_fallback_adapter,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|e| Error::NoAdapter {
            detail: e.to_string(),
        })?;
        Self::open(&adapter, options)
    }

    /// The adapters [`all_devices`](Self::all_devices) opens, in its order: every hardware
    /// adapter, or the software one only where there is no hardware adapter (or
    /// `options.force_fallback_adapter` asks for it).
    pub fn adapters(options: &GpuOptions) -> Vec<wgpu::AdapterInfo> {
        usable_adapters(options)
            .iter()
            .map(wgpu::Adapter::get_info)
            .collect()
    }

    /// A device on the `index`-th of [`adapters`](Self::adapters). Asking twice for one
    /// index opens two devices on one adapter.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an index beyond the adapters, naming them; as
    /// [`with_options`](Self::with_options).
    pub fn on_adapter(index: usize, options: &GpuOptions) -> Result<Self> {
        let adapters = usable_adapters(options);
        match adapters.get(index) {
            Some(adapter) => Self::open(adapter, options),
            None => Err(Error::InvalidArgument {
                name: "devices",
                reason: format!(
                    "no device {index}: this machine has {} ({})",
                    adapters.len(),
                    adapters
                        .iter()
                        .enumerate()
                        .map(|(i, a)| format!("{i}: {}", a.get_info().name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// Every device of this machine, one `Gpu` each (see [`adapters`](Self::adapters)), for
    /// spreading shots over them
    /// ([`fwi::gradient_on_devices`](crate::fwi::gradient_on_devices)).
    ///
    /// # Errors
    /// [`Error::NoAdapter`] when there is none; as [`with_options`](Self::with_options) for
    /// each device opened.
    pub fn all_devices(options: &GpuOptions) -> Result<Vec<Self>> {
        let adapters = usable_adapters(options);
        if adapters.is_empty() {
            return Err(Error::NoAdapter {
                detail: "no adapter usable for these options".into(),
            });
        }
        adapters.iter().map(|a| Self::open(a, options)).collect()
    }

    /// Opens `adapter` with its own limits (capped by `options`).
    fn open(adapter: &wgpu::Adapter, options: &GpuOptions) -> Result<Self> {
        let info = adapter.get_info();
        let mut limits = adapter.limits();
        check_workgroups(&options.kernels, &limits)?;
        if let Some(cap) = options.max_buffer_size {
            limits.max_buffer_size = limits.max_buffer_size.min(cap);
            limits.max_storage_buffer_binding_size =
                limits.max_storage_buffer_binding_size.min(cap);
        }
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("gpurevolve"),
            // Where the adapter has it: buffers that live in host memory and that the GPU
            // copies from as well as into, so host checkpoints need no staging and no host
            // copy (see `Gpu::host_buffer`).
            required_features: adapter.features() & wgpu::Features::MAPPABLE_PRIMARY_BUFFERS,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| Error::RequestDevice {
            adapter: info.name.clone(),
            detail: e.to_string(),
        })?;
        // wgpu's default handler panics on an error no scope caught. gpurevolve scopes every
        // operation whose errors it reports, so whatever reaches here is logged, not fatal.
        device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
            log::error!("uncaptured GPU error: {e}");
        }));
        log::info!(
            "GPU: {} ({:?}, {:?}); max buffer {} B, max storage binding {} B",
            info.name,
            info.device_type,
            info.backend,
            limits.max_buffer_size,
            limits.max_storage_buffer_binding_size
        );
        Ok(Self::assemble(device, queue, info, limits, options.clone()))
    }

    /// A `Gpu` around an open device, its queue, what is known of its adapter and the options
    /// its kernels use.
    pub(super) fn assemble(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        limits: wgpu::Limits,
        options: GpuOptions,
    ) -> Self {
        let loss = Arc::new(DeviceLoss::default());
        let record = Arc::clone(&loss);
        let name = info.name.clone();
        device.set_device_lost_callback(move |reason, message| {
            let detail = match reason {
                wgpu::DeviceLostReason::Destroyed => "the device was destroyed".to_owned(),
                wgpu::DeviceLostReason::Unknown => "the driver lost the device".to_owned(),
            };
            let detail = if message.is_empty() {
                detail
            } else {
                format!("{detail} ({message})")
            };
            log::error!("GPU `{name}` lost: {detail}");
            record.record(detail);
        });
        Self {
            device,
            queue,
            info,
            limits,
            options,
            allocations_before_fault: AtomicU64::new(u64::MAX),
            counters: Counters::default(),
            pipelines: PipelineCache::default(),
            last_submission: Mutex::new(None),
            loss,
        }
    }

    /// Why the device was lost, once it is known to be; `None` while it works. Every wait,
    /// map, allocation and [`try_submit`](Self::try_submit) after a loss fails with
    /// [`Error::DeviceLost`].
    pub fn lost(&self) -> Option<String> {
        self.loss.detail()
    }

    /// [`Error::DeviceLost`] for `context` once the device is lost.
    pub(crate) fn check_lost(&self, context: impl FnOnce() -> String) -> Result<()> {
        match self.loss.detail() {
            Some(detail) => Err(Error::DeviceLost {
                context: context(),
                detail,
            }),
            None => Ok(()),
        }
    }

    /// Test hook: destroys the device (wgpu's `Device::destroy`), as a driver reset would
    /// lose it, and records the loss at once.
    #[doc(hidden)]
    pub fn destroy_for_test(&self) {
        self.device.destroy();
        self.loss
            .record("the device was destroyed (Gpu::destroy_for_test)".into());
    }

    /// The wgpu device.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The wgpu queue.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// What the adapter says about itself (name, backend, device type).
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The limits the device was opened with (the adapter's own).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// The options the device was opened with (its kernels' tuning knobs among them).
    pub fn options(&self) -> &GpuOptions {
        &self.options
    }

    /// Whether this is a CPU implementation (such as Mesa's lavapipe): correct, but its
    /// timings say nothing about GPU speed.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Checks that a buffer of `bytes` for `usage` can ever exist on this device.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for zero bytes; [`Error::BufferTooLarge`] above
    /// `max_buffer_size`, or above `max_storage_buffer_binding_size` for storage buffers (which
    /// gpurevolve binds whole).
    pub fn check_buffer_size(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<()> {
        if bytes == 0 {
            return Err(Error::InvalidArgument {
                name: "bytes",
                reason: format!("buffer `{label}` would be empty"),
            });
        }
        let too_large = |max: u64, limit| Error::BufferTooLarge {
            label: label.to_owned(),
            requested: bytes,
            max,
            limit,
        };
        if bytes > self.limits.max_buffer_size {
            return Err(too_large(self.limits.max_buffer_size, "max_buffer_size"));
        }
        let binding = self.limits.max_storage_buffer_binding_size;
        if usage.contains(wgpu::BufferUsages::STORAGE) && bytes > binding {
            return Err(too_large(binding, "max_storage_buffer_binding_size"));
        }
        Ok(())
    }

    /// Creates a buffer of at least `bytes` (rounded up to [`COPY_ALIGNMENT`]), turning a
    /// device out of memory into [`Error::OutOfMemory`] through a wgpu error scope.
    ///
    /// # Errors
    /// As [`check_buffer_size`](Self::check_buffer_size), plus [`Error::OutOfMemory`] and
    /// [`Error::Gpu`].
    pub fn create_buffer(
        &self,
        label: &str,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let size = bytes.next_multiple_of(COPY_ALIGNMENT);
        self.check_buffer_size(label, size, usage)?;
        // A lost device hands out invalid buffers without a word (wgpu reports its errors
        // through the lost callback only, not to error scopes).
        self.check_lost(|| format!("creating buffer `{label}`"))?;
        if self.take_injected_fault() {
            log::warn!("injected out-of-memory for `{label}` ({size} bytes)");
            return Err(Error::OutOfMemory {
                label: label.to_owned(),
                requested: size,
            });
        }
        // Scopes nest: the validation scope is inner, so it is popped first.
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage,
            mapped_at_creation: false,
        });
        let validation = pollster::block_on(validation.pop());
        let oom = pollster::block_on(oom.pop());
        if oom.is_some() {
            return Err(Error::OutOfMemory {
                label: label.to_owned(),
                requested: size,
            });
        }
        if let Some(e) = validation {
            return Err(Error::Gpu {
                context: format!("creating buffer `{label}`"),
                detail: e.to_string(),
            });
        }
        self.counters.buffer();
        Ok(buffer)
    }

    /// Whether [`host_buffer`](Self::host_buffer) works on this device: it was opened with
    /// `MAPPABLE_PRIMARY_BUFFERS` (the crate asks for it wherever the adapter has it; a device
    /// given to [`Gpu::from_device`] has it if the application asked).
    pub fn has_host_buffers(&self) -> bool {
        self.device
            .features()
            .contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS)
    }

    /// A buffer of `bytes` in host memory that GPU copies read and write: checkpoints in the
    /// host tier live in these, moved by the GPU's copy engine in command order, with no
    /// staging buffer, no map and no host-side copy.
    ///
    /// `MAP_READ` is what places it in host memory (wgpu gives mappable-for-read buffers
    /// host-visible, host-cached memory); `COPY_DST` takes a level in, `COPY_SRC` gives it
    /// back. `MAP_READ` with `COPY_SRC` needs `MAPPABLE_PRIMARY_BUFFERS`. It is never mapped.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the device lacks the feature
    /// ([`has_host_buffers`](Self::has_host_buffers)); as [`create_buffer`](Self::create_buffer)
    /// otherwise ([`Error::OutOfMemory`] when host-visible memory runs out).
    pub fn host_buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        if !self.has_host_buffers() {
            return Err(Error::InvalidArgument {
                name: "device",
                reason: "host buffers need the MAPPABLE_PRIMARY_BUFFERS feature, which this device was not opened with".into(),
            });
        }
        self.create_buffer(
            label,
            bytes,
            wgpu::BufferUsages::MAP_READ
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
        )
    }

    /// Uploads `data` into a new buffer with `usage | COPY_DST | COPY_SRC` (`COPY_SRC` so it
    /// can be read back or copied into a checkpoint).
    ///
    /// # Errors
    /// As [`create_buffer`](Self::create_buffer).
    pub fn upload<T: Pod>(
        &self,
        label: &str,
        data: &[T],
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        let usage = usage | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let buffer = self.create_buffer(label, bytes.len() as u64, usage)?;
        self.write(&buffer, data)?;
        Ok(buffer)
    }

    /// Writes `data` at the start of `buffer` (which needs `COPY_DST`), through wgpu's
    /// internal staging; padded to [`COPY_ALIGNMENT`] where needed.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `data` is larger than the buffer or the buffer lacks
    /// `COPY_DST`; [`Error::DeviceLost`] once the device is lost.
    pub fn write<T: Pod>(&self, buffer: &wgpu::Buffer, data: &[T]) -> Result<()> {
        self.check_lost(|| "writing a buffer".into())?;
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if !buffer.usage().contains(wgpu::BufferUsages::COPY_DST) {
            return Err(Error::InvalidArgument {
                name: "buffer",
                reason: "writing needs a buffer created with COPY_DST".into(),
            });
        }
        if bytes.len() as u64 > buffer.size() {
            return Err(Error::InvalidArgument {
                name: "data",
                reason: format!(
                    "{} bytes do not fit a buffer of {}",
                    bytes.len(),
                    buffer.size()
                ),
            });
        }
        if (bytes.len() as u64).is_multiple_of(COPY_ALIGNMENT) {
            self.queue.write_buffer(buffer, 0, bytes);
        } else {
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len().next_multiple_of(COPY_ALIGNMENT as usize), 0);
            self.queue.write_buffer(buffer, 0, &padded);
        }
        Ok(())
    }

    /// Reads a whole buffer back (it needs `COPY_SRC`): a GPU copy into a `MAP_READ | COPY_DST`
    /// staging buffer, a map, and a copy out. Returns every whole `T` in the buffer.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] without `COPY_SRC`; as
    /// [`read_mapped`](Self::read_mapped) when the device fails.
    pub fn read_back<T: Pod>(&self, buffer: &wgpu::Buffer) -> Result<Vec<T>> {
        if !buffer.usage().contains(wgpu::BufferUsages::COPY_SRC) {
            return Err(Error::InvalidArgument {
                name: "buffer",
                reason: "reading back needs a buffer created with COPY_SRC".into(),
            });
        }
        let size = buffer.size();
        // MAP_READ: the host may map it; COPY_DST: the GPU copy lands in it. Nothing else is
        // allowed alongside MAP_READ without a special feature, which is why the data cannot
        // be mapped where it lives.
        let staging = self.create_buffer(
            "read-back staging",
            size,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?;
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("read back"),
            });
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        self.submit([encoder.finish()]);
        let bytes = self.read_mapped(&staging)?;
        let whole = bytes.len() / size_of::<T>().max(1) * size_of::<T>();
        Ok(bytemuck::pod_collect_to_vec(&bytes[..whole]))
    }

    /// Maps a `MAP_READ` buffer once the work submitted so far is done, copies its bytes out
    /// and unmaps it, so it can be reused as staging.
    ///
    /// # Errors
    /// [`Error::DeviceLost`], [`Error::Timeout`] (past [`GpuOptions::wait_deadline`]),
    /// [`Error::Map`] or [`Error::Gpu`] when the device fails.
    pub fn read_mapped(&self, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
        self.map_and_wait("staging", staging, wgpu::MapMode::Read)?;
        let view = staging.get_mapped_range(..).map_err(|e| Error::Map {
            label: "staging".into(),
            detail: e.to_string(),
        })?;
        let out = view.to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Maps `buffer` and blocks until the mapping (and all work submitted before it) is done,
    /// at most [`GpuOptions::wait_deadline`] for the work and as long again for the map.
    fn map_and_wait(&self, label: &str, buffer: &wgpu::Buffer, mode: wgpu::MapMode) -> Result<()> {
        let what = || format!("mapping buffer `{label}`");
        self.check_lost(what)?;
        let (tx, rx) = mpsc::channel();
        buffer.map_async(mode, .., move |result| {
            // The receiver outlives the polls below; a failed send cannot happen.
            let _ = tx.send(result);
        });
        self.wait()?;
        // The wait ran the callback unless the mapping waits on work submitted outside this
        // `Gpu`: poll for it, up to the deadline.
        let start = Instant::now();
        loop {
            let failed = match rx.try_recv() {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e.to_string(),
                Err(mpsc::TryRecvError::Disconnected) => "the mapping callback never ran".into(),
                Err(mpsc::TryRecvError::Empty) => {
                    if start.elapsed() >= self.options.wait_deadline {
                        return Err(Error::Timeout {
                            what: format!("the map of buffer `{label}` on `{}`", self.info.name),
                            seconds: self.options.wait_deadline.as_secs_f64(),
                        });
                    }
                    self.poll()?;
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
            };
            // A map that fails on a lost device is the loss.
            self.check_lost(what)?;
            return Err(Error::Map {
                label: label.to_owned(),
                detail: failed,
            });
        }
    }

    /// Blocks until everything submitted through this `Gpu` ([`Gpu::submit`]) has finished,
    /// and with it whatever was submitted to the queue before. Work that another user of a
    /// wrapped device ([`Gpu::from_device`]) submits later is not waited for.
    ///
    /// # Errors
    /// [`Error::DeviceLost`] when the device is lost; [`Error::Timeout`] when the work has not
    /// finished within [`GpuOptions::wait_deadline`]; [`Error::Gpu`] when wgpu refuses the
    /// wait.
    pub fn wait(&self) -> Result<()> {
        let last = self
            .last_submission
            .lock()
            .map_err(|_| Error::Gpu {
                context: "waiting for the GPU".into(),
                detail: "the submission record was poisoned by a panic on another thread".into(),
            })?
            .clone();
        match last {
            Some(index) => self.wait_for(index),
            // Nothing submitted: still run the callbacks of whatever has finished.
            None => self.poll(),
        }
    }

    /// Blocks until submission `index` has finished (and its map callbacks have run); later
    /// submissions keep the GPU busy meanwhile.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_for(&self, index: wgpu::SubmissionIndex) -> Result<()> {
        let what = format!("the GPU `{}` to finish its work", self.info.name);
        self.poll_device(
            wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: Some(self.options.wait_deadline),
            },
            &what,
        )
    }

    /// Runs the callbacks of whatever has finished (buffer maps), without blocking.
    ///
    /// # Errors
    /// [`Error::DeviceLost`] when the device is lost.
    pub fn poll(&self) -> Result<()> {
        let what = format!("`{}` to report finished work", self.info.name);
        self.poll_device(wgpu::PollType::Poll, &what)
    }

    /// Polls the device (blocking as `poll` says), checking for a loss before and after.
    fn poll_device(&self, poll: wgpu::PollType, what: &str) -> Result<()> {
        let context = || format!("waiting for {what}");
        self.check_lost(context)?;
        let deadline = match &poll {
            wgpu::PollType::Wait { timeout, .. } => *timeout,
            wgpu::PollType::Poll => None,
        };
        let polled = match self.poll_caught(poll) {
            // wgpu numbers a submission it rejects (as a device lost behind this `Gpu`'s back
            // rejects every one) and then refuses to wait for that number. Wait instead for
            // what it accepted: that also runs the lost callback once the queue is empty.
            Ok(Err(wrong @ wgpu::PollError::WrongSubmissionIndex(..))) => {
                match self.poll_caught(wgpu::PollType::Wait {
                    submission_index: None,
                    timeout: Some(self.options.wait_deadline),
                }) {
                    Ok(Ok(_)) => Ok(Err(wrong)),
                    other => other,
                }
            }
            other => other,
        };
        let polled = match polled {
            Ok(polled) => polled,
            Err(panic) => {
                self.loss
                    .record(format!("wgpu panicked while polling: {panic}"));
                return self.check_lost(context);
            }
        };
        // The callback may have run during the poll (a destroyed device is lost once its
        // queue is empty).
        self.check_lost(context)?;
        poll_result(polled, what, deadline)
    }

    /// `Device::poll`, its panic caught: wgpu panics (its fatal-error path) when the driver
    /// reports the device lost during a poll. By then its locks are released and the loss is
    /// recorded through the callback, so the panic becomes a typed error instead (`Err`: what
    /// the panic said). The default panic hook still prints it.
    fn poll_caught(
        &self,
        poll: wgpu::PollType,
    ) -> std::result::Result<std::result::Result<wgpu::PollStatus, wgpu::PollError>, String> {
        std::panic::catch_unwind(AssertUnwindSafe(|| self.device.poll(poll)))
            .map_err(|panic| panic_message(panic.as_ref()))
    }

    /// Test hook: the allocation after the next `allocations` ones through
    /// [`create_buffer`](Self::create_buffer) fails with [`Error::OutOfMemory`], exactly as a
    /// device out of memory would. `None` disarms it.
    #[doc(hidden)]
    pub fn inject_out_of_memory_after(&self, allocations: Option<u64>) {
        self.allocations_before_fault
            .store(allocations.unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    fn take_injected_fault(&self) -> bool {
        let left = &self.allocations_before_fault;
        match left.load(Ordering::SeqCst) {
            u64::MAX => false,
            0 => {
                left.store(u64::MAX, Ordering::SeqCst);
                true
            }
            n => {
                left.store(n - 1, Ordering::SeqCst);
                false
            }
        }
    }
}

/// What a panic carried, as text.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".into()
    }
}

/// wgpu's answer to a poll for `what` as gpurevolve's: a timeout is [`Error::Timeout`] with
/// the `deadline` it passed.
fn poll_result(
    polled: std::result::Result<wgpu::PollStatus, wgpu::PollError>,
    what: &str,
    deadline: Option<Duration>,
) -> Result<()> {
    match polled {
        Ok(_) => Ok(()),
        Err(wgpu::PollError::Timeout) => Err(Error::Timeout {
            what: what.to_owned(),
            seconds: deadline.unwrap_or_default().as_secs_f64(),
        }),
        Err(e @ wgpu::PollError::WrongSubmissionIndex(..)) => Err(Error::Gpu {
            context: format!("waiting for {what}"),
            detail: e.to_string(),
        }),
    }
}

/// The workgroup shapes of `options`, checked against `limits`.
pub(super) fn check_workgroups(options: &KernelOptions, limits: &wgpu::Limits) -> Result<()> {
    for (name, shape) in [
        ("step_workgroup_2d", options.step_workgroup_2d),
        ("step_workgroup_3d", options.step_workgroup_3d),
    ] {
        check_workgroup(name, shape, limits)?;
    }
    Ok(())
}

/// A workgroup shape this device can run.
fn check_workgroup(name: &'static str, shape: [u32; 3], limits: &wgpu::Limits) -> Result<()> {
    let max = [
        limits.max_compute_workgroup_size_x,
        limits.max_compute_workgroup_size_y,
        limits.max_compute_workgroup_size_z,
    ];
    let invocations = shape.iter().map(|&n| u64::from(n)).product::<u64>();
    if shape.contains(&0)
        || shape.iter().zip(max).any(|(&n, m)| n > m)
        || invocations > u64::from(limits.max_compute_invocations_per_workgroup)
    {
        return Err(Error::InvalidArgument {
            name,
            reason: format!(
                "workgroup {shape:?} does not run on this device: each axis at most {max:?}, at most {} invocations in all",
                limits.max_compute_invocations_per_workgroup
            ),
        });
    }
    Ok(())
}

impl Gpu {
    /// What this device has created and submitted so far.
    pub fn counters(&self) -> GpuCounters {
        self.counters.snapshot()
    }

    /// Submits `commands` to the queue, counted in [`GpuCounters::submissions`]; it is what
    /// [`Gpu::wait`] then waits for.
    ///
    /// On a lost device the queue drops the commands without a word; the next wait (or
    /// poll, map or allocation) reports [`Error::DeviceLost`](crate::Error::DeviceLost).
    /// [`try_submit`](Self::try_submit) reports it at once.
    pub fn submit(
        &self,
        commands: impl IntoIterator<Item = wgpu::CommandBuffer>,
    ) -> wgpu::SubmissionIndex {
        self.counters.submission();
        let index = self.queue().submit(commands);
        if let Ok(mut last) = self.last_submission.lock() {
            *last = Some(index.clone());
        }
        index
    }

    /// As [`submit`](Self::submit), refusing a device already known to be lost.
    ///
    /// # Errors
    /// [`Error::DeviceLost`](crate::Error::DeviceLost) once the device is lost: nothing is
    /// submitted.
    pub fn try_submit(
        &self,
        commands: impl IntoIterator<Item = wgpu::CommandBuffer>,
    ) -> crate::Result<wgpu::SubmissionIndex> {
        self.check_lost(|| "submitting GPU work".into())?;
        Ok(self.submit(commands))
    }

    /// Compiles `entry_point` of WGSL `source` into a compute pipeline whose layout is derived
    /// from the shader. `constants` set the shader's `override` declarations. Compiled once per
    /// device: a second call with the same shader, entry point and constants returns the same
    /// pipeline. Compile and validation errors come back as [`Error::Gpu`].
    ///
    /// # Errors
    /// [`Error::Gpu`] with the compiler's message.
    pub fn compute_pipeline(
        &self,
        label: &str,
        source: &str,
        entry_point: &str,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        self.pipeline(label, source, entry_point, constants, None)
    }

    /// As [`compute_pipeline`](Self::compute_pipeline), with an explicit layout of one bind
    /// group made of `entries` (a derived layout cannot express dynamic offsets).
    ///
    /// # Errors
    /// As [`compute_pipeline`](Self::compute_pipeline).
    pub fn compute_pipeline_with_layout(
        &self,
        label: &str,
        source: &str,
        entry_point: &str,
        constants: &[(&str, f64)],
        entries: &[wgpu::BindGroupLayoutEntry],
    ) -> Result<wgpu::ComputePipeline> {
        self.pipeline(label, source, entry_point, constants, Some(entries))
    }

    /// A pipeline from the cache, counted in [`GpuCounters::pipelines`] when compiled.
    fn pipeline(
        &self,
        label: &str,
        source: &str,
        entry_point: &str,
        constants: &[(&str, f64)],
        entries: Option<&[wgpu::BindGroupLayoutEntry]>,
    ) -> Result<wgpu::ComputePipeline> {
        let (pipeline, compiled) = self.pipelines.get(
            self.device(),
            label,
            source,
            entry_point,
            constants,
            entries,
        )?;
        if compiled {
            self.counters.pipeline();
        }
        Ok(pipeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// wgpu's timeout becomes [`Error::Timeout`] naming what was waited for and the deadline;
    /// success in either form is success.
    #[test]
    fn a_poll_timeout_is_a_typed_error_naming_the_wait() {
        let deadline = Some(Duration::from_millis(1500));
        let err = poll_result(Err(wgpu::PollError::Timeout), "GPU work (7)", deadline).unwrap_err();
        match &err {
            Error::Timeout { what, seconds } => {
                assert_eq!(what, "GPU work (7)");
                assert_eq!(*seconds, 1.5);
            }
            other => panic!("expected Timeout, got {other}"),
        }
        assert_eq!(err.kind(), ErrorKind::Device);
        assert!(err.to_string().contains("GPU work (7)"), "{err}");
        let wrong = poll_result(
            Err(wgpu::PollError::WrongSubmissionIndex(9, 3)),
            "x",
            deadline,
        );
        assert!(matches!(wrong, Err(Error::Gpu { .. })));
        for status in [
            wgpu::PollStatus::QueueEmpty,
            wgpu::PollStatus::WaitSucceeded,
            wgpu::PollStatus::Poll,
        ] {
            assert!(poll_result(Ok(status), "x", deadline).is_ok());
        }
    }

    #[test]
    fn deadlines_from_the_environment_are_positive_seconds() {
        assert_eq!(parse_deadline(" 2.5 "), Some(Duration::from_millis(2500)));
        assert_eq!(parse_deadline("600"), Some(Duration::from_secs(600)));
        for bad in ["", "0", "-1", "NaN", "inf", "ten", "1e400"] {
            assert_eq!(parse_deadline(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_recorded_loss_fails_every_check() {
        let loss = DeviceLoss::default();
        assert_eq!(loss.detail(), None);
        loss.record("first".into());
        loss.record("second".into());
        assert_eq!(loss.detail().as_deref(), Some("first"));
        assert_eq!(panic_message(&"text"), "text");
        assert_eq!(panic_message(&String::from("owned")), "owned");
    }
}

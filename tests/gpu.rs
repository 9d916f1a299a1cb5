//! The GPU layer on whatever adapter is present (Mesa's lavapipe in CI).

mod common;

use std::time::{Duration, Instant};

use gpurevolve::gpu::{Axpy, Gpu, GpuOptions, SumSquares, dispatch_1d};
use gpurevolve::{Error, ErrorKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_f32(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Runs axpy on random data and checks every element: the GPU may or may not fuse the
/// multiply-add, so each element must equal one of the two correctly rounded results.
fn check_axpy(gpu: &Gpu, axpy: &Axpy, len: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (x, y) = (random_f32(&mut rng, len), random_f32(&mut rng, len));
    let a: f32 = rng.random_range(-4.0..4.0);
    let usage = wgpu::BufferUsages::STORAGE;
    let xb = gpu.upload("x", &x, usage).unwrap();
    let yb = gpu.upload("y", &y, usage).unwrap();
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    axpy.encode(gpu, &mut encoder, a, &xb, &yb, len as u64)
        .unwrap();
    gpu.submit([encoder.finish()]);
    let got: Vec<f32> = gpu.read_back(&yb).unwrap();
    assert_eq!(got.len(), len);
    for i in 0..len {
        let (separate, fused) = (a * x[i] + y[i], a.mul_add(x[i], y[i]));
        assert!(
            got[i].to_bits() == separate.to_bits() || got[i].to_bits() == fused.to_bits(),
            "element {i}: got {}, want {separate} or {fused}",
            got[i]
        );
    }
}

#[test]
fn axpy_checks_every_element_on_random_data() {
    let Some(gpu) = common::gpu() else { return };
    eprintln!("adapter: {:?}", gpu.adapter_info());
    let axpy = Axpy::new(&gpu).unwrap();
    check_axpy(&gpu, &axpy, 100_003, 1);
    check_axpy(&gpu, &axpy, 1, 2);
    // Few groups per dimension force the 2D dispatch path: 391 groups as 20 × 20.
    let narrow = Axpy::new(&gpu).unwrap().with_max_groups_per_dim(20);
    check_axpy(&gpu, &narrow, 100_003, 3);
}

#[test]
fn upload_and_read_back_round_trip_exactly() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = StdRng::seed_from_u64(7);
    let words: Vec<u32> = (0..12_345).map(|_| rng.random()).collect();
    let b = gpu
        .upload("words", &words, wgpu::BufferUsages::STORAGE)
        .unwrap();
    assert_eq!(gpu.read_back::<u32>(&b).unwrap(), words);
    // Seven bytes are padded to eight; the first seven come back unchanged.
    let bytes: Vec<u8> = (0..7).map(|_| rng.random()).collect();
    let b = gpu
        .upload("bytes", &bytes, wgpu::BufferUsages::STORAGE)
        .unwrap();
    let back: Vec<u8> = gpu.read_back(&b).unwrap();
    assert_eq!(back.len(), 8);
    assert_eq!(&back[..7], &bytes[..]);
    // Overwrite in place.
    let words2: Vec<u32> = (0..12_345).map(|_| rng.random()).collect();
    let b = gpu
        .upload("words", &words, wgpu::BufferUsages::STORAGE)
        .unwrap();
    gpu.write(&b, &words2).unwrap();
    assert_eq!(gpu.read_back::<u32>(&b).unwrap(), words2);
}

/// The sum of squares on the GPU: the float64 sum of the same floats within float32
/// rounding, whatever the length and the dispatch's shape, the same bits twice, and typed
/// errors for lengths the buffer does not hold.
#[test]
fn sum_of_squares_matches_float64_and_repeats_exactly() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = StdRng::seed_from_u64(5);
    for (len, max_groups) in [
        (1, 65535),
        (255, 65535),
        (4096, 65535),
        (4097, 2),
        (100_003, 3),
    ] {
        let x = random_f32(&mut rng, len);
        let buffer = gpu.upload("x", &x, wgpu::BufferUsages::STORAGE).unwrap();
        let sums = SumSquares::new(&gpu)
            .unwrap()
            .with_max_groups_per_dim(max_groups);
        let got = sums.sum(&gpu, &buffer, len as u64).unwrap();
        let want: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        assert!(
            (got - want).abs() <= 1e-6 * want,
            "len {len}: {got} against {want}"
        );
        let again = sums.sum(&gpu, &buffer, len as u64).unwrap();
        assert_eq!(got.to_bits(), again.to_bits(), "len {len}");
        // Fewer elements than the buffer holds: only those count.
        if len > 1 {
            let head = sums.sum(&gpu, &buffer, 1).unwrap();
            assert_eq!(head, f64::from(x[0] * x[0]), "len {len}");
        }
    }
    let buffer = gpu
        .upload("x", &[1.0f32; 8], wgpu::BufferUsages::STORAGE)
        .unwrap();
    let sums = SumSquares::new(&gpu).unwrap();
    for bad in [0, 9] {
        let err = sums.sum(&gpu, &buffer, bad).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { name: "len", .. }),
            "{err}"
        );
    }
}

/// Host buffers (the host tier's home): on Vulkan the device is opened with them, and a
/// state copied GPU → host buffer → GPU comes back bit for bit.
#[test]
fn host_buffers_round_trip_through_gpu_copies() {
    let Some(gpu) = common::gpu() else { return };
    if gpu.adapter_info().backend == wgpu::Backend::Vulkan {
        assert!(
            gpu.has_host_buffers(),
            "Vulkan has MAPPABLE_PRIMARY_BUFFERS"
        );
    }
    if !gpu.has_host_buffers() {
        let err = gpu.host_buffer("host", 64).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { name: "device", .. }),
            "{err}"
        );
        return;
    }
    let mut rng = StdRng::seed_from_u64(11);
    let words: Vec<u32> = (0..50_001).map(|_| rng.random()).collect();
    let level = gpu
        .upload("level", &words, wgpu::BufferUsages::STORAGE)
        .unwrap();
    let host = gpu.host_buffer("host", level.size()).unwrap();
    let back = gpu
        .create_buffer("back", level.size(), gpurevolve::gpu::STATE_USAGE)
        .unwrap();
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(&level, 0, &host, 0, level.size());
    // The source changes after its copy is encoded: the host buffer holds what came first.
    encoder.clear_buffer(&level, 0, None);
    encoder.copy_buffer_to_buffer(&host, 0, &back, 0, level.size());
    gpu.submit([encoder.finish()]);
    assert_eq!(gpu.read_back::<u32>(&back).unwrap(), words);
    assert!(
        gpu.read_back::<u32>(&level)
            .unwrap()
            .iter()
            .all(|w| *w == 0)
    );
}

#[test]
fn buffers_that_can_never_fit_are_typed_errors() {
    let Some(gpu) = common::gpu() else { return };
    let limits = gpu.limits().clone();
    let err = gpu
        .create_buffer(
            "huge",
            limits.max_buffer_size + 1,
            wgpu::BufferUsages::COPY_DST,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BufferTooLarge {
                limit: "max_buffer_size",
                ..
            }
        ),
        "{err}"
    );
    let binding = limits.max_storage_buffer_binding_size;
    if binding + 4 <= limits.max_buffer_size {
        let err = gpu
            .create_buffer("wide", binding + 4, wgpu::BufferUsages::STORAGE)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::BufferTooLarge {
                    limit: "max_storage_buffer_binding_size",
                    ..
                }
            ),
            "{err}"
        );
    }
    assert!(matches!(
        gpu.create_buffer("empty", 0, wgpu::BufferUsages::STORAGE),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn out_of_memory_is_typed_and_the_device_stays_usable() {
    let Some(gpu) = common::gpu() else { return };
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    gpu.inject_out_of_memory_after(Some(2));
    assert!(gpu.create_buffer("a", 1024, usage).is_ok());
    assert!(gpu.create_buffer("b", 1024, usage).is_ok());
    let err = gpu.create_buffer("c", 1024, usage).unwrap_err();
    assert!(
        matches!(
            err,
            Error::OutOfMemory {
                requested: 1024,
                ..
            }
        ),
        "{err}"
    );
    // The fault fires once; the device still works.
    let b = gpu.upload("d", &[1u32, 2, 3, 4], usage).unwrap();
    assert_eq!(gpu.read_back::<u32>(&b).unwrap(), vec![1, 2, 3, 4]);
}

#[test]
fn misuse_is_reported_not_panicked() {
    let Some(gpu) = common::gpu() else { return };
    let err = gpu
        .compute_pipeline(
            "broken",
            "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }",
            "main",
            &[],
        )
        .unwrap_err();
    assert!(matches!(err, Error::Gpu { .. }), "{err}");
    let no_copy = gpu
        .create_buffer("no copy", 16, wgpu::BufferUsages::STORAGE)
        .unwrap();
    assert!(matches!(
        gpu.read_back::<u32>(&no_copy),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(
        gpu.write(&no_copy, &[1u32]),
        Err(Error::InvalidArgument { .. })
    ));
    let axpy = Axpy::new(&gpu).unwrap();
    let x = gpu
        .upload("x", &[1.0f32; 4], wgpu::BufferUsages::STORAGE)
        .unwrap();
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    assert!(matches!(
        axpy.encode(&gpu, &mut encoder, 1.0, &x, &x, 5),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn no_adapter_says_how_to_get_one() {
    // No backend at all: wgpu finds no adapter, on any machine.
    let options = GpuOptions {
        backends: wgpu::Backends::empty(),
        ..GpuOptions::default()
    };
    let err = Gpu::with_options(&options).unwrap_err();
    assert!(matches!(err, Error::NoAdapter { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("apt-get install mesa-vulkan-drivers"),
        "{err}"
    );
}

#[test]
fn dispatch_geometry_covers_every_element_once() {
    for (len, wg, max) in [
        (1u64, 64u32, 65_535u32),
        (256, 256, 1),
        (257, 256, 2),
        (100_003, 256, 20),
    ] {
        let d = dispatch_1d(len, wg, max).unwrap();
        let [x, y, _] = d.groups;
        assert!(x <= max && y <= max);
        assert_eq!(d.row, x * wg);
        assert!((x as u64 * y as u64 * wg as u64) >= len, "{len}: {d:?}");
        // No row is entirely idle.
        assert!(((y - 1) as u64 * d.row as u64) < len, "{len}: {d:?}");
    }
    assert!(dispatch_1d(1 << 40, 64, 65_535).is_err());
    assert!(dispatch_1d(10, 0, 10).is_err());
}

/// The devices a multi-device run can use: listed, opened by index, and a missing index is a
/// typed error naming what there is.
#[test]
fn devices_are_listed_and_opened_by_index() {
    common::within(300, "devices_are_listed_and_opened_by_index", || {
        let Some(_gpu) = common::gpu() else { return };
        let options = GpuOptions::default();
        let adapters = Gpu::adapters(&options);
        assert!(!adapters.is_empty());
        assert_eq!(Gpu::all_devices(&options).unwrap().len(), adapters.len());
        let again = Gpu::on_adapter(0, &options).unwrap();
        assert_eq!(again.adapter_info().name, adapters[0].name);
        match Gpu::on_adapter(adapters.len(), &options) {
            Err(Error::InvalidArgument {
                name: "devices",
                reason,
            }) => {
                assert!(reason.contains(&adapters[0].name), "{reason}");
            }
            other => panic!("{:?}", other.map(|g| g.adapter_info().name.clone())),
        }
    });
}

/// `result` is the loss of the device, reported as [`Error::DeviceLost`] (of kind `Device`).
fn assert_lost<T>(call: &str, result: gpurevolve::Result<T>) {
    match result {
        Err(err @ Error::DeviceLost { .. }) => assert_eq!(err.kind(), ErrorKind::Device),
        Err(other) => panic!("{call}: expected DeviceLost, got {other}"),
        Ok(_) => panic!("{call}: succeeded on a lost device"),
    }
}

/// After the device is destroyed (as a driver reset would lose it) every call that waits,
/// maps, allocates or submits fails at once with `DeviceLost`: no hang, no panic. wgpu's own
/// calls on the lost device (encoders, pipelines, a plain submit) do not panic either.
#[test]
fn a_lost_device_fails_every_call_at_once() {
    common::within(300, "a_lost_device_fails_every_call_at_once", || {
        let Some(gpu) = common::gpu() else { return };
        let usage = wgpu::BufferUsages::STORAGE;
        let x = gpu.upload("x", &[1.0f32, 2.0, 3.0, 4.0], usage).unwrap();
        let staging = gpu
            .create_buffer(
                "staging",
                16,
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            )
            .unwrap();
        let sums = SumSquares::new(&gpu).unwrap();
        let axpy = Axpy::new(&gpu).unwrap();
        // Work in flight when the device goes.
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        axpy.encode(&gpu, &mut encoder, 2.0, &x, &x, 4).unwrap();
        gpu.submit([encoder.finish()]);
        assert!(gpu.lost().is_none());

        gpu.destroy_for_test();
        let start = Instant::now();
        assert!(gpu.lost().is_some());
        assert_lost("wait", gpu.wait());
        assert_lost("poll", gpu.poll());
        assert_lost("read_back", gpu.read_back::<f32>(&x));
        assert_lost("read_mapped", gpu.read_mapped(&staging));
        assert_lost("sum of squares", sums.sum(&gpu, &x, 4));
        assert_lost("create_buffer", gpu.create_buffer("late", 16, usage));
        assert_lost("upload", gpu.upload("late", &[1u32], usage));
        assert_lost("write", gpu.write(&x, &[0.0f32; 4]));
        let encoder = gpu.device().create_command_encoder(&Default::default());
        assert_lost("try_submit", gpu.try_submit([encoder.finish()]));
        // wgpu on the lost device: its errors go to the lost callback, none panics.
        let _ = Axpy::new(&gpu);
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        let _ = axpy.encode(&gpu, &mut encoder, 2.0, &x, &x, 4);
        gpu.submit([encoder.finish()]);
        let _ = gpu.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("raw"),
            size: 16,
            usage,
            mapped_at_creation: false,
        });
        gpu.queue().write_buffer(&x, 0, &[0u8; 16]);
        assert_lost("wait after all that", gpu.wait());
        let took = start.elapsed();
        assert!(took < Duration::from_secs(10), "took {took:?}");
    });
}

/// A device destroyed behind the `Gpu`'s back (the application's own `Device::destroy`):
/// wgpu's lost callback tells it, at the next wait or read-back, whichever comes first.
#[test]
fn a_device_lost_behind_the_gpus_back_is_found_at_the_next_wait() {
    common::within(300, "a_device_lost_behind_the_gpus_back", || {
        for first in ["wait", "read_back"] {
            let Some(gpu) = common::gpu() else { return };
            let x = gpu
                .upload("x", &[7u32; 64], wgpu::BufferUsages::STORAGE)
                .unwrap();
            gpu.device().destroy();
            let start = Instant::now();
            match first {
                "wait" => assert_lost(first, gpu.wait()),
                _ => assert_lost(first, gpu.read_back::<u32>(&x)),
            }
            let detail = gpu.lost().expect("the loss is recorded");
            assert!(detail.contains("destroyed"), "{detail}");
            assert_lost("read_back", gpu.read_back::<u32>(&x));
            let encoder = gpu.device().create_command_encoder(&Default::default());
            assert_lost("try_submit", gpu.try_submit([encoder.finish()]));
            let took = start.elapsed();
            assert!(took < Duration::from_secs(10), "{first}: took {took:?}");
        }
    });
}

/// Spins each invocation through `data[0]` dependent steps of a linear congruential
/// generator: work that no compiler folds away. On a GPU the steps are serial, so the time
/// grows with `data[0]`; llvmpipe stops any loop after 65535 iterations, so there the time
/// grows with the invocations instead.
const SPIN: &str = r#"
@group(0) @binding(0) var<storage, read_write> data: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    var x = id.x;
    let n = data[0];
    for (var i = 0u; i < n; i = i + 1u) {
        x = x * 1664525u + 1013904223u;
    }
    data[id.x + 1u] = x;
}
"#;

/// A wait past `wait_deadline` ends in `Error::Timeout` naming what it waited for; the device
/// still works afterwards. Ten submissions of a long kernel against a 1 ms deadline: tens of
/// milliseconds on lavapipe, about 100 ms on a GPU (2^22 serial steps per invocation each).
#[test]
fn a_wait_past_its_deadline_is_a_typed_timeout() {
    common::within(300, "a_wait_past_its_deadline_is_a_typed_timeout", || {
        let deadline = Duration::from_millis(1);
        let Some(gpu) = common::gpu_with(&GpuOptions {
            wait_deadline: deadline,
            ..GpuOptions::default()
        }) else {
            return;
        };
        assert_eq!(gpu.options().wait_deadline, deadline);
        const INVOCATIONS: u32 = 1024;
        let mut data = vec![0u32; INVOCATIONS as usize + 1];
        data[0] = 1 << 22;
        let buffer = gpu
            .upload("spin", &data, wgpu::BufferUsages::STORAGE)
            .unwrap();
        let pipeline = gpu.compute_pipeline("spin", SPIN, "main", &[]).unwrap();
        let group = gpu.bind_group(
            "spin",
            &pipeline.get_bind_group_layout(0),
            &[(0, buffer.as_entire_binding())],
        );
        // Everything above is done before the clock starts.
        gpu.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .unwrap();
        for _ in 0..10 {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(INVOCATIONS / 64, 1, 1);
            }
            gpu.submit([encoder.finish()]);
        }
        let start = Instant::now();
        let err = gpu.wait().unwrap_err();
        let took = start.elapsed();
        match &err {
            Error::Timeout { what, seconds } => {
                assert!(what.contains("to finish its work"), "{what}");
                assert!(what.contains(&gpu.adapter_info().name), "{what}");
                assert_eq!(*seconds, deadline.as_secs_f64());
            }
            other => panic!("expected Timeout, got {other}"),
        }
        assert_eq!(err.kind(), ErrorKind::Device);
        assert!(took < Duration::from_secs(5), "the 1 ms wait took {took:?}");
        // Not a loss: once the work is done, the device answers again.
        gpu.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .unwrap();
        assert!(gpu.lost().is_none());
        gpu.wait().unwrap();
    });
}

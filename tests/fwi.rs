//! The one-call FWI gradient: every checkpointing choice gives the store-all bits, summed over
//! shots in order, and bad calls are typed errors.

mod common;

use common::random_problem;
use gpurevolve::acoustic::{CpuTwin, Problem};
use gpurevolve::engine::RevolverOptions;
use gpurevolve::fwi::{Checkpointing, FwiGradient, gradient, gradient_on_devices, gradient_with};
use gpurevolve::gpu::Gpu;
use gpurevolve::schedule::{Tier, TierCost, TieredCosts};
use gpurevolve::{Error, ErrorKind};

const NT: usize = 41;

fn shots() -> (Vec<Problem>, Vec<Vec<f64>>) {
    let shots: Vec<Problem> = [41, 42]
        .iter()
        .map(|&seed| random_problem(&[32, 28], 4, 4, NT, seed))
        .collect();
    let observed = shots
        .iter()
        .map(|p| {
            let wavelet: Vec<f64> = p.source_series().iter().map(|w| 0.8 * w).collect();
            CpuTwin::new(p).forward(&wavelet, false).unwrap().traces
        })
        .collect();
    (shots, observed)
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn run(gpu: &Gpu, checkpointing: Checkpointing, options: RevolverOptions) -> FwiGradient {
    let (shots, observed) = shots();
    gradient_with(gpu, &shots, &observed, checkpointing, options, |_, _| {}).unwrap()
}

#[test]
fn every_checkpointing_gives_the_store_all_gradient() {
    let Some(gpu) = common::gpu() else { return };
    let (shots, observed) = shots();
    let mut last = [None; 2];
    let reference = gradient(
        &gpu,
        &shots,
        &observed,
        Checkpointing::StoreAll,
        |shot, p| last[shot] = Some(p),
    )
    .unwrap();
    // Each shot's progress ends at its total: every forward and adjoint evaluation.
    for (shot, p) in last.iter().enumerate() {
        let p = p.expect("progress reported");
        let s = &reference.shots[shot];
        assert_eq!(p.done, s.forward_steps + s.reverse_steps);
        assert_eq!(p.done, p.total);
    }
    // The sum over shots, in shot order, of each shot alone.
    let alone: Vec<FwiGradient> = (0..2)
        .map(|i| {
            gradient(
                &gpu,
                &shots[i..=i],
                &observed[i..=i],
                Checkpointing::StoreAll,
                |_, _| {},
            )
            .unwrap()
        })
        .collect();
    let summed: Vec<f64> = alone[0]
        .gradient
        .iter()
        .zip(&alone[1].gradient)
        .map(|(a, b)| a + b)
        .collect();
    assert_eq!(bits(&summed), bits(&reference.gradient));
    assert_eq!(
        (alone[0].misfit + alone[1].misfit).to_bits(),
        reference.misfit.to_bits()
    );
    assert!(reference.gradient.iter().any(|g| *g != 0.0));

    let state = 2 * shots[0].level_bytes();
    let costs = TieredCosts::two_tier(
        1.0,
        TierCost {
            write: 3.0,
            read: 2.0,
        },
    );
    let spill = RevolverOptions {
        device_budget: Some(2 * state),
        ..RevolverOptions::default()
    };
    for (label, checkpointing, options) in [
        (
            "revolve",
            Checkpointing::Snapshots(5),
            RevolverOptions::default(),
        ),
        (
            "revolve, 2 on the GPU",
            Checkpointing::Snapshots(5),
            spill.clone(),
        ),
        (
            "two-tier",
            Checkpointing::TwoTier {
                device: 2,
                host: 3,
                costs,
            },
            spill,
        ),
    ] {
        let g = run(&gpu, checkpointing, options.clone());
        assert_eq!(bits(&g.gradient), bits(&reference.gradient), "{label}");
        assert_eq!(g.misfit.to_bits(), reference.misfit.to_bits(), "{label}");
        assert_eq!(g.traces.len(), 2, "{label}");
        for (t, r) in g.traces.iter().zip(&reference.traces) {
            assert_eq!(bits(t), bits(r), "{label}: traces");
        }
        let spilled: u64 = g.shots.iter().map(|s| s.tier(Tier::HOST).saves).sum();
        assert_eq!(spilled > 0, options.device_budget.is_some(), "{label}");
    }
}

#[test]
fn bad_calls_are_typed_errors() {
    let Some(gpu) = common::gpu() else { return };
    let (shots, observed) = shots();
    let cp = Checkpointing::Snapshots(4);
    let name = |r: gpurevolve::Result<FwiGradient>| match r {
        Err(Error::InvalidArgument { name, .. }) => name,
        other => panic!(
            "expected InvalidArgument, got {:?}",
            other.map(|g| g.misfit)
        ),
    };
    assert_eq!(
        name(gradient(&gpu, &[], &[], cp.clone(), |_, _| {})),
        "shots"
    );
    assert_eq!(
        name(gradient(
            &gpu,
            &shots,
            &observed[..1],
            cp.clone(),
            |_, _| {}
        )),
        "observed"
    );
    let other_grid = random_problem(&[30, 28], 4, 4, NT, 43);
    assert_eq!(
        name(gradient(
            &gpu,
            &[shots[0].clone(), other_grid],
            &observed,
            cp,
            |_, _| {}
        )),
        "shots"
    );
    // More snapshots than steps (40) is Revolve's own typed error.
    let too_many = Checkpointing::Snapshots(NT as u64);
    assert_eq!(
        name(gradient(&gpu, &shots, &observed, too_many, |_, _| {})),
        "snaps"
    );
}

#[test]
fn each_shot_reports_the_placement_its_run_ended_with() {
    let Some(gpu) = common::gpu() else { return };
    let (shots, _) = self::shots();
    let state = 2 * shots[0].level_bytes();
    let options = RevolverOptions {
        device_budget: Some(2 * state),
        ..RevolverOptions::default()
    };
    let planned = run(&gpu, Checkpointing::Snapshots(5), options);
    for tiers in &planned.tiers {
        assert_eq!(tiers.len(), 5);
        assert_eq!(tiers.iter().filter(|t| **t == Tier::DEVICE).count(), 2);
    }
    let reference = run(&gpu, Checkpointing::StoreAll, RevolverOptions::default());
    assert_eq!(bits(&planned.gradient), bits(&reference.gradient));
}

#[test]
fn a_device_the_application_opened_gives_the_same_bits() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    common::within(
        300,
        "a_device_the_application_opened_gives_the_same_bits",
        || {
            // The crate-opened path first (it also makes a missing adapter fail under CI).
            let Some(gpu) = common::gpu() else { return };
            let reference = run(
                &gpu,
                Checkpointing::Snapshots(4),
                RevolverOptions::default(),
            );
            let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
                backends: wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all()),
                ..wgpu::InstanceDescriptor::new_without_display_handle().with_env()
            });
            let adapter =
                pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                    power_preference: wgpu::PowerPreference::HighPerformance,
                    force_fallback_adapter: false,
                    compatible_surface: None,
                    apply_limit_buckets: false,
                }))
                .unwrap();
            let open = |limits: wgpu::Limits| {
                pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                    label: Some("the application's device"),
                    required_limits: limits,
                    ..Default::default()
                }))
                .unwrap()
            };
            // The application's device, with its own handler for errors no scope catches.
            let (device, queue) = open(adapter.limits());
            let uncaught = Arc::new(AtomicUsize::new(0));
            let seen = Arc::clone(&uncaught);
            device.on_uncaptured_error(Arc::new(move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
            }));
            let wrapped = Gpu::from_device(
                device,
                queue,
                Some(adapter.get_info()),
                &gpurevolve::gpu::GpuOptions::default(),
            )
            .unwrap();
            assert_eq!(wrapped.adapter_info().name, gpu.adapter_info().name);
            let got = run(
                &wrapped,
                Checkpointing::Snapshots(4),
                RevolverOptions::default(),
            );
            assert_eq!(bits(&got.gradient), bits(&reference.gradient));
            assert_eq!(got.misfit.to_bits(), reference.misfit.to_bits());
            // The application's handler still hears what no scope caught (here an invalid buffer).
            let _ = wrapped.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("invalid on purpose"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            wrapped.wait().unwrap();
            assert!(
                uncaught.load(Ordering::SeqCst) > 0,
                "the handler was replaced"
            );
            // A device opened without the limits the kernels need is refused, naming the limit.
            let (device, queue) = open(wgpu::Limits::downlevel_webgl2_defaults());
            let err = Gpu::from_device(device, queue, None, &Default::default()).unwrap_err();
            assert!(
                matches!(err, Error::InvalidArgument { name: "device", .. })
                    && err
                        .to_string()
                        .contains("max_storage_buffers_per_shader_stage"),
                "{err}"
            );
        },
    );
}

/// Shots spread over several devices give the one-device bits, whatever the number of
/// devices (here several devices opened on one adapter), and a failing shot is an error, not
/// a hang.
#[test]
fn several_devices_give_the_one_device_bits() {
    common::within(300, "several_devices_give_the_one_device_bits", || {
        let Some(gpu) = common::gpu() else { return };
        let (mut shots, mut observed) = shots();
        // Five shots, so two and three devices each get an uneven share.
        for seed in [43, 44, 45] {
            let p = random_problem(&[32, 28], 4, 4, NT, seed);
            let wavelet: Vec<f64> = p.source_series().iter().map(|w| 0.8 * w).collect();
            observed.push(CpuTwin::new(&p).forward(&wavelet, false).unwrap().traces);
            shots.push(p);
        }
        let how = Checkpointing::Levels(12);
        let options = RevolverOptions::default();
        let one = gradient_with(
            &gpu,
            &shots,
            &observed,
            how.clone(),
            options.clone(),
            |_, _| {},
        )
        .unwrap();
        for devices in [1, 2, 3, 7] {
            let gpus: Vec<Gpu> = (0..devices).map(|_| common::gpu().unwrap()).collect();
            let calls = std::sync::atomic::AtomicUsize::new(0);
            let many = gradient_on_devices(
                &gpus,
                &shots,
                &observed,
                how.clone(),
                options.clone(),
                |_, _| {
                    calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                },
            )
            .unwrap();
            assert_eq!(
                bits(&many.gradient),
                bits(&one.gradient),
                "{devices} devices"
            );
            assert_eq!(
                many.misfit.to_bits(),
                one.misfit.to_bits(),
                "{devices} devices"
            );
            let counts = |g: &FwiGradient| -> Vec<(u64, u64, u64, u64)> {
                g.shots
                    .iter()
                    .map(|s| (s.forward_steps, s.reverse_steps, s.saves, s.restores))
                    .collect()
            };
            assert_eq!(counts(&many), counts(&one), "{devices} devices");
            assert_eq!(many.traces, one.traces, "{devices} devices");
            assert_eq!(many.devices.len(), shots.len());
            assert!(
                many.devices.iter().all(|&d| d < devices),
                "{:?}",
                many.devices
            );
            assert!(calls.into_inner() > 0);
        }
        // A bad record on one shot: the error, from any number of devices, never a hang.
        let mut bad = observed.clone();
        bad[3].pop();
        let gpus: Vec<Gpu> = (0..2).map(|_| common::gpu().unwrap()).collect();
        let err = gradient_on_devices(&gpus, &shots, &bad, how.clone(), options.clone(), |_, _| {})
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert!(matches!(
            gradient_on_devices(&[], &shots, &observed, how, options.clone(), |_, _| {}),
            Err(Error::InvalidArgument { name: "gpus", .. })
        ));
    });
}

/// A device lost in the middle of a run (destroyed from the progress callback, with
/// checkpoints spilling to host memory) ends the run with a device error: no hang, no panic.
#[test]
fn a_device_lost_mid_run_ends_it_with_a_device_error() {
    common::within(
        300,
        "a_device_lost_mid_run_ends_it_with_a_device_error",
        || {
            let Some(gpu) = common::gpu() else { return };
            let (shots, observed) = shots();
            let state = 2 * shots[0].level_bytes();
            let spill = RevolverOptions {
                device_budget: Some(2 * state),
                ..RevolverOptions::default()
            };
            let mut destroyed_at = None;
            let result = gradient_with(
                &gpu,
                &shots,
                &observed,
                Checkpointing::Snapshots(5),
                spill,
                |shot, p| {
                    if destroyed_at.is_none() && shot == 0 && 2 * p.done >= p.total {
                        destroyed_at = Some(p.done);
                        gpu.destroy_for_test();
                    }
                },
            );
            assert!(destroyed_at.is_some(), "the run never reached half way");
            let Err(err) = result else {
                panic!("a run on a lost device succeeded")
            };
            eprintln!("the run ended with: {err}");
            assert_eq!(err.kind(), ErrorKind::Device, "{err}");
            assert!(matches!(err, Error::DeviceLost { .. }), "{err}");
            assert!(gpu.lost().is_some());
        },
    );
}

/// Every device of a multi-device run lost mid-run: the run ends with a device error from
/// its threads, never a hang.
#[test]
fn devices_lost_mid_run_on_several_devices_end_it_with_a_device_error() {
    use std::sync::atomic::{AtomicBool, Ordering};
    common::within(300, "devices_lost_mid_run_on_several_devices", || {
        let Some(first) = common::gpu() else { return };
        let gpus = vec![first, common::gpu().unwrap()];
        let (shots, observed) = shots();
        let destroyed = AtomicBool::new(false);
        let result = gradient_on_devices(
            &gpus,
            &shots,
            &observed,
            Checkpointing::Snapshots(5),
            RevolverOptions::default(),
            |_, p| {
                if 2 * p.done >= p.total && !destroyed.swap(true, Ordering::SeqCst) {
                    for gpu in &gpus {
                        gpu.destroy_for_test();
                    }
                }
            },
        );
        assert!(destroyed.into_inner(), "the run never reached half way");
        let Err(err) = result else {
            panic!("a run on lost devices succeeded")
        };
        eprintln!("the run ended with: {err}");
        assert_eq!(err.kind(), ErrorKind::Device, "{err}");
    });
}

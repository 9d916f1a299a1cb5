//! What a lossy checkpoint costs on the GPU: encoding a time level at a save and decoding it at
//! a restore, against a forward step of the same grid, as ratios measured in one run.
//!
//! `cargo bench --bench compression`. `GPUREVOLVE_BENCH_QUICK=1` runs the main job's grid
//! only. On a software adapter (lavapipe) only the ratios mean anything.

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use gpurevolve::acoustic::{
    Boundary, BoundaryKind, Geometry, GpuAcoustic, Model, Problem, TimeAxis,
};
use gpurevolve::compression::CheckpointFormat;
use gpurevolve::gpu::{Codec, Gpu, STATE_USAGE};

/// Steps (or encodings) per timed submission.
const REPEATS: usize = 20;

fn problem(shape: &[usize]) -> Problem {
    let model = Model::constant(shape, 15.0, 20, 2000.0).unwrap();
    let extent = model.extent();
    let receivers = (0..shape[0]).map(|i| vec![i as f64 * 15.0, 30.0]).collect();
    let geometry =
        Geometry::new(&model, vec![vec![0.5 * extent[0], 30.0]], receivers, 10.0).unwrap();
    let time = TimeAxis::new(&model, 8, REPEATS + 2, None).unwrap();
    let boundary = Boundary::new(BoundaryKind::Cpml, 2000.0).unwrap();
    Problem::with_boundary(model, geometry, time, 8, boundary).unwrap()
}

fn median_seconds(mut f: impl FnMut(), reps: usize) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

fn bench(_: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (see README: scripts/setup.sh)");
    println!("adapter: {}", gpu.adapter_info().name);
    let grids: Vec<(&str, Vec<usize>)> = if std::env::var_os("GPUREVOLVE_BENCH_QUICK").is_some() {
        vec![("main job 200 x 70", vec![200, 70])]
    } else {
        vec![
            ("main job 200 x 70", vec![200, 70]),
            ("1024 x 1024", vec![1024, 1024]),
        ]
    };
    println!(
        "\n{:<20} {:>6} {:>14} {:>14} {:>14} {:>10} {:>10}",
        "grid", "format", "step s", "encode s", "decode s", "enc/step", "dec/step"
    );
    for (name, shape) in grids {
        let p = problem(&shape);
        let acoustic = GpuAcoustic::new(&gpu, &p).unwrap();
        let level = || acoustic.level("level").unwrap();
        let mut levels = [level(), level(), level()];
        let step = median_seconds(
            || {
                let mut encoder = gpu.device().create_command_encoder(&Default::default());
                for k in 0..REPEATS {
                    let [prev, cur, next] = &levels;
                    acoustic.encode_forward_step(&mut encoder, k, [prev, cur, next], true);
                    levels.rotate_left(1);
                }
                gpu.submit([encoder.finish()]);
                gpu.wait().unwrap();
            },
            7,
        ) / REPEATS as f64;
        let words = p.level_len() as u64;
        for format in [CheckpointFormat::Bf16, CheckpointFormat::Int8] {
            let codec = Codec::new(&gpu, format).unwrap().unwrap();
            let bytes = format.encoded_bytes(p.level_bytes());
            let encoded = gpu.create_buffer("encoded", bytes, STATE_USAGE).unwrap();
            let time = |encode: bool| {
                median_seconds(
                    || {
                        let mut encoder = gpu.device().create_command_encoder(&Default::default());
                        for _ in 0..REPEATS {
                            let e = &mut encoder;
                            if encode {
                                codec
                                    .encode(&gpu, e, [&levels[0], &encoded], words, 1)
                                    .unwrap();
                            } else {
                                codec
                                    .decode(&gpu, e, [&encoded, &levels[1]], words, 1)
                                    .unwrap();
                            }
                        }
                        gpu.submit([encoder.finish()]);
                        gpu.wait().unwrap();
                    },
                    7,
                ) / REPEATS as f64
            };
            let (enc, dec) = (time(true), time(false));
            println!(
                "{:<20} {:>6} {:>14.3e} {:>14.3e} {:>14.3e} {:>9.1}% {:>9.1}%",
                name,
                format.name(),
                step,
                enc,
                dec,
                100.0 * enc / step,
                100.0 * dec / step
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! What a lossy checkpoint costs on the GPU: encoding a time level at a save and decoding it at
//! a restore, against a forward step of the same grid, as ratios measured in one run.
//!
//! `cargo bench --bench compression`. `GPUREVOLVE_BENCH_QUICK=1` runs the main job's grid
//! only. On a software adapter (lavapipe) only the ratios mean anything; each is the median of
//! the ratios of rounds that time the steps and the kernels back to back.

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

/// Rounds of the interleaved timings: each round times the steps and every kernel once, so a
/// slow spell of a shared machine lands on both sides of a ratio.
const ROUNDS: usize = 15;

/// Seconds of one call of `f`, `REPEATS` of whatever it records per submission.
fn seconds(f: &mut impl FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64() / REPEATS as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn bench(_: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (see README: scripts/setup.sh)");
    println!("adapter: {}", gpu.adapter_info().name);
    let grids: Vec<(&str, Vec<usize>)> = if std::env::var_os("GPUREVOLVE_BENCH_QUICK").is_some() {
        vec![("main job 200 x 70", vec![200, 70])]
    } else {
        vec![
            ("main job 200 x 70", vec![200, 70]),
            ("400 x 200", vec![400, 200]),
            ("1024 x 1024", vec![1024, 1024]),
        ]
    };
    println!(
        "\n{:<20} {:>6} {:>12} {:>12} {:>12} {:>9} {:>9}",
        "grid", "format", "step s", "encode s", "decode s", "enc/step", "dec/step"
    );
    let formats = [CheckpointFormat::Bf16, CheckpointFormat::Int8];
    for (name, shape) in grids {
        let p = problem(&shape);
        let acoustic = GpuAcoustic::new(&gpu, &p).unwrap();
        let level = || acoustic.level("level").unwrap();
        let mut levels = [level(), level(), level()];
        let words = p.level_len() as u64;
        let codecs: Vec<(Codec, wgpu::Buffer)> = formats
            .iter()
            .map(|&format| {
                let bytes = format.encoded_bytes(p.level_bytes());
                let encoded = gpu.create_buffer("encoded", bytes, STATE_USAGE).unwrap();
                (Codec::new(&gpu, format).unwrap().unwrap(), encoded)
            })
            .collect();
        let steps = |levels: &mut [wgpu::Buffer; 3]| {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            for k in 0..REPEATS {
                let [prev, cur, next] = &*levels;
                acoustic.encode_forward_step(&mut encoder, k, [prev, cur, next], true);
                levels.rotate_left(1);
            }
            gpu.submit([encoder.finish()]);
            gpu.wait().unwrap();
        };
        // A level the steps made, to encode: a wavefield, not zeros.
        steps(&mut levels);
        let level = acoustic.level("saved level").unwrap();
        // Decoded into a level of its own: every round encodes the wavefield the steps made.
        let restored = acoustic.level("restored level").unwrap();
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        let [made, ..] = &levels;
        encoder.copy_buffer_to_buffer(made, 0, &level, 0, p.level_bytes());
        gpu.submit([encoder.finish()]);
        gpu.wait().unwrap();

        let codec_runs = |codec: &Codec, encoded: &wgpu::Buffer, encode: bool| {
            let mut encoder = gpu.device().create_command_encoder(&Default::default());
            for _ in 0..REPEATS {
                let e = &mut encoder;
                if encode {
                    codec.encode(&gpu, e, [&level, encoded], words, 1).unwrap();
                } else {
                    codec
                        .decode(&gpu, e, [encoded, &restored], words, 1)
                        .unwrap();
                }
            }
            gpu.submit([encoder.finish()]);
            gpu.wait().unwrap();
        };
        // Per round: the step's time and each kernel's.
        let mut step_times = Vec::new();
        let mut times = vec![[Vec::new(), Vec::new()]; codecs.len()];
        for _ in 0..ROUNDS {
            step_times.push(seconds(&mut || steps(&mut levels)));
            for ((codec, encoded), t) in codecs.iter().zip(&mut times) {
                t[0].push(seconds(&mut || codec_runs(codec, encoded, true)));
                t[1].push(seconds(&mut || codec_runs(codec, encoded, false)));
            }
        }
        for ((codec, _), [enc, dec]) in codecs.iter().zip(times) {
            // The median of each round's ratio, and of each time.
            let ratio =
                |t: &[f64]| 100.0 * median(t.iter().zip(&step_times).map(|(c, s)| c / s).collect());
            println!(
                "{:<20} {:>6} {:>12.3e} {:>12.3e} {:>12.3e} {:>8.1}% {:>8.1}%",
                name,
                codec.format().name(),
                median(step_times.clone()),
                median(enc.clone()),
                median(dec.clone()),
                ratio(&enc),
                ratio(&dec),
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

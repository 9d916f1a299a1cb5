//! Checkpoint formats: each GPU kernel gives the bits of its CPU twin (`src/compression.rs`),
//! on random levels of every kind a wavefield holds (a wide dynamic range, signs, zeros,
//! subnormals, ties, blocks with a NaN or an infinity), with one- and two-dimensional
//! dispatches and levels that end inside a block.

mod common;

use gpurevolve::compression::{CheckpointFormat, INT8_BLOCK};
use gpurevolve::gpu::{Codec, Gpu, STATE_USAGE, dispatch_1d};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A level of `len` words: a smooth field of random amplitude per stretch (so blocks see
/// scales from 1e-30 to 1e30), with sprinkled zeros, subnormals, exact ties of both formats
/// and, when `special`, a NaN and an infinity.
fn level(rng: &mut StdRng, len: usize, special: bool) -> Vec<f32> {
    let mut values: Vec<f32> = Vec::with_capacity(len);
    while values.len() < len {
        let scale = 10f32.powf(rng.random_range(-30.0..30.0));
        let phase: f32 = rng.random_range(0.0..6.3);
        for i in 0..rng.random_range(1..150) {
            let smooth = (phase + 0.21 * i as f32).sin() * scale;
            values.push(match rng.random_range(0..40) {
                0 => 0.0,
                1 => -0.0,
                2 => f32::from_bits(rng.random_range(1..0x80_0000)), // subnormal
                3 => 1.0 + 2f32.powi(-8),                            // a bf16 tie
                4 => 2.5 * 2f32.powi(rng.random_range(-20..20)),     // an int8 tie
                _ => smooth * rng.random_range(0.5..1.5),
            });
        }
    }
    values.truncate(len);
    if special && len > 3 * INT8_BLOCK {
        values[INT8_BLOCK + 5] = f32::NAN;
        values[2 * INT8_BLOCK + 1] = f32::NEG_INFINITY;
    }
    values
}

fn round_trip(gpu: &Gpu, codec: &Codec, values: &[f32], parts: usize) -> (Vec<u32>, Vec<u32>) {
    let len = values.len() as u64;
    let format = codec.format();
    let source = gpu.upload("level", values, STATE_USAGE).unwrap();
    let encoded_bytes = format.encoded_words_in(values.len(), parts) as u64 * 4;
    let encoded = gpu
        .create_buffer("encoded", encoded_bytes, STATE_USAGE)
        .unwrap();
    let back = gpu.create_buffer("decoded", len * 4, STATE_USAGE).unwrap();
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    codec
        .encode(gpu, &mut encoder, [&source, &encoded], len, parts)
        .unwrap();
    codec
        .decode(gpu, &mut encoder, [&encoded, &back], len, parts)
        .unwrap();
    gpu.submit([encoder.finish()]);
    let encoded: Vec<u32> = gpu.read_back(&encoded).unwrap();
    let back: Vec<u32> = gpu.read_back(&back).unwrap();
    (encoded, back)
}

#[test]
fn gpu_kernels_give_their_cpu_twins_bits() {
    let Some(gpu) = common::gpu() else { return };
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for format in [CheckpointFormat::Bf16, CheckpointFormat::Int8] {
        let codecs = [
            Codec::new(&gpu, format).unwrap().unwrap(),
            // Five workgroups a row (of at most five): long levels spill into the dispatch's y.
            Codec::new(&gpu, format)
                .unwrap()
                .unwrap()
                .with_max_groups_per_dim(5),
        ];
        // The longest level below spills, encoding and decoding: bf16 moves 8 words an
        // invocation; int8 encodes a block of 64 words an invocation and decodes 16 words.
        let long: u64 = match format {
            CheckpointFormat::Int8 => 90_000,
            _ => 20_000,
        };
        let rows = |items: u64| dispatch_1d(items, Codec::WORKGROUP_SIZE, 5).unwrap().groups[1];
        let items = match format {
            CheckpointFormat::Int8 => [long.div_ceil(64), long.div_ceil(64) * 4],
            _ => [long / 8; 2],
        };
        assert!(items.iter().all(|&i| rows(i) > 1), "{format}: {items:?}");
        for codec in &codecs {
            // Levels of one part, and of 3 or 7 parts (a batch's shots) that no block spans.
            for (len, parts) in [
                (1, 1),
                (2, 1),
                (63, 1),
                (64, 1),
                (65, 1),
                (1000, 1),
                (4099, 1),
                (long as usize, 1),
                (8, 1),
                (12, 1),
                (3 * 97, 3),
                (7 * 640, 7),
                // Parts whose blocks start on a vector (68 words: a whole block and a ragged
                // one) and parts that start off one (130 words: the second part's blocks).
                (5 * 68, 5),
                (2 * 130, 2),
            ] {
                let special = rng.random_bool(0.5);
                let values = level(&mut rng, len, special);
                let (encoded, back) = round_trip(&gpu, codec, &values, parts);
                let cpu = format.encode_in(&values, parts);
                assert_eq!(encoded, cpu, "{format} encoding of {len} words in {parts}");
                let decoded: Vec<u32> = format
                    .decode_in(&cpu, len, parts)
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                assert_eq!(back, decoded, "{format} decoding of {len} words");
                // And the round trip is close: no word comes back further than its format
                // allows, and a NaN or an infinity never comes back finite.
                for (v, b) in values.iter().zip(&back) {
                    let b = f32::from_bits(*b);
                    if !v.is_finite() {
                        assert!(!b.is_finite(), "{format}: {v} came back {b}");
                    } else if format == CheckpointFormat::Bf16 && v.is_normal() {
                        assert!(
                            (v - b).abs() <= v.abs() * 2f32.powi(-8),
                            "{v} came back {b}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn f32_needs_no_kernel_and_short_buffers_are_refused() {
    let Some(gpu) = common::gpu() else { return };
    assert!(Codec::new(&gpu, CheckpointFormat::F32).unwrap().is_none());
    let codec = Codec::new(&gpu, CheckpointFormat::Int8).unwrap().unwrap();
    let level = gpu.create_buffer("level", 400, STATE_USAGE).unwrap();
    let short = gpu.create_buffer("encoded", 64, STATE_USAGE).unwrap();
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    assert!(
        codec
            .encode(&gpu, &mut encoder, [&level, &short], 100, 1)
            .is_err()
    );
    assert!(
        codec
            .decode(&gpu, &mut encoder, [&short, &level], 0, 1)
            .is_err()
    );
    // Parts that do not divide the level.
    let encoded = gpu.create_buffer("encoded", 400, STATE_USAGE).unwrap();
    assert!(
        codec
            .encode(&gpu, &mut encoder, [&level, &encoded], 100, 3)
            .is_err()
    );
}

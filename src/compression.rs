//! Checkpoint formats: how a stored time level is written, exactly or in fewer bytes.
//!
//! A checkpoint holds time levels of `f32` words (a wavefield and, under a CPML, its memory
//! fields: every word of a level). [`CheckpointFormat::F32`] keeps them as they are, the
//! default, and the gradient stays the store-all gradient to the bit. The lossy formats trade
//! exactness for count: more checkpoints in the same memory, and so fewer recomputed steps,
//! and fewer bytes across the bus when a checkpoint spills.
//!
//! - [`Bf16`](CheckpointFormat::Bf16): the top 16 bits of each word, rounded to nearest
//!   (ties to even). The range of `f32`, 8 significant bits (a relative error of at most
//!   2⁻⁸). Half the bytes.
//! - [`Int8`](CheckpointFormat::Int8): blocks of [`INT8_BLOCK`] consecutive words, each block
//!   one power-of-two scale (the exponent of its largest magnitude) and one signed byte per
//!   word: at most half a step of `2^(e − 6)` off, where `2^e` bounds the block, so at most
//!   2⁻⁷ of the block's largest value. 68 bytes for 256: 3.76× fewer.
//!
//! Why a power-of-two scale: the scaling is then an exact shift of the exponent, and the
//! rounding an integer operation on the mantissa, so the GPU kernel and this CPU twin agree to
//! the bit on every device (WGSL's division is not correctly rounded, and GPUs may flush
//! subnormals). It costs at most one bit against a scale fitted to the block's maximum.
//!
//! Why blocks of 64 words: a global scale loses a weak, far arrival next to a strong one
//! (Deepwave moved from one scale to blocks for that reason); a block is 64 consecutive
//! cells along the fastest axis, a few wavelengths at most, so its scale follows the field.
//! The scale costs 4 bytes a block, 6 % of the block's bytes; blocks of 16 would cost 25 %.
//!
//! Words below 2⁻¹²⁶ (subnormal) encode as zero in both formats' arithmetic paths (bf16 keeps
//! their bits), and a block whose largest magnitude is below 2⁻¹²⁰ is all zero; a NaN or an
//! infinity in a block decodes as NaN for the whole block, so a non-finite field never comes
//! back finite.
//!
//! These functions are the CPU twins of the kernels in `shaders/compression.wgsl`; the tests
//! hold the two to the same bits.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Words in one block of the [`Int8`](CheckpointFormat::Int8) format.
pub const INT8_BLOCK: usize = 64;

/// `u32` words of one encoded [`Int8`](CheckpointFormat::Int8) block: its bytes, four to a
/// word, and the scale's exponent field. An encoded level holds every block's bytes first, then
/// every block's field, so that each block's bytes start on a 16-byte boundary: the kernels
/// read and write them as `vec4<u32>`, four times fewer memory operations than words.
pub const INT8_BLOCK_WORDS: usize = INT8_DATA_WORDS + 1;

/// `u32` words of one block's bytes.
const INT8_DATA_WORDS: usize = INT8_BLOCK / 4;

/// How checkpointed time levels are stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CheckpointFormat {
    /// Exact `f32` words, the default: the store-all gradient to the bit.
    #[default]
    F32,
    /// `bfloat16`, rounded to nearest: half the bytes, 8 bits of precision.
    Bf16,
    /// Block-scaled 8-bit: one power-of-two scale per [`INT8_BLOCK`] words, a byte a word.
    Int8,
}

impl CheckpointFormat {
    /// Every format, exact first.
    pub const ALL: [CheckpointFormat; 3] = [Self::F32, Self::Bf16, Self::Int8];

    /// The name the command line and Python take (`f32`, `bf16`, `int8`).
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::Int8 => "int8",
        }
    }

    /// Whether a restored level has the bits that were saved.
    pub fn is_exact(self) -> bool {
        self == Self::F32
    }

    /// `u32` words that hold `len` encoded words.
    pub fn encoded_words(self, len: usize) -> usize {
        self.encoded_words_in(len, 1)
    }

    /// `u32` words that hold `len` encoded words made of `parts` equal, independent parts
    /// (the shots of a batch): no int8 block spans two of them, so each part's encoding is the
    /// one it has alone.
    pub fn encoded_words_in(self, len: usize, parts: usize) -> usize {
        let parts = parts.max(1);
        match self {
            Self::F32 => len,
            Self::Bf16 => len.div_ceil(2),
            Self::Int8 => parts * (len / parts).div_ceil(INT8_BLOCK) * INT8_BLOCK_WORDS,
        }
    }

    /// Bytes that hold a level of `level_bytes` bytes (whole `f32` words) once encoded.
    pub fn encoded_bytes(self, level_bytes: u64) -> u64 {
        self.encoded_bytes_in(level_bytes, 1)
    }

    /// As [`encoded_bytes`](Self::encoded_bytes), for a level of `parts` independent parts.
    pub fn encoded_bytes_in(self, level_bytes: u64, parts: usize) -> u64 {
        let words = usize::try_from(level_bytes / 4).unwrap_or(usize::MAX);
        (self.encoded_words_in(words, parts) as u64).saturating_mul(4)
    }

    /// Encoded levels that fit in the bytes of `levels` `f32` levels of `level_bytes`: the
    /// schedule's memory in this format.
    pub fn levels_in(self, levels: u64, level_bytes: u64) -> u64 {
        let encoded = self.encoded_bytes(level_bytes).max(1);
        levels.saturating_mul(level_bytes) / encoded
    }

    /// `values` encoded as `u32` words ([`encoded_words`](Self::encoded_words) of them).
    pub fn encode(self, values: &[f32]) -> Vec<u32> {
        self.encode_in(values, 1)
    }

    /// `values`, made of `parts` equal parts, encoded part by part
    /// ([`encoded_words_in`](Self::encoded_words_in) words).
    pub fn encode_in(self, values: &[f32], parts: usize) -> Vec<u32> {
        match self {
            Self::F32 => values.iter().map(|v| v.to_bits()).collect(),
            Self::Bf16 => values
                .chunks(2)
                .map(|pair| {
                    let lo = bf16_of(pair[0]);
                    let hi = pair.get(1).map_or(0, |&v| bf16_of(v));
                    u32::from(lo) | (u32::from(hi) << 16)
                })
                .collect(),
            Self::Int8 => {
                // Every block's bytes, then every block's exponent field (see INT8_BLOCK_WORDS).
                let part = values.len() / parts.max(1);
                let blocks: Vec<_> = values
                    .chunks(part.max(1))
                    .take(parts.max(1))
                    .flat_map(|p| p.chunks(INT8_BLOCK))
                    .map(|block| {
                        let mut padded = [0f32; INT8_BLOCK];
                        padded[..block.len()].copy_from_slice(block);
                        int8_block(&padded)
                    })
                    .collect();
                let mut out: Vec<u32> = blocks.iter().flat_map(|(_, bytes)| *bytes).collect();
                out.extend(blocks.iter().map(|(field, _)| *field));
                out
            }
        }
    }

    /// The `len` words that `encoded` holds.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `encoded` is not [`encoded_words`](Self::encoded_words)
    /// long.
    pub fn decode(self, encoded: &[u32], len: usize) -> Result<Vec<f32>> {
        self.decode_in(encoded, len, 1)
    }

    /// The `len` words, made of `parts` equal parts, that `encoded` holds.
    ///
    /// # Errors
    /// As [`decode`](Self::decode).
    pub fn decode_in(self, encoded: &[u32], len: usize, parts: usize) -> Result<Vec<f32>> {
        let parts = parts.max(1);
        if !len.is_multiple_of(parts) {
            return Err(Error::InvalidArgument {
                name: "parts",
                reason: format!("{parts} equal parts cannot make a level of {len} words"),
            });
        }
        if encoded.len() != self.encoded_words_in(len, parts) {
            return Err(Error::InvalidArgument {
                name: "encoded",
                reason: format!(
                    "{} words hold no {} level of {len} words ({} do)",
                    encoded.len(),
                    self.name(),
                    self.encoded_words_in(len, parts)
                ),
            });
        }
        if self == Self::Int8 {
            // Word i of part p is word i % 64 of the part's block i / 64.
            let part = len / parts;
            let per_part = part.div_ceil(INT8_BLOCK);
            let (bytes, fields) = encoded.split_at(per_part * parts * INT8_DATA_WORDS);
            return Ok((0..len)
                .map(|i| {
                    let (p, at) = (i / part, i % part);
                    let block = p * per_part + at / INT8_BLOCK;
                    let at = at % INT8_BLOCK;
                    let byte = (bytes[block * INT8_DATA_WORDS + at / 4] >> (8 * (at % 4))) & 0xFF;
                    int8_value(fields[block], byte as u8 as i8)
                })
                .collect());
        }
        Ok((0..len).map(|i| self.decode_one(encoded, i)).collect())
    }

    /// Word `i` of a level encoded word by word (not int8).
    fn decode_one(self, encoded: &[u32], i: usize) -> f32 {
        match self {
            Self::Bf16 => f32::from_bits((encoded[i / 2] >> (16 * (i % 2))) << 16),
            _ => f32::from_bits(encoded[i]),
        }
    }
}

impl std::fmt::Display for CheckpointFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CheckpointFormat {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.name() == text)
            .ok_or_else(|| Error::InvalidArgument {
                name: "checkpoint_format",
                reason: format!("{text:?}: give f32 (exact), bf16 or int8"),
            })
    }
}

/// `value` as bfloat16 bits, rounded to nearest, ties to even; a NaN stays a (quiet) NaN.
fn bf16_of(value: f32) -> u16 {
    let bits = value.to_bits();
    if bits & 0x7FFF_FFFF > 0x7F80_0000 {
        return ((bits >> 16) | 0x0040) as u16;
    }
    let rounded = bits.wrapping_add(0x7FFF + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

/// The exponent field that marks a block holding a NaN or an infinity.
const NON_FINITE: u32 = 0xFF;

/// Blocks whose largest magnitude has an exponent field below this are stored as zero: their
/// step `2^(e − 6)` would be subnormal.
const SMALLEST_FIELD: u32 = 7;

/// One block: the exponent field `E` of its largest magnitude, and each word's
/// `round(x · 2^(6 − e))` (ties to even, at most 127 in magnitude), four bytes to a word.
fn int8_block(block: &[f32; INT8_BLOCK]) -> (u32, [u32; INT8_DATA_WORDS]) {
    let largest = block
        .iter()
        .map(|v| v.to_bits() & 0x7FFF_FFFF)
        .max()
        .unwrap_or(0);
    let field = largest >> 23;
    let mut bytes = [0u32; INT8_DATA_WORDS];
    if field == NON_FINITE {
        return (NON_FINITE, bytes);
    }
    if field < SMALLEST_FIELD {
        return (0, bytes);
    }
    for (i, &v) in block.iter().enumerate() {
        let q = quantize(v.to_bits(), field) as u8;
        bytes[i / 4] |= u32::from(q) << (8 * (i % 4));
    }
    (field, bytes)
}

/// `round(x · 2^(6 − e))` for the word of bits `bits` in a block of exponent field `field`
/// (`e = field − 127`), by integer arithmetic on the mantissa: ties to even, clamped to ±127;
/// subnormal words are zero.
fn quantize(bits: u32, field: u32) -> i8 {
    let own = (bits >> 23) & 0xFF;
    if own == 0 {
        return 0;
    }
    let mantissa = (bits & 0x7F_FFFF) | 0x80_0000;
    // x · 2^(6 − e) = mantissa · 2^(own − field + 6 − 23): a right shift by 17 + (field − own).
    let shift = 17 + (field - own);
    let magnitude = if shift >= 25 {
        0
    } else {
        let whole = mantissa >> shift;
        let rest = mantissa & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        let up = rest > half || (rest == half && whole & 1 == 1);
        (whole + u32::from(up)).min(127)
    };
    let magnitude = magnitude as i8;
    if bits >> 31 == 1 {
        -magnitude
    } else {
        magnitude
    }
}

/// The value of byte `q` in a block of exponent field `field`: `q · 2^(e − 6)`, exact.
fn int8_value(field: u32, q: i8) -> f32 {
    if field == NON_FINITE {
        return f32::NAN;
    }
    if field < SMALLEST_FIELD {
        return 0.0;
    }
    f32::from(q) * f32::from_bits((field - 6) << 23)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_rounds_to_nearest_even_and_keeps_specials() {
        // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: to even, 1.
        assert_eq!(bf16_of(1.0 + 2f32.powi(-8)), bf16_of(1.0));
        // 1 + 3·2^-8 ties between 1 + 2^-7 (odd) and 1 + 2^-6: to even, 1 + 2^-6.
        let up = f32::from_bits(u32::from(bf16_of(1.0 + 3.0 * 2f32.powi(-8))) << 16);
        assert_eq!(up, 1.0 + 2f32.powi(-6));
        assert!(f32::from_bits(u32::from(bf16_of(f32::NAN)) << 16).is_nan());
        assert_eq!(
            f32::from_bits(u32::from(bf16_of(f32::INFINITY)) << 16),
            f32::INFINITY
        );
        assert_eq!(bf16_of(-0.0), 0x8000);
    }

    #[test]
    fn int8_is_within_half_a_step_of_its_block() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..200 {
            let scale = 10f64.powf(next() * 60.0 - 30.0);
            let values: Vec<f32> = (0..INT8_BLOCK * 3 + 5)
                .map(|_| ((next() - 0.5) * scale) as f32)
                .collect();
            let f = CheckpointFormat::Int8;
            let back = f.decode(&f.encode(&values), values.len()).unwrap();
            for (block, back) in values.chunks(INT8_BLOCK).zip(back.chunks(INT8_BLOCK)) {
                let largest = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                let e = largest.log2().floor();
                let step = 2f32.powf(e - 6.0);
                for (v, b) in block.iter().zip(back) {
                    // Half a step, or the clamp at 127 steps (the block's largest may round
                    // to 128 steps).
                    let bound = (0.5 * step).max((v.abs() - 127.0 * step).max(0.0));
                    assert!((v - b).abs() <= bound, "{v} came back {b}, step {step}");
                }
            }
            let bf = CheckpointFormat::Bf16;
            let back = bf.decode(&bf.encode(&values), values.len()).unwrap();
            for (v, b) in values.iter().zip(&back) {
                assert!(
                    (v - b).abs() <= v.abs() * 2f32.powi(-8),
                    "{v} came back {b}"
                );
            }
        }
    }

    #[test]
    fn int8_keeps_non_finite_blocks_non_finite_and_tiny_blocks_zero() {
        let f = CheckpointFormat::Int8;
        let mut values = vec![1.0f32; INT8_BLOCK * 2];
        values[3] = f32::INFINITY;
        values[INT8_BLOCK + 1] = 1e-38;
        let back = f.decode(&f.encode(&values), values.len()).unwrap();
        assert!(back[..INT8_BLOCK].iter().all(|v| v.is_nan()));
        assert!(back[INT8_BLOCK..].iter().all(|v| v.is_finite()));
        let tiny = vec![1e-37f32; 10];
        assert!(
            f.decode(&f.encode(&tiny), 10)
                .unwrap()
                .iter()
                .all(|&v| v == 0.0)
        );
    }

    #[test]
    fn sizes_and_names() {
        assert_eq!(CheckpointFormat::F32.encoded_bytes(4000), 4000);
        assert_eq!(CheckpointFormat::Bf16.encoded_bytes(4000), 2000);
        assert_eq!(CheckpointFormat::Bf16.encoded_bytes(4004), 2004);
        assert_eq!(CheckpointFormat::Int8.encoded_bytes(256), 68);
        assert_eq!(CheckpointFormat::Int8.encoded_bytes(260), 136);
        assert_eq!(CheckpointFormat::Bf16.levels_in(74, 1000), 148);
        for f in CheckpointFormat::ALL {
            assert_eq!(f.name().parse::<CheckpointFormat>().unwrap(), f);
            let values = [1.5f32, -2.25, 0.0];
            assert_eq!(f.decode(&f.encode(&values), 3).unwrap(), values);
        }
        assert!("f16".parse::<CheckpointFormat>().is_err());
        assert!(CheckpointFormat::Bf16.decode(&[0; 3], 4).is_err());
        // Parts: no int8 block spans two, so each part encodes as it does alone.
        let values: Vec<f32> = (0..300)
            .map(|i| (i as f32 * 0.37).sin() * (1 + i / 100) as f32)
            .collect();
        let f = CheckpointFormat::Int8;
        let whole = f.encode_in(&values, 3);
        // Each part's blocks, and then each part's fields, as the part alone has them.
        let alone: Vec<Vec<u32>> = values.chunks(100).map(|p| f.encode(p)).collect();
        let data = 2 * INT8_DATA_WORDS;
        let bytes = alone.iter().flat_map(|a| a[..data].to_vec());
        let fields = alone.iter().flat_map(|a| a[data..].to_vec());
        assert_eq!(whole, bytes.chain(fields).collect::<Vec<u32>>());
        assert_eq!(whole.len(), f.encoded_words_in(300, 3));
        let back = f.decode_in(&whole, 300, 3).unwrap();
        let back_alone: Vec<f32> = values
            .chunks(100)
            .flat_map(|p| f.decode(&f.encode(p), 100).unwrap())
            .collect();
        assert_eq!(back, back_alone);
    }
}

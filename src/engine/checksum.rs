//! The checksum of checkpoint bytes held outside the GPU: the disk tier's files (every byte,
//! header included) and the host tier's copies in host memory. One function for both tiers.
//!
//! XXH3-64, from the `xxhash-rust` crate. Every input bit reaches every output bit through
//! 64-bit multiplies and its final avalanche, so any damage, of one bit or of many, anywhere,
//! escapes with a probability of about 2⁻⁶⁴. The FNV-1a over 64-bit words it replaces could not
//! see high bits: a change to bit 63 of a word never reached the hash's low bits, and two
//! flips of bit 63 cancelled exactly (a real run ended with a 94% wrong gradient). A CRC was
//! the other candidate: its guarantees for one and two flipped bits hold only within the
//! polynomial's period (2³¹ bits, 256 MiB, for CRC-32C), below a large checkpoint, and its
//! fast forms need hardware instructions; XXH3 runs at tens of GB/s on any 64-bit host with
//! the SIMD of its baseline (SSE2, NEON), in a small crate with no dependencies. It is a
//! checksum against damage, not a defence against an adversary.

use xxhash_rust::xxh3::Xxh3;

/// A streaming checksum: bytes fed in order, in pieces of any size (the same bytes in other
/// pieces give the same value), without copying them.
#[derive(Clone)]
pub(crate) struct Checksum(Xxh3);

impl Checksum {
    pub(crate) fn new() -> Self {
        Self(Xxh3::new())
    }

    /// A checksum keyed by `seed`: the same bytes under another seed give another value.
    pub(crate) fn with_seed(seed: u64) -> Self {
        Self(Xxh3::with_seed(seed))
    }

    /// Feeds `bytes`, after those fed before.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The checksum of everything fed so far.
    pub(crate) fn value(&self) -> u64 {
        self.0.digest()
    }
}

/// The checksum of a checkpoint's levels in host memory: each level's bytes, then the number
/// of levels and their lengths, so levels cut elsewhere or one level fewer do not match.
pub(crate) fn of_levels(levels: &[Vec<u8>]) -> u64 {
    let mut sum = Checksum::new();
    for level in levels {
        sum.update(level);
    }
    finish_levels(sum, levels)
}

/// [`of_levels`] from `sum`, which was fed the bytes of `levels` in order (in pieces, as
/// they were copied).
pub(crate) fn finish_levels(mut sum: Checksum, levels: &[Vec<u8>]) -> u64 {
    sum.update(&(levels.len() as u64).to_le_bytes());
    for level in levels {
        sum.update(&(level.len() as u64).to_le_bytes());
    }
    sum.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the FNV-1a over words missed: bit 63 flipped in two different words.
    #[test]
    fn two_high_bit_flips_change_it() {
        let level: Vec<u8> = (0..4096u32).map(|i| (i * 37 % 251) as u8).collect();
        let mut damaged = level.clone();
        damaged[7] ^= 0x80;
        damaged[15] ^= 0x80;
        assert_ne!(
            of_levels(std::slice::from_ref(&level)),
            of_levels(&[damaged])
        );
        // Pieces do not matter; level boundaries do.
        let mut pieces = Checksum::new();
        for chunk in level.chunks(1000) {
            pieces.update(chunk);
        }
        let mut whole = Checksum::new();
        whole.update(&level);
        assert_eq!(pieces.value(), whole.value());
        let (a, b) = level.split_at(2048);
        assert_ne!(
            of_levels(&[a.to_vec(), b.to_vec()]),
            of_levels(&[b.to_vec(), a.to_vec()])
        );
        assert_ne!(
            of_levels(&[a.to_vec(), b.to_vec()]),
            of_levels(std::slice::from_ref(&level))
        );
    }
}

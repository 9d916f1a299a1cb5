//! One shot's whole result as 64-bit words, every float exactly: what MPI ranks send to
//! rank 0 and what the journal of a survey keeps on disk. Nothing is rounded, so a result
//! that travelled or was resumed adds to the total exactly as one computed in place.

use crate::engine::RunStats;
use crate::schedule::Tier;

/// One shot's results, before they are summed.
pub(super) struct ShotDone {
    pub(super) device: usize,
    pub(super) misfit: f64,
    pub(super) gradient: Vec<f64>,
    pub(super) stats: RunStats,
    pub(super) traces: Vec<f64>,
    pub(super) tiers: Vec<Tier>,
}

/// `bytes` as little-endian words, the last padded with zeros.
fn bytes_to_words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks(8).map(|c| {
        let mut word = [0u8; 8];
        word[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(word)
    })
}

/// One shot's result as words: `[device, misfit, stats, tiers, traces, gradient]`, each of
/// the last four led by its length. The statistics travel as their serde JSON (led by its
/// byte count; a float written by serde_json reads back as the same bits), so a field added
/// to [`RunStats`] travels with no change here; the vectors as words, floats by their bits:
/// nothing is rounded.
pub(crate) fn encode(shot: &ShotDone) -> Vec<u64> {
    let stats = serde_json::to_vec(&shot.stats).unwrap_or_default();
    let mut w = vec![
        shot.device as u64,
        shot.misfit.to_bits(),
        stats.len() as u64,
    ];
    w.extend(bytes_to_words(&stats));
    w.push(shot.tiers.len() as u64);
    w.extend(shot.tiers.iter().map(|t| t.0 as u64));
    w.push(shot.traces.len() as u64);
    w.extend(shot.traces.iter().map(|x| x.to_bits()));
    w.push(shot.gradient.len() as u64);
    w.extend(shot.gradient.iter().map(|x| x.to_bits()));
    w
}

/// The inverse of [`encode`]; `None` when the words are not one whole shot.
pub(crate) fn decode(words: &[u64]) -> Option<ShotDone> {
    let (head, rest) = words.split_at_checked(3)?;
    let stats_bytes = usize::try_from(head[2]).ok()?;
    let (stats_words, mut rest) = rest.split_at_checked(stats_bytes.div_ceil(8))?;
    let mut stats: Vec<u8> = stats_words.iter().flat_map(|w| w.to_le_bytes()).collect();
    stats.truncate(stats_bytes);
    let stats: RunStats = serde_json::from_slice(&stats).ok()?;
    let mut take = |what: &mut Vec<u64>| -> Option<()> {
        let (&n, tail) = rest.split_first()?;
        let (body, tail) = tail.split_at_checked(usize::try_from(n).ok()?)?;
        *what = body.to_vec();
        rest = tail;
        Some(())
    };
    let (mut tiers, mut traces, mut gradient) = (Vec::new(), Vec::new(), Vec::new());
    take(&mut tiers)?;
    take(&mut traces)?;
    take(&mut gradient)?;
    if !rest.is_empty() {
        return None;
    }
    Some(ShotDone {
        device: head[0] as usize,
        misfit: f64::from_bits(head[1]),
        stats,
        tiers: tiers.into_iter().map(|t| Tier(t as usize)).collect(),
        traces: traces.into_iter().map(f64::from_bits).collect(),
        gradient: gradient.into_iter().map(f64::from_bits).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TierStats;

    #[test]
    fn a_shot_survives_its_encoding_bit_for_bit() {
        let shot = ShotDone {
            device: 3,
            misfit: 0.1 + 0.2,
            stats: RunStats {
                forward_steps: 7,
                reverse_seconds: std::f64::consts::PI,
                transfer_seconds: f64::MIN_POSITIVE,
                tiers: vec![TierStats {
                    name: "disk".into(),
                    read_seconds: 0.1 + 0.7,
                    reads_ahead: 9,
                    ..TierStats::default()
                }],
                ..RunStats::default()
            },
            tiers: vec![Tier::DEVICE, Tier::HOST],
            traces: vec![-0.0, f64::MIN_POSITIVE, 1e300],
            gradient: vec![f64::NAN, -2.5],
        };
        let words = encode(&shot);
        let back = decode(&words).unwrap();
        assert_eq!(encode(&back), words);
        assert_eq!(back.stats, shot.stats);
        assert!(decode(&words[..3]).is_none());
        assert!(decode(&words[..30]).is_none());
        assert!(decode(&words[..words.len() - 1]).is_none());
        let mut longer = words.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
    }
}

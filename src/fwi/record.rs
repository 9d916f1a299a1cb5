//! One shot's whole result as 64-bit words, every float by its bits: what MPI ranks send to
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

/// Words in [`stats_words`].
const STATS_WORDS: usize = 28;

/// The statistics of a run as words, every field exactly (floats by their bits).
fn stats_words(s: &RunStats) -> [u64; STATS_WORDS] {
    [
        s.forward_steps,
        s.advances,
        s.reverse_steps,
        s.saves,
        s.restores,
        s.frees,
        s.bytes_copied,
        s.peak_slots as u64,
        s.peak_checkpoint_bytes,
        s.device_bytes,
        s.forward_seconds.to_bits(),
        s.reverse_seconds.to_bits(),
        s.host_saves,
        s.host_restores,
        s.spilled_bytes,
        s.restored_bytes,
        s.demotions,
        s.peak_host_bytes,
        s.transfer_seconds.to_bits(),
        s.transfer_wait_seconds.to_bits(),
        s.prefetched_restores,
        s.disk_saves,
        s.disk_restores,
        s.disk_reads_ahead,
        s.disk_bytes_written,
        s.disk_bytes_read,
        s.disk_write_seconds.to_bits(),
        s.disk_read_seconds.to_bits(),
    ]
}

fn stats_from(w: &[u64; STATS_WORDS]) -> RunStats {
    RunStats {
        forward_steps: w[0],
        advances: w[1],
        reverse_steps: w[2],
        saves: w[3],
        restores: w[4],
        frees: w[5],
        bytes_copied: w[6],
        peak_slots: w[7] as usize,
        peak_checkpoint_bytes: w[8],
        device_bytes: w[9],
        forward_seconds: f64::from_bits(w[10]),
        reverse_seconds: f64::from_bits(w[11]),
        host_saves: w[12],
        host_restores: w[13],
        spilled_bytes: w[14],
        restored_bytes: w[15],
        demotions: w[16],
        peak_host_bytes: w[17],
        transfer_seconds: f64::from_bits(w[18]),
        transfer_wait_seconds: f64::from_bits(w[19]),
        prefetched_restores: w[20],
        disk_saves: w[21],
        disk_restores: w[22],
        disk_reads_ahead: w[23],
        disk_bytes_written: w[24],
        disk_bytes_read: w[25],
        disk_write_seconds: f64::from_bits(w[26]),
        disk_read_seconds: f64::from_bits(w[27]),
    }
}

/// One shot's result as words: `[device, misfit, stats (28), tiers, traces, gradient]`, the
/// three vectors each led by its length. Floats travel as their bits: nothing is rounded.
pub(crate) fn encode(shot: &ShotDone) -> Vec<u64> {
    let mut w = vec![shot.device as u64, shot.misfit.to_bits()];
    w.extend(stats_words(&shot.stats));
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
    let (head, mut rest) = words.split_at_checked(2 + STATS_WORDS)?;
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
    let stats: [u64; STATS_WORDS] = head[2..].try_into().ok()?;
    Some(ShotDone {
        device: head[0] as usize,
        misfit: f64::from_bits(head[1]),
        stats: stats_from(&stats),
        tiers: tiers.into_iter().map(|t| Tier(t as usize)).collect(),
        traces: traces.into_iter().map(f64::from_bits).collect(),
        gradient: gradient.into_iter().map(f64::from_bits).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shot_survives_its_encoding_bit_for_bit() {
        let shot = ShotDone {
            device: 3,
            misfit: 0.1 + 0.2,
            stats: RunStats {
                forward_steps: 7,
                reverse_seconds: std::f64::consts::PI,
                prefetched_restores: 9,
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
        assert!(decode(&words[..30]).is_none());
        assert!(decode(&words[..words.len() - 1]).is_none());
        let mut longer = words.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
    }
}

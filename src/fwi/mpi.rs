//! Shots over the ranks of an MPI job (feature `mpi`, through rsmpi over the system's MPI).
//!
//! Rank `r` of `R` runs the shots `i` with `i mod R = r` on its own devices
//! ([`gradient_on_devices`](super::gradient_on_devices)'s workers). Each shot's whole result
//! (misfit, gradient, traces, statistics, as exact bits) is **sent to rank 0 in shot order**,
//! and rank 0 adds them in shot order exactly as a single process does: the gradient and the
//! misfit are the same bits whatever the number of ranks or devices. Rank 0 holds its own
//! shots' results and one received result at a time; each rank holds its own shots' results
//! until they are sent. A reduction tree would move less but add in another order; a ring
//! passing the running sum in shot order would keep the bits and hold less (not built).
//!
//! Failures never hang the job: every rank reaches the same collectives in the same order,
//! and before the results move, all ranks agree whether every rank succeeded ([`agree`]). A
//! rank that failed returns its own error; the others return [`Error::RankFailed`] naming it.
//!
//! ```no_run
//! # use gpurevolve::acoustic::Problem;
//! # fn shots() -> (Vec<Problem>, Vec<Vec<f64>>) { unimplemented!() }
//! use gpurevolve::engine::RevolverOptions;
//! use gpurevolve::fwi::{Checkpointing, mpi::gradient_over_ranks};
//! use gpurevolve::gpu::Gpu;
//! let universe = mpi::initialize().expect("MPI initialises once");
//! let world = universe.world();
//! let (problems, observed) = shots(); // every rank builds all; each runs its share
//! let gpus = [Gpu::new()?];
//! let total = gradient_over_ranks(&world, &gpus, &problems, &observed,
//!     Checkpointing::Levels(40), RevolverOptions::default(), |_, _| {})?;
//! if let Some(g) = total {
//!     println!("rank 0: J = {}", g.misfit); // None on the other ranks
//! }
//! # Ok::<(), gpurevolve::Error>(())
//! ```

use mpi::Count;
use mpi::datatype::PartitionMut;
use mpi::traits::{Communicator, Destination, Root, Source};

use super::record::{decode, encode};
use super::{Checkpointing, FwiGradient, Journal, Survey, add_shot, empty_total};
use crate::acoustic::Problem;
use crate::engine::{Progress, ProgressReply, RevolverOptions};
use crate::error::{Error, Result};
use crate::gpu::Gpu;

/// The shots rank `rank` of `ranks` runs: `i mod ranks = rank`, in shot order. A rank beyond
/// the shots runs none.
///
/// ```
/// use gpurevolve::fwi::mpi::shots_of_rank;
/// assert_eq!(shots_of_rank(7, 1, 3), vec![1, 4]);
/// assert!(shots_of_rank(2, 2, 3).is_empty());
/// ```
pub fn shots_of_rank(shots: usize, rank: usize, ranks: usize) -> Vec<usize> {
    (0..shots).filter(|i| i % ranks.max(1) == rank).collect()
}

/// As [`gradient_on_devices`](super::gradient_on_devices), with the shots spread over the
/// ranks of `world` ([`shots_of_rank`]): every rank passes every shot's problem, and the
/// observed records of at least its own shots (the others may be empty). Rank 0 gets the
/// total, the same bits as one process computes; the other ranks get `None`.
///
/// # Errors
/// On every rank: the failing rank's own error there, [`Error::RankFailed`] elsewhere; as
/// [`gradient_on_devices`](super::gradient_on_devices) otherwise.
pub fn gradient_over_ranks<C: Communicator, R: ProgressReply>(
    world: &C,
    gpus: &[Gpu],
    shots: &[Problem],
    observed: &[Vec<f64>],
    checkpointing: Checkpointing,
    options: RevolverOptions,
    progress: impl Fn(usize, Progress) -> R + Sync,
) -> Result<Option<FwiGradient>> {
    gradient_over_ranks_journaled(
        world,
        gpus,
        shots,
        observed,
        checkpointing,
        options,
        None,
        progress,
    )
}

/// As [`gradient_over_ranks`], each rank keeping `journal` of its own shots (give each rank a
/// directory of its own, [`Journal::open`]): a rank records each of its shots as it
/// finishes, and reads back those its journal already holds, then sends them to rank 0 like
/// the others. A job killed part way and run again with the same ranks and journals ends
/// with the bits of an uninterrupted one.
///
/// # Errors
/// As [`gradient_over_ranks`]; [`Error::File`] when a record cannot be written.
#[allow(clippy::too_many_arguments)]
pub fn gradient_over_ranks_journaled<C: Communicator, R: ProgressReply>(
    world: &C,
    gpus: &[Gpu],
    shots: &[Problem],
    observed: &[Vec<f64>],
    checkpointing: Checkpointing,
    options: RevolverOptions,
    journal: Option<&Journal>,
    progress: impl Fn(usize, Progress) -> R + Sync,
) -> Result<Option<FwiGradient>> {
    let survey = Survey::new(shots, observed, checkpointing, options);
    // A bad survey fails on every rank alike; agreed all the same, so no rank waits alone.
    let survey = agree(world, survey)?;
    over_ranks(world, gpus, &survey, journal, progress)
}

/// `survey`'s shots over the ranks of `world`: rank 0 gets the total, the others `None`.
pub(crate) fn over_ranks<C: Communicator, R: ProgressReply>(
    world: &C,
    gpus: &[Gpu],
    survey: &Survey<'_>,
    journal: Option<&Journal>,
    progress: impl Fn(usize, Progress) -> R + Sync,
) -> Result<Option<FwiGradient>> {
    let shots = survey.shots;
    let (rank, ranks) = (world.rank() as usize, world.size() as usize);
    let mine = shots_of_rank(shots.len(), rank, ranks);
    let local = if mine.is_empty() {
        Ok(Vec::new())
    } else {
        super::run_or_read(gpus, survey, &mine, journal, progress)
    };
    let done = agree(world, local)?;
    let root = world.process_at_rank(0);
    if rank != 0 {
        // Each shot's result goes to rank 0 in shot order: messages between two ranks keep
        // their order, and rank 0 takes them in shot order, so none can overtake another.
        for shot in &done {
            root.send(&encode(shot)[..]);
        }
        return Ok(None);
    }
    // Rank 0 adds each shot as it comes, in shot order: besides its own shots it holds one
    // received result at a time.
    // A survey holds at least one shot (`Survey::new` and `GradientJob::new` check it).
    let first = shots.first().ok_or_else(|| lost(0))?;
    let mut total = empty_total(first, shots.len());
    let mut own = done.into_iter();
    for i in 0..shots.len() {
        let owner = i % ranks;
        let shot = if owner == 0 {
            own.next().ok_or_else(|| lost(i))?
        } else {
            let (words, _) = world.process_at_rank(owner as i32).receive_vec::<u64>();
            decode(&words).ok_or_else(|| lost(i))?
        };
        add_shot(&mut total, shot);
    }
    Ok(Some(total))
}

/// The error of a shot whose result did not arrive whole.
fn lost(i: usize) -> Error {
    Error::InvalidArgument {
        name: "shots",
        reason: format!("the result of shot {i} arrived incomplete from its rank"),
    }
}

/// Every rank's `local` outcome, agreed: `Ok` on every rank when every rank succeeded; when
/// any failed, an error on every rank (the failing rank's own error on the first failing
/// rank, [`Error::RankFailed`] naming it elsewhere). A collective: every rank must call it
/// at the same point. A caller with errors of its own can pass them as `RankFailed` with its
/// own rank: their message then travels bare.
///
/// # Errors
/// As above.
pub fn agree<C: Communicator, T>(world: &C, local: Result<T>) -> Result<T> {
    let message = match &local {
        Ok(_) => Vec::new(),
        // A rank's own failure wrapped as `RankFailed` travels as its bare message. Non-empty
        // even for an empty message: the length says whether the rank failed.
        Err(Error::RankFailed { message, .. }) => format!("{message} ").into_bytes(),
        Err(e) => format!("{e} ").into_bytes(),
    };
    let root = world.process_at_rank(0);
    // Rank 0 learns every rank's message, then tells everyone the first failure.
    let mut verdict = [0u64; 2]; // [failing rank + 1 or 0, message length]
    let mut text = Vec::new();
    let mine = [(world.rank() as usize, bytes_to_words(&message))];
    if let Some(all) = gather_indexed(world, world.size() as usize, &mine)?
        && let Some((failing, words)) = all.iter().enumerate().find(|(_, w)| !w.is_empty())
    {
        text = words_to_bytes(words);
        verdict = [failing as u64 + 1, text.len() as u64];
    }
    root.broadcast_into(&mut verdict[..]);
    if verdict[0] == 0 {
        return local;
    }
    text.resize(verdict[1] as usize, 0);
    root.broadcast_into(&mut text[..]);
    let failing = (verdict[0] - 1) as usize;
    match local {
        Err(e) if failing == world.rank() as usize => Err(e),
        _ => Err(Error::RankFailed {
            rank: failing,
            message: String::from_utf8_lossy(&text).trim_end().to_owned(),
        }),
    }
}

/// Gathers each rank's `(index, words)` pairs onto rank 0: there `Some` vector of `count`
/// entries, the words given for each index (empty where none were; for an index given twice,
/// the higher rank's), elsewhere `None`. Indices at or beyond `count` are dropped. A
/// collective.
///
/// # Errors
/// [`Error::InvalidArgument`] when a rank's message exceeds MPI's count range.
pub fn gather_indexed<C: Communicator>(
    world: &C,
    count: usize,
    mine: &[(usize, Vec<u64>)],
) -> Result<Option<Vec<Vec<u64>>>> {
    let mut flat = Vec::new();
    for (index, words) in mine {
        flat.extend([*index as u64, words.len() as u64]);
        flat.extend_from_slice(words);
    }
    let length = Count::try_from(flat.len()).map_err(|_| Error::InvalidArgument {
        name: "shots",
        reason: format!("{} words is more than one MPI message carries", flat.len()),
    })?;
    let root = world.process_at_rank(0);
    if world.rank() != 0 {
        root.gather_into(&length);
        root.gather_varcount_into(&flat[..]);
        return Ok(None);
    }
    let ranks = world.size() as usize;
    let mut lengths = vec![0 as Count; ranks];
    root.gather_into_root(&length, &mut lengths[..]);
    let displacements: Vec<Count> = lengths
        .iter()
        .scan(0, |at, &n| {
            let here = *at;
            *at += n;
            Some(here)
        })
        .collect();
    let mut all = vec![0u64; lengths.iter().map(|&n| n as usize).sum()];
    {
        let mut partition = PartitionMut::new(&mut all[..], &lengths[..], &displacements[..]);
        root.gather_varcount_into_root(&flat[..], &mut partition);
    }
    let mut out = vec![Vec::new(); count];
    for (&start, &n) in displacements.iter().zip(&lengths) {
        let mut part = &all[start as usize..(start + n) as usize];
        while let [index, len, rest @ ..] = part {
            let len = (*len as usize).min(rest.len());
            if let Some(slot) = out.get_mut(*index as usize) {
                *slot = rest[..len].to_vec();
            }
            part = &rest[len..];
        }
    }
    Ok(Some(out))
}

/// Bytes as 64-bit words: the length, then the bytes eight to a word (little-endian).
fn bytes_to_words(bytes: &[u8]) -> Vec<u64> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let mut words = vec![bytes.len() as u64];
    words.extend(bytes.chunks(8).map(|c| {
        let mut b = [0u8; 8];
        b[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(b)
    }));
    words
}

fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    let Some((&len, rest)) = words.split_first() else {
        return Vec::new();
    };
    let mut bytes: Vec<u8> = rest.iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes.truncate(len as usize);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_survive_their_words() {
        for text in ["", "x", "eight ch", "rank 2 failed: ünïcode"] {
            assert_eq!(
                words_to_bytes(&bytes_to_words(text.as_bytes())),
                text.as_bytes()
            );
        }
    }
}

//! The processes of the job: one without the `mpi` feature; the ranks of an MPI job with it
//! (`mpirun -n 4 target/release/examples/acoustic_adjoint ...`). Rank `r` runs the shots
//! `i mod R = r` ([`fwi::mpi::shots_of_rank`]); rank 0 gathers the results, sums them in shot
//! order (the same bits as one process) and writes every output.
//!
//! Every rank reaches the same collectives in the same order: each step that can fail on
//! one rank alone ends in [`Ranks::agree`], so a failure stops every rank with the failing
//! rank's message, and never hangs the job.

use gpurevolve::engine::{Progress, ProgressReply};
#[cfg(feature = "mpi")]
use gpurevolve::fwi::mpi as fwi_mpi;
use gpurevolve::fwi::{FwiGradient, Journal};
use gpurevolve::gpu::Gpu;
use gpurevolve::job::{GradientJob, JobPlan};

use super::err;

/// This process's place in the job.
pub struct Ranks {
    #[cfg(feature = "mpi")]
    world: mpi::topology::SimpleCommunicator,
    #[cfg(feature = "mpi")]
    _universe: mpi::environment::Universe,
}

impl Ranks {
    /// Joins the job (initialises MPI with the `mpi` feature).
    pub fn join() -> Result<Self, String> {
        #[cfg(feature = "mpi")]
        {
            let universe = mpi::initialize().ok_or("MPI was initialised twice")?;
            Ok(Ranks {
                world: universe.world(),
                _universe: universe,
            })
        }
        #[cfg(not(feature = "mpi"))]
        {
            // Started by mpirun without the feature, every process would run every shot and
            // write the same files: refuse. (OpenMPI, MPICH and PMIx launchers set these.)
            let launched = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
                .iter()
                .filter_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
                .max();
            if let Some(size) = launched.filter(|&n| n > 1) {
                return Err(format!(
                    "started as one of {size} MPI processes, but built without the mpi feature; \
                     rebuild with `cargo build --release --features mpi --example acoustic_adjoint`"
                ));
            }
            Ok(Ranks {})
        }
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        #[cfg(feature = "mpi")]
        {
            use mpi::traits::Communicator;
            self.world.rank() as usize
        }
        #[cfg(not(feature = "mpi"))]
        0
    }

    /// The number of processes.
    pub fn size(&self) -> usize {
        #[cfg(feature = "mpi")]
        {
            use mpi::traits::Communicator;
            self.world.size() as usize
        }
        #[cfg(not(feature = "mpi"))]
        1
    }

    /// Whether this process writes the outputs.
    pub fn is_root(&self) -> bool {
        self.rank() == 0
    }

    /// The shots this rank runs.
    pub fn shots(&self, shots: usize) -> Vec<usize> {
        #[cfg(feature = "mpi")]
        {
            fwi_mpi::shots_of_rank(shots, self.rank(), self.size())
        }
        #[cfg(not(feature = "mpi"))]
        (0..shots).collect()
    }

    /// `local`, agreed by every rank: an error everywhere if any rank failed.
    pub fn agree<T>(&self, local: Result<T, String>) -> Result<T, String> {
        #[cfg(feature = "mpi")]
        {
            let rank = self.rank();
            let local = local.map_err(|message| gpurevolve::Error::RankFailed { rank, message });
            fwi_mpi::agree(&self.world, local).map_err(|e| match e {
                // This rank's own failure: its own one-line message.
                gpurevolve::Error::RankFailed { rank: r, message } if r == rank => message,
                e => e.to_string(),
            })
        }
        #[cfg(not(feature = "mpi"))]
        local
    }

    /// Fails on every rank unless every rank was started with the same arguments (rank 0's
    /// are the reference).
    pub fn same_arguments(&self) -> Result<(), String> {
        #[cfg(feature = "mpi")]
        {
            use mpi::traits::{Communicator, Root};
            // FNV-1a of the arguments after the program name.
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for byte in std::env::args().skip(1).flat_map(|a| {
                let mut b = a.into_bytes();
                b.push(0);
                b
            }) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
            let mut reference = hash;
            self.world.process_at_rank(0).broadcast_into(&mut reference);
            self.agree(if reference == hash {
                Ok(())
            } else {
                Err(format!(
                    "rank {} was started with other arguments than rank 0; give every rank the same",
                    self.rank()
                ))
            })
        }
        #[cfg(not(feature = "mpi"))]
        Ok(())
    }

    /// The gradient over this job's ranks and this rank's devices: `Some` total on rank 0.
    /// Each rank keeps `journal` of its own finished shots, and reads back those it holds.
    pub fn gradient<R: ProgressReply>(
        &self,
        job: &GradientJob,
        plan: &JobPlan,
        gpus: &[Gpu],
        journal: &Journal,
        progress: impl Fn(usize, Progress) -> R + Sync,
    ) -> Result<Option<FwiGradient>, String> {
        #[cfg(feature = "mpi")]
        {
            job.run_over_ranks(&self.world, plan, gpus, Some(journal), progress)
                .map_err(err)
        }
        #[cfg(not(feature = "mpi"))]
        job.run(plan, gpus, Some(journal), progress)
            .map(Some)
            .map_err(err)
    }

    /// Each rank's vectors by index, gathered on rank 0 (`None` elsewhere).
    pub fn gather(
        &self,
        count: usize,
        mine: Vec<(usize, Vec<f64>)>,
    ) -> Result<Option<Vec<Vec<f64>>>, String> {
        #[cfg(feature = "mpi")]
        {
            let words: Vec<(usize, Vec<u64>)> = mine
                .into_iter()
                .map(|(i, v)| (i, v.into_iter().map(f64::to_bits).collect()))
                .collect();
            Ok(fwi_mpi::gather_indexed(&self.world, count, &words)
                .map_err(err)?
                .map(|all| {
                    all.into_iter()
                        .map(|w| w.into_iter().map(f64::from_bits).collect())
                        .collect()
                }))
        }
        #[cfg(not(feature = "mpi"))]
        {
            let mut all = vec![Vec::new(); count];
            for (i, v) in mine {
                if let Some(slot) = all.get_mut(i) {
                    *slot = v;
                }
            }
            Ok(Some(all))
        }
    }
}

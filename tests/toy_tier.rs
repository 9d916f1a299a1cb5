//! A memory tier is data: one type implementing `CheckpointTier`, added to a revolver with
//! `add_tier`, outside the crate. The toy here keeps checkpoints in host `Vec`s it reads back
//! synchronously (slow and simple: it drains the queue at every save), counts its copies and
//! sleeps a little on each, as a slow tier would; the gradient is the store-all gradient, bit
//! for bit.

mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use common::{bits, random_problem, store_all};
use gpurevolve::acoustic::AcousticOperator;
use gpurevolve::engine::{CheckpointTier, Revolver, RevolverOptions, TierIo, TierStats};
use gpurevolve::schedule::{Revolve, Tier};

/// Copies each side, seen from outside the revolver (which owns the tier).
#[derive(Default)]
struct Copies {
    out: Cell<u64>,
    back: Cell<u64>,
}

/// Checkpoints as bytes in host memory, copied with a delay.
struct SlowHost {
    held: Vec<Option<(u64, Vec<Vec<u8>>)>>,
    delay: Duration,
    copies: Rc<Copies>,
    stats: TierStats,
}

impl CheckpointTier for SlowHost {
    fn name(&self) -> &str {
        &self.stats.name
    }

    fn save(
        &mut self,
        io: &mut TierIo<'_, '_>,
        slot: usize,
        step: u64,
        levels: &[Rc<wgpu::Buffer>],
        demoted: bool,
    ) -> gpurevolve::Result<()> {
        // The steps that wrote these levels must have run: submit them, then read back (the
        // read's copy is submitted after them, and waited for).
        io.submit()?;
        let bytes = levels
            .iter()
            .map(|level| io.gpu().read_back::<u8>(level))
            .collect::<gpurevolve::Result<Vec<_>>>()?;
        std::thread::sleep(self.delay);
        let size: u64 = bytes.iter().map(|b| b.len() as u64).sum();
        self.stats.bytes_out += size;
        self.copies.out.set(self.copies.out.get() + 1);
        if demoted {
            self.stats.demotions += 1;
        } else {
            self.stats.saves += 1;
        }
        if self.held.len() <= slot {
            self.held.resize_with(slot + 1, || None);
        }
        self.held[slot] = Some((step, bytes));
        Ok(())
    }

    fn restore(
        &mut self,
        io: &mut TierIo<'_, '_>,
        slot: usize,
        step: u64,
        into: &[Rc<wgpu::Buffer>],
    ) -> gpurevolve::Result<()> {
        let Some(Some((held, bytes))) = self.held.get(slot) else {
            panic!("slot {slot} is not held");
        };
        assert_eq!(*held, step, "the revolver restores what it saved");
        std::thread::sleep(self.delay);
        self.stats.bytes_in += io.write_levels(into, bytes)?;
        self.stats.restores += 1;
        self.copies.back.set(self.copies.back.get() + 1);
        Ok(())
    }

    fn free(&mut self, slot: usize, _step: u64) {
        self.held[slot] = None;
    }

    fn held_bytes(&self) -> u64 {
        let state = |(_, b): &(u64, Vec<Vec<u8>>)| b.iter().map(|l| l.len() as u64).sum::<u64>();
        self.held.iter().flatten().map(state).sum()
    }

    fn stats(&self) -> TierStats {
        self.stats.clone()
    }
}

#[test]
fn a_tier_defined_outside_the_crate_gives_the_store_all_bits() {
    let Some(gpu) = common::gpu() else { return };
    let steps = 40;
    let problem = random_problem(&[30, 26], 4, 4, steps + 1, 7);
    let observed = common::observed(&problem, 0.7);
    let reference = store_all(&gpu, &problem, &observed);
    for on_toy in [1, 3] {
        let operator = AcousticOperator::new(&gpu, &problem, &observed).unwrap();
        let schedule = Revolve::new(steps as u64, 4).unwrap();
        let mut revolver =
            Revolver::new(&gpu, operator, schedule, RevolverOptions::default()).unwrap();
        let copies = Rc::new(Copies::default());
        let toy = revolver.add_tier(Box::new(SlowHost {
            held: Vec::new(),
            delay: Duration::from_millis(1),
            copies: Rc::clone(&copies),
            stats: TierStats {
                name: "slow host".into(),
                ..TierStats::default()
            },
        }));
        assert_eq!(toy, Tier(2), "after the device and host memory");
        // The `on_toy` highest slots on the toy tier, one on the host tier, the rest on the GPU.
        let slots = revolver.tiers().len();
        let placement: Vec<Tier> = (0..slots)
            .map(|slot| match slots - slot {
                n if n <= on_toy => toy,
                n if n == on_toy + 1 => Tier::HOST,
                _ => Tier::DEVICE,
            })
            .collect();
        let mut revolver = revolver.with_tiers(placement).unwrap();
        let stats = revolver.apply_reverse().unwrap();
        let info = revolver.operator().finish().unwrap();
        let label = format!("{on_toy} slots on the toy tier");
        assert_eq!(bits(&info.gradient), bits(&reference.gradient), "{label}");
        assert_eq!(info.misfit.to_bits(), reference.misfit.to_bits(), "{label}");
        assert!(copies.out.get() > 0 && copies.back.get() > 0, "{label}");
        // Its own counts are its entry in the run's stats, by its tier number and its name.
        let mine = stats.tier(toy);
        assert_eq!(mine.name, "slow host", "{label}");
        assert_eq!(
            (mine.saves, mine.restores),
            (copies.out.get(), copies.back.get())
        );
        assert_eq!(
            mine.bytes_out,
            mine.saves * 2 * problem.level_bytes(),
            "{label}"
        );
        assert_eq!(
            mine.bytes_in,
            mine.restores * 2 * problem.level_bytes(),
            "{label}"
        );
        assert!(mine.peak_bytes > 0, "{label}");
        assert_eq!(stats.tiers.len(), 3, "device, host, the toy: {stats:?}");
        assert_eq!(stats.total(|t| t.saves), stats.saves, "{label}");
        assert_eq!(stats.total(|t| t.restores), stats.restores, "{label}");
    }
}

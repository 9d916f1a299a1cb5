//! A schedule optimal in time levels, for adjoints that need only their own state.
//!
//! **The cost model.** The adjoint of step `k` needs state `k` live and no forward step
//! ([`Operator::adjoint_needs_next`](crate::engine::Operator::adjoint_needs_next) false), so
//! a schedule costs its advances, plus one step that records the last step's outputs.
//!
//! **The memory model.** A state is `q` consecutive time levels, `(u_k, …, u_{k−q+1})` (`q = 2`
//! for a leapfrog), and a store that keeps level buffers rather than copies lets saved states
//! share them: holding states `k` and `k + 1` costs `q + 1` levels, not `2q`. Memory is a
//! number of levels, state 0's included.
//!
//! **The programme.** `F(m, l)`: the fewest advances that reverse the `m` steps above a held
//! state with `l` levels free. Either advance to the last of them and reverse it
//! (`m − 1 + F(m − 1, l)`), or advance `i < m − 1` steps, save there (`min(i, q)` new levels,
//! as the saved state shares `q − i` with the held one when `i < q`), reverse the right part
//! and then the left:
//!
//! ```text
//! F(1, l) = 0
//! F(m, l) = min( m − 1 + F(m − 1, l),  min_{i : min(i, q) ≤ l}  i + F(m − i, l − min(i, q)) + F(i, l) )
//! ```
//!
//! With every save charged `q` this is Revolve's recursion (`F = p(n, s)` for `2s − 2` free
//! levels); charging `i < q` less is what keeps runs of consecutive levels near the end of
//! each segment. Within the schedules that save and restore whole states, the programme is
//! optimal: the tests check it against an exhaustive search over every sequence of moves
//! (advance one step, save, free, restore, reverse) for small `n`.
//!
//! **Planning time.** A plain programme is `O(n²·l)`. The best split points of consecutive
//! `m` overlap (the set of minimisers for `m + 1` meets the one for `m`, widened by one), so
//! the search for `i ≥ q` runs over a window of [`WINDOW`] around the previous row's
//! minimisers: about 15 candidates a cell instead of `m`. No proof of this overlap is known
//! here; the unit tests check the windowed table against the exhaustive one, cell by cell
//! (every `m ≤ 1500` with up to 40 free levels, every `m ≤ 300` with up to 90, for one to three
//! levels a state), and an ignored test does so for 10⁴ steps and 200 levels.

use std::sync::Arc;

use super::action::{Action, LevelBudget, Planned, Schedule};
use super::joins::{self, JoinedPlan};
use super::simulate::planned;
use super::walk::{Move, Walk};
use crate::error::{Error, Result};

/// The most cells (`steps × free levels`) a plan may tabulate: 8 M cells, 96 MiB while
/// planning. Beyond, [`LevelOptimal::new`] refuses with [`Error::PlanTooLarge`] and a caller
/// falls back to [`Revolve`](super::Revolve).
pub const MAX_PLAN_CELLS: u64 = 1 << 23;

/// The most split points a plan may evaluate: 537 M, under a second on a 2-core machine
/// (about 1.6 ns each). The window's width depends on the case (10⁴ steps × 200 levels
/// evaluate 215 M in 0.33 s, 10⁴ × 400 388 M; 10⁵ × 40 more than this), so planning counts as
/// it goes and stops with [`Error::PlanTooLarge`] here.
pub const MAX_PLAN_EVALUATIONS: u64 = 1 << 29;

/// The most cells (`steps × free levels`) a plan [with joins](LevelOptimal::with_joins) may
/// tabulate: 1 M cells, 72 MiB of tables while planning from rest.
const MAX_JOIN_PLAN_CELLS: u64 = 1 << 20;

/// The most split points a plan with joins may evaluate, about half a second: its window is
/// wider at scale than the whole-state programme's, and a plan that would pass this falls back
/// to the whole-state schedule, so the time spent before is lost.
const MAX_JOIN_PLAN_EVALUATIONS: u64 = 1 << 27;

/// Split points searched beyond the previous row's minimisers, on each side.
const WINDOW: u64 = 2;

/// The planned split of every subproblem: `choice[l × rows + m]` is how far to advance from a
/// held state with `m` steps above it and `l` levels free.
#[derive(Debug)]
struct Table {
    rows: usize,
    choice: Vec<u32>,
    /// For a state 0 that costs nothing (rebuilt, not held): the splits above it, by `m`,
    /// with the whole budget free; every save above it costs a whole state.
    from_rest: Option<Vec<u32>>,
    /// The schedule's advances.
    advances: u64,
}

/// How the programme searches split points `i ≥ q`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Search {
    /// A window around the previous row's minimisers.
    Window,
    /// Every split point (tests only: `O(n²·l)`).
    #[cfg_attr(not(test), allow(dead_code))]
    Exhaustive,
}

impl Search {
    /// The split points to try for `m` steps, from `floor` up to `m − 2`: all of them, or a
    /// window around the previous row's minimisers `lo ..= hi`.
    fn range(self, lo: u64, hi: u64, floor: u64, m: u64) -> (u64, u64) {
        match self {
            Search::Window => (
                lo.saturating_sub(WINDOW).max(floor),
                (hi + WINDOW).min(m - 2),
            ),
            Search::Exhaustive => (floor, m - 2),
        }
    }
}

/// The least `i + right[m − i] + left[i]` over `i` in `start ..= stop`, with its first and last
/// minimisers (the next row's window).
fn best_split(right: &[u64], left: &[u64], m: u64, start: u64, stop: u64) -> (u64, u64, u64) {
    let mut best = u64::MAX;
    let (mut first, mut last) = (start, start);
    for i in start..=stop {
        let v = i + right[(m - i) as usize] + left[i as usize];
        if v < best {
            (best, first, last) = (v, i, i);
        } else if v == best {
            last = i;
        }
    }
    (best, first, last)
}

/// Fills `F` and the choices for `steps` steps, `q` levels a state and `free` free levels.
///
/// Stored by free levels, then steps: `F(·, l)` reads `F(·, l)` below `m` and `F(·, l − c)`
/// below `m`, so with `l` outermost both are contiguous runs of memory, read in order.
/// `None` when it would evaluate more than `budget` split points.
fn solve(steps: u64, q: u64, free: u64, search: Search, budget: u64) -> Option<(Vec<u64>, Table)> {
    let mut evaluations = 0u64;
    let rows = steps as usize + 1;
    let mut f = vec![0u64; rows * (free as usize + 1)];
    let mut choice = vec![0u32; f.len()];
    for l in 0..=free {
        let (lower, rest) = f.split_at_mut(l as usize * rows);
        let current = &mut rest[..rows];
        // F(·, l − c) for a save of c levels (c ≤ l).
        let below = |c: u64| &lower[(l - c) as usize * rows..][..rows];
        // The previous row's minimisers among split points i ≥ q.
        let (mut lo, mut hi) = (q, q);
        for m in 2..=steps {
            // Advance to the last step and reverse it: no level needed.
            let mut best = (m - 1) + current[m as usize - 1];
            let mut arg = m - 1;
            // Short advances: the saved state shares q − i levels with the held one.
            for i in 1..q.min(m - 1).min(l + 1) {
                let v = i + below(i)[(m - i) as usize] + current[i as usize];
                if v < best {
                    (best, arg) = (v, i);
                }
            }
            // Long advances: a whole state saved.
            if l >= q && m >= q + 2 {
                let (start, stop) = search.range(lo, hi, q, m);
                evaluations += stop + 1 - start;
                if evaluations > budget {
                    return None;
                }
                let (row_best, first, last) = best_split(below(q), current, m, start, stop);
                (lo, hi) = (first, last);
                if row_best < best {
                    (best, arg) = (row_best, first);
                }
            }
            current[m as usize] = best;
            choice[l as usize * rows + m as usize] = arg as u32;
        }
    }
    let advances = f[free as usize * rows + steps as usize];
    log::debug!("level plan: {evaluations} split points evaluated");
    Some((
        f,
        Table {
            rows,
            choice,
            from_rest: None,
            advances,
        },
    ))
}

/// The row above a state 0 that holds no level: `F₀(m) = min(m − 1 + F₀(m − 1),
/// minᵢ i + F(m − i, free − q) + F₀(i))`, every save charged `q`, searched like [`solve`]'s
/// rows. Returns `F₀` and its choices.
fn solve_from_rest(
    f: &[u64],
    steps: u64,
    q: u64,
    free: u64,
    search: Search,
) -> (Vec<u64>, Vec<u32>) {
    let rows = steps as usize + 1;
    let mut f0 = vec![0u64; rows];
    let mut choice = vec![0u32; rows];
    let (mut lo, mut hi) = (1u64, 1u64);
    for m in 2..=steps {
        let mut best = (m - 1) + f0[m as usize - 1];
        let mut arg = m - 1;
        if free >= q && m >= 3 {
            let right = &f[(free - q) as usize * rows..][..rows];
            let (start, stop) = search.range(lo, hi, 1, m);
            let (row_best, first, last) = best_split(right, &f0, m, start, stop);
            (lo, hi) = (first, last);
            if row_best < best {
                (best, arg) = (row_best, first);
            }
        }
        f0[m as usize] = best;
        choice[m as usize] = arg as u32;
    }
    (f0, choice)
}

/// The most free levels a plan for `steps` steps can use: every state `1 … n − 2` saved at
/// once, `n − 2` levels and `q − 1` more for the first of them (bounded above for any `q`).
fn useful_levels(steps: u64, q: u64) -> u64 {
    steps.saturating_sub(2).saturating_add(q)
}

/// The schedule with the fewest forward steps for an adjoint that needs only its state, when
/// memory is a budget of time levels that consecutive saved states share.
///
/// For the leapfrog's two-level states it reverses `n = 100` steps within the memory of 10
/// snapshots (20 levels) in 186 advances, 187 forward steps in all with the recording step:
/// Revolve's schedule costs 223 with the same adjoint, 322 as Revolve counts.
///
/// ```
/// use gpurevolve::schedule::{simulate, LevelOptimal, Revolve};
/// let levels = simulate(LevelOptimal::new(100, 20, 2)?)?;
/// let revolve = simulate(Revolve::new(100, 10)?)?;
/// assert_eq!(levels.state_adjoint_total_forward(), 187);
/// assert_eq!(revolve.state_adjoint_total_forward(), 223);
/// assert!(levels.peak_levels <= 20);
/// # Ok::<(), gpurevolve::Error>(())
/// ```
///
/// The schedule is valid for any operator; it is optimal for a state-only adjoint. With an
/// adjoint that needs `u_{k+1}` every reverse runs a forward step more, as for Revolve, and
/// the engine counts that ([`Revolver::planned_forward_steps`](crate::engine::Revolver::planned_forward_steps)).
/// Slots are a stack, as in [`Revolve`](super::Revolve): the slot of a checkpoint is its depth
/// (with [joins](LevelOptimal::with_joins), the lowest free slot: a held top outlives the
/// part above it).
#[derive(Clone, Debug)]
pub struct LevelOptimal {
    steps: u64,
    levels: u64,
    per_state: u64,
    initial_free: bool,
    table: Arc<Table>,
    /// Held checkpoints with the levels free above each.
    walk: Walk<u64>,
    /// The schedule with joins, when [`with_joins`](Self::with_joins) planned one, and the
    /// next of its actions.
    joined: Option<(Arc<JoinedPlan>, usize)>,
}

impl LevelOptimal {
    /// The schedule for `steps` steps within `levels` time levels of checkpoint memory (state
    /// 0's included), for states of `per_state` levels each.
    ///
    /// # Errors
    /// [`Error::ZeroSteps`]; [`Error::InvalidArgument`] for `per_state = 0`;
    /// [`Error::LevelBudget`] when `levels` holds not even one state;
    /// [`Error::PlanTooLarge`] when the plan would tabulate more than [`MAX_PLAN_CELLS`]
    /// cells (plan with [`Revolve`](super::Revolve) instead).
    pub fn new(steps: u64, levels: u64, per_state: u64) -> Result<Self> {
        Self::plan(steps, levels, per_state, false)
    }

    /// As [`new`](Self::new), for an operator that
    /// [starts at rest](crate::engine::Operator::starts_at_rest): the engine rebuilds state 0
    /// instead of holding it, so all `levels` go to the other states. The engine refuses this
    /// schedule for an operator that does not start at rest.
    ///
    /// ```
    /// use gpurevolve::schedule::{simulate, LevelOptimal};
    /// let held = simulate(LevelOptimal::new(1000, 20, 2)?)?;
    /// let rest = simulate(LevelOptimal::from_rest(1000, 20, 2)?)?;
    /// assert!(rest.advances < held.advances);
    /// assert!(rest.peak_levels <= 20); // state 0 not counted
    /// # Ok::<(), gpurevolve::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`new`](Self::new), except that any budget, even 0 levels, can reverse the steps.
    pub fn from_rest(steps: u64, levels: u64, per_state: u64) -> Result<Self> {
        Self::plan(steps, levels, per_state, true)
    }

    fn plan(steps: u64, levels: u64, per_state: u64, initial_free: bool) -> Result<Self> {
        if steps == 0 {
            return Err(Error::ZeroSteps);
        }
        if per_state == 0 {
            return Err(Error::InvalidArgument {
                name: "per_state",
                reason: "a state is at least one time level".into(),
            });
        }
        if levels < per_state && !initial_free {
            return Err(Error::LevelBudget {
                levels,
                needed: per_state,
            });
        }
        let held_initial = if initial_free { 0 } else { per_state };
        // Every state 1 … n − 2 saved at once holds at most n − 3 + q levels: more are never
        // used.
        let free = (levels - held_initial).min(useful_levels(steps, per_state));
        let cells = steps
            .saturating_add(1)
            .saturating_mul(free.saturating_add(1));
        if cells > MAX_PLAN_CELLS {
            return Err(Error::PlanTooLarge {
                steps,
                levels,
                why: format!("a table of {cells} cells, above {MAX_PLAN_CELLS}"),
            });
        }
        let planned = solve(steps, per_state, free, Search::Window, MAX_PLAN_EVALUATIONS);
        let Some((f, mut table)) = planned else {
            return Err(Error::PlanTooLarge {
                steps,
                levels,
                why: format!("more than {MAX_PLAN_EVALUATIONS} split points to evaluate"),
            });
        };
        if initial_free {
            let (f0, choice) = solve_from_rest(&f, steps, per_state, free, Search::Window);
            table.advances = f0[steps as usize];
            table.from_rest = Some(choice);
        }
        log::debug!(
            "level plan: {steps} steps, {levels} levels of {per_state} a state: {} advances",
            table.advances
        );
        Ok(Self {
            steps,
            levels,
            per_state,
            initial_free,
            table: Arc::new(table),
            walk: Walk::new(steps, 0),
            joined: None,
        })
    }

    /// The same budget, planned with one more move: [`Action::Join`], which makes state `k`
    /// live right after the adjoint of step `k + 1` from the levels still in the working
    /// buffers and one level of a held state (no step run, the live levels not copied).
    /// Exhaustive searches over every sequence of engine moves agree with this plan for small
    /// `n`; at scale it saves a few percent of the advances:
    ///
    /// ```
    /// use gpurevolve::schedule::{simulate, LevelOptimal};
    /// let whole = LevelOptimal::new(1000, 20, 2)?;
    /// let joined = whole.clone().with_joins();
    /// assert!(joined.joins());
    /// assert!(joined.advances() < whole.advances());
    /// let stats = simulate(joined)?; // valid, within 20 levels
    /// assert!(stats.joins > 0 && stats.peak_levels <= 20);
    /// # Ok::<(), gpurevolve::Error>(())
    /// ```
    ///
    /// Only a backend whose states are level buffers can join (the GPU backend); the engine
    /// refuses the schedule for any other. Planning searches a window of split points, as
    /// [`new`](Self::new) does, over three tables instead of one, and keeps every action:
    /// past 1 M table cells or 134 M split points (about half a second; 2 000 steps × 40
    /// levels plan in 0.1 s, 10⁴ × 100 is beyond) this keeps the whole-state schedule
    /// (logged), as it does for states of one level, which share nothing to join, and for a
    /// run too short to join anything. Call it on a fresh plan: the schedule with joins starts
    /// from its first action whatever was read of this one.
    #[must_use]
    pub fn with_joins(mut self) -> Self {
        if self.per_state < 2 || self.joined.is_some() {
            return self;
        }
        let free = self.free_levels();
        // Six tables where the whole-state programme has two, and the actions kept whole:
        // bounded tighter (at most 72 MiB of tables, and about three actions a step).
        let cells = (self.steps + 1).saturating_mul(free + 1);
        if cells > MAX_JOIN_PLAN_CELLS {
            log::info!(
                "level plan for {} steps and {} levels: {cells} cells are too many to plan with joins (at most {MAX_JOIN_PLAN_CELLS}), planned without",
                self.steps,
                self.levels
            );
            return self;
        }
        match joins::plan(
            self.steps,
            self.per_state,
            free,
            self.initial_free,
            MAX_JOIN_PLAN_EVALUATIONS,
        ) {
            // Too short to join anything (a step or two): the whole-state schedule, which any
            // backend runs.
            Some(plan)
                if !plan
                    .actions
                    .iter()
                    .any(|a| matches!(a, Action::Join { .. })) => {}
            // The whole-state schedules are among the joining ones, so the plan is never worse;
            // its windowed search is checked, not proved, so that is checked here too.
            Some(plan) if plan.advances <= self.table.advances => {
                log::debug!(
                    "level plan with joins: {} advances against {} without",
                    plan.advances,
                    self.table.advances
                );
                self.joined = Some((Arc::new(plan), 0));
            }
            Some(plan) => log::warn!(
                "level plan with joins: {} advances, more than the {} without: planned without",
                plan.advances,
                self.table.advances
            ),
            None => log::info!(
                "level plan for {} steps and {} levels: too large to plan with joins, planned without",
                self.steps,
                self.levels
            ),
        }
        self
    }

    /// Whether the schedule joins states ([`with_joins`](Self::with_joins)).
    pub fn joins(&self) -> bool {
        self.joined.is_some()
    }

    /// The budget in time levels.
    pub fn levels(&self) -> u64 {
        self.levels
    }

    /// Time levels in one state.
    pub fn levels_per_state(&self) -> u64 {
        self.per_state
    }

    /// Forward steps the schedule advances (without the recording step of a state-only
    /// adjoint): the programme's optimum.
    pub fn advances(&self) -> u64 {
        match &self.joined {
            Some((plan, _)) => plan.advances,
            None => self.table.advances,
        }
    }

    fn free_levels(&self) -> u64 {
        let held_initial = if self.initial_free { 0 } else { self.per_state };
        (self.levels - held_initial).min(useful_levels(self.steps, self.per_state))
    }

    /// Whether state 0 is left out of the budget ([`from_rest`](Self::from_rest)).
    pub fn initial_free(&self) -> bool {
        self.initial_free
    }
}

impl Iterator for LevelOptimal {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        if let Some((plan, next)) = self.joined.as_mut() {
            let action = plan.actions.get(*next).copied();
            *next += 1;
            return action;
        }
        let (table, per_state) = (&self.table, self.per_state);
        let (initial_free, free_levels) = (self.initial_free, self.free_levels());
        self.walk
            .next(|stack, live, end| match stack.last().copied() {
                Some((held, free)) if held == live => {
                    let m = end - live;
                    let i = match &table.from_rest {
                        Some(row) if held == 0 => row[m as usize],
                        _ => table.choice[free as usize * table.rows + m as usize],
                    };
                    Move::Advance(live + u64::from(i))
                }
                // A split point just reached (or state 0): save it, charging the levels it does
                // not share with the checkpoint below.
                top => Move::Save(match top {
                    // Above a state 0 that holds nothing, a save shares no level.
                    Some((0, free)) if initial_free => free - per_state,
                    Some((held, free)) => free - (live - held).min(per_state),
                    None => free_levels,
                }),
            })
    }
}

impl Schedule for LevelOptimal {
    fn steps(&self) -> u64 {
        self.steps
    }

    fn slot_capacity(&self) -> usize {
        if let Some((plan, _)) = &self.joined {
            return plan.slots;
        }
        // State 0, then a level a save at least; at most states 0 … n − 2 are saved. Fits: the
        // table did.
        (1 + self.free_levels()).min(self.steps - 1) as usize
    }

    fn level_budget(&self) -> Option<LevelBudget> {
        Some(LevelBudget {
            per_state: self.per_state,
            levels: self.levels,
            initial_free: self.initial_free,
            joins: self.joined.is_some(),
        })
    }

    /// Replays a copy of the schedule (it is valid by construction; the replay checks it).
    fn planned(&self) -> Result<Option<Planned>> {
        planned(self.clone()).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The windowed programme equals the exhaustive one in every cell.
    #[test]
    fn the_window_finds_every_optimum() {
        for q in 1..=3 {
            for (steps, free) in [(1500, 40), (600, 12), (300, 90), (120, 119)] {
                let (exact, _) = solve(steps, q, free, Search::Exhaustive, u64::MAX).unwrap();
                let (windowed, _) = solve(steps, q, free, Search::Window, u64::MAX).unwrap();
                let differ = exact.iter().zip(&windowed).filter(|(a, b)| a != b).count();
                assert_eq!(differ, 0, "q = {q}, {steps} steps, {free} free levels");
                let (exact0, _) = solve_from_rest(&exact, steps, q, free, Search::Exhaustive);
                let (windowed0, _) = solve_from_rest(&exact, steps, q, free, Search::Window);
                assert!(
                    exact0 == windowed0,
                    "from rest: q = {q}, {steps} steps, {free} free"
                );
            }
        }
    }

    /// The target size (10⁴ steps, 200 levels) against the exhaustive programme: minutes in
    /// a debug build, so run on demand (`cargo test --release --lib -- --ignored window`).
    #[test]
    #[ignore = "exhaustive O(n²·l) programme: about 20 s in release"]
    fn the_window_finds_every_optimum_at_ten_thousand_steps() {
        let (exact, _) = solve(10_000, 2, 198, Search::Exhaustive, u64::MAX).unwrap();
        let (windowed, _) = solve(10_000, 2, 198, Search::Window, u64::MAX).unwrap();
        assert!(exact == windowed);
    }

    /// With one level a state, every save costs one level: Revolve with that many snapshots.
    #[test]
    fn one_level_a_state_is_revolve() {
        for steps in [2u64, 3, 10, 57, 200] {
            for levels in 1..=12u64.min(steps) {
                let plan = LevelOptimal::new(steps, levels, 1).unwrap();
                let p = crate::schedule::min_advances(steps, levels).unwrap();
                assert_eq!(plan.advances(), p, "({steps}, {levels})");
            }
        }
    }
}

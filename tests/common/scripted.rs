//! A schedule read from a list of actions: for schedules no planner makes, wrong ones
//! included. No GPU needed.

/// A schedule read from a list of actions (for `steps` steps over `slots` slots): for
/// schedules no planner makes, wrong ones included.
#[allow(dead_code)]
#[derive(Clone)]
pub struct Scripted(
    pub std::vec::IntoIter<gpurevolve::schedule::Action>,
    pub u64,
    pub usize,
);

impl Iterator for Scripted {
    type Item = gpurevolve::schedule::Action;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl gpurevolve::schedule::Schedule for Scripted {
    fn steps(&self) -> u64 {
        self.1
    }
    fn slot_capacity(&self) -> usize {
        self.2
    }
}

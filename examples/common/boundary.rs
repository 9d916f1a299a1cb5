//! The absorbing layer as a command-line choice, for the examples that simulate waves.

use gpurevolve::acoustic::BoundaryKind;

/// `--boundary cpml|sponge`: clap's view of [`BoundaryKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BoundaryArg {
    /// Convolutional PML: −45 dB of echo at 20 cells; memory fields in the layer.
    Cpml,
    /// Tapered sponge: no extra memory; −14 dB of echo at 20 cells.
    Sponge,
}

impl BoundaryArg {
    /// The library's name for it.
    pub fn kind(self) -> BoundaryKind {
        match self {
            Self::Cpml => BoundaryKind::Cpml,
            Self::Sponge => BoundaryKind::Sponge,
        }
    }
}

use thiserror::Error;

/// Everything that can go wrong in a cellino kernel.
#[derive(Debug, Error)]
pub enum KernelError {
    #[error("cannot resample an empty grid: input {input:?}, output {output:?}")]
    EmptyGrid { input: (usize, usize), output: (usize, usize) },
    #[error("resampler was built for a {expected:?} grid but got {found:?}")]
    GridShape { expected: (usize, usize), found: (usize, usize) },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

use thiserror::Error;

/// Everything that can go wrong in a cellino kernel.
///
/// The tensor ops return `candle_core::Result` so that they compose with candle code; their
/// shape and dtype problems are these variants wrapped in `candle_core::Error::Wrapped`, with the
/// op name and the offending shapes in the message.
#[derive(Debug, Error)]
pub enum KernelError {
    #[error("cannot resample an empty grid: input {input:?}, output {output:?}")]
    EmptyGrid { input: (usize, usize), output: (usize, usize) },
    #[error("resampler was built for a {expected:?} grid but got {found:?}")]
    GridShape { expected: (usize, usize), found: (usize, usize) },
    #[error("{op}: {details}")]
    Shape { op: &'static str, details: String },
    #[error("{op}: unsupported dtype {dtype:?}")]
    DType { op: &'static str, dtype: candle_core::DType },
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl KernelError {
    /// A shape error for `op`, as a candle error.
    pub(crate) fn shape(op: &'static str, details: impl Into<String>) -> candle_core::Error {
        candle_core::Error::wrap(KernelError::Shape { op, details: details.into() })
    }

    /// A dtype error for `op`, as a candle error.
    pub(crate) fn dtype(op: &'static str, dtype: candle_core::DType) -> candle_core::Error {
        candle_core::Error::wrap(KernelError::DType { op, dtype })
    }
}

use thiserror::Error;

/// Everything that can go wrong when computing an evaluation metric.
///
/// Every variant names the offending input (`what`) and carries the shapes, lengths,
/// positions or values needed to find the problem; metric functions never panic on
/// user input.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// An input has the wrong number of elements.
    #[error("{what} has {actual} elements, expected {expected}")]
    LengthMismatch { what: &'static str, expected: usize, actual: usize },
    /// A flat row-major matrix whose length is not a multiple of its row width.
    #[error("{what} has {len} elements, which is not a whole number of rows of {row_len}")]
    NotAMatrix { what: &'static str, len: usize, row_len: usize },
    /// No samples, no classes, no labels, or an empty label subset.
    #[error("empty input: {what}")]
    Empty { what: &'static str },
    /// A class index outside `0..n_classes` (`index` is its position in `what`).
    #[error("{what}[{index}] = {label} is out of range for {n_classes} classes")]
    LabelOutOfRange { what: &'static str, index: usize, label: usize, n_classes: usize },
    /// So many classes that the `n_classes × n_classes` confusion matrix cannot exist.
    #[error("{n_classes} classes: the confusion matrix would not fit in memory")]
    TooManyClasses { n_classes: usize },
    /// A NaN or infinite score, at (`row`, `col`) of the (samples × columns) score matrix.
    #[error("{what} has the non-finite value {value} at row {row}, column {col}")]
    NonFiniteScore { what: &'static str, row: usize, col: usize, value: f64 },
    /// A binary (multi-hot) target that is neither 0 nor 1.
    #[error("{what} has the value {value} at row {row}, column {col}; expected 0 or 1")]
    InvalidTarget { what: &'static str, row: usize, col: usize, value: u8 },
}

/// Result alias of this crate.
pub type Result<T, E = MetricsError> = std::result::Result<T, E>;

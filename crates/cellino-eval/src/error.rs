use thiserror::Error;

use crate::data::Task;

/// Everything that can go wrong in this crate: metrics, kNN, the linear probe.
///
/// Every variant names the offending input (`what`) and carries the shapes, lengths,
/// positions or values needed to find the problem; no function of this crate panics on
/// user input.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EvalError {
    /// An input has the wrong number of elements.
    #[error("{what} has {actual} elements, expected {expected}")]
    LengthMismatch { what: &'static str, expected: usize, actual: usize },
    /// A flat row-major matrix whose length is not a multiple of its row width.
    #[error("{what} has {len} elements, which is not a whole number of rows of {row_len}")]
    NotAMatrix { what: &'static str, len: usize, row_len: usize },
    /// No samples, no classes, no labels, no feature columns, or an empty label subset.
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
    /// A NaN or infinite feature value, at (`row`, `col`) of the (samples × dim) matrix.
    #[error("{what} has the non-finite value {value} at row {row}, column {col}")]
    NonFiniteFeature { what: &'static str, row: usize, col: usize, value: f64 },
    /// Two inputs that must agree do not: feature dimensions, or the class (label) counts,
    /// of two splits or of a split and a classifier.
    #[error("{what}: expected {expected}, got {actual}")]
    Mismatch { what: &'static str, expected: usize, actual: usize },
    /// Two splits of different tasks (multi-class vs multi-label).
    #[error("{what}: expected {expected:?} targets, got {actual:?}")]
    TaskMismatch { what: &'static str, expected: Task, actual: Task },
    /// An index (a batch row, a classifier) outside `0..len`; `position` is where it
    /// occurs in `what`.
    #[error("{what}[{position}] = {index} is out of range 0..{len}")]
    IndexOutOfRange { what: &'static str, position: usize, index: usize, len: usize },
    /// A split (or a configuration that needs more rows, e.g. `k` neighbours) with too few
    /// samples.
    #[error("{what} has {n} samples, at least {min} are needed")]
    TooFewSamples { what: &'static str, n: usize, min: usize },
    /// A configuration value that cannot work (k = 0, temperature ≤ 0, a negative or
    /// non-finite learning rate, an empty grid, a validation fraction outside (0, 1)…).
    #[error("invalid {what}: {reason}")]
    InvalidConfig { what: &'static str, reason: String },
    /// A channel name that the feature layout does not have (channel-subset sweep).
    #[error("unknown channel {name:?}; the features have the channels {known:?}")]
    UnknownChannel { name: String, known: Vec<String> },
    /// Per-channel column blocks were asked of features that are not Bag of Channels.
    #[error("{what}: the features are not Bag of Channels (no per-channel column blocks)")]
    NotBagOfChannels { what: &'static str },
    /// Every classifier of the linear-probe grid produced non-finite scores.
    #[error("all {n_classifiers} linear classifiers diverged (non-finite scores on {split})")]
    AllClassifiersDiverged { n_classifiers: usize, split: &'static str },
    /// An error of the tensor backend (candle), which should not happen on valid input.
    #[error("tensor backend: {0}")]
    Backend(String),
    /// A dataset that could not be opened or a sample that could not be loaded (the data
    /// crate's message, naming the file and manifest line).
    #[error("data: {0}")]
    Data(String),
    /// The backbone refused the input or could not be loaded (cellino-vit's message).
    #[error("model: {0}")]
    Model(String),
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// A file this crate reads (embeddings `.npy`, metadata CSV, JSON sidecar) is malformed
    /// or does not match its companions.
    #[error("{path}: {reason}")]
    Format { path: String, reason: String },
}

impl From<cellino_data::DataError> for EvalError {
    fn from(e: cellino_data::DataError) -> Self {
        Self::Data(e.to_string())
    }
}

impl From<cellino_vit::VitError> for EvalError {
    fn from(e: cellino_vit::VitError) -> Self {
        Self::Model(e.to_string())
    }
}

impl EvalError {
    /// An [`EvalError::Io`] for `path`.
    pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> Self {
        Self::Io { path: path.display().to_string(), message: e.to_string() }
    }

    /// An [`EvalError::Format`] for `path`.
    pub(crate) fn format(path: &std::path::Path, reason: impl Into<String>) -> Self {
        Self::Format { path: path.display().to_string(), reason: reason.into() }
    }
}

impl From<candle_core::Error> for EvalError {
    fn from(e: candle_core::Error) -> Self {
        Self::Backend(e.to_string())
    }
}

/// The former name of [`EvalError`], from when the crate only had metrics.
pub type MetricsError = EvalError;

/// Result alias of this crate.
pub type Result<T, E = EvalError> = std::result::Result<T, E>;

use std::path::PathBuf;

use thiserror::Error;

/// Everything that can go wrong while loading or running a vision transformer.
#[derive(Debug, Error)]
pub enum VitError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a readable checkpoint ({reason})")]
    NotACheckpoint { path: PathBuf, reason: String },
    #[error(
        "{path} holds no tensors (neither at the top level nor under `teacher`, `model`, `state_dict`, `student` or `backbone.`)"
    )]
    NoTensors { path: PathBuf },
    #[error("checkpoint {path} does not match the model: {details}")]
    KeyMismatch { path: PathBuf, details: String },
    #[error("tensor `{key}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch { key: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("cannot infer the architecture: {0}")]
    Architecture(String),
    #[error("unknown architecture `{0}` (expected vit_small, vit_base, vit_large or vit_giant2)")]
    UnknownArch(String),
    #[error("invalid input {what}: {reason}")]
    InvalidInput { what: String, reason: String },
    #[error(transparent)]
    Kernel(#[from] cellino_kernels::KernelError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl VitError {
    pub(crate) fn input(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidInput { what: what.into(), reason: reason.into() }
    }
}

pub type Result<T, E = VitError> = std::result::Result<T, E>;

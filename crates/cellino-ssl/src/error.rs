//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, running or checkpointing pretraining.
#[derive(Debug, thiserror::Error)]
pub enum SslError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Vit(#[from] cellino_vit::VitError),
    #[error(transparent)]
    Data(#[from] cellino_data::DataError),
    /// A YAML file or override that does not fit the schema (unknown key, wrong type).
    #[error("config {origin}: {message}")]
    Config { origin: String, message: String },
    /// A combination of settings or inputs that cannot train, refused before anything runs.
    #[error("{0}")]
    Invalid(String),
    /// A loss became NaN or infinite; training stops.
    #[error("non-finite loss {what} = {value} at iteration {iteration}; last good checkpoint: {last_checkpoint}")]
    NonFinite { what: String, value: f64, iteration: u64, last_checkpoint: String },
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint that is missing tensors, has wrong shapes or an unreadable sidecar.
    #[error("checkpoint {path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
}

/// `Result` with [`SslError`].
pub type Result<T> = std::result::Result<T, SslError>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SslError {
    let path = path.into();
    move |source| SslError::Io { path, source }
}

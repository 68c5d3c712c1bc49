//! The one error type of the crate: readers, datasets, transforms and the loader.

use std::path::{Path, PathBuf};

use crate::{FileFormat, SampleType};

/// Boxed source error of a decoder (tiff, png, jpeg, XML).
pub type BoxedSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The former name of [`DataError`], kept so that `ImageError` keeps working.
pub type ImageError = DataError;

/// Everything that can go wrong in this crate: reading an image, parsing a manifest or a dataset
/// string, resolving channels, configuring a transform, loading a batch.
///
/// Every variant names the file it is about where there is one (for in-memory reads: the name the
/// caller gave; for manifests: the CSV file and line) and, where it applies, what was expected and
/// what was found. Nothing in this crate panics on malformed input: truncated files, wrong magic
/// bytes, absurd headers, zero-sized images, bad CSV rows and bad options all come back as one of
/// these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be read from disk.
    #[error("{}: cannot read file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The first bytes match no supported format.
    #[error(
        "{}: unknown image format: expected TIFF, PNG, JPEG or NPY magic bytes, found {found}",
        path.display()
    )]
    UnknownFormat { path: PathBuf, found: String },

    /// The decoder of the format rejected the data (corrupt or truncated file, unsupported codec).
    #[error("{}: cannot decode {format} data: {source}", path.display())]
    Decode {
        path: PathBuf,
        format: FileFormat,
        #[source]
        source: BoxedSource,
    },

    /// The header announces more values than [`ReadOptions::max_values`](crate::ReadOptions)
    /// allows (decompression-bomb guard, checked before any pixel is decoded).
    #[error(
        "{}: image too large: expected at most {limit} values (ReadOptions::max_values), found {found}",
        path.display()
    )]
    TooLarge { path: PathBuf, limit: u64, found: u64 },

    /// A valid file that uses a feature these readers do not support.
    #[error("{}: unsupported {what}: expected {expected}, found {found}", path.display())]
    Unsupported { path: PathBuf, what: &'static str, expected: String, found: String },

    /// The image has no pixels (a zero width, height or channel count).
    #[error("{}: empty image: expected non-zero channels, height and width, found {found}", path.display())]
    Empty { path: PathBuf, found: String },

    /// Shapes that must agree do not (pages of a TIFF, per-channel files, buffer lengths, tiling).
    #[error("{}: shape mismatch ({what}): expected {expected}, found {found}", path.display())]
    ShapeMismatch { path: PathBuf, what: String, expected: String, found: String },

    /// Sample types that must agree do not (pages of a TIFF, per-channel files).
    #[error("{}: sample type mismatch ({what}): expected {expected}, found {found}", path.display())]
    SampleTypeMismatch { path: PathBuf, what: String, expected: SampleType, found: SampleType },

    /// OME-XML or ImageJ metadata that cannot be parsed or contradicts the pixel data.
    #[error("{}: invalid {kind} metadata: expected {expected}, found {found}", path.display())]
    Metadata { path: PathBuf, kind: &'static str, expected: String, found: String },

    /// A requested index (Z plane, time point, channel) does not exist.
    #[error("{}: {what} index out of range: expected < {size}, found {index}", path.display())]
    OutOfRange { path: PathBuf, what: &'static str, index: usize, size: usize },

    /// The caller passed inconsistent arguments.
    #[error("{}: invalid argument ({what}): expected {expected}, found {found}", path.display())]
    InvalidArgument { path: PathBuf, what: &'static str, expected: String, found: String },

    /// A CSV file (manifest, dataset metadata) that cannot be parsed or lacks what it needs.
    /// `line` is 1-based (the header is line 1); 0 when the error is about the whole file.
    #[error("{}:{line}: {message}", path.display())]
    Csv { path: PathBuf, line: u64, message: String },

    /// A label that is not in the dataset's label list.
    #[error("{}:{line}: unknown label: expected one of {expected}, found {found:?}", path.display())]
    UnknownLabel { path: PathBuf, line: u64, expected: String, found: String },

    /// A channel asked for by name that the image does not have.
    #[error("{}: unknown channel: expected one of {available}, found {found:?}", path.display())]
    UnknownChannel { path: PathBuf, available: String, found: String },

    /// A float image with NaN or infinite values.
    #[error("{}: {count} non-finite (NaN or infinite) values in channel {channel}", path.display())]
    NonFinite { path: PathBuf, channel: usize, count: usize },

    /// A dataset string (`Name:key=value:…`) that does not parse.
    #[error("invalid dataset string {spec:?}: expected {expected}, found {found}")]
    DatasetSpec { spec: String, expected: String, found: String },

    /// Loading one sample of a dataset failed; `origin` says where the sample comes from (the
    /// manifest file and line, or the image path).
    #[error("sample {index} ({origin}): {source}")]
    Sample {
        index: usize,
        origin: String,
        #[source]
        source: Box<DataError>,
    },

    /// A cell centre that is NaN or infinite. `line` is the CSV line (0 when not from a file).
    #[error("{}:{line}: cell {label}: non-finite centroid (y {y}, x {x})", path.display())]
    NonFiniteCentroid { path: PathBuf, line: u64, label: u32, y: f64, x: f64 },

    /// A cell centre whose nearest pixel is outside the image it is cropped from.
    #[error(
        "{}: cell {label}: centroid (y {y}, x {x}) outside the {height} × {width} image",
        path.display()
    )]
    CentroidOutsideImage { path: PathBuf, label: u32, y: f64, x: f64, height: usize, width: usize },

    /// Two cells with the same label (crop files and manifest rows are named by label). `line` is
    /// the CSV line of the second one (0 when not from a file).
    #[error("{}:{line}: duplicate cell label {label}", path.display())]
    DuplicateCell { path: PathBuf, line: u64, label: u32 },

    /// A label image (instance mask) with a pixel that is not a label.
    #[error("{}: invalid label image: pixel (y {y}, x {x}) is {value}, expected {expected}", path.display())]
    InvalidMask { path: PathBuf, y: usize, x: usize, value: f64, expected: &'static str },

    /// A crop larger than the image under a border policy that needs it to fit (`shift`).
    #[error("{}: crop size {size} does not fit in the {height} × {width} image (border policy shift)", path.display())]
    CropTooLarge { path: PathBuf, size: usize, height: usize, width: usize },

    /// A candle error while building a tensor.
    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl DataError {
    /// The file (or in-memory name, or manifest) the error is about; empty when there is none.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::UnknownFormat { path, .. }
            | Self::Decode { path, .. }
            | Self::TooLarge { path, .. }
            | Self::Unsupported { path, .. }
            | Self::Empty { path, .. }
            | Self::ShapeMismatch { path, .. }
            | Self::SampleTypeMismatch { path, .. }
            | Self::Metadata { path, .. }
            | Self::OutOfRange { path, .. }
            | Self::InvalidArgument { path, .. }
            | Self::Csv { path, .. }
            | Self::UnknownLabel { path, .. }
            | Self::UnknownChannel { path, .. }
            | Self::NonFinite { path, .. }
            | Self::NonFiniteCentroid { path, .. }
            | Self::CentroidOutsideImage { path, .. }
            | Self::DuplicateCell { path, .. }
            | Self::InvalidMask { path, .. }
            | Self::CropTooLarge { path, .. } => path,
            Self::Sample { source, .. } => source.path(),
            Self::DatasetSpec { .. } | Self::Tensor(_) => Path::new(""),
        }
    }

    /// An [`InvalidArgument`](Self::InvalidArgument) error without a file (bad options).
    pub(crate) fn invalid(what: &'static str, expected: impl Into<String>, found: impl Into<String>) -> Self {
        Self::InvalidArgument { path: PathBuf::new(), what, expected: expected.into(), found: found.into() }
    }

    pub(crate) fn csv(path: &Path, line: u64, message: impl Into<String>) -> Self {
        Self::Csv { path: path.to_path_buf(), line, message: message.into() }
    }

    pub(crate) fn decode(path: &Path, format: FileFormat, source: impl Into<BoxedSource>) -> Self {
        Self::Decode { path: path.to_path_buf(), format, source: source.into() }
    }

    pub(crate) fn shape(
        path: &Path,
        what: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self::ShapeMismatch {
            path: path.to_path_buf(),
            what: what.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    pub(crate) fn unsupported(
        path: &Path,
        what: &'static str,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self::Unsupported { path: path.to_path_buf(), what, expected: expected.into(), found: found.into() }
    }

    pub(crate) fn metadata(
        path: &Path,
        kind: &'static str,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self::Metadata { path: path.to_path_buf(), kind, expected: expected.into(), found: found.into() }
    }
}

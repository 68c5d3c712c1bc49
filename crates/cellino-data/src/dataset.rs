//! A dataset: a list of image records with labels and metadata, loaded lazily.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{
    ChannelAdapter, ChannelId, ChannelRef, ChannelTiling, DataError, LabelSchema, MultiChannelImage, ReadOptions,
    Target, read_channel_files, read_image, read_tiled_image,
};

/// Where the pixels of one record are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// One file holding all channels ([`read_image`]).
    File(PathBuf),
    /// One file whose channels are tiled along the width ([`read_tiled_image`], CHAMMI).
    Tiled { path: PathBuf, tiling: ChannelTiling },
    /// One single-channel file per channel ([`read_channel_files`]).
    ChannelFiles(Vec<PathBuf>),
}

impl ImageSource {
    /// The (first) file.
    pub fn path(&self) -> &Path {
        match self {
            Self::File(p) | Self::Tiled { path: p, .. } => p,
            Self::ChannelFiles(ps) => ps.first().map_or(Path::new(""), PathBuf::as_path),
        }
    }

    /// Every file.
    pub fn paths(&self) -> Vec<&Path> {
        match self {
            Self::File(p) | Self::Tiled { path: p, .. } => vec![p.as_path()],
            Self::ChannelFiles(ps) => ps.iter().map(PathBuf::as_path).collect(),
        }
    }

    /// Reads the image.
    pub fn read(&self, opts: &ReadOptions) -> Result<MultiChannelImage, DataError> {
        match self {
            Self::File(p) => read_image(p, opts),
            Self::Tiled { path, tiling } => read_tiled_image(path, *tiling, opts),
            Self::ChannelFiles(ps) => read_channel_files::<_, &str>(ps, &[], opts),
        }
    }
}

/// One image of a dataset.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub source: ImageSource,
    pub target: Target,
    /// Values of the dataset's [`metadata_columns`](Dataset::metadata_columns), in that order.
    pub metadata: Vec<String>,
    /// 1-based line of the manifest row this record comes from (0 if none).
    pub line: u64,
}

/// What is done to the channels of every image when it is loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelMap {
    /// Keep these channels, in this order.
    Select(Vec<ChannelRef>),
    /// Map onto a fixed channel list.
    Adapt(ChannelAdapter),
}

/// A loaded sample: the image, its label and where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub image: MultiChannelImage,
    pub target: Target,
    /// Index in the [`SampleSource`] it was loaded from.
    pub index: usize,
    /// Index of the image record (differs from `index` for Bag-of-Channels samples).
    pub image_index: usize,
    /// For a single-channel Bag-of-Channels sample: which channel of the image it is.
    pub channel: Option<ChannelId>,
}

/// Anything the [`Loader`](crate::Loader) can draw samples from.
pub trait SampleSource: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Loads sample `index` (`index < len()`); errors name the file (and manifest line).
    fn load(&self, index: usize) -> Result<Sample, DataError>;
    /// The channel count of sample `index` if it is known without reading the file.
    fn channel_count(&self, _index: usize) -> Option<usize> {
        None
    }
    /// Where sample `index` comes from, for messages (a file, a manifest line).
    fn origin(&self, index: usize) -> String {
        format!("sample {index}")
    }
}

impl<S: SampleSource + ?Sized> SampleSource for Arc<S> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn load(&self, index: usize) -> Result<Sample, DataError> {
        (**self).load(index)
    }
    fn channel_count(&self, index: usize) -> Option<usize> {
        (**self).channel_count(index)
    }
    fn origin(&self, index: usize) -> String {
        (**self).origin(index)
    }
}

impl<S: SampleSource + ?Sized> SampleSource for Box<S> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn load(&self, index: usize) -> Result<Sample, DataError> {
        (**self).load(index)
    }
    fn channel_count(&self, index: usize) -> Option<usize> {
        (**self).channel_count(index)
    }
    fn origin(&self, index: usize) -> String {
        (**self).origin(index)
    }
}

/// A list of image [`Record`]s with their label lists, channel names and metadata columns.
///
/// Built by [`Dataset::from_manifest`], [`Dataset::from_folder`], the public layouts
/// ([`Dataset::hpa_fov`], [`Dataset::hpa_single_cell`], [`Dataset::chammi`]) or
/// [`open_dataset`](crate::open_dataset). Images are read only by [`load`](Self::load).
#[derive(Clone, Debug)]
pub struct Dataset {
    /// A short name for messages (the layout name or the manifest file).
    pub name: String,
    pub records: Vec<Record>,
    pub labels: LabelSchema,
    /// Names given to the channels of every image (overriding names in the files), if known.
    pub channel_names: Option<Vec<String>>,
    /// The channel count every image must have (as read, before [`channel_map`](Self::channel_map)).
    pub channels: Option<usize>,
    /// Names of the per-record [`metadata`](Record::metadata) values.
    pub metadata_columns: Vec<String>,
    /// The manifest the records come from (used in error messages with [`Record::line`]).
    pub manifest: Option<PathBuf>,
    pub read_options: ReadOptions,
    /// Applied to every image after reading.
    pub channel_map: Option<ChannelMap>,
}

impl Dataset {
    /// A dataset of `records` without labels, names or metadata.
    pub fn from_records(name: impl Into<String>, records: Vec<Record>) -> Self {
        Self {
            name: name.into(),
            records,
            labels: LabelSchema::None,
            channel_names: None,
            channels: None,
            metadata_columns: Vec::new(),
            manifest: None,
            read_options: ReadOptions::default(),
            channel_map: None,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The value of metadata column `column` for record `index`.
    pub fn metadata(&self, index: usize, column: &str) -> Option<&str> {
        let k = self.metadata_columns.iter().position(|c| c == column)?;
        self.records.get(index)?.metadata.get(k).map(String::as_str)
    }

    /// Keeps only the channels `refs` (by index or name) of every image, in that order.
    pub fn select_channels(mut self, refs: Vec<ChannelRef>) -> Self {
        self.channel_map = Some(ChannelMap::Select(refs));
        self
    }

    /// Maps every image onto the adapter's channels.
    pub fn adapt_channels(mut self, adapter: ChannelAdapter) -> Self {
        self.channel_map = Some(ChannelMap::Adapt(adapter));
        self
    }

    /// Names the channels of every image (checked against the image's channel count at load).
    pub fn with_channel_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.channel_names = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Records whose files do not exist, with the missing path.
    pub fn missing_files(&self) -> Vec<(usize, PathBuf)> {
        let mut out = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            for p in r.source.paths() {
                if !p.is_file() {
                    out.push((i, p.to_path_buf()));
                }
            }
        }
        out
    }

    /// Where record `index` comes from, for messages: `manifest.csv line 12` or the image path.
    pub fn origin(&self, index: usize) -> String {
        match (self.records.get(index), &self.manifest) {
            (Some(r), Some(m)) if r.line > 0 => {
                format!("{} line {}: {}", m.display(), r.line, r.source.path().display())
            }
            (Some(r), _) => r.source.path().display().to_string(),
            (None, _) => format!("{}: no record {index}", self.name),
        }
    }

    /// Reads record `index`: checks the channel count, names the channels, rejects NaN/Inf in
    /// float images, and applies [`channel_map`](Self::channel_map).
    pub fn load(&self, index: usize) -> Result<Sample, DataError> {
        let wrap = |e: DataError| DataError::Sample { index, origin: self.origin(index), source: Box::new(e) };
        let record = self.records.get(index).ok_or_else(|| {
            wrap(DataError::OutOfRange { path: PathBuf::new(), what: "sample", index, size: self.len() })
        })?;
        let image = self.read_record(record).map_err(wrap)?;
        Ok(Sample { image, target: record.target.clone(), index, image_index: index, channel: None })
    }

    fn read_record(&self, record: &Record) -> Result<MultiChannelImage, DataError> {
        let path = record.source.path();
        let mut image = record.source.read(&self.read_options)?;
        if let Some(c) = self.channels.filter(|&c| c != image.channels) {
            return Err(DataError::shape(
                path,
                format!("channel count of dataset {}", self.name),
                format!("{c} channels"),
                format!("{} channels", image.channels),
            ));
        }
        if let Some(names) = &self.channel_names {
            if names.len() != image.channels {
                return Err(DataError::shape(
                    path,
                    "channel names",
                    format!("{} channels (one per name)", names.len()),
                    format!("{} channels", image.channels),
                ));
            }
            image.channel_names = names.iter().cloned().map(Some).collect();
        }
        if image.sample_type.is_float() {
            for (c, plane) in image.channel_planes().enumerate() {
                let count = plane.iter().filter(|v| !v.is_finite()).count();
                if count > 0 {
                    return Err(DataError::NonFinite { path: path.to_path_buf(), channel: c, count });
                }
            }
        }
        let with_path = |e: DataError| match e {
            DataError::UnknownChannel { available, found, .. } => {
                DataError::UnknownChannel { path: path.to_path_buf(), available, found }
            }
            DataError::OutOfRange { what, index, size, .. } => {
                DataError::OutOfRange { path: path.to_path_buf(), what, index, size }
            }
            e => e,
        };
        Ok(match &self.channel_map {
            None => image,
            Some(ChannelMap::Select(refs)) => image.select(refs).map_err(with_path)?,
            Some(ChannelMap::Adapt(adapter)) => adapter.adapt(&image).map_err(with_path)?.0,
        })
    }

    /// The channel count of record `index` after [`channel_map`](Self::channel_map), if known
    /// without reading it (from the dataset's channel count or names, a `Count` tiling, or the
    /// number of per-channel files).
    pub fn output_channels(&self, index: usize) -> Option<usize> {
        match &self.channel_map {
            Some(ChannelMap::Select(refs)) => Some(refs.len()),
            Some(ChannelMap::Adapt(a)) => Some(a.width()),
            None => self.channels.or(self.channel_names.as_ref().map(Vec::len)).or_else(|| {
                match &self.records.get(index)?.source {
                    ImageSource::Tiled { tiling: ChannelTiling::Count(n), .. } => Some(*n),
                    ImageSource::ChannelFiles(ps) => Some(ps.len()),
                    _ => None,
                }
            }),
        }
    }
}

impl SampleSource for Dataset {
    fn len(&self) -> usize {
        self.records.len()
    }
    fn load(&self, index: usize) -> Result<Sample, DataError> {
        Dataset::load(self, index)
    }
    fn channel_count(&self, index: usize) -> Option<usize> {
        self.output_channels(index)
    }
    fn origin(&self, index: usize) -> String {
        Dataset::origin(self, index)
    }
}

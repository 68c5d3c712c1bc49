//! A plain folder of images, optionally one subfolder per class.

use std::path::{Path, PathBuf};

use crate::{ChannelTiling, DataError, Dataset, ImageSource, LabelSchema, ReadOptions, Record, Target};

/// File extensions (lower case) that [`Dataset::from_folder`] picks up by default.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["tif", "tiff", "png", "jpg", "jpeg", "npy"];

/// How to read a folder ([`Dataset::from_folder`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderOptions {
    /// Each immediate subfolder is a class (sorted by name); files directly in the root are
    /// ignored. Otherwise every image below the root is an unlabelled sample.
    pub classes_from_subfolders: bool,
    /// Extensions to include, compared ignoring case; default [`IMAGE_EXTENSIONS`].
    pub extensions: Vec<String>,
    pub tiling: Option<ChannelTiling>,
    pub channel_names: Option<Vec<String>>,
    pub read_options: ReadOptions,
}

impl Default for FolderOptions {
    fn default() -> Self {
        Self {
            classes_from_subfolders: false,
            extensions: IMAGE_EXTENSIONS.iter().map(|e| e.to_string()).collect(),
            tiling: None,
            channel_names: None,
            read_options: ReadOptions::default(),
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.to_path_buf(), source }
}

/// Image files below `dir` (recursively, symlinked folders not followed), sorted.
fn walk(dir: &Path, exts: &[String], out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort();
    for p in entries {
        let meta = std::fs::symlink_metadata(&p).map_err(io(&p))?;
        if meta.is_dir() {
            walk(&p, exts, out)?;
        } else if p.extension().and_then(|e| e.to_str()).is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
        {
            out.push(p);
        }
    }
    Ok(())
}

impl Dataset {
    /// Every image file below `root` (sorted by path), or with
    /// [`classes_from_subfolders`](FolderOptions::classes_from_subfolders) one class per immediate
    /// subfolder (sorted by name; the subfolder's files, recursively, are its samples).
    pub fn from_folder(root: impl AsRef<Path>, opts: &FolderOptions) -> Result<Dataset, DataError> {
        let root = root.as_ref();
        if !root.is_dir() {
            return Err(DataError::Io {
                path: root.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder"),
            });
        }
        let source = |p: PathBuf| match opts.tiling {
            Some(tiling) => ImageSource::Tiled { path: p, tiling },
            None => ImageSource::File(p),
        };
        let mut records = Vec::new();
        let mut labels = LabelSchema::None;
        if opts.classes_from_subfolders {
            let mut classes: Vec<PathBuf> = std::fs::read_dir(root)
                .map_err(io(root))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(io(root))?
                .into_iter()
                .filter(|p| p.is_dir())
                .collect();
            classes.sort();
            for (k, dir) in classes.iter().enumerate() {
                let mut files = Vec::new();
                walk(dir, &opts.extensions, &mut files)?;
                records.extend(files.into_iter().map(|p| Record {
                    source: source(p),
                    target: Target::Class(k),
                    metadata: vec![],
                    line: 0,
                }));
            }
            labels = LabelSchema::SingleLabel {
                classes: classes
                    .iter()
                    .map(|d| d.file_name().unwrap_or_default().to_string_lossy().into_owned())
                    .collect(),
            };
        } else {
            let mut files = Vec::new();
            walk(root, &opts.extensions, &mut files)?;
            records.extend(files.into_iter().map(|p| Record {
                source: source(p),
                target: Target::None,
                metadata: vec![],
                line: 0,
            }));
        }
        let mut ds = Dataset::from_records(root.display().to_string(), records);
        ds.labels = labels;
        ds.channels = match (&opts.channel_names, opts.tiling) {
            (Some(n), _) => Some(n.len()),
            (None, Some(ChannelTiling::Count(n))) => Some(n),
            _ => None,
        };
        ds.channel_names = opts.channel_names.clone();
        ds.read_options = opts.read_options.clone();
        Ok(ds)
    }
}

//! Entry points: read a file or a byte buffer, dispatched on content; read one file per channel.

use std::path::Path;

use crate::format::describe_magic;
use crate::npy::read_npy;
use crate::raster::read_raster;
use crate::tiff_reader::read_tiff;
use crate::{DataError, FileFormat, MultiChannelImage, ReadOptions};

/// Reads an image file of any supported format, chosen by its magic bytes (not its extension).
///
/// | format | what becomes a channel |
/// |---|---|
/// | TIFF / BigTIFF | every full-resolution page; every sample of multi-sample pages |
/// | OME-TIFF, ImageJ hyperstack | the channel pages at [`ReadOptions::z`], [`ReadOptions::t`] |
/// | PNG, JPEG | grey, grey + alpha, R G B, R G B A |
/// | NPY | axis 0 of a (C, H, W) array; (H, W) is one channel |
///
/// The whole file is read into memory first; the decoded size is bounded by
/// [`ReadOptions::max_values`].
pub fn read_image(path: impl AsRef<Path>, opts: &ReadOptions) -> Result<MultiChannelImage, DataError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    read_image_bytes(&bytes, path, opts)
}

/// Like [`read_image`] for a file already in memory; `name` only labels errors.
pub fn read_image_bytes(
    bytes: &[u8],
    name: impl AsRef<Path>,
    opts: &ReadOptions,
) -> Result<MultiChannelImage, DataError> {
    let path = name.as_ref();
    match FileFormat::sniff(bytes) {
        Some(FileFormat::Tiff) => read_tiff(bytes, path, opts),
        Some(format @ (FileFormat::Png | FileFormat::Jpeg)) => read_raster(bytes, path, format, opts),
        Some(FileFormat::Npy) => read_npy(bytes, path, opts),
        None => Err(DataError::UnknownFormat { path: path.to_path_buf(), found: describe_magic(bytes) }),
    }
}

/// Reads one single-channel file per channel (CellProfiler / JUMP style) and stacks them in
/// order. `names` are the channel names (one per path), or empty to keep the files' own names
/// (OME-TIFF) or none. All files
/// must have one channel, the same height and width, and the same sample type; the files'
/// formats may differ. [`ReadOptions::max_values`] bounds the total.
pub fn read_channel_files<P: AsRef<Path>, S: AsRef<str>>(
    paths: &[P],
    names: &[S],
    opts: &ReadOptions,
) -> Result<MultiChannelImage, DataError> {
    let Some(first_path) = paths.first().map(AsRef::as_ref) else {
        return Err(DataError::InvalidArgument {
            path: Default::default(),
            what: "channel files",
            expected: "at least one path".into(),
            found: "none".into(),
        });
    };
    if !names.is_empty() && names.len() != paths.len() {
        return Err(DataError::InvalidArgument {
            path: first_path.to_path_buf(),
            what: "channel names",
            expected: format!("{} names (one per file) or none", paths.len()),
            found: format!("{} names", names.len()),
        });
    }
    let mut budget = opts.clone();
    let mut out: Option<MultiChannelImage> = None;
    for p in paths {
        let path = p.as_ref();
        let image = read_image(path, &budget)?;
        budget.max_values -= image.data.len() as u64;
        if image.channels != 1 {
            return Err(DataError::shape(
                path,
                "per-channel file",
                "1 channel",
                format!("{} channels", image.channels),
            ));
        }
        match &mut out {
            None => out = Some(image),
            Some(acc) => {
                if (image.height, image.width) != (acc.height, acc.width) {
                    return Err(DataError::shape(
                        path,
                        format!("per-channel file vs {}", first_path.display()),
                        format!("{} × {} pixels", acc.height, acc.width),
                        format!("{} × {} pixels", image.height, image.width),
                    ));
                }
                if image.sample_type != acc.sample_type {
                    return Err(DataError::SampleTypeMismatch {
                        path: path.to_path_buf(),
                        what: format!("per-channel file vs {}", first_path.display()),
                        expected: acc.sample_type,
                        found: image.sample_type,
                    });
                }
                acc.data.extend_from_slice(&image.data);
                acc.channel_names.extend(image.channel_names);
                acc.channels += 1;
            }
        }
    }
    // `paths` is non-empty, so `out` is set.
    let mut image =
        out.ok_or_else(|| DataError::Empty { path: first_path.to_path_buf(), found: "no channels".into() })?;
    if !names.is_empty() {
        image.channel_names = names.iter().map(|n| Some(n.as_ref().to_owned())).collect();
    }
    Ok(image)
}

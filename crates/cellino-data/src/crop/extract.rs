//! Cutting square crops around cell centres (placement and border rules: see the module docs).

use std::collections::HashSet;
use std::path::PathBuf;

use super::{CellCenter, LabelImage};
use crate::{DEFAULT_MAX_VALUES, DataError, MultiChannelImage};

/// What to do with a crop whose square extends beyond the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BorderPolicy {
    /// Fill the outside part with zeros.
    #[default]
    Pad,
    /// Drop the cell and list it in [`CellCrops::skipped`].
    Skip,
    /// Move the square inside the image (needs `size` ≤ height and width).
    Shift,
}

impl BorderPolicy {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pad => "pad",
            Self::Skip => "skip",
            Self::Shift => "shift",
        }
    }
}

impl std::str::FromStr for BorderPolicy {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        match s {
            "pad" => Ok(Self::Pad),
            "skip" => Ok(Self::Skip),
            "shift" => Ok(Self::Shift),
            other => Err(DataError::invalid("border policy", "pad, skip or shift", other)),
        }
    }
}

/// How to cut the crops ([`crop_cells`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CropOptions {
    /// Height and width of every crop, ≥ 1.
    pub size: usize,
    pub border: BorderPolicy,
    /// Set the pixels of other labels to 0 (needs the mask).
    pub mask_others: bool,
    /// The image's file: named in errors and in the manifest's `source_image` column.
    pub source: PathBuf,
}

impl CropOptions {
    pub fn new(size: usize) -> Self {
        Self { size, border: BorderPolicy::Pad, mask_others: false, source: PathBuf::new() }
    }
}

/// One cell's crop.
#[derive(Clone, Debug, PartialEq)]
pub struct CellCrop {
    pub center: CellCenter,
    /// Row and column of the crop's top-left pixel in the source image; negative where the
    /// square starts outside it (`Pad`). The crop covers `top .. top + size`, `left .. left + size`.
    pub top: i64,
    pub left: i64,
    /// Whether part of the square lay outside the image and was zero-filled.
    pub padded: bool,
    /// `size` × `size`, the source's channels, channel names and sample type.
    pub image: MultiChannelImage,
}

/// A cell left out by [`BorderPolicy::Skip`], with the square it would have covered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SkippedCell {
    pub center: CellCenter,
    pub top: i64,
    pub left: i64,
}

/// The crops of one image, in the order of the centres given.
#[derive(Clone, Debug, PartialEq)]
pub struct CellCrops {
    /// The source image's file ([`CropOptions::source`]).
    pub source: PathBuf,
    pub size: usize,
    pub crops: Vec<CellCrop>,
    pub skipped: Vec<SkippedCell>,
}

/// `floor(v + 0.5)`: the nearest pixel index, halves rounding up.
fn nearest(v: f64) -> i64 {
    (v + 0.5).floor() as i64
}

/// Cuts a `size` × `size` crop around each centre of `image`. `mask` (same height and width as the
/// image) is needed for [`CropOptions::mask_others`] and checked whenever it is given.
///
/// Errors: `size` 0; a mask of another shape; `mask_others` without a mask; a NaN, infinite or
/// outside-the-image centre; a label given twice; `Shift` with a crop larger than the image.
pub fn crop_cells(
    image: &MultiChannelImage,
    mask: Option<&LabelImage>,
    centers: &[CellCenter],
    options: &CropOptions,
) -> Result<CellCrops, DataError> {
    let path = options.source.as_path();
    let (channels, height, width) = image.shape();
    let size = options.size;
    if size == 0 {
        return Err(DataError::InvalidArgument {
            path: path.to_path_buf(),
            what: "crop size",
            expected: "at least 1 pixel".into(),
            found: "0".into(),
        });
    }
    // The fields are public: check that they agree before indexing with them.
    let expected_len = channels.checked_mul(height).and_then(|n| n.checked_mul(width));
    if channels == 0 || expected_len != Some(image.data.len()) {
        return Err(DataError::shape(
            path,
            "image data length",
            format!("{channels} × {height} × {width} values (non-zero)"),
            format!("{} values", image.data.len()),
        ));
    }
    if let Some(m) = mask
        && m.height.checked_mul(m.width) != Some(m.labels.len())
    {
        return Err(DataError::shape(
            &m.path,
            "label image length",
            format!("{} × {} labels", m.height, m.width),
            format!("{} labels", m.labels.len()),
        ));
    }
    if let Some(m) = mask
        && (m.height, m.width) != (height, width)
    {
        return Err(DataError::shape(
            &m.path,
            "mask vs image",
            format!("{height} × {width} (the image {})", path.display()),
            format!("{} × {}", m.height, m.width),
        ));
    }
    let mask_others = match (options.mask_others, mask) {
        (true, None) => {
            return Err(DataError::InvalidArgument {
                path: path.to_path_buf(),
                what: "mask_others",
                expected: "a label image to tell the cells apart".into(),
                found: "no mask".into(),
            });
        }
        (true, Some(m)) => Some(m),
        (false, _) => None,
    };
    if options.border == BorderPolicy::Shift && (size > height || size > width) {
        return Err(DataError::CropTooLarge { path: path.to_path_buf(), size, height, width });
    }
    // The readers' decompression-bomb limit also bounds one crop, so an absurd size is an error
    // rather than a failed allocation.
    let plane =
        size.checked_mul(size).filter(|n| n.checked_mul(channels).is_some_and(|t| t as u64 <= DEFAULT_MAX_VALUES));
    let Some(plane) = plane else {
        return Err(DataError::InvalidArgument {
            path: path.to_path_buf(),
            what: "crop size",
            expected: format!("at most {DEFAULT_MAX_VALUES} values per crop"),
            found: format!("{size} × {size} × {channels} channels"),
        });
    };
    let mut labels = HashSet::with_capacity(centers.len());
    let mut out = CellCrops { source: path.to_path_buf(), size, crops: Vec::new(), skipped: Vec::new() };
    let (h, w, s) = (height as i64, width as i64, size as i64);
    for &center in centers {
        let CellCenter { label, y, x } = center;
        if !y.is_finite() || !x.is_finite() {
            return Err(DataError::NonFiniteCentroid { path: path.to_path_buf(), line: 0, label, y, x });
        }
        // Compare in f64 first: a huge centre would saturate the i64 conversion.
        if !(-0.5..h as f64 - 0.5).contains(&y) || !(-0.5..w as f64 - 0.5).contains(&x) {
            return Err(DataError::CentroidOutsideImage { path: path.to_path_buf(), label, y, x, height, width });
        }
        if !labels.insert(label) {
            return Err(DataError::DuplicateCell { path: path.to_path_buf(), line: 0, label });
        }
        let (mut top, mut left) = (nearest(y) - s / 2, nearest(x) - s / 2);
        let inside = top >= 0 && left >= 0 && top + s <= h && left + s <= w;
        match options.border {
            BorderPolicy::Skip if !inside => {
                out.skipped.push(SkippedCell { center, top, left });
                continue;
            }
            BorderPolicy::Shift => {
                top = top.clamp(0, h - s);
                left = left.clamp(0, w - s);
            }
            _ => {}
        }
        let padded = !(top >= 0 && left >= 0 && top + s <= h && left + s <= w);
        let mut data = vec![0f32; plane * channels];
        // Rows and columns of the crop that fall inside the image.
        let (r0, r1) = ((-top).clamp(0, s), (h - top).clamp(0, s));
        let (c0, c1) = ((-left).clamp(0, s), (w - left).clamp(0, s));
        for (src, dst) in image.channel_planes().zip(data.chunks_exact_mut(plane)) {
            for r in r0..r1 {
                let sy = (top + r) as usize;
                let (sx0, sx1) = ((left + c0) as usize, (left + c1) as usize);
                let row = &src[sy * width + sx0..sy * width + sx1];
                let out_row = &mut dst[r as usize * size + c0 as usize..r as usize * size + c1 as usize];
                out_row.copy_from_slice(row);
                if let Some(m) = mask_others {
                    let labels_row = &m.labels[sy * width + sx0..sy * width + sx1];
                    for (v, &l) in out_row.iter_mut().zip(labels_row) {
                        if l != 0 && l != label {
                            *v = 0.0;
                        }
                    }
                }
            }
        }
        let mut crop = MultiChannelImage::from_parts(path, data, [channels, size, size], image.sample_type)?;
        crop.channel_names.clone_from(&image.channel_names);
        out.crops.push(CellCrop { center, top, left, padded, image: crop });
    }
    Ok(out)
}

/// For tests of the error paths without an image file.
#[cfg(test)]
fn tiny() -> MultiChannelImage {
    MultiChannelImage::new((0..2 * 4 * 5).map(|v| v as f32).collect(), 2, 4, 5, crate::SampleType::U8)
        .unwrap()
        .with_channel_names(["a", "b"])
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(label: u32, y: f64, x: f64) -> CellCenter {
        CellCenter { label, y, x }
    }

    #[test]
    fn placement_padding_shift_skip() {
        let im = tiny();
        // Odd size: the nearest pixel (round half up) is the middle one.
        let r = crop_cells(&im, None, &[c(1, 1.5, 2.49)], &CropOptions::new(3)).unwrap();
        let k = &r.crops[0];
        assert_eq!((k.top, k.left, k.padded), (1, 1, false));
        assert_eq!(k.image.channel(0).unwrap(), &[6.0, 7.0, 8.0, 11.0, 12.0, 13.0, 16.0, 17.0, 18.0]);
        assert_eq!(k.image.channel_names, im.channel_names);
        // Even size: the nearest pixel sits at (size/2, size/2); zero padding outside.
        let r = crop_cells(&im, None, &[c(2, 0.0, 0.0)], &CropOptions::new(2)).unwrap();
        assert_eq!((r.crops[0].top, r.crops[0].left, r.crops[0].padded), (-1, -1, true));
        assert_eq!(r.crops[0].image.channel(1).unwrap(), &[0.0, 0.0, 0.0, 20.0]);
        let shift = CropOptions { border: BorderPolicy::Shift, ..CropOptions::new(2) };
        let r = crop_cells(&im, None, &[c(2, 0.0, 0.0)], &shift).unwrap();
        assert_eq!((r.crops[0].top, r.crops[0].left, r.crops[0].padded), (0, 0, false));
        let skip = CropOptions { border: BorderPolicy::Skip, ..CropOptions::new(2) };
        let r = crop_cells(&im, None, &[c(2, 0.0, 0.0), c(3, 2.0, 2.0)], &skip).unwrap();
        assert_eq!((r.crops.len(), r.skipped.len(), r.skipped[0].center.label), (1, 1, 2));
        // Bigger than the image: all padding around it.
        let r = crop_cells(&im, None, &[c(4, 2.0, 2.0)], &CropOptions::new(9)).unwrap();
        assert_eq!(r.crops[0].image.data.iter().sum::<f32>(), im.data.iter().sum::<f32>());
    }

    #[test]
    fn mask_others_and_errors() {
        let im = tiny();
        let mut labels = vec![0u32; 20];
        labels[6] = 1;
        labels[7] = 2;
        let mask = LabelImage::new(labels, 4, 5).unwrap();
        let opts = CropOptions { mask_others: true, ..CropOptions::new(1) };
        let r = crop_cells(&im, Some(&mask), &[c(1, 1.0, 2.0)], &opts).unwrap();
        assert_eq!(r.crops[0].image.data, [0.0, 0.0]); // label 2 is another cell, in every channel
        let r = crop_cells(&im, Some(&mask), &[c(1, 1.0, 1.0)], &opts).unwrap();
        assert_eq!(r.crops[0].image.data, [6.0, 26.0]);

        let err = |centers: &[CellCenter], o: &CropOptions, m: Option<&LabelImage>| {
            crop_cells(&im, m, centers, o).unwrap_err()
        };
        assert!(matches!(err(&[c(1, 0.0, 0.0)], &CropOptions::new(0), None), DataError::InvalidArgument { .. }));
        assert!(matches!(err(&[c(1, 0.0, 0.0)], &opts, None), DataError::InvalidArgument { .. }));
        let small = LabelImage::new(vec![0; 4], 2, 2).unwrap();
        assert!(matches!(err(&[], &CropOptions::new(2), Some(&small)), DataError::ShapeMismatch { .. }));
        for bad in [c(7, f64::NAN, 0.0), c(7, 0.0, f64::INFINITY)] {
            assert!(matches!(err(&[bad], &CropOptions::new(2), None), DataError::NonFiniteCentroid { label: 7, .. }));
        }
        for out in [c(8, -0.51, 0.0), c(8, 3.5, 0.0), c(8, 0.0, 1e300)] {
            assert!(matches!(
                err(&[out], &CropOptions::new(2), None),
                DataError::CentroidOutsideImage { label: 8, .. }
            ));
        }
        assert!(matches!(
            err(&[c(9, 0.0, 0.0), c(9, 1.0, 1.0)], &CropOptions::new(2), None),
            DataError::DuplicateCell { label: 9, .. }
        ));
        let shift = CropOptions { border: BorderPolicy::Shift, ..CropOptions::new(5) };
        assert!(matches!(err(&[], &shift, None), DataError::CropTooLarge { .. }));
        assert!(matches!(err(&[], &CropOptions::new(usize::MAX), None), DataError::InvalidArgument { .. }));
        assert!(crop_cells(&im, None, &[], &CropOptions::new(3)).unwrap().crops.is_empty());
        // Public fields that disagree are an error, not an out-of-bounds index.
        let mut broken = mask.clone();
        broken.labels.pop();
        assert!(matches!(err(&[c(1, 1.0, 1.0)], &opts, Some(&broken)), DataError::ShapeMismatch { .. }));
        let mut short = im.clone();
        short.data.pop();
        let e = crop_cells(&short, None, &[c(1, 1.0, 1.0)], &CropOptions::new(2)).unwrap_err();
        assert!(matches!(e, DataError::ShapeMismatch { .. }), "{e}");
    }
}

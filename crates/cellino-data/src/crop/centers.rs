//! Cell centres: from an instance mask (centroid, area, bounding box) or from a CSV of centroids.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::csv_table::CsvTable;
use crate::{DataError, MultiChannelImage, ReadOptions, read_image};

/// The centre of one cell: its label and its centroid (row `y`, column `x`, in pixel indices).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellCenter {
    pub label: u32,
    pub y: f64,
    pub x: f64,
}

/// One labelled region of a mask, as scikit-image's `regionprops` describes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellRegion {
    pub label: u32,
    /// Mean row and column index of the region's pixels (`regionprops(...).centroid`).
    pub centroid_y: f64,
    pub centroid_x: f64,
    /// Pixel count.
    pub area: u64,
    /// `(min_row, min_col, max_row, max_col)`, maxima exclusive (`regionprops(...).bbox`).
    pub bbox: [usize; 4],
}

impl CellRegion {
    pub fn center(&self) -> CellCenter {
        CellCenter { label: self.label, y: self.centroid_y, x: self.centroid_x }
    }
}

/// An instance mask: one `u32` label per pixel, row-major, 0 = background.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelImage {
    pub labels: Vec<u32>,
    pub height: usize,
    pub width: usize,
    /// The file it was read from (for error messages); may be empty.
    pub path: PathBuf,
}

/// Labels up to 2^24 are exact in the f32 the readers return; beyond, neighbours could merge.
const MAX_EXACT_LABEL: f32 = 16_777_216.0;

impl LabelImage {
    /// Checks `labels.len() == height * width` (non-zero).
    pub fn new(labels: Vec<u32>, height: usize, width: usize) -> Result<Self, DataError> {
        if height == 0 || width == 0 {
            return Err(DataError::Empty { path: PathBuf::new(), found: format!("(H, W) = ({height}, {width})") });
        }
        if height.checked_mul(width) != Some(labels.len()) {
            return Err(DataError::shape(
                Path::new(""),
                "label image length",
                format!("{height} × {width} values"),
                format!("{} values", labels.len()),
            ));
        }
        Ok(Self { labels, height, width, path: PathBuf::new() })
    }

    /// A single-channel image whose values are labels: non-negative integers below 2^24 (any
    /// integer or float sample type holding such values).
    pub fn from_image(image: &MultiChannelImage, path: impl AsRef<Path>) -> Result<Self, DataError> {
        let path = path.as_ref();
        if image.channels != 1 {
            return Err(DataError::shape(
                path,
                "label image channels",
                "1 channel",
                format!("{} channels", image.channels),
            ));
        }
        let mut labels = Vec::with_capacity(image.data.len());
        for (i, &v) in image.data.iter().enumerate() {
            let expected = if !v.is_finite() || v < 0.0 || v.fract() != 0.0 {
                Some("a non-negative integer label")
            } else if v >= MAX_EXACT_LABEL {
                Some("a label below 2^24 (larger ones are not exact in f32)")
            } else {
                None
            };
            if let Some(expected) = expected {
                return Err(DataError::InvalidMask {
                    path: path.to_path_buf(),
                    y: i / image.width,
                    x: i % image.width,
                    value: v as f64,
                    expected,
                });
            }
            labels.push(v as u32);
        }
        Ok(Self { labels, height: image.height, width: image.width, path: path.to_path_buf() })
    }

    /// Reads a label image with [`read_image`] (TIFF, PNG, `.npy`, ...) and checks it.
    pub fn read(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Self, DataError> {
        let path = path.as_ref();
        Self::from_image(&read_image(path, options)?, path)
    }
}

/// The regions of `mask`, sorted by label: centroid, area and bounding box of every non-zero
/// label, exactly as scikit-image's `regionprops`. An all-background mask gives no regions.
pub fn regions_from_mask(mask: &LabelImage) -> Vec<CellRegion> {
    // (sum of rows, sum of cols, count, bbox); sums of indices are exact in u64 and in f64 below 2^53.
    let mut acc: BTreeMap<u32, (u64, u64, u64, [usize; 4])> = BTreeMap::new();
    let width = mask.width.max(1);
    for (i, &label) in mask.labels.iter().enumerate() {
        if label == 0 {
            continue;
        }
        let (y, x) = (i / width, i % width);
        let e = acc.entry(label).or_insert((0, 0, 0, [y, x, y + 1, x + 1]));
        e.0 += y as u64;
        e.1 += x as u64;
        e.2 += 1;
        e.3 = [e.3[0].min(y), e.3[1].min(x), e.3[2].max(y + 1), e.3[3].max(x + 1)];
    }
    acc.into_iter()
        .map(|(label, (sy, sx, n, bbox))| CellRegion {
            label,
            centroid_y: sy as f64 / n as f64,
            centroid_x: sx as f64 / n as f64,
            area: n,
            bbox,
        })
        .collect()
}

/// The centres of the cells of `mask` ([`regions_from_mask`] without area and box), by label.
pub fn centers_from_mask(mask: &LabelImage) -> Vec<CellCenter> {
    regions_from_mask(mask).iter().map(CellRegion::center).collect()
}

/// Which columns of a centroid table to read ([`centers_from_csv`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CentroidCsv {
    /// Row coordinate column (default `centroid_y`).
    pub y_column: String,
    /// Column coordinate column (default `centroid_x`).
    pub x_column: String,
    /// Label column. `None` (default): `label` if the table has it, else the 1-based position of
    /// the row among the rows kept.
    pub label_column: Option<String>,
    /// Column naming the image a row belongs to (default `image`); only used when present.
    pub image_column: String,
    /// Keep only the rows whose image column equals this. Without it, a table whose image column
    /// holds more than one distinct value is an error (rows of several images would be mixed).
    pub image: Option<String>,
}

impl Default for CentroidCsv {
    fn default() -> Self {
        Self {
            y_column: "centroid_y".into(),
            x_column: "centroid_x".into(),
            label_column: None,
            image_column: "image".into(),
            image: None,
        }
    }
}

/// Reads cell centres from a CSV table (one row per cell), in row order. Errors name the file and
/// the 1-based CSV line: a missing column, a value that is not a number, a NaN or infinite
/// centroid, a label that is not a non-negative integer, a duplicate label, no row for the image.
pub fn centers_from_csv(path: impl AsRef<Path>, columns: &CentroidCsv) -> Result<Vec<CellCenter>, DataError> {
    let table = CsvTable::read(path.as_ref())?;
    let path = table.path.as_path();
    let (cy, cx) = (table.column(&columns.y_column)?, table.column(&columns.x_column)?);
    let label_col = match &columns.label_column {
        Some(name) => Some(table.column(name)?),
        None => table.find("label"),
    };
    let image_col = match &columns.image {
        Some(_) => Some(table.column(&columns.image_column)?),
        None => table.find(&columns.image_column),
    };
    if let (Some(col), None) = (image_col, &columns.image) {
        let mut distinct: Vec<&str> = table.rows.iter().map(|(_, r)| r[col].as_str()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() > 1 {
            return Err(DataError::csv(
                path,
                0,
                format!(
                    "column {:?} names {} images (e.g. {:?}); choose one (CentroidCsv::image / --csv-image)",
                    columns.image_column,
                    distinct.len(),
                    &distinct[..distinct.len().min(3)]
                ),
            ));
        }
    }
    let number = |line: u64, row: &[String], col: usize| -> Result<f64, DataError> {
        row[col].parse::<f64>().map_err(|_| {
            DataError::csv(
                path,
                line,
                format!("column {:?}: expected a number, found {:?}", table.headers[col], row[col]),
            )
        })
    };
    let mut centers = Vec::new();
    let mut seen: HashMap<u32, u64> = HashMap::new();
    for (line, row) in &table.rows {
        if let (Some(col), Some(want)) = (image_col, &columns.image)
            && &row[col] != want
        {
            continue;
        }
        let label = match label_col {
            Some(col) => {
                // Integer-valued floats ("12.0") are what pandas writes for a column with gaps.
                let v = number(*line, row, col)?;
                if !(v >= 0.0 && v <= u32::MAX as f64 && v.fract() == 0.0) {
                    return Err(DataError::csv(
                        path,
                        *line,
                        format!(
                            "column {:?}: expected a non-negative integer label, found {:?}",
                            table.headers[col], row[col]
                        ),
                    ));
                }
                v as u32
            }
            None => {
                u32::try_from(centers.len() + 1).map_err(|_| DataError::csv(path, *line, "more than 2^32 - 1 rows"))?
            }
        };
        let (y, x) = (number(*line, row, cy)?, number(*line, row, cx)?);
        if !y.is_finite() || !x.is_finite() {
            return Err(DataError::NonFiniteCentroid { path: path.to_path_buf(), line: *line, label, y, x });
        }
        if seen.insert(label, *line).is_some() {
            return Err(DataError::DuplicateCell { path: path.to_path_buf(), line: *line, label });
        }
        centers.push(CellCenter { label, y, x });
    }
    if centers.is_empty() {
        let which = columns.image.as_ref().map(|v| format!(" for image {v:?}")).unwrap_or_default();
        return Err(DataError::csv(path, 0, format!("no centroid rows{which}")));
    }
    Ok(centers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_match_hand_computation() {
        #[rustfmt::skip]
        let mask = LabelImage::new(vec![
            0, 2, 2, 0,
            0, 2, 0, 0,
            5, 0, 0, 5,
        ], 3, 4).unwrap();
        let r = regions_from_mask(&mask);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].label, r[0].area, r[0].bbox), (2, 3, [0, 1, 2, 3]));
        assert_eq!((r[0].centroid_y, r[0].centroid_x), (1.0 / 3.0, 4.0 / 3.0));
        assert_eq!((r[1].label, r[1].area, r[1].bbox, r[1].centroid_x), (5, 2, [2, 0, 3, 4], 1.5));
        assert!(regions_from_mask(&LabelImage::new(vec![0; 4], 2, 2).unwrap()).is_empty());
    }

    #[test]
    fn label_image_checks() {
        assert!(LabelImage::new(vec![0; 3], 2, 2).is_err());
        assert!(LabelImage::new(vec![], 0, 2).is_err());
        let float = |v: f32| MultiChannelImage::new(vec![0.0, v], 1, 1, 2, crate::SampleType::F32).unwrap();
        for bad in [-1.0, 0.5, f32::NAN, 3.0e7] {
            let e = LabelImage::from_image(&float(bad), "m.tif").unwrap_err();
            assert!(matches!(e, DataError::InvalidMask { x: 1, .. }), "{e}");
        }
        assert_eq!(LabelImage::from_image(&float(7.0), "m.tif").unwrap().labels, [0, 7]);
        let two = MultiChannelImage::new(vec![0.0; 2], 2, 1, 1, crate::SampleType::U8).unwrap();
        assert!(matches!(LabelImage::from_image(&two, "m.tif"), Err(DataError::ShapeMismatch { .. })));
    }
}

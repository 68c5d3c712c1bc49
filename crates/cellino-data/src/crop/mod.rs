//! Single-cell crops cut from a field image around cell centres.
//!
//! Centres come from an instance mask ([`LabelImage`], 0 = background, `k` = cell `k`; see
//! [`regions_from_mask`]) or from a table of centroids ([`centers_from_csv`]). [`crop_cells`] cuts a
//! square of `size` × `size` pixels around each centre, keeping every channel, the sample type and
//! the channel names; [`write_crops`] writes one multi-page TIFF per cell and a `manifest.csv` that
//! [`Dataset::from_manifest`](crate::Dataset::from_manifest) opens.
//!
//! # Conventions
//!
//! * Coordinates are pixel indices: row `y`, column `x`, the centre of pixel `(0, 0)` at `(0.0, 0.0)`.
//! * A centroid is the mean of the row and column indices of a label's pixels, which is what
//!   scikit-image's `regionprops(...).centroid` returns; the bounding box is skimage's
//!   `(min_row, min_col, max_row, max_col)` with the maxima exclusive.
//! * **Crop placement.** The pixel nearest the centre, `(round(y), round(x))` with
//!   `round(v) = floor(v + 0.5)` (halves round up, not to even), sits at index `(size / 2, size / 2)`
//!   of the crop (integer division): the crop covers rows `top .. top + size` with
//!   `top = floor(y + 0.5) - size / 2`, and likewise for columns. For odd sizes that pixel is the
//!   middle one; for even sizes it is the lower-right of the four middle pixels. In NumPy:
//!   `top = int(np.floor(y + 0.5)) - size // 2; crop = image[:, top:top + size, left:left + size]`.
//! * A centre whose nearest pixel lies outside the image is an error
//!   ([`DataError::CentroidOutsideImage`](crate::DataError::CentroidOutsideImage)), as is a NaN or infinite one.
//! * **Borders** ([`BorderPolicy`]): `Pad` (default) fills the part of the square outside the
//!   image with zeros; `Skip` drops the cells whose square does not fit and lists them in
//!   [`CellCrops::skipped`]; `Shift` moves the square inside the image (so the cell is off centre;
//!   the crop box in the manifest says where it is) and needs `size` ≤ height and width.
//! * **Masking other cells** ([`CropOptions::mask_others`], needs a mask): pixels of the crop that
//!   belong to a different non-zero label are set to 0; background and the cell itself are kept.

mod centers;
mod extract;
mod write;

pub use centers::{
    CellCenter, CellRegion, CentroidCsv, LabelImage, centers_from_csv, centers_from_mask, regions_from_mask,
};
pub use extract::{BorderPolicy, CellCrop, CellCrops, CropOptions, SkippedCell, crop_cells};
pub use write::{CROP_MANIFEST_COLUMNS, CropFormat, write_crops};

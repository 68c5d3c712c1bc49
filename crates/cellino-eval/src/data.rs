//! Validated views of in-memory feature matrices and their targets.

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// A row-major `(n_rows, dim)` matrix of `f32` features, checked on construction: `dim >
/// 0`, at least one row, a length that is a whole number of rows, and every value finite.
///
/// It borrows the data; building one is a single pass over the values (the NaN check).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureMatrix<'a> {
    data: &'a [f32],
    n_rows: usize,
    dim: usize,
}

impl<'a> FeatureMatrix<'a> {
    /// Views `data` as rows of `dim` features.
    ///
    /// # Errors
    /// [`EvalError::Empty`] for `dim == 0` or no row, [`EvalError::NotAMatrix`] when the
    /// length is not a multiple of `dim`, [`EvalError::NonFiniteFeature`] for the first NaN
    /// or infinite value.
    pub fn new(data: &'a [f32], dim: usize) -> Result<Self> {
        Self::named("features", data, dim)
    }

    /// As [`new`](Self::new), with `what` naming the matrix in errors ("train features"…).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn named(what: &'static str, data: &'a [f32], dim: usize) -> Result<Self> {
        if dim == 0 {
            return Err(EvalError::Empty { what: "feature columns" });
        }
        if !data.len().is_multiple_of(dim) {
            return Err(EvalError::NotAMatrix { what, len: data.len(), row_len: dim });
        }
        if data.is_empty() {
            return Err(EvalError::Empty { what });
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFiniteFeature { what, row: i / dim, col: i % dim, value: f64::from(data[i]) });
        }
        Ok(Self { data, n_rows: data.len() / dim, dim })
    }

    /// Number of rows (samples).
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Number of columns (feature dimension).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The flat row-major values.
    pub fn as_slice(&self) -> &'a [f32] {
        self.data
    }

    /// Row `i` (panics if `i >= n_rows`, like slice indexing).
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows `rows` copied into a new flat buffer, in that order.
    pub(crate) fn gather(&self, rows: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows.len() * self.dim);
        for &r in rows {
            out.extend_from_slice(self.row(r));
        }
        out
    }

    /// A view of already validated data (rows of a validated matrix).
    pub(crate) fn from_validated(data: &'a [f32], dim: usize) -> Self {
        debug_assert!(dim > 0 && !data.is_empty() && data.len().is_multiple_of(dim));
        Self { data, n_rows: data.len() / dim, dim }
    }
}

/// Multi-class or multi-label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// One class index per sample (cross-entropy, arg-max predictions).
    Multiclass,
    /// A multi-hot 0/1 row per sample (binary cross-entropy, `> 0.5` predictions).
    Multilabel,
}

/// The targets of a split: class indices or multi-hot rows. Borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets<'a> {
    /// Class indices in `0..n_classes`, one per sample.
    Multiclass { labels: &'a [usize], n_classes: usize },
    /// Row-major `(n_samples, n_labels)` 0/1 values.
    Multilabel { targets: &'a [u8], n_labels: usize },
}

impl<'a> Targets<'a> {
    /// Multi-class targets.
    pub fn multiclass(labels: &'a [usize], n_classes: usize) -> Self {
        Targets::Multiclass { labels, n_classes }
    }

    /// Multi-label (multi-hot) targets, row-major `(n_samples, n_labels)`.
    pub fn multilabel(targets: &'a [u8], n_labels: usize) -> Self {
        Targets::Multilabel { targets, n_labels }
    }

    /// The task.
    pub fn task(&self) -> Task {
        match self {
            Targets::Multiclass { .. } => Task::Multiclass,
            Targets::Multilabel { .. } => Task::Multilabel,
        }
    }

    /// Number of classes (multi-class) or labels (multi-label): the classifier's outputs.
    pub fn n_outputs(&self) -> usize {
        match *self {
            Targets::Multiclass { n_classes, .. } => n_classes,
            Targets::Multilabel { n_labels, .. } => n_labels,
        }
    }

    /// Number of samples (for multi-label, assuming a valid matrix).
    pub fn n_samples(&self) -> usize {
        match *self {
            Targets::Multiclass { labels, .. } => labels.len(),
            Targets::Multilabel { targets, n_labels } => targets.len().checked_div(n_labels).unwrap_or(0),
        }
    }

    /// Checks class indices / 0-1 values and the matrix shape.
    fn validate(&self, what: &'static str) -> Result<()> {
        match *self {
            Targets::Multiclass { labels, n_classes } => {
                if n_classes == 0 {
                    return Err(EvalError::Empty { what: "classes" });
                }
                match labels.iter().position(|&l| l >= n_classes) {
                    None => Ok(()),
                    Some(index) => Err(EvalError::LabelOutOfRange { what, index, label: labels[index], n_classes }),
                }
            }
            Targets::Multilabel { targets, n_labels } => {
                if n_labels == 0 {
                    return Err(EvalError::Empty { what: "labels" });
                }
                if !targets.len().is_multiple_of(n_labels) {
                    return Err(EvalError::NotAMatrix { what, len: targets.len(), row_len: n_labels });
                }
                match targets.iter().position(|&t| t > 1) {
                    None => Ok(()),
                    Some(i) => {
                        Err(EvalError::InvalidTarget { what, row: i / n_labels, col: i % n_labels, value: targets[i] })
                    }
                }
            }
        }
    }

    /// The targets of rows `rows`, copied, in that order.
    pub(crate) fn gather(&self, rows: &[usize]) -> TargetsBuf {
        match *self {
            Targets::Multiclass { labels, n_classes } => {
                TargetsBuf::Multiclass { labels: rows.iter().map(|&r| labels[r]).collect(), n_classes }
            }
            Targets::Multilabel { targets, n_labels } => TargetsBuf::Multilabel {
                targets: rows.iter().flat_map(|&r| targets[r * n_labels..(r + 1) * n_labels].iter().copied()).collect(),
                n_labels,
            },
        }
    }
}

/// Owned targets (subsets made by the crate, e.g. a carved validation split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TargetsBuf {
    Multiclass { labels: Vec<usize>, n_classes: usize },
    Multilabel { targets: Vec<u8>, n_labels: usize },
}

impl TargetsBuf {
    pub(crate) fn view(&self) -> Targets<'_> {
        match self {
            TargetsBuf::Multiclass { labels, n_classes } => Targets::Multiclass { labels, n_classes: *n_classes },
            TargetsBuf::Multilabel { targets, n_labels } => Targets::Multilabel { targets, n_labels: *n_labels },
        }
    }
}

/// Features and their targets, row-aligned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split<'a> {
    features: FeatureMatrix<'a>,
    targets: Targets<'a>,
}

impl<'a> Split<'a> {
    /// Pairs `features` with `targets`, checking both (finite features, class indices in
    /// range, 0/1 multi-hot values) and that they have the same number of rows.
    ///
    /// # Errors
    /// Those of [`FeatureMatrix::named`], [`EvalError::LabelOutOfRange`],
    /// [`EvalError::InvalidTarget`], [`EvalError::NotAMatrix`], and
    /// [`EvalError::LengthMismatch`] when the row counts differ.
    pub fn new(features: FeatureMatrix<'a>, targets: Targets<'a>) -> Result<Self> {
        targets.validate("targets")?;
        let n = targets.n_samples();
        if n != features.n_rows() {
            return Err(EvalError::LengthMismatch {
                what: "target rows (one per feature row)",
                expected: features.n_rows(),
                actual: n,
            });
        }
        Ok(Self { features, targets })
    }

    /// Builds a split from a flat feature buffer of width `dim` and targets.
    ///
    /// # Errors
    /// As [`FeatureMatrix::new`] and [`Split::new`].
    pub fn from_parts(features: &'a [f32], dim: usize, targets: Targets<'a>) -> Result<Self> {
        Self::new(FeatureMatrix::new(features, dim)?, targets)
    }

    /// The features.
    pub fn features(&self) -> FeatureMatrix<'a> {
        self.features
    }

    /// The targets.
    pub fn targets(&self) -> Targets<'a> {
        self.targets
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.features.n_rows()
    }

    /// Checks that `other` has the same task, feature dimension and number of
    /// classes/labels as `self` (`what` names `other` in the error).
    pub(crate) fn check_compatible(&self, other: &Split<'_>, what: &'static str) -> Result<()> {
        let (a, b) = (self.targets.task(), other.targets.task());
        if a != b {
            return Err(EvalError::TaskMismatch { what, expected: a, actual: b });
        }
        if self.features.dim() != other.features.dim() {
            return Err(EvalError::Mismatch { what, expected: self.features.dim(), actual: other.features.dim() });
        }
        let (ka, kb) = (self.targets.n_outputs(), other.targets.n_outputs());
        if ka != kb {
            return Err(EvalError::Mismatch { what, expected: ka, actual: kb });
        }
        Ok(())
    }
}

/// An owned subset of a split (rows copied).
pub(crate) struct OwnedSplit {
    pub(crate) features: Vec<f32>,
    pub(crate) dim: usize,
    pub(crate) targets: TargetsBuf,
}

impl OwnedSplit {
    pub(crate) fn gather(split: &Split<'_>, rows: &[usize]) -> Self {
        Self { features: split.features.gather(rows), dim: split.features.dim(), targets: split.targets.gather(rows) }
    }

    /// A view; `rows` must have been non-empty.
    pub(crate) fn view(&self) -> Split<'_> {
        Split { features: FeatureMatrix::from_validated(&self.features, self.dim), targets: self.targets.view() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_matrix_checks() {
        assert_eq!(FeatureMatrix::new(&[1.0, 2.0], 0), Err(EvalError::Empty { what: "feature columns" }));
        assert_eq!(FeatureMatrix::new(&[], 3), Err(EvalError::Empty { what: "features" }));
        assert_eq!(
            FeatureMatrix::new(&[1.0, 2.0, 3.0], 2),
            Err(EvalError::NotAMatrix { what: "features", len: 3, row_len: 2 })
        );
        assert!(matches!(
            FeatureMatrix::new(&[1.0, 2.0, f32::NAN, 0.0], 2),
            Err(EvalError::NonFiniteFeature { row: 1, col: 0, .. })
        ));
        let m = FeatureMatrix::new(&[1.0, 2.0, 3.0, 4.0], 2).unwrap();
        assert_eq!((m.n_rows(), m.dim(), m.row(1)), (2, 2, &[3.0, 4.0][..]));
    }

    #[test]
    fn split_checks() {
        let f = FeatureMatrix::new(&[0.0; 6], 2).unwrap();
        assert_eq!(
            Split::new(f, Targets::multiclass(&[0, 1], 2)),
            Err(EvalError::LengthMismatch { what: "target rows (one per feature row)", expected: 3, actual: 2 })
        );
        assert_eq!(
            Split::new(f, Targets::multiclass(&[0, 1, 2], 2)),
            Err(EvalError::LabelOutOfRange { what: "targets", index: 2, label: 2, n_classes: 2 })
        );
        assert_eq!(
            Split::new(f, Targets::multilabel(&[0, 1, 1, 2, 0, 0], 2)),
            Err(EvalError::InvalidTarget { what: "targets", row: 1, col: 1, value: 2 })
        );
        assert_eq!(
            Split::new(f, Targets::multilabel(&[0, 1, 1, 0, 0], 2)),
            Err(EvalError::NotAMatrix { what: "targets", len: 5, row_len: 2 })
        );
        let s = Split::new(f, Targets::multilabel(&[0, 1, 1, 0, 0, 0], 2)).unwrap();
        assert_eq!(s.n_samples(), 3);
        let other = Split::new(f, Targets::multiclass(&[0, 1, 1], 2)).unwrap();
        assert_eq!(
            s.check_compatible(&other, "x"),
            Err(EvalError::TaskMismatch { what: "x", expected: Task::Multilabel, actual: Task::Multiclass })
        );
    }
}

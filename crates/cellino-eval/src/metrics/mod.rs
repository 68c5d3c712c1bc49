//! Classification and ranking metrics that reproduce scikit-learn's numbers.

mod multiclass;
mod multilabel;
mod ranking;

pub use multiclass::MulticlassMetrics;
pub use multilabel::{MultilabelMetrics, multilabel_predictions};
pub use ranking::average_precision;

use crate::error::{EvalError, Result};

/// `num / den` as f64, and 0 when `den == 0` (scikit-learn's `zero_division=0`).
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 { 0.0 } else { num as f64 / den as f64 }
}

/// F1 from counts exactly as scikit-learn computes it: `2·tp / (true + predicted)`, where
/// `true = tp + fn` and `predicted = tp + fp`; 0 when both are 0.
fn f1(tp: u64, fp: u64, fn_: u64) -> f64 {
    let den = (tp + fn_) as f64 + (tp + fp) as f64;
    if den == 0.0 { 0.0 } else { 2.0 * tp as f64 / den }
}

/// Arithmetic mean of a non-empty sequence.
fn mean(values: impl ExactSizeIterator<Item = f64>) -> f64 {
    let n = values.len();
    values.sum::<f64>() / n as f64
}

/// Number of rows of a flat row-major matrix with `row_len` columns.
fn n_rows(what: &'static str, len: usize, row_len: usize) -> Result<usize> {
    if row_len == 0 {
        return Err(EvalError::Empty { what: "columns (classes or labels)" });
    }
    if !len.is_multiple_of(row_len) {
        return Err(EvalError::NotAMatrix { what, len, row_len });
    }
    Ok(len / row_len)
}

/// Converts scores to f64, rejecting NaN and ±∞ (row-major, `row_len` columns).
fn finite_scores<S: Copy + Into<f64>>(what: &'static str, scores: &[S], row_len: usize) -> Result<Vec<f64>> {
    scores
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let value: f64 = s.into();
            if value.is_finite() {
                Ok(value)
            } else {
                Err(EvalError::NonFiniteScore { what, row: i / row_len, col: i % row_len, value })
            }
        })
        .collect()
}

/// Checks that multi-hot targets are 0 or 1 (row-major, `row_len` columns).
fn check_binary_targets(what: &'static str, targets: &[u8], row_len: usize) -> Result<()> {
    match targets.iter().position(|&t| t > 1) {
        None => Ok(()),
        Some(i) => Err(EvalError::InvalidTarget { what, row: i / row_len, col: i % row_len, value: targets[i] }),
    }
}

//! Multi-label metrics from multi-hot targets and a score matrix.

use super::ranking::average_precision_of_pairs;
use super::{check_binary_targets, f1, finite_scores, mean, n_rows, ratio};
use crate::error::{EvalError, Result};

/// Turns multi-label scores into 0/1 predictions with the rule of torchmetrics 0.10
/// `MultilabelF1Score` (`_multilabel_stat_scores_format`, threshold 0.5).
///
/// If **any** score of the matrix lies outside `[0, 1]`, all scores are treated as logits
/// and mapped through the sigmoid `1 / (1 + e^(−x))` (evaluated in f64); then a value is
/// positive iff it is **strictly greater** than 0.5 (`preds > threshold`), so exactly 0.5
/// (and a logit of exactly 0) is negative. The returned flag tells whether the sigmoid
/// was applied.
///
/// torchmetrics makes the sigmoid decision per `update()` batch; here it is made once for
/// the matrix given. In f64 the sigmoid of a logit `x` exceeds 0.5 iff `x` is above about
/// 1.1e-16, so the rule is `x > 0` for all practical purposes.
///
/// `scores` is row-major `n_samples × n_labels`.
///
/// # Errors
/// `n_labels == 0`, a length that is not a multiple of `n_labels`, a non-finite score.
pub fn multilabel_predictions<S: Copy + Into<f64>>(scores: &[S], n_labels: usize) -> Result<(Vec<u8>, bool)> {
    n_rows("scores", scores.len(), n_labels)?;
    let scores = finite_scores("scores", scores, n_labels)?;
    Ok(binarize(&scores))
}

fn binarize(scores: &[f64]) -> (Vec<u8>, bool) {
    let sigmoid = !scores.iter().all(|&s| (0.0..=1.0).contains(&s));
    let predictions = scores
        .iter()
        .map(|&s| {
            let p = if sigmoid { 1.0 / (1.0 + (-s).exp()) } else { s };
            u8::from(p > 0.5)
        })
        .collect();
    (predictions, sigmoid)
}

/// Multi-label metrics, equal to scikit-learn's on the thresholded predictions (F1) and on
/// the raw scores (average precision).
///
/// * Predictions: [`multilabel_predictions`] (torchmetrics 0.10: sigmoid only if some score
///   is outside `[0, 1]`, then `> 0.5`).
/// * Per-label precision / recall / F1 with 0 for 0/0; [`macro_f1`](Self::macro_f1) is
///   the mean over **all** labels, a label with neither positives nor predictions counting
///   0 (`f1_score(average="macro", zero_division=0)`, torchmetrics `MultilabelF1Score`
///   macro); [`micro_f1`](Self::micro_f1) pools the counts of all labels.
/// * Per-label average precision = `average_precision_score(average=None)` on the raw
///   scores (the sigmoid does not enter; it is monotone, but could merge distinct scores
///   into ties); a label with no positive target gets AP 0, as scikit-learn returns (with
///   a warning), and it counts in [`mean_average_precision`](Self::mean_average_precision)
///   (`average="macro"`).
#[derive(Debug, Clone, PartialEq)]
pub struct MultilabelMetrics {
    n_samples: usize,
    n_labels: usize,
    sigmoid_applied: bool,
    tp: Vec<u64>,
    fp: Vec<u64>,
    fn_: Vec<u64>,
    /// Samples whose whole predicted row equals the target row.
    exact_matches: u64,
    average_precision: Vec<f64>,
}

impl MultilabelMetrics {
    /// Metrics of `scores` against multi-hot `targets` (0/1), both row-major
    /// `n_samples × n_labels`.
    ///
    /// # Errors
    /// No sample or `n_labels == 0` ([`EvalError::Empty`]), a targets length that is not
    /// a multiple of `n_labels`, scores of a different length, a target other than 0/1, a
    /// non-finite score.
    pub fn new<S: Copy + Into<f64>>(targets: &[u8], scores: &[S], n_labels: usize) -> Result<Self> {
        let n_samples = n_rows("targets", targets.len(), n_labels)?;
        if n_samples == 0 {
            return Err(EvalError::Empty { what: "targets" });
        }
        if scores.len() != targets.len() {
            return Err(EvalError::LengthMismatch { what: "scores", expected: targets.len(), actual: scores.len() });
        }
        check_binary_targets("targets", targets, n_labels)?;
        let scores = finite_scores("scores", scores, n_labels)?;
        let (predictions, sigmoid_applied) = binarize(&scores);

        let (mut tp, mut fp, mut fn_) = (vec![0u64; n_labels], vec![0; n_labels], vec![0; n_labels]);
        let exact_matches = targets
            .chunks_exact(n_labels)
            .zip(predictions.chunks_exact(n_labels))
            .filter(|(t, p)| t.iter().zip(p.iter()).all(|(&t, &p)| t == p))
            .count() as u64;
        for (i, (&t, &p)) in targets.iter().zip(&predictions).enumerate() {
            let k = i % n_labels;
            match (t == 1, p == 1) {
                (true, true) => tp[k] += 1,
                (false, true) => fp[k] += 1,
                (true, false) => fn_[k] += 1,
                (false, false) => {}
            }
        }

        let mut column = Vec::with_capacity(n_samples);
        let average_precision = (0..n_labels)
            .map(|k| {
                column.clear();
                column.extend((0..n_samples).map(|i| {
                    let j = i * n_labels + k;
                    (scores[j], targets[j] == 1)
                }));
                average_precision_of_pairs(&mut column)
            })
            .collect();

        Ok(Self { n_samples, n_labels, sigmoid_applied, tp, fp, fn_, exact_matches, average_precision })
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// Number of labels.
    pub fn n_labels(&self) -> usize {
        self.n_labels
    }

    /// Whether the scores were taken as logits (some score outside `[0, 1]`).
    pub fn sigmoid_applied(&self) -> bool {
        self.sigmoid_applied
    }

    /// Subset accuracy: the fraction of samples whose predicted row equals the target row
    /// exactly, `accuracy_score` of scikit-learn on multi-label indicator matrices.
    pub fn subset_accuracy(&self) -> f64 {
        ratio(self.exact_matches, self.n_samples as u64)
    }

    /// Number of positive targets of each label.
    pub fn support(&self) -> Vec<u64> {
        self.tp.iter().zip(&self.fn_).map(|(&tp, &fn_)| tp + fn_).collect()
    }

    /// Number of positive predictions of each label.
    pub fn predicted_positives(&self) -> Vec<u64> {
        self.tp.iter().zip(&self.fp).map(|(&tp, &fp)| tp + fp).collect()
    }

    /// Per-label precision, 0 for a label never predicted.
    pub fn precision(&self) -> Vec<f64> {
        (0..self.n_labels).map(|k| ratio(self.tp[k], self.tp[k] + self.fp[k])).collect()
    }

    /// Per-label recall, 0 for a label without positive targets.
    pub fn recall(&self) -> Vec<f64> {
        (0..self.n_labels).map(|k| ratio(self.tp[k], self.tp[k] + self.fn_[k])).collect()
    }

    /// Per-label F1, 0 for a label with neither positive targets nor predictions.
    pub fn f1(&self) -> Vec<f64> {
        (0..self.n_labels).map(|k| f1(self.tp[k], self.fp[k], self.fn_[k])).collect()
    }

    /// Mean of the per-label F1 over all labels (labels without support count 0).
    pub fn macro_f1(&self) -> f64 {
        mean(self.f1().into_iter())
    }

    /// F1 of the counts pooled over all labels, 0 when there is no positive target and no
    /// positive prediction at all.
    pub fn micro_f1(&self) -> f64 {
        let sum = |v: &[u64]| v.iter().sum::<u64>();
        f1(sum(&self.tp), sum(&self.fp), sum(&self.fn_))
    }

    /// Per-label average precision on the raw scores (see [`average_precision`](crate::average_precision)).
    pub fn average_precision(&self) -> &[f64] {
        &self.average_precision
    }

    /// Mean of the per-label average precision over all labels (labels without positives
    /// count 0), `average_precision_score(average="macro")`.
    pub fn mean_average_precision(&self) -> f64 {
        mean(self.average_precision.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_is_strict() {
        let (p, sigmoid) = multilabel_predictions(&[0.5, 0.5000001, 1.0, 0.0], 2).unwrap();
        assert!(!sigmoid);
        assert_eq!(p, vec![0, 1, 1, 0]);
        let (p, sigmoid) = multilabel_predictions(&[0.0f32, 1e-3, -1e-3, 0.7, 1.5, 0.2], 3).unwrap();
        assert!(sigmoid);
        assert_eq!(p, vec![0, 1, 0, 1, 1, 1]);
    }

    #[test]
    fn single_label_column() {
        // K = 1 (scikit-learn would call this "binary" and average over {0, 1}; here the
        // multi-label semantics hold): tp 1, fp 1, fn 1.
        let m = MultilabelMetrics::new(&[1, 0, 1, 0], &[0.9, 0.8, 0.1, 0.2], 1).unwrap();
        assert_eq!(m.f1(), vec![0.5]);
        assert_eq!(m.subset_accuracy(), 0.5);
        assert_eq!(m.macro_f1(), 0.5);
        assert_eq!(m.micro_f1(), 0.5);
        assert_eq!(m.average_precision(), &[0.5 * 1.0 + 0.5 * 0.5]);
    }

    #[test]
    fn label_without_anything_counts_zero() {
        let m = MultilabelMetrics::new(&[1, 0, 1, 0], &[0.9, 0.1, 0.8, 0.2], 2).unwrap();
        assert_eq!(m.f1(), vec![1.0, 0.0]);
        assert_eq!(m.macro_f1(), 0.5);
        assert_eq!(m.micro_f1(), 1.0);
        assert_eq!(m.average_precision(), &[1.0, 0.0]);
        assert_eq!(m.mean_average_precision(), 0.5);
        assert_eq!(m.support(), vec![2, 0]);
        assert_eq!(m.predicted_positives(), vec![2, 0]);
    }

    #[test]
    fn errors() {
        use EvalError::*;
        let none: [f64; 0] = [];
        assert_eq!(MultilabelMetrics::new(&[], &none, 3), Err(Empty { what: "targets" }));
        assert_eq!(MultilabelMetrics::new(&[], &none, 0), Err(Empty { what: "columns (classes or labels)" }));
        assert_eq!(
            MultilabelMetrics::new(&[0, 1, 0], &[0.1, 0.2, 0.3], 2),
            Err(NotAMatrix { what: "targets", len: 3, row_len: 2 })
        );
        assert_eq!(
            MultilabelMetrics::new(&[0, 1, 0, 1], &[0.1, 0.2, 0.3], 2),
            Err(LengthMismatch { what: "scores", expected: 4, actual: 3 })
        );
        assert_eq!(
            MultilabelMetrics::new(&[0, 1, 0, 255], &[0.1, 0.2, 0.3, 0.4], 2),
            Err(InvalidTarget { what: "targets", row: 1, col: 1, value: 255 })
        );
        assert!(matches!(
            MultilabelMetrics::new(&[0, 1, 0, 1], &[0.1, 0.2, f64::NAN, 0.4], 2),
            Err(NonFiniteScore { what: "scores", row: 1, col: 0, .. })
        ));
        assert_eq!(
            multilabel_predictions(&[0.1f32, 0.2, 0.3], 2),
            Err(NotAMatrix { what: "scores", len: 3, row_len: 2 })
        );
        assert!(matches!(
            multilabel_predictions(&[0.1f32, f32::INFINITY], 2),
            Err(NonFiniteScore { row: 0, col: 1, .. })
        ));
    }
}

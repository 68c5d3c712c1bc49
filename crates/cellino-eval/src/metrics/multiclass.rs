//! Multi-class metrics from one integer target and one prediction per sample.

use std::collections::BTreeMap;

use super::{f1, finite_scores, mean, ratio};
use crate::error::{EvalError, Result};

/// Confusion-matrix based multi-class metrics, equal to scikit-learn's.
///
/// Built from integer targets and predictions ([`from_predictions`](Self::from_predictions))
/// or from a score matrix through its arg-max ([`from_scores`](Self::from_scores)).
///
/// Per-class precision, recall and F1 are reported for every class `0..n_classes`, with 0
/// where the ratio is 0/0 (scikit-learn `zero_division=0`). The macro averages use
/// scikit-learn's default `labels`: the classes present in the targets or in the
/// predictions; classes absent from both are left out (this also equals torchmetrics'
/// `MulticlassF1Score(average="macro")`). [`macro_f1_for_labels`](Self::macro_f1_for_labels)
/// averages over a given label list instead, like `f1_score(average="macro", labels=...)`.
///
/// Memory is O(`n_classes` + distinct (target, prediction) pairs); only
/// [`confusion_matrix`](Self::confusion_matrix) builds the dense `n_classes²` matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MulticlassMetrics {
    n_classes: usize,
    n_samples: usize,
    /// Per class: true positives, samples of the class, predictions of the class.
    tp: Vec<u64>,
    true_count: Vec<u64>,
    predicted_count: Vec<u64>,
    /// Non-zero confusion entries, keyed by (true class, predicted class).
    confusion: BTreeMap<(usize, usize), u64>,
}

impl MulticlassMetrics {
    /// Metrics of `predictions` against `targets` (class indices in `0..n_classes`).
    ///
    /// # Errors
    /// No sample or `n_classes == 0` ([`EvalError::Empty`]), different lengths, a
    /// class index `>= n_classes`, or an `n_classes` whose square overflows
    /// ([`EvalError::TooManyClasses`]).
    pub fn from_predictions(targets: &[usize], predictions: &[usize], n_classes: usize) -> Result<Self> {
        if predictions.len() != targets.len() {
            return Err(EvalError::LengthMismatch {
                what: "predictions",
                expected: targets.len(),
                actual: predictions.len(),
            });
        }
        Self::from_iter(targets, predictions.iter().copied(), n_classes)
    }

    /// Metrics of the arg-max of `scores` (row-major `targets.len() × n_classes`: logits,
    /// probabilities, any finite values) against `targets`. On ties the first maximal
    /// column wins, as in `numpy.argmax` and `torch.argmax`.
    ///
    /// # Errors
    /// As [`from_predictions`](Self::from_predictions), plus a score matrix of the wrong
    /// length or a non-finite score.
    pub fn from_scores<S: Copy + Into<f64>>(targets: &[usize], scores: &[S], n_classes: usize) -> Result<Self> {
        if n_classes == 0 {
            return Err(EvalError::Empty { what: "classes" });
        }
        let expected = targets.len().saturating_mul(n_classes);
        if scores.len() != expected {
            return Err(EvalError::LengthMismatch { what: "scores", expected, actual: scores.len() });
        }
        let scores = finite_scores("scores", scores, n_classes)?;
        let predictions = scores.chunks_exact(n_classes).map(|row| {
            let mut best = 0;
            for (c, &s) in row.iter().enumerate().skip(1) {
                if s > row[best] {
                    best = c;
                }
            }
            best
        });
        Self::from_iter(targets, predictions, n_classes)
    }

    fn from_iter(targets: &[usize], predictions: impl Iterator<Item = usize>, n_classes: usize) -> Result<Self> {
        if n_classes == 0 {
            return Err(EvalError::Empty { what: "classes" });
        }
        if targets.is_empty() {
            return Err(EvalError::Empty { what: "targets" });
        }
        // The dense confusion matrix must be addressable (n² u64 within isize::MAX bytes).
        if n_classes.checked_mul(n_classes).is_none_or(|n2| n2 > isize::MAX as usize / 8) {
            return Err(EvalError::TooManyClasses { n_classes });
        }
        let mut tp = vec![0u64; n_classes];
        let mut true_count = vec![0u64; n_classes];
        let mut predicted_count = vec![0u64; n_classes];
        let mut confusion = BTreeMap::new();
        for (index, (&t, p)) in targets.iter().zip(predictions).enumerate() {
            let check = |what, label| {
                if label < n_classes {
                    Ok(())
                } else {
                    Err(EvalError::LabelOutOfRange { what, index, label, n_classes })
                }
            };
            check("targets", t)?;
            check("predictions", p)?;
            true_count[t] += 1;
            predicted_count[p] += 1;
            tp[t] += u64::from(t == p);
            *confusion.entry((t, p)).or_insert(0) += 1;
        }
        Ok(Self { n_classes, n_samples: targets.len(), tp, true_count, predicted_count, confusion })
    }

    /// Number of classes (the side of the confusion matrix).
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// Dense confusion matrix, row-major `n_classes × n_classes`: entry `[t * n_classes + p]`
    /// counts samples of true class `t` predicted as `p` (scikit-learn's
    /// `confusion_matrix(labels=range(n_classes))`).
    pub fn confusion_matrix(&self) -> Vec<u64> {
        let n = self.n_classes;
        let mut dense = vec![0u64; n * n];
        for (&(t, p), &count) in &self.confusion {
            dense[t * n + p] = count;
        }
        dense
    }

    /// Number of samples of true class `true_class` predicted as `predicted_class`
    /// (0 for indices out of range).
    pub fn confusion(&self, true_class: usize, predicted_class: usize) -> u64 {
        self.confusion.get(&(true_class, predicted_class)).copied().unwrap_or(0)
    }

    /// Fraction of correct predictions (`accuracy_score`).
    pub fn accuracy(&self) -> f64 {
        let correct: u64 = self.tp.iter().sum();
        correct as f64 / self.n_samples as f64
    }

    /// Number of samples of each true class.
    pub fn support(&self) -> Vec<u64> {
        self.true_count.clone()
    }

    /// Per-class precision `tp / (tp + fp)`, 0 for a class never predicted.
    pub fn precision(&self) -> Vec<f64> {
        (0..self.n_classes).map(|c| self.class_precision(c)).collect()
    }

    /// Per-class recall `tp / (tp + fn)`, 0 for a class without samples.
    pub fn recall(&self) -> Vec<f64> {
        (0..self.n_classes).map(|c| self.class_recall(c)).collect()
    }

    /// Per-class F1 `2·tp / (2·tp + fp + fn)`, 0 for a class neither true nor predicted.
    pub fn f1(&self) -> Vec<f64> {
        (0..self.n_classes).map(|c| self.class_f1(c)).collect()
    }

    /// Macro precision over the classes present in targets or predictions
    /// (`precision_score(average="macro", zero_division=0)`).
    pub fn macro_precision(&self) -> f64 {
        self.macro_over_present(Self::class_precision)
    }

    /// Macro recall over the classes present in targets or predictions
    /// (`recall_score(average="macro", zero_division=0)`).
    pub fn macro_recall(&self) -> f64 {
        self.macro_over_present(Self::class_recall)
    }

    /// Macro F1 over the classes present in targets or predictions
    /// (`f1_score(average="macro", zero_division=0)`; torchmetrics `MulticlassF1Score` macro).
    pub fn macro_f1(&self) -> f64 {
        self.macro_over_present(Self::class_f1)
    }

    /// Macro F1 over `labels`, whether or not they occur
    /// (`f1_score(average="macro", labels=labels, zero_division=0)`): a listed class absent
    /// from the predictions or the targets contributes F1 0. Repeated labels count each
    /// time, as in scikit-learn. CHAMMI leave-one-out scores `labels = [4, 5, 6]`.
    ///
    /// # Errors
    /// An empty `labels`, or a label `>= n_classes`.
    pub fn macro_f1_for_labels(&self, labels: &[usize]) -> Result<f64> {
        if labels.is_empty() {
            return Err(EvalError::Empty { what: "labels" });
        }
        if let Some((index, &label)) = labels.iter().enumerate().find(|&(_, &l)| l >= self.n_classes) {
            return Err(EvalError::LabelOutOfRange { what: "labels", index, label, n_classes: self.n_classes });
        }
        Ok(mean(labels.iter().map(|&c| self.class_f1(c))))
    }

    fn class_precision(&self, c: usize) -> f64 {
        ratio(self.tp[c], self.predicted_count[c])
    }

    fn class_recall(&self, c: usize) -> f64 {
        ratio(self.tp[c], self.true_count[c])
    }

    fn class_f1(&self, c: usize) -> f64 {
        let tp = self.tp[c];
        f1(tp, self.predicted_count[c] - tp, self.true_count[c] - tp)
    }

    fn macro_over_present(&self, metric: fn(&Self, usize) -> f64) -> f64 {
        let present: Vec<usize> =
            (0..self.n_classes).filter(|&c| self.true_count[c] + self.predicted_count[c] > 0).collect();
        // At least one sample, so at least one class is present.
        mean(present.into_iter().map(|c| metric(self, c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_example() {
        let m = MulticlassMetrics::from_predictions(&[0, 1, 2, 2, 4], &[0, 2, 2, 1, 5], 7).unwrap();
        assert_eq!(m.n_samples(), 5);
        assert_eq!(m.accuracy(), 0.4);
        // classes present: 0,1,2,4,5 with F1 1, 0, 0.5, 0, 0
        assert_eq!(m.macro_f1(), 1.5 / 5.0);
        assert_eq!(m.macro_f1_for_labels(&[4, 5, 6]).unwrap(), 0.0);
        assert_eq!(m.macro_f1_for_labels(&[0, 6]).unwrap(), 0.5);
        assert_eq!(m.support(), vec![1, 1, 2, 0, 1, 0, 0]);
        assert_eq!(m.confusion_matrix()[2 * 7 + 1], 1);
        assert_eq!(m.confusion(2, 1), 1);
        assert_eq!(m.confusion(1, 2), 1);
        assert_eq!(m.confusion(3, 3), 0);
    }

    #[test]
    fn argmax_takes_first_maximum() {
        let scores = [0.2f32, 0.2, 0.1, /* row 1 */ 0.0, 0.7, 0.7];
        let m = MulticlassMetrics::from_scores(&[0, 1], &scores, 3).unwrap();
        assert_eq!(m.accuracy(), 1.0);
    }

    #[test]
    fn errors() {
        use EvalError::*;
        assert_eq!(MulticlassMetrics::from_predictions(&[], &[], 3), Err(Empty { what: "targets" }));
        assert_eq!(MulticlassMetrics::from_predictions(&[0], &[0], 0), Err(Empty { what: "classes" }));
        assert_eq!(
            MulticlassMetrics::from_predictions(&[0], &[0], usize::MAX),
            Err(TooManyClasses { n_classes: usize::MAX })
        );
        // many classes are fine as long as the dense matrix is never asked for
        let m = MulticlassMetrics::from_predictions(&[0, 1], &[1, 1], 1 << 20).unwrap();
        assert_eq!(m.macro_f1(), 1.0 / 3.0);
        assert_eq!(
            MulticlassMetrics::from_predictions(&[0, 1], &[0], 2),
            Err(LengthMismatch { what: "predictions", expected: 2, actual: 1 })
        );
        assert_eq!(
            MulticlassMetrics::from_predictions(&[0, 1, 3], &[0, 1, 1], 3),
            Err(LabelOutOfRange { what: "targets", index: 2, label: 3, n_classes: 3 })
        );
        assert_eq!(
            MulticlassMetrics::from_predictions(&[0, 1], &[7, 1], 3),
            Err(LabelOutOfRange { what: "predictions", index: 0, label: 7, n_classes: 3 })
        );
        assert_eq!(
            MulticlassMetrics::from_scores(&[0, 1], &[0.1f64, 0.9, 0.3], 2),
            Err(LengthMismatch { what: "scores", expected: 4, actual: 3 })
        );
        assert_eq!(MulticlassMetrics::from_scores(&[0], &[0.1f64], 0), Err(Empty { what: "classes" }));
        assert!(matches!(
            MulticlassMetrics::from_scores(&[0, 1], &[0.1f64, 0.9, 0.3, f64::INFINITY], 2),
            Err(NonFiniteScore { what: "scores", row: 1, col: 1, .. })
        ));
        assert!(matches!(
            MulticlassMetrics::from_scores(&[0, 1, 2], &[0.1f32, 0.9, 0.3, f32::NAN, 0.0, 1.0], 2),
            Err(NonFiniteScore { row: 1, col: 1, value, .. }) if value.is_nan()
        ));
        let m = MulticlassMetrics::from_predictions(&[0, 1], &[0, 1], 3).unwrap();
        assert_eq!(m.macro_f1_for_labels(&[]), Err(Empty { what: "labels" }));
        assert_eq!(
            m.macro_f1_for_labels(&[1, 3]),
            Err(LabelOutOfRange { what: "labels", index: 1, label: 3, n_classes: 3 })
        );
    }
}

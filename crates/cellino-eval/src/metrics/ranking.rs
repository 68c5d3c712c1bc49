//! Ranking metrics: step-wise average precision (area under the precision-recall curve).

use super::{check_binary_targets, finite_scores};
use crate::error::{EvalError, Result};

/// Average precision of one binary problem, equal to scikit-learn's
/// `average_precision_score(targets, scores)`.
///
/// `AP = Σₙ (Rₙ − Rₙ₋₁)·Pₙ`, with one operating point per *distinct* score value taken in
/// decreasing order (samples with tied scores enter together), `Pₙ`/`Rₙ` the precision and
/// recall when every score ≥ the n-th threshold is called positive, and `R₋₁ = 0`. This
/// is the step integral, not the trapezoidal or 11-point interpolated one.
///
/// With no positive target, scikit-learn warns, sets recall to 1 at every threshold, and its
/// step integral is then 0: this returns `0.0` (no error).
///
/// `targets` are 0/1; `scores` are any finite values (probabilities, logits, distances
/// negated…), only their order and ties matter.
///
/// # Errors
/// Empty input, different lengths, a target other than 0/1, a non-finite score.
pub fn average_precision<S: Copy + Into<f64>>(targets: &[u8], scores: &[S]) -> Result<f64> {
    if targets.is_empty() {
        return Err(EvalError::Empty { what: "targets" });
    }
    if scores.len() != targets.len() {
        return Err(EvalError::LengthMismatch { what: "scores", expected: targets.len(), actual: scores.len() });
    }
    check_binary_targets("targets", targets, 1)?;
    let scores = finite_scores("scores", scores, 1)?;
    let mut pairs: Vec<(f64, bool)> = scores.into_iter().zip(targets.iter().map(|&t| t == 1)).collect();
    Ok(average_precision_of_pairs(&mut pairs))
}

/// Average precision of (finite score, is positive) pairs; reorders `pairs`.
pub(crate) fn average_precision_of_pairs(pairs: &mut [(f64, bool)]) -> f64 {
    let n_pos = pairs.iter().filter(|p| p.1).count();
    if n_pos == 0 {
        return 0.0;
    }
    // Scores are finite, so `partial_cmp` never fails; -0.0 and 0.0 compare equal and so
    // stay one tied group, as in NumPy.
    pairs.sort_unstable_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    let n_pos = n_pos as f64;
    let mut tp = 0u64;
    let mut prev_recall = 0.0;
    let mut sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let threshold = pairs[i].0;
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == threshold {
            tp += u64::from(pairs[j].1);
            j += 1;
        }
        // Operating point "score >= threshold": tp true positives out of j predicted.
        let recall = tp as f64 / n_pos;
        let precision = tp as f64 / j as f64;
        sum += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    // scikit-learn clips the `-0.0` that rounding can produce.
    sum.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sklearn_docstring_example() {
        // sklearn.metrics.average_precision_score docstring: 0.83...
        let ap = average_precision(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert!((ap - (0.5 * 1.0 + 0.5 * (2.0 / 3.0))).abs() < 1e-15);
    }

    #[test]
    fn ties_enter_together() {
        // one tied group holding every sample: precision 2/5 at recall 1.
        let ap = average_precision(&[1, 0, 1, 0, 0], &[0.5f32; 5]).unwrap();
        assert_eq!(ap, 0.4);
    }

    #[test]
    fn no_positive_gives_zero() {
        assert_eq!(average_precision(&[0, 0, 0], &[0.1, 0.5, 0.9]).unwrap(), 0.0);
    }

    #[test]
    fn errors() {
        let empty: [f64; 0] = [];
        assert_eq!(average_precision(&[], &empty), Err(EvalError::Empty { what: "targets" }));
        assert_eq!(
            average_precision(&[0, 1], &[0.5]),
            Err(EvalError::LengthMismatch { what: "scores", expected: 2, actual: 1 })
        );
        assert_eq!(
            average_precision(&[0, 2], &[0.5, 0.1]),
            Err(EvalError::InvalidTarget { what: "targets", row: 1, col: 0, value: 2 })
        );
        assert!(matches!(
            average_precision(&[0, 1], &[0.5, f64::NAN]),
            Err(EvalError::NonFiniteScore { row: 1, col: 0, .. })
        ));
        assert!(matches!(
            average_precision(&[0, 1], &[f32::NEG_INFINITY, 0.5]),
            Err(EvalError::NonFiniteScore { row: 0, col: 0, value, .. }) if value == f64::NEG_INFINITY
        ));
    }
}

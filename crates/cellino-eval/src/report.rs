//! Serialisable summaries of the metric types, as written in result JSON files.

use serde::{Deserialize, Serialize};

use crate::data::Targets;
use crate::error::Result;
use crate::metrics::{MulticlassMetrics, MultilabelMetrics};

/// The metrics of one split, as reported: every variant has `accuracy` and `macro_f1`
/// (0–1 floats) at the top level of its JSON object, next to `"kind"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SplitMetrics {
    /// From [`MulticlassMetrics`] (arg-max predictions).
    Multiclass(MulticlassSummary),
    /// From [`MultilabelMetrics`] (torchmetrics 0.10 `> 0.5` rule).
    Multilabel(MultilabelSummary),
}

impl SplitMetrics {
    /// Metrics of a score matrix (row-major `n_samples × n_outputs`: logits, kNN votes…)
    /// against targets: arg-max for multi-class, [`MultilabelMetrics`] for multi-label.
    ///
    /// # Errors
    /// Those of [`MulticlassMetrics::from_scores`] and [`MultilabelMetrics::new`].
    pub fn from_scores<S: Copy + Into<f64>>(targets: Targets<'_>, scores: &[S]) -> Result<Self> {
        Ok(match targets {
            Targets::Multiclass { labels, n_classes } => {
                Self::Multiclass(MulticlassMetrics::from_scores(labels, scores, n_classes)?.into())
            }
            Targets::Multilabel { targets, n_labels } => {
                Self::Multilabel(MultilabelMetrics::new(targets, scores, n_labels)?.into())
            }
        })
    }

    /// Accuracy: top-1 for multi-class, subset (exact-match) accuracy for multi-label
    /// (scikit-learn `accuracy_score` in both cases).
    pub fn accuracy(&self) -> f64 {
        match self {
            Self::Multiclass(m) => m.accuracy,
            Self::Multilabel(m) => m.accuracy,
        }
    }

    /// Macro F1 (multi-class: over the classes present in targets or predictions;
    /// multi-label: over all labels).
    pub fn macro_f1(&self) -> f64 {
        match self {
            Self::Multiclass(m) => m.macro_f1,
            Self::Multilabel(m) => m.macro_f1,
        }
    }

    /// Number of samples scored.
    pub fn n_samples(&self) -> usize {
        match self {
            Self::Multiclass(m) => m.n_samples,
            Self::Multilabel(m) => m.n_samples,
        }
    }
}

/// Everything [`MulticlassMetrics`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MulticlassSummary {
    pub n_samples: usize,
    pub n_classes: usize,
    pub accuracy: f64,
    /// `f1_score(average="macro")`: over classes present in targets or predictions.
    pub macro_f1: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub per_class_f1: Vec<f64>,
    pub per_class_precision: Vec<f64>,
    pub per_class_recall: Vec<f64>,
    pub support: Vec<u64>,
    /// Rows = true class, columns = predicted class.
    pub confusion_matrix: Vec<Vec<u64>>,
}

impl From<MulticlassMetrics> for MulticlassSummary {
    fn from(m: MulticlassMetrics) -> Self {
        let n = m.n_classes();
        let flat = m.confusion_matrix();
        Self {
            n_samples: m.n_samples(),
            n_classes: n,
            accuracy: m.accuracy(),
            macro_f1: m.macro_f1(),
            macro_precision: m.macro_precision(),
            macro_recall: m.macro_recall(),
            per_class_f1: m.f1(),
            per_class_precision: m.precision(),
            per_class_recall: m.recall(),
            support: m.support(),
            confusion_matrix: flat.chunks_exact(n).map(<[u64]>::to_vec).collect(),
        }
    }
}

/// Everything [`MultilabelMetrics`] reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultilabelSummary {
    pub n_samples: usize,
    pub n_labels: usize,
    /// Subset accuracy (exact match of the whole predicted row).
    pub accuracy: f64,
    /// Mean per-label F1 over all labels (labels without support count 0).
    pub macro_f1: f64,
    pub micro_f1: f64,
    pub per_label_f1: Vec<f64>,
    pub per_label_precision: Vec<f64>,
    pub per_label_recall: Vec<f64>,
    pub support: Vec<u64>,
    pub average_precision: Vec<f64>,
    /// Mean average precision (AUPRC, step-wise) over all labels.
    pub mean_average_precision: f64,
    /// Whether the scores were treated as logits (some score outside [0, 1]).
    pub sigmoid_applied: bool,
}

impl From<MultilabelMetrics> for MultilabelSummary {
    fn from(m: MultilabelMetrics) -> Self {
        Self {
            n_samples: m.n_samples(),
            n_labels: m.n_labels(),
            accuracy: m.subset_accuracy(),
            macro_f1: m.macro_f1(),
            micro_f1: m.micro_f1(),
            per_label_f1: m.f1(),
            per_label_precision: m.precision(),
            per_label_recall: m.recall(),
            support: m.support(),
            average_precision: m.average_precision().to_vec(),
            mean_average_precision: m.mean_average_precision(),
            sigmoid_applied: m.sigmoid_applied(),
        }
    }
}

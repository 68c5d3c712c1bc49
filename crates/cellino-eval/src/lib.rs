//! Embedding evaluation for cellino.
//!
//! Today this crate holds the classification metrics that evaluations report, written to
//! give **the same numbers as scikit-learn** (to 1e-12 in f64; checked against fixtures
//! made by `xtask/py/make_metric_fixtures.py`) and, where the Cell-DINO code uses
//! torchmetrics 0.10, the same rules as torchmetrics. The linear probe, kNN and CHAMMI
//! protocols land here next.
//!
//! | metric | type / function | reference |
//! |---|---|---|
//! | accuracy, confusion matrix, per-class P/R/F1 | [`MulticlassMetrics`] | `accuracy_score`, `confusion_matrix`, `precision_recall_fscore_support(zero_division=0)` |
//! | multi-class macro F1 | [`MulticlassMetrics::macro_f1`] | `f1_score(average="macro", zero_division=0)`: mean over the classes present in targets or predictions (= torchmetrics `MulticlassF1Score` macro) |
//! | macro F1 on a label list (CHAMMI LOO: `[4, 5, 6]`) | [`MulticlassMetrics::macro_f1_for_labels`] | `f1_score(average="macro", labels=..., zero_division=0)`: absent labels count 0 |
//! | multi-label predictions | [`multilabel_predictions`] | torchmetrics 0.10: sigmoid only if some score is outside `[0, 1]`, then **`> 0.5`** |
//! | multi-label per-label / macro / micro F1 | [`MultilabelMetrics`] | `f1_score(average=None / "macro" / "micro", zero_division=0)` on those predictions; labels without support count 0 in the macro mean |
//! | average precision, mAP | [`average_precision`], [`MultilabelMetrics::mean_average_precision`] | `average_precision_score` (step-wise, one threshold per distinct score; no positives → 0) |
//!
//! Inputs are plain slices: class indices as `usize`, multi-hot targets as `u8` (0/1),
//! scores as any `Copy + Into<f64>` (`f32`, `f64`), matrices flat and row-major
//! (samples × classes). All arithmetic is in f64. Bad input (empty, mismatched lengths,
//! out-of-range labels, non-finite scores, targets other than 0/1, a class count whose
//! confusion matrix could not exist) is a [`MetricsError`],
//! never a panic.
//!
//! ```
//! use cellino_eval::{MulticlassMetrics, MultilabelMetrics};
//!
//! // Multi-class: 7 classes, CHAMMI-style novel classes 4, 5, 6.
//! let targets = [0, 1, 2, 2, 4, 5];
//! let predictions = [0, 1, 2, 1, 4, 0];
//! let m = MulticlassMetrics::from_predictions(&targets, &predictions, 7)?;
//! assert_eq!(m.accuracy(), 4.0 / 6.0);
//! // classes 0,1,2,4,5 are present (6 is not): F1 = 2/3, 2/3, 2/3, 1, 0
//! assert!((m.macro_f1() - 3.0 / 5.0).abs() < 1e-15);
//! // class 6 is listed, so it counts as 0: (1 + 0 + 0) / 3
//! assert!((m.macro_f1_for_labels(&[4, 5, 6])? - 1.0 / 3.0).abs() < 1e-15);
//!
//! // Multi-label: 3 samples × 2 labels, logits (a score outside [0, 1] → sigmoid).
//! let targets = [1, 0, /**/ 0, 0, /**/ 1, 0];
//! let logits = [2.5f32, -1.0, /**/ -0.5, 0.3, /**/ 0.7, -2.0];
//! let m = MultilabelMetrics::new(&targets, &logits, 2)?;
//! assert!(m.sigmoid_applied());
//! assert_eq!(m.f1(), vec![1.0, 0.0]); // label 1: no positive target, one false positive
//! assert_eq!(m.macro_f1(), 0.5);
//! assert_eq!(m.average_precision(), &[1.0, 0.0]); // no positives → AP 0 (as scikit-learn)
//! # Ok::<(), cellino_eval::MetricsError>(())
//! ```

mod error;
mod metrics;

pub use error::{MetricsError, Result};
pub use metrics::{MulticlassMetrics, MultilabelMetrics, average_precision, multilabel_predictions};

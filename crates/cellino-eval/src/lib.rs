//! Embedding evaluation for cellino: feature extraction to analysis-ready files, the
//! Cell-DINO linear probe and kNN on in-memory feature matrices, the CHAMMI tasks (1-NN,
//! kNN, linear, leave-one-group-out), and classification metrics identical to
//! scikit-learn's.
//!
//! Not here yet: Parquet output of the metadata table (the `parquet`/`arrow` crates are a
//! long build; the CSV is read by pandas and polars as is).
//!
//! # Channel-subset sweep ([`channel_sweep`])
//!
//! Bag-of-Channels rows are per-channel blocks ([`FeatureLayout`]), so the features of a
//! channel subset are its blocks in column order ([`subset_columns`]). [`channel_sweep`]
//! scores every non-empty subset (at most [`MAX_SWEEP_CHANNELS`] channels) or a list of
//! subsets by channel name with kNN or the linear probe ([`SweepResult`]: macro F1,
//! accuracy).
//!
//! # Feature extraction ([`extract_features`], spec §3–4)
//!
//! A frozen [`DinoVisionTransformer`](cellino_vit::DinoVisionTransformer) over a
//! [`Dataset`](cellino_data::Dataset) (manifest, folder, CHAMMI, HPA), batched, loaded and
//! transformed in parallel by the data crate's [`Loader`](cellino_data::Loader) with the
//! evaluation centre crop ([`EvalTransform`](cellino_data::EvalTransform), zero padding),
//! rows in dataset order. [`ExtractConfig`] picks the CLS of the last `n` blocks (oldest
//! first), the last block's patch-token average, Bag of Channels (the 1-channel model on
//! every channel, concatenated in channel order) and L2 normalisation of the whole row (kNN):
//! `n·D (+D)` columns, or `n·C·D (+C·D)` with Bag of Channels ([`FeatureLayout`] lists the
//! column range of every block × channel [`Segment`]). An optional callback receives
//! [`Progress`] after every batch; the library prints nothing.
//!
//! [`write_embeddings`] writes, atomically (temporary files renamed only when all four are
//! complete, the `.npy` last):
//!
//! * `emb.npy`: float32 `(N, D)`, C order, row `i` = record `i`;
//! * `emb.csv`: `row_index, source_path, manifest_line`, the dataset's metadata columns,
//!   `label` (class index; `;`-joined indices for multi-label) and `label_name`;
//! * `emb.parquet`: the same table for pandas / polars (`pd.read_parquet`): `row_index` and
//!   `manifest_line` INT64, the other columns UTF-8 strings;
//! * `emb.json` ([`EmbeddingSidecar`]): checkpoint path, SHA-256 and size, architecture and
//!   full [`VitConfig`](cellino_vit::VitConfig), dataset and manifest, channel names, transform
//!   (resize, crop size, divisor), the [`FeatureLayout`] (so per-channel BoC blocks are
//!   recoverable), label names and metadata columns.
//!
//! [`read_embeddings`] reads the `.npy`, `.csv` and `.json` back into an [`EmbeddingSet`] (features, labels,
//! metadata), checking that they agree.
//!
//! ```no_run
//! use cellino_data::{EvalTransform, open_dataset};
//! use cellino_eval::{ExtractConfig, ModelSource, extract_features, read_embeddings, write_embeddings};
//! use cellino_vit::{Arch, DinoVisionTransformer, PosEmbedInterpolation};
//!
//! let ckpt = std::path::Path::new("boc_vitl16.pth");
//! let model = DinoVisionTransformer::load(ckpt, Some(Arch::VitLarge), None, PosEmbedInterpolation::DINOV2)?;
//! let dataset = open_dataset("CHAMMI_HPA:split=TRAIN:root=/data/chammi")?.dataset;
//! let config = ExtractConfig {
//!     n_last_blocks: 1,
//!     avgpool: true,
//!     bag_of_channels: true,
//!     transform: EvalTransform::center(224, 256),
//!     ..ExtractConfig::default()
//! };
//! let mut report = |p: cellino_eval::Progress| eprint!("\r{}/{}", p.done, p.total);
//! let features = extract_features(&model, &dataset, &config, Some(&mut report))?;
//! let source = ModelSource { checkpoint: Some(ckpt), arch: Some(Arch::VitLarge) };
//! write_embeddings("hpa_train.npy", &features, model.config(), source)?;
//! let set = read_embeddings("hpa_train.npy")?; // 4 channels × 2 × 1024 = 8,192 columns
//! assert_eq!(set.dim, 8192);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # CHAMMI tasks ([`ChammiTask`], spec §6.4–6.5)
//!
//! [`chammi_task_inputs`] pairs the TRAIN and task embeddings of a subset (checking the class
//! list); [`ChammiTask::run`] fits a [`ChammiClassifier`] — weighted kNN (several `k`), the
//! exact 1-NN (L2 or cosine) or the linear-probe grid — and reports macro F1 and accuracy
//! ([`ChammiTaskReport`]). HPA Task 3 and CP Task 4 are leave-one-group-out ([`LeaveOneOut`]:
//! groups from the `cell_type` / `Plate` metadata column or given): per group, the classifier
//! is fitted on TRAIN plus the other groups' rows and predicts the group; the concatenated
//! predictions are scored with `f1_score(average="macro", labels=[4, 5, 6])`, on the last
//! block's CLS (+ patch average) columns only, whatever `n_last_blocks` was. The linear probe
//! selects its hyper-parameters on rows carved from the fitted rows
//! ([`ProbeSelection::CarveFromTrain`], per fold) unless the upstream rule (select on the
//! reported split) is asked for explicitly and labelled. The 1-NN (L2, cosine), kNN and
//! leave-one-out scores of every WTC / HPA / CP task match an independent scikit-learn
//! implementation to 1e-12 (`xtask/py/chammi_reference.py`, `tests/chammi_reference.rs`).
//!
//! # Inputs
//!
//! Features are row-major `f32` matrices ([`FeatureMatrix`]: checked finite, non-empty);
//! targets are class indices (`usize`) or multi-hot rows (`u8` 0/1) ([`Targets`]); a
//! [`Split`] pairs them and checks row counts and label ranges. Bad input (NaN features,
//! mismatched rows or dimensions, labels outside the class list, splits too small for the
//! protocol, impossible configurations) is an [`EvalError`], never a panic.
//!
//! # Linear probe ([`run_linear_probe`], spec §6.1)
//!
//! A grid of `Linear(dim, K)` classifiers (default 16 learning rates × 3 weight decays,
//! learning rate outer) is trained jointly on frozen features, as one `(dim, G·K)` matrix
//! product per step: weights `N(0, 0.01)` and biases 0 from a seeded generator, summed
//! cross-entropy (multi-class) or BCE-with-logits (multi-label) loss, AdamW with PyTorch
//! semantics (β 0.9/0.999, ε 1e-8, decoupled decay on weights and biases), learning rate
//! `lr · batch / 256` under `CosineAnnealingLR(epochs · epoch_length, 0)` stepped per
//! iteration, batches from a seeded infinite shuffled sampler ([`GridTrainer`],
//! [`InfiniteSampler`]; PyTorch parity to 1e-5, see `tests/probe_parity.rs`).
//!
//! The best classifier (macro F1 by default; the first in grid order on ties) is chosen on
//! a [`Validation`] split that is **not** the reported one: a given validation split, or
//! rows carved from train with a fixed seed (said so in the report). Upstream dinov2's
//! choice on the reported split is available as [`Validation::UpstreamSelectOnTest`],
//! labelled in the report. [`LinearProbeReport`] (serde) holds the chosen classifier's
//! upstream name (`classifier_4_blocks_avgpool_False_lr_0_00025_wd_1_00E-04`), its
//! validation and test [`SplitMetrics`] and the whole grid.
//!
//! # kNN ([`knn_evaluate`], spec §6.3) and 1-NN ([`nearest_neighbours`])
//!
//! L2-normalised features, cosine = dot product, top-`max(k)` per query, weights
//! `softmax(sim / T)` (T = 0.07) over those neighbours, and for each `k` the sum of the
//! first `k` weights times the one-hot (multi-hot) targets, without renormalising; several
//! `k` at once. The exact 1-NN of CHAMMI uses L2 or cosine distance in f64. Both searches
//! are blocked over queries and train rows ([`Blocking`]) with a bounded heap per query and
//! run multi-threaded; the full similarity matrix never exists. Ties: the lower train index
//! ranks first; vote ties go to the lower class.
//!
//! ```
//! use cellino_eval::{
//!     KnnConfig, LinearProbeConfig, SelectionSource, Split, Targets, Validation, knn_evaluate, run_linear_probe,
//! };
//!
//! // Two well separated classes in 2-D (20 train rows, 6 test rows).
//! let point = |i: usize| -> [f32; 2] {
//!     let jitter = (i % 5) as f32 * 0.1;
//!     if i % 2 == 0 { [1.0 + jitter, 0.2] } else { [-0.2, 1.0 + jitter] }
//! };
//! let train_x: Vec<f32> = (0..20).flat_map(point).collect();
//! let train_y: Vec<usize> = (0..20).map(|i| i % 2).collect();
//! let test_x: Vec<f32> = (0..6).flat_map(point).collect();
//! let test_y: Vec<usize> = (0..6).map(|i| i % 2).collect();
//! let train = Split::from_parts(&train_x, 2, Targets::multiclass(&train_y, 2))?;
//! let test = Split::from_parts(&test_x, 2, Targets::multiclass(&test_y, 2))?;
//!
//! // kNN with k = 1 and 5.
//! let knn = knn_evaluate(&train, &test, &KnnConfig::with_ks(&[1, 5]))?;
//! assert_eq!(knn.k[&1].accuracy(), 1.0);
//!
//! // Linear probe: a small grid, validation carved from train (10 %, seed 0).
//! let config = LinearProbeConfig {
//!     learning_rates: vec![0.1, 1.0],
//!     weight_decays: vec![0.0, 1e-4],
//!     batch_size: 8,
//!     epochs: 4,
//!     epoch_length: Some(10),
//!     ..LinearProbeConfig::default()
//! };
//! let report = run_linear_probe(&train, Validation::DEFAULT_CARVE, &test, &config)?;
//! assert!(matches!(report.selection.source, SelectionSource::CarvedFromTrain { .. }));
//! assert_eq!(report.grid.len(), 4);
//! assert_eq!(report.test.macro_f1(), 1.0);
//! println!("{} → test macro F1 {}", report.best_classifier, report.test.macro_f1());
//! # Ok::<(), cellino_eval::EvalError>(())
//! ```
//!
//! # Metrics
//!
//! The metrics give **the same numbers as scikit-learn** (to 1e-12 in f64; checked against
//! fixtures made by `xtask/py/make_metric_fixtures.py`) and, where the Cell-DINO code uses
//! torchmetrics 0.10, the same rules as torchmetrics.
//!
//! | metric | type / function | reference |
//! |---|---|---|
//! | accuracy, confusion matrix, per-class P/R/F1 | [`MulticlassMetrics`] | `accuracy_score`, `confusion_matrix`, `precision_recall_fscore_support(zero_division=0)` |
//! | multi-class macro F1 | [`MulticlassMetrics::macro_f1`] | `f1_score(average="macro", zero_division=0)`: mean over the classes present in targets or predictions (= torchmetrics `MulticlassF1Score` macro) |
//! | macro F1 on a label list (CHAMMI LOO: `[4, 5, 6]`) | [`MulticlassMetrics::macro_f1_for_labels`] | `f1_score(average="macro", labels=..., zero_division=0)`: absent labels count 0 |
//! | multi-label predictions | [`multilabel_predictions`] | torchmetrics 0.10: sigmoid only if some score is outside `[0, 1]`, then **`> 0.5`** |
//! | multi-label per-label / macro / micro F1 | [`MultilabelMetrics`] | `f1_score(average=None / "macro" / "micro", zero_division=0)` on those predictions; labels without support count 0 in the macro mean |
//! | multi-label subset accuracy | [`MultilabelMetrics::subset_accuracy`] | `accuracy_score` on indicator matrices (exact row match) |
//! | average precision, mAP | [`average_precision`], [`MultilabelMetrics::mean_average_precision`] | `average_precision_score` (step-wise, one threshold per distinct score; no positives → 0) |
//!
//! Metric inputs are plain slices: class indices as `usize`, multi-hot targets as `u8`
//! (0/1), scores as any `Copy + Into<f64>` (`f32`, `f64`), matrices flat and row-major
//! (samples × classes). All arithmetic is in f64. [`SplitMetrics`] is their serialisable
//! summary, with `accuracy` and `macro_f1` at the top of its JSON object.
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
//! # Ok::<(), cellino_eval::EvalError>(())
//! ```

mod atomic;
mod chammi;
mod data;
mod embeddings;
mod error;
mod extract;
mod knn;
mod layout;
mod linear;
mod metrics;
mod npy;
mod numeric;
mod parquet_table;
mod report;
mod sidecar;
mod sweep;

pub use atomic::{write_all_atomic, write_atomic};
pub use chammi::{
    CHAMMI_NOVEL_LABELS, ChammiClassifier, ChammiInputs, ChammiScore, ChammiTask, ChammiTaskReport, LeaveOneOut,
    ProbeSelection, chammi_task_inputs,
};
pub use embeddings::{
    EmbeddingPaths, EmbeddingSet, LABEL_COLUMNS, LEADING_COLUMNS, ModelSource, StoredLabels, read_embeddings,
    write_embeddings,
};
pub use extract::{ExtractConfig, Extracted, Progress, extract_features, l2_normalize};
pub use layout::{FeatureLayout, Segment, SegmentKind};
pub use npy::{npy_f32_bytes, read_npy_f32};
pub use sidecar::{CheckpointInfo, EmbeddingSidecar, LabelInfo, ModelInfo, SIDECAR_FORMAT_VERSION, TransformInfo};
pub use sweep::{
    MAX_SWEEP_CHANNELS, SweepClassifier, SweepResult, SweepSubsets, channel_sweep, channel_sweep_reporting,
    layout_channel_names, select_columns, subset_columns,
};

pub use data::{FeatureMatrix, Split, Targets, Task};
pub use error::{EvalError, MetricsError, Result};
pub use knn::{
    Blocking, DEFAULT_TEMPERATURE, Distance, KnnConfig, KnnReport, KnnScores, Neighbour, Neighbours, cosine_neighbours,
    knn_evaluate, knn_evaluate_reporting, knn_scores, nearest_neighbours, nearest_neighbours_reporting, one_nn_predict,
};
pub use linear::{
    AdamWParams, ClassifierSpec, DEFAULT_LEARNING_RATES, DEFAULT_WEIGHT_DECAYS, GridRow, GridTrainer, InfiniteSampler,
    LinearGrid, LinearProbeConfig, LinearProbeReport, LossKind, Selection, SelectionMetric, SelectionSource,
    TrainedGrid, Validation, run_linear_probe, run_linear_probe_reporting, train_linear_grid,
    train_linear_grid_reporting,
};
pub use metrics::{MulticlassMetrics, MultilabelMetrics, average_precision, multilabel_predictions};
pub use report::{MulticlassSummary, MultilabelSummary, SplitMetrics};

/// Checks shared by the tests of the `*_reporting` functions.
#[cfg(test)]
pub(crate) mod testing {
    /// Runs `f` with a callback that records every `(done, total)` call and checks them: at
    /// least one, one total throughout, `done` strictly increasing and ending at the total.
    /// Returns `f`'s result and the total.
    pub(crate) fn recording<T>(f: impl FnOnce(&mut dyn FnMut(usize, usize)) -> T) -> (T, usize) {
        let mut calls: Vec<(usize, usize)> = Vec::new();
        let out = f(&mut |done, total| calls.push((done, total)));
        let &(last, total) = calls.last().expect("no progress reported");
        assert!(calls.iter().all(|&(_, t)| t == total), "the total changed: {calls:?}");
        assert!(calls.windows(2).all(|w| w[0].0 < w[1].0), "not increasing: {calls:?}");
        assert_eq!(last, total, "{calls:?}");
        (out, total)
    }
}

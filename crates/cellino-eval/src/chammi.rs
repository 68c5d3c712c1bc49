//! CHAMMI tasks (spec §6.4–6.5): a classifier fitted on the TRAIN split and scored on a task
//! split with macro F1, and the leave-one-group-out variant (HPA Task 3 by `cell_type`, CP
//! Task 4 by `Plate`) scored over the novel labels `[4, 5, 6]`.

use std::collections::BTreeMap;

use cellino_data::{ChammiSplit, ChammiSubset};
use serde::{Deserialize, Serialize};

use crate::data::{FeatureMatrix, Split, Targets};
use crate::embeddings::{EmbeddingSet, StoredLabels};
use crate::error::{EvalError, Result};
use crate::knn::{Distance, KnnConfig, knn_scores, one_nn_predict};
use crate::linear::{LinearProbeConfig, Validation, carve, metrics_or_diverged, run_linear_probe, train_linear_grid};
use crate::metrics::MulticlassMetrics;
use crate::report::SplitMetrics;

/// The novel classes of the CHAMMI leave-one-out tasks.
pub const CHAMMI_NOVEL_LABELS: [usize; 3] = [4, 5, 6];

/// How the linear probe's hyper-parameters are chosen in a CHAMMI task.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeSelection {
    /// Hold out `fraction` of the rows the classifiers are fitted on (seeded) and select
    /// there (leave-one-out: separately in every fold). The reported split is never used.
    CarveFromTrain { fraction: f64, seed: u64 },
    /// **Upstream** (`launcher_linear_eval_on_chammi.sh`): select on the reported task split
    /// (leave-one-out: the classifier with the best novel-label F1 over all groups).
    UpstreamSelectOnTest,
}

/// The classifier of a CHAMMI task.
#[derive(Debug, Clone, PartialEq)]
pub enum ChammiClassifier {
    /// DINOv2 weighted kNN (cosine, softmax(sim / T) votes), one score per `k`.
    Knn(KnnConfig),
    /// The exact 1-NN of the MorphEm protocol (L2 or cosine).
    OneNn(Distance),
    /// The linear-probe grid.
    Linear { config: LinearProbeConfig, selection: ProbeSelection },
}

impl ChammiClassifier {
    fn name(&self) -> String {
        match self {
            Self::Knn(_) => "knn".into(),
            Self::OneNn(Distance::L2) => "1nn_l2".into(),
            Self::OneNn(Distance::Cosine) => "1nn_cosine".into(),
            Self::Linear { .. } => "linear".into(),
        }
    }
}

/// Leave-one-group-out: one group per test row; each group is predicted by classifiers
/// fitted on TRAIN plus the test rows of the other groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveOneOut {
    /// Group of every test row (HPA `cell_type`, CP `Plate`).
    pub groups: Vec<String>,
    /// The labels macro F1 is computed over (`[4, 5, 6]`).
    pub labels: Vec<usize>,
}

/// One CHAMMI task: multi-class train and test splits (same classes and dimension).
#[derive(Debug, Clone)]
pub struct ChammiTask<'a> {
    /// E.g. `HPA/TASK_THREE`.
    pub name: String,
    pub train: Split<'a>,
    pub test: Split<'a>,
    pub leave_one_out: Option<LeaveOneOut>,
}

/// One score of a task (a `k` of kNN, the 1-NN, the selected linear classifier).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChammiScore {
    /// Macro F1 (leave-one-out: over the novel labels, sklearn `f1_score(labels=…)`).
    pub macro_f1: f64,
    pub accuracy: f64,
    /// The full metrics of the (concatenated) predictions.
    pub metrics: SplitMetrics,
}

/// Result of [`ChammiTask::run`]. `macro_f1` and `accuracy` are the headline numbers (kNN:
/// the first configured `k`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChammiTaskReport {
    pub task: String,
    pub classifier: String,
    pub macro_f1: f64,
    pub accuracy: f64,
    /// Every score, keyed `k=<k>` (kNN), `1nn`, or `linear`.
    pub scores: BTreeMap<String, ChammiScore>,
    pub n_train: usize,
    pub n_test: usize,
    pub dim: usize,
    /// Leave-one-out: the labels scored and the groups, in first-seen order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_one_out_labels: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_one_out_groups: Option<Vec<String>>,
    /// Linear: the selected classifier (per fold for carved leave-one-out selection).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selected_classifiers: Vec<String>,
    /// How hyper-parameters were selected, for humans.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selection_note: String,
}

fn class_labels<'a>(split: &Split<'a>, what: &'static str) -> Result<(&'a [usize], usize)> {
    match split.targets() {
        Targets::Multiclass { labels, n_classes } => Ok((labels, n_classes)),
        Targets::Multilabel { .. } => Err(EvalError::InvalidConfig {
            what,
            reason: "CHAMMI tasks are multi-class; got multi-label targets".into(),
        }),
    }
}

fn score(targets: &[usize], predictions: &[usize], n_classes: usize, labels: Option<&[usize]>) -> Result<ChammiScore> {
    let m = MulticlassMetrics::from_predictions(targets, predictions, n_classes)?;
    let macro_f1 = match labels {
        Some(l) => m.macro_f1_for_labels(l)?,
        None => m.macro_f1(),
    };
    Ok(ChammiScore { macro_f1, accuracy: m.accuracy(), metrics: SplitMetrics::Multiclass(m.into()) })
}

fn argmax_rows(scores: &[f32], k: usize) -> Vec<usize> {
    scores
        .chunks_exact(k)
        .map(|row| {
            let mut best = 0;
            for (i, &x) in row.iter().enumerate().skip(1) {
                if x > row[best] {
                    best = i;
                }
            }
            best
        })
        .collect()
}

/// One leave-one-out fold: the rows fitted on and the test rows predicted.
struct Fold {
    features: Vec<f32>,
    labels: Vec<usize>,
    test_rows: Vec<usize>,
}

impl<'a> ChammiTask<'a> {
    /// Fits the classifier and scores the task.
    ///
    /// # Errors
    /// Multi-label or mismatched splits, a group list that is not one per test row, invalid
    /// classifier settings, too few samples.
    pub fn run(&self, classifier: &ChammiClassifier) -> Result<ChammiTaskReport> {
        self.run_reporting(classifier, &mut |_, _| {})
    }

    /// [`ChammiTask::run`], calling `progress(done, total)` after every fitted fold (for a
    /// progress bar): once for a plain task (TRAIN → task split), once per held-out group for
    /// leave-one-out, where the folds are the time (every fold refits on TRAIN + the others).
    pub fn run_reporting(
        &self,
        classifier: &ChammiClassifier,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ChammiTaskReport> {
        self.train.check_compatible(&self.test, "CHAMMI task split (vs train)")?;
        let (train_y, n_classes) = class_labels(&self.train, "CHAMMI train split")?;
        let (test_y, _) = class_labels(&self.test, "CHAMMI task split")?;
        let mut report = ChammiTaskReport {
            task: self.name.clone(),
            classifier: classifier.name(),
            macro_f1: 0.0,
            accuracy: 0.0,
            scores: BTreeMap::new(),
            n_train: self.train.n_samples(),
            n_test: self.test.n_samples(),
            dim: self.train.features().dim(),
            leave_one_out_labels: None,
            leave_one_out_groups: None,
            selected_classifiers: Vec::new(),
            selection_note: String::new(),
        };
        match &self.leave_one_out {
            None => {
                self.run_plain(classifier, train_y, test_y, n_classes, &mut report)?;
                progress(1, 1);
            }
            Some(loo) => self.run_loo(classifier, loo, train_y, test_y, n_classes, &mut report, progress)?,
        }
        let head = match classifier {
            ChammiClassifier::Knn(c) => c.ks.first().map(|k| format!("k={k}")),
            ChammiClassifier::OneNn(_) => Some("1nn".into()),
            ChammiClassifier::Linear { .. } => Some("linear".into()),
        };
        if let Some(s) = head.and_then(|h| report.scores.get(&h)) {
            (report.macro_f1, report.accuracy) = (s.macro_f1, s.accuracy);
        }
        Ok(report)
    }

    fn run_plain(
        &self,
        classifier: &ChammiClassifier,
        train_y: &[usize],
        test_y: &[usize],
        n_classes: usize,
        report: &mut ChammiTaskReport,
    ) -> Result<()> {
        let (train_x, test_x) = (self.train.features(), self.test.features());
        match classifier {
            ChammiClassifier::Knn(config) => {
                let votes = knn_scores(&self.train, &test_x, config)?;
                for (k, s) in votes.ks.iter().zip(&votes.scores) {
                    let s = score(test_y, &argmax_rows(s, n_classes), n_classes, None)?;
                    report.scores.insert(format!("k={k}"), s);
                }
            }
            ChammiClassifier::OneNn(distance) => {
                let pred = one_nn_predict(&train_x, train_y, &test_x, *distance, config_blocking())?;
                report.scores.insert("1nn".into(), score(test_y, &pred, n_classes, None)?);
            }
            ChammiClassifier::Linear { config, selection } => {
                let validation = match *selection {
                    ProbeSelection::CarveFromTrain { fraction, seed } => Validation::CarveFromTrain { fraction, seed },
                    ProbeSelection::UpstreamSelectOnTest => Validation::UpstreamSelectOnTest,
                };
                let r = run_linear_probe(&self.train, validation, &self.test, config)?;
                let s = ChammiScore { macro_f1: r.test.macro_f1(), accuracy: r.test.accuracy(), metrics: r.test };
                report.scores.insert("linear".into(), s);
                report.selected_classifiers = vec![r.best_classifier];
                report.selection_note = r.selection.note;
            }
        }
        Ok(())
    }

    fn folds(&self, loo: &LeaveOneOut, train_y: &[usize], test_y: &[usize]) -> Result<(Vec<String>, Vec<Fold>)> {
        if loo.groups.len() != self.test.n_samples() {
            return Err(EvalError::LengthMismatch {
                what: "leave-one-out groups (one per test row)",
                expected: self.test.n_samples(),
                actual: loo.groups.len(),
            });
        }
        if loo.labels.is_empty() {
            return Err(EvalError::Empty { what: "leave-one-out labels" });
        }
        let mut order: Vec<String> = Vec::new();
        for g in &loo.groups {
            if !order.contains(g) {
                order.push(g.clone());
            }
        }
        let (train_x, test_x) = (self.train.features(), self.test.features());
        let folds = order
            .iter()
            .map(|g| {
                let mut features = train_x.as_slice().to_vec();
                let mut labels = train_y.to_vec();
                let mut test_rows = Vec::new();
                for (i, gi) in loo.groups.iter().enumerate() {
                    if gi == g {
                        test_rows.push(i);
                    } else {
                        features.extend_from_slice(test_x.row(i));
                        labels.push(test_y[i]);
                    }
                }
                Fold { features, labels, test_rows }
            })
            .collect();
        Ok((order, folds))
    }

    #[allow(clippy::too_many_arguments)]
    fn run_loo(
        &self,
        classifier: &ChammiClassifier,
        loo: &LeaveOneOut,
        train_y: &[usize],
        test_y: &[usize],
        n_classes: usize,
        report: &mut ChammiTaskReport,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<()> {
        let (groups, folds) = self.folds(loo, train_y, test_y)?;
        let mut fold_done = |i: usize| progress(i + 1, folds.len());
        let dim = self.test.features().dim();
        let test_x = self.test.features();
        let labels = Some(loo.labels.as_slice());
        let queries = |f: &Fold| test_x_rows(&test_x, &f.test_rows);
        fn fit_split(f: &Fold, dim: usize, n_classes: usize) -> Result<Split<'_>> {
            Split::from_parts(&f.features, dim, Targets::multiclass(&f.labels, n_classes))
        }
        match classifier {
            ChammiClassifier::Knn(config) => {
                let mut pred = vec![vec![0usize; test_y.len()]; config.ks.len()];
                for (i, f) in folds.iter().enumerate() {
                    let q = queries(f);
                    let votes = knn_scores(&fit_split(f, dim, n_classes)?, &FeatureMatrix::new(&q, dim)?, config)?;
                    for (p, s) in pred.iter_mut().zip(&votes.scores) {
                        for (&row, c) in f.test_rows.iter().zip(argmax_rows(s, n_classes)) {
                            p[row] = c;
                        }
                    }
                    fold_done(i);
                }
                for (k, p) in config.ks.iter().zip(&pred) {
                    report.scores.insert(format!("k={k}"), score(test_y, p, n_classes, labels)?);
                }
            }
            ChammiClassifier::OneNn(distance) => {
                let mut pred = vec![0usize; test_y.len()];
                for (i, f) in folds.iter().enumerate() {
                    let q = queries(f);
                    let fit = FeatureMatrix::new(&f.features, dim)?;
                    let p =
                        one_nn_predict(&fit, &f.labels, &FeatureMatrix::new(&q, dim)?, *distance, config_blocking())?;
                    f.test_rows.iter().zip(p).for_each(|(&row, c)| pred[row] = c);
                    fold_done(i);
                }
                report.scores.insert("1nn".into(), score(test_y, &pred, n_classes, labels)?);
            }
            ChammiClassifier::Linear { config, selection } => {
                let s = self.loo_linear(
                    config,
                    *selection,
                    &folds,
                    test_y,
                    n_classes,
                    &loo.labels,
                    report,
                    &mut fold_done,
                )?;
                report.scores.insert("linear".into(), s);
            }
        }
        report.leave_one_out_labels = Some(loo.labels.clone());
        report.leave_one_out_groups = Some(groups);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    fn loo_linear(
        &self,
        config: &LinearProbeConfig,
        selection: ProbeSelection,
        folds: &[Fold],
        test_y: &[usize],
        n_classes: usize,
        labels: &[usize],
        report: &mut ChammiTaskReport,
        fold_done: &mut dyn FnMut(usize),
    ) -> Result<ChammiScore> {
        let dim = self.test.features().dim();
        let test_x = self.test.features();
        match selection {
            ProbeSelection::UpstreamSelectOnTest => {
                // Every classifier predicts every fold; the best concatenated novel-label F1 wins.
                let n_cls = config.specs().len();
                let mut pred = vec![vec![0usize; test_y.len()]; n_cls];
                for (i, f) in folds.iter().enumerate() {
                    let fit = Split::from_parts(&f.features, dim, Targets::multiclass(&f.labels, n_classes))?;
                    let trained = train_linear_grid(&fit, config)?;
                    let q = test_x_rows(&test_x, &f.test_rows);
                    let qm = FeatureMatrix::new(&q, dim)?;
                    let preds = trained.grid.map_scores(&qm, |_, s| Ok(argmax_rows(&s, n_classes)))?;
                    for (g, p) in preds.into_iter().enumerate() {
                        f.test_rows.iter().zip(p).for_each(|(&row, c)| pred[g][row] = c);
                    }
                    fold_done(i);
                }
                let mut best: Option<(usize, ChammiScore)> = None;
                for (g, p) in pred.iter().enumerate() {
                    let s = score(test_y, p, n_classes, Some(labels))?;
                    if best.as_ref().is_none_or(|(_, b)| s.macro_f1 > b.macro_f1) {
                        best = Some((g, s));
                    }
                }
                let (g, s) = best.ok_or(EvalError::Empty { what: "classifier grid" })?;
                report.selected_classifiers = vec![config.specs()[g].name(config.n_last_blocks, config.avgpool)];
                report.selection_note = "upstream dinov2 behaviour: the classifier with the best novel-label macro F1 \
                                         on the reported split was selected; the score is optimistic"
                    .into();
                Ok(s)
            }
            ProbeSelection::CarveFromTrain { fraction, seed } => {
                let mut pred = vec![0usize; test_y.len()];
                for (i, f) in folds.iter().enumerate() {
                    let (fit_rows, val_rows) = carve(f.labels.len(), fraction, seed)?;
                    let gather = |rows: &[usize]| -> (Vec<f32>, Vec<usize>) {
                        let mut x = Vec::with_capacity(rows.len() * dim);
                        rows.iter().for_each(|&r| x.extend_from_slice(&f.features[r * dim..(r + 1) * dim]));
                        (x, rows.iter().map(|&r| f.labels[r]).collect())
                    };
                    let (fx, fy) = gather(&fit_rows);
                    let (vx, vy) = gather(&val_rows);
                    let fit = Split::from_parts(&fx, dim, Targets::multiclass(&fy, n_classes))?;
                    let val = Split::from_parts(&vx, dim, Targets::multiclass(&vy, n_classes))?;
                    let trained = train_linear_grid(&fit, config)?;
                    let scored =
                        trained.grid.map_scores(&val.features(), |_, s| metrics_or_diverged(val.targets(), &s))?;
                    let mut best: Option<(usize, f64)> = None;
                    for (g, m) in scored.iter().enumerate() {
                        if let Some(m) = m
                            && best.is_none_or(|(_, b)| m.macro_f1() > b)
                        {
                            best = Some((g, m.macro_f1()));
                        }
                    }
                    let Some((g, _)) = best else {
                        return Err(EvalError::AllClassifiersDiverged {
                            n_classifiers: trained.grid.n_classifiers(),
                            split: "carved selection split",
                        });
                    };
                    let q = test_x_rows(&test_x, &f.test_rows);
                    let s = trained.grid.scores(g, &FeatureMatrix::new(&q, dim)?)?;
                    f.test_rows.iter().zip(argmax_rows(&s, n_classes)).for_each(|(&row, c)| pred[row] = c);
                    report.selected_classifiers.push(config.specs()[g].name(config.n_last_blocks, config.avgpool));
                    fold_done(i);
                }
                report.selection_note = format!(
                    "per held-out group, {fraction} of the fitted rows (seed {seed}) were held out to select the \
                     classifier; the task split was not used for selection"
                );
                score(test_y, &pred, n_classes, Some(labels))
            }
        }
    }
}

fn config_blocking() -> crate::knn::Blocking {
    crate::knn::Blocking::default()
}

fn test_x_rows(m: &FeatureMatrix<'_>, rows: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * m.dim());
    rows.iter().for_each(|&r| out.extend_from_slice(m.row(r)));
    out
}

/// Owned inputs of a CHAMMI task built from embedding files (see [`chammi_task_inputs`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ChammiInputs {
    pub name: String,
    pub dim: usize,
    pub train_features: Vec<f32>,
    pub train_labels: Vec<usize>,
    pub test_features: Vec<f32>,
    pub test_labels: Vec<usize>,
    pub n_classes: usize,
    pub leave_one_out: Option<LeaveOneOut>,
}

impl ChammiInputs {
    /// The task over these inputs.
    ///
    /// # Errors
    /// Non-finite features, labels out of range.
    pub fn task(&self) -> Result<ChammiTask<'_>> {
        let train =
            Split::from_parts(&self.train_features, self.dim, Targets::multiclass(&self.train_labels, self.n_classes))?;
        let test =
            Split::from_parts(&self.test_features, self.dim, Targets::multiclass(&self.test_labels, self.n_classes))?;
        Ok(ChammiTask { name: self.name.clone(), train, test, leave_one_out: self.leave_one_out.clone() })
    }
}

/// The inputs of CHAMMI task `split` of `subset` from the TRAIN and task embeddings.
///
/// Both sets must carry the subset's class list. For the leave-one-out tasks (HPA
/// `TASK_THREE`, CP `TASK_FOUR`) only the last block's CLS (+ patch average) columns are
/// used, whatever `n_last_blocks` was (spec §6.4), and the groups are `groups` if given,
/// else the test metadata column (`cell_type` / `Plate`, present when the embeddings were
/// extracted from `enriched_meta.csv`).
///
/// # Errors
/// A split the subset does not have, unlabelled or multi-label sets, other class lists, no
/// group column, different layouts.
pub fn chammi_task_inputs(
    train: &EmbeddingSet,
    test: &EmbeddingSet,
    subset: ChammiSubset,
    split: ChammiSplit,
    groups: Option<Vec<String>>,
) -> Result<ChammiInputs> {
    if split == ChammiSplit::Train || !subset.splits().contains(&split) {
        return Err(EvalError::InvalidConfig {
            what: "CHAMMI task",
            reason: format!("{} has no task {}", subset.folder(), split.name()),
        });
    }
    let expected: Vec<String> = subset.classes().iter().map(|s| s.to_string()).collect();
    let labels = |set: &EmbeddingSet, what: &'static str| -> Result<Vec<usize>> {
        match &set.labels {
            StoredLabels::Multiclass { classes, labels, missing } if *classes == expected && missing.is_empty() => {
                Ok(labels.clone())
            }
            _ => Err(EvalError::InvalidConfig {
                what,
                reason: format!("expected every row labelled with the {} classes {expected:?}", subset.folder()),
            }),
        }
    };
    let (train_labels, test_labels) =
        (labels(train, "CHAMMI train embeddings")?, labels(test, "CHAMMI task embeddings")?);
    if train.sidecar.layout != test.sidecar.layout {
        return Err(EvalError::Mismatch {
            what: "feature layout of the task embeddings (vs train)",
            expected: train.dim,
            actual: test.dim,
        });
    }
    let loo = subset.leave_one_out().filter(|(s, _)| *s == split);
    let (train_features, test_features, dim, leave_one_out) = match loo {
        None => (train.features.clone(), test.features.clone(), train.dim, None),
        Some((_, column)) => {
            let cols = train.sidecar.layout.last_block_columns();
            let (tx, dim) = train.columns(&cols)?;
            let (qx, _) = test.columns(&cols)?;
            let groups = match groups {
                Some(g) => g,
                None => test
                    .column(column)
                    .ok_or(EvalError::InvalidConfig {
                        what: "leave-one-out groups",
                        reason: format!("the task embeddings have no `{column}` column; pass the groups"),
                    })?
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
            };
            (tx, qx, dim, Some(LeaveOneOut { groups, labels: CHAMMI_NOVEL_LABELS.to_vec() }))
        }
    };
    Ok(ChammiInputs {
        name: format!("{}/{}", subset.folder(), split.name()),
        dim,
        train_features,
        train_labels,
        test_features,
        test_labels,
        n_classes: expected.len(),
        leave_one_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::recording;

    /// A point of class `c` (of 7) in 3-D, jittered by `i`.
    fn point(c: usize, i: usize) -> [f32; 3] {
        let a = c as f32 * 0.9 + (i % 3) as f32 * 0.05;
        [a.cos(), a.sin(), 0.1 * (i % 2) as f32]
    }

    #[test]
    fn reporting_counts_folds() {
        let train_y: Vec<usize> = (0..28).map(|i| i % 7).collect();
        let test_y: Vec<usize> = (0..12).map(|i| 4 + i % 3).collect();
        let train_x: Vec<f32> = train_y.iter().enumerate().flat_map(|(i, &c)| point(c, i)).collect();
        let test_x: Vec<f32> = test_y.iter().enumerate().flat_map(|(i, &c)| point(c, i + 1)).collect();
        let train = Split::from_parts(&train_x, 3, Targets::multiclass(&train_y, 7)).unwrap();
        let test = Split::from_parts(&test_x, 3, Targets::multiclass(&test_y, 7)).unwrap();
        let groups = (0..12).map(|i| ["A", "B", "C", "D"][i / 3].to_string()).collect();
        let loo = LeaveOneOut { groups, labels: CHAMMI_NOVEL_LABELS.to_vec() };
        let config = LinearProbeConfig {
            learning_rates: vec![0.1, 1.0],
            weight_decays: vec![0.0],
            batch_size: 8,
            epochs: 2,
            epoch_length: Some(5),
            ..LinearProbeConfig::default()
        };
        let classifiers = [
            ChammiClassifier::OneNn(Distance::L2),
            ChammiClassifier::Knn(KnnConfig::with_ks(&[1, 3])),
            ChammiClassifier::Linear { config: config.clone(), selection: ProbeSelection::UpstreamSelectOnTest },
            ChammiClassifier::Linear { config, selection: ProbeSelection::CarveFromTrain { fraction: 0.2, seed: 0 } },
        ];
        for (leave_one_out, folds) in [(None, 1), (Some(loo), 4)] {
            let task = ChammiTask { name: "HPA/TASK_THREE".into(), train, test, leave_one_out };
            for c in &classifiers {
                let (reported, total) = recording(|p| task.run_reporting(c, p).unwrap());
                assert_eq!(total, folds, "{c:?}");
                assert_eq!(reported, task.run(c).unwrap(), "{c:?}");
            }
        }
    }
}

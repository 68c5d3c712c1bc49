//! Linear probe: a grid of linear classifiers trained jointly on frozen features, the
//! Cell-DINO protocol (`dinov2/eval/cell_dino/linear.py`), with model selection on a
//! split that is not the reported one.

mod grid;
mod train;

pub use grid::{ClassifierSpec, LinearGrid};
pub use train::{AdamWParams, GridTrainer, InfiniteSampler, LossKind};

use serde::{Deserialize, Serialize};

use crate::data::{OwnedSplit, Split, Targets, Task};
use crate::error::{EvalError, Result};
use crate::numeric::SplitMix64;
use crate::report::SplitMetrics;

/// Upstream's learning-rate grid (`--learning-rates`).
pub const DEFAULT_LEARNING_RATES: [f64; 16] =
    [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5, 1.0];
/// Upstream's weight-decay grid (`--weight_decays`).
pub const DEFAULT_WEIGHT_DECAYS: [f64; 3] = [0.0, 1e-4, 1e-5];

/// Which metric picks the best classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionMetric {
    /// Macro F1 (`mean_per_class_multiclass_f1` / `mean_per_class_multilabel_f1`, the
    /// metric of every documented Cell-DINO command).
    MacroF1,
    /// Accuracy (top-1; subset accuracy for multi-label).
    Accuracy,
}

impl SelectionMetric {
    fn of(self, m: &SplitMetrics) -> f64 {
        match self {
            SelectionMetric::MacroF1 => m.macro_f1(),
            SelectionMetric::Accuracy => m.accuracy(),
        }
    }
}

/// Hyper-parameters of the linear probe. Defaults are upstream's (`linear.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearProbeConfig {
    /// Learning-rate grid before batch scaling (default: 16 values, 1e-5 … 1).
    pub learning_rates: Vec<f64>,
    /// Weight-decay grid (default 0, 1e-4, 1e-5). Grid order: learning rate outer, weight
    /// decay inner, as upstream.
    pub weight_decays: Vec<f64>,
    /// Mini-batch size (64); also scales the learning rates by `batch / 256`.
    pub batch_size: usize,
    /// Epochs (30).
    pub epochs: usize,
    /// Iterations per epoch (upstream: a fixed 145, whatever the data size); `None` = one
    /// pass over the train split, `floor(n_train / batch)` (at least 1).
    pub epoch_length: Option<usize>,
    /// Seed of the weight initialisation and of the sampler (upstream sampler seed: 0).
    pub seed: u64,
    /// The metric that picks the best classifier.
    pub selection_metric: SelectionMetric,
    /// Only for the classifier names: CLS tokens of the last `n` blocks (4).
    pub n_last_blocks: usize,
    /// Only for the classifier names: patch-token average appended (false).
    pub avgpool: bool,
    /// AdamW betas and epsilon.
    pub adamw: AdamWParams,
}

impl Default for LinearProbeConfig {
    fn default() -> Self {
        Self {
            learning_rates: DEFAULT_LEARNING_RATES.to_vec(),
            weight_decays: DEFAULT_WEIGHT_DECAYS.to_vec(),
            batch_size: 64,
            epochs: 30,
            epoch_length: Some(145),
            seed: 0,
            selection_metric: SelectionMetric::MacroF1,
            n_last_blocks: 4,
            avgpool: false,
            adamw: AdamWParams::default(),
        }
    }
}

impl LinearProbeConfig {
    /// The grid's classifiers, learning rate outer, weight decay inner.
    pub fn specs(&self) -> Vec<ClassifierSpec> {
        self.learning_rates
            .iter()
            .flat_map(|&lr| self.weight_decays.iter().map(move |&wd| ClassifierSpec::new(lr, wd, self.batch_size)))
            .collect()
    }

    /// Total iterations (`epochs · epoch_length`) = the cosine schedule's `T_max`.
    pub fn iterations(&self, n_train: usize) -> usize {
        let per_epoch = self.epoch_length.unwrap_or((n_train / self.batch_size.max(1)).max(1));
        self.epochs.saturating_mul(per_epoch)
    }

    fn validate(&self) -> Result<()> {
        if self.learning_rates.is_empty() || self.weight_decays.is_empty() {
            return Err(EvalError::Empty { what: "classifier grid (learning rates × weight decays)" });
        }
        if self.batch_size == 0 {
            return Err(EvalError::InvalidConfig { what: "batch size", reason: "must be at least 1".into() });
        }
        if self.epochs == 0 || self.epoch_length == Some(0) {
            return Err(EvalError::InvalidConfig {
                what: "schedule",
                reason: "epochs and epoch length must be at least 1".into(),
            });
        }
        self.specs().iter().try_for_each(ClassifierSpec::validate)
    }
}

/// Where the best classifier is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Validation<'a> {
    /// A validation split given by the user, separate from train and test.
    Split(Split<'a>),
    /// Hold out `fraction` of the train rows (a SplitMix64 permutation seeded with `seed`),
    /// train on the rest and select on them. The result says so.
    CarveFromTrain { fraction: f64, seed: u64 },
    /// **Upstream dinov2 behaviour**, for reproducing published numbers: train on all train
    /// rows and select on the reported test split itself (optimistic).
    UpstreamSelectOnTest,
}

impl Validation<'static> {
    /// 10 % of the train rows, seed 0.
    pub const DEFAULT_CARVE: Self = Validation::CarveFromTrain { fraction: 0.1, seed: 0 };
}

/// How the reported classifier was selected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum SelectionSource {
    /// On a validation split given by the user.
    ValidationSplit,
    /// On rows held out from the train split (they were not trained on).
    CarvedFromTrain { fraction: f64, seed: u64 },
    /// On the reported test split (upstream dinov2 behaviour; test metrics are optimistic).
    UpstreamTestSplit,
}

/// The selection step of a [`LinearProbeReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    #[serde(flatten)]
    pub source: SelectionSource,
    pub metric: SelectionMetric,
    /// Samples of the selection split.
    pub n_samples: usize,
    /// A sentence for humans, e.g. that a validation split was carved from train.
    pub note: String,
}

/// One classifier of the grid in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridRow {
    /// Upstream name (see [`ClassifierSpec::name`]).
    pub name: String,
    pub learning_rate: f64,
    pub scaled_learning_rate: f64,
    pub weight_decay: f64,
    /// Mean training loss of this classifier over the last epoch.
    pub final_train_loss: f64,
    /// Accuracy on the selection split (`None` if the classifier diverged).
    pub selection_accuracy: Option<f64>,
    /// Macro F1 on the selection split (`None` if the classifier diverged).
    pub selection_macro_f1: Option<f64>,
    /// Non-finite scores on the selection split; never selected.
    pub diverged: bool,
}

/// Result of [`run_linear_probe`], serialisable as the `cellino eval linear` JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearProbeReport {
    pub task: Task,
    pub loss: LossKind,
    /// Upstream-format name of the selected classifier.
    pub best_classifier: String,
    /// Its position in [`grid`](Self::grid).
    pub best_index: usize,
    pub selection: Selection,
    /// Metrics of the selected classifier on the selection split.
    pub validation: SplitMetrics,
    /// Metrics of the selected classifier on the test split (the reported numbers).
    pub test: SplitMetrics,
    /// Every classifier, in grid order.
    pub grid: Vec<GridRow>,
    /// Train rows actually trained on (after any carving).
    pub n_train: usize,
    pub n_test: usize,
    pub dim: usize,
    pub n_outputs: usize,
    pub iterations: usize,
    /// Multi-class only: classes with no train sample (allowed, e.g. CHAMMI leave-one-out
    /// novel classes; such a class is only predicted by chance).
    pub classes_without_train_samples: Vec<usize>,
    pub config: LinearProbeConfig,
}

/// A grid trained by [`train_linear_grid`].
#[derive(Debug, Clone)]
pub struct TrainedGrid {
    pub grid: LinearGrid,
    pub loss: LossKind,
    pub iterations: usize,
    /// Mean loss of each classifier over the last epoch.
    pub final_losses: Vec<f64>,
}

/// Trains the configured grid on `train`: seeded init ([`LinearGrid::new_seeded`]),
/// batches from an [`InfiniteSampler`] seeded with `config.seed`, `epochs · epoch_length`
/// [`GridTrainer`] steps.
///
/// # Errors
/// An invalid configuration, a train split with fewer than 2 samples.
pub fn train_linear_grid(train: &Split<'_>, config: &LinearProbeConfig) -> Result<TrainedGrid> {
    train_linear_grid_reporting(train, config, &mut |_, _| {})
}

/// [`train_linear_grid`], calling `progress(done, total)` after every iteration (for a progress bar).
pub fn train_linear_grid_reporting(
    train: &Split<'_>,
    config: &LinearProbeConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TrainedGrid> {
    config.validate()?;
    min_samples(train, "train split")?;
    let n = train.n_samples();
    let iterations = config.iterations(n);
    let per_epoch = config.epoch_length.unwrap_or((n / config.batch_size).max(1));
    let grid =
        LinearGrid::new_seeded(train.features().dim(), train.targets().n_outputs(), config.specs(), config.seed)?;
    let mut trainer = GridTrainer::new(grid, *train, iterations, config.adamw)?;
    let mut sampler = InfiniteSampler::new(n, config.seed)?;
    let tail = per_epoch.min(iterations);
    let mut final_losses = vec![0.0; trainer.grid().n_classifiers()];
    for it in 0..iterations {
        let losses = trainer.step(&sampler.next_batch(config.batch_size))?;
        if it >= iterations - tail {
            final_losses.iter_mut().zip(&losses).for_each(|(a, l)| *a += l / tail as f64);
        }
        progress(it + 1, iterations);
    }
    let loss = trainer.loss();
    Ok(TrainedGrid { grid: trainer.into_grid(), loss, iterations, final_losses })
}

fn min_samples(split: &Split<'_>, what: &'static str) -> Result<()> {
    if split.n_samples() < 2 {
        return Err(EvalError::TooFewSamples { what, n: split.n_samples(), min: 2 });
    }
    Ok(())
}

/// Splits `0..n` into (train rows, held-out rows), both in increasing order.
pub(crate) fn carve(n: usize, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(EvalError::InvalidConfig {
            what: "validation fraction",
            reason: format!("{fraction} is not in (0, 1)"),
        });
    }
    if n < 4 {
        return Err(EvalError::TooFewSamples { what: "train split (to carve a validation split)", n, min: 4 });
    }
    let n_val = ((n as f64 * fraction).round() as usize).clamp(2, n - 2);
    let mut perm: Vec<usize> = (0..n).collect();
    SplitMix64::stream(seed, 3).shuffle(&mut perm);
    let (val, train) = perm.split_at_mut(n_val);
    val.sort_unstable();
    train.sort_unstable();
    Ok((train.to_vec(), val.to_vec()))
}

/// Metrics of classifier scores, `None` when a score is not finite (diverged).
pub(crate) fn metrics_or_diverged(targets: Targets<'_>, scores: &[f32]) -> Result<Option<SplitMetrics>> {
    if scores.iter().any(|s| !s.is_finite()) {
        return Ok(None);
    }
    SplitMetrics::from_scores(targets, scores).map(Some)
}

/// The linear-probe protocol: train the grid on `train`, pick the best classifier on the
/// selection split given by `validation` with `config.selection_metric` (the first in grid
/// order wins ties), and report its metrics on that split and on `test`.
///
/// With [`Validation::CarveFromTrain`] the held-out rows are removed from training; with
/// [`Validation::UpstreamSelectOnTest`] the selection is made on `test` (labelled so in
/// the report). The selected classifier is not retrained.
///
/// # Errors
/// An invalid configuration; splits of different task, dimension or class count; a split
/// with fewer than 2 samples; every classifier diverging.
pub fn run_linear_probe(
    train: &Split<'_>,
    validation: Validation<'_>,
    test: &Split<'_>,
    config: &LinearProbeConfig,
) -> Result<LinearProbeReport> {
    run_linear_probe_reporting(train, validation, test, config, &mut |_, _| {})
}

/// [`run_linear_probe`], calling `progress(done, total)` after every training iteration of the grid.
pub fn run_linear_probe_reporting(
    train: &Split<'_>,
    validation: Validation<'_>,
    test: &Split<'_>,
    config: &LinearProbeConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<LinearProbeReport> {
    config.validate()?;
    train.check_compatible(test, "test split (vs train)")?;
    min_samples(train, "train split")?;
    min_samples(test, "test split")?;
    let carved;
    let (fit, select, source, note) = match validation {
        Validation::Split(val) => {
            train.check_compatible(&val, "validation split (vs train)")?;
            min_samples(&val, "validation split")?;
            (*train, val, SelectionSource::ValidationSplit, "selected on the given validation split".to_string())
        }
        Validation::CarveFromTrain { fraction, seed } => {
            let (fit_rows, val_rows) = carve(train.n_samples(), fraction, seed)?;
            carved = (OwnedSplit::gather(train, &fit_rows), OwnedSplit::gather(train, &val_rows));
            let note = format!(
                "no validation split given: {} of the {} train rows (fraction {fraction}, seed {seed}) were held \
                 out for selection and not trained on",
                val_rows.len(),
                train.n_samples()
            );
            (carved.0.view(), carved.1.view(), SelectionSource::CarvedFromTrain { fraction, seed }, note)
        }
        Validation::UpstreamSelectOnTest => (
            *train,
            *test,
            SelectionSource::UpstreamTestSplit,
            "upstream dinov2 behaviour: hyper-parameters selected on the reported test split; test metrics are \
             optimistic"
                .to_string(),
        ),
    };

    let trained = train_linear_grid_reporting(&fit, config, progress)?;
    let grid = &trained.grid;
    let scored = grid.map_scores(&select.features(), |_, scores| metrics_or_diverged(select.targets(), &scores))?;
    let metric = config.selection_metric;
    let mut best: Option<(usize, f64)> = None;
    for (g, m) in scored.iter().enumerate() {
        if let Some(m) = m {
            let s = metric.of(m);
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((g, s));
            }
        }
    }
    let Some((best_index, _)) = best else {
        return Err(EvalError::AllClassifiersDiverged {
            n_classifiers: grid.n_classifiers(),
            split: "selection split",
        });
    };
    let rows = grid
        .specs()
        .iter()
        .zip(&scored)
        .zip(&trained.final_losses)
        .map(|((spec, m), &loss)| GridRow {
            name: spec.name(config.n_last_blocks, config.avgpool),
            learning_rate: spec.learning_rate,
            scaled_learning_rate: spec.scaled_learning_rate,
            weight_decay: spec.weight_decay,
            final_train_loss: loss,
            selection_accuracy: m.as_ref().map(SplitMetrics::accuracy),
            selection_macro_f1: m.as_ref().map(SplitMetrics::macro_f1),
            diverged: m.is_none(),
        })
        .collect::<Vec<_>>();
    drop(scored);

    let validation_metrics =
        SplitMetrics::from_scores(select.targets(), &grid.scores(best_index, &select.features())?)?;
    let test_scores = grid.scores(best_index, &test.features())?;
    let test_metrics = match metrics_or_diverged(test.targets(), &test_scores)? {
        Some(m) => m,
        None => return Err(EvalError::AllClassifiersDiverged { n_classifiers: 1, split: "test split" }),
    };
    let classes_without_train_samples = match fit.targets() {
        Targets::Multiclass { labels, n_classes } => {
            let mut seen = vec![false; n_classes];
            labels.iter().for_each(|&l| seen[l] = true);
            (0..n_classes).filter(|&c| !seen[c]).collect()
        }
        Targets::Multilabel { .. } => Vec::new(),
    };
    Ok(LinearProbeReport {
        task: train.targets().task(),
        loss: trained.loss,
        best_classifier: rows[best_index].name.clone(),
        best_index,
        selection: Selection { source, metric, n_samples: select.n_samples(), note },
        validation: validation_metrics,
        test: test_metrics,
        grid: rows,
        n_train: fit.n_samples(),
        n_test: test.n_samples(),
        dim: grid.dim(),
        n_outputs: grid.n_outputs(),
        iterations: trained.iterations,
        classes_without_train_samples,
        config: config.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carve_is_a_seeded_partition() {
        let (a, b) = carve(20, 0.25, 0).unwrap();
        assert_eq!((a.len(), b.len()), (15, 5));
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
        assert_eq!(carve(20, 0.25, 0).unwrap(), (a.clone(), b.clone()));
        assert_ne!(carve(20, 0.25, 1).unwrap().1, b);
        assert_eq!(carve(10, 0.01, 0).unwrap().1.len(), 2);
        assert!(matches!(carve(3, 0.5, 0), Err(EvalError::TooFewSamples { .. })));
        assert!(matches!(carve(10, 1.0, 0), Err(EvalError::InvalidConfig { .. })));
        assert!(matches!(carve(10, f64::NAN, 0), Err(EvalError::InvalidConfig { .. })));
    }

    #[test]
    fn non_finite_scores_mark_a_diverged_classifier() {
        let t = Targets::multiclass(&[0, 1], 2);
        assert_eq!(metrics_or_diverged(t, &[1.0, 0.0, f32::NAN, 0.0]), Ok(None));
        assert_eq!(metrics_or_diverged(t, &[1.0, 0.0, f32::INFINITY, 0.0]), Ok(None));
        let m = metrics_or_diverged(t, &[1.0, 0.0, 0.0, 1.0]).unwrap().unwrap();
        assert_eq!((m.accuracy(), m.macro_f1()), (1.0, 1.0));
    }

    #[test]
    fn default_grid_is_upstream() {
        let c = LinearProbeConfig::default();
        let specs = c.specs();
        assert_eq!(specs.len(), 48);
        assert_eq!((specs[1].learning_rate, specs[1].weight_decay), (1e-5, 1e-4));
        assert_eq!((specs[3].learning_rate, specs[3].weight_decay), (2e-5, 0.0));
        assert_eq!(specs[47].scaled_learning_rate, 0.25);
        assert_eq!(c.iterations(10_000), 30 * 145);
        let c = LinearProbeConfig { epoch_length: None, batch_size: 10, epochs: 2, ..c };
        assert_eq!(c.iterations(95), 18);
    }
}

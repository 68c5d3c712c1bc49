//! The linear-probe protocol end to end: selection rule, validation sources, report JSON,
//! bad input.

mod common;

use cellino_eval::{
    EvalError, FeatureMatrix, GridTrainer, LinearGrid, LinearProbeConfig, LinearProbeReport, LossKind, SelectionMetric,
    SelectionSource, Split, SplitMetrics, Targets, Task, Validation, run_linear_probe, train_linear_grid,
};
use common::{Rng, blobs, centres};

/// A small, fast configuration: 3 learning rates × 2 weight decays, 100 iterations.
fn small_config() -> LinearProbeConfig {
    LinearProbeConfig {
        learning_rates: vec![1e-4, 0.1, 1.0],
        weight_decays: vec![0.0, 1e-4],
        batch_size: 16,
        epochs: 5,
        epoch_length: Some(20),
        ..LinearProbeConfig::default()
    }
}

struct Data {
    dim: usize,
    train: (Vec<f32>, Vec<usize>),
    val: (Vec<f32>, Vec<usize>),
    test: (Vec<f32>, Vec<usize>),
}

fn data(seed: u64, spread: f64) -> Data {
    let mut rng = Rng::new(seed);
    let dim = 8;
    let c = centres(&mut rng, 4, dim, 2.0);
    Data {
        dim,
        train: blobs(&mut rng, &c, 160, spread),
        val: blobs(&mut rng, &c, 60, spread),
        test: blobs(&mut rng, &c, 80, spread),
    }
}

fn split<'a>(d: &'a (Vec<f32>, Vec<usize>), dim: usize) -> Split<'a> {
    Split::from_parts(&d.0, dim, Targets::multiclass(&d.1, 4)).unwrap()
}

/// The first classifier with the highest selection score (strictly greater replaces).
fn expected_best(report: &LinearProbeReport) -> usize {
    let score = |r: &cellino_eval::GridRow| match report.selection.metric {
        SelectionMetric::MacroF1 => r.selection_macro_f1,
        SelectionMetric::Accuracy => r.selection_accuracy,
    };
    let mut best = 0;
    for (i, r) in report.grid.iter().enumerate() {
        if score(r) > score(&report.grid[best]) {
            best = i;
        }
    }
    best
}

#[test]
fn carved_validation_by_default_and_selection_rule() {
    let d = data(1, 1.5);
    let (train, test) = (split(&d.train, d.dim), split(&d.test, d.dim));
    let config = small_config();
    let report = run_linear_probe(&train, Validation::DEFAULT_CARVE, &test, &config).unwrap();

    assert_eq!(report.selection.source, SelectionSource::CarvedFromTrain { fraction: 0.1, seed: 0 });
    assert_eq!(report.selection.n_samples, 16);
    assert_eq!(report.n_train, 144, "held-out rows are not trained on");
    assert!(report.selection.note.contains("held out"), "{}", report.selection.note);
    assert_eq!((report.task, report.loss), (Task::Multiclass, LossKind::CrossEntropy));
    assert_eq!(report.grid.len(), 6);
    assert_eq!(report.iterations, 100);
    assert_eq!(report.best_index, expected_best(&report));
    assert_eq!(report.best_classifier, report.grid[report.best_index].name);
    assert!(report.best_classifier.starts_with("classifier_4_blocks_avgpool_False_lr_"));
    // Grid order: learning rate outer, weight decay inner.
    assert_eq!(report.grid[1].name, "classifier_4_blocks_avgpool_False_lr_0_00001_wd_1_00E-04");
    assert_eq!(report.grid[2].name, "classifier_4_blocks_avgpool_False_lr_0_00625_wd_0_00E+00");
    // The selected classifier's validation metrics are its grid row's.
    let row = &report.grid[report.best_index];
    assert_eq!(Some(report.validation.macro_f1()), row.selection_macro_f1);
    assert_eq!(Some(report.validation.accuracy()), row.selection_accuracy);
    assert!(report.test.accuracy() > 0.8, "test accuracy {}", report.test.accuracy());
    // The tiny learning rate barely moves from the initial loss ln 4.
    assert!(report.grid[0].final_train_loss > 1.2 && report.grid[2].final_train_loss < 1.0);

    // Deterministic.
    assert_eq!(run_linear_probe(&train, Validation::DEFAULT_CARVE, &test, &config).unwrap(), report);
    // The reporting variant gives the same report and one call per training iteration.
    let mut calls = vec![];
    let mut record = |done: usize, total: usize| calls.push((done, total));
    let reported =
        cellino_eval::run_linear_probe_reporting(&train, Validation::DEFAULT_CARVE, &test, &config, &mut record);
    assert_eq!(reported.unwrap(), report);
    assert_eq!(calls, (1..=100).map(|i| (i, 100)).collect::<Vec<_>>());

    // JSON contract: .test.macro_f1 / .test.accuracy, and a lossless round trip.
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["test"]["macro_f1"].is_f64() && json["test"]["accuracy"].is_f64());
    assert_eq!(json["test"]["kind"], "multiclass");
    assert_eq!(json["selection"]["source"], "carved_from_train");
    assert_eq!(json["best_classifier"], report.best_classifier.as_str());
    // serde_json's default float parser may be 1 ulp off, so numbers compare to 1e-15.
    let back: LinearProbeReport = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert!(json_close(&serde_json::to_value(&back).unwrap(), &json), "JSON round trip");
}

fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Number(x), Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-15 * x.abs().max(y.abs())
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn ties_go_to_the_first_classifier() {
    // Well separated classes: every usable classifier reaches macro F1 = 1 on validation.
    let d = data(2, 0.05);
    let (train, val, test) = (split(&d.train, d.dim), split(&d.val, d.dim), split(&d.test, d.dim));
    let config = LinearProbeConfig { learning_rates: vec![0.5, 1.0], ..small_config() };
    let report = run_linear_probe(&train, Validation::Split(val), &test, &config).unwrap();
    assert!(report.grid.iter().all(|r| r.selection_macro_f1 == Some(1.0)), "{:#?}", report.grid);
    assert_eq!(report.best_index, 0);
    assert_eq!(report.selection.source, SelectionSource::ValidationSplit);
    assert_eq!(report.selection.n_samples, 60);
    assert_eq!(report.n_train, 160);
}

#[test]
fn upstream_option_selects_on_the_test_split() {
    let d = data(3, 1.5);
    let (train, test) = (split(&d.train, d.dim), split(&d.test, d.dim));
    let config = LinearProbeConfig { selection_metric: SelectionMetric::Accuracy, ..small_config() };
    let report = run_linear_probe(&train, Validation::UpstreamSelectOnTest, &test, &config).unwrap();
    assert_eq!(report.selection.source, SelectionSource::UpstreamTestSplit);
    assert!(report.selection.note.contains("upstream"));
    assert_eq!(report.validation, report.test);
    assert_eq!(report.n_train, 160);
    assert_eq!(report.best_index, expected_best(&report));
    // The selected classifier has the best test accuracy of the grid (it was chosen on it).
    let best = report.grid.iter().filter_map(|r| r.selection_accuracy).fold(0.0, f64::max);
    assert_eq!(report.test.accuracy(), best);
}

#[test]
fn multilabel_probe() {
    let mut rng = Rng::new(4);
    let (dim, k) = (6, 3);
    let mixing: Vec<Vec<f64>> = (0..k).map(|_| (0..dim).map(|_| 2.0 * rng.normal()).collect()).collect();
    let make = |rng: &mut Rng, n: usize| {
        let mut x = Vec::new();
        let mut t = Vec::new();
        for _ in 0..n {
            let row: Vec<u8> = (0..k).map(|_| u8::from(rng.uniform() < 0.4)).collect();
            x.extend((0..dim).map(|d| {
                let v: f64 = row.iter().zip(&mixing).map(|(&r, m)| f64::from(r) * m[d]).sum();
                (v + 0.3 * rng.normal()) as f32
            }));
            t.extend(row);
        }
        (x, t)
    };
    let (xtr, ttr) = make(&mut rng, 150);
    let (xte, tte) = make(&mut rng, 60);
    let train = Split::from_parts(&xtr, dim, Targets::multilabel(&ttr, k)).unwrap();
    let test = Split::from_parts(&xte, dim, Targets::multilabel(&tte, k)).unwrap();
    let report = run_linear_probe(&train, Validation::DEFAULT_CARVE, &test, &small_config()).unwrap();
    assert_eq!((report.task, report.loss), (Task::Multilabel, LossKind::BinaryCrossEntropy));
    let SplitMetrics::Multilabel(m) = &report.test else { panic!("multi-label metrics") };
    assert!(m.sigmoid_applied && m.macro_f1 > 0.8 && m.mean_average_precision > 0.8, "{m:?}");
    assert!(report.classes_without_train_samples.is_empty());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["test"]["kind"], "multilabel");
    assert!(json["test"]["accuracy"].is_f64());
}

#[test]
fn classes_without_train_samples_are_reported() {
    let d = data(5, 1.0);
    // Declare 6 classes; 4 and 5 never occur (as the CHAMMI leave-one-out novel classes).
    let train = Split::from_parts(&d.train.0, d.dim, Targets::multiclass(&d.train.1, 6)).unwrap();
    let test = Split::from_parts(&d.test.0, d.dim, Targets::multiclass(&d.test.1, 6)).unwrap();
    let report = run_linear_probe(&train, Validation::UpstreamSelectOnTest, &test, &small_config()).unwrap();
    assert_eq!(report.classes_without_train_samples, vec![4, 5]);
    assert_eq!(report.n_outputs, 6);
}

#[test]
fn trained_grid_is_reusable() {
    let d = data(6, 1.0);
    let train = split(&d.train, d.dim);
    let trained = train_linear_grid(&train, &small_config()).unwrap();
    assert_eq!(trained.grid.n_classifiers(), 6);
    assert_eq!(trained.final_losses.len(), 6);
    let test = FeatureMatrix::new(&d.test.0, d.dim).unwrap();
    let scores = trained.grid.scores(4, &test).unwrap();
    assert_eq!(scores.len(), 80 * 4);
}

#[test]
fn bad_input_is_an_error() {
    let d = data(7, 1.0);
    let (train, test) = (split(&d.train, d.dim), split(&d.test, d.dim));
    let c = small_config();
    let carve = Validation::DEFAULT_CARVE;

    // Splits that do not fit together.
    let other_dim = Split::from_parts(&d.test.0[..80 * 4], 4, Targets::multiclass(&d.test.1, 4)).unwrap();
    assert!(matches!(run_linear_probe(&train, carve, &other_dim, &c), Err(EvalError::Mismatch { .. })));
    let ml = vec![0u8; 80 * 4];
    let other_task = Split::from_parts(&d.test.0, d.dim, Targets::multilabel(&ml, 4)).unwrap();
    assert!(matches!(
        run_linear_probe(&train, carve, &other_task, &c),
        Err(EvalError::TaskMismatch { expected: Task::Multiclass, actual: Task::Multilabel, .. })
    ));
    let val_classes = Split::from_parts(&d.val.0, d.dim, Targets::multiclass(&d.val.1, 5)).unwrap();
    assert!(matches!(
        run_linear_probe(&train, Validation::Split(val_classes), &test, &c),
        Err(EvalError::Mismatch { expected: 4, actual: 5, .. })
    ));
    // A split with one sample.
    let one = Split::from_parts(&d.test.0[..d.dim], d.dim, Targets::multiclass(&d.test.1[..1], 4)).unwrap();
    assert!(matches!(run_linear_probe(&train, carve, &one, &c), Err(EvalError::TooFewSamples { n: 1, .. })));
    assert!(matches!(
        run_linear_probe(&one, Validation::UpstreamSelectOnTest, &test, &c),
        Err(EvalError::TooFewSamples { n: 1, .. })
    ));
    // Row counts that differ, labels outside the class list, NaN features.
    assert!(matches!(
        Split::from_parts(&d.test.0, d.dim, Targets::multiclass(&d.test.1[..79], 4)),
        Err(EvalError::LengthMismatch { expected: 80, actual: 79, .. })
    ));
    assert!(matches!(
        Split::from_parts(&d.test.0, d.dim, Targets::multiclass(&d.test.1, 3)),
        Err(EvalError::LabelOutOfRange { .. })
    ));
    let mut nan = d.test.0.clone();
    nan[17] = f32::NAN;
    assert!(matches!(FeatureMatrix::new(&nan, d.dim), Err(EvalError::NonFiniteFeature { row: 2, col: 1, .. })));
    // Configurations that cannot work.
    for bad in [
        LinearProbeConfig { learning_rates: vec![], ..small_config() },
        LinearProbeConfig { learning_rates: vec![-1.0], ..small_config() },
        LinearProbeConfig { weight_decays: vec![f64::NAN], ..small_config() },
        LinearProbeConfig { batch_size: 0, ..small_config() },
        LinearProbeConfig { epochs: 0, ..small_config() },
        LinearProbeConfig { epoch_length: Some(0), ..small_config() },
    ] {
        assert!(run_linear_probe(&train, carve, &test, &bad).is_err(), "{bad:?}");
    }
    assert!(matches!(
        run_linear_probe(&train, Validation::CarveFromTrain { fraction: 1.5, seed: 0 }, &test, &c),
        Err(EvalError::InvalidConfig { .. })
    ));
    // Bad batches given to the trainer directly.
    let grid = LinearGrid::new_seeded(d.dim, 4, c.specs(), 0).unwrap();
    let mut trainer = GridTrainer::new(grid, train, 10, Default::default()).unwrap();
    assert!(matches!(trainer.step(&[]), Err(EvalError::Empty { .. })));
    assert!(matches!(
        trainer.step(&[0, 160]),
        Err(EvalError::IndexOutOfRange { position: 1, index: 160, len: 160, .. })
    ));
    let grid = LinearGrid::new_seeded(d.dim + 1, 4, c.specs(), 0).unwrap();
    assert!(matches!(GridTrainer::new(grid, train, 10, Default::default()), Err(EvalError::Mismatch { .. })));
}

//! Linear-probe training and kNN against PyTorch, on `tests/fixtures/{linear_probe,knn}.json`
//! (written by `xtask/py/make_probe_fixtures.py`).
//!
//! * Linear probe: the same initial weights and batch order are replayed through
//!   [`GridTrainer`]; learning rates must match PyTorch's `CosineAnnealingLR` to 1e-15
//!   (relative; serde_json's default float parsing may be 1 ulp off, so f64 values are not
//!   compared bit for bit), per-iteration losses, final weights, biases and logits to 1e-5.
//! * kNN: top-k indices exactly, similarities to 1e-6, vote scores to 1e-5; exact 1-NN
//!   indices exactly and distances to 1e-9 (relative) against scikit-learn in float64.

use cellino_eval::{
    Blocking, ClassifierSpec, Distance, FeatureMatrix, GridTrainer, KnnConfig, LinearGrid, MultilabelMetrics, Split,
    SplitMetrics, Targets, cosine_neighbours, knn_evaluate, knn_scores, nearest_neighbours, one_nn_predict,
};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read fixture")).expect("parse fixture")
}

fn f32s(v: &Value) -> Vec<f32> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number") as f32).collect()
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array().expect("array").iter().map(|x| x.as_u64().expect("integer") as usize).collect()
}

fn uint(v: &Value) -> usize {
    v.as_u64().expect("integer") as usize
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs()).fold(0.0, f64::max)
}

#[test]
fn linear_probe_training_matches_pytorch() {
    let doc = fixture("linear_probe.json");
    for case in doc["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let (n, dim, k) = (uint(&case["n"]), uint(&case["dim"]), uint(&case["n_outputs"]));
        let features = f32s(&case["features"]);
        let raw_targets = usizes(&case["targets"]);
        let multi_hot: Vec<u8> = raw_targets.iter().map(|&t| t as u8).collect();
        let targets = match case["task"].as_str() {
            Some("multiclass") => Targets::multiclass(&raw_targets, k),
            _ => Targets::multilabel(&multi_hot, k),
        };
        let split = Split::from_parts(&features, dim, targets).expect("split");
        assert_eq!(split.n_samples(), n);

        let batch_size = uint(&case["batch_size"]);
        let specs: Vec<ClassifierSpec> = case["specs"]
            .as_array()
            .expect("specs")
            .iter()
            .map(|s| {
                let (lr, wd) = (s["learning_rate"].as_f64().unwrap(), s["weight_decay"].as_f64().unwrap());
                let spec = ClassifierSpec::new(lr, wd, batch_size);
                let want = s["scaled_learning_rate"].as_f64().unwrap();
                assert!((spec.scaled_learning_rate - want).abs() <= 1e-15 * want);
                spec
            })
            .collect();
        let weights: Vec<Vec<f32>> = case["initial_weights"].as_array().unwrap().iter().map(f32s).collect();
        let biases: Vec<Vec<f32>> = case["initial_biases"].as_array().unwrap().iter().map(f32s).collect();
        let grid = LinearGrid::from_torch_parameters(dim, k, specs, &weights, &biases).expect("grid");
        let iterations = uint(&case["iterations"]);
        let mut trainer = GridTrainer::new(grid, split, iterations, Default::default()).expect("trainer");

        let (mut lr_err, mut loss_err) = (0.0f64, 0.0f64);
        for (it, batch) in case["batches"].as_array().unwrap().iter().enumerate() {
            let expected_lrs = f64s(&case["learning_rates"][it]);
            for (a, b) in trainer.learning_rates().iter().zip(&expected_lrs) {
                lr_err = lr_err.max((a - b).abs() / b.abs().max(1e-300));
            }
            let losses = trainer.step(&usizes(batch)).expect("step");
            for (a, b) in losses.iter().zip(f64s(&case["losses"][it])) {
                loss_err = loss_err.max((a - b).abs());
            }
        }
        let grid = trainer.into_grid();
        let (mut w_err, mut b_err, mut s_err) = (0.0f64, 0.0f64, 0.0f64);
        let all = FeatureMatrix::new(&features, dim).unwrap();
        for g in 0..grid.n_classifiers() {
            w_err = w_err.max(max_abs_diff(&grid.weight(g), &f32s(&case["final_weights"][g])));
            b_err = b_err.max(max_abs_diff(&grid.bias(g), &f32s(&case["final_biases"][g])));
            s_err = s_err.max(max_abs_diff(&grid.scores(g, &all).unwrap(), &f32s(&case["final_scores"][g])));
        }
        println!(
            "{name}: {iterations} iterations, max |Δ| lr (rel) {lr_err:.1e}, loss {loss_err:.1e}, weight {w_err:.1e}, \
             bias {b_err:.1e}, logits {s_err:.1e}"
        );
        assert!(lr_err < 1e-15, "{name}: learning rates differ by {lr_err:e} (relative)");
        assert!(loss_err < 1e-5, "{name}: losses differ by {loss_err:e}");
        assert!(w_err < 1e-5 && b_err < 1e-5, "{name}: parameters differ by {w_err:e} / {b_err:e}");
        assert!(s_err < 1e-5, "{name}: logits differ by {s_err:e}");
    }
}

#[test]
fn classifier_names_match_python_formatting() {
    let doc = fixture("linear_probe.json");
    let names = doc["names"].as_array().expect("names");
    assert!(names.len() > 100);
    for c in names {
        let spec = ClassifierSpec::new(
            c["learning_rate"].as_f64().unwrap(),
            c["weight_decay"].as_f64().unwrap(),
            uint(&c["batch_size"]),
        );
        let want = c["scaled_learning_rate"].as_f64().unwrap();
        assert!((spec.scaled_learning_rate - want).abs() <= 1e-15 * want, "{} vs {want}", spec.scaled_learning_rate);
        assert_eq!(spec.name(uint(&c["n_last_blocks"]), c["avgpool"].as_bool().unwrap()), c["name"].as_str().unwrap());
    }
}

#[test]
fn multilabel_subset_accuracy_matches_sklearn() {
    let doc = fixture("linear_probe.json");
    for c in doc["subset_accuracy"].as_array().expect("cases") {
        let targets: Vec<u8> = usizes(&c["targets"]).into_iter().map(|t| t as u8).collect();
        let m = MultilabelMetrics::new(&targets, &f64s(&c["scores"]), uint(&c["n_labels"])).unwrap();
        assert!((m.subset_accuracy() - c["accuracy"].as_f64().unwrap()).abs() < 1e-12);
    }
}

struct KnnCase {
    name: String,
    dim: usize,
    k: usize,
    ks: Vec<usize>,
    train: Vec<f32>,
    test: Vec<f32>,
    train_targets: Vec<usize>,
    test_targets: Vec<usize>,
    multilabel: bool,
    train_u8: Vec<u8>,
    test_u8: Vec<u8>,
}

impl KnnCase {
    fn from(case: &Value) -> Self {
        let train_targets = usizes(&case["train_targets"]);
        let test_targets = usizes(&case["test_targets"]);
        Self {
            name: case["name"].as_str().unwrap().to_string(),
            dim: uint(&case["dim"]),
            k: uint(&case["n_outputs"]),
            ks: usizes(&case["ks"]),
            train: f32s(&case["train_features"]),
            test: f32s(&case["test_features"]),
            multilabel: case["task"].as_str() == Some("multilabel"),
            train_u8: train_targets.iter().map(|&t| t as u8).collect(),
            test_u8: test_targets.iter().map(|&t| t as u8).collect(),
            train_targets,
            test_targets,
        }
    }

    fn splits(&self) -> (Split<'_>, Split<'_>) {
        let (tr, te) = if self.multilabel {
            (Targets::multilabel(&self.train_u8, self.k), Targets::multilabel(&self.test_u8, self.k))
        } else {
            (Targets::multiclass(&self.train_targets, self.k), Targets::multiclass(&self.test_targets, self.k))
        };
        (Split::from_parts(&self.train, self.dim, tr).unwrap(), Split::from_parts(&self.test, self.dim, te).unwrap())
    }
}

#[test]
fn knn_matches_dinov2_knn_module() {
    let doc = fixture("knn.json");
    for case in doc["cases"].as_array().expect("cases") {
        let c = KnnCase::from(case);
        let (train, test) = c.splits();
        let max_k = *c.ks.iter().max().unwrap();
        let expected_idx = usizes(&case["topk_indices"]);
        let expected_sims = f32s(&case["topk_similarities"]);
        // Different blockings must give the same neighbours (blocks of 7 queries × 33 train
        // rows exercise partial blocks and heaps carried across train blocks).
        for blocking in [Blocking::default(), Blocking { query_block: 7, train_block: 33 }] {
            let nb = cosine_neighbours(&train.features(), &test.features(), max_k, blocking).unwrap();
            assert_eq!(nb.indices, expected_idx, "{}: top-k indices", c.name);
            let err = max_abs_diff(&nb.similarities, &expected_sims);
            assert!(err < 1e-6, "{}: similarities differ by {err:e}", c.name);
        }

        let config = KnnConfig { blocking: Blocking { query_block: 16, train_block: 64 }, ..KnnConfig::with_ks(&c.ks) };
        let scores = knn_scores(&train, &test.features(), &config).unwrap();
        let mut worst = 0.0f64;
        for (i, kk) in c.ks.iter().enumerate() {
            let expected = f32s(&case["scores"][kk.to_string()]);
            worst = worst.max(max_abs_diff(&scores.scores[i], &expected));
        }
        println!("knn {}: max |Δ| vote score {worst:.1e}", c.name);
        assert!(worst < 1e-5, "{}: vote scores differ by {worst:e}", c.name);

        // knn_evaluate = metrics of the reference scores, clamped to [0, 1]: PyTorch's f32
        // sums of weights reach 1.0000002 here (multi-label, k = 10), which would make
        // torchmetrics' rule apply a sigmoid to every score (cellino clamps, see
        // `knn_scores`).
        let report = knn_evaluate(&train, &test, &config).unwrap();
        for kk in &c.ks {
            let reference: Vec<f32> = f32s(&case["scores"][kk.to_string()]).iter().map(|v| v.min(1.0)).collect();
            let expected = SplitMetrics::from_scores(test.targets(), &reference).unwrap();
            let got = &report.k[kk];
            assert_eq!(got.accuracy(), expected.accuracy(), "{} k={kk}", c.name);
            assert_eq!(got.macro_f1(), expected.macro_f1(), "{} k={kk}", c.name);
        }
        let json = serde_json::to_value(&report).unwrap();
        assert!(json["k"][c.ks[0].to_string()]["macro_f1"].is_f64());
        assert!(json["k"][c.ks[0].to_string()]["accuracy"].is_f64());

        // Exact 1-NN against scikit-learn float64 distances.
        for (metric, distance) in [("l2", Distance::L2), ("cosine", Distance::Cosine)] {
            let expected = &case["one_nn"][metric];
            let blocking = Blocking { query_block: 5, train_block: 17 };
            let got = nearest_neighbours(&train.features(), &test.features(), distance, blocking).unwrap();
            let idx: Vec<usize> = got.iter().map(|n| n.index).collect();
            assert_eq!(idx, usizes(&expected["indices"]), "{} {metric}", c.name);
            for (n, d) in got.iter().zip(f64s(&expected["distances"])) {
                assert!(
                    (n.distance - d).abs() <= 1e-9 * d.abs().max(1.0),
                    "{} {metric}: {} vs {d}",
                    c.name,
                    n.distance
                );
            }
            if !c.multilabel {
                let pred = one_nn_predict(&train.features(), &c.train_targets, &test.features(), distance, blocking);
                let want: Vec<usize> = idx.iter().map(|&i| c.train_targets[i]).collect();
                assert_eq!(pred.unwrap(), want);
            }
        }
    }
}

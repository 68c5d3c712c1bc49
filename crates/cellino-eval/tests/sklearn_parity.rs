//! Every metric against scikit-learn, on the cases of `tests/fixtures/metrics.json`
//! (written by `xtask/py/make_metric_fixtures.py`). Tolerance 1e-12 in f64.

use cellino_eval::{MulticlassMetrics, MultilabelMetrics, average_precision, multilabel_predictions};
use serde_json::Value;

const TOL: f64 = 1e-12;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/metrics.json");
    let text = std::fs::read_to_string(path).expect("read metrics.json");
    serde_json::from_str(&text).expect("parse metrics.json")
}

fn cases<'a>(doc: &'a Value, key: &str) -> &'a [Value] {
    let cases = doc[key].as_array().unwrap_or_else(|| panic!("{key} is not a list"));
    assert!(!cases.is_empty(), "{key} has no case");
    cases
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(|x| x.as_f64().expect("number")).collect()
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array().expect("array").iter().map(|x| x.as_u64().expect("unsigned integer")).collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    u64s(v).into_iter().map(|x| x as usize).collect()
}

/// Row-major flattening of a list of rows.
fn flat_f64(v: &Value) -> Vec<f64> {
    v.as_array().expect("rows").iter().flat_map(f64s).collect()
}

fn flat_u8(v: &Value) -> Vec<u8> {
    v.as_array().expect("rows").iter().flat_map(u64s).map(|x| u8::try_from(x).expect("0/1 target")).collect()
}

fn name(case: &Value) -> &str {
    case["name"].as_str().expect("case name")
}

fn close(case: &str, what: &str, got: f64, want: &Value) -> usize {
    let want = want.as_f64().unwrap_or_else(|| panic!("{case}: {what} is not a number"));
    assert!(
        (got - want).abs() <= TOL,
        "{case}: {what} = {got:e}, scikit-learn {want:e} (diff {:e})",
        (got - want).abs()
    );
    1
}

fn close_all(case: &str, what: &str, got: &[f64], want: &Value) -> usize {
    let want = f64s(want);
    assert_eq!(got.len(), want.len(), "{case}: {what} length");
    for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= TOL, "{case}: {what}[{i}] = {g:e}, scikit-learn {w:e} (diff {:e})", (g - w).abs());
    }
    got.len()
}

#[test]
fn multiclass_matches_sklearn() {
    let doc = fixture();
    let mut checked = 0;
    let mut subsets = 0;
    for case in cases(&doc, "multiclass") {
        let name = name(case);
        let n_classes = case["n_classes"].as_u64().unwrap() as usize;
        let y_true = usizes(&case["y_true"]);
        let e = &case["expected"];
        let m = if case.get("scores").is_some() {
            let scores = flat_f64(&case["scores"]);
            // f32 scores as well, when they convert exactly (argmax then sees the same order)
            if scores.iter().all(|&s| f64::from(s as f32) == s) {
                let s32: Vec<f32> = scores.iter().map(|&s| s as f32).collect();
                let m32 = MulticlassMetrics::from_scores(&y_true, &s32, n_classes).unwrap();
                let m64 = MulticlassMetrics::from_scores(&y_true, &scores, n_classes).unwrap();
                assert_eq!(m32, m64, "{name}: f32 vs f64 scores");
            }
            MulticlassMetrics::from_scores(&y_true, &scores, n_classes).unwrap()
        } else {
            MulticlassMetrics::from_predictions(&y_true, &usizes(&case["y_pred"]), n_classes).unwrap()
        };
        // from_scores must give exactly the matrix of sklearn's argmax predictions
        let again = MulticlassMetrics::from_predictions(&y_true, &usizes(&e["y_pred"]), n_classes).unwrap();
        assert_eq!(m, again, "{name}: argmax predictions");

        assert_eq!(m.n_classes(), n_classes);
        assert_eq!(m.n_samples(), y_true.len());
        let confusion = u64s(&e["confusion_matrix"]);
        assert_eq!(m.confusion_matrix(), confusion, "{name}: confusion");
        for (i, &count) in confusion.iter().enumerate() {
            assert_eq!(m.confusion(i / n_classes, i % n_classes), count, "{name}: [{i}]");
        }
        assert_eq!(m.support(), u64s(&e["support"]), "{name}: support");
        checked += close(name, "accuracy", m.accuracy(), &e["accuracy"]);
        checked += close_all(name, "precision", &m.precision(), &e["precision"]);
        checked += close_all(name, "recall", &m.recall(), &e["recall"]);
        checked += close_all(name, "f1", &m.f1(), &e["f1"]);
        checked += close(name, "macro_precision", m.macro_precision(), &e["macro_precision"]);
        checked += close(name, "macro_recall", m.macro_recall(), &e["macro_recall"]);
        checked += close(name, "macro_f1", m.macro_f1(), &e["macro_f1"]);
        for subset in e["subsets"].as_array().unwrap() {
            let labels = usizes(&subset["labels"]);
            let got = m.macro_f1_for_labels(&labels).unwrap();
            checked += close(name, &format!("macro_f1{labels:?}"), got, &subset["macro_f1"]);
            subsets += 1;
        }
    }
    assert!(checked > 600 && subsets > 30, "{checked} values, {subsets} subsets");
}

#[test]
fn multilabel_matches_sklearn() {
    let doc = fixture();
    let (mut checked, mut with_sigmoid) = (0, 0);
    for case in cases(&doc, "multilabel") {
        let name = name(case);
        let n_labels = case["n_labels"].as_u64().unwrap() as usize;
        let targets = flat_u8(&case["targets"]);
        let scores = flat_f64(&case["scores"]);
        let e = &case["expected"];

        let (predictions, sigmoid) = multilabel_predictions(&scores, n_labels).unwrap();
        assert_eq!(predictions, flat_u8(&e["predictions"]), "{name}: predictions");
        assert_eq!(Some(sigmoid), e["sigmoid_applied"].as_bool(), "{name}: sigmoid");
        with_sigmoid += usize::from(sigmoid);

        let m = MultilabelMetrics::new(&targets, &scores, n_labels).unwrap();
        assert_eq!(m.n_labels(), n_labels);
        assert_eq!(m.n_samples(), targets.len() / n_labels);
        assert_eq!(m.sigmoid_applied(), sigmoid);
        assert_eq!(m.support(), u64s(&e["support"]), "{name}: support");
        let predicted: Vec<u64> =
            (0..n_labels).map(|k| predictions.iter().skip(k).step_by(n_labels).map(|&p| u64::from(p)).sum()).collect();
        assert_eq!(m.predicted_positives(), predicted, "{name}: predicted positives");
        checked += close_all(name, "precision", &m.precision(), &e["precision"]);
        checked += close_all(name, "recall", &m.recall(), &e["recall"]);
        checked += close_all(name, "f1", &m.f1(), &e["f1"]);
        checked += close(name, "macro_f1", m.macro_f1(), &e["macro_f1"]);
        checked += close(name, "micro_f1", m.micro_f1(), &e["micro_f1"]);
        checked += close_all(name, "average_precision", m.average_precision(), &e["average_precision"]);
        checked += close(name, "mean_average_precision", m.mean_average_precision(), &e["mean_average_precision"]);
    }
    assert!(checked > 500 && with_sigmoid >= 4, "{checked} values, {with_sigmoid} logit cases");
}

#[test]
fn binary_average_precision_matches_sklearn() {
    let doc = fixture();
    for case in cases(&doc, "binary_average_precision") {
        let name = name(case);
        let targets: Vec<u8> = u64s(&case["targets"]).into_iter().map(|t| t as u8).collect();
        let scores = f64s(&case["scores"]);
        let got = average_precision(&targets, &scores).unwrap();
        close(name, "average_precision", got, &case["average_precision"]);
    }
}

#[test]
fn fixture_records_versions() {
    let doc = fixture();
    let versions = &doc["versions"];
    assert!(versions["scikit-learn"].is_string() && versions["numpy"].is_string());
}

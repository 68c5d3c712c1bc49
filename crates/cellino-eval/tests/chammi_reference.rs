//! The CHAMMI tasks against an independent scikit-learn implementation
//! (`xtask/py/chammi_reference.py`): synthetic WTC, HPA and CP subsets in the CHAMMI layout
//! (`enriched_meta.csv` + row-aligned `embeddings.npy`), every task, the L2 and cosine 1-NN
//! and the dinov2 weighted kNN (k = 1, 5), leave-one-group-out for HPA Task 3 and CP Task 4.
//!
//! The embeddings go through the same path as `cellino eval chammi`: written with their
//! sidecar, read back, split by `train_test_split`, then [`chammi_task_inputs`] and
//! [`ChammiTask::run`](cellino_eval::ChammiTask::run). Predictions must agree exactly (the
//! generator rejects draws with near ties), so scores agree to 1e-12.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cellino_data::{ChammiSplit, ChammiSubset, EvalTransform, LabelSchema, Target};
use cellino_eval::{
    ChammiClassifier, Distance, EmbeddingSet, Extracted, FeatureLayout, KnnConfig, ModelSource, StoredLabels,
    chammi_task_inputs, read_embeddings, read_npy_f32, write_embeddings,
};
use cellino_vit::{Arch, VitConfig};
use serde_json::Value;

const TOLERANCE: f64 = 1e-12;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/chammi")
}

/// One row of `enriched_meta.csv`.
struct MetaRow {
    file: String,
    split: ChammiSplit,
    class: usize,
    group: String,
}

fn read_meta(path: &Path, subset: ChammiSubset) -> (Vec<String>, Vec<MetaRow>) {
    let mut r = csv::Reader::from_path(path).expect("enriched_meta.csv");
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap_or_else(|| panic!("no {n} column"));
    let (file, split, label) = (col("file_path"), col("train_test_split"), col("label"));
    let group = subset.leave_one_out().map(|(_, g)| col(g));
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            let name = &rec[label];
            MetaRow {
                file: rec[file].to_owned(),
                split: rec[split].parse().unwrap(),
                class: subset.classes().iter().position(|c| *c == name).unwrap_or_else(|| panic!("label {name}")),
                group: group.map_or_else(String::new, |g| rec[g].to_owned()),
            }
        })
        .collect();
    (headers, rows)
}

/// The whole subset written as `emb.npy/.csv/.json` (BoC layout from the fixture) and read back.
fn embedding_set(dir: &Path, subset: ChammiSubset, meta: &[MetaRow], expected: &Value) -> EmbeddingSet {
    let (features, n_rows, dim) = read_npy_f32(&data_dir().join(subset.folder()).join("embeddings.npy")).unwrap();
    assert_eq!(n_rows, meta.len(), "one embedding row per CSV row");
    let l = &expected["layout"];
    let get = |k: &str| l[k].as_u64().unwrap() as usize;
    let channels = subset.channels();
    let names: Vec<String> = (0..channels).map(|c| format!("ch{c}")).collect();
    let layout =
        FeatureLayout::new(get("n_last_blocks"), true, true, get("embed_dim"), channels, get("depth"), Some(&names))
            .unwrap();
    assert_eq!(layout.dim, dim);
    let group_col = subset.leave_one_out().map_or("group", |(_, g)| g).to_owned();
    let extracted = Extracted {
        features,
        n_rows,
        layout,
        channel_names: names,
        transform: EvalTransform::center(224, 256),
        targets: meta.iter().map(|m| Target::Class(m.class)).collect(),
        labels: LabelSchema::SingleLabel { classes: subset.classes().iter().map(|s| s.to_string()).collect() },
        metadata_columns: vec!["train_test_split".into(), group_col],
        metadata: meta.iter().map(|m| vec![m.split.name().to_owned(), m.group.clone()]).collect(),
        sources: meta.iter().map(|m| format!("/data/chammi/{}", m.file)).collect(),
        lines: (2..).take(n_rows).collect(),
        dataset: format!("CHAMMI_{}:enriched", subset.folder()),
        manifest: None,
    };
    let path = dir.join(format!("{}.npy", subset.folder()));
    let config = VitConfig::for_arch(Arch::VitSmall, 16, 1, 224);
    write_embeddings(&path, &extracted, &config, ModelSource { checkpoint: None, arch: None }).unwrap();
    read_embeddings(&path).unwrap()
}

/// The rows of one split, as `cellino eval chammi` cuts them (same sidecar, the split's rows).
fn split_set(set: &EmbeddingSet, split: ChammiSplit) -> EmbeddingSet {
    let split_col = set.column("train_test_split").unwrap();
    let idx: Vec<usize> = (0..set.n_rows).filter(|&i| split_col[i] == split.name()).collect();
    let StoredLabels::Multiclass { classes, labels, .. } = &set.labels else { panic!("multi-class labels") };
    let mut sidecar = set.sidecar.clone();
    sidecar.n_rows = idx.len();
    EmbeddingSet {
        features: idx.iter().flat_map(|&i| set.row(i).iter().copied()).collect(),
        n_rows: idx.len(),
        dim: set.dim,
        sidecar,
        metadata_columns: set.metadata_columns.clone(),
        metadata: idx.iter().map(|&i| set.metadata[i].clone()).collect(),
        sources: idx.iter().map(|&i| set.sources[i].clone()).collect(),
        labels: StoredLabels::Multiclass {
            classes: classes.clone(),
            labels: idx.iter().map(|&i| labels[i]).collect(),
            missing: Vec::new(),
        },
    }
}

/// Runs every task of `subset` with every classifier; `(task, classifier) → (macro F1, accuracy)`.
fn rust_scores(subset: ChammiSubset, expected: &Value) -> BTreeMap<(String, String), (f64, f64)> {
    let dir = tempfile::tempdir().unwrap();
    let (headers, meta) = read_meta(&data_dir().join(subset.folder()).join("enriched_meta.csv"), subset);
    assert!(headers.iter().any(|h| h == "ID"));
    let set = embedding_set(dir.path(), subset, &meta, expected);
    let train = split_set(&set, ChammiSplit::Train);
    let ks: Vec<usize> =
        expected["knn"]["ks"].as_array().unwrap().iter().map(|k| k.as_u64().unwrap() as usize).collect();
    let knn = KnnConfig {
        ks: ks.clone(),
        temperature: expected["knn"]["temperature"].as_f64().unwrap(),
        ..KnnConfig::with_ks(&ks)
    };
    let classifiers = [
        ("1nn_l2", ChammiClassifier::OneNn(Distance::L2)),
        ("1nn_cosine", ChammiClassifier::OneNn(Distance::Cosine)),
        ("knn", ChammiClassifier::Knn(knn)),
    ];
    let mut out = BTreeMap::new();
    for &split in subset.splits().iter().filter(|s| **s != ChammiSplit::Train) {
        let test = split_set(&set, split);
        let inputs = chammi_task_inputs(&train, &test, subset, split, None).unwrap();
        let loo = subset.leave_one_out().is_some_and(|(s, _)| s == split);
        assert_eq!(inputs.leave_one_out.is_some(), loo, "{}", inputs.name);
        if loo {
            // Only the last block's CLS + patch average (2 of the 3 column groups).
            assert_eq!(inputs.dim * 3, set.dim * 2);
        }
        let task = inputs.task().unwrap();
        for (name, classifier) in &classifiers {
            let report = task.run(classifier).unwrap();
            for (key, score) in &report.scores {
                let label = match key.strip_prefix("k=") {
                    Some(k) => format!("knn_k{k}"),
                    None => (*name).to_owned(),
                };
                out.insert((split.name().to_owned(), label), (score.macro_f1, score.accuracy));
            }
        }
    }
    out
}

fn check(subset: ChammiSubset) {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(data_dir().join("expected.json")).unwrap()).expect("expected.json");
    let want = &expected["subsets"][subset.folder()]["tasks"];
    let got = rust_scores(subset, &expected);
    let mut compared = 0;
    for (task, by_classifier) in want.as_object().unwrap() {
        for (classifier, s) in by_classifier.as_object().unwrap() {
            let (f1, acc) = got
                .get(&(task.clone(), classifier.clone()))
                .unwrap_or_else(|| panic!("{} {task} {classifier}: no Rust score", subset.folder()));
            let (wf1, wacc) = (s["macro_f1"].as_f64().unwrap(), s["accuracy"].as_f64().unwrap());
            assert!(
                (f1 - wf1).abs() <= TOLERANCE,
                "{} {task} {classifier}: macro F1 {f1} vs sklearn {wf1}",
                subset.folder()
            );
            assert!(
                (acc - wacc).abs() <= TOLERANCE,
                "{} {task} {classifier}: accuracy {acc} vs sklearn {wacc}",
                subset.folder()
            );
            compared += 1;
        }
    }
    // Every task of the subset, four scores each (1-NN L2 / cosine, kNN k = 1, 5).
    assert_eq!(compared, 4 * (subset.splits().len() - 1));
    assert_eq!(got.len(), compared, "Rust produced scores the reference does not have");
}

#[test]
fn wtc_matches_sklearn() {
    check(ChammiSubset::Wtc);
}

#[test]
fn hpa_matches_sklearn_with_leave_one_cell_type_out() {
    check(ChammiSubset::Hpa);
}

#[test]
fn cp_matches_sklearn_with_leave_one_plate_out() {
    check(ChammiSubset::Cp);
}

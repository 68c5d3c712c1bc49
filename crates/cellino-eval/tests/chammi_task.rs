//! End to end on a tiny synthetic CHAMMI folder (HPA subset: `morphem70k_v2.csv`,
//! `HPA/enriched_meta.csv`, square-tiled 4-channel PNGs): Bag-of-Channels extraction, files
//! written and read back, then Task 1 and the leave-one-out Task 3 through kNN, the 1-NN
//! (checked against a brute-force reference) and the linear probe.

use std::path::{Path, PathBuf};

use cellino_data::{ChammiMetadata, ChammiSplit, ChammiSubset, Dataset, EvalTransform, chammi_loo_groups};
use cellino_eval::{
    CHAMMI_NOVEL_LABELS, ChammiClassifier, ChammiTaskReport, Distance, EmbeddingSet, EvalError, ExtractConfig,
    KnnConfig, LinearProbeConfig, ModelSource, MulticlassMetrics, ProbeSelection, chammi_task_inputs, extract_features,
    read_embeddings, write_embeddings,
};
use cellino_vit::{DinoVisionTransformer, PosEmbedInterpolation};

const SIDE: u32 = 32;
const HPA_CLASSES: [&str; 7] = [
    "golgi apparatus",
    "microtubules",
    "mitochondria",
    "nuclear speckles",
    "cytosol",
    "endoplasmic reticulum",
    "nucleoplasm",
];

/// A 4-channel image tiled along the width, with a class-dependent stripe pattern.
fn write_tiled(path: &Path, class: usize, sample: usize) {
    let (w, h) = (SIDE * 4, SIDE);
    let mut img = image::GrayImage::new(w, h);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (k, xx) = ((x / SIDE) as f32, (x % SIDE) as f32);
        // Stripes whose orientation and frequency depend on the class; a small per-sample shift.
        let angle = class as f32 * 0.45 + k * 0.1;
        let u = xx * angle.cos() + y as f32 * angle.sin();
        let v = 128.0 + 100.0 * (u * (0.25 + 0.1 * class as f32) + (sample % 3) as f32 * 0.15).sin();
        *p = image::Luma([v.clamp(0.0, 255.0) as u8]);
    }
    img.save(path).expect("png");
}

/// Rows of (split, label, drawn pattern, cell type). One Task 3 row is labelled 5 but drawn
/// as class 2, so that the novel-label F1 and the all-class F1 differ.
fn rows() -> Vec<(&'static str, usize, usize, &'static str)> {
    let mut rows = Vec::new();
    for s in 0..3 {
        for c in 0..4 {
            rows.push(("Train", c, c, ["A", "B", "C"][s]));
        }
    }
    for c in 0..4 {
        rows.push(("Task_one", c, c, "A"));
    }
    for (g, cell) in ["U-2 OS", "HeLa", "A549"].into_iter().enumerate() {
        for c in 4..7 {
            rows.push(("Task_three", c, c, cell));
        }
        rows.push(("Task_three", g, g, cell));
    }
    rows.push(("Task_three", 5, 2, "HeLa"));
    rows
}

fn write_chammi(root: &Path) {
    std::fs::create_dir_all(root.join("HPA/images")).unwrap();
    let mut combined = String::from("file_path,train_test_split,label\n");
    let mut enriched = String::from("file_path,train_test_split,label,cell_type\n");
    // Another subset's row: must be ignored for HPA.
    combined.push_str("Allen/x.tiff,Train,M0\n");
    for (i, (split, class, drawn, cell)) in rows().into_iter().enumerate() {
        let file = format!("HPA/images/{i}.png");
        write_tiled(&root.join(&file), drawn, i);
        combined.push_str(&format!("{file},{split},{}\n", HPA_CLASSES[class]));
        enriched.push_str(&format!("{file},{split},{},{cell}\n", HPA_CLASSES[class]));
    }
    std::fs::write(root.join("morphem70k_v2.csv"), combined).unwrap();
    std::fs::write(root.join("HPA/enriched_meta.csv"), enriched).unwrap();
}

fn embed(model: &DinoVisionTransformer, ds: &Dataset, out: PathBuf) -> EmbeddingSet {
    let config = ExtractConfig {
        n_last_blocks: 2,
        avgpool: true,
        bag_of_channels: true,
        transform: EvalTransform::center(32, 0),
        batch_size: 4,
        ..ExtractConfig::default()
    };
    let x = extract_features(model, ds, &config, None).expect("extract");
    write_embeddings(&out, &x, model.config(), ModelSource::default()).expect("write");
    read_embeddings(&out).expect("read")
}

/// Brute-force exact L2 1-NN in f64 (first minimum wins).
fn brute_1nn(train: &[f32], train_y: &[usize], queries: &[f32], dim: usize) -> Vec<usize> {
    queries
        .chunks_exact(dim)
        .map(|q| {
            let mut best = (f64::INFINITY, 0);
            for (j, t) in train.chunks_exact(dim).enumerate() {
                let d: f64 = q.iter().zip(t).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
                if d < best.0 {
                    best = (d, j);
                }
            }
            train_y[best.1]
        })
        .collect()
}

fn check_json(report: &ChammiTaskReport) {
    let v: serde_json::Value = serde_json::to_value(report).unwrap();
    for key in ["macro_f1", "accuracy"] {
        let x = v[key].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&x), "{key} = {x}");
    }
}

#[test]
fn chammi_hpa_tasks_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_chammi(root);
    let weights =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../cellino-vit/tests/fixtures/boc_p16_offset/model.safetensors");
    let model = DinoVisionTransformer::load(weights, None, Some(4), PosEmbedInterpolation::DINOV2).unwrap();
    let open = |split, meta| Dataset::chammi(root, ChammiSubset::Hpa, split, meta).expect("chammi");
    let train = embed(&model, &open(ChammiSplit::Train, ChammiMetadata::Combined), root.join("train.npy"));
    let task1 = embed(&model, &open(ChammiSplit::TaskOne, ChammiMetadata::Combined), root.join("t1.npy"));
    let task3 = embed(&model, &open(ChammiSplit::TaskThree, ChammiMetadata::Enriched), root.join("t3.npy"));
    assert_eq!((train.n_rows, task1.n_rows, task3.n_rows, train.dim), (12, 4, 13, 2 * 4 * 96 + 4 * 96));

    // Task 1: kNN, 1-NN (vs brute force) and the linear probe.
    let inputs = chammi_task_inputs(&train, &task1, ChammiSubset::Hpa, ChammiSplit::TaskOne, None).unwrap();
    assert!(inputs.leave_one_out.is_none());
    assert_eq!(inputs.dim, train.dim);
    let task = inputs.task().unwrap();
    let knn = task.run(&ChammiClassifier::Knn(KnnConfig::with_ks(&[1, 3]))).unwrap();
    assert_eq!(knn.scores.keys().collect::<Vec<_>>(), ["k=1", "k=3"]);
    assert_eq!(knn.macro_f1, knn.scores["k=1"].macro_f1);
    assert_eq!((knn.macro_f1, knn.accuracy), (1.0, 1.0), "separable synthetic classes");
    check_json(&knn);
    let nn = task.run(&ChammiClassifier::OneNn(Distance::L2)).unwrap();
    let pred = brute_1nn(&inputs.train_features, &inputs.train_labels, &inputs.test_features, inputs.dim);
    let m = MulticlassMetrics::from_predictions(&inputs.test_labels, &pred, 7).unwrap();
    assert_eq!((nn.macro_f1, nn.accuracy), (m.macro_f1(), m.accuracy()));
    check_json(&nn);
    let probe = LinearProbeConfig {
        learning_rates: vec![1.0, 10.0],
        weight_decays: vec![0.0, 1e-4],
        batch_size: 4,
        epochs: 4,
        epoch_length: Some(10),
        n_last_blocks: 2,
        avgpool: true,
        ..LinearProbeConfig::default()
    };
    let carve = ProbeSelection::CarveFromTrain { fraction: 0.25, seed: 0 };
    let lin = task.run(&ChammiClassifier::Linear { config: probe.clone(), selection: carve }).unwrap();
    assert_eq!(lin.selected_classifiers.len(), 1);
    assert!(lin.selection_note.contains("held out"), "{}", lin.selection_note);
    check_json(&lin);

    // Task 3: leave one cell type out, last block only, F1 over the novel labels.
    let groups = chammi_loo_groups(root, ChammiSubset::Hpa).unwrap();
    assert_eq!(task3.column("cell_type").unwrap(), groups);
    let inputs = chammi_task_inputs(&train, &task3, ChammiSubset::Hpa, ChammiSplit::TaskThree, None).unwrap();
    assert_eq!(inputs.dim, 2 * 4 * 96, "last block CLS + avgpool only");
    let loo = inputs.leave_one_out.as_ref().expect("leave-one-out task");
    assert_eq!((loo.groups.clone(), loo.labels.clone()), (groups.clone(), CHAMMI_NOVEL_LABELS.to_vec()));
    let task = inputs.task().unwrap();
    let nn = task.run(&ChammiClassifier::OneNn(Distance::L2)).unwrap();
    assert_eq!(nn.leave_one_out_groups.as_deref(), Some(&["U-2 OS".to_string(), "HeLa".into(), "A549".into()][..]));
    // Reference: per held-out group, fit on train + the other groups.
    let dim = inputs.dim;
    let mut pred = vec![0; inputs.test_labels.len()];
    for g in ["U-2 OS", "HeLa", "A549"] {
        let (mut fx, mut fy) = (inputs.train_features.clone(), inputs.train_labels.clone());
        let mut rows = Vec::new();
        for (i, gi) in groups.iter().enumerate() {
            if gi == g {
                rows.push(i);
            } else {
                fx.extend_from_slice(&inputs.test_features[i * dim..(i + 1) * dim]);
                fy.push(inputs.test_labels[i]);
            }
        }
        let q: Vec<f32> = rows.iter().flat_map(|&i| inputs.test_features[i * dim..(i + 1) * dim].to_vec()).collect();
        for (&i, p) in rows.iter().zip(brute_1nn(&fx, &fy, &q, dim)) {
            pred[i] = p;
        }
    }
    let m = MulticlassMetrics::from_predictions(&inputs.test_labels, &pred, 7).unwrap();
    assert_eq!(nn.macro_f1, m.macro_f1_for_labels(&CHAMMI_NOVEL_LABELS).unwrap());
    assert!(nn.macro_f1 < 1.0 && (nn.macro_f1 - m.macro_f1()).abs() > 1e-9, "{} vs {}", nn.macro_f1, m.macro_f1());
    assert_eq!(nn.accuracy, m.accuracy());
    check_json(&nn);

    let knn = task.run(&ChammiClassifier::Knn(KnnConfig::with_ks(&[1]))).unwrap();
    check_json(&knn);
    for selection in [carve, ProbeSelection::UpstreamSelectOnTest] {
        let lin = task.run(&ChammiClassifier::Linear { config: probe.clone(), selection }).unwrap();
        let folds = if selection == carve { 3 } else { 1 };
        assert_eq!(lin.selected_classifiers.len(), folds);
        assert_eq!(lin.leave_one_out_labels.as_deref(), Some(&CHAMMI_NOVEL_LABELS[..]));
        check_json(&lin);
    }

    // Bad input: a task the subset lacks, groups of the wrong length.
    assert!(matches!(
        chammi_task_inputs(&train, &task1, ChammiSubset::Hpa, ChammiSplit::TaskFour, None),
        Err(EvalError::InvalidConfig { .. })
    ));
    let short = Some(groups[..3].to_vec());
    let inputs = chammi_task_inputs(&train, &task3, ChammiSubset::Hpa, ChammiSplit::TaskThree, short).unwrap();
    assert!(matches!(
        inputs.task().unwrap().run(&ChammiClassifier::OneNn(Distance::L2)),
        Err(EvalError::LengthMismatch { .. })
    ));
    // Train embeddings of another subset's class list.
    assert!(chammi_task_inputs(&train, &task1, ChammiSubset::Cp, ChammiSplit::TaskOne, None).is_err());
}

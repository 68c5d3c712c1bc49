//! `cellino embed` over a dataset and `cellino eval linear|knn|chammi`: files written, JSON keys
//! of the contract, sensible scores on separable data, and bad input ending in one error line,
//! a non-zero exit and no output file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::Tensor;
use serde_json::Value;

fn cellino(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cellino")).args(args).output().expect("run cellino")
}

fn ok(out: &Output) {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

/// Fails with exactly one `error: ...` line on stderr, and `out` does not exist.
fn fails(out: &Output, path: &Path, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    assert!(!path.exists(), "{} written", path.display());
}

fn model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cellino-vit/tests/fixtures/boc_p16_offset/model.safetensors")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A minimal .npy writer (C order, little endian).
fn write_npy(path: &Path, descr: &str, shape: &[usize], data: &[u8]) {
    let shape_str = match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_str}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

fn write_f32(path: &Path, rows: usize, cols: usize, v: &[f32]) {
    write_npy(path, "<f4", &[rows, cols], &v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
}

fn write_i64(path: &Path, v: &[i64]) {
    write_npy(path, "<i8", &[v.len()], &v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
}

/// Three separable classes in 4-D: cluster centre on axis `c`, small deterministic jitter.
fn blobs(n: usize, offset: usize) -> (Vec<f32>, Vec<i64>) {
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = (i + offset) % 3;
        let j = ((i * 7 + offset) % 5) as f32 * 0.05;
        let mut row = [0.1 + j, 0.1, 0.1 - j, 0.2];
        row[c] += 2.0;
        x.extend(row);
        y.push(c as i64);
    }
    (x, y)
}

struct Probe {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Probe {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let (tx, ty) = blobs(60, 0);
        let (qx, qy) = blobs(21, 1);
        write_f32(&root.join("train_x.npy"), 60, 4, &tx);
        write_i64(&root.join("train_y.npy"), &ty);
        write_f32(&root.join("test_x.npy"), 21, 4, &qx);
        write_i64(&root.join("test_y.npy"), &qy);
        // Multi-label: label 0 = class 0, label 1 = class 1 or 2 (float 0/1 dtype).
        let ml = |y: &[i64]| -> Vec<f32> {
            y.iter().flat_map(|&c| [(c == 0) as u8 as f32, (c != 0) as u8 as f32]).collect()
        };
        write_f32(&root.join("train_ml.npy"), 60, 2, &ml(&ty));
        write_f32(&root.join("test_ml.npy"), 21, 2, &ml(&qy));
        // CSV labels with names.
        let names = ["golgi", "nucleus", "actin"];
        let csv =
            |y: &[i64]| format!("label\n{}\n", y.iter().map(|&c| names[c as usize]).collect::<Vec<_>>().join("\n"));
        std::fs::write(root.join("train_y.csv"), csv(&ty)).unwrap();
        std::fs::write(root.join("test_y.csv"), csv(&qy)).unwrap();
        Self { _dir: dir, root }
    }

    fn p(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn run(&self, cmd: &str, files: [&str; 4], extra: &[&str], out: &Path) -> Output {
        let paths: Vec<PathBuf> = files.iter().map(|f| self.p(f)).collect();
        let mut args = vec!["eval", cmd];
        for (flag, p) in ["--train-features", "--train-labels", "--test-features", "--test-labels"].iter().zip(&paths) {
            args.extend([*flag, s(p)]);
        }
        args.extend(extra);
        args.extend(["--out", s(out)]);
        cellino(&args)
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn score(v: &Value, key: &str) -> f64 {
    let x = v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"));
    assert!((0.0..=1.0).contains(&x), "{key} = {x}");
    x
}

const FAST_GRID: [&str; 8] =
    ["--learning-rates", "0.1,1", "--weight-decays", "0,1e-4", "--epochs", "3", "--epoch-length", "10"];

#[test]
fn eval_linear_multiclass_multilabel_and_csv_labels() {
    let t = Probe::new();
    let out = t.p("linear.json");
    let files = ["train_x.npy", "train_y.npy", "test_x.npy", "test_y.npy"];
    let mut extra = vec!["--task", "multiclass", "--batch-size", "16"];
    extra.extend(FAST_GRID);
    ok(&t.run("linear", files, &extra, &out));
    let v = read_json(&out);
    assert!(score(&v["test"], "macro_f1") > 0.9, "{}", v["test"]);
    score(&v["test"], "accuracy");
    assert_eq!(v["selection"]["source"], "carved_from_train");
    assert_eq!(v["grid"].as_array().unwrap().len(), 4);

    // Given validation split, CSV class names.
    let out = t.p("linear_csv.json");
    let mut extra = vec!["--task", "multiclass", "--batch-size", "16"];
    extra.extend(FAST_GRID);
    let (vx, vy) = (t.p("test_x.npy"), t.p("test_y.csv"));
    extra.extend(["--val-features", s(&vx), "--val-labels", s(&vy)]);
    ok(&t.run("linear", ["train_x.npy", "train_y.csv", "test_x.npy", "test_y.csv"], &extra, &out));
    let v = read_json(&out);
    assert!(score(&v["test"], "macro_f1") > 0.9);
    assert_eq!(v["selection"]["source"], "validation_split");
    assert_eq!(v["classes"], serde_json::json!(["actin", "golgi", "nucleus"]));

    // Multi-label, upstream selection labelled.
    let out = t.p("linear_ml.json");
    let mut extra = vec!["--task", "multilabel", "--batch-size", "16", "--select-on-test"];
    extra.extend(FAST_GRID);
    ok(&t.run("linear", ["train_x.npy", "train_ml.npy", "test_x.npy", "test_ml.npy"], &extra, &out));
    let v = read_json(&out);
    assert!(score(&v["test"], "macro_f1") > 0.8, "{}", v["test"]);
    assert_eq!(v["selection"]["source"], "upstream_test_split");
}

#[test]
fn eval_knn_cosine_and_l2() {
    let t = Probe::new();
    let files = ["train_x.npy", "train_y.npy", "test_x.npy", "test_y.npy"];
    let out = t.p("knn.json");
    ok(&t.run("knn", files, &["--k", "1,20", "--temperature", "0.07"], &out));
    let v = read_json(&out);
    for k in ["1", "20"] {
        assert_eq!(score(&v["k"][k], "macro_f1"), 1.0);
        assert_eq!(score(&v["k"][k], "accuracy"), 1.0);
    }
    let out = t.p("l2.json");
    ok(&t.run("knn", files, &["--k", "1", "--metric", "l2"], &out));
    let v = read_json(&out);
    assert_eq!(score(&v["k"]["1"], "macro_f1"), 1.0);
    assert_eq!(v["metric"], "l2");
    // Multi-label kNN.
    let out = t.p("knn_ml.json");
    ok(&t.run("knn", ["train_x.npy", "train_ml.npy", "test_x.npy", "test_ml.npy"], &["--k", "1,5"], &out));
    assert_eq!(score(&read_json(&out)["k"]["5"], "macro_f1"), 1.0);
    // l2 with k > 1 is refused.
    let out = t.p("l2_k5.json");
    fails(&t.run("knn", files, &["--k", "1,5", "--metric", "l2"], &out), &out, "only takes --k 1");
}

#[test]
fn eval_bad_input() {
    let t = Probe::new();
    // Row counts differ.
    let (x, _) = blobs(59, 0);
    write_f32(&t.p("short_x.npy"), 59, 4, &x);
    let out = t.p("bad.json");
    let r = t.run("knn", ["short_x.npy", "train_y.npy", "test_x.npy", "test_y.npy"], &["--k", "1"], &out);
    fails(&r, &out, "59 feature rows but 60 label rows");
    // NaN features.
    let (mut x, _) = blobs(21, 1);
    x[13] = f32::NAN;
    write_f32(&t.p("nan_x.npy"), 21, 4, &x);
    let r = t.run("knn", ["train_x.npy", "train_y.npy", "nan_x.npy", "test_y.npy"], &["--k", "1"], &out);
    fails(&r, &out, "NaN");
    // Labels outside the class list (train has 0..2).
    let (_, mut y) = blobs(21, 1);
    y[4] = 7;
    write_i64(&t.p("bad_y.npy"), &y);
    let mut extra = vec!["--task", "multiclass"];
    extra.extend(FAST_GRID);
    let r = t.run("linear", ["train_x.npy", "train_y.npy", "test_x.npy", "bad_y.npy"], &extra, &out);
    fails(&r, &out, "outside the class list");
    std::fs::write(t.p("bad_y.csv"), "label\ngolgi\nmystery\n").unwrap();
    let (x, _) = blobs(2, 0);
    write_f32(&t.p("two_x.npy"), 2, 4, &x);
    let r = t.run("knn", ["train_x.npy", "train_y.csv", "two_x.npy", "bad_y.csv"], &["--k", "1"], &out);
    fails(&r, &out, "outside the class list");
    // A split with one sample.
    write_f32(&t.p("one_x.npy"), 1, 4, &x[..4]);
    write_i64(&t.p("one_y.npy"), &[0]);
    let r = t.run("knn", ["train_x.npy", "train_y.npy", "one_x.npy", "one_y.npy"], &["--k", "1"], &out);
    fails(&r, &out, "1 sample");
    // --task disagrees with the labels.
    let r = t.run("linear", ["train_x.npy", "train_ml.npy", "test_x.npy", "test_ml.npy"], &extra, &out);
    fails(&r, &out, "--task multiclass but the labels are multi-label");
}

fn write_png(path: &Path, w: u32, h: u32, seed: u32) {
    let mut img = image::RgbImage::new(w, h);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let v = |k: u32| ((x * (3 + k) + y * (5 + seed) + k * 40) % 256) as u8;
        *p = image::Rgb([v(0), v(1), v(2)]);
    }
    img.save(path).unwrap();
}

#[test]
fn embed_manifest_of_pngs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut manifest = String::from("path,label,well\n");
    for i in 0..5 {
        write_png(&root.join(format!("img{i}.png")), 40, 36, i);
        manifest.push_str(&format!("img{i}.png,{},W{i}\n", i % 2));
    }
    std::fs::write(root.join("manifest.csv"), manifest).unwrap();
    let out = root.join("emb/emb.npy");
    let (m, input) = (model(), root.join("manifest.csv"));
    let args = [
        "embed",
        "--model",
        s(&m),
        "--num-heads",
        "4",
        "--bag-of-channels",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--n-last-blocks",
        "2",
        "--avgpool",
        "--crop-size",
        "32",
        "--batch-size",
        "2",
        "--threads",
        "2",
    ];
    ok(&cellino(&args));
    let x = Tensor::read_npy(&out).unwrap();
    assert_eq!(x.dims(), &[5, 2 * 3 * 96 + 3 * 96]);
    let csv = std::fs::read_to_string(root.join("emb/emb.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6);
    assert!(csv.lines().next().unwrap().contains("well"));
    let parquet = std::fs::read(root.join("emb/emb.parquet")).unwrap();
    assert!(parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"), "emb.parquet is not a Parquet file");
    let sidecar = read_json(&root.join("emb/emb.json"));
    assert_eq!(sidecar["metadata_parquet_file"], "emb.parquet");
    assert_eq!(sidecar["n_rows"], 5);
    assert!(sidecar["model"]["checkpoint"]["sha256"].is_string(), "{}", sidecar["model"]);

    // Channel selection by index; a dataset-only flag on a raw batch is refused.
    let out2 = root.join("emb2.npy");
    let mut args2 = args.to_vec();
    let i = args2.iter().position(|a| *a == "--output").unwrap();
    args2[i + 1] = s(&out2);
    args2.extend(["--channels", "2,0"]);
    ok(&cellino(&args2));
    assert_eq!(Tensor::read_npy(&out2).unwrap().dims(), &[5, 2 * 2 * 96 + 2 * 96]);
    let bad = root.join("raw.npy");
    let r =
        cellino(&["embed", "--model", s(&m), "--num-heads", "4", "--input", s(&out), "--output", s(&bad), "--avgpool"]);
    fails(&r, &bad, "--avgpool applies to dataset inputs");
    // Missing images: one error line, nothing written.
    std::fs::write(root.join("missing.csv"), "path\nnope.png\n").unwrap();
    let out3 = root.join("missing.npy");
    let r = cellino(&[
        "embed",
        "--model",
        s(&m),
        "--num-heads",
        "4",
        "--bag-of-channels",
        "--input",
        s(&root.join("missing.csv")),
        "--output",
        s(&out3),
    ]);
    assert!(!r.status.success());
    assert!(!out3.exists() && !root.join("missing.csv.json").exists() && !root.join("missing.json").exists());
}

const HPA: [&str; 7] = [
    "golgi apparatus",
    "microtubules",
    "mitochondria",
    "nuclear speckles",
    "cytosol",
    "endoplasmic reticulum",
    "nucleoplasm",
];

/// 4 square channels side by side; stripes whose angle and frequency depend on the class.
fn write_tiled(path: &Path, class: usize, sample: usize) {
    const SIDE: u32 = 32;
    let mut img = image::GrayImage::new(SIDE * 4, SIDE);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let (k, xx) = ((x / SIDE) as f32, (x % SIDE) as f32);
        let angle = class as f32 * 0.45 + k * 0.1;
        let u = xx * angle.cos() + y as f32 * angle.sin();
        let v = 128.0 + 100.0 * (u * (0.25 + 0.1 * class as f32) + (sample % 3) as f32 * 0.15).sin();
        *p = image::Luma([v.clamp(0.0, 255.0) as u8]);
    }
    img.save(path).unwrap();
}

#[test]
fn eval_chammi_hpa() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("HPA/images")).unwrap();
    let mut rows: Vec<(&str, usize, &str)> = Vec::new();
    for s in 0..3 {
        for c in 0..4 {
            rows.push(("Train", c, ["A", "B", "C"][s]));
        }
    }
    for c in 0..4 {
        rows.push(("Task_one", c, "A"));
    }
    for (g, cell) in ["U-2 OS", "HeLa", "A549"].into_iter().enumerate() {
        for c in 4..7 {
            rows.push(("Task_three", c, cell));
        }
        rows.push(("Task_three", g, cell));
    }
    let mut meta = String::from("file_path,train_test_split,label,cell_type\n");
    for (i, (split, class, cell)) in rows.iter().enumerate() {
        let file = format!("HPA/images/{i}.png");
        write_tiled(&root.join(&file), *class, i);
        meta.push_str(&format!("{file},{split},{},{cell}\n", HPA[*class]));
    }
    let meta_path = root.join("HPA/enriched_meta.csv");
    std::fs::write(&meta_path, meta).unwrap();
    let emb = root.join("hpa.npy");
    let m = model();
    let r = cellino(&[
        "embed",
        "--model",
        s(&m),
        "--num-heads",
        "4",
        "--bag-of-channels",
        "--input",
        s(&meta_path),
        "--manifest-root",
        s(root),
        "--tiling",
        "square",
        "--crop-size",
        "32",
        "--n-last-blocks",
        "2",
        "--avgpool",
        "--output",
        s(&emb),
    ]);
    ok(&r);
    assert_eq!(Tensor::read_npy(&emb).unwrap().dims(), &[rows.len(), 2 * 4 * 96 + 4 * 96]);

    for (classifier, extra) in [("1nn", vec![]), ("knn", vec!["--k", "1,3"]), ("linear", FAST_GRID.to_vec())] {
        let out = root.join(format!("chammi_{classifier}.json"));
        let mut args = vec!["eval", "chammi", "--features", s(&emb), "--meta", s(&meta_path), "--subset", "HPA"];
        args.extend(["--classifier", classifier, "--out", s(&out)]);
        args.extend(extra);
        ok(&cellino(&args));
        let v = read_json(&out);
        for task in ["TASK_ONE", "TASK_THREE"] {
            score(&v["tasks"][task], "macro_f1");
            score(&v["tasks"][task], "accuracy");
        }
        assert_eq!(v["skipped_tasks"], serde_json::json!(["TASK_TWO"]));
        if classifier != "linear" {
            assert_eq!(score(&v["tasks"]["TASK_ONE"], "macro_f1"), 1.0, "{classifier}: {}", v["tasks"]["TASK_ONE"]);
        }
        assert_eq!(v["tasks"]["TASK_THREE"]["leave_one_out_labels"], serde_json::json!([4, 5, 6]));
    }

    // A label outside the subset's class list, and a meta row without an embedding.
    let bad_meta = root.join("bad_meta.csv");
    let text = std::fs::read_to_string(&meta_path).unwrap().replacen("microtubules", "ribosomes", 1);
    std::fs::write(&bad_meta, text).unwrap();
    let out = root.join("bad.json");
    let args = ["eval", "chammi", "--features", s(&emb), "--meta", s(&bad_meta), "--subset", "HPA", "--out", s(&out)];
    fails(&cellino(&args), &out, "outside the HPA class list");
    let extra_row = std::fs::read_to_string(&meta_path).unwrap() + "HPA/images/999.png,Task_one,cytosol,A\n";
    std::fs::write(&bad_meta, extra_row).unwrap();
    fails(&cellino(&args), &out, "has no embedding");
}

/// Bag-of-Channels features (channels DNA, ER, Mito; 2 columns each; CLS of 1 block) where only
/// ER carries the class, with the emb.json sidecar layout next to them.
fn write_boc(dir: &Path, name: &str, n: usize, offset: usize) {
    let names: Vec<String> = ["DNA", "ER", "Mito"].map(String::from).to_vec();
    let layout = cellino_eval::FeatureLayout::new(1, false, true, 2, 3, 4, Some(&names)).unwrap();
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = (i + offset) % 3;
        let mut row: Vec<f32> = (0..6).map(|j| ((i * 31 + j * 17 + offset * 7) % 23) as f32 / 23.0 - 0.5).collect();
        row[2] += [3.0, 0.0, -3.0][c];
        row[3] += [0.0, 3.0, 0.0][c];
        x.extend(row);
        y.push(c as i64);
    }
    write_f32(&dir.join(format!("{name}.npy")), n, 6, &x);
    write_i64(&dir.join(format!("{name}_y.npy")), &y);
    let sidecar = serde_json::json!({ "layout": layout });
    std::fs::write(dir.join(format!("{name}.json")), serde_json::to_vec(&sidecar).unwrap()).unwrap();
}

#[test]
fn eval_sweep_channel_subsets() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_boc(root, "train", 60, 0);
    write_boc(root, "test", 21, 1);
    let (tx, ty, qx, qy) =
        (root.join("train.npy"), root.join("train_y.npy"), root.join("test.npy"), root.join("test_y.npy"));
    let base =
        ["--train-features", s(&tx), "--train-labels", s(&ty), "--test-features", s(&qx), "--test-labels", s(&qy)];
    let sweep = |extra: &[&str], out: &Path| {
        let mut args = vec!["eval", "sweep"];
        args.extend(base);
        args.extend(extra);
        args.extend(["--out", s(out)]);
        cellino(&args)
    };

    // Given subsets keep their order; names are sorted into channel order.
    let out = root.join("given.json");
    ok(&sweep(&["--subsets", "Mito,DNA;ER; DNA , ER", "--k", "5"], &out));
    let v = read_json(&out);
    let subsets = v["subsets"].as_array().unwrap();
    let channels: Vec<Value> = subsets.iter().map(|r| r["channels"].clone()).collect();
    assert_eq!(
        channels,
        [serde_json::json!(["DNA", "Mito"]), serde_json::json!(["ER"]), serde_json::json!(["DNA", "ER"])]
    );
    assert_eq!(subsets[1]["dim"], 2);
    assert_eq!(score(&subsets[1], "accuracy"), 1.0);
    assert!(score(&subsets[0], "accuracy") < 0.7, "{}", subsets[0]);

    // Default: all 7 subsets; the full set equals `eval knn` on the whole matrix.
    let all = root.join("all.json");
    ok(&sweep(&["--k", "5"], &all));
    let v = read_json(&all);
    let subsets = v["subsets"].as_array().unwrap();
    assert_eq!(subsets.len(), 7);
    let full = &subsets[6];
    assert_eq!(full["channels"], serde_json::json!(["DNA", "ER", "Mito"]));
    let knn = root.join("knn.json");
    let mut args = vec!["eval", "knn", "--k", "5", "--out", s(&knn)];
    args.extend(base);
    ok(&cellino(&args));
    let k = read_json(&knn);
    assert_eq!(full["macro_f1"], k["k"]["5"]["macro_f1"]);
    assert_eq!(full["accuracy"], k["k"]["5"]["accuracy"]);

    // Bad input: one error line, nothing written.
    let bad = root.join("bad.json");
    fails(&sweep(&["--subsets", "DNA,RNA"], &bad), &bad, "unknown channel \"RNA\"");
    fails(&sweep(&["--subsets", "DNA;;ER"], &bad), &bad, "channel subset");
    std::fs::remove_file(root.join("test.json")).unwrap();
    fails(&sweep(&[], &bad), &bad, "--test-features: cannot read the sidecar");
}

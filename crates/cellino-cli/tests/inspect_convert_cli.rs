//! `cellino inspect` and `cellino convert` on real files.

use std::path::PathBuf;
use std::process::Command;

use candle_core::Tensor;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn cellino(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cellino")).args(args).output().expect("run cellino")
}

#[test]
fn inspect_json_of_a_real_16_bit_tiff() {
    // StarDist's DSB2018 nuclei image: 512×512 uint16, max 235, sum 8331268 (tifffile).
    let path = repo("crates/cellino-data/tests/data/real/stardist_dsb2018_nuclei/img2d.tif");
    let run = cellino(&["inspect", path.to_str().unwrap(), "--json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["shape"], serde_json::json!([1, 512, 512]));
    assert_eq!(v["dtype"], "uint16");
    let ch = &v["channels"][0];
    assert!(ch["name"].is_null());
    assert_eq!(ch["min"], 0.0);
    assert_eq!(ch["max"], 235.0);
    assert!((ch["mean"].as_f64().unwrap() - 8331268.0 / (512.0 * 512.0)).abs() < 1e-9);
}

#[test]
fn inspect_a_teacher_checkpoint() {
    let path = repo("crates/cellino-vit/tests/fixtures/chunked_teacher/teacher_checkpoint.pth");
    let run = cellino(&["inspect", path.to_str().unwrap(), "--json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!((v["depth"].as_u64(), v["in_chans"].as_u64(), v["patch_size"].as_u64()), (Some(4), Some(4), Some(16)));
    assert_eq!(v["head_tensors_ignored"], 8);
    assert!(v["layout"].as_str().unwrap().contains("chunked"));
}

#[test]
fn convert_round_trip_keeps_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = repo("crates/cellino-vit/tests/fixtures/chunked_teacher");
    let teacher = dir.path().join("teacher.safetensors");
    let plain = dir.path().join("plain.safetensors");
    let out = dir.path().join("cls.npy");
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let steps: [Vec<String>; 3] = [
        vec![
            "convert".into(),
            s(&fixture.join("teacher_checkpoint.pth")),
            s(&teacher),
            "--layout".into(),
            "teacher".into(),
            "--block-chunks".into(),
            "4".into(),
        ],
        vec!["convert".into(), s(&teacher), s(&plain)],
        vec![
            "embed".into(),
            "--model".into(),
            s(&plain),
            "--num-heads".into(),
            "4".into(),
            "--input".into(),
            s(&fixture.join("s160.input.npy")),
            "--output".into(),
            s(&out),
        ],
    ];
    for step in &steps {
        let args: Vec<&str> = step.iter().map(String::as_str).collect();
        let run = cellino(&args);
        assert!(run.status.success(), "{args:?}: {}", String::from_utf8_lossy(&run.stderr));
    }
    let teacher_keys = candle_core::safetensors::load(&teacher, &candle_core::Device::Cpu).unwrap();
    assert!(teacher_keys.contains_key("backbone.blocks.3.3.mlp.fc2.weight"));
    let got = Tensor::read_npy(&out).unwrap();
    let expected = Tensor::read_npy(fixture.join("s160.cls.npy")).unwrap();
    let err =
        (got - expected).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    assert!(err <= 1e-4, "{err}");
}

#[test]
fn synth_writes_a_dataset_that_inspect_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth");
    let run =
        cellino(&["synth", "--out", out.to_str().unwrap(), "--images", "12", "--channels", "5", "--classes", "3"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let manifest = std::fs::read_to_string(out.join("manifest.csv")).unwrap();
    let rows: Vec<&str> = manifest.lines().collect();
    assert_eq!(rows[0], "path,label,cell_line,split");
    assert_eq!(rows.len(), 13);
    let first = out.join(rows[1].split(',').next().unwrap());
    let run = cellino(&["inspect", first.to_str().unwrap(), "--json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["shape"], serde_json::json!([5, 64, 64]));
    assert_eq!(v["channels"][0]["name"], "nucleus");
    let bad = cellino(&["synth", "--out", out.to_str().unwrap(), "--channels", "9"]);
    assert!(!bad.status.success());
}

/// A synthetic dataset of `images` 5-channel crops (OME-TIFF with channel names, 3 classes) under `dir/synth`; its manifest.
fn synth_manifest(dir: &std::path::Path, images: &str) -> PathBuf {
    let out = dir.join("synth");
    let run =
        cellino(&["synth", "--out", out.to_str().unwrap(), "--images", images, "--channels", "5", "--classes", "3"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    out.join("manifest.csv")
}

#[test]
fn inspect_a_manifest_lists_channels_labels_and_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth_manifest(dir.path(), "9");
    // One more row whose file does not exist: listed as unreadable, the report still succeeds.
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    let rest = text.lines().nth(1).unwrap().split_once(',').unwrap().1.to_owned();
    text.push_str(&format!("images/missing.tif,{rest}\n"));
    std::fs::write(&manifest, text).unwrap();

    let run = cellino(&["inspect", manifest.to_str().unwrap(), "--json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!((v["kind"].as_str(), v["rows"].as_u64(), v["scanned"].as_u64()), (Some("dataset"), Some(10), Some(10)));
    assert_eq!(
        v["channel_sets"],
        serde_json::json!([{"channels": 5, "names": ["nucleus", "microtubules", "er", "protein", "actin"], "rows": 9}])
    );
    let labels = v["labels"].as_object().unwrap();
    assert_eq!(labels.len(), 3);
    assert_eq!(labels.values().map(|n| n.as_u64().unwrap()).sum::<u64>(), 10);
    let bad = v["unreadable"].as_array().unwrap();
    assert_eq!(bad.len(), 1);
    assert!(bad[0]["path"].as_str().unwrap().ends_with("missing.tif"), "{bad:?}");
    assert_eq!(bad[0]["line"], 11);
    assert!(bad[0]["error"].as_str().unwrap().contains("cannot read file"), "{bad:?}");

    // Text, first rows only.
    let run = cellino(&["inspect", manifest.to_str().unwrap(), "--max-rows", "4"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(out.contains("rows: 10 (images of the first 4 read)"), "{out}");
    assert!(out.contains("5 channels [nucleus, microtubules, er, protein, actin]: 4 rows"), "{out}");
    assert!(out.contains("unreadable: 0"), "{out}");
}

#[test]
fn inspect_a_folder_and_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = synth_manifest(dir.path(), "5");
    let images = manifest.parent().unwrap().join("images");
    let run = cellino(&["inspect", images.to_str().unwrap(), "--json"]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!((v["rows"].as_u64(), v["channel_sets"][0]["rows"].as_u64()), (Some(5), Some(5)));
    assert_eq!(v["labels"], serde_json::json!({}));
    assert_eq!(v["unreadable"], serde_json::json!([]));

    for missing in ["no/such/manifest.csv", "no/such/image.tif", "HPAFoV:split=TRAIN:root=/no/such/root"] {
        let path = dir.path().join(missing);
        let arg = if missing.contains(':') { missing.to_string() } else { path.to_str().unwrap().to_string() };
        let run = cellino(&["inspect", &arg]);
        assert_eq!(run.status.code(), Some(1), "{missing}");
        let err = String::from_utf8_lossy(&run.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(run.stdout.is_empty());
    }
    let first =
        std::fs::read_to_string(&manifest).unwrap().lines().nth(1).unwrap().split(',').next().unwrap().to_owned();
    let image = manifest.parent().unwrap().join(first);
    let run = cellino(&["inspect", image.to_str().unwrap(), "--max-rows", "2"]);
    assert_eq!(run.status.code(), Some(1));
}

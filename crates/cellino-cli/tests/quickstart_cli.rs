//! `cellino quickstart` end to end on a tiny budget (60 crops, 3 training iterations, 1 probe
//! epoch): every output file exists, metrics.json has the documented keys with scores in
//! [0, 1], the PNGs decode; bad arguments end in one error line and a non-zero exit.

use std::path::Path;
use std::process::{Command, Output};

fn cellino(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cellino")).args(args).output().expect("run cellino")
}

fn score(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut x = v;
    for k in path {
        x = x.get(k).unwrap_or_else(|| panic!("metrics.json has no {path:?}: {v}"));
    }
    let f = x.as_f64().unwrap_or_else(|| panic!("{path:?} is not a number: {x}"));
    assert!((0.0..=1.0).contains(&f), "{path:?} = {f} is outside [0, 1]");
    f
}

#[test]
fn tiny_quickstart_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("qs");
    let run = cellino(&[
        "quickstart",
        "--out",
        out.to_str().unwrap(),
        "--minutes",
        "0.1",
        "--seed",
        "3",
        "--images",
        "60",
        "--max-iterations",
        "3",
        "--probe-epochs",
        "1",
        "--set",
        "train.batch_size_per_gpu=8",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("linear macro-F1") && stdout.contains("random init"), "{stdout}");

    for f in [
        "report.md",
        "metrics.json",
        "config.yaml",
        "train_metrics.jsonl",
        "teacher_backbone.safetensors",
        "data/manifest.csv",
        "loss.png",
        "pca_test_ssl.png",
        "pca_test_random_init.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let ckpts: Vec<_> = std::fs::read_dir(out.join("checkpoints")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(ckpts.iter().any(|n| n.to_string_lossy().ends_with(".safetensors")), "{ckpts:?}");
    for model in ["ssl", "random_init"] {
        for split in ["train", "test"] {
            for ext in ["npy", "csv", "json"] {
                let p = out.join("embeddings").join(format!("{model}_{split}.{ext}"));
                assert!(p.is_file(), "missing {}", p.display());
            }
        }
    }
    let set = cellino_eval::read_embeddings(out.join("embeddings/ssl_test.npy")).unwrap();
    assert_eq!(set.dim, 4 * 128, "Bag of Channels: one D = 128 CLS per channel");

    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for model in ["ssl", "random_init"] {
        for probe in ["linear", "knn"] {
            for key in ["macro_f1", "accuracy"] {
                score(&m, &[model, probe, key]);
            }
        }
    }
    assert!(m["train_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(m["images"].as_u64(), Some(60));
    assert_eq!(m["iterations"].as_u64(), Some(3));
    assert_eq!(std::fs::read_to_string(out.join("train_metrics.jsonl")).unwrap().lines().count(), 3);

    for png in ["loss.png", "pca_test_ssl.png", "pca_test_random_init.png"] {
        let img = image::open(out.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(img.width() >= 100 && img.height() >= 100, "{png}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("random init") && report.contains("loss.png"), "{report}");

    // A second run into the same folder is refused without --force.
    let again = cellino(&["quickstart", "--out", out.to_str().unwrap(), "--minutes", "0.1"]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("not empty") && err.contains("--force"), "{err}");
}

fn assert_refused(args: &[&str], needle: &str, out: &Path) {
    let run = cellino(args);
    assert!(!run.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains(needle), "{args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: more than one line: {err}");
    assert!(!out.exists(), "{args:?} wrote {}", out.display());
}

#[test]
fn bad_arguments_are_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("qs");
    let o = out.to_str().unwrap();
    assert_refused(&["quickstart", "--out", o, "--minutes", "0"], "--minutes", &out);
    assert_refused(&["quickstart", "--out", o, "--minutes", "nan"], "--minutes", &out);
    assert_refused(&["quickstart", "--out", o, "--set", "student.no_such_key=1"], "no_such_key", &out);
    let file = dir.path().join("a_file");
    std::fs::write(&file, "x").unwrap();
    let run = cellino(&["quickstart", "--out", file.to_str().unwrap(), "--minutes", "0.1"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("not a folder"));
}

#[test]
fn tiny_multichannel_quickstart_trains_a_four_channel_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("qs4");
    let o = out.to_str().unwrap();
    let run = cellino(&[
        "quickstart",
        "--out",
        o,
        "--mode",
        "multichannel",
        "--images",
        "40",
        "--max-iterations",
        "2",
        "--probe-epochs",
        "1",
        "--set",
        "train.batch_size_per_gpu=8",
        "--set",
        "train.grad_accumulation_steps=2",
    ]);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(m["mode"], "multichannel");
    // Each iteration takes two accumulated batches of 8.
    assert_eq!(m["iterations"].as_u64(), Some(2));
    assert_eq!(m["pretrain_samples_seen"].as_u64(), Some(2 * 2 * 8));
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("batch 16 (8 x 2 accumulated)"));
    score(&m, &["ssl", "linear", "macro_f1"]);
    // One CLS of the 4-channel model, not four concatenated.
    let set = cellino_eval::read_embeddings(out.join("embeddings/ssl_test.npy")).unwrap();
    assert_eq!(set.dim, 128);
    let config = std::fs::read_to_string(out.join("config.yaml")).unwrap();
    assert!(config.contains("in_chans: 4") && config.contains("channel_adaptive: false"), "{config}");
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("--mode multichannel"));
}

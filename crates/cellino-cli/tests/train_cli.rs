//! `cellino train` honours its contract: metrics per iteration, checkpoints, an exported teacher
//! that `cellino embed` loads, a resume that is bit-exact, and bad input ending in one error line,
//! a non-zero exit and no output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

fn tiny_config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/train/tiny_cpu_boc.yaml")
}

fn cellino(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cellino")).args(args).output().expect("run cellino")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `n` 48×48 PNGs with `channels` channels (1: grey, 3: RGB) and a manifest `cells.csv`.
fn write_dataset(dir: &Path, n: usize, channels: usize) -> PathBuf {
    let mut csv = String::from("path,label\n");
    for i in 0..n {
        let name = format!("cell{i}.png");
        let px = |x: u32, y: u32, c: u32| -> u8 {
            let (dx, dy) = (x as i32 - 24, y as i32 - 24);
            let disc = dx * dx + dy * dy < (8 + (i as i32 % 5) * 2).pow(2);
            let noise = (x * 7 + y * 13 + c * 31 + i as u32 * 17) % 23;
            (if disc { 180 } else { 30 } + noise) as u8
        };
        match channels {
            1 => image::GrayImage::from_fn(48, 48, |x, y| image::Luma([px(x, y, 0)])).save(dir.join(&name)),
            3 => image::RgbImage::from_fn(48, 48, |x, y| image::Rgb([px(x, y, 0), px(x, y, 1), px(x, y, 2)]))
                .save(dir.join(&name)),
            _ => unreachable!(),
        }
        .unwrap();
        csv.push_str(&format!("{name},class{}\n", i % 3));
    }
    let manifest = dir.join("cells.csv");
    std::fs::write(&manifest, csv).unwrap();
    manifest
}

fn train(manifest: &Path, out: &Path, extra: &[&str]) -> Output {
    let dataset = format!("train.dataset_path={}", manifest.display());
    let config = tiny_config();
    let mut args = vec!["train", "--config", config.to_str().unwrap(), &dataset];
    args.extend(["--output-dir", out.to_str().unwrap()]);
    args.extend(extra);
    cellino(&args)
}

/// Metrics lines as JSON, without the wall-clock rate (the only term allowed to differ).
fn metrics(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("images_per_second");
            v
        })
        .collect()
}

fn tensors(path: &Path) -> Vec<(String, Vec<u32>)> {
    let mut all: Vec<_> = candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(k, t)| {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            (k, v.into_iter().map(f32::to_bits).collect())
        })
        .collect();
    all.sort();
    all
}

#[test]
fn trains_checkpoints_exports_and_resumes_bit_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_dataset(dir.path(), 16, 1);

    // A straight 4-iteration run (16 images, batch 8: two epochs).
    let straight = dir.path().join("straight");
    let run = train(&manifest, &straight, &["--max-iterations", "4"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let m = metrics(&straight);
    assert_eq!(m.len(), 4);
    for (i, line) in m.iter().enumerate() {
        assert_eq!(line["iteration"].as_u64(), Some(i as u64));
        for key in ["total_loss", "dino_local_crops_loss", "dino_global_crops_loss", "koleo_loss", "ibot_loss"] {
            assert!(line[key].as_f64().is_some_and(f64::is_finite), "{key} at {i}: {}", line[key]);
        }
    }
    assert!(straight.join("checkpoints/model_0000004.safetensors").is_file());
    assert!(straight.join("checkpoints/model_0000004.json").is_file());
    let config = std::fs::read_to_string(straight.join("config.yaml")).unwrap();
    assert!(config.contains(&manifest.display().to_string()) && config.contains("in_chans: 1"), "{config}");

    // The exported teacher loads in `cellino embed`.
    let teacher = straight.join("teacher_backbone.safetensors");
    let batch = dir.path().join("batch.npy");
    Tensor::rand(0f32, 1.0, (2, 1, 32, 32), &Device::Cpu).unwrap().write_npy(&batch).unwrap();
    let emb = dir.path().join("emb.npy");
    let args = ["embed", "--model", teacher.to_str().unwrap(), "--num-heads", "4", "--input"];
    let run = cellino(&[&args[..], &[batch.to_str().unwrap(), "--output", emb.to_str().unwrap()]].concat());
    assert!(run.status.success(), "{}", stderr(&run));
    let features = Tensor::read_npy(&emb).unwrap();
    assert_eq!(features.dims(), &[2, 64]);
    assert_eq!(features.dtype(), DType::F32);

    // 2 iterations, then --resume to 4: the same losses and weights, bit for bit.
    let resumed = dir.path().join("resumed");
    let run = train(&manifest, &resumed, &["--max-iterations", "2"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(metrics(&resumed).len(), 2);
    // Without --resume an existing run is not overwritten.
    let run = train(&manifest, &resumed, &["--max-iterations", "4"]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("--resume"), "{}", stderr(&run));
    // Resuming with another config is refused, naming the key.
    let run = train(&manifest, &resumed, &["--resume", "--max-iterations", "4", "train.seed=9"]);
    assert!(!run.status.success());
    let err = stderr(&run);
    assert!(err.starts_with("error: ") && err.contains("train.seed"), "{err}");
    assert_eq!(metrics(&resumed).len(), 2);
    // A crash after a step but before its checkpoint leaves a metrics line the resume redoes.
    let mut lines = std::fs::read_to_string(resumed.join("metrics.jsonl")).unwrap();
    lines.push_str("{\"iteration\":2,\"total_loss\":1.0}\n");
    std::fs::write(resumed.join("metrics.jsonl"), lines).unwrap();
    let run = train(&manifest, &resumed, &["--resume", "--max-iterations", "4"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(metrics(&resumed), m, "metrics differ after resume");
    let a = tensors(&straight.join("checkpoints/model_0000004.safetensors"));
    let b = tensors(&resumed.join("checkpoints/model_0000004.safetensors"));
    assert!(a == b, "checkpoint tensors differ after resume");
    assert!(tensors(&teacher) == tensors(&resumed.join("teacher_backbone.safetensors")));
}

#[test]
fn multi_channel_images_train_a_bag_of_channels_model() {
    let dir = tempfile::tempdir().unwrap();
    // 4 RGB images = 12 single-channel samples: one batch of 8 per epoch.
    let manifest = write_dataset(dir.path(), 4, 3);
    let out = dir.path().join("out");
    let run = train(&manifest, &out, &["--max-iterations", "2"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(metrics(&out).len(), 2);
    // A 2-channel model cannot take 3-channel images.
    let out2 = dir.path().join("out2");
    let run = train(&manifest, &out2, &["--max-iterations", "2", "student.in_chans=2", "teacher.in_chans=2"]);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("3 channels"), "{}", stderr(&run));
    assert!(!out2.exists());
}

#[test]
fn print_config_shows_the_merged_result() {
    let run = cellino(&[
        "train",
        "--config",
        tiny_config().to_str().unwrap(),
        "train.batch_size_per_gpu=4",
        "--print-config",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let yaml = String::from_utf8(run.stdout).unwrap();
    assert!(yaml.contains("batch_size_per_gpu: 4") && yaml.contains("embed_dim: 64"), "{yaml}");
}

#[test]
fn bad_input_is_one_error_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_dataset(dir.path(), 16, 1);
    let out = dir.path().join("out");
    let one_line = |o: &Output, needle: &str| {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        let err = stderr(o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: ") && err.contains(needle), "expected `{needle}` in: {err}");
        assert!(!out.exists(), "output written despite the error");
    };
    // Unknown override key.
    one_line(&train(&manifest, &out, &["train.no_such_key=3"]), "train.no_such_key");
    one_line(&train(&manifest, &out, &["student.in_chans"]), "key.sub=value");
    // Missing config file.
    let missing = dir.path().join("missing.yaml");
    let run = cellino(&["train", "--config", missing.to_str().unwrap(), "--output-dir", out.to_str().unwrap()]);
    one_line(&run, "missing.yaml");
    // Unknown key in the file: line and column.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "train:\n  batch_size_per_gpu: 8\n  bogus: 1\n").unwrap();
    one_line(&cellino(&["train", "--config", bad.to_str().unwrap(), "--output-dir", out.to_str().unwrap()]), "bogus");
    // Bad dataset path.
    one_line(&train(&dir.path().join("nope.csv"), &out, &["--max-iterations", "2"]), "nope.csv");
    // Fewer images than one batch.
    let small = tempfile::tempdir().unwrap();
    let few = write_dataset(small.path(), 3, 1);
    one_line(&train(&few, &out, &["--max-iterations", "2"]), "batch");
    // Impossible combination refused before training.
    one_line(&train(&manifest, &out, &["crops.local_crops_size=12"]), "local_crops_size");
    // --resume with nothing to resume.
    one_line(&train(&manifest, &out, &["--resume"]), "no complete checkpoint");
    // A flag clap does not know is a usage error (exit 2).
    let run = cellino(&["train", "--config", tiny_config().to_str().unwrap(), "--bogus-flag"]);
    assert_eq!(run.status.code(), Some(2));
}

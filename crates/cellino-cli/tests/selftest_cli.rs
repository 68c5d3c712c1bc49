//! `cellino selftest` on the CPU: every parity row passes, the smoke run trains, the throughput
//! rows have numbers, the JSON matches the table; `--device cuda` without a GPU (or without the
//! `cuda` feature) ends in one error line and a non-zero exit.

use std::process::{Command, Output};

use serde_json::Value;

fn cellino(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cellino")).args(args).output().expect("run cellino")
}

#[test]
fn cpu_quick_selftest_passes_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("selftest.json");
    let t0 = std::time::Instant::now();
    let out = cellino(&["selftest", "--device", "cpu", "--quick", "--json", json.to_str().unwrap()]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(t0.elapsed().as_secs() < 60, "took {:?}", t0.elapsed());
    assert!(stdout.contains("selftest PASSED"), "{stdout}");
    for op in [
        "layer_norm",
        "softmax_last_dim",
        "attention",
        "gelu_erf",
        "linear",
        "scaled_residual",
        "l2_normalize",
        "nearest_neighbor",
        "sinkhorn_knopp",
        "ema_update",
        "bicubic_pos_embed",
        "vit_forward",
    ] {
        assert!(stdout.contains(op), "{op} missing from\n{stdout}");
    }

    let v: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["pass"], true);
    assert_eq!(v["device"], "cpu");
    let parity = v["parity"].as_array().unwrap();
    // 11 ops with a fused and a composite implementation (bicubic and the ViT: one), f32 only on CPU.
    assert_eq!(parity.len(), 10 * 2 + 2, "{parity:?}");
    for row in parity {
        assert_eq!(row["pass"], true, "{row}");
        assert!(row["fwd_err"].as_f64().unwrap() <= row["threshold"].as_f64().unwrap(), "{row}");
    }
    // Fused and composite agree on the CPU far below the f32 threshold, backward included.
    let attention = parity.iter().find(|r| r["op"] == "attention" && r["implementation"] == "fused").unwrap();
    assert!(attention["bwd_err"].as_f64().unwrap() < 1e-5, "{attention}");

    let smoke = &v["smoke"];
    assert_eq!(smoke["pass"], true, "{smoke}");
    assert_eq!(smoke["losses"].as_array().unwrap().len(), 20);

    let bench = v["bench"].as_array().unwrap();
    let works: Vec<(&str, &str)> =
        bench.iter().map(|r| (r["model"].as_str().unwrap(), r["work"].as_str().unwrap())).collect();
    assert_eq!(works, [("vit_s16", "embed"), ("vit_s16", "train_step")]);
    for r in bench {
        assert_eq!(r["batch"], 8);
        assert!(r["images_per_second"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn cuda_without_a_gpu_fails_with_one_line() {
    // A CPU-only build (the test profile) has no CUDA; a cuda build here has only the stub driver.
    let out = cellino(&["selftest", "--device", "cuda", "--no-bench"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: --device cuda:"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_device_is_refused() {
    let out = cellino(&["selftest", "--device", "tpu"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tpu"));
}

//! `cellino embed` honours its contract: shapes per feature kind, values equal to the PyTorch
//! fixtures, and bad input ends in one error line, a non-zero exit and no output file.

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::Tensor;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cellino-vit/tests/fixtures")
}

fn cellino(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cellino")).args(args).output().expect("run cellino")
}

fn embed(model: &Path, input: &Path, output: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["embed", "--model", model.to_str().unwrap(), "--num-heads", "4", "--input"];
    args.push(input.to_str().unwrap());
    args.extend(["--preprocess", "none", "--output", output.to_str().unwrap()]);
    args.extend(extra);
    cellino(&args)
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn bag_of_channels_cls_and_avgpool_match_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures().join("boc_p16_offset");
    for (feature, reference) in [("cls", "s160.boc_cls.npy"), ("avgpool", "s160.boc_avgpool.npy")] {
        let out = dir.path().join(format!("{feature}.npy"));
        let run = embed(
            &f.join("model.safetensors"),
            &f.join("s160.input.npy"),
            &out,
            &["--features", feature, "--bag-of-channels"],
        );
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let got = Tensor::read_npy(&out).unwrap();
        assert_eq!(got.dims(), &[2, 5 * 96]);
        assert!(max_abs(&got, &Tensor::read_npy(f.join(reference)).unwrap()) <= 1e-4);
    }
    // The antialias setting is reachable from the command line.
    let f = fixtures().join("boc_p16_antialias");
    let out = dir.path().join("aa.npy");
    let run = embed(
        &f.join("model.safetensors"),
        &f.join("s160.input.npy"),
        &out,
        &["--bag-of-channels", "--interpolate-offset", "0", "--interpolate-antialias"],
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(max_abs(&Tensor::read_npy(&out).unwrap(), &Tensor::read_npy(f.join("s160.boc_cls.npy")).unwrap()) <= 1e-4);
}

#[test]
fn patch_and_register_outputs_have_the_contract_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures().join("reg4_c4");
    let flags = ["--interpolate-offset", "0", "--interpolate-antialias"];
    for (feature, reference, dims) in [
        ("patch", Some("nonsq.patch.npy"), vec![2, 10 * 14, 96]),
        ("reg", Some("nonsq.reg.npy"), vec![2, 4, 96]),
        ("avgpool", None, vec![2, 96]),
        ("cls", Some("nonsq.cls.npy"), vec![2, 96]),
    ] {
        let out = dir.path().join(format!("{feature}.npy"));
        let mut extra = vec!["--features", feature];
        extra.extend(flags);
        let run = embed(&f.join("model.safetensors"), &f.join("nonsq.input.npy"), &out, &extra);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let got = Tensor::read_npy(&out).unwrap();
        assert_eq!(got.dims(), dims.as_slice(), "{feature}");
        if let Some(r) = reference {
            assert!(max_abs(&got, &Tensor::read_npy(f.join(r)).unwrap()) <= 1e-4, "{feature}");
        }
    }
}

#[test]
fn bad_input_gives_one_error_line_and_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.npy");
    let garbage = dir.path().join("garbage.npy");
    std::fs::write(&garbage, b"not an npy file").unwrap();
    let boc = fixtures().join("boc_p16_offset");
    let rgb = fixtures().join("rgb_p14");
    let cases: Vec<(PathBuf, PathBuf, Vec<&str>, &str)> = vec![
        (boc.join("missing.safetensors"), boc.join("s160.input.npy"), vec![], "missing.safetensors"),
        (boc.join("model.safetensors"), garbage.clone(), vec![], "garbage.npy"),
        // 5-channel input to a 1-channel model without --bag-of-channels.
        (boc.join("model.safetensors"), boc.join("s160.input.npy"), vec![], "5 channels but the weights expect 1"),
        // 98×154 input to a patch-16 model.
        (boc.join("model.safetensors"), rgb.join("nonsq.input.npy"), vec!["--bag-of-channels"], "patch size 16"),
        (boc.join("s160.input.npy"), boc.join("s160.input.npy"), vec![], "not a readable checkpoint"),
    ];
    for (model, input, extra, expected) in cases {
        let run = embed(&model, &input, &out, &extra);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "accepted bad input ({expected})");
        assert_eq!(stderr.trim().lines().count(), 1, "one line expected:\n{stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(expected), "`{stderr}` lacks `{expected}`");
        assert!(!out.exists(), "partial output left behind");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file left behind");
    }
    let run = cellino(&["embed", "--model", "m", "--input", "i", "--output", "o"]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("--arch"));
}

//! Bad checkpoints and bad inputs give one clear error naming the file or argument; never a panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use cellino_vit::{DinoVisionTransformer, FeatureKind, PosEmbedInterpolation, VitError, embed_batch, load_state_dict};

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(path)
}

fn load(path: &Path) -> Result<DinoVisionTransformer, VitError> {
    DinoVisionTransformer::load(path, None, Some(4), PosEmbedInterpolation::DINOV2)
}

fn truncated_copy(src: &Path, keep: usize, dir: &Path) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let dst = dir.join(format!("truncated-{}", src.file_name().unwrap().to_string_lossy()));
    std::fs::write(&dst, &bytes[..keep.min(bytes.len())]).unwrap();
    dst
}

fn save_renamed(rename: impl Fn(&str) -> Option<String>, dir: &Path) -> PathBuf {
    let sd = load_state_dict(fixture("boc_p16_offset/model.safetensors")).unwrap();
    let tensors: HashMap<String, Tensor> =
        sd.tensors.iter().filter_map(|(k, t)| Some((rename(k)?, t.clone()))).collect();
    let path = dir.join("renamed.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    path
}

#[test]
fn truncated_safetensors_and_pth_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for src in ["boc_p16_offset/model.safetensors", "swiglu_p14/model.pth", "chunked_teacher/teacher_checkpoint.pth"] {
        let path = truncated_copy(&fixture(src), 4096, dir.path());
        let err = load(&path).unwrap_err();
        assert!(matches!(err, VitError::NotACheckpoint { .. }), "{src}: {err}");
        assert!(err.to_string().contains("truncated-"), "error does not name the file: {err}");
    }
}

#[test]
fn a_text_file_is_not_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.pth");
    std::fs::write(&path, "these are not weights\n").unwrap();
    let err = load(&path).unwrap_err();
    assert!(matches!(err, VitError::NotACheckpoint { .. }), "{err}");
    let err = load(&dir.path().join("missing.safetensors")).unwrap_err();
    assert!(matches!(err, VitError::Io { .. }), "{err}");
}

#[test]
fn a_pth_without_tensors_says_so() {
    let err = load(&fixture("bad/no_tensors.pth")).unwrap_err();
    assert!(matches!(err, VitError::NoTensors { .. }), "{err}");
    assert!(err.to_string().contains("no_tensors.pth"), "{err}");
}

#[test]
fn module_prefixes_are_stripped() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_renamed(|k| Some(format!("module.backbone.{k}")), dir.path());
    let prefixed = load(&path).unwrap();
    let plain = load(&fixture("boc_p16_offset/model.safetensors")).unwrap();
    let x = Tensor::read_npy(fixture("boc_p16_offset/s160.input.npy")).unwrap().narrow(1, 0, 1).unwrap();
    let diff = (prefixed.forward(&x).unwrap() - plain.forward(&x).unwrap()).unwrap().abs().unwrap();
    assert_eq!(diff.flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap(), 0.0);
}

#[test]
fn missing_unexpected_and_misshaped_keys_are_all_listed() {
    let dir = tempfile::tempdir().unwrap();
    let path = save_renamed(
        |k| match k {
            "blocks.1.norm1.weight" => None,
            "norm.bias" => Some("norm.bias_typo".into()),
            other => Some(other.into()),
        },
        dir.path(),
    );
    let err = load(&path).unwrap_err().to_string();
    assert!(
        err.contains("blocks.1.norm1.weight") && err.contains("norm.bias_typo") && err.contains("norm.bias"),
        "{err}"
    );

    // A wrong shape is reported with both shapes.
    let sd = load_state_dict(fixture("boc_p16_offset/model.safetensors")).unwrap();
    let mut tensors: HashMap<String, Tensor> = sd.tensors.clone().into_iter().collect();
    tensors.insert("blocks.2.ls1.gamma".into(), Tensor::zeros(95, DType::F32, &Device::Cpu).unwrap());
    let path = dir.path().join("misshaped.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("blocks.2.ls1.gamma") && err.contains("[95]") && err.contains("[96]"), "{err}");
}

#[test]
fn the_architecture_name_is_checked_against_the_width() {
    let err = DinoVisionTransformer::load(
        fixture("boc_p16_offset/model.safetensors"),
        Some(cellino_vit::Arch::VitLarge),
        None,
        PosEmbedInterpolation::DINOV2,
    )
    .unwrap_err();
    assert!(err.to_string().contains("vit_large") && err.to_string().contains("96"), "{err}");
}

#[test]
fn bad_image_batches_are_refused_before_any_work() {
    let rgb = load(&fixture("rgb_p14/model.safetensors.index.json")).unwrap();
    let boc = load(&fixture("boc_p16_offset/model.safetensors")).unwrap();
    let dev = Device::Cpu;
    let cases: Vec<(&DinoVisionTransformer, Tensor, bool, &str)> = vec![
        (&rgb, Tensor::zeros((1, 3, 100, 98), DType::F32, &dev).unwrap(), false, "multiple of the patch size 14"),
        (&rgb, Tensor::zeros((1, 4, 98, 98), DType::F32, &dev).unwrap(), false, "4 channels but the weights expect 3"),
        (&rgb, Tensor::zeros((3, 98, 98), DType::F32, &dev).unwrap(), false, "(B, C, H, W)"),
        (&rgb, Tensor::zeros((1, 3, 98, 98), DType::F32, &dev).unwrap(), true, "single-channel model"),
        (&boc, Tensor::zeros((2, 5, 48, 40), DType::F32, &dev).unwrap(), true, "multiple of the patch size 16"),
    ];
    for (model, x, boc_mode, expected) in cases {
        let err = embed_batch(model, &x, FeatureKind::Cls, boc_mode, 8).unwrap_err();
        assert!(matches!(err, VitError::InvalidInput { .. }), "{err}");
        assert!(err.to_string().contains(expected), "`{err}` does not mention `{expected}`");
    }
    let mut values = vec![0f32; 3 * 28 * 28];
    values[100] = f32::NAN;
    let x = Tensor::from_vec(values, (1, 3, 28, 28), &dev).unwrap();
    let err = embed_batch(&rgb, &x, FeatureKind::Cls, false, 8).unwrap_err();
    assert!(err.to_string().contains("not finite") && err.to_string().contains("index 100"), "{err}");
}

#[test]
fn bag_of_channels_accepts_any_channel_count() {
    let boc = load(&fixture("boc_p16_offset/model.safetensors")).unwrap();
    for c in 1..=8 {
        let x = Tensor::ones((2, c, 32, 48), DType::F32, &Device::Cpu).unwrap();
        let out = embed_batch(&boc, &x, FeatureKind::AvgPool, true, 1).unwrap();
        assert_eq!(out.dims(), &[2, c * 96]);
    }
}

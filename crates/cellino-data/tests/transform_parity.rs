//! Exact parity of the deterministic transform parts with PyTorch / torchvision
//! (fixtures written by `xtask/py/make_data_fixtures.py`).

use std::path::{Path, PathBuf};

use cellino_data::transform::{
    Interpolation, ResizeShorter, adjust_brightness, adjust_contrast, center_crop, pad_for_crop, resize, resize_crop,
};
use cellino_data::{
    EvalTransform, ImageOp, MultiChannelImage, ReadOptions, RngStream, SampleType, keyed_rng, read_image,
    transform::SelfNormalize,
};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/transforms")
}

fn load(name: &str) -> MultiChannelImage {
    read_image(dir().join(name), &ReadOptions::default()).unwrap()
}

fn size(v: &Value) -> (usize, usize) {
    (v[0].as_u64().unwrap() as usize, v[1].as_u64().unwrap() as usize)
}

/// Largest absolute difference; the shapes must agree.
fn max_abs(a: &MultiChannelImage, b: &MultiChannelImage) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.data.iter().zip(&b.data).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn deterministic_transforms_match_torchvision() {
    let text = std::fs::read_to_string(dir().join("cases.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let mut rng = keyed_rng(0, 0, 0, RngStream::Sample);
    let mut worst: Vec<(String, f32, f32)> = Vec::new();
    for case in json["cases"].as_array().unwrap() {
        let op = case["op"].as_str().unwrap();
        let mut input = load(case["input"].as_str().unwrap());
        let expected = load(case["output"].as_str().unwrap());
        // (output, tolerance): geometric copies must be exact; arithmetic within float rounding.
        let (got, tol) = match op {
            "bilinear" => {
                let (h, w) = size(&case["size"]);
                // torch's channels-last kernel sums in another order (see transform::resize).
                let tol = if case["kernel"] == "channels_last" { 4e-6 } else { 0.0 };
                (resize(&input, h, w, Interpolation::Bilinear).unwrap(), tol)
            }
            "resized_crop" => {
                let r = &case["region"];
                let region = (0..4).map(|k| r[k].as_u64().unwrap() as usize).collect::<Vec<_>>();
                let out = resize_crop(
                    &input,
                    (region[0], region[1], region[2], region[3]),
                    size(&case["size"]),
                    Interpolation::Bilinear,
                );
                (out.unwrap(), 0.0)
            }
            "resize_shorter_bicubic" => {
                let op = ResizeShorter {
                    size: case["size"].as_u64().unwrap() as usize,
                    interpolation: Interpolation::Bicubic,
                };
                (op.apply(input, &mut rng).unwrap(), 0.0)
            }
            "bicubic" => {
                let (h, w) = size(&case["size"]);
                (resize(&input, h, w, Interpolation::Bicubic).unwrap(), 0.0)
            }
            "center_crop" => {
                let (h, w) = size(&case["size"]);
                (center_crop(&input, h, w).unwrap(), 0.0)
            }
            "pad_for_crop" => {
                let (h, w) = size(&case["size"]);
                (pad_for_crop(&input, h, w).unwrap(), 0.0)
            }
            // torch reduces in f32 (cascade sums), cellino in f64: the mean/std differ in the last bit.
            "self_normalize" => (SelfNormalize::default().apply(input, &mut rng).unwrap(), 1e-6),
            "brightness" | "contrast" => {
                let f = case["factor"].as_f64().unwrap();
                let n = input.plane_len();
                for plane in input.data.chunks_exact_mut(n) {
                    if op == "brightness" { adjust_brightness(plane, f, 1.0) } else { adjust_contrast(plane, f, 1.0) }
                }
                (input, 1e-7)
            }
            "eval_center" => {
                assert_eq!(input.sample_type, SampleType::U8);
                let t = EvalTransform::center(
                    case["crop"].as_u64().unwrap() as usize,
                    case["resize"].as_u64().unwrap() as usize,
                );
                (t.apply(input, &mut rng).unwrap(), 1e-6)
            }
            other => panic!("unknown op {other}"),
        };
        let err = max_abs(&got, &expected);
        println!("{:<40} max |Δ| = {err:.3e} (tolerance {tol:.0e})", case["output"].as_str().unwrap());
        worst.push((case["output"].as_str().unwrap().to_owned(), err, tol));
    }
    let failed: Vec<_> = worst.iter().filter(|(_, e, t)| e > t).collect();
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(worst.len(), 21);
}

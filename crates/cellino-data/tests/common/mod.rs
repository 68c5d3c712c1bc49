#![allow(dead_code)]
//! Shared by the fixture tests: run the cases of an `expected.json` written by
//! `xtask/py/make_image_fixtures.py` and compare with NumPy's statistics.

use std::path::{Path, PathBuf};

use cellino_data::{
    ChannelTiling, ImageError, MultiChannelImage, ReadOptions, read_channel_files, read_image, read_tiled_image,
};
use serde_json::Value;

pub fn data_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(sub)
}

pub fn load_cases(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
    let json: Value = serde_json::from_str(&text).expect("valid JSON");
    json["cases"].as_array().expect("cases").clone()
}

fn read_case(dir: &Path, case: &Value) -> Result<MultiChannelImage, ImageError> {
    let files: Vec<PathBuf> = case["files"].as_array().unwrap().iter().map(|f| dir.join(f.as_str().unwrap())).collect();
    let opts = ReadOptions {
        z: case["z"].as_u64().unwrap_or(0) as usize,
        t: case["t"].as_u64().unwrap_or(0) as usize,
        ..ReadOptions::default()
    };
    let reader = case["reader"].as_str().unwrap();
    match reader {
        "auto" => read_image(&files[0], &opts),
        "tiled_square" => read_tiled_image(&files[0], ChannelTiling::Square, &opts),
        "channel_files" => {
            let names: Vec<String> = case
                .get("names")
                .or(case.get("channel_names"))
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|n| n.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            read_channel_files(&files, &names, &opts)
        }
        r if r.starts_with("tiled_count:") => {
            let n = r["tiled_count:".len()..].parse().unwrap();
            read_tiled_image(&files[0], ChannelTiling::Count(n), &opts)
        }
        r => panic!("unknown reader {r}"),
    }
}

fn error_kind(e: &ImageError) -> &'static str {
    match e {
        ImageError::Io { .. } => "Io",
        ImageError::UnknownFormat { .. } => "UnknownFormat",
        ImageError::Decode { .. } => "Decode",
        ImageError::TooLarge { .. } => "TooLarge",
        ImageError::Unsupported { .. } => "Unsupported",
        ImageError::Empty { .. } => "Empty",
        ImageError::ShapeMismatch { .. } => "ShapeMismatch",
        ImageError::SampleTypeMismatch { .. } => "SampleTypeMismatch",
        ImageError::Metadata { .. } => "Metadata",
        ImageError::OutOfRange { .. } => "OutOfRange",
        _ => "other",
    }
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    a == b || (a - b).abs() <= rel * a.abs().max(b.abs())
}

/// Compares one case; returns a description of every mismatch.
pub fn check_case(dir: &Path, case: &Value) -> Vec<String> {
    let name = case["name"].as_str().unwrap();
    let result = read_case(dir, case);
    if let Some(kind) = case["error"].as_str() {
        return match result {
            Err(e) if error_kind(&e) == kind => {
                // Errors must name a file and render without panicking.
                assert!(!e.to_string().is_empty());
                vec![]
            }
            Err(e) => vec![format!("{name}: expected {kind} error, got {e}")],
            Ok(im) => vec![format!("{name}: expected {kind} error, got shape {:?}", im.shape())],
        };
    }
    let im = match result {
        Ok(im) => im,
        Err(e) => return vec![format!("{name}: {e}")],
    };
    let mut bad = Vec::new();
    let shape: Vec<usize> = case["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let (c, h, w) = im.shape();
    if shape != [c, h, w] {
        return vec![format!("{name}: shape {:?}, expected {shape:?}", im.shape())];
    }
    if im.sample_type.name() != case["sample_type"].as_str().unwrap() {
        bad.push(format!("{name}: sample type {} expected {}", im.sample_type, case["sample_type"]));
    }
    let names: Vec<Option<String>> =
        case["channel_names"].as_array().unwrap().iter().map(|v| v.as_str().map(str::to_owned)).collect();
    if im.channel_names != names {
        bad.push(format!("{name}: channel names {:?} expected {names:?}", im.channel_names));
    }
    let lossy = case["lossy"].as_bool().unwrap_or(false);
    let is_float = im.sample_type.is_float();
    for (k, exp) in case["channels"].as_array().unwrap().iter().enumerate() {
        let plane = im.channel(k).unwrap();
        let sum: f64 = plane.iter().map(|&v| f64::from(v)).sum();
        let min = plane.iter().copied().fold(f32::INFINITY, f32::min);
        let max = plane.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let (es, emin, emax) =
            (exp["sum"].as_f64().unwrap(), exp["min"].as_f64().unwrap(), exp["max"].as_f64().unwrap());
        let first: Vec<f64> = exp["first"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let got_first: Vec<f64> = plane[..first.len()].iter().map(|&v| f64::from(v)).collect();
        if lossy {
            // JPEG: decoders differ in IDCT / upsampling rounding.
            let n = plane.len() as f64;
            let ok = (sum / n - es / n).abs() <= 0.5
                && (f64::from(min) - emin).abs() <= 3.0
                && (f64::from(max) - emax).abs() <= 3.0
                && got_first.iter().zip(&first).all(|(a, b)| (a - b).abs() <= 3.0);
            if !ok {
                bad.push(format!(
                    "{name} ch{k} (lossy): mean {} vs {}, min {min} vs {emin}, max {max} vs {emax}, first {got_first:?} vs {first:?}",
                    sum / n,
                    es / n
                ));
            }
        } else if is_float {
            let ok = close(sum, es, 1e-6)
                && close(f64::from(min), emin, 1e-6)
                && close(f64::from(max), emax, 1e-6)
                && got_first.iter().zip(&first).all(|(a, b)| close(*a, *b, 1e-6));
            if !ok {
                bad.push(format!(
                    "{name} ch{k}: sum {sum} vs {es}, min {min} vs {emin}, max {max} vs {emax}, first {got_first:?} vs {first:?}"
                ));
            }
        } else if sum != es || f64::from(min) != emin || f64::from(max) != emax || got_first != first {
            bad.push(format!(
                "{name} ch{k}: sum {sum} vs {es}, min {min} vs {emin}, max {max} vs {emax}, first {got_first:?} vs {first:?}"
            ));
        }
    }
    bad
}

pub fn run_all(sub: &str) -> usize {
    let dir = data_dir(sub);
    let cases = load_cases(&dir);
    let failures: Vec<String> = cases.iter().flat_map(|c| check_case(&dir, c)).collect();
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    cases.len()
}

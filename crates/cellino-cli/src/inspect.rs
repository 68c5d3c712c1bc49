//! `cellino inspect`: what is in an image or a checkpoint, as text or JSON.

use std::path::{Path, PathBuf};

use cellino_data::{MultiChannelImage, ReadOptions, SampleType, read_image};
use cellino_vit::{Arch, PosEmbedInterpolation, infer_config, load_state_dict};
use clap::Args;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An image (TIFF, OME-TIFF, PNG, JPEG, .npy) or a checkpoint (.safetensors, index.json, .pth).
    path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

const CHECKPOINT_EXTENSIONS: [&str; 5] = ["safetensors", "pth", "pt", "bin", "json"];

pub fn run(args: &InspectArgs) -> Result<(), String> {
    let ext = args.path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    let report = if CHECKPOINT_EXTENSIONS.contains(&ext.as_str()) {
        inspect_checkpoint(&args.path)?
    } else {
        inspect_image(&args.path)?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?);
    } else {
        print_text(&report, 0);
    }
    Ok(())
}

/// NumPy's name for the stored sample type (what Python users will compare against).
fn numpy_dtype(t: SampleType) -> &'static str {
    match t {
        SampleType::U8 => "uint8",
        SampleType::U16 => "uint16",
        SampleType::U32 => "uint32",
        SampleType::U64 => "uint64",
        SampleType::I8 => "int8",
        SampleType::I16 => "int16",
        SampleType::I32 => "int32",
        SampleType::I64 => "int64",
        SampleType::F16 => "float16",
        SampleType::F32 => "float32",
        SampleType::F64 => "float64",
    }
}

fn inspect_image(path: &Path) -> Result<Value, String> {
    let image: MultiChannelImage = read_image(path, &ReadOptions::default()).map_err(|e| e.to_string())?;
    let channels: Vec<Value> = image
        .channel_planes()
        .zip(&image.channel_names)
        .map(|(plane, name)| {
            let (min, max, sum) = plane.iter().fold((f64::INFINITY, f64::NEG_INFINITY, 0f64), |(lo, hi, s), &v| {
                let v = v as f64;
                (lo.min(v), hi.max(v), s + v)
            });
            json!({"name": name, "min": min, "max": max, "mean": sum / plane.len().max(1) as f64})
        })
        .collect();
    Ok(json!({
        "shape": [image.channels, image.height, image.width],
        "dtype": numpy_dtype(image.sample_type),
        "channels": channels,
    }))
}

fn inspect_checkpoint(path: &Path) -> Result<Value, String> {
    let sd = load_state_dict(path).map_err(|e| e.to_string())?;
    let params: usize = sd.tensors.values().map(|t| t.elem_count()).sum();
    // The width names the published architecture; other widths have no known head count.
    let config = infer_config(&sd, None, Some(1), PosEmbedInterpolation::DINOV2).map_err(|e| e.to_string())?;
    let arch = [Arch::VitSmall, Arch::VitBase, Arch::VitLarge, Arch::VitGiant2]
        .into_iter()
        .find(|a| a.dims().0 == config.embed_dim)
        .map(|a| a.name());
    Ok(json!({
        "layout": sd.layout,
        "architecture": arch,
        "embed_dim": config.embed_dim,
        "depth": config.depth,
        "patch_size": config.patch_size,
        "in_chans": config.in_chans,
        "num_register_tokens": config.num_register_tokens,
        "img_size": config.pos_grid * config.patch_size,
        "ffn": config.ffn,
        "layerscale": config.layerscale,
        "backbone_parameters": params,
        "backbone_tensors": sd.tensors.len(),
        "head_tensors_ignored": sd.head_keys.len(),
    }))
}

fn print_text(v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                match val {
                    Value::Object(_) | Value::Array(_) => {
                        println!("{pad}{k}:");
                        print_text(val, indent + 2);
                    }
                    other => println!("{pad}{k}: {}", scalar(other)),
                }
            }
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object()) => {
            let parts: Vec<String> = items.iter().map(scalar).collect();
            println!("{pad}[{}]", parts.join(", "));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                println!("{pad}- [{i}]");
                print_text(item, indent + 2);
            }
        }
        other => println!("{pad}{}", scalar(other)),
    }
}

/// Strings without quotes, null as "-".
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

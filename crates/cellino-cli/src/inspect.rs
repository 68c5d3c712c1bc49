//! `cellino inspect`: what is in an image, a checkpoint or a dataset (manifest CSV, image folder,
//! dinov2 dataset string), as text or JSON.

use std::path::{Path, PathBuf};

use cellino_data::{DatasetKind, DatasetSummary, MultiChannelImage, ReadOptions, SampleType, open_dataset, read_image};
use cellino_vit::{Arch, PosEmbedInterpolation, infer_config, load_state_dict};
use clap::Args;
use serde_json::{Map, Value, json};

const INSPECT_HELP: &str = "\
Examples:
  cellino inspect cells/images/cell_00000.png
  cellino inspect teacher_checkpoint.pth --json
  cellino inspect cells/manifest.csv --max-rows 1000
  cellino inspect CHAMMI_HPA:split=TRAIN:root=/data/chammi --json

A dataset (a .csv manifest, a folder of images or a dataset string) is reported as
{\"kind\": \"dataset\", \"rows\": N, \"scanned\": n, \"channel_sets\": [{\"channels\": C, \"names\": [..] or null,
\"rows\": n}], \"labels\": {\"name\": count}, \"missing_labels\": n, \"unreadable\": [{\"path\", \"line\", \"error\"}]}.
Every image of the first --max-rows rows is read; label counts cover all rows. Unreadable images are
listed and the exit status stays 0; a dataset that cannot be opened is an error.";

#[derive(Debug, Args)]
#[command(after_help = INSPECT_HELP)]
pub struct InspectArgs {
    /// An image (TIFF, OME-TIFF, PNG, JPEG, .npy), a checkpoint (.safetensors, index.json, .pth), or a
    /// dataset: manifest .csv, folder of images, or dataset string such as HPAFoV:split=TRAIN:root=/data.
    path: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Datasets: read the images of the first N rows only (label counts still cover every row).
    #[arg(long, value_name = "N")]
    max_rows: Option<usize>,
}

const CHECKPOINT_EXTENSIONS: [&str; 5] = ["safetensors", "pth", "pt", "bin", "json"];

/// A folder, a `.csv` or a string that starts with a dataset name (`CHAMMI_CP:...`).
fn is_dataset(path: &Path, ext: &str) -> bool {
    let text = path.to_string_lossy();
    let head = text.split(':').next().unwrap_or_default();
    path.is_dir() || ext == "csv" || (text.contains(':') && DatasetKind::from_name(head).is_some())
}

pub fn run(args: &InspectArgs) -> Result<(), String> {
    let ext = args.path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    if is_dataset(&args.path, &ext) {
        let summary = summarise_dataset(&args.path, args.max_rows)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&dataset_json(&summary)).map_err(|e| e.to_string())?);
        } else {
            print_dataset(&args.path, &summary);
        }
        return Ok(());
    }
    if args.max_rows.is_some() {
        return Err(format!(
            "--max-rows applies to datasets; {} is not a .csv, folder or dataset string",
            args.path.display()
        ));
    }
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

fn summarise_dataset(path: &Path, max_rows: Option<usize>) -> Result<DatasetSummary, String> {
    let spec = path.to_string_lossy();
    let opened = open_dataset(&spec).map_err(|e| e.to_string())?;
    let dataset = opened.dataset;
    let total = max_rows.map_or(dataset.len(), |m| m.min(dataset.len()));
    let pb = crate::progress::with_template(total as u64, "inspect [{bar:30}] {pos}/{len} images  ETA {eta}");
    let summary = DatasetSummary::of(&dataset, max_rows, |done, _| pb.set_position(done as u64));
    pb.finish_and_clear();
    Ok(summary)
}

fn dataset_json(s: &DatasetSummary) -> Value {
    let sets: Vec<Value> =
        s.channel_sets.iter().map(|c| json!({"channels": c.channels, "names": c.names, "rows": c.rows})).collect();
    let labels: Map<String, Value> = s.labels.iter().map(|(name, n)| (name.clone(), json!(n))).collect();
    let unreadable: Vec<Value> = s
        .unreadable
        .iter()
        .map(|u| json!({"path": u.path.display().to_string(), "line": u.line, "error": u.error}))
        .collect();
    json!({
        "kind": "dataset",
        "rows": s.rows,
        "scanned": s.scanned,
        "channel_sets": sets,
        "labels": labels,
        "missing_labels": s.missing_labels,
        "unreadable": unreadable,
    })
}

fn print_dataset(path: &Path, s: &DatasetSummary) {
    println!("dataset: {}", path.display());
    let note = if s.scanned < s.rows { format!(" (images of the first {} read)", s.scanned) } else { String::new() };
    println!("rows: {}{note}", s.rows);
    println!("channel sets:");
    for c in &s.channel_sets {
        let names = c.names.as_ref().map_or_else(String::new, |n| {
            let n: Vec<&str> = n.iter().map(|x| x.as_deref().unwrap_or("-")).collect();
            format!(" [{}]", n.join(", "))
        });
        println!("  {} channels{names}: {} rows", c.channels, c.rows);
    }
    if s.labels.is_empty() && s.missing_labels == 0 {
        println!("labels: none");
    } else {
        println!("labels:");
        let width = s.labels.iter().map(|l| l.0.chars().count()).max().unwrap_or(0);
        for (name, n) in &s.labels {
            println!("  {name:<width$}  {n}");
        }
        if s.missing_labels > 0 {
            println!("  (missing label: {} rows)", s.missing_labels);
        }
    }
    println!("unreadable: {}", s.unreadable.len());
    for u in &s.unreadable {
        let line = if u.line > 0 { format!(" (line {})", u.line) } else { String::new() };
        println!("  {}{line}: {}", u.path.display(), u.error);
    }
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
        "kind": "image",
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
        "kind": "checkpoint",
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

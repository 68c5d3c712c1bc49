//! `cellino train`: self-supervised pretraining (DINO + iBOT + KoLeo) with `cellino_ssl`.
//!
//! The config is a dinov2-schema YAML file plus `key.sub=value` overrides; the dataset is
//! `train.dataset_path` (a dinov2 dataset string, a manifest CSV or a folder). Everything is
//! checked (config, dataset, channel count, batch size) before anything is written. The run
//! writes into the output directory:
//!
//! * `config.yaml`: the effective config (file + overrides + `--output-dir`);
//! * `metrics.jsonl`: one JSON object per iteration ([`cellino_ssl::StepMetrics`]), flushed per line;
//! * `checkpoints/model_<iteration>.safetensors` + `.json`: every `train.checkpoint_period`
//!   iterations and at the end, the newest `train.keep_checkpoints` kept;
//! * `teacher_backbone.safetensors`: the EMA teacher in dinov2's `teacher_checkpoint` key layout
//!   (`backbone.*`, `dino_head.*`), readable by `cellino embed --model`.
//!
//! `--resume` continues from the newest complete checkpoint; the library's resume is exact, so
//! the config must be the one the checkpoint was written with (up to keys that cannot change the
//! numbers: `train.output_dir`, `train.num_workers`, `train.keep_checkpoints`,
//! `train.checkpoint_period`, `train.saveckp_freq`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use cellino_data::{BagOfChannels, SampleSource, open_dataset};
use cellino_ssl::{
    CheckpointPolicy, SslConfig, SslTrainer, StepMetrics, augmentation, latest_checkpoint, loader_config,
    metrics_json_line,
};
use clap::Args;
use indicatif::ProgressBar;

use cellino_data::write_atomically;

const TRAIN_HELP: &str = "\
Examples:
  # A Bag-of-Channels ViT on a laptop CPU, on a manifest of images (one path per row):
  cellino train --config configs/train/tiny_cpu_boc.yaml train.dataset_path=cells.csv --output-dir runs/tiny

  # The published HPA-FoV Bag-of-Channels recipe, with dinov2-style overrides:
  cellino train --config configs/train/cell_dino_vitl16_boc_hpafov.yaml \\
      train.dataset_path=HPAFoV:split=TRAIN:root=/data:wildcard=SEPARATE_CHANNELS \\
      student.in_chans=1 train.batch_size_per_gpu=32 --output-dir runs/boc

  # Continue after a crash (exactly: same losses and weights as an uninterrupted run):
  cellino train --config configs/train/tiny_cpu_boc.yaml train.dataset_path=cells.csv --output-dir runs/tiny --resume

A model with student.in_chans 1 trained on multi-channel images sees every channel as its own
sample (Bag of Channels), as with wildcard=SEPARATE_CHANNELS.";

#[derive(Debug, Args)]
#[command(after_long_help = TRAIN_HELP)]
pub struct TrainArgs {
    /// Training config (YAML, dinov2 schema), e.g. configs/train/tiny_cpu_boc.yaml.
    #[arg(long)]
    config: PathBuf,
    /// Config overrides `key.sub=value` (value parsed as YAML), e.g. train.batch_size_per_gpu=32.
    #[arg(value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Output directory (sets train.output_dir) [default: the config's train.output_dir].
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Continue from the newest complete checkpoint in <output-dir>/checkpoints.
    #[arg(long)]
    resume: bool,
    /// Stop once this many iterations are done in total (counting those before a resume);
    /// default and upper bound: optim.epochs × train.OFFICIAL_EPOCH_LENGTH.
    #[arg(long, value_name = "N")]
    max_iterations: Option<u64>,
    /// Print the merged config (YAML) and exit without training.
    #[arg(long)]
    print_config: bool,
}

/// Keys that may differ between a checkpoint's config and the resumed run's.
const RESUME_FREE_KEYS: [&str; 5] = [
    "train.output_dir",
    "train.num_workers",
    "train.keep_checkpoints",
    "train.checkpoint_period",
    "train.saveckp_freq",
];

fn effective_config(args: &TrainArgs) -> Result<SslConfig, String> {
    if !args.config.is_file() {
        return Err(format!("config file {} does not exist", args.config.display()));
    }
    let mut config = SslConfig::from_yaml_file(&args.config)
        .and_then(|c| c.with_overrides(&args.overrides))
        .map_err(|e| e.to_string())?;
    if let Some(dir) = &args.output_dir {
        config.train.output_dir = dir.to_string_lossy().into_owned();
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// The dataset of `train.dataset_path` as a sample source with `student.in_chans` channels per
/// sample: as is, or split into single channels (Bag of Channels) for a 1-channel model.
fn open_source(config: &SslConfig) -> Result<Box<dyn SampleSource>, String> {
    let spec = &config.train.dataset_path;
    let hint = if *spec == cellino_ssl::TrainConfig::default().dataset_path {
        " (the default; set train.dataset_path=<manifest.csv | folder | dataset string>)"
    } else {
        ""
    };
    let ctx = |e: cellino_data::DataError| format!("train.dataset_path `{spec}`{hint}: {e}");
    let opened = open_dataset(spec).map_err(ctx)?;
    if opened.dataset.is_empty() {
        return Err(format!("train.dataset_path `{spec}`: the dataset has no images"));
    }
    let in_chans = config.student.in_chans;
    let first_channels = match opened.dataset.channel_count(0) {
        Some(c) => c,
        None => opened.dataset.load(0).map_err(ctx)?.image.channels,
    };
    let bag = opened.separate_channels || (in_chans == 1 && first_channels > 1);
    if !bag {
        if first_channels != in_chans {
            return Err(format!(
                "train.dataset_path `{spec}`: the images have {first_channels} channels but student.in_chans is \
                 {in_chans}"
            ));
        }
        return Ok(Box::new(opened.dataset));
    }
    if in_chans != 1 {
        return Err(format!(
            "train.dataset_path `{spec}` asks for single channels (wildcard=SEPARATE_CHANNELS) but student.in_chans \
             is {in_chans}; set student.in_chans=1 teacher.in_chans=1"
        ));
    }
    let dataset = opened.dataset;
    let known = (0..dataset.len()).all(|i| dataset.channel_count(i).is_some());
    let bag =
        if known { BagOfChannels::new(dataset) } else { BagOfChannels::with_channel_count(dataset, first_channels) }
            .map_err(ctx)?;
    Ok(Box::new(bag))
}

/// Flatten a JSON value into `a.b.c` → leaf.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, x, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}

/// Keys whose values differ between the checkpoint's config and this run's, as `key (checkpoint
/// X, now Y)`, ignoring [`RESUME_FREE_KEYS`].
fn config_differences(checkpoint: &SslConfig, now: &SslConfig) -> Result<Vec<String>, String> {
    let flat = |c: &SslConfig| -> Result<BTreeMap<String, serde_json::Value>, String> {
        let v = serde_json::to_value(c).map_err(|e| e.to_string())?;
        let mut out = BTreeMap::new();
        flatten("", &v, &mut out);
        Ok(out)
    };
    let (a, b) = (flat(checkpoint)?, flat(now)?);
    let null = serde_json::Value::Null;
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    Ok(keys
        .into_iter()
        .filter(|k| !RESUME_FREE_KEYS.contains(&k.as_str()))
        .filter_map(|k| {
            let (x, y) = (a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null));
            (x != y).then(|| format!("{k} (checkpoint {x}, now {y})"))
        })
        .collect())
}

/// Keep the metrics lines of iterations before `iteration` (those a resumed run does not redo).
fn truncate_metrics(path: &Path, iteration: u64) -> Result<(), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("iteration").and_then(|i| i.as_u64()))
                .is_some_and(|i| i < iteration)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomically(path, |p| std::fs::write(p, &kept)).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn progress_bar(until: u64, start: u64) -> ProgressBar {
    let pb = crate::progress::with_template(until, "{prefix} [{bar:30}] {pos}/{len} it  {msg}  ETA {eta}");
    pb.set_prefix("train");
    pb.set_position(start);
    pb
}

fn step_message(m: &StepMetrics) -> String {
    format!(
        "loss {:.4} (dino local {:.4} global {:.4} ibot {:.4} koleo {:.4})  {:.1} img/s",
        m.total_loss, m.dino_local_crops_loss, m.dino_global_crops_loss, m.ibot_loss, m.koleo_loss, m.images_per_second
    )
}

pub fn run(args: &TrainArgs) -> Result<(), String> {
    let config = effective_config(args)?;
    if args.print_config {
        print!("{}", config.to_yaml().map_err(|e| e.to_string())?);
        return Ok(());
    }
    if args.max_iterations == Some(0) {
        return Err("--max-iterations must be at least 1".into());
    }
    let out_dir = PathBuf::from(&config.train.output_dir);
    let policy = CheckpointPolicy::from_config(&config);
    let device = Device::Cpu;

    // Everything that can be refused is checked before the first write.
    let (mut trainer, cursor) = if args.resume {
        let latest = latest_checkpoint(&policy.dir)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("--resume: no complete checkpoint in {}", policy.dir.display()))?;
        let (trainer, cursor) = SslTrainer::load_checkpoint(&latest, &device).map_err(|e| e.to_string())?;
        let diff = config_differences(&trainer.config, &config)?;
        if !diff.is_empty() {
            return Err(format!(
                "--resume: the config differs from the one checkpoint {} was written with, at {}; resume with the \
                 same config, or start a new run in another --output-dir",
                latest.display(),
                diff.join(", ")
            ));
        }
        (trainer, cursor)
    } else {
        if let Some(existing) = latest_checkpoint(&policy.dir).map_err(|e| e.to_string())? {
            return Err(format!(
                "{} already holds checkpoint {}; pass --resume to continue that run, or choose another --output-dir",
                policy.dir.display(),
                existing.display()
            ));
        }
        (SslTrainer::new(config.clone(), &device).map_err(|e| e.to_string())?, cellino_data::Cursor::default())
    };
    let source = open_source(&config)?;
    let loader = cellino_data::Loader::new(
        source,
        augmentation(&config),
        loader_config(&config, config.train.num_workers).map_err(|e| e.to_string())?,
        device.clone(),
    )
    .map_err(|e| e.to_string())?;
    if loader.batches_per_epoch() == 0 {
        return Err(format!(
            "train.dataset_path `{}`: {} samples are fewer than one batch of train.batch_size_per_gpu {}",
            config.train.dataset_path,
            loader.source().len(),
            config.train.batch_size_per_gpu
        ));
    }
    let total = (config.optim.epochs * config.train.official_epoch_length) as u64;
    let until = args.max_iterations.map_or(total, |m| m.min(total));

    // Outputs.
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let yaml = config.to_yaml().map_err(|e| e.to_string())?;
    let config_path = out_dir.join("config.yaml");
    write_atomically(&config_path, |p| std::fs::write(p, &yaml))
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    let metrics_path = out_dir.join("metrics.jsonl");
    if args.resume {
        truncate_metrics(&metrics_path, trainer.iteration)?;
    }
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(args.resume)
        .write(true)
        .truncate(!args.resume)
        .open(&metrics_path)
        .map_err(|e| format!("cannot open {}: {e}", metrics_path.display()))?;

    let start = trainer.iteration;
    let t0 = Instant::now();
    if start < until {
        let pb = progress_bar(until, start);
        let mut write_error: Option<String> = None;
        let result = cellino_ssl::train(&mut trainer, &loader, cursor, until, Some(&policy), |m| {
            if write_error.is_none()
                && let Err(e) = writeln!(metrics, "{}", metrics_json_line(m)).and_then(|_| metrics.flush())
            {
                write_error = Some(format!("cannot write {}: {e}", metrics_path.display()));
            }
            pb.set_position(m.iteration + 1);
            pb.set_message(step_message(m));
        });
        pb.finish_and_clear();
        result.map_err(|e| e.to_string())?;
        if let Some(e) = write_error {
            return Err(e);
        }
    }
    let export = out_dir.join("teacher_backbone.safetensors");
    trainer.export_teacher(&export).map_err(|e| e.to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    crate::info!(
        "trained iterations {start}..{} in {secs:.1} s; teacher backbone: {}",
        trainer.iteration,
        export.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_keys_and_ignore_free_ones() {
        let a = SslConfig::default();
        let mut b = a.clone();
        b.train.output_dir = "elsewhere".into();
        b.train.num_workers = 1;
        assert!(config_differences(&a, &b).unwrap().is_empty());
        b.train.seed = 7;
        b.crops.global_crops_scale = (0.5, 1.0);
        let d = config_differences(&a, &b).unwrap();
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("crops.global_crops_scale") && d[1].starts_with("train.seed (checkpoint 0, now 7)"));
    }
}

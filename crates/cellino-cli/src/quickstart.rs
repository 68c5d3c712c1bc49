//! `cellino quickstart`: the whole pipeline on synthetic data in a few minutes on a CPU.
//!
//! 1. writes the synthetic 4-channel cell crops (`cellino_data::write_synthetic_dataset`,
//!    6 localisation classes, train/test split in the manifest) under `DIR/data`;
//! 2. pretrains a small Bag-of-Channels ViT (`student.in_chans 1`, every channel of every train
//!    image is a sample; or, with `--mode multichannel`, a 4-channel ViT as Cell-DINO's HPA
//!    models) with `cellino_ssl` (DINO + iBOT + KoLeo) from
//!    `configs/quickstart.yaml` (compiled in), for a wall-clock budget: a few timed
//!    steps size the schedule (`OFFICIAL_EPOCH_LENGTH`) to the budget, and the loop also stops when
//!    the budget is spent; checkpoint and teacher export at the end;
//! 3. embeds the train and test splits with the trained teacher and with the same architecture
//!    at its random initialisation (the exact weights training started from), Bag of Channels:
//!    CLS of the last block + patch-token average of each channel, concatenated;
//! 4. linear probe (reduced grid, validation carved from train) and kNN on both;
//! 5. prints a table and writes `report.md`, `metrics.json`, `train_metrics.jsonl`, the
//!    checkpoint, the embeddings and PNG plots (loss curve, PCA of the test embeddings).

mod font;
mod plot;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use cellino_data::{
    BagOfChannels, Cursor, Dataset, EvalTransform, Loader, SampleSource, SynthConfig, write_synthetic_dataset,
};
use cellino_eval::{
    ExtractConfig, Extracted, KnnConfig, LinearProbeConfig, ModelSource, Split, Targets, Validation, extract_features,
    knn_evaluate, run_linear_probe, write_embeddings,
};
use cellino_ssl::{SslConfig, SslTrainer, StepMetrics, augmentation, loader_config, metrics_json_line};
use cellino_vit::{DinoVisionTransformer, random_state_dict};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use serde_json::json;

use cellino_data::write_atomically;

/// The training recipe, compiled into the binary so that the quickstart needs no files.
const CONFIG_YAML: &str = include_str!("../../../configs/quickstart.yaml");
const CONFIG_NAME: &str = "configs/quickstart.yaml";

const QUICKSTART_HELP: &str = "\
Example:
  cellino quickstart --out quickstart --minutes 8 --seed 0

Writes synthetic cells to <out>/data, pretrains a small Bag-of-Channels ViT for --minutes on the CPU,
then compares its linear-probe and kNN scores with the same network at random initialisation.
Outputs: report.md, metrics.json, train_metrics.jsonl, teacher_backbone.safetensors,
checkpoints/, embeddings/{ssl,random_init}_{train,test}.npy (+ .csv, .json), loss.png,
pca_test_ssl.png, pca_test_random_init.png.";

#[derive(Debug, Args)]
#[command(after_long_help = QUICKSTART_HELP)]
pub struct QuickstartArgs {
    /// Output folder (created; must be empty or absent unless --force).
    #[arg(long, default_value = "quickstart")]
    out: PathBuf,
    /// Pretraining budget in minutes of wall-clock time (the whole run takes about 1.5 minutes more).
    #[arg(long, default_value_t = 8.0)]
    minutes: f64,
    /// Seed of the synthetic data, the training run and the random-init baseline.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// boc: a Bag-of-Channels ViT (in_chans 1, every channel a sample, features concatenated per
    /// channel); multichannel: one 4-channel ViT (in_chans 4), as Cell-DINO's HPA models.
    #[arg(long, value_enum, default_value_t = Mode::Boc)]
    mode: Mode,
    /// Overwrite the outputs of an earlier run in a non-empty --out.
    #[arg(long)]
    force: bool,
    /// Number of synthetic crops (train + test): about 500 test crops keep the scores' noise
    /// well below the gains they show.
    #[arg(long, default_value_t = 2400, hide = true)]
    images: usize,
    /// Stop pretraining after this many iterations (tests).
    #[arg(long, hide = true)]
    max_iterations: Option<u64>,
    /// Linear-probe epochs (tests).
    #[arg(long, default_value_t = 20, hide = true)]
    probe_epochs: usize,
    /// Config overrides `key.sub=value` on top of the compiled-in recipe (tuning).
    #[arg(long = "set", value_name = "KEY=VALUE", hide = true)]
    overrides: Vec<String>,
}

/// Which model the quickstart pretrains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Boc,
    Multichannel,
}

impl Mode {
    fn bag_of_channels(self) -> bool {
        self == Mode::Boc
    }
}

/// Linear-probe grid: 6 learning rates × 2 weight decays (the full Cell-DINO grid is 16 × 3).
const PROBE_LRS: [f64; 6] = [1e-4, 5e-4, 2e-3, 1e-2, 5e-2, 0.2];
const PROBE_WDS: [f64; 2] = [0.0, 1e-4];
const KNN_KS: [usize; 2] = [10, 20];
/// The k reported at the top level of the kNN results.
const KNN_MAIN_K: usize = 20;

fn quiet_bar(len: u64, prefix: &'static str, template: &str) -> ProgressBar {
    let pb = crate::progress::with_template(len, template);
    pb.set_prefix(prefix);
    pb
}

fn ensure_out_dir(out: &Path, force: bool) -> Result<(), String> {
    if out.exists() {
        if !out.is_dir() {
            return Err(format!("--out {} exists and is not a folder", out.display()));
        }
        let non_empty =
            std::fs::read_dir(out).map_err(|e| format!("cannot read --out {}: {e}", out.display()))?.next().is_some();
        if non_empty && !force {
            return Err(format!(
                "--out {} is not empty; choose another folder or pass --force to overwrite an earlier quickstart",
                out.display()
            ));
        }
        if force {
            for sub in ["checkpoints", "data", "embeddings"] {
                let p = out.join(sub);
                if p.exists() {
                    std::fs::remove_dir_all(&p).map_err(|e| format!("cannot remove {}: {e}", p.display()))?;
                }
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create --out {}: {e}", out.display()))
}

/// The records of `dataset` whose `split` column is `split`.
fn split_of(dataset: &Dataset, split: &str) -> Dataset {
    let mut d = dataset.clone();
    d.records = (0..dataset.len())
        .filter(|&i| dataset.metadata(i, "split") == Some(split))
        .map(|i| dataset.records[i].clone())
        .collect();
    d
}

fn recipe(args: &QuickstartArgs, out: &Path) -> Result<SslConfig, String> {
    let mut config = SslConfig::from_yaml_str(CONFIG_YAML, CONFIG_NAME).map_err(|e| e.to_string())?;
    if args.mode == Mode::Multichannel {
        // The synthetic crops have 4 channels; the recipe is otherwise the same.
        let multichannel = ["train.channel_adaptive=false", "student.in_chans=4", "teacher.in_chans=4"];
        config = config.with_overrides(&multichannel.map(String::from)).map_err(|e| e.to_string())?;
    }
    config = config.with_overrides(&args.overrides).map_err(|e| e.to_string())?;
    config.train.seed = args.seed;
    config.train.output_dir = out.to_string_lossy().into_owned();
    config.train.dataset_path = out.join("data").join("manifest.csv").to_string_lossy().into_owned();
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

struct Trained {
    trainer: SslTrainer,
    history: Vec<StepMetrics>,
    seconds: f64,
    planned: u64,
}

/// Seconds per step of the recipe on this machine: a few steps of a throw-away trainer.
fn time_steps(
    config: &SslConfig,
    loader: &Loader<Box<dyn SampleSource>, cellino_data::CellAugmentation>,
) -> Result<f64, String> {
    let mut probe = SslTrainer::new(config.clone(), &Device::Cpu).map_err(|e| e.to_string())?;
    let mut iter = loader.iter_from(Cursor::default());
    let mut times = Vec::new();
    for _ in 0..4 {
        let t = Instant::now();
        let Some(batch) = iter.next() else { break };
        let batch = batch.map_err(|e| e.to_string())?;
        probe.step(&batch, "none").map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64());
    }
    // The first step warms caches and allocators (and the loader's first batch is slow).
    let steady = if times.len() > 1 { &times[1..] } else { &times[..] };
    Ok(steady.iter().sum::<f64>() / steady.len().max(1) as f64)
}

fn pretrain(
    args: &QuickstartArgs,
    mut config: SslConfig,
    train_set: &Dataset,
    out: &Path,
) -> Result<(Trained, SslConfig), String> {
    let budget = args.minutes * 60.0;
    let source: Box<dyn SampleSource> = match args.mode {
        Mode::Boc => Box::new(BagOfChannels::new(train_set.clone()).map_err(|e| e.to_string())?),
        Mode::Multichannel => Box::new(train_set.clone()),
    };
    let make_loader = |config: &SslConfig, source: Box<dyn SampleSource>| {
        Loader::new(
            source,
            augmentation(config),
            loader_config(config, config.train.num_workers).map_err(|e| e.to_string())?,
            Device::Cpu,
        )
        .map_err(|e| e.to_string())
    };
    let loader = make_loader(&config, source)?;
    if loader.batches_per_epoch() == 0 {
        return Err(format!(
            "{} training samples are fewer than one batch of {}; use more --images",
            loader.source().len(),
            config.train.batch_size_per_gpu
        ));
    }
    // Size the schedule to the budget (the loop also stops on the clock).
    let epochs = config.optim.epochs.max(1) as u64;
    let mut planned = match args.max_iterations {
        Some(m) => m,
        None => {
            let per_step = time_steps(&config, &loader)?;
            crate::info!("one training step takes {:.2} s on this machine", per_step);
            ((budget / per_step.max(1e-6)) as u64).max(epochs)
        }
    };
    if let Some(m) = args.max_iterations {
        planned = planned.min(m);
    }
    config.train.official_epoch_length = planned.div_ceil(epochs).max(1) as usize;
    let until = planned;

    let mut trainer = SslTrainer::new(config.clone(), &Device::Cpu).map_err(|e| e.to_string())?;
    let metrics_path = out.join("train_metrics.jsonl");
    let mut metrics =
        std::fs::File::create(&metrics_path).map_err(|e| format!("cannot write {}: {e}", metrics_path.display()))?;
    let pb = quiet_bar(until, "pretrain", "{prefix} [{bar:30}] {pos}/{len} it  {msg}  {elapsed} / ETA {eta}");
    let mut history = Vec::new();
    let t0 = Instant::now();
    let mut cursor = Cursor::default();
    'outer: while trainer.iteration < until {
        let mut iter = loader.iter_from(cursor);
        let mut any = false;
        while trainer.iteration < until {
            if args.max_iterations.is_none() && t0.elapsed().as_secs_f64() >= budget {
                break 'outer;
            }
            let t = Instant::now();
            let Some(batch) = iter.next() else { break };
            let batch = batch.map_err(|e| e.to_string())?;
            any = true;
            let mut m = trainer.step(&batch, "none").map_err(|e| e.to_string())?;
            m.images_per_second = batch.len() as f64 / t.elapsed().as_secs_f64().max(1e-9);
            cursor = batch.next;
            writeln!(metrics, "{}", metrics_json_line(&m))
                .map_err(|e| format!("cannot write {}: {e}", metrics_path.display()))?;
            pb.set_position(trainer.iteration);
            pb.set_message(format!("loss {:.3}  {:.0} img/s", m.total_loss, m.images_per_second));
            history.push(m);
        }
        if trainer.iteration < until {
            if !any && cursor.position == 0 {
                return Err("the loader gave no batch for a whole epoch".into());
            }
            cursor = Cursor { epoch: cursor.epoch + 1, position: 0 };
        }
    }
    pb.finish_and_clear();
    let seconds = t0.elapsed().as_secs_f64();
    let ckpt = trainer.save_checkpoint(&out.join("checkpoints"), cursor, 1).map_err(|e| e.to_string())?;
    trainer.export_teacher(&out.join("teacher_backbone.safetensors")).map_err(|e| e.to_string())?;
    crate::info!(
        "pretrained {} iterations ({} images) in {seconds:.0} s; checkpoint {}",
        trainer.iteration,
        trainer.iteration as usize * config.train.batch_size_per_gpu,
        ckpt.display()
    );
    Ok((Trained { trainer, history, seconds, planned }, config))
}

struct ModelScores {
    linear: cellino_eval::LinearProbeReport,
    knn: cellino_eval::KnnReport,
    train: Extracted,
    test: Extracted,
}

fn class_targets(e: &Extracted) -> Result<Vec<usize>, String> {
    e.targets.iter().map(|t| t.class().ok_or_else(|| "a synthetic crop has no class label".to_string())).collect()
}

fn evaluate(
    name: &str,
    model: &DinoVisionTransformer,
    train_set: &Dataset,
    test_set: &Dataset,
    extract: &ExtractConfig,
    probe: &LinearProbeConfig,
) -> Result<ModelScores, String> {
    let total = (train_set.len() + test_set.len()) as u64;
    let pb = quiet_bar(total, "embed", "{prefix} [{bar:30}] {pos}/{len} images  {msg}  ETA {eta}");
    pb.set_message(name.to_string());
    let embed = |d: &Dataset, offset: u64| {
        let mut report = |p: cellino_eval::Progress| pb.set_position(offset + p.done as u64);
        extract_features(model, d, extract, Some(&mut report)).map_err(|e| e.to_string())
    };
    let train = embed(train_set, 0)?;
    let test = embed(test_set, train_set.len() as u64)?;
    pb.finish_and_clear();
    let n_classes = train.labels.names().len();
    let (ytr, yte) = (class_targets(&train)?, class_targets(&test)?);
    let dim = train.layout.dim;
    let tr =
        Split::from_parts(&train.features, dim, Targets::multiclass(&ytr, n_classes)).map_err(|e| e.to_string())?;
    let te = Split::from_parts(&test.features, dim, Targets::multiclass(&yte, n_classes)).map_err(|e| e.to_string())?;
    let linear = run_linear_probe(&tr, Validation::DEFAULT_CARVE, &te, probe).map_err(|e| e.to_string())?;
    let mut ks: Vec<usize> = KNN_KS.iter().map(|&k| k.min(tr.n_samples())).collect();
    ks.dedup();
    let knn = knn_evaluate(&tr, &te, &KnnConfig::with_ks(&ks)).map_err(|e| e.to_string())?;
    Ok(ModelScores { linear, knn, train, test })
}

fn main_knn(s: &ModelScores) -> (usize, &cellino_eval::SplitMetrics) {
    let k = s.knn.k.keys().copied().filter(|&k| k <= KNN_MAIN_K).max().unwrap_or(KNN_MAIN_K);
    let (k, m) = s.knn.k.get_key_value(&k).or_else(|| s.knn.k.iter().next_back()).expect("kNN has at least one k");
    (*k, m)
}

fn scores_json(s: &ModelScores) -> serde_json::Value {
    let (k, m) = main_knn(s);
    let per_k: serde_json::Map<String, serde_json::Value> = s
        .knn
        .k
        .iter()
        .map(|(k, m)| (k.to_string(), json!({"macro_f1": m.macro_f1(), "accuracy": m.accuracy()})))
        .collect();
    json!({
        "linear": {
            "macro_f1": s.linear.test.macro_f1(),
            "accuracy": s.linear.test.accuracy(),
            "classifier": s.linear.best_classifier,
            "validation_macro_f1": s.linear.validation.macro_f1(),
        },
        "knn": {"k": k, "macro_f1": m.macro_f1(), "accuracy": m.accuracy(), "per_k": per_k},
        "dim": s.train.layout.dim,
    })
}

fn write_text(path: &Path, text: &str) -> Result<(), String> {
    write_atomically(path, |p| std::fs::write(p, text)).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn pca_plot(path: &Path, e: &Extracted, model: &str) -> Result<(), String> {
    let classes = class_targets(e)?;
    let points = plot::pca_2d(&e.features, e.n_rows, e.layout.dim);
    let title = format!("PCA of test embeddings ({model})");
    let labels = plot::Labels { title: &title, x: "PC 1", y: "PC 2" };
    plot::scatter(path, &points, &classes, e.labels.names(), &labels, 640, 480)
}

fn loss_plot(path: &Path, history: &[StepMetrics]) -> Result<(), String> {
    let raw: Vec<(f64, f64)> = history.iter().map(|m| (m.iteration as f64 + 1.0, m.total_loss)).collect();
    // Exponential moving average, bias-corrected.
    let mut ema = Vec::with_capacity(raw.len());
    let (mut acc, mut w) = (0.0, 0.0);
    for &(x, y) in &raw {
        acc = 0.95 * acc + 0.05 * y;
        w = 0.95 * w + 0.05;
        ema.push((x, acc / w));
    }
    plot::line_chart(
        path,
        &[
            plot::Series { points: &raw, colour: [190, 190, 190], name: "loss" },
            plot::Series { points: &ema, colour: [31, 119, 180], name: "moving average" },
        ],
        &plot::Labels { title: "Pretraining loss", x: "iteration", y: "total loss (DINO + iBOT + KoLeo)" },
        640,
        400,
    )
}

fn colour_name(k: usize) -> &'static str {
    ["blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive", "cyan"][k % 10]
}

pub fn run(args: &QuickstartArgs) -> Result<(), String> {
    if !(args.minutes.is_finite() && args.minutes > 0.0) {
        return Err(format!("--minutes {}: give a positive number of minutes, e.g. --minutes 6", args.minutes));
    }
    if args.images < 12 {
        return Err(format!("--images {}: at least 12 crops are needed for a train and a test split", args.images));
    }
    if args.max_iterations == Some(0) {
        return Err("--max-iterations must be at least 1".into());
    }
    if args.probe_epochs == 0 {
        return Err("--probe-epochs must be at least 1".into());
    }
    let start = Instant::now();
    let out = args.out.as_path();
    // Config errors before anything is written.
    let config = recipe(args, out)?;
    ensure_out_dir(out, args.force)?;

    // 1. Data.
    let synth = SynthConfig { seed: args.seed, num_images: args.images, ..SynthConfig::default() };
    let manifest = write_synthetic_dataset(out.join("data"), &synth).map_err(|e| e.to_string())?;
    let dataset = Dataset::from_manifest(&manifest, &synth.manifest_options()).map_err(|e| e.to_string())?;
    let (train_set, test_set) = (split_of(&dataset, "train"), split_of(&dataset, "test"));
    if train_set.is_empty() || test_set.is_empty() {
        return Err(format!("--images {}: the split left no train or no test crops; use more", args.images));
    }
    crate::info!(
        "synthetic data: {} crops of {}x{}x{} ({} train, {} test, {} classes) in {}",
        dataset.len(),
        synth.channels,
        synth.size,
        synth.size,
        train_set.len(),
        test_set.len(),
        synth.classes,
        manifest.display()
    );

    // 2. Pretraining.
    let (trained, config) = pretrain(args, config, &train_set, out)?;
    let yaml = config.to_yaml().map_err(|e| e.to_string())?;
    write_text(&out.join("config.yaml"), &yaml)?;

    // 3-4. Embeddings and evaluation, trained teacher vs its random initialisation.
    let vit = trained.trainer.vit_config.clone();
    let init = random_state_dict(&vit, config.student.layerscale as f32, config.train.seed, &Device::Cpu)
        .map_err(|e| e.to_string())?;
    let random_model = DinoVisionTransformer::from_state_dict(vit.clone(), &init).map_err(|e| e.to_string())?;
    let size = config.crops.global_crops_size;
    let extract = |avgpool: bool| ExtractConfig {
        n_last_blocks: 1,
        avgpool,
        bag_of_channels: args.mode.bag_of_channels(),
        l2_normalize: false,
        transform: EvalTransform::center(size, size),
        batch_size: 64,
        num_threads: 0,
    };
    let probe = |avgpool: bool| LinearProbeConfig {
        learning_rates: PROBE_LRS.to_vec(),
        weight_decays: PROBE_WDS.to_vec(),
        batch_size: 64,
        epochs: args.probe_epochs,
        epoch_length: Some(50),
        seed: args.seed,
        n_last_blocks: 1,
        avgpool,
        ..LinearProbeConfig::default()
    };
    let t_eval = Instant::now();
    let teacher = trained.trainer.teacher_backbone();
    let ssl = evaluate("trained teacher", teacher, &train_set, &test_set, &extract(false), &probe(false))?;
    let rnd = evaluate("random init", &random_model, &train_set, &test_set, &extract(false), &probe(false))?;
    let ssl_ap = evaluate("trained teacher, +avgpool", teacher, &train_set, &test_set, &extract(true), &probe(true))?;
    let rnd_ap = evaluate("random init, +avgpool", &random_model, &train_set, &test_set, &extract(true), &probe(true))?;
    let eval_seconds = t_eval.elapsed().as_secs_f64();

    // 5. Outputs.
    let emb = out.join("embeddings");
    std::fs::create_dir_all(&emb).map_err(|e| format!("cannot create {}: {e}", emb.display()))?;
    let teacher_path = out.join("teacher_backbone.safetensors");
    for (tag, scores, ckpt) in [("ssl", &ssl, Some(teacher_path.as_path())), ("random_init", &rnd, None)] {
        for (split, e) in [("train", &scores.train), ("test", &scores.test)] {
            let source = ModelSource { checkpoint: ckpt, arch: None };
            write_embeddings(emb.join(format!("{tag}_{split}.npy")), e, &vit, source).map_err(|e| e.to_string())?;
        }
    }
    loss_plot(&out.join("loss.png"), &trained.history)?;
    pca_plot(&out.join("pca_test_ssl.png"), &ssl.test, "SSL teacher")?;
    pca_plot(&out.join("pca_test_random_init.png"), &rnd.test, "random init")?;

    let total_seconds = start.elapsed().as_secs_f64();
    let images_seen = trained.trainer.iteration as usize * config.effective_batch_size();
    let gain_f1 = ssl.linear.test.macro_f1() - rnd.linear.test.macro_f1();
    let gain_ap = ssl_ap.linear.test.macro_f1() - rnd_ap.linear.test.macro_f1();
    let metrics = json!({
        "ssl": scores_json(&ssl),
        "random_init": scores_json(&rnd),
        "cls_avgpool": {
            "features": "per channel CLS of the last block + patch-token average, concatenated",
            "ssl": scores_json(&ssl_ap),
            "random_init": scores_json(&rnd_ap),
            "gain_linear_macro_f1": gain_ap,
        },
        "gain": {
            "linear_macro_f1": gain_f1,
            "linear_accuracy": ssl.linear.test.accuracy() - rnd.linear.test.accuracy(),
            "knn_macro_f1": main_knn(&ssl).1.macro_f1() - main_knn(&rnd).1.macro_f1(),
        },
        "train_seconds": trained.seconds,
        "eval_seconds": eval_seconds,
        "total_seconds": total_seconds,
        "images": dataset.len(),
        "train_images": train_set.len(),
        "test_images": test_set.len(),
        "iterations": trained.trainer.iteration,
        "planned_iterations": trained.planned,
        "pretrain_samples_seen": images_seen,
        "seed": args.seed,
        "minutes": args.minutes,
        "config": CONFIG_NAME,
        "overrides": args.overrides,
        "final_loss": trained.history.last().map(|m| m.total_loss),
        "linear_probe_grid": {"learning_rates": PROBE_LRS, "weight_decays": PROBE_WDS, "epochs": args.probe_epochs,
            "epoch_length": 50, "batch_size": 64, "validation": "10% carved from train, seed 0"},
        "mode": if args.mode.bag_of_channels() { "boc" } else { "multichannel" },
        "features": if args.mode.bag_of_channels() {
            "Bag of Channels: per channel CLS token of the last block, concatenated (DINO protocol)"
        } else {
            "CLS token of the last block of the 4-channel model (DINO protocol)"
        },
    });
    let text = serde_json::to_string_pretty(&metrics).map_err(|e| e.to_string())?;
    write_text(&out.join("metrics.json"), &(text + "\n"))?;

    let row = |name: &str, s: &ModelScores| {
        let (k, m) = main_knn(s);
        format!(
            "| {name:<13} | {:>15.3} | {:>15.3} | {:>13.3} | {:>13.3} |  (kNN k={k})",
            s.linear.test.macro_f1(),
            s.linear.test.accuracy(),
            m.macro_f1(),
            m.accuracy()
        )
    };
    let header = "| model         | linear macro-F1 | linear accuracy | kNN macro-F1  | kNN accuracy  |";
    let rule = "|---------------|-----------------|-----------------|---------------|---------------|";
    let table = format!(
        "{header}\n{rule}\n{}\n{}\n{}\n{}",
        row("SSL (teacher)", &ssl),
        row("random init", &rnd),
        row("SSL +avgpool", &ssl_ap),
        row("random +avgp", &rnd_ap)
    );
    let verdict = if gain_f1 >= 0.15 {
        format!(
            "Pretraining gains {gain_f1:+.3} linear-probe macro-F1 over random weights on CLS features (target: \
             +0.15); {gain_ap:+.3} with the patch-token average appended."
        )
    } else {
        format!(
            "Pretraining gains only {gain_f1:+.3} linear-probe macro-F1 over random weights on CLS features (target: \
             +0.15); {gain_ap:+.3} with the patch-token average appended."
        )
    };
    println!("\n{table}\n\n{verdict}");
    println!(
        "pretraining {:.0} s ({} iterations), evaluation {:.0} s, total {:.0} s; report: {}",
        trained.seconds,
        trained.trainer.iteration,
        eval_seconds,
        total_seconds,
        out.join("report.md").display()
    );

    let names = ssl.train.labels.names();
    let legend: Vec<String> = names.iter().enumerate().map(|(k, n)| format!("{n} = {}", colour_name(k))).collect();
    let loss_range = |f: fn(&StepMetrics) -> f64| {
        let v: Vec<f64> = trained.history.iter().map(f).collect();
        (v.first().copied().unwrap_or(f64::NAN), v.last().copied().unwrap_or(f64::NAN))
    };
    let (l0, l1) = loss_range(|m| m.total_loss);
    let report = format!(
        "# cellino quickstart\n\n\
         Command: `cellino quickstart --out {out} --minutes {minutes} --seed {seed}{mode_flag}`\n\n\
         {table}\n\n{verdict}\n\n\
         ## What ran\n\n\
         * **Data**: {n} synthetic single-cell crops, 4 channels (nucleus, microtubules, ER, protein), \
         64 x 64, 6 protein-localisation classes that differ only in the protein channel's spatial pattern; \
         {ntr} train / {nte} test (the manifest's `split` column). Files: `data/`.\n\
         * **Pretraining**: `{cfg}` (compiled in{ov}): {model_text} (in_chans {in_chans}, D {d}, depth {depth}, \
         patch {patch}), DINO + iBOT + KoLeo, {gs}-px global / {nl} x {ls}-px local crops, batch {b}, on the \
         {samples_text}. {it} iterations ({seen} samples) in {ts:.0} s \
         (budget {minutes} min). Loss {l0:.3} -> {l1:.3}. Checkpoint: `checkpoints/`, teacher: \
         `teacher_backbone.safetensors`, per-step metrics: `train_metrics.jsonl`, effective config: `config.yaml`.\n\
         * **Features**: {features_text} (eval transform: resize to {gs} px, centre \
         crop {gs}): {dim} columns (the first two rows \
         of the table, and `ssl` / `random_init` in metrics.json). The last two rows (`cls_avgpool` in \
         metrics.json) append the patch-token average (per channel for Bag of Channels): random patch embeddings already give useful \
         texture statistics there, so the gap is smaller. \
         The baseline is the same architecture with the random weights training started from (seed {seed}). \
         Files: `embeddings/{{ssl,random_init}}_{{train,test}}.npy` (+ `.csv`, `.json`).\n\
         * **Linear probe** (reduced grid): learning rates {lrs:?} x weight decays {wds:?}, {pe} epochs x 50 \
         iterations, batch 64, the classifier chosen by macro-F1 on 10% of train rows carved off (seed 0); \
         scores on the test split. **kNN**: cosine, T = 0.07, k in {ks:?}.\n\
         * Evaluation took {es:.0} s; the whole run {tt:.0} s.\n\n\
         ## Plots\n\n\
         * `loss.png`: total training loss per iteration (grey) and its moving average (blue); x: iteration \
         1..{it}, y: loss.\n\
         * `pca_test_ssl.png`, `pca_test_random_init.png`: the test embeddings projected on their first two \
         principal components, one dot per crop, coloured by class: {legend}.\n",
        out = out.display(),
        minutes = args.minutes,
        seed = args.seed,
        mode_flag = if args.mode.bag_of_channels() { "" } else { " --mode multichannel" },
        model_text = if args.mode.bag_of_channels() { "Bag-of-Channels ViT" } else { "4-channel ViT" },
        in_chans = vit.in_chans,
        samples_text = if args.mode.bag_of_channels() {
            format!("{} train crops x 4 channels (each channel its own sample)", train_set.len())
        } else {
            format!("{} 4-channel train crops", train_set.len())
        },
        features_text = if args.mode.bag_of_channels() {
            "each channel through the backbone on its own, the CLS token of the last block per channel, concatenated"
        } else {
            "the CLS token of the last block"
        },
        n = dataset.len(),
        ntr = train_set.len(),
        nte = test_set.len(),
        cfg = CONFIG_NAME,
        ov = if args.overrides.is_empty() { String::new() } else { format!(", overrides {:?}", args.overrides) },
        d = vit.embed_dim,
        depth = vit.depth,
        patch = vit.patch_size,
        gs = size,
        nl = config.crops.local_crops_number,
        ls = config.crops.local_crops_size,
        b = match config.train.grad_accumulation_steps {
            0 | 1 => config.train.batch_size_per_gpu.to_string(),
            k => format!("{} ({} x {k} accumulated)", config.effective_batch_size(), config.train.batch_size_per_gpu),
        },
        it = trained.trainer.iteration,
        seen = images_seen,
        ts = trained.seconds,
        dim = ssl.train.layout.dim,
        lrs = PROBE_LRS,
        wds = PROBE_WDS,
        pe = args.probe_epochs,
        ks = KNN_KS,
        es = eval_seconds,
        tt = total_seconds,
        legend = legend.join(", "),
    );
    write_text(&out.join("report.md"), &report)?;
    Ok(())
}

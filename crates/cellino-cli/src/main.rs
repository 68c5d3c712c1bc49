//! `cellino`: the command line of cellino. Thin by design: parsing, progress and error printing;
//! the work happens in the library crates.
//!
//! * `cellino embed`: a raw float32 `(B, C, H, W)` `.npy` batch → features (`.npy`), or a dataset
//!   (manifest CSV, folder, dinov2 dataset string) → `emb.npy` + `emb.csv` + `emb.parquet` + `emb.json`.
//! * `cellino eval linear|knn|chammi`: the linear-probe grid, kNN / exact 1-NN, and the CHAMMI
//!   tasks on embedding files; one result JSON (`macro_f1` and `accuracy` at `.test`, `.k.<k>`,
//!   `.tasks.<task>`), written atomically.
//! * `cellino train`: self-supervised pretraining from a dinov2-schema config with `key.sub=value`
//!   overrides; metrics.jsonl, checkpoints with exact `--resume`, and the exported teacher.
//! * `cellino convert`, `cellino inspect`: checkpoints and images; `inspect` also summarises a
//!   dataset (rows, channel sets, label counts, unreadable files).
//! * `cellino crop`: single-cell crops around the cells of an instance mask or a centroid CSV →
//!   one multi-page TIFF per cell + `manifest.csv` (for `cellino embed --input`).
//!
//! Every failure prints one line `error: ...` on stderr and exits with status 1; nothing is
//! written under an output name unless the command succeeded.

mod convert;
mod crop;
mod embed;
mod eval;
mod inspect;
mod labels;
mod log;
mod progress;
mod quickstart;
mod selftest;
mod synth;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cellino",
    version,
    about = "Self-supervised learning for multi-channel microscopy (Cell-DINO, Bag of Channels)",
    after_help = "Examples:\n  cellino quickstart --out quickstart --seed 0\n  \
cellino synth --out cells && cellino inspect cells/manifest.csv\n  \
cellino embed --model teacher_checkpoint.pth --arch vit_large --bag-of-channels --input cells/manifest.csv \
--output emb.npy\n\nEvery command's --help has its own example."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Embed a raw float32 (B, C, H, W) .npy batch, or a dataset (manifest, folder, dataset string) into
    /// emb.npy + emb.csv + emb.parquet + emb.json, with a DINOv2 / Cell-DINO backbone.
    Embed(embed::EmbedArgs),
    /// Evaluate embeddings: linear probe, kNN / 1-NN, CHAMMI tasks; one result JSON.
    Eval(eval::EvalArgs),
    /// Pretrain a (Bag-of-Channels) ViT with DINO + iBOT + KoLeo from a config with key.sub=value overrides.
    Train(train::TrainArgs),
    /// Convert a checkpoint to plain DINOv2 safetensors, or to the teacher_checkpoint key layout.
    Convert(convert::ConvertArgs),
    /// The main job: synthetic cells -> short Bag-of-Channels pretraining -> embeddings -> probe vs random weights.
    Quickstart(quickstart::QuickstartArgs),
    /// Op parity, a short training run and throughput on a device (cpu or cuda), in one table.
    Selftest(selftest::SelftestArgs),
    /// Write the synthetic multi-channel cell dataset (images + manifest.csv).
    Synth(synth::SynthArgs),
    /// Describe an image (shape, dtype, channel statistics), a checkpoint (layout, architecture) or a dataset
    /// (rows, channel sets, label counts, unreadable files).
    Inspect(inspect::InspectArgs),
    /// Cut single-cell crops around the cells of an instance mask or a centroid CSV (TIFFs + manifest.csv).
    Crop(crop::CropArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Embed(args) => embed::run(&args).map_err(|e| e.to_string()),
        Command::Eval(args) => eval::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Synth(args) => synth::run(&args),
        Command::Crop(args) => crop::run(&args),
        Command::Quickstart(args) => quickstart::run(&args),
        Command::Selftest(args) => selftest::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

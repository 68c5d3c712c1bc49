//! `cellino synth`: the synthetic multi-channel cell dataset (images + manifest), for trying the
//! pipeline without data and for tests and benchmarks.

use std::path::PathBuf;

use cellino_data::{SampleType, SynthConfig, write_synthetic_dataset_reporting};
use clap::Args;

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  cellino synth --out cells --channels 4 --classes 6 --images 600 --size 64\n  \
cellino inspect cells/manifest.csv")]
pub struct SynthArgs {
    /// Output folder (created); receives the images and manifest.csv (path, label, cell_line, split).
    #[arg(long)]
    out: PathBuf,
    /// Channels per image (1-8): nucleus, microtubules, ER, protein, then actin, golgi, lysosome, peroxisome.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=8))]
    channels: u64,
    /// Protein-localisation classes (1-6).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=6))]
    classes: u64,
    /// Number of single-cell crops.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    images: u64,
    /// Crop height and width in pixels.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(16..=2048))]
    size: u64,
    /// 8 or 16 bits per sample.
    #[arg(long, default_value_t = 8)]
    bits: u8,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

pub fn run(args: &SynthArgs) -> Result<(), String> {
    let sample_type = match args.bits {
        8 => SampleType::U8,
        16 => SampleType::U16,
        other => return Err(format!("--bits {other}: use 8 or 16")),
    };
    let config = SynthConfig {
        seed: args.seed,
        num_images: args.images as usize,
        size: args.size as usize,
        channels: args.channels as usize,
        classes: args.classes as usize,
        sample_type,
        ..SynthConfig::default()
    };
    let pb = crate::progress::bar(config.num_images, "images", "synthetic cells");
    let manifest = write_synthetic_dataset_reporting(&args.out, &config, &mut crate::progress::reporter(&pb))
        .map_err(|e| e.to_string())?;
    pb.finish_and_clear();
    crate::info!(
        "wrote {} crops of {}x{}x{} ({} classes) and {}",
        args.images,
        args.channels,
        args.size,
        args.size,
        args.classes,
        manifest.display()
    );
    Ok(())
}

//! `cellino embed`: two modes, chosen by `--input`.
//!
//! * **Raw batch** (`--input x.npy`): a float32 `(B, C, H, W)` array in, one `.npy` of features
//!   out, exactly as the first contract (issue 2 point 6) describes.
//! * **Dataset** (`--input` a manifest CSV, a folder or a dinov2 dataset string such as
//!   `CHAMMI_HPA:split=TRAIN:root=/data/chammi`): `cellino_eval::extract_features` over the
//!   dataset, then `write_embeddings`: `emb.npy` (float32 `(N, D)`, manifest order), `emb.csv`
//!   and `emb.parquet` (one row per feature row: source path, manifest line, metadata columns,
//!   label) and `emb.json` (checkpoint hash, architecture, channels, transform, feature layout).

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use cellino_data::{ChannelRef, ChannelTiling, Dataset, EvalTransform, ManifestOptions, open_dataset};
use cellino_eval::{ExtractConfig, ModelSource, Progress, extract_features, write_embeddings};
use cellino_vit::{Arch, DinoVisionTransformer, FeatureKind, PosEmbedInterpolation, embed_batch};
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;

use cellino_data::write_atomically;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Features {
    /// Final-norm CLS token: (B, D); (B, C·D) with --bag-of-channels.
    Cls,
    /// Final-norm patch tokens: (B, N, D); (B, C, N, D) with --bag-of-channels.
    Patch,
    /// Mean of the final-norm patch tokens: (B, D); (B, C·D) with --bag-of-channels.
    Avgpool,
    /// Final-norm register tokens: (B, R, D); (B, C, R, D) with --bag-of-channels.
    Reg,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Preprocess {
    /// The input is given to the model as it is.
    None,
}

#[derive(Debug, Args)]
#[command(after_long_help = EMBED_HELP)]
pub struct EmbedArgs {
    /// Checkpoint: .safetensors, sharded *.safetensors.index.json, or PyTorch .pth (incl. teacher_checkpoint.pth).
    #[arg(long)]
    model: PathBuf,
    /// Architecture name: vit_small, vit_base, vit_large or vit_giant2 (gives the head count).
    #[arg(long)]
    arch: Option<String>,
    /// Head count, for models whose width matches no named architecture.
    #[arg(long)]
    num_heads: Option<usize>,
    /// A float32 .npy of shape (B, C, H, W) (raw batch mode), or a manifest CSV, an image folder or a
    /// dinov2 dataset string such as CHAMMI_HPA:split=TRAIN:root=/data/chammi (dataset mode).
    #[arg(long)]
    input: String,
    /// Preprocessing applied to the input (raw batch mode).
    #[arg(long, value_enum, default_value = "none")]
    preprocess: Preprocess,
    /// Output .npy (float32); written atomically. Dataset mode also writes <stem>.csv, <stem>.parquet and
    /// <stem>.json next to it.
    #[arg(long)]
    output: PathBuf,
    /// Which tokens to output (raw batch mode; dataset mode uses --n-last-blocks / --avgpool).
    #[arg(long, value_enum, default_value = "cls")]
    features: Features,
    /// Apply a 1-channel model to every channel and concatenate per-channel features in channel order.
    #[arg(long)]
    bag_of_channels: bool,
    /// Offset added to the target grid in pos-embed interpolation (0.1: Cell-DINO / DINOv2; 0: size-based).
    #[arg(long, default_value_t = 0.1)]
    interpolate_offset: f64,
    /// Antialiased bicubic pos-embed interpolation (the *_reg models use it with offset 0).
    #[arg(long)]
    interpolate_antialias: bool,
    /// Images per forward pass.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Dataset mode: CLS tokens of the last N blocks, oldest first [default: 1].
    #[arg(long, value_name = "N")]
    n_last_blocks: Option<usize>,
    /// Dataset mode: append the last block's patch-token average.
    #[arg(long)]
    avgpool: bool,
    /// Dataset mode: centre-crop size in pixels (zero padding when the image is smaller) [default: 224].
    #[arg(long, value_name = "S")]
    crop_size: Option<usize>,
    /// Dataset mode: resize the shorter side to R first (bicubic); 0 = no resize [default: 0].
    #[arg(long, value_name = "R")]
    resize_size: Option<usize>,
    /// Dataset mode: keep only these channels (names or 0-based indices, comma-separated), in this order.
    #[arg(long, value_delimiter = ',', value_name = "NAME,NAME")]
    channels: Option<Vec<String>>,
    /// Dataset mode: divide every feature row by its L2 norm (kNN features).
    #[arg(long)]
    l2_normalize: bool,
    /// Dataset mode: image-loading threads; 0 = all cores [default: 0].
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
    /// Dataset mode, manifest CSV: the image files hold the channels side by side along the width:
    /// `square` (H x H channels, CHAMMI PNGs) or a channel count (CHAMMI WTC TIFFs: 3).
    #[arg(long, value_name = "square|N")]
    tiling: Option<String>,
    /// Dataset mode, manifest CSV: folder that relative image paths start from [default: the manifest's folder].
    #[arg(long, value_name = "DIR")]
    manifest_root: Option<PathBuf>,
}

const EMBED_HELP: &str = "\
Examples:
  cellino embed --model teacher_checkpoint.pth --arch vit_large --bag-of-channels \\
      --input cells/manifest.csv --output emb.npy
  cellino embed --model model.safetensors --arch vit_small --input batch.npy --preprocess none --output cls.npy

Modes:
  --input x.npy        raw batch: float32 (B, C, H, W) in, features out (--features cls|patch|avgpool|reg);
                       writes only --output.
  --input <dataset>    a manifest CSV, an image folder or a dinov2 dataset string: feature extraction as in
                       the Cell-DINO protocol (CLS of the last --n-last-blocks blocks [+ --avgpool], Bag of
                       Channels in channel order, optional --l2-normalize), rows in dataset order. Writes
                       emb.npy (float32 (N, D)), emb.csv and emb.parquet (row_index, source_path,
                       manifest_line, metadata columns, label, label_name) and emb.json (checkpoint SHA-256, architecture, channel
                       names, transform, feature layout), all atomically. Progress goes to stderr.

CHAMMI: to embed every split of a subset into one file for `cellino eval chammi`, give its
enriched_meta.csv as a manifest with the CHAMMI root and tiling:
  cellino embed --model boc.pth --arch vit_large --bag-of-channels --input /data/chammi/HPA/enriched_meta.csv \\
      --manifest-root /data/chammi --tiling square --output hpa.npy";

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{0}")]
    Model(#[from] cellino_vit::VitError),
    #[error("cannot read --input {path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("cannot write --output {path}: {reason}")]
    Output { path: PathBuf, reason: String },
    #[error("give --arch (vit_small, vit_base, vit_large, vit_giant2) or --num-heads")]
    NoArch,
    #[error("{0}")]
    Data(#[from] cellino_data::DataError),
    #[error("{0}")]
    Eval(#[from] cellino_eval::EvalError),
    #[error("{0}")]
    Usage(String),
}

/// `--input` ending in `.npy` (any case) selects the raw batch mode.
fn is_raw_batch(input: &str) -> bool {
    Path::new(input).extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
}

pub fn run(args: &EmbedArgs) -> Result<(), EmbedError> {
    let arch = args.arch.as_deref().map(Arch::from_name).transpose()?;
    if arch.is_none() && args.num_heads.is_none() {
        return Err(EmbedError::NoArch);
    }
    if is_raw_batch(&args.input) { run_raw(args, arch) } else { run_dataset(args, arch) }
}

/// The raw batch mode, unchanged from the first contract.
fn run_raw(args: &EmbedArgs, arch: Option<Arch>) -> Result<(), EmbedError> {
    let dataset_flags = [
        ("--n-last-blocks", args.n_last_blocks.is_some()),
        ("--avgpool", args.avgpool),
        ("--crop-size", args.crop_size.is_some()),
        ("--resize-size", args.resize_size.is_some()),
        ("--channels", args.channels.is_some()),
        ("--l2-normalize", args.l2_normalize),
        ("--threads", args.threads.is_some()),
        ("--tiling", args.tiling.is_some()),
        ("--manifest-root", args.manifest_root.is_some()),
    ];
    if let Some((flag, _)) = dataset_flags.iter().find(|(_, set)| *set) {
        return Err(EmbedError::Usage(format!(
            "{flag} applies to dataset inputs (manifest, folder, dataset string), not to a raw .npy batch"
        )));
    }
    let input = PathBuf::from(&args.input);
    let input_error = |reason: String| EmbedError::Input { path: input.clone(), reason };
    let x = Tensor::read_npy(&input).map_err(|e| input_error(e.to_string()))?;
    if x.dtype() != candle_core::DType::F32 {
        return Err(input_error(format!("expected float32, found {:?}", x.dtype())));
    }
    let interpolation =
        PosEmbedInterpolation { offset: args.interpolate_offset, antialias: args.interpolate_antialias };
    let model = DinoVisionTransformer::load(&args.model, arch, args.num_heads, interpolation)?;
    let kind = match args.features {
        Features::Cls => FeatureKind::Cls,
        Features::Patch => FeatureKind::Patch,
        Features::Avgpool => FeatureKind::AvgPool,
        Features::Reg => FeatureKind::Reg,
    };
    let out = embed_batch(&model, &x, kind, args.bag_of_channels, args.batch_size)?;
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| EmbedError::Output { path: args.output.clone(), reason: e.to_string() })?;
    }
    write_atomically(&args.output, |tmp| out.write_npy(tmp))
        .map_err(|e| EmbedError::Output { path: args.output.clone(), reason: e.to_string() })?;
    crate::info!("wrote {}: float32 {:?} (embed dim {})", args.output.display(), out.dims(), model.config().embed_dim);
    Ok(())
}

fn parse_tiling(s: &str) -> Result<ChannelTiling, EmbedError> {
    if s.eq_ignore_ascii_case("square") {
        return Ok(ChannelTiling::Square);
    }
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(ChannelTiling::Count(n)),
        _ => Err(EmbedError::Usage(format!("--tiling {s:?}: expected `square` or a channel count"))),
    }
}

/// Opens `--input` as a dataset: dataset string, folder, or manifest (with `--tiling` / `--manifest-root`).
fn open_input(args: &EmbedArgs) -> Result<Dataset, EmbedError> {
    let manifest_flags = args.tiling.is_some() || args.manifest_root.is_some();
    let path = Path::new(&args.input);
    let dataset = if manifest_flags {
        if !path.is_file() {
            return Err(EmbedError::Usage(format!(
                "--tiling / --manifest-root need --input to be a manifest CSV file; {} is not a file",
                args.input
            )));
        }
        let options = ManifestOptions {
            tiling: args.tiling.as_deref().map(parse_tiling).transpose()?,
            root: args.manifest_root.clone(),
            ..ManifestOptions::default()
        };
        Dataset::from_manifest(path, &options)?
    } else {
        let opened = open_dataset(&args.input)?;
        if opened.separate_channels {
            return Err(EmbedError::Usage(
                "wildcard=SEPARATE_CHANNELS makes one sample per channel; use --bag-of-channels instead, \
                 which embeds every channel and concatenates them in channel order"
                    .into(),
            ));
        }
        opened.dataset
    };
    Ok(match &args.channels {
        Some(names) => {
            let refs: Vec<ChannelRef> = names
                .iter()
                .map(|n| n.parse::<ChannelRef>())
                .collect::<Result<_, _>>()
                .map_err(|e| EmbedError::Usage(format!("--channels: {e}")))?;
            if refs.is_empty() {
                return Err(EmbedError::Usage("--channels: no channel given".into()));
            }
            dataset.select_channels(refs)
        }
        None => dataset,
    })
}

fn progress_bar(total: usize) -> ProgressBar {
    crate::progress::bar(total, "images", "embedding")
}

/// The dataset mode: extract features and write emb.npy / emb.csv / emb.parquet / emb.json.
fn run_dataset(args: &EmbedArgs, arch: Option<Arch>) -> Result<(), EmbedError> {
    if !matches!(args.features, Features::Cls) {
        return Err(EmbedError::Usage(
            "--features applies to raw .npy batches; for datasets use --n-last-blocks and --avgpool".into(),
        ));
    }
    if args.output.extension().and_then(|e| e.to_str()) != Some("npy") {
        return Err(EmbedError::Output {
            path: args.output.clone(),
            reason: "must end in .npy (the .csv, .parquet and .json are written next to it)".into(),
        });
    }
    let dataset = open_input(args)?;
    if dataset.is_empty() {
        return Err(EmbedError::Input { path: PathBuf::from(&args.input), reason: "the dataset has no images".into() });
    }
    let interpolation =
        PosEmbedInterpolation { offset: args.interpolate_offset, antialias: args.interpolate_antialias };
    let model = DinoVisionTransformer::load(&args.model, arch, args.num_heads, interpolation)?;
    let config = ExtractConfig {
        n_last_blocks: args.n_last_blocks.unwrap_or(1),
        avgpool: args.avgpool,
        bag_of_channels: args.bag_of_channels,
        l2_normalize: args.l2_normalize,
        transform: EvalTransform::center(args.crop_size.unwrap_or(224), args.resize_size.unwrap_or(0)),
        batch_size: args.batch_size,
        num_threads: args.threads.unwrap_or(0),
    };
    let bar = progress_bar(dataset.len());
    let mut report = |p: Progress| bar.set_position(p.done as u64);
    let extracted = extract_features(&model, &dataset, &config, Some(&mut report));
    bar.finish_and_clear();
    let extracted = extracted?;
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| EmbedError::Output { path: args.output.clone(), reason: e.to_string() })?;
    }
    let source = ModelSource { checkpoint: Some(&args.model), arch };
    let sidecar = write_embeddings(&args.output, &extracted, model.config(), source)?;
    crate::info!(
        "wrote {} (float32 [{}, {}]) with {}, {} and {}",
        args.output.display(),
        sidecar.n_rows,
        sidecar.dim,
        sidecar.metadata_file,
        sidecar.metadata_parquet_file.as_deref().unwrap_or_default(),
        args.output.with_extension("json").file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    );
    Ok(())
}

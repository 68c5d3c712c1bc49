//! `cellino embed`: raw tensors in, features out (the contract later checks rely on).

use std::path::PathBuf;

use candle_core::Tensor;
use cellino_vit::{Arch, DinoVisionTransformer, FeatureKind, PosEmbedInterpolation, embed_batch};
use clap::{Args, ValueEnum};

use crate::atomic_write::write_atomically;

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
    /// float32 .npy of shape (B, C, H, W).
    #[arg(long)]
    input: PathBuf,
    /// Preprocessing applied to the input.
    #[arg(long, value_enum, default_value = "none")]
    preprocess: Preprocess,
    /// Output .npy (float32); written atomically.
    #[arg(long)]
    output: PathBuf,
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
}

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
}

pub fn run(args: &EmbedArgs) -> Result<(), EmbedError> {
    let arch = args.arch.as_deref().map(Arch::from_name).transpose()?;
    if arch.is_none() && args.num_heads.is_none() {
        return Err(EmbedError::NoArch);
    }
    let input_error = |reason: String| EmbedError::Input { path: args.input.clone(), reason };
    let x = Tensor::read_npy(&args.input).map_err(|e| input_error(e.to_string()))?;
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
    eprintln!("wrote {}: float32 {:?} (embed dim {})", args.output.display(), out.dims(), model.config().embed_dim);
    Ok(())
}

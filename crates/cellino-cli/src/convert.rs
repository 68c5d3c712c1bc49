//! `cellino convert`: any supported checkpoint to one plain safetensors file with DINOv2 key names,
//! or to the `teacher_checkpoint` key layout (`backbone.` prefix, optional block chunks).

use std::collections::HashMap;
use std::path::PathBuf;

use cellino_vit::{DinoVisionTransformer, PosEmbedInterpolation, load_state_dict};
use clap::{Args, ValueEnum};

use cellino_data::write_atomically;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Layout {
    /// Backbone keys as the DINOv2 hub loads them: `blocks.<i>.*`, no prefix.
    Plain,
    /// Keys of a dinov2 `teacher_checkpoint.pth` state dict: `backbone.blocks[.<chunk>].<i>.*`.
    Teacher,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  cellino convert teacher_checkpoint.pth backbone.safetensors\n  \
cellino convert backbone.safetensors teacher.safetensors --layout teacher --block-chunks 4")]
pub struct ConvertArgs {
    /// Input checkpoint (.safetensors, *.safetensors.index.json, .pth).
    input: PathBuf,
    /// Output .safetensors file (written atomically).
    output: PathBuf,
    #[arg(long, value_enum, default_value = "plain")]
    layout: Layout,
    /// With --layout teacher: number of block chunks (4 in all Cell-DINO configs; 0 = flat).
    #[arg(long, default_value_t = 0)]
    block_chunks: usize,
}

pub fn run(args: &ConvertArgs) -> Result<(), String> {
    let sd = load_state_dict(&args.input).map_err(|e| e.to_string())?;
    // Building the model checks every key and shape; the head count does not change the key set.
    let config =
        cellino_vit::infer_config(&sd, None, Some(1), PosEmbedInterpolation::DINOV2).map_err(|e| e.to_string())?;
    let depth = config.depth;
    let model = DinoVisionTransformer::from_state_dict(config, &sd).map_err(|e| e.to_string())?;
    let chunks = args.block_chunks;
    if chunks > 0 && (depth % chunks != 0 || matches!(args.layout, Layout::Plain)) {
        return Err(format!("--block-chunks {chunks} needs --layout teacher and must divide the depth {depth}"));
    }
    let tensors: HashMap<String, candle_core::Tensor> = model
        .state_dict()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(k, t)| {
            let k = match args.layout {
                Layout::Plain => k,
                Layout::Teacher => format!("backbone.{}", chunk_key(&k, depth, chunks)),
            };
            (k, t)
        })
        .collect();
    write_atomically(&args.output, |tmp| candle_core::safetensors::save(&tensors, tmp))
        .map_err(|e| format!("cannot write {}: {e}", args.output.display()))?;
    if !sd.head_keys.is_empty() {
        crate::warn!("note: {} head tensors (dino_head / ibot_head) were not copied", sd.head_keys.len());
    }
    crate::info!("wrote {} ({} tensors, layout {:?})", args.output.display(), tensors.len(), args.layout);
    Ok(())
}

/// `blocks.<i>.rest` → `blocks.<i / (depth / chunks)>.<i>.rest` (dinov2's BlockChunk naming).
fn chunk_key(key: &str, depth: usize, chunks: usize) -> String {
    if chunks == 0 {
        return key.to_string();
    }
    let Some(rest) = key.strip_prefix("blocks.") else { return key.to_string() };
    let Some((index, tail)) = rest.split_once('.') else { return key.to_string() };
    match index.parse::<usize>() {
        Ok(i) => format!("blocks.{}.{i}.{tail}", i / (depth / chunks)),
        Err(_) => key.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_key;

    #[test]
    fn chunked_names_follow_dinov2() {
        // ViT-L: 24 blocks in 4 chunks of 6.
        assert_eq!(chunk_key("blocks.13.attn.qkv.weight", 24, 4), "blocks.2.13.attn.qkv.weight");
        assert_eq!(chunk_key("norm.weight", 24, 4), "norm.weight");
        assert_eq!(chunk_key("blocks.5.ls1.gamma", 24, 0), "blocks.5.ls1.gamma");
    }
}

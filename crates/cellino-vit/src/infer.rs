//! Reading the architecture off a state dict: patch size, channels, width, depth, registers,
//! position grid, feed-forward type and optional biases / LayerScale all show in tensor shapes.
//! Only the head count cannot, so it comes from the architecture name or the caller.

use crate::checkpoint::StateDict;
use crate::config::{Arch, FfnKind, PosEmbedInterpolation, VitConfig};
use crate::error::{Result, VitError};

fn dims(sd: &StateDict, key: &str) -> Result<Vec<usize>> {
    sd.get(key)
        .map(|t| t.dims().to_vec())
        .ok_or_else(|| VitError::Architecture(format!("{} has no `{key}`", sd.source.display())))
}

/// Infer the configuration of the backbone stored in `sd`. `arch` gives the head count (and is
/// checked against the width); `num_heads` overrides it for non-standard models.
pub fn infer_config(
    sd: &StateDict,
    arch: Option<Arch>,
    num_heads: Option<usize>,
    interpolation: PosEmbedInterpolation,
) -> Result<VitConfig> {
    let patch = dims(sd, "patch_embed.proj.weight")?;
    let [embed_dim, in_chans, ph, pw] = patch[..] else {
        return Err(VitError::Architecture(format!(
            "patch_embed.proj.weight has shape {patch:?}, expected [D, C, p, p]"
        )));
    };
    if ph != pw {
        return Err(VitError::Architecture(format!("non-square patches {ph}x{pw} are not supported")));
    }
    if let Some(arch) = arch {
        let (arch_dim, _, _) = arch.dims();
        if arch_dim != embed_dim {
            return Err(VitError::Architecture(format!(
                "{} has embed dim {arch_dim} but the checkpoint's is {embed_dim}; pick the matching architecture",
                arch.name()
            )));
        }
    }
    let num_heads = num_heads.or(arch.map(|a| a.dims().2)).ok_or_else(|| {
        VitError::Architecture(
            "the head count is not stored in weights: give an architecture name or a head count".into(),
        )
    })?;

    let pos = dims(sd, "pos_embed")?;
    let tokens = match pos[..] {
        [1, n, d] if d == embed_dim && n >= 2 => n - 1,
        _ => {
            return Err(VitError::Architecture(format!(
                "pos_embed has shape {pos:?}, expected [1, 1 + M*M, {embed_dim}]"
            )));
        }
    };
    let pos_grid = (tokens as f64).sqrt().round() as usize;
    if pos_grid * pos_grid != tokens {
        return Err(VitError::Architecture(format!("pos_embed holds {tokens} patch positions, not a square grid")));
    }

    let block_ids: std::collections::BTreeSet<usize> =
        sd.tensors.keys().filter_map(|k| k.strip_prefix("blocks.")?.split('.').next()?.parse().ok()).collect();
    let depth = block_ids.len();
    if depth == 0 || block_ids.iter().next_back() != Some(&(depth - 1)) {
        return Err(VitError::Architecture(format!("block indices {block_ids:?} are not 0..depth")));
    }

    let (ffn, ffn_hidden, ffn_bias) = if sd.get("blocks.0.mlp.w12.weight").is_some() {
        let w12 = dims(sd, "blocks.0.mlp.w12.weight")?;
        (FfnKind::SwiGlu, w12[0] / 2, sd.get("blocks.0.mlp.w12.bias").is_some())
    } else {
        let fc1 = dims(sd, "blocks.0.mlp.fc1.weight")?;
        (FfnKind::Mlp, fc1[0], sd.get("blocks.0.mlp.fc1.bias").is_some())
    };
    let num_register_tokens = match sd.get("register_tokens") {
        Some(t) => t.dims().get(1).copied().unwrap_or(0),
        None => 0,
    };
    let config = VitConfig {
        embed_dim,
        depth,
        num_heads,
        ffn,
        ffn_hidden,
        patch_size: ph,
        in_chans,
        num_register_tokens,
        pos_grid,
        qkv_bias: sd.get("blocks.0.attn.qkv.bias").is_some(),
        proj_bias: sd.get("blocks.0.attn.proj.bias").is_some(),
        ffn_bias,
        layerscale: sd.get("blocks.0.ls1.gamma").is_some(),
        interpolation,
        drop_path_rate: 0.0,
    };
    config.validate()?;
    Ok(config)
}

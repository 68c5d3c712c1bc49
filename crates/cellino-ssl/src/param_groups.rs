//! Parameter groups (`dinov2/utils/param_groups.py`): layer-wise lr decay, patch-embed lr
//! multiplier, no weight decay for biases / norms / LayerScale, last-layer flag.

/// Multipliers of one parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParamGroup {
    pub lr_mult: f64,
    pub wd_mult: f64,
    pub is_last_layer: bool,
}

/// The group of a backbone parameter `name` (dinov2 name, `blocks.<i>.*` or `blocks.<chunk>.<i>.*`,
/// wrappers `_fsdp_wrapped_module.` stripped) in a backbone of `depth` blocks.
pub fn backbone_group(name: &str, depth: usize, layerwise_decay: f64, patch_embed_lr_mult: f64) -> ParamGroup {
    let name = name.replace("_fsdp_wrapped_module.", "");
    let layer_id = backbone_layer_id(&name, depth);
    let mut lr_mult = layerwise_decay.powi((depth + 1 - layer_id) as i32);
    if name.contains("patch_embed") {
        lr_mult *= patch_embed_lr_mult;
    }
    ParamGroup { lr_mult, wd_mult: wd_mult(&name), is_last_layer: name.contains("last_layer") }
}

/// The group of a head parameter: multiplier 1 (no blocks), decay rules as for the backbone.
pub fn head_group(name: &str) -> ParamGroup {
    let name = name.replace("_fsdp_wrapped_module.", "");
    ParamGroup { lr_mult: 1.0, wd_mult: wd_mult(&name), is_last_layer: name.contains("last_layer") }
}

fn wd_mult(name: &str) -> f64 {
    if name.ends_with(".bias") || name.contains("norm") || name.contains("gamma") { 0.0 } else { 1.0 }
}

/// 0 for the embeddings and tokens, `i + 1` for block i (global index), `depth + 1` otherwise.
pub fn backbone_layer_id(name: &str, depth: usize) -> usize {
    let first = name.split('.').next().unwrap_or("");
    if matches!(first, "pos_embed" | "patch_embed" | "mask_token" | "cls_token" | "register_tokens") {
        return 0;
    }
    if let Some(rest) = name.strip_prefix("blocks.") {
        let parts: Vec<&str> = rest.split('.').collect();
        // Chunked `blocks.<chunk>.<i>.x` holds the global index second; flat `blocks.<i>.x` first.
        let idx = match (parts.first().and_then(|s| s.parse::<usize>().ok()), parts.get(1)) {
            (Some(_), Some(second)) if second.parse::<usize>().is_ok() => second.parse::<usize>().ok(),
            (Some(first), _) => Some(first),
            _ => None,
        };
        if let Some(i) = idx {
            return (i + 1).min(depth + 1);
        }
    }
    depth + 1
}

//! The state-dict keys and shapes a configuration implies (DINOv2 names, flat blocks).

use std::collections::BTreeMap;

use crate::config::{FfnKind, VitConfig};

/// Expected `key → shape` for a backbone with this configuration.
pub fn expected_shapes(cfg: &VitConfig) -> BTreeMap<String, Vec<usize>> {
    let d = cfg.embed_dim;
    let mut m = BTreeMap::new();
    let mut put = |k: String, s: Vec<usize>| {
        m.insert(k, s);
    };
    put("cls_token".into(), vec![1, 1, d]);
    put("pos_embed".into(), vec![1, 1 + cfg.pos_grid * cfg.pos_grid, d]);
    put("mask_token".into(), vec![1, d]);
    if cfg.num_register_tokens > 0 {
        put("register_tokens".into(), vec![1, cfg.num_register_tokens, d]);
    }
    put("patch_embed.proj.weight".into(), vec![d, cfg.in_chans, cfg.patch_size, cfg.patch_size]);
    put("patch_embed.proj.bias".into(), vec![d]);
    for i in 0..cfg.depth {
        let p = |s: &str| format!("blocks.{i}.{s}");
        for norm in ["norm1", "norm2"] {
            put(p(&format!("{norm}.weight")), vec![d]);
            put(p(&format!("{norm}.bias")), vec![d]);
        }
        put(p("attn.qkv.weight"), vec![3 * d, d]);
        if cfg.qkv_bias {
            put(p("attn.qkv.bias"), vec![3 * d]);
        }
        put(p("attn.proj.weight"), vec![d, d]);
        if cfg.proj_bias {
            put(p("attn.proj.bias"), vec![d]);
        }
        let h = cfg.ffn_hidden;
        let (up, up_out, down) = match cfg.ffn {
            FfnKind::Mlp => ("mlp.fc1", h, "mlp.fc2"),
            FfnKind::SwiGlu => ("mlp.w12", 2 * h, "mlp.w3"),
        };
        put(p(&format!("{up}.weight")), vec![up_out, d]);
        put(p(&format!("{down}.weight")), vec![d, h]);
        if cfg.ffn_bias {
            put(p(&format!("{up}.bias")), vec![up_out]);
            put(p(&format!("{down}.bias")), vec![d]);
        }
        if cfg.layerscale {
            put(p("ls1.gamma"), vec![d]);
            put(p("ls2.gamma"), vec![d]);
        }
    }
    put("norm.weight".into(), vec![d]);
    put("norm.bias".into(), vec![d]);
    m
}

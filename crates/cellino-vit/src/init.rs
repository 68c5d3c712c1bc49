//! Seeded random initialisation following DINOv2's `init_weights` (candle's CPU RNG cannot be seeded).

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::checkpoint::StateDict;
use crate::config::VitConfig;
use crate::error::Result;
use crate::keys::expected_shapes;

/// Normal(0, std) truncated at ±2 absolute, like torch's `trunc_normal_(std=0.02)` (which for small
/// std is effectively untruncated).
fn trunc_normal(rng: &mut StdRng, n: usize, std: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            loop {
                let v: f32 = StandardNormal.sample(rng);
                let v = v * std;
                if v.abs() <= 2.0 {
                    break v;
                }
            }
        })
        .collect()
}

/// A random backbone state dict: `pos_embed` trunc-normal 0.02, CLS and registers normal 1e-6,
/// mask token 0, Linear weights trunc-normal 0.02 with zero bias, patch embedding U(±1/√(C·p²))
/// (torch's Conv2d default), LayerNorm 1/0, LayerScale `layerscale_init`.
pub fn random_state_dict(config: &VitConfig, layerscale_init: f32, seed: u64, device: &Device) -> Result<StateDict> {
    let mut rng = StdRng::seed_from_u64(seed);
    let fan_in = (config.in_chans * config.patch_size * config.patch_size) as f32;
    let bound = 1.0 / fan_in.sqrt();
    let mut tensors = BTreeMap::new();
    for (key, shape) in expected_shapes(config) {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = if key == "pos_embed" {
            trunc_normal(&mut rng, n, 0.02)
        } else if key == "cls_token" || key == "register_tokens" {
            trunc_normal(&mut rng, n, 1e-6)
        } else if key == "mask_token" {
            vec![0.0; n]
        } else if key.starts_with("patch_embed.") {
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        } else if key.ends_with("gamma") {
            vec![layerscale_init; n]
        } else if key.contains("norm") {
            vec![if key.ends_with(".weight") { 1.0 } else { 0.0 }; n]
        } else if key.ends_with(".weight") {
            trunc_normal(&mut rng, n, 0.02)
        } else {
            vec![0.0; n]
        };
        tensors.insert(key, Tensor::from_vec(values, shape, device)?);
    }
    Ok(StateDict {
        tensors,
        source: PathBuf::from(format!("<random init, seed {seed}>")),
        head_keys: vec![],
        layout: "random initialisation".into(),
    })
}

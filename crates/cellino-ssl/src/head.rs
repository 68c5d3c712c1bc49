//! The DINO projection head (`dinov2/layers/dino_head.py`).

use std::collections::BTreeMap;

use candle_core::{D, DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Result, SslError};

/// Shape of a [`DinoHead`]: `in_dim → hidden (× nlayers−1, GELU) → bottleneck → L2 → K prototypes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadConfig {
    pub in_dim: usize,
    pub hidden_dim: usize,
    pub bottleneck_dim: usize,
    pub n_prototypes: usize,
    pub nlayers: usize,
}

impl HeadConfig {
    /// Parameter names (as in dinov2, without the `dino_head.` prefix) and shapes.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut dims = vec![self.in_dim];
        for _ in 1..self.nlayers.max(1) {
            dims.push(self.hidden_dim);
        }
        dims.push(self.bottleneck_dim);
        let mut out = vec![];
        for (i, w) in dims.windows(2).enumerate() {
            // nn.Sequential(Linear, GELU, Linear, GELU, Linear): linear i sits at index 2i.
            out.push((format!("mlp.{}.weight", 2 * i), vec![w[1], w[0]]));
            out.push((format!("mlp.{}.bias", 2 * i), vec![w[1]]));
        }
        out.push(("last_layer.weight_g".into(), vec![self.n_prototypes, 1]));
        out.push(("last_layer.weight_v".into(), vec![self.n_prototypes, self.bottleneck_dim]));
        out
    }
}

/// Random head weights with torch's rules: MLP weights trunc-normal(0.02) within ±2, biases 0,
/// `weight_v` torch's default Linear init U(±1/√bottleneck), `weight_g` 1.
pub fn random_head_weights(cfg: &HeadConfig, seed: u64, device: &Device) -> Result<BTreeMap<String, Tensor>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = BTreeMap::new();
    for (name, shape) in cfg.shapes() {
        let n: usize = shape.iter().product();
        let data: Vec<f32> = if name.ends_with(".bias") {
            vec![0.0; n]
        } else if name == "last_layer.weight_g" {
            vec![1.0; n]
        } else if name == "last_layer.weight_v" {
            let bound = 1.0 / (cfg.bottleneck_dim as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        } else {
            (0..n)
                .map(|_| {
                    loop {
                        let v: f32 = StandardNormal.sample(&mut rng);
                        let v = v * 0.02;
                        if v.abs() <= 2.0 {
                            break v;
                        }
                    }
                })
                .collect()
        };
        out.insert(name, Tensor::from_vec(data, shape, device)?);
    }
    Ok(out)
}

/// The DINO head over tensors (pass `Var`-backed tensors to train it, plain ones for the teacher).
#[derive(Debug, Clone)]
pub struct DinoHead {
    pub config: HeadConfig,
    /// (weight (out, in), bias (out,)) per MLP layer.
    layers: Vec<(Tensor, Tensor)>,
    weight_g: Tensor,
    weight_v: Tensor,
}

impl DinoHead {
    /// Build from the names of [`HeadConfig::shapes`]; every key must be present with its shape.
    pub fn from_tensors(config: HeadConfig, tensors: &BTreeMap<String, Tensor>) -> Result<Self> {
        let get = |k: &str, shape: &[usize]| -> Result<Tensor> {
            let t = tensors.get(k).ok_or_else(|| SslError::Invalid(format!("DINO head: missing tensor `{k}`")))?;
            if t.dims() != shape {
                return Err(SslError::Invalid(format!(
                    "DINO head: `{k}` has shape {:?}, expected {shape:?}",
                    t.dims()
                )));
            }
            Ok(t.clone())
        };
        let shapes = config.shapes();
        let mut layers = vec![];
        let n_linear = (shapes.len() - 2) / 2;
        for i in 0..n_linear {
            let (wn, ws) = &shapes[2 * i];
            let (bn, bs) = &shapes[2 * i + 1];
            layers.push((get(wn, ws)?, get(bn, bs)?));
        }
        let weight_g = get("last_layer.weight_g", &[config.n_prototypes, 1])?;
        let weight_v = get("last_layer.weight_v", &[config.n_prototypes, config.bottleneck_dim])?;
        Ok(Self { config, layers, weight_g, weight_v })
    }

    /// `(N, in_dim)` → `(N, K)` logits (before any temperature).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (i, (w, b)) in self.layers.iter().enumerate() {
            h = cellino_kernels::linear(&h, w, Some(b))?;
            if i < last {
                h = cellino_kernels::gelu_erf(&h)?;
            }
        }
        let eps = if h.dtype() == DType::F16 { 1e-6 } else { 1e-12 };
        let h = cellino_kernels::l2_normalize(&h, eps)?;
        Ok(cellino_kernels::linear(&h, &self.last_layer_weight()?, None)?)
    }

    /// The weight-normalised prototype matrix `g · v / ‖v‖` (row-wise), (K, bottleneck).
    pub fn last_layer_weight(&self) -> Result<Tensor> {
        let norm = self.weight_v.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
        Ok(self.weight_v.broadcast_div(&norm)?.broadcast_mul(&self.weight_g)?)
    }
}

/// Wrap every tensor of a map as a trainable `Var` (copied, so the input is left untouched).
pub fn to_vars(tensors: &BTreeMap<String, Tensor>) -> Result<BTreeMap<String, Var>> {
    tensors.iter().map(|(k, t)| Ok((k.clone(), Var::from_tensor(&t.copy()?)?))).collect()
}

//! One pre-norm transformer block: `x += ls1(attn(norm1(x))); x += ls2(ffn(norm2(x)))`.

use candle_core::{D, Tensor};
use rand::rngs::StdRng;
use rand::seq::index::sample;

use crate::config::FfnKind;
use crate::error::Result;
use crate::layers::{Grad, LayerNorm, Linear, softmax_last_dim};

#[derive(Debug, Clone)]
pub struct Attention {
    pub qkv: Linear,
    pub proj: Linear,
    pub num_heads: usize,
}

impl Attention {
    pub fn forward(&self, x: &Tensor, grad: Grad) -> Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let hd = d / self.num_heads;
        // (B, N, 3D) → 3 × (B, heads, N, hd); head h owns features [h·hd, (h+1)·hd) of q, k and v.
        let qkv = self.qkv.forward(x)?.reshape((b, n, 3, self.num_heads, hd))?.permute((2, 0, 3, 1, 4))?;
        let scale = (hd as f64).powf(-0.5);
        let q = (qkv.get(0)? * scale)?.contiguous()?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let attn = softmax_last_dim(&q.matmul(&k.t()?)?, grad)?;
        let out = attn.matmul(&v)?.transpose(1, 2)?.reshape((b, n, d))?;
        self.proj.forward(&out)
    }
}

#[derive(Debug, Clone)]
pub struct Ffn {
    pub kind: FfnKind,
    /// `fc1` for the MLP, `w12` for SwiGLU.
    pub up: Linear,
    /// `fc2` for the MLP, `w3` for SwiGLU.
    pub down: Linear,
}

impl Ffn {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.up.forward(x)?;
        let h = match self.kind {
            FfnKind::Mlp => h.gelu_erf()?,
            FfnKind::SwiGlu => {
                let half = h.dim(D::Minus1)? / 2;
                let (x1, x2) = (h.narrow(D::Minus1, 0, half)?, h.narrow(D::Minus1, half, half)?);
                (candle_nn::ops::silu(&x1)? * x2)?
            }
        };
        self.down.forward(&h)
    }
}

#[derive(Debug, Clone)]
pub struct Block {
    pub norm1: LayerNorm,
    pub attn: Attention,
    pub ls1: Option<Tensor>,
    pub norm2: LayerNorm,
    pub ffn: Ffn,
    pub ls2: Option<Tensor>,
}

/// Stochastic depth as DINOv2's SSL student applies it: for each residual branch, a random subset
/// of max(⌊B(1−p)⌋, 1) samples keeps the branch, scaled by B / subset (DropPath in expectation).
pub struct DropPath<'a> {
    pub rate: f64,
    pub rng: &'a mut StdRng,
}

impl DropPath<'_> {
    fn apply(&mut self, branch: Tensor) -> Result<Tensor> {
        if self.rate <= 0.0 {
            return Ok(branch);
        }
        let b = branch.dim(0)?;
        let keep = (((b as f64) * (1.0 - self.rate)).floor() as usize).max(1);
        let mut scale = vec![0f32; b];
        for i in sample(self.rng, b, keep) {
            scale[i] = b as f32 / keep as f32;
        }
        let scale = Tensor::from_vec(scale, (b, 1, 1), branch.device())?;
        Ok(branch.broadcast_mul(&scale)?)
    }
}

impl Block {
    /// `drop_path` is `Some` in training mode (with the differentiable ops), `None` for inference.
    pub fn forward(&self, x: &Tensor, mut drop_path: Option<&mut DropPath>) -> Result<Tensor> {
        let grad = if drop_path.is_some() { Grad::Needed } else { Grad::NotNeeded };
        let mut branch = self.attn.forward(&self.norm1.forward(x, grad)?, grad)?;
        if let Some(g) = &self.ls1 {
            branch = branch.broadcast_mul(g)?;
        }
        if let Some(dp) = drop_path.as_deref_mut() {
            branch = dp.apply(branch)?;
        }
        let x = (x + branch)?;
        let mut branch = self.ffn.forward(&self.norm2.forward(&x, grad)?)?;
        if let Some(g) = &self.ls2 {
            branch = branch.broadcast_mul(g)?;
        }
        if let Some(dp) = drop_path {
            branch = dp.apply(branch)?;
        }
        Ok((x + branch)?)
    }
}

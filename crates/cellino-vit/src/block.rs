//! One pre-norm transformer block: `x += ls1(attn(norm1(x))); x += ls2(ffn(norm2(x)))`.

use candle_core::{D, Tensor};
use rand::rngs::StdRng;
use rand::seq::index::sample;

use crate::config::FfnKind;
use crate::error::Result;
use crate::layers::{LayerNorm, Linear};

#[derive(Debug, Clone)]
pub struct Attention {
    pub qkv: Linear,
    pub proj: Linear,
    pub num_heads: usize,
}

impl Attention {
    /// Takes its (normed) input by value so that, at inference, it is freed once `qkv` exists and
    /// `qkv` once the heads are attended: the block's peak memory holds fewer activations.
    pub fn forward(&self, x: Tensor) -> Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let hd = d / self.num_heads;
        let out = {
            // (B, N, 3D) → (3, B, heads, N, hd); head h owns features [h·hd, (h+1)·hd) of q, k and v.
            let qkv = self.qkv.forward(&x)?.reshape((b, n, 3, self.num_heads, hd))?.permute((2, 0, 3, 1, 4))?;
            drop(x);
            // Strided views, not copies (`get` would copy): the attention kernel reads them in place.
            let part = |i: usize| qkv.narrow(0, i, 1)?.squeeze(0);
            cellino_kernels::attention(&part(0)?, &part(1)?, &part(2)?, (hd as f64).powf(-0.5))?
        };
        // The kernel's buffer is (B, N, heads, hd), so merging the heads is a free reshape.
        let out = out.transpose(1, 2)?.reshape((b, n, d))?;
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
    /// Takes its (normed) input by value: at inference it is freed before the hidden activation
    /// goes through GELU and the down projection.
    pub fn forward(&self, x: Tensor) -> Result<Tensor> {
        let h = self.up.forward(&x)?;
        drop(x);
        let h = match self.kind {
            // `h` is this function's own fresh activation: at inference GELU can overwrite it.
            FfnKind::Mlp => cellino_kernels::gelu_erf_owned(h)?,
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
        // Drawn in f32, applied in the branch's dtype (bf16 under mixed precision).
        let scale = Tensor::from_vec(scale, (b, 1, 1), branch.device())?.to_dtype(branch.dtype())?;
        Ok(branch.broadcast_mul(&scale)?)
    }
}

impl Block {
    /// `drop_path` is `Some` in training mode, `None` for inference (the ops are the same).
    ///
    /// At inference every activation is freed as soon as the next op has read it, and the
    /// residual sums are written into the branch buffers (`residual_owned`), so that one block
    /// holds at most the stream, one branch and the MLP's hidden activation at a time.
    pub fn forward(&self, x: Tensor, mut drop_path: Option<&mut DropPath>) -> Result<Tensor> {
        let mut branch = self.attn.forward(self.norm1.forward(&x)?)?;
        // Drop path scales whole samples, which commutes with LayerScale: apply it first so that
        // LayerScale and the residual add stay one fused pass.
        if let Some(dp) = drop_path.as_deref_mut() {
            branch = dp.apply(branch)?;
        }
        let mid = residual(&x, branch, self.ls1.as_ref())?;
        drop(x);
        let mut branch = self.ffn.forward(self.norm2.forward(&mid)?)?;
        if let Some(dp) = drop_path {
            branch = dp.apply(branch)?;
        }
        residual(&mid, branch, self.ls2.as_ref())
    }
}

/// `x + γ ⊙ branch` with LayerScale, `x + branch` without; in the branch's buffer when nothing
/// is tracked for backprop (the branch is always this block's own fresh activation).
fn residual(x: &Tensor, branch: Tensor, gamma: Option<&Tensor>) -> Result<Tensor> {
    // An autocast branch (bf16) joins the residual stream in the stream's dtype.
    let branch = branch.to_dtype(x.dtype())?;
    Ok(cellino_kernels::residual_owned(x, branch, gamma)?)
}

//! Parameter holders and the small ops of a transformer block.
//!
//! Each op has an inference path (candle's fused kernels, fastest, no gradient) and a training path
//! (composite ops that candle can differentiate): candle 0.11 silently drops gradients through its
//! fused LayerNorm and `softmax_last_dim`.

use candle_core::{D, Tensor};

use crate::error::Result;

/// Whether the forward pass must be differentiable (training) or may use fused, gradient-free kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grad {
    Needed,
    NotNeeded,
}

/// `y = x Wᵀ + b` with the weight stored as in PyTorch, `(out, in)`.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (rows, inner) = (dims[..dims.len() - 1].iter().product::<usize>(), dims[dims.len() - 1]);
        let y = x.reshape((rows, inner))?.matmul(&self.weight.t()?)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        let mut out_dims = dims;
        *out_dims.last_mut().expect("rank >= 1") = self.weight.dim(0)?;
        Ok(y.reshape(out_dims)?)
    }
}

/// LayerNorm over the last dimension with affine weight and bias.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f32,
}

impl LayerNorm {
    pub fn forward(&self, x: &Tensor, grad: Grad) -> Result<Tensor> {
        Ok(match grad {
            Grad::NotNeeded => candle_nn::ops::layer_norm(&x.contiguous()?, &self.weight, &self.bias, self.eps)?,
            Grad::Needed => candle_nn::ops::layer_norm_slow(x, &self.weight, &self.bias, self.eps)?,
        })
    }
}

pub fn softmax_last_dim(x: &Tensor, grad: Grad) -> Result<Tensor> {
    Ok(match grad {
        Grad::NotNeeded => candle_nn::ops::softmax_last_dim(x)?,
        Grad::Needed => candle_nn::ops::softmax(x, D::Minus1)?,
    })
}

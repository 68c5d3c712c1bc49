//! Parameter holders for the linear and normalisation layers of the backbone.
//!
//! Both run on cellino-kernels' fused ops, which have a backward, so inference and training share
//! one path (candle's own fused LayerNorm silently drops gradients).

use candle_core::Tensor;

use crate::error::Result;

/// `y = x Wᵀ + b` with the weight stored as in PyTorch, `(out, in)`.
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// The input is cast to the weight's dtype (autocast: bf16 weights take an f32 residual
    /// stream); the result keeps the weight's dtype.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_dtype(self.weight.dtype())?;
        Ok(cellino_kernels::linear(&x, &self.weight, self.bias.as_ref())?)
    }
}

/// LayerNorm over the last dimension with affine weight and bias.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(cellino_kernels::layer_norm(x, &self.weight, &self.bias, self.eps)?)
    }
}

//! Teacher target centering: the EMA center with dinov2's one-step lag, and Sinkhorn-Knopp.

use candle_core::{DType, Device, Tensor};

use crate::dino_loss::softmax_t;
use crate::error::Result;

/// Momentum of the center EMA (`center_momentum` in dinov2).
pub const CENTER_MOMENTUM: f64 = 0.9;

/// An EMA center over the K prototype logits, initialised at 0.
///
/// Upstream applies the update of step n lazily at the start of step n+1's softmax, so step n is
/// centred with batches ≤ n−1 (step 0 with 0). [`Center::softmax_and_update`] centres with the
/// current value first and folds the batch in afterwards, which is the same sequence.
#[derive(Debug, Clone)]
pub struct Center {
    pub value: Tensor,
}

impl Center {
    pub fn new(k: usize, device: &Device) -> Result<Self> {
        Ok(Self { value: Tensor::zeros((1, k), DType::F32, device)? })
    }

    /// `softmax((t − center) / temperature)` for teacher logits t (N, K), without a graph.
    pub fn softmax(&self, teacher_logits: &Tensor, temperature: f64) -> Result<Tensor> {
        if teacher_logits.dim(0)? == 0 {
            return Ok(teacher_logits.detach());
        }
        softmax_t(&teacher_logits.detach().broadcast_sub(&self.value)?, temperature)
    }

    /// `center ← m·center + (1−m)·batch_value` with `batch_value` (1, K).
    pub fn update(&mut self, batch_value: &Tensor) -> Result<()> {
        self.value = ((&self.value * CENTER_MOMENTUM)? + (batch_value.detach() * (1.0 - CENTER_MOMENTUM))?)?;
        Ok(())
    }

    /// Targets with the current center, then the update with the rows' mean (DINO: the mean over
    /// the 2B teacher CLS rows; iBOT: the mean over the masked patches). No update for 0 rows.
    pub fn softmax_and_update(&mut self, teacher_logits: &Tensor, temperature: f64) -> Result<Tensor> {
        let p = self.softmax(teacher_logits, temperature)?;
        if teacher_logits.dim(0)? > 0 {
            let mean = teacher_logits.detach().mean_keepdim(0)?;
            self.update(&mean)?;
        }
        Ok(p)
    }
}

/// Sinkhorn-Knopp targets (3 iterations upstream) for teacher logits (B, K): each row sums to 1.
/// Single device: the all-reduces are identities.
pub fn sinkhorn_knopp(teacher_logits: &Tensor, temperature: f64, iterations: usize) -> Result<Tensor> {
    if teacher_logits.dim(0)? == 0 {
        return Ok(teacher_logits.detach());
    }
    Ok(cellino_kernels::sinkhorn_knopp(&teacher_logits.detach(), temperature, iterations)?)
}

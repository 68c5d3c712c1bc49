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
///
/// Computed in f64 and returned in the logits' dtype: with a low teacher temperature, `exp` of
/// the shifted logits underflows to 0 in f32 for a whole prototype (from a spread of about 87·T,
/// e.g. 0.87 at T = 0.01), whose normalisation then divides 0 by 0. f64 holds exp down to −745.
pub fn sinkhorn_knopp(teacher_logits: &Tensor, temperature: f64, iterations: usize) -> Result<Tensor> {
    if teacher_logits.dim(0)? == 0 {
        return Ok(teacher_logits.detach());
    }
    let wide = teacher_logits.detach().to_dtype(DType::F64)?;
    Ok(cellino_kernels::sinkhorn_knopp(&wide, temperature, iterations)?.to_dtype(teacher_logits.dtype())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A low teacher temperature with cosine logits two apart: in f32 whole prototypes underflow
    /// to zero mass (0 / 0); the f64 computation keeps every target finite and normalised.
    #[test]
    fn sinkhorn_survives_low_temperatures() {
        // Prototype 2 scores every sample at least 1.5 below the best logit: exp(−1.5 / 0.01) is 0 in f32.
        let rows = [[1.0f32, -1.0, -0.5], [-1.0, 1.0, -0.6], [1.0, 0.2, -0.7], [0.3, 1.0, -0.5]];
        let logits = Tensor::new(&rows, &Device::Cpu).unwrap();
        for temperature in [0.005, 0.01, 0.07] {
            let q = sinkhorn_knopp(&logits, temperature, 3).unwrap();
            assert_eq!(q.dtype(), DType::F32);
            let rows: Vec<Vec<f32>> = q.to_vec2().unwrap();
            for row in rows {
                assert!(row.iter().all(|v| v.is_finite()), "T {temperature}: {row:?}");
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4, "T {temperature}: {row:?}");
            }
        }
    }
}

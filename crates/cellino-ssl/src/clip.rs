//! Gradient clipping by global L2 norm (`torch.nn.utils.clip_grad_norm_`).

use candle_core::Tensor;

use crate::error::Result;

/// Total L2 norm of the gradients, then every gradient scaled by `min(1, max_norm / (norm + 1e-6))`.
/// Returns the clipped gradients and the norm before clipping. `max_norm ≤ 0` only measures.
pub fn clip_grad_norm(grads: &[Tensor], max_norm: f64) -> Result<(Vec<Tensor>, f64)> {
    let mut total = 0f64;
    for g in grads {
        total += g.to_dtype(candle_core::DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?;
    }
    let norm = total.sqrt();
    if max_norm <= 0.0 {
        return Ok((grads.to_vec(), norm));
    }
    let coef = (max_norm / (norm + 1e-6)).min(1.0);
    let out = if coef < 1.0 {
        grads.iter().map(|g| g * coef).collect::<candle_core::Result<Vec<_>>>()?
    } else {
        grads.to_vec()
    };
    Ok((out, norm))
}

//! The iBOT masked-patch loss (`dinov2/loss/ibot_patch_loss.py`, `forward_masked`).

use candle_core::{D, Tensor};

use crate::dino_loss::log_softmax_t;
use crate::error::{Result, SslError};

/// Per-masked-patch weights `1 / max(masked count of its image, 1)` in the row-major order of
/// the masked positions, from a `(n_images · n_tokens)` boolean mask.
pub fn mask_weights(masks: &[bool], n_tokens: usize) -> Vec<f32> {
    let mut out = vec![];
    for img in masks.chunks(n_tokens) {
        let count = img.iter().filter(|&&m| m).count();
        let w = 1.0 / (count.max(1) as f32);
        out.extend(std::iter::repeat_n(w, count));
    }
    out
}

/// `−Σ_i w_i Σ_k p_ik log_softmax(s_i / T_s)_k / n_images` over the M masked patches: student
/// logits (M, K), teacher targets (M, K), weights (M,), `n_images` = global-crop images on this
/// device (masked or not). M = 0 gives 0.
pub fn ibot_loss(
    student_masked: &Tensor,
    teacher_probs: &Tensor,
    weights: &Tensor,
    n_images: usize,
    student_temp: f64,
) -> Result<Tensor> {
    if n_images == 0 {
        return Err(SslError::Invalid("iBOT loss over zero images".into()));
    }
    if student_masked.dims() != teacher_probs.dims() || student_masked.rank() != 2 {
        return Err(SslError::Invalid(format!(
            "iBOT loss: student {:?} and teacher {:?} must both be (M, K)",
            student_masked.dims(),
            teacher_probs.dims()
        )));
    }
    let m = student_masked.dim(0)?;
    if weights.dims() != [m] {
        return Err(SslError::Invalid(format!("iBOT loss: weights {:?} for {m} patches", weights.dims())));
    }
    if m == 0 {
        return Ok(Tensor::zeros((), student_masked.dtype(), student_masked.device())?);
    }
    let lsm = log_softmax_t(student_masked, student_temp)?;
    let per = (lsm * teacher_probs.detach())?.sum(D::Minus1)?;
    Ok(((per * weights.to_dtype(student_masked.dtype())?)?.sum_all()? / -(n_images as f64))?)
}

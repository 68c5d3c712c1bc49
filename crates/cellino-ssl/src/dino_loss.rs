//! The DINO cross-entropy between teacher targets and student CLS logits (`dinov2/loss/dino_clstoken_loss.py`).

use candle_core::{D, Tensor};

use crate::error::{Result, SslError};

/// Row-wise `log_softmax(x / temperature)` over the last dimension, differentiable.
pub fn log_softmax_t(x: &Tensor, temperature: f64) -> Result<Tensor> {
    let x = (x / temperature)?;
    let max = x.max_keepdim(D::Minus1)?.detach();
    let shifted = x.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&lse)?)
}

/// Row-wise `softmax(x / temperature)` without a graph (teacher side).
pub fn softmax_t(x: &Tensor, temperature: f64) -> Result<Tensor> {
    Ok(log_softmax_t(&x.detach(), temperature)?.exp()?)
}

/// `−mean_b Σ_k p_bk · log_softmax(s_b / T_s)_k`: one (student crop, teacher crop) term, a scalar.
pub fn cross_entropy(student_logits: &Tensor, teacher_probs: &Tensor, student_temp: f64) -> Result<Tensor> {
    if student_logits.dims() != teacher_probs.dims() || student_logits.rank() != 2 {
        return Err(SslError::Invalid(format!(
            "DINO loss: student {:?} and teacher {:?} must both be (B, K)",
            student_logits.dims(),
            teacher_probs.dims()
        )));
    }
    let lsm = log_softmax_t(student_logits, student_temp)?;
    Ok((lsm * teacher_probs.detach())?.sum(D::Minus1)?.mean_all()?.neg()?)
}

/// The two DINO terms of a step, already divided by the number of crop pairs as dinov2 does.
#[derive(Debug, Clone)]
pub struct DinoTerms {
    /// Σ over (local crop, teacher global crop) pairs / (n_local·n_global + (n_global−1)·n_global).
    pub local: Tensor,
    /// 2 · CE(student globals (2B rows), swapped teacher globals) / (same count).
    pub global: Tensor,
}

/// The DINO loss of a multi-crop step. `student_global` is (n_global·B, K) crop-major,
/// `student_local` (n_local·B, K) crop-major (may be `None`), `teacher_probs` the (n_global·B, K)
/// teacher targets **already swapped** (row block g holds the target for student crop g).
/// Only `n_global == 2` is supported, like dinov2.
pub fn dino_loss(
    student_global: &Tensor,
    student_local: Option<&Tensor>,
    teacher_probs: &Tensor,
    n_global: usize,
    n_local: usize,
    student_temp: f64,
) -> Result<DinoTerms> {
    if n_global != 2 {
        return Err(SslError::Invalid(format!("DINO loss needs exactly 2 global crops, got {n_global}")));
    }
    let rows = student_global.dim(0)?;
    if !rows.is_multiple_of(n_global) {
        return Err(SslError::Invalid(format!("DINO loss: {rows} global rows are not {n_global} crops")));
    }
    let b = rows / n_global;
    let n_terms = (n_local * n_global + (n_global - 1) * n_global) as f64;
    // The teacher targets per *original* crop: swapped block g supervises student crop g, so the
    // target of original crop g is the swapped block 1 − g.
    let teacher_orig: Vec<Tensor> = (0..n_global)
        .map(|g| teacher_probs.narrow(0, (n_global - 1 - g) * b, b))
        .collect::<candle_core::Result<_>>()?;
    let dev = student_global.device();
    let mut local = Tensor::zeros((), student_global.dtype(), dev)?;
    if let Some(sl) = student_local
        && n_local > 0
    {
        if sl.dim(0)? != n_local * b {
            return Err(SslError::Invalid(format!(
                "DINO loss: {} local rows, expected {n_local} crops × {b}",
                sl.dim(0)?
            )));
        }
        for l in 0..n_local {
            let s = sl.narrow(0, l * b, b)?;
            for t in &teacher_orig {
                local = (local + cross_entropy(&s, t, student_temp)?)?;
            }
        }
    }
    let local = (local / n_terms)?;
    let global = ((cross_entropy(student_global, teacher_probs, student_temp)? * 2.0)? / n_terms)?;
    Ok(DinoTerms { local, global })
}

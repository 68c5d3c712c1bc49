//! The KoLeo regulariser (`dinov2/loss/koleo_loss.py`): spreads the student CLS embeddings.

use candle_core::{D, Tensor};

use crate::error::{Result, SslError};

/// `−mean_i log(‖x̂_i − x̂_nn(i) + 1e-8‖ + 1e-8)` with `x̂ = x / max(‖x‖, 1e-8)` and nn(i) the row
/// of largest dot product other than i. Needs at least 2 rows: a batch of 1 has no neighbour
/// (upstream returns inf/NaN), so it is an error here.
pub fn koleo_loss(x: &Tensor) -> Result<Tensor> {
    const EPS: f64 = 1e-8;
    if x.rank() != 2 {
        return Err(SslError::Invalid(format!("KoLeo needs (B, D) embeddings, got {:?}", x.dims())));
    }
    let b = x.dim(0)?;
    if b < 2 {
        return Err(SslError::Invalid(format!(
            "KoLeo needs at least 2 samples per global crop on each device, got {b}: raise train.batch_size_per_gpu \
             or set dino.koleo_loss_weight: 0"
        )));
    }
    let xn = cellino_kernels::l2_normalize(x, EPS)?;
    let idx = cellino_kernels::nearest_neighbor_indices(&xn.detach())?;
    let nn = xn.index_select(&idx, 0)?;
    let dist = ((xn - nn)? + EPS)?.sqr()?.sum(D::Minus1)?.sqrt()?;
    Ok((dist + EPS)?.log()?.mean_all()?.neg()?)
}

//! Bag of Channels (Channel-Adaptive DINO): a single-channel model applied to every channel of a
//! multi-channel image independently, features concatenated in channel order. Works for any C.

use candle_core::Tensor;

use crate::error::{Result, VitError};
use crate::vision_transformer::DinoVisionTransformer;

/// Per-channel features of a (B, C, H, W) batch; every `(B, C·D)` field is channel-major within a
/// row: columns `[c·D, (c+1)·D)` belong to channel `c`.
#[derive(Debug, Clone)]
pub struct BagOfChannelsFeatures {
    /// Final-norm CLS of each channel, concatenated: (B, C·D).
    pub cls: Tensor,
    /// Mean of each channel's final-norm patch tokens, concatenated: (B, C·D).
    pub avgpool: Tensor,
    /// Final-norm patch tokens per channel: (B, C, N, D).
    pub patches: Tensor,
    /// Final-norm register tokens per channel: (B, C, R, D).
    pub registers: Tensor,
}

/// Run `model` (which must take 1 channel) on each channel of `x` (B, C, H, W) as a batch of B·C
/// single-channel images in the order b0c0, b0c1, …, and regroup the outputs per image.
pub fn bag_of_channels(model: &DinoVisionTransformer, x: &Tensor) -> Result<BagOfChannelsFeatures> {
    if model.config().in_chans != 1 {
        return Err(VitError::input(
            "--bag-of-channels",
            format!("needs a single-channel model, but the weights take {} channels", model.config().in_chans),
        ));
    }
    let (b, c, h, w) = x
        .dims4()
        .map_err(|_| VitError::input("image batch", format!("expected (B, C, H, W), got shape {:?}", x.dims())))?;
    let singles = x.reshape((b * c, 1, h, w))?;
    let f = model.forward_features(&singles, None)?;
    let d = model.config().embed_dim;
    let (n, r) = (f.patches.dim(1)?, f.registers.dim(1)?);
    Ok(BagOfChannelsFeatures {
        cls: f.cls.reshape((b, c * d))?,
        avgpool: f.patches.mean(1)?.reshape((b, c * d))?,
        patches: f.patches.reshape((b, c, n, d))?,
        registers: f.registers.reshape((b, c, r, d))?,
    })
}

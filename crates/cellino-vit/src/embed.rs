//! Embedding a raw batch: the library side of `cellino embed`.

use candle_core::Tensor;

use crate::bag_of_channels::bag_of_channels;
use crate::error::{Result, VitError};
use crate::vision_transformer::DinoVisionTransformer;

/// Which features to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    /// Final-norm CLS token: (B, D), or (B, C·D) with Bag of Channels.
    Cls,
    /// Final-norm patch tokens: (B, N, D), or (B, C, N, D) with Bag of Channels.
    Patch,
    /// Mean of the final-norm patch tokens: (B, D), or (B, C·D) with Bag of Channels.
    AvgPool,
    /// Final-norm register tokens: (B, R, D), or (B, C, R, D) with Bag of Channels.
    Reg,
}

impl FeatureKind {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "cls" => Some(Self::Cls),
            "patch" => Some(Self::Patch),
            "avgpool" => Some(Self::AvgPool),
            "reg" => Some(Self::Reg),
            _ => None,
        }
    }
}

/// Refuse NaN or infinite inputs: they would silently poison every feature.
pub fn check_finite(x: &Tensor, what: &str) -> Result<()> {
    let values = x.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(VitError::input(what, format!("value {} at flat index {i} is not finite", values[i])));
    }
    Ok(())
}

/// Embed a (B, C, H, W) float batch given to the model as is (no preprocessing), `batch_size`
/// images at a time. With `bag_of_channels` the model must take one channel and any C is accepted.
pub fn embed_batch(
    model: &DinoVisionTransformer,
    x: &Tensor,
    kind: FeatureKind,
    bag_of_channels_mode: bool,
    batch_size: usize,
) -> Result<Tensor> {
    check_finite(x, "image batch")?;
    let (b, c, h, w) = x
        .dims4()
        .map_err(|_| VitError::input("image batch", format!("expected (B, C, H, W), got shape {:?}", x.dims())))?;
    if b == 0 {
        return Err(VitError::input("image batch", "it is empty"));
    }
    if bag_of_channels_mode && model.config().in_chans != 1 {
        return Err(VitError::input(
            "--bag-of-channels",
            format!("needs a single-channel model, but the weights take {} channels", model.config().in_chans),
        ));
    }
    // Validate once, up front, so that no work is done on an input that will fail later.
    model.check_input(&x.narrow(0, 0, 1)?.reshape(if bag_of_channels_mode {
        (c, 1, h, w)
    } else {
        (1, c, h, w)
    })?)?;
    let step = batch_size.max(1);
    let mut outputs = Vec::with_capacity(b.div_ceil(step));
    for start in (0..b).step_by(step) {
        let chunk = x.narrow(0, start, step.min(b - start))?;
        let out = if bag_of_channels_mode {
            let f = bag_of_channels(model, &chunk)?;
            match kind {
                FeatureKind::Cls => f.cls,
                FeatureKind::AvgPool => f.avgpool,
                FeatureKind::Patch => f.patches,
                FeatureKind::Reg => f.registers,
            }
        } else {
            let f = model.forward_features(&chunk, None)?;
            match kind {
                FeatureKind::Cls => f.cls,
                FeatureKind::AvgPool => f.patches.mean(1)?,
                FeatureKind::Patch => f.patches,
                FeatureKind::Reg => f.registers,
            }
        };
        outputs.push(out);
    }
    Ok(Tensor::cat(&outputs, 0)?)
}

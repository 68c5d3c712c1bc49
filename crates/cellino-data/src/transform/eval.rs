//! `make_classification_eval_cell_transform`: the evaluation / linear-probe transforms.

use rand::rngs::StdRng;

use super::{
    CenterCrop, DivideByRange, ImageOp, Interpolation, RandomCrop, RandomFlip, ResizeShorter, SelfNormalize, Transform,
    Views,
};
use crate::{DataError, MultiChannelImage};

/// The crop of [`EvalTransform`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EvalCrop {
    /// `SELF_NORM_CENTER_CROP`: centre crop, zero-padding small images (the padding enters the
    /// self-normalisation statistics). Used for all validation, test and kNN features.
    #[default]
    Center,
    /// `SELF_NORM_AUG_DECODER`: `RandomCrop(pad_if_needed=True)` + h-flip 0.5 + v-flip 0.5
    /// (linear-probe training).
    RandomWithFlips,
}

/// Divide by range → resize the shorter side to `resize` (bicubic, no antialias) if
/// `resize > 0` → [`EvalCrop`] of `crop_size` → self-normalise. Defaults as upstream: resize 0,
/// crop 384, centre crop.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalTransform {
    pub divide: DivideByRange,
    pub resize: usize,
    pub interpolation: Interpolation,
    pub crop_size: usize,
    pub crop: EvalCrop,
    pub normalize: SelfNormalize,
}

impl Default for EvalTransform {
    fn default() -> Self {
        Self {
            divide: DivideByRange::default(),
            resize: 0,
            interpolation: Interpolation::Bicubic,
            crop_size: 384,
            crop: EvalCrop::Center,
            normalize: SelfNormalize::default(),
        }
    }
}

impl EvalTransform {
    /// Centre-crop evaluation transform.
    pub fn center(crop_size: usize, resize: usize) -> Self {
        Self { crop_size, resize, ..Self::default() }
    }

    /// Linear-probe training transform (random crop and flips).
    pub fn probe_training(crop_size: usize, resize: usize) -> Self {
        Self { crop_size, resize, crop: EvalCrop::RandomWithFlips, ..Self::default() }
    }
}

impl ImageOp for EvalTransform {
    fn apply(&self, image: MultiChannelImage, rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        let mut image = self.divide.apply(image, rng)?;
        if self.resize > 0 {
            image = ResizeShorter { size: self.resize, interpolation: self.interpolation }.apply(image, rng)?;
        }
        let (h, w) = (self.crop_size, self.crop_size);
        image = match self.crop {
            EvalCrop::Center => CenterCrop { height: h, width: w }.apply(image, rng)?,
            EvalCrop::RandomWithFlips => {
                let image = RandomCrop { height: h, width: w, pad_if_needed: true }.apply(image, rng)?;
                let image = RandomFlip::horizontal().apply(image, rng)?;
                RandomFlip::vertical().apply(image, rng)?
            }
        };
        self.normalize.apply(image, rng)
    }
}

impl Transform for EvalTransform {
    fn apply(&self, image: MultiChannelImage, rng: &mut StdRng) -> Result<Views, DataError> {
        Ok(Views { global: vec![ImageOp::apply(self, image, rng)?], local: vec![] })
    }
}

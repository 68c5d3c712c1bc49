//! Augmentations and evaluation transforms (Cell-DINO, spec §3).
//!
//! Two traits: an [`ImageOp`] maps one image to one image (the individual augmentations, chained
//! by a [`Pipeline`]); a [`Transform`] maps a loaded image to the [`Views`] the model sees (one
//! view for evaluation, 2 global + 8 local crops for [`CellAugmentation`]). Every random draw comes
//! from the `StdRng` passed in; the [`Loader`](crate::Loader) keys it by (seed, epoch, index).

mod cell_dino;
mod channel_aug;
mod eval;
mod geometry;
mod intensity;
mod interleaved;
mod plane_passes;
mod resize;
mod resized_crop;

use rand::Rng;
use rand::rngs::StdRng;

use crate::{DataError, MultiChannelImage};

pub use cell_dino::{CellAugmentation, CropGroup};
pub use channel_aug::{RandomContrastProtein, RandomRemoveChannel};
pub use eval::{EvalCrop, EvalTransform};
pub use geometry::{
    CenterCrop, FlipAxis, RandomCrop, RandomFlip, center_crop, crop, flip_horizontal, flip_vertical, pad, pad_for_crop,
};
pub use intensity::{
    DivideByRange, RandomBrightness, RandomContrast, SelfNormalize, adjust_brightness, adjust_contrast,
};
pub use resize::{Interpolation, ResizeShorter, resize, resize_crop, shorter_side_size};
pub use resized_crop::RandomResizedCrop;

/// Python's `random.uniform(a, b)`: `a + (b − a)·U[0, 1)` (so `b < a` draws in `(b, a]`).
pub(crate) fn py_uniform(rng: &mut StdRng, a: f64, b: f64) -> f64 {
    a + (b - a) * rng.random::<f64>()
}

/// One image in, one image out.
pub trait ImageOp: Send + Sync + std::fmt::Debug {
    fn apply(&self, image: MultiChannelImage, rng: &mut StdRng) -> Result<MultiChannelImage, DataError>;
}

/// The crops of one sample that a model sees: global views (teacher and student) and local views
/// (student only). A single-view transform gives one global view and no local ones.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Views {
    pub global: Vec<MultiChannelImage>,
    pub local: Vec<MultiChannelImage>,
}

/// A loaded image in, its [`Views`] out.
pub trait Transform: Send + Sync {
    fn apply(&self, image: MultiChannelImage, rng: &mut StdRng) -> Result<Views, DataError>;
}

/// [`ImageOp`]s applied in order; as a [`Transform`], the result is the single global view.
#[derive(Debug, Default)]
pub struct Pipeline {
    pub ops: Vec<Box<dyn ImageOp>>,
}

impl Pipeline {
    pub fn new(ops: Vec<Box<dyn ImageOp>>) -> Self {
        Self { ops }
    }

    /// Appends an op.
    pub fn then(mut self, op: impl ImageOp + 'static) -> Self {
        self.ops.push(Box::new(op));
        self
    }
}

impl ImageOp for Pipeline {
    fn apply(&self, mut image: MultiChannelImage, rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        for op in &self.ops {
            image = op.apply(image, rng)?;
        }
        Ok(image)
    }
}

impl Transform for Pipeline {
    fn apply(&self, image: MultiChannelImage, rng: &mut StdRng) -> Result<Views, DataError> {
        Ok(Views { global: vec![ImageOp::apply(self, image, rng)?], local: vec![] })
    }
}

/// The identity: the loaded image as the single view (e.g. for feature extraction on
/// pre-cropped data).
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity;

impl Transform for Identity {
    fn apply(&self, image: MultiChannelImage, _rng: &mut StdRng) -> Result<Views, DataError> {
        Ok(Views { global: vec![image], local: vec![] })
    }
}

impl ImageOp for crate::ChannelAdapter {
    fn apply(&self, image: MultiChannelImage, _rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        Ok(self.adapt(&image)?.0)
    }
}

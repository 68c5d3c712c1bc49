//! `CellAugmentationDINO`: the Cell-DINO multi-crop.

use rand::Rng;
use rand::rngs::StdRng;

use super::intensity::{divide_with_plane_max, jitter_and_normalize};
use super::interleaved::{CropPlan, Interleaved, InterleavedScratch};
use super::resize::{PlaneRead, Scratch, Taps, resize_region};
use super::{
    DivideByRange, Interpolation, Pipeline, RandomBrightness, RandomContrast, RandomContrastProtein, RandomFlip,
    RandomRemoveChannel, RandomResizedCrop, SelfNormalize, Transform, Views,
};
use crate::{DataError, MultiChannelImage};

/// A group of crops: how many, output side, area scale range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropGroup {
    pub count: usize,
    pub size: usize,
    pub scale: (f64, f64),
}

/// Cell-DINO multi-crop (`CellAugmentationDINO`, spec §3): `global.count` global and
/// `local.count` local crops, each drawn independently through
///
/// divide by range → remove one non-protein channel (p 0.2, C ≥ 4) → protein contrast (p 0.2) →
/// RandomResizedCrop (ratio 3/4–4/3, bilinear, no antialias) → h-flip 0.5 → v-flip 0.5 →
/// brightness → contrast (factor max(N(1, 0.2), 0.5), clamp [0, 1]) → self-normalise (eps 1e-7).
///
/// Defaults: 2 global 224 px crops with scale [0.4, 1], 8 local 96 px crops with scale
/// [0.005, 0.4] (the Cell-DINO configs). Global crops come first, in order, from the one RNG.
/// The implementation is fused for speed but computes every value exactly as upstream's literal
/// order: the image is divided once for all crops, the protein rescale is applied to the crop
/// region's rows as the resize reads them (it commutes with cropping), the channels are resized
/// together sharing their taps, flips reverse the taps, and brightness, contrast and
/// self-normalisation share passes over each plane.
/// [`reference_pipeline`](Self::reference_pipeline) is the literal order, and a test checks both
/// agree bit for bit (u8, u16 and signed float images, 1 to 5 channels, an all-zero image).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellAugmentation {
    pub global: CropGroup,
    pub local: CropGroup,
    pub ratio: (f64, f64),
    pub divide: DivideByRange,
    pub remove_channel: RandomRemoveChannel,
    pub protein_contrast: RandomContrastProtein,
    pub hflip_p: f64,
    pub vflip_p: f64,
    pub brightness: RandomBrightness,
    pub contrast: RandomContrast,
    pub normalize: SelfNormalize,
}

impl Default for CellAugmentation {
    fn default() -> Self {
        Self {
            global: CropGroup { count: 2, size: 224, scale: (0.4, 1.0) },
            local: CropGroup { count: 8, size: 96, scale: (0.005, 0.4) },
            ratio: (3.0 / 4.0, 4.0 / 3.0),
            divide: DivideByRange::default(),
            remove_channel: RandomRemoveChannel::default(),
            protein_contrast: RandomContrastProtein::default(),
            hflip_p: 0.5,
            vflip_p: 0.5,
            brightness: RandomBrightness::default(),
            contrast: RandomContrast::default(),
            normalize: SelfNormalize::default(),
        }
    }
}

impl CellAugmentation {
    /// Sets the protein channel (kept by the channel removal, rescaled by the protein contrast).
    pub fn with_protein_channel(mut self, channel: usize) -> Self {
        self.remove_channel.protected = channel;
        self.protein_contrast.protein = channel;
        self
    }

    fn resized_crop(&self, group: &CropGroup) -> RandomResizedCrop {
        RandomResizedCrop {
            size: (group.size, group.size),
            scale: group.scale,
            ratio: self.ratio,
            interpolation: Interpolation::Bilinear,
        }
    }

    /// The steps of one crop of `group` as separate [`ImageOp`]s, in upstream's order.
    pub fn reference_pipeline(&self, group: &CropGroup) -> Pipeline {
        Pipeline::default()
            .then(self.divide)
            .then(self.remove_channel)
            .then(self.protein_contrast)
            .then(self.resized_crop(group))
            .then(RandomFlip { axis: super::FlipAxis::Horizontal, p: self.hflip_p })
            .then(RandomFlip { axis: super::FlipAxis::Vertical, p: self.vflip_p })
            .then(self.brightness)
            .then(self.contrast)
            .then(self.normalize)
    }

    fn validate(&self, image: &MultiChannelImage) -> Result<f32, DataError> {
        for g in [&self.global, &self.local] {
            self.resized_crop(g).validate()?;
        }
        let d = self.divide.divisor_for(image);
        if !(d.is_finite() && d != 0.0) {
            return Err(DataError::invalid("divide by range", "a finite non-zero divisor", d.to_string()));
        }
        Ok(d)
    }

    /// One crop of `group`, drawing exactly as [`reference_pipeline`](Self::reference_pipeline).
    fn crop(
        &self,
        image: &MultiChannelImage,
        interleaved: Option<&Interleaved>,
        channel_max: &[f32],
        group: &CropGroup,
        scratch: &mut CropScratch,
        rng: &mut StdRng,
    ) -> Result<MultiChannelImage, DataError> {
        let c = image.channels;
        let removed = self.remove_channel.draw(c, rng);
        let max =
            (0..c).map(|k| if Some(k) == removed { 0.0 } else { channel_max[k] }).fold(f32::NEG_INFINITY, f32::max);
        let factor = self.protein_contrast.draw(c, max, rng).map(|f| (self.protein_contrast.protein, f));
        let rrc = self.resized_crop(group);
        let (top, left, h, w) = rrc.params(image.height, image.width, rng);
        // The flips are the next draws; mirroring the taps flips the output as resize-then-flip does.
        let (mut rows, mut cols) =
            (Taps::new(h, group.size, rrc.interpolation), Taps::new(w, group.size, rrc.interpolation));
        if rng.random::<f64>() < self.hflip_p {
            cols = cols.reversed();
        }
        if rng.random::<f64>() < self.vflip_p {
            rows = rows.reversed();
        }
        let plane_len = group.size * group.size;
        let mut data = match interleaved {
            Some(source) => {
                let plan = CropPlan {
                    region: (top, left, h, w),
                    out_size: (group.size, group.size),
                    rows: &rows,
                    cols: &cols,
                    factor,
                    removed,
                };
                source.resize_region(&plan, &mut scratch.interleaved)
            }
            None => {
                // A removed channel stays zero (a zeroed region resizes to zeros); the others are
                // resized together, sharing the taps.
                let mut data = vec![0.0; c * plane_len];
                let kept = |k: &usize| Some(*k) != removed;
                let sources: Vec<PlaneRead> = (image.channel_planes().enumerate().filter(|(k, _)| kept(k)))
                    .map(|(k, plane)| PlaneRead { plane, factor: factor.filter(|(p, _)| *p == k).map(|(_, f)| f) })
                    .collect();
                let mut outs: Vec<&mut [f32]> =
                    data.chunks_exact_mut(plane_len).enumerate().filter(|(k, _)| kept(k)).map(|(_, o)| o).collect();
                let (region, size) = ((top, left, h, w), (group.size, group.size));
                resize_region(&sources, image.width, region, size, &rows, &cols, &mut scratch.planar, &mut outs);
                data
            }
        };
        jitter_and_normalize(&mut data, plane_len, (&self.brightness, &self.contrast, &self.normalize), rng)?;
        let mut out = MultiChannelImage::new(data, c, group.size, group.size, image.sample_type)?;
        out.channel_names = image.channel_names.clone();
        Ok(out)
    }
}

/// Reusable buffers of the crops of one image.
#[derive(Default)]
struct CropScratch {
    planar: Scratch,
    interleaved: InterleavedScratch,
}

impl Transform for CellAugmentation {
    fn apply(&self, mut image: MultiChannelImage, rng: &mut StdRng) -> Result<Views, DataError> {
        let divisor = self.validate(&image)?;
        // Every crop reads the divided values, so divide once: into a pixel-interleaved copy
        // where that path exists for this channel count, else in place.
        let plane_len = image.plane_len();
        let (interleaved, channel_max) =
            match Interleaved::divided(&image.data, image.channels, plane_len, image.width, divisor) {
                Some((copy, maxima)) => (Some(copy), maxima),
                None => (None, divide_with_plane_max(&mut image.data, plane_len, divisor)),
            };
        let source = interleaved.as_ref();
        let mut scratch = CropScratch::default();
        let mut views = Views::default();
        for _ in 0..self.global.count {
            views.global.push(self.crop(&image, source, &channel_max, &self.global, &mut scratch, rng)?);
        }
        for _ in 0..self.local.count {
            views.local.push(self.crop(&image, source, &channel_max, &self.local, &mut scratch, rng)?);
        }
        Ok(views)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transform::ImageOp;
    use crate::{RngStream, SampleType, keyed_rng};

    fn cells(c: usize, h: usize, w: usize, seed: u64) -> MultiChannelImage {
        let mut rng = keyed_rng(seed, 9, 9, RngStream::Sample);
        let data = (0..c * h * w).map(|_| rng.random_range(0..256u32) as f32).collect();
        MultiChannelImage::new(data, c, h, w, SampleType::U8).unwrap()
    }

    #[test]
    fn fused_equals_reference_order_bit_for_bit() {
        let aug = CellAugmentation {
            global: CropGroup { count: 2, size: 24, scale: (0.4, 1.0) },
            local: CropGroup { count: 4, size: 10, scale: (0.05, 0.4) },
            remove_channel: RandomRemoveChannel { p: 0.6, ..Default::default() },
            protein_contrast: RandomContrastProtein { p: 0.6, ..Default::default() },
            ..Default::default()
        };
        let mut u16_cells = cells(4, 130, 97, 8);
        u16_cells.sample_type = SampleType::U16;
        u16_cells.data.iter_mut().for_each(|v| *v *= 250.0);
        let mut signed = cells(5, 61, 88, 9);
        signed.sample_type = SampleType::F32;
        signed.data.iter_mut().for_each(|v| *v = *v / 50.0 - 2.0);
        let zeros = MultiChannelImage::new(vec![0.0; 4 * 40 * 40], 4, 40, 40, SampleType::U8).unwrap();
        let images = [cells(4, 37, 45, 0), cells(5, 37, 45, 1), cells(1, 37, 45, 2), cells(3, 37, 45, 3)];
        for (i, im) in images.into_iter().chain([u16_cells, signed, zeros]).enumerate() {
            let (i, c) = (i as u64, im.channels);
            let views = Transform::apply(&aug, im.clone(), &mut keyed_rng(1, 0, i, RngStream::Sample)).unwrap();
            let mut rng = keyed_rng(1, 0, i, RngStream::Sample);
            let (g, l) = (aug.reference_pipeline(&aug.global), aug.reference_pipeline(&aug.local));
            for v in &views.global {
                assert_eq!(v, &ImageOp::apply(&g, im.clone(), &mut rng).unwrap());
            }
            for v in &views.local {
                assert_eq!(v, &ImageOp::apply(&l, im.clone(), &mut rng).unwrap());
            }
            assert_eq!((views.global.len(), views.local.len()), (2, 4));
            assert_eq!(views.local[0].shape(), (c, 10, 10));
        }
    }
}

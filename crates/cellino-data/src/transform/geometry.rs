//! Crops, zero padding and flips (torchvision semantics).

use rand::Rng;
use rand::rngs::StdRng;

use super::ImageOp;
use crate::{DataError, MultiChannelImage};

fn rebuild(image: &MultiChannelImage, data: Vec<f32>, h: usize, w: usize) -> Result<MultiChannelImage, DataError> {
    let mut out = MultiChannelImage::new(data, image.channels, h, w, image.sample_type)?;
    out.channel_names = image.channel_names.clone();
    Ok(out)
}

/// The `h × w` region at (`top`, `left`); it must lie inside the image.
pub fn crop(
    image: &MultiChannelImage,
    top: usize,
    left: usize,
    h: usize,
    w: usize,
) -> Result<MultiChannelImage, DataError> {
    if h == 0 || w == 0 || top + h > image.height || left + w > image.width {
        return Err(DataError::invalid(
            "crop region",
            format!("a non-empty region inside {} × {}", image.height, image.width),
            format!("{h} × {w} at ({top}, {left})"),
        ));
    }
    let mut data = Vec::with_capacity(image.channels * h * w);
    for plane in image.channel_planes() {
        for y in top..top + h {
            data.extend_from_slice(&plane[y * image.width + left..y * image.width + left + w]);
        }
    }
    rebuild(image, data, h, w)
}

/// Pads with `fill` by (`left`, `top`, `right`, `bottom`) pixels (torchvision `F.pad`, constant mode).
pub fn pad(
    image: &MultiChannelImage,
    (left, top, right, bottom): (usize, usize, usize, usize),
    fill: f32,
) -> Result<MultiChannelImage, DataError> {
    let (h, w) = (image.height + top + bottom, image.width + left + right);
    let mut data = Vec::with_capacity(image.channels * h * w);
    for plane in image.channel_planes() {
        data.resize(data.len() + top * w, fill);
        for row in plane.chunks_exact(image.width) {
            data.resize(data.len() + left, fill);
            data.extend_from_slice(row);
            data.resize(data.len() + right, fill);
        }
        data.resize(data.len() + bottom * w, fill);
    }
    rebuild(image, data, h, w)
}

/// Mirror left–right.
pub fn flip_horizontal(image: &MultiChannelImage) -> MultiChannelImage {
    let mut out = image.clone();
    for row in out.data.chunks_exact_mut(image.width) {
        row.reverse();
    }
    out
}

/// Mirror top–bottom.
pub fn flip_vertical(image: &MultiChannelImage) -> MultiChannelImage {
    let mut out = image.clone();
    let (h, w) = (image.height, image.width);
    for plane in out.data.chunks_exact_mut(h * w) {
        for y in 0..h / 2 {
            let (a, b) = plane.split_at_mut((h - 1 - y) * w);
            a[y * w..(y + 1) * w].swap_with_slice(&mut b[..w]);
        }
    }
    out
}

/// torchvision `F.center_crop`: zero-pads an image smaller than the crop (left/top get
/// `⌊d/2⌋`, right/bottom `⌈d/2⌉`), then crops at `round((H − h)/2)`, `round((W − w)/2)` with
/// Python's round-half-to-even.
pub fn center_crop(image: &MultiChannelImage, h: usize, w: usize) -> Result<MultiChannelImage, DataError> {
    if h == 0 || w == 0 {
        return Err(DataError::invalid("center crop", "a non-zero size", format!("{h} × {w}")));
    }
    if w > image.width || h > image.height {
        let dw = w.saturating_sub(image.width);
        let dh = h.saturating_sub(image.height);
        let padded = pad(image, (dw / 2, dh / 2, dw.div_ceil(2), dh.div_ceil(2)), 0.0)?;
        if (padded.height, padded.width) == (h, w) {
            return Ok(padded);
        }
        return crop_centre(&padded, h, w);
    }
    crop_centre(image, h, w)
}

fn crop_centre(im: &MultiChannelImage, h: usize, w: usize) -> Result<MultiChannelImage, DataError> {
    let top = ((im.height - h) as f64 / 2.0).round_ties_even() as usize;
    let left = ((im.width - w) as f64 / 2.0).round_ties_even() as usize;
    crop(im, top, left, h, w)
}

/// torchvision `RandomCrop(pad_if_needed=True)` padding: a side shorter than the crop is padded
/// with zeros by the deficit on **both** ends (width first, then height).
pub fn pad_for_crop(image: &MultiChannelImage, h: usize, w: usize) -> Result<MultiChannelImage, DataError> {
    let dw = w.saturating_sub(image.width);
    let dh = h.saturating_sub(image.height);
    if dw == 0 && dh == 0 {
        return Ok(image.clone());
    }
    pad(image, (dw, dh, dw, dh), 0.0)
}

/// Centre crop with zero padding ([`center_crop`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CenterCrop {
    pub height: usize,
    pub width: usize,
}

impl ImageOp for CenterCrop {
    fn apply(&self, image: MultiChannelImage, _rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        center_crop(&image, self.height, self.width)
    }
}

/// torchvision `RandomCrop(size, pad_if_needed)`: optional zero padding ([`pad_for_crop`]), then
/// a uniform top-left corner (no draw when the image already has the crop size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomCrop {
    pub height: usize,
    pub width: usize,
    pub pad_if_needed: bool,
}

impl ImageOp for RandomCrop {
    fn apply(&self, image: MultiChannelImage, rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        let (th, tw) = (self.height, self.width);
        let image = if self.pad_if_needed { pad_for_crop(&image, th, tw)? } else { image };
        if th == 0 || tw == 0 || image.height < th || image.width < tw {
            return Err(DataError::invalid(
                "random crop",
                format!("a crop no larger than the image {} × {} (or pad_if_needed)", image.height, image.width),
                format!("{th} × {tw}"),
            ));
        }
        if (image.height, image.width) == (th, tw) {
            return Ok(image);
        }
        let top = rng.random_range(0..=image.height - th);
        let left = rng.random_range(0..=image.width - tw);
        crop(&image, top, left, th, tw)
    }
}

/// Flip direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlipAxis {
    /// Left–right (`RandomHorizontalFlip`).
    Horizontal,
    /// Top–bottom (`RandomVerticalFlip`).
    Vertical,
}

/// Flips with probability `p` (one uniform draw `u`, flip if `u < p`, as `torch.rand(1) < p`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomFlip {
    pub axis: FlipAxis,
    pub p: f64,
}

impl RandomFlip {
    pub fn horizontal() -> Self {
        Self { axis: FlipAxis::Horizontal, p: 0.5 }
    }

    pub fn vertical() -> Self {
        Self { axis: FlipAxis::Vertical, p: 0.5 }
    }
}

impl ImageOp for RandomFlip {
    fn apply(&self, image: MultiChannelImage, rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        if rng.random::<f64>() >= self.p {
            return Ok(image);
        }
        Ok(match self.axis {
            FlipAxis::Horizontal => flip_horizontal(&image),
            FlipAxis::Vertical => flip_vertical(&image),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleType;

    fn grid(h: usize, w: usize) -> MultiChannelImage {
        MultiChannelImage::new((0..h * w).map(|v| v as f32 + 1.0).collect(), 1, h, w, SampleType::F32).unwrap()
    }

    #[test]
    fn flips_and_crops() {
        let im = grid(3, 2);
        assert_eq!(flip_horizontal(&im).data, vec![2.0, 1.0, 4.0, 3.0, 6.0, 5.0]);
        assert_eq!(flip_vertical(&im).data, vec![5.0, 6.0, 3.0, 4.0, 1.0, 2.0]);
        assert_eq!(crop(&im, 1, 1, 2, 1).unwrap().data, vec![4.0, 6.0]);
        assert!(crop(&im, 2, 0, 2, 1).is_err());
        assert_eq!(pad(&grid(1, 1), (1, 0, 2, 1), 0.0).unwrap().data, vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn center_crop_rounds_half_to_even_and_pads() {
        // (5 − 2)/2 = 1.5 → 2; (4 − 3)/2 = 0.5 → 0.
        let c = center_crop(&grid(5, 4), 2, 3).unwrap();
        assert_eq!(c.data, vec![9.0, 10.0, 11.0, 13.0, 14.0, 15.0]);
        // Padding: 1 × 1 into 2 × 3: left 1, right 1, top 0, bottom 1.
        let p = center_crop(&grid(1, 1), 2, 3).unwrap();
        assert_eq!(p.data, vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        // Pad one axis, crop the other.
        let q = center_crop(&grid(1, 5), 2, 2).unwrap();
        assert_eq!((q.height, q.width), (2, 2));
        assert_eq!(q.data, vec![3.0, 4.0, 0.0, 0.0]); // left = round(1.5) = 2
    }

    #[test]
    fn random_crop_pads_both_sides() {
        let p = pad_for_crop(&grid(2, 2), 3, 4).unwrap();
        assert_eq!((p.height, p.width), (4, 6));
        let mut rng = crate::keyed_rng(0, 0, 0, crate::RngStream::Sample);
        let op = RandomCrop { height: 3, width: 4, pad_if_needed: true };
        let out = op.apply(grid(2, 2), &mut rng).unwrap();
        assert_eq!((out.height, out.width), (3, 4));
        let strict = RandomCrop { pad_if_needed: false, ..op };
        assert!(strict.apply(grid(2, 2), &mut rng).is_err());
        let same = RandomCrop { height: 2, width: 2, pad_if_needed: false };
        assert_eq!(same.apply(grid(2, 2), &mut rng).unwrap(), grid(2, 2));
    }
}

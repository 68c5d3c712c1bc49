//! torchvision `RandomResizedCrop`.

use rand::Rng;
use rand::rngs::StdRng;

use super::resize::{Interpolation, resize_crop};
use super::{ImageOp, py_uniform};
use crate::{DataError, MultiChannelImage};

/// torchvision `RandomResizedCrop(size, scale, ratio)`: up to 10 tries of an area
/// `U(scale)·H·W` and a log-uniform aspect ratio `r`, `w = round(√(area·r))`,
/// `h = round(√(area/r))` (Python round, half to even), accepted if it fits, with a uniform
/// top-left corner; otherwise a centre crop with the ratio clamped to `ratio`. The crop is
/// resized to `size` without antialias (as at the pinned torchvision 0.15).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomResizedCrop {
    /// Output (height, width).
    pub size: (usize, usize),
    pub scale: (f64, f64),
    pub ratio: (f64, f64),
    pub interpolation: Interpolation,
}

impl RandomResizedCrop {
    /// A square `size` crop with `scale`, ratio 3/4–4/3, bilinear.
    pub fn new(size: usize, scale: (f64, f64)) -> Self {
        Self { size: (size, size), scale, ratio: (3.0 / 4.0, 4.0 / 3.0), interpolation: Interpolation::Bilinear }
    }

    pub(crate) fn validate(&self) -> Result<(), DataError> {
        let (s0, s1) = self.scale;
        let (r0, r1) = self.ratio;
        if self.size.0 == 0 || self.size.1 == 0 {
            return Err(DataError::invalid("random resized crop", "a non-zero size", format!("{:?}", self.size)));
        }
        if !(s0 > 0.0 && s1 >= s0 && s1.is_finite()) {
            return Err(DataError::invalid(
                "random resized crop",
                "0 < scale.0 ≤ scale.1",
                format!("{:?}", self.scale),
            ));
        }
        if !(r0 > 0.0 && r1 >= r0 && r1.is_finite()) {
            return Err(DataError::invalid(
                "random resized crop",
                "0 < ratio.0 ≤ ratio.1",
                format!("{:?}", self.ratio),
            ));
        }
        Ok(())
    }

    /// `(top, left, height, width)` of the crop in a `height × width` image.
    pub fn params(&self, height: usize, width: usize, rng: &mut StdRng) -> (usize, usize, usize, usize) {
        let area = (height * width) as f64;
        let (lr0, lr1) = (self.ratio.0.ln(), self.ratio.1.ln());
        for _ in 0..10 {
            let target_area = area * py_uniform(rng, self.scale.0, self.scale.1);
            let aspect = py_uniform(rng, lr0, lr1).exp();
            let w = (target_area * aspect).sqrt().round_ties_even();
            let h = (target_area / aspect).sqrt().round_ties_even();
            if w > 0.0 && w <= width as f64 && h > 0.0 && h <= height as f64 {
                let (h, w) = (h as usize, w as usize);
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return (top, left, h, w);
            }
        }
        let in_ratio = width as f64 / height as f64;
        let (h, w) = if in_ratio < self.ratio.0 {
            ((width as f64 / self.ratio.0).round_ties_even() as usize, width)
        } else if in_ratio > self.ratio.1 {
            (height, (height as f64 * self.ratio.1).round_ties_even() as usize)
        } else {
            (height, width)
        };
        let (h, w) = (h.clamp(1, height), w.clamp(1, width));
        ((height - h) / 2, (width - w) / 2, h, w)
    }
}

impl ImageOp for RandomResizedCrop {
    fn apply(&self, image: MultiChannelImage, rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        self.validate()?;
        let region = self.params(image.height, image.width, rng);
        resize_crop(&image, region, self.size, self.interpolation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RngStream, keyed_rng};

    #[test]
    fn params_fit_and_follow_the_scale_law() {
        let op = RandomResizedCrop::new(96, (0.05, 0.4));
        let (mut sum, n) = (0.0, 4000);
        for i in 0..n {
            let mut rng = keyed_rng(5, 0, i, RngStream::Sample);
            let (t, l, h, w) = op.params(200, 300, &mut rng);
            assert!(h >= 1 && w >= 1 && t + h <= 200 && l + w <= 300);
            let r = w as f64 / h as f64;
            assert!((0.7..1.45).contains(&r), "{r}");
            sum += (h * w) as f64 / 60_000.0;
        }
        let mean = sum / n as f64;
        assert!((mean - 0.225).abs() < 0.01, "{mean}");
        // Impossible scale → fallback centre crop with clamped ratio.
        let wide = RandomResizedCrop { scale: (5.0, 6.0), ..op };
        let mut rng = keyed_rng(5, 0, 0, RngStream::Sample);
        assert_eq!(wide.params(100, 400, &mut rng), (0, 133, 100, 133));
        assert_eq!(wide.params(400, 100, &mut rng), (133, 0, 133, 100));
        assert_eq!(wide.params(90, 100, &mut rng), (0, 0, 90, 100));
        assert!(RandomResizedCrop { scale: (0.5, 0.1), ..op }.validate().is_err());
        assert!(RandomResizedCrop { size: (0, 3), ..op }.validate().is_err());
    }
}

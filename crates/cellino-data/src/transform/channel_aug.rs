//! Cell-DINO's channel augmentations: drop a non-protein channel, rescale the protein channel.

use rand::Rng;
use rand::rngs::StdRng;

use super::ImageOp;
use crate::{DataError, MultiChannelImage};

/// Cell-DINO `RandomRemoveChannelExceptProtein`: on images with at least `min_channels`
/// channels, with probability `p` (`u ≤ p`) one channel drawn uniformly from the first `pool`
/// channels other than `protected` is set to zero. The defaults (p 0.2, protected 1, 4, 4) give
/// upstream's choice among {0, 2, 3}; `pool = usize::MAX` allows every channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomRemoveChannel {
    pub p: f64,
    pub protected: usize,
    pub min_channels: usize,
    pub pool: usize,
}

impl Default for RandomRemoveChannel {
    fn default() -> Self {
        Self { p: 0.2, protected: 1, min_channels: 4, pool: 4 }
    }
}

impl RandomRemoveChannel {
    /// The channel to remove from an image with `channels` channels, drawing from `rng` exactly
    /// as [`apply`](ImageOp::apply) does.
    pub fn draw(&self, channels: usize, rng: &mut StdRng) -> Option<usize> {
        if channels < self.min_channels {
            return None;
        }
        if rng.random::<f64>() > self.p {
            return None;
        }
        let candidates: Vec<usize> = (0..channels.min(self.pool)).filter(|&c| c != self.protected).collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[rng.random_range(0..candidates.len())])
    }
}

impl ImageOp for RandomRemoveChannel {
    fn apply(&self, mut image: MultiChannelImage, rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        if let Some(c) = self.draw(image.channels, rng) {
            let n = image.plane_len();
            image.data[c * n..(c + 1) * n].fill(0.0);
        }
        Ok(image)
    }
}

/// Cell-DINO `RandomContrastProteinChannel`: unless the image is all zeros (max = 0) or has one
/// channel, with probability `p` (`u ≤ p`) channel `protein` is multiplied by `U(0, 2) / max(image)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomContrastProtein {
    pub p: f64,
    pub protein: usize,
}

impl Default for RandomContrastProtein {
    fn default() -> Self {
        Self { p: 0.2, protein: 1 }
    }
}

impl RandomContrastProtein {
    /// The factor for an image with `channels` channels whose maximum is `max`, drawing from `rng`
    /// exactly as [`apply`](ImageOp::apply) does.
    pub fn draw(&self, channels: usize, max: f32, rng: &mut StdRng) -> Option<f32> {
        if max == 0.0 || channels == 1 {
            return None;
        }
        if rng.random::<f64>() > self.p {
            return None;
        }
        let factor = (rng.random::<f64>() * 2.0) as f32 / max;
        (self.protein < channels).then_some(factor)
    }
}

impl ImageOp for RandomContrastProtein {
    fn apply(&self, mut image: MultiChannelImage, rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        let max = image.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if let Some(f) = self.draw(image.channels, max, rng) {
            let n = image.plane_len();
            image.data[self.protein * n..(self.protein + 1) * n].iter_mut().for_each(|v| *v *= f);
        }
        Ok(image)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RngStream, SampleType, keyed_rng};

    #[test]
    fn removal_never_touches_protein_and_follows_p() {
        let op = RandomRemoveChannel::default();
        let mut counts = [0usize; 5];
        let trials = 20_000;
        for i in 0..trials {
            let mut rng = keyed_rng(11, 0, i, RngStream::Sample);
            if let Some(c) = op.draw(5, &mut rng) {
                counts[c] += 1;
            }
        }
        assert_eq!((counts[1], counts[4]), (0, 0));
        let removed: usize = counts.iter().sum();
        let rate = removed as f64 / trials as f64;
        assert!((rate - 0.2).abs() < 0.01, "{rate}");
        for c in [0, 2, 3] {
            let share = counts[c] as f64 / removed as f64;
            assert!((share - 1.0 / 3.0).abs() < 0.03, "{counts:?}");
        }
        let mut rng = keyed_rng(11, 0, 0, RngStream::Sample);
        assert_eq!(op.draw(3, &mut rng), None);
        let all = RandomRemoveChannel { p: 1.0, protected: 0, pool: usize::MAX, ..op };
        assert!((0..200).all(|i| all.draw(6, &mut keyed_rng(1, 0, i, RngStream::Sample)) != Some(0)));
        assert!((0..200).any(|i| all.draw(6, &mut keyed_rng(1, 0, i, RngStream::Sample)) == Some(5)));
    }

    #[test]
    fn protein_contrast_scales_only_protein() {
        let op = RandomContrastProtein { p: 1.0, protein: 1 };
        let im = MultiChannelImage::new(vec![0.5, 0.25, 0.1, 0.2], 4, 1, 1, SampleType::F32).unwrap();
        let mut rng = keyed_rng(3, 0, 0, RngStream::Sample);
        let out = op.apply(im.clone(), &mut rng).unwrap();
        assert_eq!([out.data[0], out.data[2], out.data[3]], [0.5, 0.1, 0.2]);
        let f = out.data[1] / 0.25;
        assert!((0.0..4.0).contains(&f)); // U(0, 2) / 0.5
        let one = MultiChannelImage::new(vec![0.5], 1, 1, 1, SampleType::F32).unwrap();
        assert_eq!(op.apply(one.clone(), &mut rng).unwrap(), one);
    }
}

//! iBOT block masks (dinov2 `MaskingGenerator` and `collate_data_and_cast`, spec §5.3).

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::DataError;
use crate::transform::py_uniform;

/// dinov2 `MaskingGenerator`: random rectangles on a `height × width` patch grid.
///
/// While fewer than the target are masked: `cap = min(target − masked, max_num_patches)`; up to
/// 10 tries of an area `uniform(min_num_patches, cap)` (Python `uniform`, so `cap < 4` draws in
/// `[cap, 4]`) and an aspect `exp(uniform(ln 0.3, ln(1/0.3)))`, `h = round(√(area·r))`,
/// `w = round(√(area/r))` (half to even), kept if `h < height` and `w < width`, at a uniform
/// top-left corner (inclusive bounds), accepted if it masks between 1 and `cap` new patches
/// (overlaps allowed); the first accepted rectangle ends the tries. Ten tries that add nothing
/// stop the loop, so the count may end short of the target but never exceeds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskingGenerator {
    pub height: usize,
    pub width: usize,
    pub min_num_patches: f64,
    pub max_num_patches: f64,
    /// `(ln min_aspect, ln max_aspect)`.
    pub log_aspect: (f64, f64),
}

impl MaskingGenerator {
    /// A `height × width` grid with `max_num_patches`, min 4 patches, aspect 0.3–1/0.3.
    pub fn new(height: usize, width: usize, max_num_patches: f64) -> Self {
        Self { height, width, min_num_patches: 4.0, max_num_patches, log_aspect: (0.3f64.ln(), (1.0f64 / 0.3).ln()) }
    }

    /// As dinov2's train script builds it for square `img_size` crops and `patch_size`: a
    /// `(img/patch)²` grid, `max_num_patches = 0.5·img // patch · img // patch` (Python float
    /// floor divisions left to right; 98 for 224/16).
    pub fn for_crops(img_size: usize, patch_size: usize) -> Result<Self, DataError> {
        if patch_size == 0 || img_size < patch_size {
            return Err(DataError::invalid(
                "masking generator",
                "0 < patch_size ≤ img_size",
                format!("img {img_size}, patch {patch_size}"),
            ));
        }
        let n = img_size / patch_size;
        let (img, p) = (img_size as f64, patch_size as f64);
        let max = ((0.5 * img / p).floor() * img / p).floor();
        Ok(Self::new(n, n, max))
    }

    /// Number of patches of the grid.
    pub fn num_patches(&self) -> usize {
        self.height * self.width
    }

    fn add_rectangle(&self, mask: &mut [bool], cap: f64, rng: &mut StdRng) -> usize {
        let mut delta = 0;
        for _ in 0..10 {
            let target_area = py_uniform(rng, self.min_num_patches, cap);
            let aspect = py_uniform(rng, self.log_aspect.0, self.log_aspect.1).exp();
            let h = (target_area * aspect).sqrt().round_ties_even() as usize;
            let w = (target_area / aspect).sqrt().round_ties_even() as usize;
            if w < self.width && h < self.height {
                let top = rng.random_range(0..=self.height - h);
                let left = rng.random_range(0..=self.width - w);
                let rows = top..top + h;
                let already: usize = rows
                    .clone()
                    .map(|y| mask[y * self.width + left..y * self.width + left + w].iter().filter(|&&m| m).count())
                    .sum();
                let new = h * w - already;
                if new > 0 && new as f64 <= cap {
                    for y in rows {
                        mask[y * self.width + left..y * self.width + left + w].fill(true);
                    }
                    delta += new;
                }
                if delta > 0 {
                    break;
                }
            }
        }
        delta
    }

    /// A row-major `height × width` mask with (at most) `num_masking_patches` patches set.
    pub fn generate(&self, num_masking_patches: usize, rng: &mut StdRng) -> Vec<bool> {
        let mut mask = vec![false; self.num_patches()];
        let mut count = 0;
        while count < num_masking_patches {
            let cap = ((num_masking_patches - count) as f64).min(self.max_num_patches);
            let delta = self.add_rectangle(&mut mask, cap, rng);
            if delta == 0 {
                break;
            }
            count += delta;
        }
        mask
    }
}

/// torch `linspace` in f32 (first half from the start, second half from the end).
fn linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps).map(|i| if i < half { start + step * i as f32 } else { end - step * (steps - i - 1) as f32 }).collect()
}

/// The iBOT masks of a batch's global crops, as dinov2's `collate_data_and_cast`: of the
/// `n` global-crop images, `int(n · mask_probability)` get masks with target ratios stratified
/// over `ratio_min_max` (image `i` targets `int(N · U(edge_i, edge_{i+1}))` patches, edges =
/// `linspace(min, max, k + 1)`), the others none, and the list is shuffled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IbotMasking {
    pub generator: MaskingGenerator,
    pub mask_probability: f64,
    pub ratio_min_max: (f64, f64),
}

impl IbotMasking {
    /// dinov2 defaults (probability 0.5, ratios 0.1–0.5) for `img_size` crops and `patch_size`.
    pub fn for_crops(img_size: usize, patch_size: usize) -> Result<Self, DataError> {
        Ok(Self {
            generator: MaskingGenerator::for_crops(img_size, patch_size)?,
            mask_probability: 0.5,
            ratio_min_max: (0.1, 0.5),
        })
    }

    /// Masks for `n_images` global-crop images.
    pub fn sample(&self, n_images: usize, rng: &mut StdRng) -> MaskBatch {
        let n_tokens = self.generator.num_patches();
        let n_masked = ((n_images as f64 * self.mask_probability) as usize).min(n_images);
        let edges = linspace_f32(self.ratio_min_max.0 as f32, self.ratio_min_max.1 as f32, n_masked + 1);
        let mut masks: Vec<Vec<bool>> = Vec::with_capacity(n_images);
        for i in 0..n_masked {
            let (lo, hi) = (edges[i], edges[i + 1]);
            let ratio = lo + (hi - lo) * rng.random::<f64>() as f32;
            let target = (n_tokens as f32 * ratio).max(0.0) as usize;
            masks.push(self.generator.generate(target, rng));
        }
        masks.resize(n_images, vec![false; n_tokens]);
        masks.shuffle(rng);
        MaskBatch { masks: masks.concat(), n_images, grid: (self.generator.height, self.generator.width) }
    }
}

/// Boolean patch masks of `n_images` images, row-major `(n_images, grid.0 · grid.1)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskBatch {
    pub masks: Vec<bool>,
    pub n_images: usize,
    pub grid: (usize, usize),
}

impl MaskBatch {
    /// Patches per image.
    pub fn n_tokens(&self) -> usize {
        self.grid.0 * self.grid.1
    }

    /// Masked patches of image `i`.
    pub fn count(&self, i: usize) -> usize {
        let n = self.n_tokens();
        self.masks.get(i * n..(i + 1) * n).map_or(0, |m| m.iter().filter(|&&b| b).count())
    }

    /// A `(n_images, n_tokens)` u8 tensor (1 = masked).
    pub fn to_tensor(&self, device: &candle_core::Device) -> Result<candle_core::Tensor, DataError> {
        let data: Vec<u8> = self.masks.iter().map(|&m| u8::from(m)).collect();
        Ok(candle_core::Tensor::from_vec(data, (self.n_images, self.n_tokens()), device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RngStream, keyed_rng};

    #[test]
    fn dinov2_sizes() {
        let g = MaskingGenerator::for_crops(224, 16).unwrap();
        assert_eq!((g.height, g.width, g.max_num_patches), (14, 14, 98.0));
        assert_eq!(MaskingGenerator::for_crops(96, 16).unwrap().max_num_patches, 18.0);
        assert!(MaskingGenerator::for_crops(8, 16).is_err());
        assert_eq!(linspace_f32(0.1, 0.5, 5), vec![0.1, 0.2, 0.3, 0.4, 0.5]);
        assert_eq!(linspace_f32(0.1, 0.5, 1), vec![0.1]);
    }

    #[test]
    fn generator_never_exceeds_target_and_blocks_are_rectangles() {
        let g = MaskingGenerator::for_crops(224, 16).unwrap();
        let mut short = 0;
        for i in 0..300u64 {
            let mut rng = keyed_rng(2, 0, i, RngStream::Masks);
            let target = (i % 100) as usize;
            let m = g.generate(target, &mut rng);
            let count = m.iter().filter(|&&b| b).count();
            assert!(count <= target, "{count} > {target}");
            short += usize::from(count < target);
            if target == 0 {
                assert_eq!(count, 0);
            }
        }
        // Most targets are reached exactly (small remainders below 4 can stop early).
        assert!(short < 150, "{short}");
        // One accepted try sets one rectangle.
        let mut rng = keyed_rng(3, 0, 0, RngStream::Masks);
        let mut m = vec![false; 196];
        let added = g.add_rectangle(&mut m, 98.0, &mut rng);
        assert_eq!(added, m.iter().filter(|&&b| b).count());
        let ys: Vec<usize> = (0..196).filter(|&k| m[k]).map(|k| k / 14).collect();
        let xs: Vec<usize> = (0..196).filter(|&k| m[k]).map(|k| k % 14).collect();
        let (h, w) = (
            ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1,
            xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1,
        );
        assert_eq!(h * w, ys.len());
    }

    #[test]
    fn stratified_batch() {
        let ib = IbotMasking::for_crops(224, 16).unwrap();
        let mut rng = keyed_rng(4, 0, 0, RngStream::Masks);
        let b = ib.sample(16, &mut rng);
        assert_eq!((b.n_images, b.n_tokens(), b.masks.len()), (16, 196, 16 * 196));
        let counts: Vec<usize> = (0..16).map(|i| b.count(i)).collect();
        assert_eq!(counts.iter().filter(|&&c| c == 0).count(), 8, "{counts:?}");
        let mut masked: Vec<usize> = counts.into_iter().filter(|&c| c > 0).collect();
        masked.sort();
        // Targets are stratified over [0.1, 0.5]·196 = [19.6, 98]: edges every 0.05·196 = 9.8.
        for (k, c) in masked.iter().enumerate() {
            assert!(*c <= (196.0 * (0.1 + 0.05 * (k + 1) as f64)) as usize + 1, "{masked:?}");
        }
        let t = b.to_tensor(&candle_core::Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[16, 196]);
    }
}

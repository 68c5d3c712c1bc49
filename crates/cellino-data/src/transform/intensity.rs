//! Intensity transforms: range division, per-channel brightness and contrast jitter,
//! per-image per-channel self-normalisation.

use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

use super::ImageOp;
use super::plane_passes::{self, PlanePasses};
use crate::{DataError, MultiChannelImage};

/// Divides by the nominal range of the stored type, generalising Cell-DINO's `Div255`: `U8` →
/// 255, `U16` → 65535, other integers by their maximum (`I16` → 32767); float images are left
/// as they are. `divisor` overrides the type's range.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct DivideByRange {
    pub divisor: Option<f32>,
}

impl DivideByRange {
    /// The divisor used for `image` (1 for float images without an override).
    pub fn divisor_for(&self, image: &MultiChannelImage) -> f32 {
        self.divisor.unwrap_or_else(|| image.sample_type.nominal_max().map_or(1.0, |m| m as f32))
    }
}

impl ImageOp for DivideByRange {
    fn apply(&self, mut image: MultiChannelImage, _rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        let d = self.divisor_for(&image);
        if !(d.is_finite() && d != 0.0) {
            return Err(DataError::invalid("divide by range", "a finite non-zero divisor", d.to_string()));
        }
        if d != 1.0 {
            image.data.iter_mut().for_each(|v| *v /= d);
        }
        Ok(image)
    }
}

/// Divides every value of `data` by `divisor` in place (as [`DivideByRange`]) and returns the
/// maximum of each plane of `plane_len` values afterwards, in one pass over the image.
pub(crate) fn divide_with_plane_max(data: &mut [f32], plane_len: usize, divisor: f32) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above); wider vectors give the same quotients.
        return unsafe { divide_with_plane_max_avx2(data, plane_len, divisor) };
    }
    divide_with_plane_max_generic(data, plane_len, divisor)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn divide_with_plane_max_avx2(data: &mut [f32], plane_len: usize, divisor: f32) -> Vec<f32> {
    divide_with_plane_max_generic(data, plane_len, divisor)
}

#[inline(always)]
fn divide_with_plane_max_generic(data: &mut [f32], plane_len: usize, divisor: f32) -> Vec<f32> {
    const W: usize = 16;
    let mut maxima = Vec::with_capacity(data.len() / plane_len.max(1));
    for plane in data.chunks_exact_mut(plane_len.max(1)) {
        // Lane-wise maxima (a sequential max does not vectorise); NaN-free data gives the same
        // maximum in any order.
        let mut top = [f32::NEG_INFINITY; W];
        let mut chunks = plane.chunks_exact_mut(W);
        for chunk in &mut chunks {
            for lane in 0..W {
                chunk[lane] /= divisor;
                top[lane] = if chunk[lane] > top[lane] { chunk[lane] } else { top[lane] };
            }
        }
        for v in chunks.into_remainder() {
            *v /= divisor;
            top[0] = top[0].max(*v);
        }
        maxima.push(top.into_iter().fold(f32::NEG_INFINITY, f32::max));
    }
    maxima
}

/// Independent f64 accumulators of the plane sums below: they vectorise, and every sum of the
/// crate goes through [`lane_sum`] or [`map_lane_sum`] (or the AVX2 passes of `plane_passes`,
/// which keep their lane order), so a fused path and the step-by-step ops add the same numbers in
/// the same order (bit-identical results).
pub(crate) const LANES: usize = 8;

pub(crate) fn combine_lanes(acc: [f64; LANES]) -> f64 {
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// Σ `term(v)` over `plane`, in f64.
#[inline(always)]
pub(crate) fn lane_sum(plane: &[f32], term: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let chunks = plane.chunks_exact(LANES);
    for (lane, &v) in chunks.remainder().iter().enumerate() {
        acc[lane] += term(v);
    }
    for chunk in chunks {
        // Whole-array steps (map, then add) vectorise cleanly; lane k still adds its values in order.
        let terms: [f64; LANES] = std::array::from_fn(|lane| term(chunk[lane]));
        for lane in 0..LANES {
            acc[lane] += terms[lane];
        }
    }
    combine_lanes(acc)
}

/// Replaces every value `v` of `plane` by `map(v)` and returns Σ of the new values, added in the
/// order [`lane_sum`] adds them.
#[inline(always)]
pub(crate) fn map_lane_sum(plane: &mut [f32], map: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut chunks = plane.chunks_exact_mut(LANES);
    for (lane, v) in chunks.into_remainder().iter_mut().enumerate() {
        *v = map(*v);
        acc[lane] += f64::from(*v);
    }
    chunks = plane.chunks_exact_mut(LANES);
    for chunk in chunks {
        let mapped: [f32; LANES] = std::array::from_fn(|lane| map(chunk[lane]));
        chunk.copy_from_slice(&mapped);
        for lane in 0..LANES {
            acc[lane] += f64::from(mapped[lane]);
        }
    }
    combine_lanes(acc)
}

/// Mean of `plane` given its sum (f64), and its population standard deviation, as f32.
#[inline(always)]
pub(crate) fn std_given_sum(plane: &[f32], sum: f64) -> (f32, f32) {
    std_given_sum_with::<plane_passes::Scalar>(plane, sum)
}

#[inline(always)]
fn std_given_sum_with<P: PlanePasses>(plane: &[f32], sum: f64) -> (f32, f32) {
    let n = plane.len().max(1) as f64;
    let mean = sum / n;
    let var = P::squared_deviation_sum(plane, mean) / n;
    (mean as f32, var.sqrt() as f32)
}

/// Mean and population standard deviation of `plane`, accumulated in f64 and returned as f32.
pub(crate) fn mean_std(plane: &[f32]) -> (f32, f32) {
    std_given_sum(plane, lane_sum(plane, f64::from))
}

/// Mean of `plane` (f64 accumulation) as f32.
pub(crate) fn plane_mean(plane: &[f32]) -> f32 {
    (lane_sum(plane, f64::from) / plane.len().max(1) as f64) as f32
}

/// Cell-DINO `SelfNormalizeNoDiv`: per channel, `(x − mean) / (population std + eps)`, eps 1e-7.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SelfNormalize {
    pub eps: f32,
}

impl Default for SelfNormalize {
    fn default() -> Self {
        Self { eps: 1e-7 }
    }
}

impl SelfNormalize {
    /// Normalises `image` in place.
    pub fn normalize(&self, image: &mut MultiChannelImage) {
        let n = image.plane_len();
        for plane in image.data.chunks_exact_mut(n.max(1)) {
            let (m, s) = mean_std(plane);
            let d = s + self.eps;
            plane.iter_mut().for_each(|v| *v = (*v - m) / d);
        }
    }
}

impl ImageOp for SelfNormalize {
    fn apply(&self, mut image: MultiChannelImage, _rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        self.normalize(&mut image);
        Ok(image)
    }
}

fn factor_law(std: f64, min_factor: f64) -> Result<Normal<f64>, DataError> {
    if !(min_factor.is_finite() && std.is_finite() && std >= 0.0) {
        return Err(DataError::invalid(
            "jitter factor",
            "a finite std ≥ 0 and a finite minimum factor",
            format!("std {std}, minimum {min_factor}"),
        ));
    }
    Normal::new(1.0, std).map_err(|_| DataError::invalid("jitter factor", "a finite std ≥ 0", std.to_string()))
}

/// The shared law of Cell-DINO's brightness and contrast jitter: unless the image is all zeros, each
/// channel in turn gets its own factor `max(N(1, std), min_factor)` passed to `adjust`.
fn jitter_every_channel(
    mut image: MultiChannelImage,
    std: f64,
    min_factor: f64,
    clamp_max: f32,
    rng: &mut StdRng,
    adjust: fn(&mut [f32], f64, f32),
) -> Result<MultiChannelImage, DataError> {
    let law = factor_law(std, min_factor)?;
    if max_value(&image) == 0.0 {
        return Ok(image);
    }
    let n = image.plane_len();
    for plane in image.data.chunks_exact_mut(n) {
        adjust(plane, law.sample(rng).max(min_factor), clamp_max);
    }
    Ok(image)
}

/// Brightness, contrast and self-normalisation of the crop `data` (planes of `plane_len`) in four
/// passes over each plane instead of seven: the draws, values and sums of the three step-by-step
/// ops, so the result is bit-identical to applying them in turn.
pub(crate) fn jitter_and_normalize(
    data: &mut [f32],
    plane_len: usize,
    ops: (&RandomBrightness, &RandomContrast, &SelfNormalize),
    rng: &mut StdRng,
) -> Result<(), DataError> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return jitter_and_normalize_with::<plane_passes::Avx2>(data, plane_len, ops, rng);
    }
    jitter_and_normalize_with::<plane_passes::Scalar>(data, plane_len, ops, rng)
}

fn jitter_and_normalize_with<P: PlanePasses>(
    data: &mut [f32],
    plane_len: usize,
    (brightness, contrast, normalize): (&RandomBrightness, &RandomContrast, &SelfNormalize),
    rng: &mut StdRng,
) -> Result<(), DataError> {
    let brightness_law = factor_law(brightness.std, brightness.min_factor)?;
    let contrast_law = factor_law(contrast.std, contrast.min_factor)?;
    let n = plane_len.max(1);
    // Σ of every plane's current values, kept from the pass that wrote them.
    let mut sums: Option<Vec<f64>> = None;
    if P::max(data) != 0.0 {
        let top = brightness.max_value;
        sums = Some(
            data.chunks_exact_mut(n)
                .map(|plane| {
                    let f = brightness_law.sample(rng).max(brightness.min_factor) as f32;
                    P::map_clamp_sum(plane, f, None, top)
                })
                .collect(),
        );
    }
    // After the clamp every value is ≥ 0, so the crop is all zeros exactly when every sum is 0.
    if let Some(sums) = sums.as_mut().filter(|s| s.iter().any(|&x| x != 0.0)) {
        let top = contrast.max_value;
        for (plane, sum) in data.chunks_exact_mut(n).zip(sums.iter_mut()) {
            let factor = contrast_law.sample(rng).max(contrast.min_factor);
            let mean = (*sum / n as f64) as f32;
            let (a, b) = (factor as f32, (1.0 - factor) as f32 * mean);
            *sum = P::map_clamp_sum(plane, a, Some(b), top);
        }
    }
    for (k, plane) in data.chunks_exact_mut(n).enumerate() {
        let sum = sums.as_ref().map_or_else(|| P::sum(plane), |s| s[k]);
        let (m, s) = std_given_sum_with::<P>(plane, sum);
        P::normalize(plane, m, s + normalize.eps);
    }
    Ok(())
}

fn max_value(image: &MultiChannelImage) -> f32 {
    image.data.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// Cell-DINO `RandomBrightness`: unless the image is all zeros, **every** channel is scaled by
/// `f = max(N(1, std), min_factor)` and clamped to `[0, max_value]` (torchvision
/// `adjust_brightness` on a float image). The upstream argument `p = 0.2` is this std: the
/// transform is always applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomBrightness {
    pub std: f64,
    pub min_factor: f64,
    pub max_value: f32,
}

impl Default for RandomBrightness {
    fn default() -> Self {
        Self { std: 0.2, min_factor: 0.5, max_value: 1.0 }
    }
}

/// torchvision `adjust_brightness` with a given factor, in place (for one channel plane).
pub fn adjust_brightness(plane: &mut [f32], factor: f64, max_value: f32) {
    let f = factor as f32;
    plane.iter_mut().for_each(|v| *v = (f * *v).clamp(0.0, max_value));
}

/// torchvision `adjust_contrast` on a single-channel float image: `f·x + (1 − f)·mean`, clamped.
pub fn adjust_contrast(plane: &mut [f32], factor: f64, max_value: f32) {
    let mean = plane_mean(plane);
    let (a, b) = (factor as f32, (1.0 - factor) as f32 * mean);
    plane.iter_mut().for_each(|v| *v = (a * *v + b).clamp(0.0, max_value));
}

impl ImageOp for RandomBrightness {
    fn apply(&self, image: MultiChannelImage, rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        jitter_every_channel(image, self.std, self.min_factor, self.max_value, rng, adjust_brightness)
    }
}

/// Cell-DINO `RandomContrast`: like [`RandomBrightness`] but each channel becomes
/// `f·x + (1 − f)·mean(channel)`, clamped to `[0, max_value]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RandomContrast {
    pub std: f64,
    pub min_factor: f64,
    pub max_value: f32,
}

impl Default for RandomContrast {
    fn default() -> Self {
        Self { std: 0.2, min_factor: 0.5, max_value: 1.0 }
    }
}

impl ImageOp for RandomContrast {
    fn apply(&self, image: MultiChannelImage, rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        jitter_every_channel(image, self.std, self.min_factor, self.max_value, rng, adjust_contrast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RngStream, SampleType, keyed_rng};

    #[test]
    fn divide_and_normalize() {
        let mut rng = keyed_rng(0, 0, 0, RngStream::Sample);
        let im = MultiChannelImage::new(vec![0.0, 255.0, 51.0, 102.0], 2, 1, 2, SampleType::U8).unwrap();
        let d = DivideByRange::default().apply(im, &mut rng).unwrap();
        assert_eq!(d.data, vec![0.0, 1.0, 0.2, 0.4]);
        let u16 = MultiChannelImage::new(vec![65535.0], 1, 1, 1, SampleType::U16).unwrap();
        assert_eq!(DivideByRange::default().apply(u16, &mut rng).unwrap().data, vec![1.0]);
        let f = MultiChannelImage::new(vec![3.5], 1, 1, 1, SampleType::F32).unwrap();
        assert_eq!(DivideByRange::default().apply(f.clone(), &mut rng).unwrap().data, vec![3.5]);
        assert!(DivideByRange { divisor: Some(0.0) }.apply(f, &mut rng).is_err());
        let n = SelfNormalize::default().apply(d, &mut rng).unwrap();
        assert_eq!(n.data[..2], [-0.5 / (0.5 + 1e-7), 0.5 / (0.5 + 1e-7)]);
        let constant = MultiChannelImage::new(vec![0.7; 4], 1, 2, 2, SampleType::F32).unwrap();
        assert!(SelfNormalize::default().apply(constant, &mut rng).unwrap().data.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn zero_images_and_bad_laws() {
        let mut rng = keyed_rng(0, 0, 0, RngStream::Sample);
        let zero = MultiChannelImage::new(vec![0.0; 4], 1, 2, 2, SampleType::F32).unwrap();
        assert_eq!(RandomBrightness::default().apply(zero.clone(), &mut rng).unwrap(), zero);
        assert_eq!(RandomContrast::default().apply(zero.clone(), &mut rng).unwrap(), zero);
        let bad = RandomBrightness { std: -1.0, ..Default::default() };
        assert!(bad.apply(zero, &mut rng).is_err());
        let mut p = vec![0.5f32, 1.0];
        adjust_contrast(&mut p, 2.0, 1.0);
        assert_eq!(p, vec![0.25, 1.0]);
    }
}

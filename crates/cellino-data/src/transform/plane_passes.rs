//! The per-plane passes of Cell-DINO's brightness, contrast and self-normalisation, in two
//! implementations that give the same bits: portable scalar code, and AVX2 code for x86-64.
//!
//! Each sum adds its values in the lane order of [`lane_sum`](super::intensity::lane_sum): the
//! trailing `len % 8` values first into lanes 0.., then eight at a time, value `i` into lane
//! `i % 8`, each lane in f64. The AVX2 passes keep lanes 0–3 and 4–7 in two f64 vectors, so every
//! lane adds the same numbers in the same order; no multiply-add is fused and no division is
//! replaced by a reciprocal.

use super::intensity::{LANES, combine_lanes, lane_sum, map_lane_sum};

/// The passes over one crop plane.
pub(crate) trait PlanePasses {
    /// Largest value of `data` (NaN-free data; −∞ if empty).
    fn max(data: &[f32]) -> f32;
    /// `v ← clamp(a·v (+ b), 0, top)` for every value (`f32::clamp`), returning Σ of the new values.
    fn map_clamp_sum(plane: &mut [f32], a: f32, b: Option<f32>, top: f32) -> f64;
    /// Σ v.
    fn sum(plane: &[f32]) -> f64;
    /// Σ (v − mean)², in f64.
    fn squared_deviation_sum(plane: &[f32], mean: f64) -> f64;
    /// `v ← (v − mean) / divisor` for every value.
    fn normalize(plane: &mut [f32], mean: f32, divisor: f32);
}

/// Portable implementation.
pub(crate) struct Scalar;

#[inline(always)]
fn clamp_scalar(v: f32, a: f32, b: Option<f32>, top: f32) -> f32 {
    let x = a * v;
    match b {
        Some(b) => (x + b).clamp(0.0, top),
        None => x.clamp(0.0, top),
    }
}

impl PlanePasses for Scalar {
    fn max(data: &[f32]) -> f32 {
        // Lane-wise maxima vectorise where a sequential fold does not.
        let mut top = [f32::NEG_INFINITY; LANES];
        let chunks = data.chunks_exact(LANES);
        let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
        for chunk in chunks {
            for lane in 0..LANES {
                top[lane] = if chunk[lane] > top[lane] { chunk[lane] } else { top[lane] };
            }
        }
        top.into_iter().fold(tail, f32::max)
    }

    fn map_clamp_sum(plane: &mut [f32], a: f32, b: Option<f32>, top: f32) -> f64 {
        map_lane_sum(plane, |v| clamp_scalar(v, a, b, top))
    }

    fn sum(plane: &[f32]) -> f64 {
        lane_sum(plane, f64::from)
    }

    fn squared_deviation_sum(plane: &[f32], mean: f64) -> f64 {
        lane_sum(plane, |v| (f64::from(v) - mean).powi(2))
    }

    fn normalize(plane: &mut [f32], mean: f32, divisor: f32) {
        plane.iter_mut().for_each(|v| *v = (*v - mean) / divisor);
    }
}

/// AVX2 implementation; only for CPUs that have AVX2 (the caller checks).
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{LANES, clamp_scalar, combine_lanes};

    /// Adds the eight values of `x` to the lane accumulators `lo` (lanes 0–3) and `hi` (4–7).
    #[inline(always)]
    unsafe fn add_lanes(lo: &mut __m256d, hi: &mut __m256d, x: __m256) {
        unsafe {
            *lo = _mm256_add_pd(*lo, _mm256_cvtps_pd(_mm256_castps256_ps128(x)));
            *hi = _mm256_add_pd(*hi, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x)));
        }
    }

    /// Runs `step` over every full chunk of eight values with the lane accumulators, after
    /// `tail` has added the trailing values into `acc`; returns the combined sum.
    #[inline(always)]
    unsafe fn lanes(
        mut acc: [f64; LANES],
        chunks: usize,
        mut step: impl FnMut(usize, &mut __m256d, &mut __m256d),
    ) -> f64 {
        unsafe {
            let mut lo = _mm256_loadu_pd(acc.as_ptr());
            let mut hi = _mm256_loadu_pd(acc.as_ptr().add(4));
            for j in 0..chunks {
                step(j * LANES, &mut lo, &mut hi);
            }
            _mm256_storeu_pd(acc.as_mut_ptr(), lo);
            _mm256_storeu_pd(acc.as_mut_ptr().add(4), hi);
        }
        combine_lanes(acc)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn max(data: &[f32]) -> f32 {
        let chunks = data.chunks_exact(LANES);
        let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut top = _mm256_set1_ps(f32::NEG_INFINITY);
        for chunk in chunks {
            // SAFETY: `chunk` holds eight values.
            top = _mm256_max_ps(unsafe { _mm256_loadu_ps(chunk.as_ptr()) }, top);
        }
        let mut lanes = [0.0f32; LANES];
        // SAFETY: `lanes` holds eight values.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), top) };
        lanes.into_iter().fold(tail, f32::max)
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn map_clamp_sum(plane: &mut [f32], a: f32, b: Option<f32>, top: f32) -> f64 {
        let full = plane.len() / LANES * LANES;
        let mut acc = [0.0f64; LANES];
        for (lane, v) in plane[full..].iter_mut().enumerate() {
            *v = clamp_scalar(*v, a, b, top);
            acc[lane] += f64::from(*v);
        }
        let (va, vb, zero, vtop) =
            (_mm256_set1_ps(a), _mm256_set1_ps(b.unwrap_or(0.0)), _mm256_setzero_ps(), _mm256_set1_ps(top));
        let p = plane.as_mut_ptr();
        // SAFETY: every chunk start + 8 ≤ full ≤ plane.len().
        unsafe {
            lanes(acc, full / LANES, |i, lo, hi| {
                let mut x = _mm256_mul_ps(va, _mm256_loadu_ps(p.add(i)));
                if b.is_some() {
                    x = _mm256_add_ps(x, vb);
                }
                // `f32::clamp(x, 0, top)`: max(0, x) then min(top, ·) return their second operand on
                // ties and NaN, so −0.0 and NaN pass through as they do there.
                let x = _mm256_min_ps(vtop, _mm256_max_ps(zero, x));
                _mm256_storeu_ps(p.add(i), x);
                add_lanes(lo, hi, x);
            })
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn sum(plane: &[f32]) -> f64 {
        let full = plane.len() / LANES * LANES;
        let mut acc = [0.0f64; LANES];
        for (lane, &v) in plane[full..].iter().enumerate() {
            acc[lane] += f64::from(v);
        }
        let p = plane.as_ptr();
        // SAFETY: every chunk start + 8 ≤ full ≤ plane.len().
        unsafe { lanes(acc, full / LANES, |i, lo, hi| add_lanes(lo, hi, _mm256_loadu_ps(p.add(i)))) }
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn squared_deviation_sum(plane: &[f32], mean: f64) -> f64 {
        let full = plane.len() / LANES * LANES;
        let mut acc = [0.0f64; LANES];
        for (lane, &v) in plane[full..].iter().enumerate() {
            acc[lane] += (f64::from(v) - mean).powi(2);
        }
        let (vm, p) = (_mm256_set1_pd(mean), plane.as_ptr());
        // SAFETY: every chunk start + 8 ≤ full ≤ plane.len().
        unsafe {
            lanes(acc, full / LANES, |i, lo, hi| {
                let x = _mm256_loadu_ps(p.add(i));
                let d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), vm);
                let d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x)), vm);
                *lo = _mm256_add_pd(*lo, _mm256_mul_pd(d0, d0));
                *hi = _mm256_add_pd(*hi, _mm256_mul_pd(d1, d1));
            })
        }
    }

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn normalize(plane: &mut [f32], mean: f32, divisor: f32) {
        let (vm, vd) = (_mm256_set1_ps(mean), _mm256_set1_ps(divisor));
        let mut chunks = plane.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            // SAFETY: `chunk` holds eight values.
            unsafe {
                let x = _mm256_loadu_ps(chunk.as_ptr());
                _mm256_storeu_ps(chunk.as_mut_ptr(), _mm256_div_ps(_mm256_sub_ps(x, vm), vd));
            }
        }
        chunks.into_remainder().iter_mut().for_each(|v| *v = (*v - mean) / divisor);
    }
}

// SAFETY (every method): `Avx2` is only used after `is_x86_feature_detected!("avx2")`.
#[cfg(target_arch = "x86_64")]
impl PlanePasses for Avx2 {
    fn max(data: &[f32]) -> f32 {
        unsafe { avx2::max(data) }
    }

    fn map_clamp_sum(plane: &mut [f32], a: f32, b: Option<f32>, top: f32) -> f64 {
        unsafe { avx2::map_clamp_sum(plane, a, b, top) }
    }

    fn sum(plane: &[f32]) -> f64 {
        unsafe { avx2::sum(plane) }
    }

    fn squared_deviation_sum(plane: &[f32], mean: f64) -> f64 {
        unsafe { avx2::squared_deviation_sum(plane, mean) }
    }

    fn normalize(plane: &mut [f32], mean: f32, divisor: f32) {
        unsafe { avx2::normalize(plane, mean, divisor) }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn plane(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut v: Vec<f32> = (0..len).map(|_| rng.random_range(-0.3f32..1.2)).collect();
        // Signed zeros and exact clamp bounds, where max/min operand order matters.
        for (i, x) in [-0.0, 0.0, 1.0, -1e-30].into_iter().enumerate() {
            if i < len {
                v[i * len / 4] = x;
            }
        }
        v
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn avx2_passes_equal_the_scalar_ones_bit_for_bit() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        for (len, seed) in [(0, 0), (1, 1), (7, 2), (8, 3), (13, 4), (96 * 96, 5), (224 * 224 + 3, 6)] {
            let data = plane(len, seed);
            assert_eq!(Scalar::max(&data).to_bits(), Avx2::max(&data).to_bits(), "max, len {len}");
            assert_eq!(Scalar::sum(&data).to_bits(), Avx2::sum(&data).to_bits(), "sum, len {len}");
            let mean = Scalar::sum(&data) / len.max(1) as f64;
            assert_eq!(
                Scalar::squared_deviation_sum(&data, mean).to_bits(),
                Avx2::squared_deviation_sum(&data, mean).to_bits()
            );
            for (a, b, top) in
                [(1.3, None, 1.0), (0.7, Some(0.05), 1.0), (-1.0, Some(-0.0), 0.5), (2.0, Some(0.1), 1.0)]
            {
                let (mut s, mut v) = (data.clone(), data.clone());
                let (ss, vs) = (Scalar::map_clamp_sum(&mut s, a, b, top), Avx2::map_clamp_sum(&mut v, a, b, top));
                assert_eq!((ss.to_bits(), bits(&s)), (vs.to_bits(), bits(&v)), "clamp {a} {b:?}, len {len}");
            }
            let (mut s, mut v) = (data.clone(), data);
            Scalar::normalize(&mut s, 0.31, 0.173);
            Avx2::normalize(&mut v, 0.31, 0.173);
            assert_eq!(bits(&s), bits(&v));
        }
    }
}

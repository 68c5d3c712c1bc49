//! The float types the CPU kernels run on (f32, f64) and the scalar maths they share.
//!
//! f32 uses branch-free polynomial `exp` and `erf` so that loops over them vectorise; f64 uses the
//! accurate libm versions, so the f64 kernels are the exact references in the finite-difference
//! tests.

use std::ops::Neg;

use candle_core::WithDType;

/// f32 or f64.
pub(crate) trait Real: WithDType + Neg<Output = Self> {
    const ZERO: Self;
    const ONE: Self;
    const HALF: Self;
    const NEG_INFINITY: Self;

    fn from_usize(n: usize) -> Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    /// The error function.
    fn erf(self) -> Self;
    /// The larger of the two, ignoring a NaN in `other` (like `f32::max`).
    fn fmax(self, other: Self) -> Self;
    fn mul_add(self, a: Self, b: Self) -> Self;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const HALF: Self = 0.5;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;

    #[inline(always)]
    fn from_usize(n: usize) -> Self {
        n as f32
    }
    #[inline(always)]
    fn exp(self) -> Self {
        exp_f32(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f32::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        erf_f32(self)
    }
    #[inline(always)]
    fn fmax(self, other: Self) -> Self {
        f32::max(self, other)
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f32::mul_add(self, a, b)
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const HALF: Self = 0.5;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;

    #[inline(always)]
    fn from_usize(n: usize) -> Self {
        n as f64
    }
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn erf(self) -> Self {
        candle_core::cpu::erf::erf_f64(self)
    }
    #[inline(always)]
    fn fmax(self, other: Self) -> Self {
        f64::max(self, other)
    }
    #[inline(always)]
    fn mul_add(self, a: Self, b: Self) -> Self {
        f64::mul_add(self, a, b)
    }
}

/// `exp` for f32 in the Cephes style: `2^n · p(r)` with `x = n·ln 2 + r`, within 2 ulp on
/// (-87, 88]; 0 below, +inf above. Branch-free so that loops over it vectorise.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds to an integer and leaves it in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LO: f32 = -87.0;
    const HI: f32 = 88.0;
    let xc = x.clamp(LO, HI);
    let t = xc.mul_add(LOG2E, ROUND);
    let n = t - ROUND;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, xc));
    let mut p: f32 = 1.987_569_1e-4;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let y = (p * r).mul_add(r, r) + 1.0;
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let scale = f32::from_bits(((n_int + 127) as u32) << 23);
    let y = y * scale;
    let y = if x < LO { 0.0 } else { y };
    if x > HI { f32::INFINITY } else { y }
}

/// `erf` for f32: Abramowitz & Stegun 7.1.26 with f32 coefficients and arithmetic, the formula
/// PyTorch's vectorised CPU `erf` uses (absolute error < 5e-7), so GELU matches PyTorch closely.
#[inline(always)]
pub(crate) fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / a.mul_add(0.327_591_1, 1.0);
    let mut p: f32 = 1.061_405_4;
    p = p.mul_add(t, -1.453_152);
    p = p.mul_add(t, 1.421_413_8);
    p = p.mul_add(t, -0.284_496_74);
    p = p.mul_add(t, 0.254_829_6);
    let r = (-(p * t)).mul_add(exp_f32(-a * a), 1.0);
    r.copysign(x)
}

/// Lanes of the reduction accumulators: two AVX2 registers of f32.
const LANES: usize = 16;

/// Sum with `LANES` independent accumulators (vectorises; also more accurate than a serial sum).
#[inline(always)]
pub(crate) fn sum<T: Real>(x: &[T]) -> T {
    let mut acc = [T::ZERO; LANES];
    let chunks = x.chunks_exact(LANES);
    let mut total = chunks.remainder().iter().fold(T::ZERO, |s, &v| s + v);
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    for a in acc {
        total += a;
    }
    total
}

/// Σ (x_i − c)², vectorised like [`sum`].
#[inline(always)]
pub(crate) fn sum_sq_dev<T: Real>(x: &[T], c: T) -> T {
    let mut acc = [T::ZERO; LANES];
    let chunks = x.chunks_exact(LANES);
    let mut total = chunks.remainder().iter().fold(T::ZERO, |s, &v| s + (v - c) * (v - c));
    for ch in chunks {
        for (a, &v) in acc.iter_mut().zip(ch) {
            *a += (v - c) * (v - c);
        }
    }
    for a in acc {
        total += a;
    }
    total
}

/// Σ a_i b_i, vectorised like [`sum`].
#[inline(always)]
pub(crate) fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::ZERO; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut total = ca.remainder().iter().zip(cb.remainder()).fold(T::ZERO, |s, (&x, &y)| s + x * y);
    for (x, y) in ca.zip(cb) {
        for ((acc, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *acc += x * y;
        }
    }
    for v in acc {
        total += v;
    }
    total
}

/// `x_i ← exp(x_i − shift)` in place; returns the new Σ x_i (the softmax denominator).
#[inline(always)]
pub(crate) fn exp_shifted_sum<T: Real>(x: &mut [T], shift: T) -> T {
    let mut acc = [T::ZERO; LANES];
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in chunks.by_ref() {
        for (a, v) in acc.iter_mut().zip(c) {
            *v = (*v - shift).exp();
            *a += *v;
        }
    }
    let mut total = T::ZERO;
    for v in chunks.into_remainder() {
        *v = (*v - shift).exp();
        total += *v;
    }
    for a in acc {
        total += a;
    }
    total
}

/// Largest element (−inf for an empty slice), vectorised like [`sum`].
#[inline(always)]
pub(crate) fn max<T: Real>(x: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let mut m = chunks.remainder().iter().fold(T::NEG_INFINITY, |m, &v| m.fmax(v));
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = a.fmax(v);
        }
    }
    for a in acc {
        m = m.fmax(a);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_within_two_ulp_on_the_used_range() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let (got, want) = (exp_f32(x) as f64, (x as f64).exp());
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 2.5e-7, "relative error {worst:e}");
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(100.0), f32::INFINITY);
    }

    #[test]
    fn fast_erf_is_within_5e7_of_libm() {
        let mut worst = 0f64;
        for i in 0..=100_000 {
            let x = -6.0 + 12.0 * i as f32 / 100_000.0;
            worst = worst.max((erf_f32(x) as f64 - candle_core::cpu::erf::erf_f64(x as f64)).abs());
        }
        assert!(worst < 5e-7, "absolute error {worst:e}");
        assert!(erf_f32(f32::NAN).is_nan());
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
    }

    #[test]
    fn reductions_handle_every_remainder() {
        for n in 0..40 {
            let x: Vec<f64> = (0..n).map(|i| i as f64 - 7.5).collect();
            assert_eq!(sum(&x), x.iter().sum::<f64>());
            assert_eq!(dot(&x, &x), x.iter().map(|v| v * v).sum::<f64>());
            assert_eq!(max(&x), x.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        }
    }
}

//! Small numeric helpers: a float trait over `f32`/`f64`, GEMM through candle's CPU
//! backend, and a portable seeded random number generator.

use candle_core::{Device, Tensor, WithDType};

use crate::error::Result;

/// `f32` or `f64`: what the kernels of this crate are generic over.
pub(crate) trait Real: WithDType + Default {
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn maximum(self, other: Self) -> Self;
}

macro_rules! impl_real {
    ($t:ty) => {
        impl Real for $t {
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn maximum(self, other: Self) -> Self {
                <$t>::max(self, other)
            }
        }
    };
}
impl_real!(f32);
impl_real!(f64);

/// Which operand of [`matmul`] is read transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// As stored, row-major.
    N,
    /// Transposed (the stored matrix is `(cols, rows)` row-major).
    T,
}

fn operand<R: Real>(data: &[R], rows: usize, cols: usize, op: Op) -> Result<Tensor> {
    Ok(match op {
        Op::N => Tensor::from_slice(data, (rows, cols), &Device::Cpu)?,
        Op::T => Tensor::from_slice(data, (cols, rows), &Device::Cpu)?.t()?,
    })
}

/// `op(a) · op(b)` where `op(a)` is `(m, k)` and `op(b)` is `(k, n)`; the result is
/// row-major `(m, n)`. Runs candle's multi-threaded CPU GEMM (transposed operands are read
/// through strides, not copied).
pub(crate) fn matmul<R: Real>(a: &[R], op_a: Op, b: &[R], op_b: Op, m: usize, k: usize, n: usize) -> Result<Vec<R>> {
    debug_assert_eq!(a.len(), m * k);
    debug_assert_eq!(b.len(), k * n);
    let a = operand(a, m, k, op_a)?;
    let b = operand(b, k, n, op_b)?;
    Ok(a.matmul(&b)?.flatten_all()?.to_vec1::<R>()?)
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, portable, seedable generator. Its
/// output for a given seed is fixed by this code, not by any dependency's version.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
    /// A second normal variate from the last Box–Muller pair.
    spare_normal: Option<f64>,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed, spare_normal: None }
    }

    /// An independent stream derived from `seed` and a stream tag.
    pub(crate) fn stream(seed: u64, tag: u64) -> Self {
        let mut mixer = Self::new(seed ^ tag.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Self::new(mixer.next_u64())
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (`n > 0`), unbiased (Lemire's multiply-and-reject).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        let n = n as u64;
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as usize;
            }
        }
    }

    /// Uniform in the open interval (0, 1), 53 random bits.
    fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal variate (Box–Muller, both variates of a pair used in turn).
    pub(crate) fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let (u1, u2) = (self.open01(), self.open01());
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = std::f64::consts::TAU * u2;
        self.spare_normal = Some(r * theta.sin());
        r * theta.cos()
    }

    /// Fisher–Yates shuffle.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_transposes() {
        // a (2×3), b (3×2)
        let a = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0f64, 0.0, 0.0, 1.0, 1.0, 1.0];
        assert_eq!(matmul(&a, Op::N, &b, Op::N, 2, 3, 2).unwrap(), vec![4.0, 5.0, 10.0, 11.0]);
        // aᵀ (3×2) · a (2×3) = 3×3 Gram matrix
        let g = matmul(&a, Op::T, &a, Op::N, 3, 2, 3).unwrap();
        assert_eq!(g, vec![17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]);
        // a (2×3) · aᵀ (3×2)
        let g = matmul(&a, Op::N, &a, Op::T, 2, 3, 2).unwrap();
        assert_eq!(g, vec![14.0, 32.0, 32.0, 77.0]);
    }

    #[test]
    fn rng_is_fixed_and_sane() {
        // Reference values of SplitMix64 with seed 0 (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut r = SplitMix64::new(7);
        let mut counts = [0usize; 5];
        for _ in 0..5000 {
            counts[r.below(5)] += 1;
        }
        assert!(counts.iter().all(|&c| (900..1100).contains(&c)), "{counts:?}");
        let z: Vec<f64> = (0..20000).map(|_| r.normal()).collect();
        let mean = z.iter().sum::<f64>() / z.len() as f64;
        let var = z.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / z.len() as f64;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "{mean} {var}");
        let mut p: Vec<usize> = (0..10).collect();
        r.shuffle(&mut p);
        let mut s = p.clone();
        s.sort_unstable();
        assert_eq!(s, (0..10).collect::<Vec<_>>());
    }
}

//! Shared helpers of the integration tests.
#![allow(dead_code)]

/// A tiny deterministic generator (SplitMix64) for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize
    }

    /// Approximately normal (sum of 12 uniforms − 6).
    pub fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.uniform()).sum::<f64>() - 6.0
    }
}

/// Gaussian blobs: `n` rows of `dim` features around one centre per class (`spread` =
/// within-class standard deviation), and their labels.
pub fn blobs(rng: &mut Rng, centres: &[Vec<f64>], n: usize, spread: f64) -> (Vec<f32>, Vec<usize>) {
    let dim = centres[0].len();
    let mut x = Vec::with_capacity(n * dim);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let c = rng.below(centres.len());
        y.push(c);
        x.extend(centres[c].iter().map(|&m| (m + spread * rng.normal()) as f32));
    }
    (x, y)
}

pub fn centres(rng: &mut Rng, k: usize, dim: usize, scale: f64) -> Vec<Vec<f64>> {
    (0..k).map(|_| (0..dim).map(|_| scale * rng.normal()).collect()).collect()
}

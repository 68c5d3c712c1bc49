//! A grid of linear classifiers stored as one `(dim, G·K)` weight matrix.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::FeatureMatrix;
use crate::error::{EvalError, Result};
use crate::numeric::{Op, SplitMix64, matmul};

/// Stream tag of the weight-initialisation RNG.
const INIT_STREAM: u64 = 1;
/// Scores of at most this many bytes are held at once when scoring a whole grid.
const SCORE_BUDGET_BYTES: usize = 256 << 20;
/// Feature rows multiplied at once when scoring.
const SCORE_ROW_BLOCK: usize = 8192;

/// One classifier of the grid: its learning rate (as given and after the batch-size
/// scaling `lr · batch / 256`) and its weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassifierSpec {
    /// Learning rate as listed in the grid (`--learning-rates`).
    pub learning_rate: f64,
    /// The learning rate AdamW uses: `learning_rate · batch_size / 256`.
    pub scaled_learning_rate: f64,
    /// AdamW (decoupled) weight decay.
    pub weight_decay: f64,
}

impl ClassifierSpec {
    /// The spec of `learning_rate` and `weight_decay` at `batch_size`
    /// (upstream `scale_lr`: `lr · (batch · world) / 256`, world = 1).
    pub fn new(learning_rate: f64, weight_decay: f64, batch_size: usize) -> Self {
        Self { learning_rate, scaled_learning_rate: learning_rate * batch_size as f64 / 256.0, weight_decay }
    }

    /// Upstream's classifier name, `classifier_{n}_blocks_avgpool_{avgpool}_lr_{lr:.5f}_wd_{wd:.2E}`
    /// with `.` replaced by `_` (Python formatting: `True`/`False`, `1.00E-04`), where `lr` is
    /// the scaled learning rate. Scaled learning rates that agree to 5 decimals give the same
    /// name (upstream then silently kept only the last such classifier in its `ModuleDict`).
    pub fn name(&self, n_last_blocks: usize, avgpool: bool) -> String {
        let avgpool = if avgpool { "True" } else { "False" };
        format!(
            "classifier_{n_last_blocks}_blocks_avgpool_{avgpool}_lr_{:.5}_wd_{}",
            self.scaled_learning_rate,
            python_exp2(self.weight_decay)
        )
        .replace('.', "_")
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let ok_lr = self.scaled_learning_rate.is_finite() && self.scaled_learning_rate > 0.0;
        if !ok_lr {
            return Err(EvalError::InvalidConfig {
                what: "learning rate",
                reason: format!(
                    "{} (scaled {}) is not positive and finite",
                    self.learning_rate, self.scaled_learning_rate
                ),
            });
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(EvalError::InvalidConfig {
                what: "weight decay",
                reason: format!("{} is not a finite value ≥ 0", self.weight_decay),
            });
        }
        Ok(())
    }
}

/// Python's `f"{x:.2E}"`: mantissa with 2 decimals, `E`, sign, at least 2 exponent digits.
fn python_exp2(x: f64) -> String {
    let s = format!("{x:.2e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}E{sign}{digits:0>2}")
        }
        None => s.to_uppercase(), // inf / NaN (rejected by validation anyway)
    }
}

/// `G` linear classifiers `Linear(dim, K)` over the same features, stored jointly: the
/// weights as one row-major `(dim, G·K)` matrix (classifier `g` owns columns
/// `g·K..(g+1)·K`) and the biases as one `G·K` vector, so scoring or training the whole
/// grid is one matrix product.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearGrid {
    dim: usize,
    n_outputs: usize,
    specs: Vec<ClassifierSpec>,
    weights: Vec<f32>,
    biases: Vec<f32>,
}

impl LinearGrid {
    /// A grid initialised as upstream `LinearClassifier`: weights `N(0, 0.01)` (standard
    /// deviation 0.01), biases 0. The draws come from a SplitMix64/Box–Muller generator
    /// seeded with `seed`, classifier by classifier in grid order, each weight row-major
    /// `(K, dim)` as in PyTorch.
    ///
    /// # Errors
    /// `dim`, `n_outputs` or `specs` empty; an invalid learning rate or weight decay.
    pub fn new_seeded(dim: usize, n_outputs: usize, specs: Vec<ClassifierSpec>, seed: u64) -> Result<Self> {
        let mut rng = SplitMix64::stream(seed, INIT_STREAM);
        let per = (0..specs.len())
            .map(|_| (0..n_outputs * dim).map(|_| (0.01 * rng.normal()) as f32).collect::<Vec<f32>>())
            .collect::<Vec<_>>();
        let biases = vec![vec![0.0; n_outputs]; specs.len()];
        Self::from_torch_parameters(dim, n_outputs, specs, &per, &biases)
    }

    /// A grid with given parameters in PyTorch layout: `weights[g]` is the row-major
    /// `(K, dim)` weight of classifier `g`, `biases[g]` its `K` biases.
    ///
    /// # Errors
    /// Empty dimensions or grid, wrong lengths, non-finite parameters, invalid specs.
    pub fn from_torch_parameters(
        dim: usize,
        n_outputs: usize,
        specs: Vec<ClassifierSpec>,
        weights: &[Vec<f32>],
        biases: &[Vec<f32>],
    ) -> Result<Self> {
        if dim == 0 {
            return Err(EvalError::Empty { what: "feature columns" });
        }
        if n_outputs == 0 {
            return Err(EvalError::Empty { what: "classes (classifier outputs)" });
        }
        if specs.is_empty() {
            return Err(EvalError::Empty { what: "classifier grid" });
        }
        specs.iter().try_for_each(ClassifierSpec::validate)?;
        let g = specs.len();
        for (what, v, len) in [("weights (classifiers)", weights.len(), g), ("biases (classifiers)", biases.len(), g)] {
            if v != len {
                return Err(EvalError::LengthMismatch { what, expected: len, actual: v });
            }
        }
        let gk = g * n_outputs;
        let mut w = vec![0.0f32; dim * gk];
        let mut b = vec![0.0f32; gk];
        for (gi, (wg, bg)) in weights.iter().zip(biases).enumerate() {
            if wg.len() != n_outputs * dim {
                return Err(EvalError::LengthMismatch {
                    what: "classifier weight",
                    expected: n_outputs * dim,
                    actual: wg.len(),
                });
            }
            if bg.len() != n_outputs {
                return Err(EvalError::LengthMismatch {
                    what: "classifier bias",
                    expected: n_outputs,
                    actual: bg.len(),
                });
            }
            if wg.iter().chain(bg).any(|v| !v.is_finite()) {
                return Err(EvalError::InvalidConfig {
                    what: "classifier parameters",
                    reason: "non-finite value".into(),
                });
            }
            for c in 0..n_outputs {
                let col = gi * n_outputs + c;
                for d in 0..dim {
                    w[d * gk + col] = wg[c * dim + d];
                }
                b[col] = bg[c];
            }
        }
        Ok(Self { dim, n_outputs, specs, weights: w, biases: b })
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Outputs (classes or labels) of each classifier.
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// Number of classifiers `G`.
    pub fn n_classifiers(&self) -> usize {
        self.specs.len()
    }

    /// The classifiers' hyper-parameters, in grid order.
    pub fn specs(&self) -> &[ClassifierSpec] {
        &self.specs
    }

    /// Weight of classifier `g`, row-major `(K, dim)` (PyTorch `nn.Linear.weight`).
    ///
    /// # Panics
    /// If `g >= n_classifiers()`.
    pub fn weight(&self, g: usize) -> Vec<f32> {
        assert!(g < self.n_classifiers(), "classifier {g} of {}", self.n_classifiers());
        let gk = self.n_classifiers() * self.n_outputs;
        let mut out = vec![0.0; self.n_outputs * self.dim];
        for c in 0..self.n_outputs {
            for d in 0..self.dim {
                out[c * self.dim + d] = self.weights[d * gk + g * self.n_outputs + c];
            }
        }
        out
    }

    /// Bias of classifier `g` (`K` values).
    ///
    /// # Panics
    /// If `g >= n_classifiers()`.
    pub fn bias(&self, g: usize) -> Vec<f32> {
        self.biases[g * self.n_outputs..(g + 1) * self.n_outputs].to_vec()
    }

    pub(crate) fn weights_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.weights, &mut self.biases)
    }

    pub(crate) fn weights_flat(&self) -> (&[f32], &[f32]) {
        (&self.weights, &self.biases)
    }

    fn check_dim(&self, features: &FeatureMatrix<'_>) -> Result<()> {
        if features.dim() != self.dim {
            return Err(EvalError::Mismatch {
                what: "feature dimension (vs classifier)",
                expected: self.dim,
                actual: features.dim(),
            });
        }
        Ok(())
    }

    /// Logits of classifier `g` on `features`: row-major `n_rows × K`.
    ///
    /// # Errors
    /// `g` out of range, a feature dimension other than the grid's.
    pub fn scores(&self, g: usize, features: &FeatureMatrix<'_>) -> Result<Vec<f32>> {
        if g >= self.n_classifiers() {
            return Err(EvalError::IndexOutOfRange {
                what: "classifier index",
                position: 0,
                index: g,
                len: self.n_classifiers(),
            });
        }
        let mut out = None;
        self.for_each_scores(features, g..g + 1, |_, s| {
            out = Some(s);
            Ok(())
        })?;
        Ok(out.unwrap_or_default())
    }

    /// Calls `f(g, logits of classifier g)` for every classifier in `range`, computing the
    /// logits of a few classifiers at a time (at most ~256 MiB of scores held) with one
    /// matrix product per block of feature rows; `f` runs in parallel over the classifiers
    /// of a group. Results are returned in grid order.
    pub(crate) fn map_scores<T: Send>(
        &self,
        features: &FeatureMatrix<'_>,
        f: impl Fn(usize, Vec<f32>) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let mut out = Vec::with_capacity(self.n_classifiers());
        let per_classifier = features.n_rows().saturating_mul(self.n_outputs).saturating_mul(4).max(1);
        let group = (SCORE_BUDGET_BYTES / per_classifier).clamp(1, self.n_classifiers());
        for start in (0..self.n_classifiers()).step_by(group) {
            let end = (start + group).min(self.n_classifiers());
            let mut batch = Vec::with_capacity(end - start);
            self.for_each_scores(features, start..end, |g, s| {
                batch.push((g, s));
                Ok(())
            })?;
            let results: Result<Vec<T>> = batch.into_par_iter().map(|(g, s)| f(g, s)).collect();
            out.extend(results?);
        }
        Ok(out)
    }

    /// Logits of the classifiers in `range`, one `n_rows × K` buffer each, in order.
    fn for_each_scores(
        &self,
        features: &FeatureMatrix<'_>,
        range: std::ops::Range<usize>,
        mut f: impl FnMut(usize, Vec<f32>) -> Result<()>,
    ) -> Result<()> {
        self.check_dim(features)?;
        let (k, gk, n) = (self.n_outputs, self.n_classifiers() * self.n_outputs, features.n_rows());
        let cols = range.len() * k;
        let c0 = range.start * k;
        // The group's columns of W, contiguous (dim × cols), and its biases.
        let mut w = Vec::with_capacity(self.dim * cols);
        for d in 0..self.dim {
            w.extend_from_slice(&self.weights[d * gk + c0..d * gk + c0 + cols]);
        }
        let b = &self.biases[c0..c0 + cols];
        let mut outs: Vec<Vec<f32>> = (0..range.len()).map(|_| Vec::with_capacity(n * k)).collect();
        for r0 in (0..n).step_by(SCORE_ROW_BLOCK) {
            let r1 = (r0 + SCORE_ROW_BLOCK).min(n);
            let x = &features.as_slice()[r0 * self.dim..r1 * self.dim];
            let z = matmul(x, Op::N, &w, Op::N, r1 - r0, self.dim, cols)?;
            for row in z.chunks_exact(cols) {
                for (gi, out) in outs.iter_mut().enumerate() {
                    let s = gi * k;
                    out.extend(row[s..s + k].iter().zip(&b[s..s + k]).map(|(z, b)| z + b));
                }
            }
        }
        for (gi, out) in outs.into_iter().enumerate() {
            f(range.start + gi, out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_formatting() {
        assert_eq!(python_exp2(0.0), "0.00E+00");
        assert_eq!(python_exp2(1e-4), "1.00E-04");
        assert_eq!(python_exp2(1e-5), "1.00E-05");
        assert_eq!(python_exp2(2.5e-3), "2.50E-03");
        assert_eq!(python_exp2(1.0), "1.00E+00");
        assert_eq!(python_exp2(12345.0), "1.23E+04");
        assert_eq!(python_exp2(1e-100), "1.00E-100");
        let s = ClassifierSpec::new(1e-3, 1e-4, 64);
        assert_eq!(s.name(4, false), "classifier_4_blocks_avgpool_False_lr_0_00025_wd_1_00E-04");
        let s = ClassifierSpec::new(1.0, 0.0, 128);
        assert_eq!(s.name(1, true), "classifier_1_blocks_avgpool_True_lr_0_50000_wd_0_00E+00");
    }

    #[test]
    fn layout_round_trip_and_scores() {
        let specs = vec![ClassifierSpec::new(0.1, 0.0, 256), ClassifierSpec::new(0.2, 1e-4, 256)];
        // K = 2, dim = 3
        let w0 = vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
        let w1 = vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
        let grid = LinearGrid::from_torch_parameters(
            3,
            2,
            specs,
            &[w0.clone(), w1.clone()],
            &[vec![0.5, 0.0], vec![0.0, -1.0]],
        )
        .unwrap();
        assert_eq!(grid.weight(0), w0);
        assert_eq!(grid.weight(1), w1);
        assert_eq!(grid.bias(1), vec![0.0, -1.0]);
        let x = [1.0, 2.0, 3.0, -1.0, 0.0, 1.0];
        let f = FeatureMatrix::new(&x, 3).unwrap();
        assert_eq!(grid.scores(0, &f).unwrap(), vec![1.5, 2.0, -0.5, 0.0]);
        assert_eq!(grid.scores(1, &f).unwrap(), vec![3.0, 5.0, 1.0, -1.0]);
        let all = grid.map_scores(&f, |g, s| Ok((g, s))).unwrap();
        assert_eq!(all[1], (1, vec![3.0, 5.0, 1.0, -1.0]));
        assert!(grid.scores(2, &f).is_err());
        let bad = FeatureMatrix::new(&x, 2).unwrap();
        assert!(matches!(grid.scores(0, &bad), Err(EvalError::Mismatch { expected: 3, actual: 2, .. })));
    }

    #[test]
    fn seeded_init_statistics() {
        let specs = vec![ClassifierSpec::new(0.1, 0.0, 64); 3];
        let grid = LinearGrid::new_seeded(200, 10, specs.clone(), 0).unwrap();
        let w: Vec<f64> = (0..3).flat_map(|g| grid.weight(g)).map(f64::from).collect();
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        let sd = (w.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
        assert!(mean.abs() < 5e-4 && (sd - 0.01).abs() < 5e-4, "{mean} {sd}");
        assert!(grid.bias(2).iter().all(|&b| b == 0.0));
        assert_eq!(grid, LinearGrid::new_seeded(200, 10, specs.clone(), 0).unwrap());
        assert_ne!(grid, LinearGrid::new_seeded(200, 10, specs, 1).unwrap());
    }
}

//! Joint training of a classifier grid: losses, AdamW, cosine schedule, sampler.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::grid::LinearGrid;
use crate::data::{Split, Targets};
use crate::error::{EvalError, Result};
use crate::numeric::{Op, Real, SplitMix64, matmul};

/// Training loss of every classifier (the grid's total loss is their sum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// `nn.CrossEntropyLoss()` (mean over the batch), for multi-class targets.
    CrossEntropy,
    /// `nn.BCEWithLogitsLoss()` (mean over batch × labels), for multi-label targets.
    BinaryCrossEntropy,
}

/// AdamW hyper-parameters besides learning rate and weight decay (PyTorch defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self { beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

impl AdamWParams {
    fn validate(&self) -> Result<()> {
        let unit = |b: f64| (0.0..1.0).contains(&b);
        if !(unit(self.beta1) && unit(self.beta2) && self.eps.is_finite() && self.eps > 0.0) {
            return Err(EvalError::InvalidConfig {
                what: "AdamW parameters",
                reason: format!("betas must lie in [0, 1) and eps be positive, got {self:?}"),
            });
        }
        Ok(())
    }
}

/// Loss of each classifier on a batch, and `dL/dz` written over the logits `z`
/// (row-major `n × G·K`; `targets` has the batch's `n` rows). Per-classifier losses are
/// means as in PyTorch (`CrossEntropyLoss`: over rows; `BCEWithLogitsLoss`: over rows ×
/// labels), accumulated in f64.
/// The loss follows the targets: cross-entropy for multi-class, BCE for multi-label.
pub(crate) fn loss_and_logit_grad<R: Real>(z: &mut [R], g: usize, targets: Targets<'_>) -> Vec<f64> {
    let k = targets.n_outputs();
    let gk = g * k;
    let n = z.len() / gk;
    let rows: Vec<Vec<f64>> = z
        .par_chunks_exact_mut(gk)
        .enumerate()
        .map(|(i, row)| {
            row.chunks_exact_mut(k)
                .map(|zc| match targets {
                    Targets::Multiclass { labels, .. } => cross_entropy_row(zc, labels[i], R::from_f64(1.0 / n as f64)),
                    Targets::Multilabel { targets, .. } => {
                        bce_row(zc, &targets[i * k..(i + 1) * k], R::from_f64(1.0 / (n * k) as f64))
                    }
                })
                .collect()
        })
        .collect();
    let mut losses = vec![0.0f64; g];
    for row in rows {
        losses.iter_mut().zip(row).for_each(|(l, r)| *l += r);
    }
    let denom = match targets {
        Targets::Multiclass { .. } => n as f64,
        Targets::Multilabel { .. } => (n * k) as f64,
    };
    losses.iter_mut().for_each(|l| *l /= denom);
    losses
}

/// `logsumexp(z) − z[y]`; writes `(softmax(z) − onehot(y)) · scale` into `z`.
fn cross_entropy_row<R: Real>(z: &mut [R], y: usize, scale: R) -> f64 {
    let m = z.iter().copied().fold(z[0], Real::maximum);
    let s = z.iter().fold(R::zero(), |acc, &v| acc + (v - m).exp());
    let lse = m + s.ln();
    let loss = (lse - z[y]).to_f64();
    for (c, v) in z.iter_mut().enumerate() {
        let p = (*v - lse).exp();
        *v = if c == y { (p - R::one()) * scale } else { p * scale };
    }
    loss
}

/// Sum over labels of PyTorch's stable BCE-with-logits
/// `(1 − t)·z + m + ln(e^(−m) + e^(−z−m))`, `m = max(−z, 0)`; writes `(σ(z) − t) · scale`.
fn bce_row<R: Real>(z: &mut [R], t: &[u8], scale: R) -> f64 {
    let mut loss = 0.0;
    for (v, &t) in z.iter_mut().zip(t) {
        let t = if t == 1 { R::one() } else { R::zero() };
        let m = (R::zero() - *v).maximum(R::zero());
        loss += ((R::one() - t) * *v + m + ((R::zero() - m).exp() + (R::zero() - *v - m).exp()).ln()).to_f64();
        let sigmoid = R::one() / (R::one() + (R::zero() - *v).exp());
        *v = (sigmoid - t) * scale;
    }
    loss
}

/// Loss of each classifier of the grid `(w, b)` on the batch `x` (row-major `n × dim`)
/// and the gradient of the **summed** loss: `(losses, dW (dim × G·K), db (G·K))`.
pub(crate) fn grid_loss_and_grad<R: Real>(
    x: &[R],
    dim: usize,
    w: &[R],
    b: &[R],
    g: usize,
    targets: Targets<'_>,
) -> Result<(Vec<f64>, Vec<R>, Vec<R>)> {
    let gk = b.len();
    let n = x.len() / dim;
    let mut z = matmul(x, Op::N, w, Op::N, n, dim, gk)?;
    for row in z.chunks_exact_mut(gk) {
        row.iter_mut().zip(b).for_each(|(z, &b)| *z += b);
    }
    let losses = loss_and_logit_grad(&mut z, g, targets);
    let dw = matmul(x, Op::T, &z, Op::N, dim, n, gk)?;
    let mut db = vec![R::zero(); gk];
    for row in z.chunks_exact(gk) {
        db.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
    }
    Ok((losses, dw, db))
}

/// `CosineAnnealingLR(T_max, eta_min = 0)` of one parameter group, with PyTorch's
/// recursive update (not the closed form), so the learning rates match PyTorch's to the
/// last bit of f64.
#[derive(Debug, Clone)]
struct CosineAnnealing {
    base: f64,
    lr: f64,
    t_max: usize,
    last_epoch: usize,
}

impl CosineAnnealing {
    fn new(base: f64, t_max: usize) -> Self {
        Self { base, lr: base, t_max, last_epoch: 0 }
    }

    fn step(&mut self) {
        self.last_epoch += 1;
        let (t, tm) = (self.last_epoch as f64, self.t_max as f64);
        let pi = std::f64::consts::PI;
        // Python: (last_epoch − 1 − T_max) % (2·T_max) == 0 (a non-negative modulo).
        let restart = (self.last_epoch as i128 - 1 - self.t_max as i128).rem_euclid(2 * self.t_max as i128) == 0;
        self.lr = if restart {
            self.lr + self.base * (1.0 - (pi / tm).cos()) / 2.0
        } else {
            (1.0 + (pi * t / tm).cos()) / (1.0 + (pi * (t - 1.0) / tm).cos()) * self.lr
        };
    }
}

/// Seeded infinite shuffled sampler: an endless stream of train indices, one fresh
/// Fisher–Yates permutation (SplitMix64) per pass; batches are consecutive chunks of the
/// stream, so a batch may straddle two passes (as with DINOv2's `InfiniteSampler` and
/// `drop_last`). With `batch > n` a batch holds repeated indices.
#[derive(Debug, Clone)]
pub struct InfiniteSampler {
    rng: SplitMix64,
    perm: Vec<usize>,
    pos: usize,
}

/// Stream tag of the sampler RNG.
const SAMPLER_STREAM: u64 = 2;

impl InfiniteSampler {
    /// A sampler over `0..n` seeded with `seed` (`n ≥ 1`).
    ///
    /// # Errors
    /// `n == 0`.
    pub fn new(n: usize, seed: u64) -> Result<Self> {
        if n == 0 {
            return Err(EvalError::Empty { what: "sampler population" });
        }
        let mut rng = SplitMix64::stream(seed, SAMPLER_STREAM);
        let mut perm: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut perm);
        Ok(Self { rng, perm, pos: 0 })
    }

    /// The next `size` indices.
    pub fn next_batch(&mut self, size: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(size);
        while out.len() < size {
            if self.pos == self.perm.len() {
                self.rng.shuffle(&mut self.perm);
                self.pos = 0;
            }
            let take = (size - out.len()).min(self.perm.len() - self.pos);
            out.extend_from_slice(&self.perm[self.pos..self.pos + take]);
            self.pos += take;
        }
        out
    }
}

/// Trains a [`LinearGrid`] jointly on frozen features, one mini-batch per
/// [`step`](Self::step), exactly as the Cell-DINO `linear.py` loop does:
///
/// 1. logits of all `G` classifiers in one product `X_batch · W + b`;
/// 2. summed loss `Σ_g loss_g` (cross-entropy or BCE-with-logits, batch means);
/// 3. AdamW (PyTorch semantics, f32): `p ← p·(1 − lr·wd)`, `m ← m + (1−β₁)(g − m)`,
///    `v ← β₂v + (1−β₂)g²`, `p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`, weight decay on
///    weights and biases alike (upstream puts both in the group);
/// 4. `CosineAnnealingLR(T_max, 0)` steps once per iteration, per classifier.
#[derive(Debug, Clone)]
pub struct GridTrainer<'a> {
    grid: LinearGrid,
    train: Split<'a>,
    loss: LossKind,
    adam: AdamWParams,
    schedules: Vec<CosineAnnealing>,
    m_w: Vec<f32>,
    v_w: Vec<f32>,
    m_b: Vec<f32>,
    v_b: Vec<f32>,
    step: u64,
}

impl<'a> GridTrainer<'a> {
    /// A trainer of `grid` on `train`, the loss following the task (cross-entropy for
    /// multi-class, BCE for multi-label), with a cosine schedule over `t_max` iterations.
    ///
    /// # Errors
    /// A train split whose dimension or class count differs from the grid's, `t_max == 0`,
    /// invalid AdamW parameters.
    pub fn new(grid: LinearGrid, train: Split<'a>, t_max: usize, adam: AdamWParams) -> Result<Self> {
        adam.validate()?;
        if t_max == 0 {
            return Err(EvalError::InvalidConfig { what: "iterations", reason: "at least one is needed".into() });
        }
        if train.features().dim() != grid.dim() {
            return Err(EvalError::Mismatch {
                what: "train feature dimension (vs classifier)",
                expected: grid.dim(),
                actual: train.features().dim(),
            });
        }
        if train.targets().n_outputs() != grid.n_outputs() {
            return Err(EvalError::Mismatch {
                what: "train classes (vs classifier outputs)",
                expected: grid.n_outputs(),
                actual: train.targets().n_outputs(),
            });
        }
        let loss = match train.targets() {
            Targets::Multiclass { .. } => LossKind::CrossEntropy,
            Targets::Multilabel { .. } => LossKind::BinaryCrossEntropy,
        };
        let schedules = grid.specs().iter().map(|s| CosineAnnealing::new(s.scaled_learning_rate, t_max)).collect();
        let (w, b) = grid.weights_flat();
        let (nw, nb) = (w.len(), b.len());
        Ok(Self {
            grid,
            train,
            loss,
            adam,
            schedules,
            m_w: vec![0.0; nw],
            v_w: vec![0.0; nw],
            m_b: vec![0.0; nb],
            v_b: vec![0.0; nb],
            step: 0,
        })
    }

    /// The loss used.
    pub fn loss(&self) -> LossKind {
        self.loss
    }

    /// The learning rate each classifier uses at the next step.
    pub fn learning_rates(&self) -> Vec<f64> {
        self.schedules.iter().map(|s| s.lr).collect()
    }

    /// The grid as trained so far.
    pub fn grid(&self) -> &LinearGrid {
        &self.grid
    }

    /// The trained grid.
    pub fn into_grid(self) -> LinearGrid {
        self.grid
    }

    /// One iteration on the train rows `batch` (indices into the train split); returns
    /// each classifier's loss on the batch before the update.
    ///
    /// # Errors
    /// An empty batch or an index outside the train split.
    pub fn step(&mut self, batch: &[usize]) -> Result<Vec<f64>> {
        let n = self.train.n_samples();
        if batch.is_empty() {
            return Err(EvalError::Empty { what: "batch" });
        }
        if let Some(position) = batch.iter().position(|&i| i >= n) {
            return Err(EvalError::IndexOutOfRange { what: "batch", position, index: batch[position], len: n });
        }
        let x = self.train.features().gather(batch);
        let targets = self.train.targets().gather(batch);
        let g = self.grid.n_classifiers();
        let (w, b) = self.grid.weights_flat();
        let (losses, dw, db) = grid_loss_and_grad(&x, self.grid.dim(), w, b, g, targets.view())?;
        self.apply_adamw(&dw, &db);
        self.schedules.iter_mut().for_each(CosineAnnealing::step);
        Ok(losses)
    }

    fn apply_adamw(&mut self, dw: &[f32], db: &[f32]) {
        self.step += 1;
        let AdamWParams { beta1, beta2, eps } = self.adam;
        let step = self.step as f64;
        let bc1 = 1.0 - beta1.powf(step);
        let bc2_sqrt = (1.0 - beta2.powf(step)).powf(0.5);
        let k = self.grid.n_outputs();
        // Per column (classifier g = column / K): decay factor and step size, as the f32
        // scalars PyTorch's kernels use.
        let mut decay = Vec::with_capacity(self.schedules.len() * k);
        let mut step_size = Vec::with_capacity(self.schedules.len() * k);
        for (s, spec) in self.schedules.iter().zip(self.grid.specs()) {
            let d = if spec.weight_decay != 0.0 { Some((1.0 - s.lr * spec.weight_decay) as f32) } else { None };
            decay.extend(std::iter::repeat_n(d, k));
            step_size.extend(std::iter::repeat_n((-(s.lr / bc1)) as f32, k));
        }
        let c = AdamScalars {
            one_minus_beta1: (1.0 - beta1) as f32,
            beta2: beta2 as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            bc2_sqrt: bc2_sqrt as f32,
            eps: eps as f32,
        };
        let gk = decay.len();
        let (w, b) = self.grid.weights_mut();
        w.par_chunks_mut(gk)
            .zip(self.m_w.par_chunks_mut(gk))
            .zip(self.v_w.par_chunks_mut(gk))
            .zip(dw.par_chunks(gk))
            .for_each(|(((p, m), v), g)| c.update(p, m, v, g, &decay, &step_size));
        c.update(b, &mut self.m_b, &mut self.v_b, db, &decay, &step_size);
    }
}

#[derive(Clone, Copy)]
struct AdamScalars {
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    bc2_sqrt: f32,
    eps: f32,
}

impl AdamScalars {
    /// PyTorch `_single_tensor_adam` with `decoupled_weight_decay`, op by op in f32.
    fn update(&self, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], decay: &[Option<f32>], step: &[f32]) {
        for i in 0..p.len() {
            if let Some(d) = decay[i] {
                p[i] *= d;
            }
            m[i] += self.one_minus_beta1 * (g[i] - m[i]);
            v[i] = v[i] * self.beta2 + self.one_minus_beta2 * g[i] * g[i];
            let denom = v[i].sqrt() / self.bc2_sqrt + self.eps;
            p[i] += step[i] * m[i] / denom;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central finite differences of the summed grid loss vs the analytic gradient, f64.
    fn gradient_check(targets: Targets<'_>) {
        let (n, dim, g) = (5usize, 4usize, 2usize);
        let k = targets.n_outputs();
        let gk = g * k;
        let mut rng = SplitMix64::new(3);
        let x: Vec<f64> = (0..n * dim).map(|_| rng.normal()).collect();
        let w: Vec<f64> = (0..dim * gk).map(|_| 0.5 * rng.normal()).collect();
        let b: Vec<f64> = (0..gk).map(|_| 0.5 * rng.normal()).collect();
        let total =
            |w: &[f64], b: &[f64]| -> f64 { grid_loss_and_grad(&x, dim, w, b, g, targets).unwrap().0.iter().sum() };
        let (_, dw, db) = grid_loss_and_grad(&x, dim, &w, &b, g, targets).unwrap();
        let h = 1e-5;
        let mut worst = 0.0f64;
        for i in 0..w.len() {
            let (mut wp, mut wm) = (w.clone(), w.clone());
            wp[i] += h;
            wm[i] -= h;
            let fd = (total(&wp, &b) - total(&wm, &b)) / (2.0 * h);
            worst = worst.max((fd - dw[i]).abs());
        }
        for i in 0..b.len() {
            let (mut bp, mut bm) = (b.clone(), b.clone());
            bp[i] += h;
            bm[i] -= h;
            let fd = (total(&w, &bp) - total(&w, &bm)) / (2.0 * h);
            worst = worst.max((fd - db[i]).abs());
        }
        assert!(worst < 1e-8, "{:?}: max |finite difference − analytic| = {worst:e}", targets.task());
    }

    #[test]
    fn cross_entropy_gradient_matches_finite_differences() {
        let labels = [0usize, 2, 1, 2, 0];
        gradient_check(Targets::multiclass(&labels, 3));
    }

    #[test]
    fn bce_gradient_matches_finite_differences() {
        let t = [1u8, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1];
        gradient_check(Targets::multilabel(&t, 3));
    }

    #[test]
    fn losses_match_closed_forms() {
        // One row, K = 2, logits (1, 3): CE(y = 0) = ln(e + e³) − 1; BCE(t = (1, 0)) =
        // mean(ln(1 + e^−1), ln(1 + e³)).
        let mut z = vec![1.0f64, 3.0];
        let l = loss_and_logit_grad(&mut z, 1, Targets::multiclass(&[0], 2));
        let ce = (1f64.exp() + 3f64.exp()).ln() - 1.0;
        assert!((l[0] - ce).abs() < 1e-14);
        let mut z = vec![1.0f64, 3.0];
        let l = loss_and_logit_grad(&mut z, 1, Targets::multilabel(&[1, 0], 2));
        let bce = ((1.0 + (-1f64).exp()).ln() + (1.0 + 3f64.exp()).ln()) / 2.0;
        assert!((l[0] - bce).abs() < 1e-14);
        // Extreme logits stay finite.
        let mut z = vec![1e4f32, -1e4];
        let l = loss_and_logit_grad(&mut z, 1, Targets::multilabel(&[0, 1], 2));
        assert!((l[0] - 1e4).abs() < 1e-2 && z.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn cosine_schedule_matches_closed_form() {
        let mut s = CosineAnnealing::new(0.25, 10);
        for t in 1..=10 {
            s.step();
            let closed = 0.25 * (1.0 + (std::f64::consts::PI * t as f64 / 10.0).cos()) / 2.0;
            assert!((s.lr - closed).abs() < 1e-15, "{t}: {} vs {closed}", s.lr);
        }
        assert!(s.lr.abs() < 1e-17);
    }

    #[test]
    fn sampler_covers_each_pass() {
        let mut s = InfiniteSampler::new(7, 0).unwrap();
        let stream: Vec<usize> = (0..7).flat_map(|_| s.next_batch(3)).collect();
        for pass in stream.chunks_exact(7) {
            let mut p = pass.to_vec();
            p.sort_unstable();
            assert_eq!(p, (0..7).collect::<Vec<_>>());
        }
        let mut a = InfiniteSampler::new(7, 0).unwrap();
        let mut b = InfiniteSampler::new(7, 1).unwrap();
        assert_ne!(a.next_batch(7), b.next_batch(7));
        assert_eq!(InfiniteSampler::new(3, 0).unwrap().next_batch(5).len(), 5);
        assert!(InfiniteSampler::new(0, 0).is_err());
    }
}

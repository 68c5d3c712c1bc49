//! k-nearest-neighbour evaluation: the weighted cosine kNN of DINOv2 (`knn.py`) and the
//! exact 1-NN of the CHAMMI protocol.
//!
//! Both run one brute-force search, blocked over queries **and** train rows: a block of
//! queries is multiplied by one block of train rows at a time (candle CPU GEMM,
//! multi-threaded) and every query keeps a bounded heap of its best `k` candidates
//! (updated in parallel over queries). Memory is one prepared copy of the train features
//! plus `query_block × train_block` scores, never the full similarity matrix.
//!
//! **Ranking and ties.** Candidates are ordered by decreasing similarity (increasing
//! distance); equal scores are ordered by increasing train row index, so the earlier train
//! row wins a tie (also for the 1-NN). `torch.topk` leaves the order of ties unspecified;
//! the fixtures of this crate contain no ties. Vote ties between classes go to the lowest
//! class index (the first maximum, as `torch.argmax`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::ops::Range;

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{FeatureMatrix, Split, Targets, Task};
use crate::error::{EvalError, Result};
use crate::numeric::Real;
use crate::report::SplitMetrics;

/// The DINOv2 kNN temperature.
pub const DEFAULT_TEMPERATURE: f64 = 0.07;

/// Block sizes of the brute-force search: rows of queries and of train features
/// multiplied together at once. They change memory and speed; results only through the
/// rounding of the f32 dot products (GEMM kernels depend on the block shape), ~1e-7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocking {
    /// Queries per block (default 1024).
    pub query_block: usize,
    /// Train rows per block (default 4096).
    pub train_block: usize,
}

impl Default for Blocking {
    fn default() -> Self {
        Self { query_block: 1024, train_block: 4096 }
    }
}

impl Blocking {
    fn validate(&self) -> Result<()> {
        if self.query_block == 0 || self.train_block == 0 {
            return Err(EvalError::InvalidConfig { what: "blocking", reason: "block sizes must be at least 1".into() });
        }
        Ok(())
    }
}

/// Configuration of the weighted kNN classifier (DINOv2 `knn.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnnConfig {
    /// Numbers of neighbours evaluated at once (`--nb_knn`; Cell-DINO default `[1]`).
    pub ks: Vec<usize>,
    /// Softmax temperature `T` of the vote weights (`--temperature`, 0.07).
    pub temperature: f64,
    /// Search blocking.
    #[serde(default)]
    pub blocking: Blocking,
}

impl Default for KnnConfig {
    fn default() -> Self {
        Self { ks: vec![1], temperature: DEFAULT_TEMPERATURE, blocking: Blocking::default() }
    }
}

impl KnnConfig {
    /// The configuration with these `ks` and the default temperature and blocking.
    pub fn with_ks(ks: &[usize]) -> Self {
        Self { ks: ks.to_vec(), ..Self::default() }
    }

    fn max_k(&self, n_train: usize) -> Result<usize> {
        if self.ks.is_empty() {
            return Err(EvalError::InvalidConfig { what: "ks", reason: "no k given".into() });
        }
        if self.ks.contains(&0) {
            return Err(EvalError::InvalidConfig { what: "ks", reason: "k must be at least 1".into() });
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(EvalError::InvalidConfig {
                what: "temperature",
                reason: format!("{} is not a positive finite number", self.temperature),
            });
        }
        self.blocking.validate()?;
        let max_k = self.ks.iter().copied().max().unwrap_or(1);
        if max_k > n_train {
            return Err(EvalError::TooFewSamples {
                what: "train split (fewer rows than the largest k)",
                n: n_train,
                min: max_k,
            });
        }
        Ok(max_k)
    }
}

/// The `k` nearest train rows of each query, best first (row-major `n_queries × k`).
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    /// Neighbours per query.
    pub k: usize,
    /// Train row indices.
    pub indices: Vec<usize>,
    /// Cosine similarities (dot products of the L2-normalised rows), decreasing per query.
    pub similarities: Vec<f32>,
}

/// kNN vote scores for several `k` (see [`knn_scores`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KnnScores {
    /// The `k` of each score matrix, as configured.
    pub ks: Vec<usize>,
    /// Number of queries.
    pub n_queries: usize,
    /// Classes (multi-class) or labels (multi-label).
    pub n_outputs: usize,
    /// One row-major `n_queries × n_outputs` matrix per entry of `ks`.
    pub scores: Vec<Vec<f32>>,
}

/// kNN results: metrics for each `k`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnnReport {
    pub task: Task,
    pub temperature: f64,
    pub n_train: usize,
    pub n_test: usize,
    pub dim: usize,
    /// Metrics of the test split per `k` (JSON: `"k": {"1": {...}, "20": {...}}`).
    pub k: BTreeMap<usize, SplitMetrics>,
}

/// Distance of the exact nearest-neighbour search ([`nearest_neighbours`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// Euclidean distance `‖q − t‖₂`.
    L2,
    /// Cosine distance `1 − cos(q, t)` (rows L2-normalised; a zero row has cosine 0 with
    /// everything).
    Cosine,
}

/// The nearest train row of a query and its distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    pub index: usize,
    pub distance: f64,
}

/// A candidate neighbour. `Ord` puts the *worse* candidate first (greater), so a
/// `BinaryHeap` root is the worst kept one: lower score is worse; on equal scores the
/// higher train index is worse.
#[derive(Debug, Clone, Copy)]
struct Cand {
    score: f64,
    index: usize,
}

impl PartialEq for Cand {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Cand {
    fn cmp(&self, other: &Self) -> Ordering {
        other.score.total_cmp(&self.score).then(self.index.cmp(&other.index))
    }
}

/// Bounded heap of the `k` best candidates of one query.
struct TopK {
    k: usize,
    heap: BinaryHeap<Cand>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    fn offer(&mut self, cand: Cand) {
        if self.heap.len() < self.k {
            self.heap.push(cand);
        } else if let Some(mut worst) = self.heap.peek_mut()
            && cand < *worst
        {
            *worst = cand;
        }
    }

    /// The kept candidates, best first.
    fn into_sorted(self) -> Vec<Cand> {
        self.heap.into_sorted_vec()
    }
}

/// Brute-force top-`k` search, blocked over queries and train rows.
///
/// `prep_train(range)` / `prep_query(range)` return the prepared rows of that range
/// (row-major, `dim` wide); `score(dot, query_row, train_row)` turns a dot product into
/// a score (higher is better; rows are global indices). `sink(first_query, tops)` receives
/// each query block's results, best first.
#[allow(clippy::too_many_arguments)]
fn search<R: Real>(
    n_train: usize,
    n_queries: usize,
    dim: usize,
    k: usize,
    blocking: Blocking,
    prep_train: impl Fn(Range<usize>) -> Vec<R>,
    prep_query: impl Fn(Range<usize>) -> Vec<R>,
    score: impl Fn(R, usize, usize) -> f64 + Sync,
    mut sink: impl FnMut(usize, Vec<Vec<Cand>>) -> Result<()>,
) -> Result<()> {
    let mut train_blocks = Vec::with_capacity(n_train.div_ceil(blocking.train_block));
    for start in (0..n_train).step_by(blocking.train_block) {
        let end = (start + blocking.train_block).min(n_train);
        let rows = prep_train(start..end);
        train_blocks.push((start, end - start, Tensor::from_vec(rows, (end - start, dim), &Device::Cpu)?.t()?));
    }
    for q_start in (0..n_queries).step_by(blocking.query_block) {
        let q_end = (q_start + blocking.query_block).min(n_queries);
        let bq = q_end - q_start;
        let queries = Tensor::from_vec(prep_query(q_start..q_end), (bq, dim), &Device::Cpu)?;
        let mut tops: Vec<TopK> = (0..bq).map(|_| TopK::new(k)).collect();
        for (t_start, bt, train_t) in &train_blocks {
            let dots = queries.matmul(train_t)?.flatten_all()?.to_vec1::<R>()?;
            tops.par_iter_mut().zip(dots.par_chunks_exact(*bt)).enumerate().for_each(|(i, (top, row))| {
                for (j, &d) in row.iter().enumerate() {
                    // `+ 0.0` turns −0.0 into +0.0, so that equal scores compare equal.
                    let s = score(d, q_start + i, t_start + j) + 0.0;
                    top.offer(Cand { score: s, index: t_start + j });
                }
            });
        }
        sink(q_start, tops.into_iter().map(TopK::into_sorted).collect())?;
    }
    Ok(())
}

/// Rows of `m` in `range`, each divided by `max(‖row‖₂, 1e-12)` (`torch.nn.functional.
/// normalize`), in f32 (norm accumulated in f64).
fn normalized_f32(m: &FeatureMatrix<'_>, range: Range<usize>) -> Vec<f32> {
    let mut out = m.as_slice()[range.start * m.dim()..range.end * m.dim()].to_vec();
    for row in out.chunks_exact_mut(m.dim()) {
        let norm = row.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt().max(1e-12) as f32;
        row.iter_mut().for_each(|x| *x /= norm);
    }
    out
}

/// Rows of `m` in `range` as f64, L2-normalised when `normalize` (zero rows stay zero).
fn rows_f64(m: &FeatureMatrix<'_>, range: Range<usize>, normalize: bool) -> Vec<f64> {
    let mut out: Vec<f64> =
        m.as_slice()[range.start * m.dim()..range.end * m.dim()].iter().map(|&x| x.into()).collect();
    if normalize {
        for row in out.chunks_exact_mut(m.dim()) {
            let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            row.iter_mut().for_each(|x| *x /= norm);
        }
    }
    out
}

fn check_dims(train: &FeatureMatrix<'_>, queries: &FeatureMatrix<'_>) -> Result<()> {
    if train.dim() != queries.dim() {
        return Err(EvalError::Mismatch {
            what: "query feature dimension (vs train)",
            expected: train.dim(),
            actual: queries.dim(),
        });
    }
    Ok(())
}

/// Runs the cosine top-`k` search of DINOv2 kNN (f32 throughout, as upstream) and hands
/// each query block's neighbours to `sink`.
fn cosine_search(
    train: &FeatureMatrix<'_>,
    queries: &FeatureMatrix<'_>,
    k: usize,
    blocking: Blocking,
    sink: impl FnMut(usize, Vec<Vec<Cand>>) -> Result<()>,
) -> Result<()> {
    check_dims(train, queries)?;
    blocking.validate()?;
    if k == 0 {
        return Err(EvalError::InvalidConfig { what: "k", reason: "k must be at least 1".into() });
    }
    if k > train.n_rows() {
        return Err(EvalError::TooFewSamples { what: "train split (fewer rows than k)", n: train.n_rows(), min: k });
    }
    search::<f32>(
        train.n_rows(),
        queries.n_rows(),
        train.dim(),
        k,
        blocking,
        |r| normalized_f32(train, r),
        |r| normalized_f32(queries, r),
        |d, _, _| f64::from(d),
        sink,
    )
}

/// The `k` most cosine-similar train rows of every query (features L2-normalised, f32 dot
/// products, as DINOv2 `knn.py`), best first; ties go to the lower train index.
///
/// # Errors
/// Different feature dimensions, `k == 0`, `k` larger than the train set, zero block sizes.
pub fn cosine_neighbours(
    train: &FeatureMatrix<'_>,
    queries: &FeatureMatrix<'_>,
    k: usize,
    blocking: Blocking,
) -> Result<Neighbours> {
    let mut indices = Vec::with_capacity(queries.n_rows() * k);
    let mut similarities = Vec::with_capacity(queries.n_rows() * k);
    cosine_search(train, queries, k, blocking, |_, tops| {
        for c in tops.iter().flatten() {
            indices.push(c.index);
            similarities.push(c.score as f32);
        }
        Ok(())
    })?;
    Ok(Neighbours { k, indices, similarities })
}

/// Vote scores of one query for every configured `k`, in the order of `ks`:
/// weights `softmax(sim / T)` over all `max_k` neighbours, then for each `k` the sum of the
/// first `k` weights times the neighbour's one-hot (multi-class) or multi-hot (multi-label)
/// target — weights are not renormalised. f32, as upstream; clamped to at most 1.
fn votes(neighbours: &[Cand], targets: &Targets<'_>, ks: &[usize], temperature: f32, out: &mut [Vec<f32>]) {
    let scaled: Vec<f32> = neighbours.iter().map(|c| c.score as f32 / temperature).collect();
    let max = scaled.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scaled.iter().map(|&s| (s - max).exp()).collect();
    let inv_sum = 1.0 / exps.iter().sum::<f32>();
    let n_outputs = targets.n_outputs();
    let mut acc = vec![0.0f32; n_outputs];
    let mut order: Vec<usize> = (0..ks.len()).collect();
    order.sort_by_key(|&i| ks[i]);
    let mut next = 0;
    for (j, (cand, e)) in neighbours.iter().zip(&exps).enumerate() {
        let w = e * inv_sum;
        match *targets {
            Targets::Multiclass { labels, .. } => acc[labels[cand.index]] += w,
            Targets::Multilabel { targets, n_labels } => {
                let row = &targets[cand.index * n_labels..(cand.index + 1) * n_labels];
                acc.iter_mut().zip(row).for_each(|(a, &t)| *a += w * f32::from(t));
            }
        }
        while next < order.len() && ks[order[next]] == j + 1 {
            // Votes lie in [0, 1]; f32 rounding can push a sum of weights one ulp above 1,
            // which would make the multi-label rule switch to a sigmoid: clamp.
            out[order[next]].extend(acc.iter().map(|v| v.min(1.0)));
            next += 1;
        }
    }
}

/// Weighted kNN vote scores of `queries` against a labelled train split, for every `k`
/// of `config` (DINOv2 `KnnModule.forward`): cosine top-`max(k)` neighbours, weights
/// `softmax(sim / T)` over those `max(k)`, and for each `k` the sum over the first `k`
/// neighbours of weight × one-hot label (multi-hot rows as they are for multi-label).
///
/// Votes are clamped to at most 1: they cannot exceed 1 mathematically, but f32 rounding
/// of a sum of weights can, and a score above 1 would switch the torchmetrics multi-label
/// rule to a sigmoid (every positive vote then counts as a prediction).
///
/// Returns `|ks| × n_queries × n_outputs` floats; for large evaluations
/// [`knn_evaluate`] keeps only what the metrics need.
///
/// # Errors
/// Those of [`KnnConfig`] validation (empty `ks`, `k = 0`, `k > n_train`, bad temperature
/// or blocking) and a feature dimension that differs from the train split's.
pub fn knn_scores(train: &Split<'_>, queries: &FeatureMatrix<'_>, config: &KnnConfig) -> Result<KnnScores> {
    let max_k = config.max_k(train.n_samples())?;
    let targets = train.targets();
    let mut scores = vec![Vec::new(); config.ks.len()];
    let t = config.temperature as f32;
    cosine_search(&train.features(), queries, max_k, config.blocking, |_, tops| {
        for top in &tops {
            votes(top, &targets, &config.ks, t, &mut scores);
        }
        Ok(())
    })?;
    Ok(KnnScores { ks: config.ks.clone(), n_queries: queries.n_rows(), n_outputs: targets.n_outputs(), scores })
}

/// Weighted kNN evaluation of `test` against `train` (see [`knn_scores`]): metrics per
/// `k` from the vote scores — arg-max (first maximum) for multi-class, the `> 0.5` rule
/// for multi-label (votes lie in [0, 1], so no sigmoid).
///
/// Multi-class votes are reduced to predictions block by block, so memory stays
/// `O(n_test · |ks|)` besides the search itself.
///
/// # Errors
/// As [`knn_scores`], plus test targets of another task or class count.
pub fn knn_evaluate(train: &Split<'_>, test: &Split<'_>, config: &KnnConfig) -> Result<KnnReport> {
    knn_evaluate_reporting(train, test, config, &mut |_, _| {})
}

/// [`knn_evaluate`], calling `progress(done, total)` with the test rows searched so far after
/// every query block (for a progress bar: the search is nearly all of the time).
pub fn knn_evaluate_reporting(
    train: &Split<'_>,
    test: &Split<'_>,
    config: &KnnConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<KnnReport> {
    train.check_compatible(test, "test split (vs train)")?;
    let max_k = config.max_k(train.n_samples())?;
    let targets = train.targets();
    let t = config.temperature as f32;
    let mut predictions = vec![Vec::with_capacity(test.n_samples()); config.ks.len()];
    let mut multilabel_scores = vec![Vec::new(); config.ks.len()];
    let mut block_votes = vec![Vec::new(); config.ks.len()];
    cosine_search(&train.features(), &test.features(), max_k, config.blocking, |q_start, tops| {
        for top in &tops {
            block_votes.iter_mut().for_each(Vec::clear);
            votes(top, &targets, &config.ks, t, &mut block_votes);
            for (i, v) in block_votes.iter().enumerate() {
                match targets.task() {
                    Task::Multiclass => predictions[i].push(first_argmax(v)),
                    Task::Multilabel => multilabel_scores[i].extend_from_slice(v),
                }
            }
        }
        progress(q_start + tops.len(), test.n_samples());
        Ok(())
    })?;
    let mut k = BTreeMap::new();
    for (i, &kk) in config.ks.iter().enumerate() {
        let metrics = match test.targets() {
            Targets::Multiclass { labels, n_classes } => SplitMetrics::Multiclass(
                crate::MulticlassMetrics::from_predictions(labels, &predictions[i], n_classes)?.into(),
            ),
            tt @ Targets::Multilabel { .. } => SplitMetrics::from_scores(tt, &multilabel_scores[i])?,
        };
        k.insert(kk, metrics);
    }
    Ok(KnnReport {
        task: targets.task(),
        temperature: config.temperature,
        n_train: train.n_samples(),
        n_test: test.n_samples(),
        dim: train.features().dim(),
        k,
    })
}

/// Index of the first maximum.
fn first_argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate().skip(1) {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// The exact nearest train row of every query under `distance` (brute force, f64).
///
/// Distances are computed like scikit-learn's `euclidean_distances` / `cosine_distances`:
/// in f64, L2 as `√max(‖q‖² + ‖t‖² − 2 q·t, 0)`, cosine as `1 − q̂·t̂` on rows divided by
/// `max(‖row‖, 1e-12)`. The smallest distance wins; equal distances go to the lower train
/// index (the first minimum, as `argmin`). MorphEm's faiss `IndexFlatL2`/`IndexFlatIP` run
/// the same search in f32, so near-ties (within f32 rounding) may resolve differently.
///
/// # Errors
/// Different feature dimensions, zero block sizes.
pub fn nearest_neighbours(
    train: &FeatureMatrix<'_>,
    queries: &FeatureMatrix<'_>,
    distance: Distance,
    blocking: Blocking,
) -> Result<Vec<Neighbour>> {
    nearest_neighbours_reporting(train, queries, distance, blocking, &mut |_, _| {})
}

/// [`nearest_neighbours`], calling `progress(done, total)` with the queries searched so far
/// after every query block (for a progress bar).
pub fn nearest_neighbours_reporting(
    train: &FeatureMatrix<'_>,
    queries: &FeatureMatrix<'_>,
    distance: Distance,
    blocking: Blocking,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Neighbour>> {
    check_dims(train, queries)?;
    blocking.validate()?;
    let normalize = distance == Distance::Cosine;
    let sq_norms = |m: &FeatureMatrix<'_>| -> Vec<f64> {
        (0..m.n_rows()).map(|i| m.row(i).iter().map(|&x| f64::from(x) * f64::from(x)).sum()).collect()
    };
    let (train_sq, query_sq) = match distance {
        Distance::L2 => (sq_norms(train), sq_norms(queries)),
        Distance::Cosine => (Vec::new(), Vec::new()),
    };
    let mut out = Vec::with_capacity(queries.n_rows());
    search::<f64>(
        train.n_rows(),
        queries.n_rows(),
        train.dim(),
        1,
        blocking,
        |r| rows_f64(train, r, normalize),
        |r| rows_f64(queries, r, normalize),
        |dot, q, t| match distance {
            Distance::L2 => -(query_sq[q] + train_sq[t] - 2.0 * dot).max(0.0),
            Distance::Cosine => -(1.0 - dot),
        },
        |q_start, tops| {
            for top in &tops {
                let best = top[0];
                let distance = match distance {
                    Distance::L2 => (-best.score).sqrt(),
                    Distance::Cosine => -best.score,
                };
                out.push(Neighbour { index: best.index, distance });
            }
            progress(q_start + tops.len(), queries.n_rows());
            Ok(())
        },
    )?;
    Ok(out)
}

/// 1-NN classification (CHAMMI): the class of the nearest train row under `distance`
/// (see [`nearest_neighbours`] for precision and ties).
///
/// # Errors
/// `train_labels` not one per train row, different feature dimensions, zero block sizes.
pub fn one_nn_predict(
    train: &FeatureMatrix<'_>,
    train_labels: &[usize],
    queries: &FeatureMatrix<'_>,
    distance: Distance,
    blocking: Blocking,
) -> Result<Vec<usize>> {
    if train_labels.len() != train.n_rows() {
        return Err(EvalError::LengthMismatch {
            what: "train labels (one per train row)",
            expected: train.n_rows(),
            actual: train_labels.len(),
        });
    }
    Ok(nearest_neighbours(train, queries, distance, blocking)?.into_iter().map(|n| train_labels[n.index]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::recording;

    /// 12 train and 10 test rows in 3-D, 3 classes; query blocks of 3 rows (4 blocks).
    fn small() -> (Vec<f32>, Vec<usize>, Vec<f32>, Vec<usize>, Blocking) {
        let point = |i: usize| [(i % 3) as f32 + 0.1 * (i % 4) as f32, 1.0 - 0.2 * (i % 5) as f32, (i % 2) as f32];
        let (tx, ty) = ((0..12).flat_map(point).collect(), (0..12).map(|i| i % 3).collect());
        let (qx, qy) = ((20..30).flat_map(point).collect(), (20..30).map(|i| i % 3).collect());
        (tx, ty, qx, qy, Blocking { query_block: 3, train_block: 5 })
    }

    #[test]
    fn knn_evaluate_reports_query_rows() {
        let (tx, ty, qx, qy, blocking) = small();
        let train = Split::from_parts(&tx, 3, Targets::multiclass(&ty, 3)).unwrap();
        let test = Split::from_parts(&qx, 3, Targets::multiclass(&qy, 3)).unwrap();
        let config = KnnConfig { blocking, ..KnnConfig::with_ks(&[1, 5]) };
        let (reported, total) = recording(|p| knn_evaluate_reporting(&train, &test, &config, p).unwrap());
        assert_eq!(total, 10);
        assert_eq!(reported, knn_evaluate(&train, &test, &config).unwrap());
    }

    #[test]
    fn nearest_neighbours_reports_query_rows() {
        let (tx, _, qx, _, blocking) = small();
        let (train, queries) = (FeatureMatrix::new(&tx, 3).unwrap(), FeatureMatrix::new(&qx, 3).unwrap());
        let (reported, total) =
            recording(|p| nearest_neighbours_reporting(&train, &queries, Distance::L2, blocking, p).unwrap());
        assert_eq!(total, 10);
        assert_eq!(reported, nearest_neighbours(&train, &queries, Distance::L2, blocking).unwrap());
    }

    #[test]
    fn heap_keeps_best_and_breaks_ties_by_index() {
        let mut top = TopK::new(3);
        for (score, index) in [(0.5, 4), (0.9, 7), (0.5, 2), (0.1, 0), (0.9, 3), (0.5, 1)] {
            top.offer(Cand { score, index });
        }
        let got: Vec<(f64, usize)> = top.into_sorted().iter().map(|c| (c.score, c.index)).collect();
        assert_eq!(got, vec![(0.9, 3), (0.9, 7), (0.5, 1)]);
    }

    #[test]
    fn votes_sum_first_k_weights_without_renormalising() {
        let cands = [Cand { score: 0.9, index: 0 }, Cand { score: 0.8, index: 1 }, Cand { score: 0.1, index: 2 }];
        let labels = [1usize, 0, 1];
        let targets = Targets::multiclass(&labels, 2);
        let mut out = vec![Vec::new(); 3];
        votes(&cands, &targets, &[3, 1, 2], 0.07, &mut out);
        let e: Vec<f64> = [0.9f64, 0.8, 0.1].iter().map(|s| (s / 0.07f64).exp()).collect();
        let z: f64 = e.iter().sum();
        let w: Vec<f64> = e.iter().map(|x| x / z).collect();
        let close = |a: &[f32], b: &[f64]| a.iter().zip(b).all(|(&x, &y)| (f64::from(x) - y).abs() < 1e-6);
        assert!(close(&out[1], &[0.0, w[0]]), "{:?}", out[1]);
        assert!(close(&out[2], &[w[1], w[0]]));
        assert!(close(&out[0], &[w[1], w[0] + w[2]]));
    }
}

//! Linear-probe grid and kNN timings on CHAMMI-sized features
//! (`cargo bench -p cellino-eval --bench cpu_eval`).
//!
//! Inputs: 50,000 train rows × 1,024 f32 columns (10 Gaussian classes, seeded), 5,000 queries.
//!
//! * `cpu_linear_probe/step_b64`: one AdamW iteration of the default grid (16 lr × 3 wd = 48
//!   `Linear(1024, 10)` classifiers trained jointly) on a batch of 64 rows.
//! * `cpu_linear_probe/epoch_145it_b64`: [`train_linear_grid`] for one epoch of dinov2's default
//!   length (145 iterations, batch 64), set-up included.
//! * `cpu_knn/50k_x_5k_k20`: [`knn_scores`] with k = 20 (cosine, softmax votes), default blocking.

use std::hint::black_box;
use std::time::Duration;

use cellino_eval::{
    AdamWParams, GridTrainer, KnnConfig, LinearGrid, LinearProbeConfig, Split, Targets, knn_scores, train_linear_grid,
};
use criterion::{Criterion, criterion_group, criterion_main};

const N_TRAIN: usize = 50_000;
const N_TEST: usize = 5_000;
const DIM: usize = 1024;
const CLASSES: usize = 10;

/// SplitMix64: a seeded generator so every run times the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1): enough spread for a benchmark, no need for a normal.
    fn unit(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// `n` rows around one of `CLASSES` centres each, and their labels.
fn data(n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut rng = Rng(7);
    let centres: Vec<f32> = (0..CLASSES * DIM).map(|_| rng.unit()).collect();
    let mut rng = Rng(seed);
    let mut x = Vec::with_capacity(n * DIM);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let c = (rng.next() % CLASSES as u64) as usize;
        x.extend(centres[c * DIM..(c + 1) * DIM].iter().map(|&m| m + 2.0 * rng.unit()));
        y.push(c);
    }
    (x, y)
}

fn linear_probe(c: &mut Criterion) {
    let (x, y) = data(N_TRAIN, 1);
    let train = Split::from_parts(&x, DIM, Targets::multiclass(&y, CLASSES)).expect("train split");
    let config =
        LinearProbeConfig { epochs: 1, epoch_length: Some(145), batch_size: 64, ..LinearProbeConfig::default() };
    let mut g = c.benchmark_group("cpu_linear_probe");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(2));

    let grid = LinearGrid::new_seeded(DIM, CLASSES, config.specs(), 0).expect("grid");
    let mut trainer = GridTrainer::new(grid, train, 1_000_000, AdamWParams::default()).expect("trainer");
    let mut rng = Rng(3);
    g.bench_function("step_b64", |b| {
        b.iter(|| {
            let batch: Vec<usize> = (0..64).map(|_| (rng.next() % N_TRAIN as u64) as usize).collect();
            black_box(trainer.step(&batch).expect("step"))
        })
    });
    g.bench_function("epoch_145it_b64", |b| b.iter(|| black_box(train_linear_grid(&train, &config).expect("grid"))));
    g.finish();
}

fn knn(c: &mut Criterion) {
    let (x, y) = data(N_TRAIN, 1);
    let (q, _) = data(N_TEST, 2);
    let train = Split::from_parts(&x, DIM, Targets::multiclass(&y, CLASSES)).expect("train split");
    let queries = cellino_eval::FeatureMatrix::new(&q, DIM).expect("queries");
    let config = KnnConfig::with_ks(&[20]);
    let mut g = c.benchmark_group("cpu_knn");
    g.sample_size(10).measurement_time(Duration::from_secs(60)).warm_up_time(Duration::from_secs(1));
    g.bench_function("50k_x_5k_k20", |b| b.iter(|| black_box(knn_scores(&train, &queries, &config).expect("knn"))));
    g.finish();
}

criterion_group!(benches, linear_probe, knn);
criterion_main!(benches);

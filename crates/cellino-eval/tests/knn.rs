//! kNN and 1-NN: blocked search vs brute force, the tie rule, bad input.

mod common;

use cellino_eval::{
    Blocking, Distance, EvalError, FeatureMatrix, KnnConfig, Split, Targets, cosine_neighbours, knn_evaluate,
    knn_scores, nearest_neighbours, one_nn_predict,
};
use common::Rng;

fn normalized(row: &[f32]) -> Vec<f64> {
    let n = row.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt().max(1e-12);
    row.iter().map(|&x| f64::from(x) / n).collect()
}

/// Brute-force cosine kNN in f64 against the blocked f32 search, on random data with
/// duplicated train rows, for several blockings (1 × 1 blocks included).
#[test]
fn blocked_cosine_search_equals_brute_force() {
    let mut rng = Rng::new(11);
    let (n_train, n_test, dim, k) = (203, 37, 9, 12);
    let mut train: Vec<f32> = (0..n_train * dim).map(|_| rng.normal() as f32).collect();
    // Duplicate a few rows: exact ties between distinct train indices.
    for (dst, src) in [(50, 3), (120, 3), (77, 10)] {
        let row = train[src * dim..(src + 1) * dim].to_vec();
        train[dst * dim..(dst + 1) * dim].copy_from_slice(&row);
    }
    let test: Vec<f32> = (0..n_test * dim).map(|_| rng.normal() as f32).collect();
    let tm = FeatureMatrix::new(&train, dim).unwrap();
    let qm = FeatureMatrix::new(&test, dim).unwrap();

    let reference = cosine_neighbours(&tm, &qm, k, Blocking::default()).unwrap();
    for blocking in [
        Blocking { query_block: 1, train_block: 1 },
        Blocking { query_block: 5, train_block: 16 },
        Blocking { query_block: 64, train_block: 7 },
    ] {
        // GEMM kernels differ with the block shape, so similarities may differ in the last
        // bits; the neighbours must not (no near-ties in these data besides exact ones).
        let got = cosine_neighbours(&tm, &qm, k, blocking).unwrap();
        assert_eq!(got.indices, reference.indices, "{blocking:?}");
        let err = got.similarities.iter().zip(&reference.similarities).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 1e-6, "{blocking:?}: {err:e}");
    }

    let train_n: Vec<Vec<f64>> = (0..n_train).map(|i| normalized(tm.row(i))).collect();
    for q in 0..n_test {
        let qn = normalized(qm.row(q));
        let mut sims: Vec<(f64, usize)> =
            train_n.iter().enumerate().map(|(i, t)| (t.iter().zip(&qn).map(|(a, b)| a * b).sum(), i)).collect();
        sims.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let got = &reference.indices[q * k..(q + 1) * k];
        let got_sims = &reference.similarities[q * k..(q + 1) * k];
        let kth = sims[k - 1].0;
        for (j, (&i, &s)) in got.iter().zip(got_sims).enumerate() {
            // Same neighbour as brute force, or one within f32 rounding of it.
            let exact = sims.iter().find(|p| p.1 == i).unwrap().0;
            assert!((f64::from(s) - exact).abs() < 1e-6, "query {q}: similarity of {i}");
            assert!(exact >= kth - 1e-6, "query {q}: {i} is not among the top {k}");
            assert!((exact - sims[j].0).abs() < 1e-6, "query {q}: rank {j}");
        }
        // Decreasing similarities; the duplicates of a row appear in index order.
        assert!(got_sims.windows(2).all(|w| w[0] >= w[1]));
        for (a, b) in [(3, 50), (50, 120), (10, 77)] {
            if let (Some(pa), Some(pb)) = (got.iter().position(|&i| i == a), got.iter().position(|&i| i == b)) {
                assert!(pa < pb, "query {q}: tie between {a} and {b} not broken by index");
            }
        }
    }
}

/// Axis-aligned rows make every similarity exactly 0 or 1: the lower train index wins ties,
/// in the neighbour list, the votes and the 1-NN.
#[test]
fn ties_go_to_the_lower_train_index() {
    #[rustfmt::skip]
    let train = [
        1.0f32, 0.0, 0.0, // 0: e0, class 0
        0.0, 1.0, 0.0,    // 1: e1, class 1
        2.0, 0.0, 0.0,    // 2: e0 (scaled), class 2
        0.0, 0.0, 1.0,    // 3: e2, class 1
        1.0, 0.0, 0.0,    // 4: e0, class 1
        0.0, 3.0, 0.0,    // 5: e1 (scaled), class 0
    ];
    let labels = [0usize, 2, 2, 1, 1, 0];
    let queries = [5.0f32, 0.0, 0.0, 0.0, 0.5, 0.0];
    let tm = FeatureMatrix::new(&train, 3).unwrap();
    let qm = FeatureMatrix::new(&queries, 3).unwrap();
    let nb = cosine_neighbours(&tm, &qm, 4, Blocking { query_block: 1, train_block: 2 }).unwrap();
    assert_eq!(nb.indices, vec![0, 2, 4, 1, /**/ 1, 5, 0, 2]);
    assert_eq!(nb.similarities, vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]);

    // k = 1: 1-NN by cosine is row 0 (class 0) for query 0 and row 1 (class 2) for query 1.
    let split = Split::new(tm, Targets::multiclass(&labels, 3)).unwrap();
    let scores = knn_scores(&split, &qm, &KnnConfig::with_ks(&[1, 3])).unwrap();
    let (w1, w3) = (&scores.scores[0], &scores.scores[1]);
    // Weights over the 3 retrieved neighbours of equal similarity: 1/3 each.
    let third = 1.0 / 3.0;
    assert!((w1[0] - third).abs() < 1e-6 && w1[1] == 0.0 && w1[2] == 0.0);
    assert!(w3[..3].iter().all(|v| (v - third).abs() < 1e-6), "{w3:?}");
    for distance in [Distance::Cosine, Distance::L2] {
        let got = nearest_neighbours(&tm, &qm, distance, Blocking { query_block: 2, train_block: 1 }).unwrap();
        let want = match distance {
            Distance::Cosine => [0, 1],
            Distance::L2 => [2, 1], // |5e0 − 2e0| = 3 < 4; |0.5e1 − e1| = 0.5
        };
        assert_eq!([got[0].index, got[1].index], want, "{distance:?}");
    }
    // Vote ties between classes: the lower class index wins (k = 3 for query 0 gives
    // classes 0, 2, 1 one third each → class 0).
    let test = Split::new(qm, Targets::multiclass(&[1, 2], 3)).unwrap();
    let report = knn_evaluate(&split, &test, &KnnConfig::with_ks(&[3])).unwrap();
    let cellino_eval::SplitMetrics::Multiclass(m) = &report.k[&3] else { panic!("multi-class") };
    assert_eq!(m.confusion_matrix[1][0], 1, "query 0 (true 1) predicted 0");
}

#[test]
fn l2_one_nn_equals_brute_force_with_integer_features() {
    // Small integers: every squared distance is exact in f64, so ties are exact too.
    let mut rng = Rng::new(5);
    let (n_train, n_test, dim) = (97, 31, 4);
    let train: Vec<f32> = (0..n_train * dim).map(|_| rng.below(3) as f32 - 1.0).collect();
    let test: Vec<f32> = (0..n_test * dim).map(|_| rng.below(3) as f32 - 1.0).collect();
    let labels: Vec<usize> = (0..n_train).map(|i| i % 4).collect();
    let tm = FeatureMatrix::new(&train, dim).unwrap();
    let qm = FeatureMatrix::new(&test, dim).unwrap();
    let got = nearest_neighbours(&tm, &qm, Distance::L2, Blocking { query_block: 8, train_block: 10 }).unwrap();
    assert_eq!(got.len(), n_test);
    for (q, nn) in got.iter().enumerate() {
        let d2 = |t: usize| -> f64 { tm.row(t).iter().zip(qm.row(q)).map(|(&a, &b)| f64::from(a - b).powi(2)).sum() };
        let best = (0..n_train).min_by(|&a, &b| d2(a).total_cmp(&d2(b)).then(a.cmp(&b))).unwrap();
        assert_eq!(nn.index, best, "query {q}");
        assert_eq!(nn.distance, d2(best).sqrt());
    }
    let pred = one_nn_predict(&tm, &labels, &qm, Distance::L2, Blocking::default()).unwrap();
    assert!(pred.iter().zip(&got).all(|(&p, n)| p == labels[n.index]));
}

#[test]
fn multilabel_votes_use_multi_hot_rows() {
    let train = [1.0f32, 0.0, 0.9, 0.1, 0.0, 1.0];
    let targets = [1u8, 1, 0, 1, 1, 0];
    let queries = [1.0f32, 0.05];
    let split = Split::new(FeatureMatrix::new(&train, 2).unwrap(), Targets::multilabel(&targets, 2)).unwrap();
    let qm = FeatureMatrix::new(&queries, 2).unwrap();
    let s = knn_scores(&split, &qm, &KnnConfig::with_ks(&[2, 3])).unwrap();
    let sims: Vec<f64> = [0usize, 1, 2]
        .iter()
        .map(|&i| {
            let t = normalized(&train[i * 2..i * 2 + 2]);
            let q = normalized(&queries);
            t[0] * q[0] + t[1] * q[1]
        })
        .collect();
    let e: Vec<f64> = sims.iter().map(|s| (s / 0.07).exp()).collect();
    let z: f64 = e.iter().sum();
    let w: Vec<f64> = e.iter().map(|x| x / z).collect();
    // neighbours in order 0 (sim ≈ 0.9988), 1 (≈ 0.9986), 2 (≈ 0.05)
    let want2 = [w[0], w[0] + w[1]];
    let want3 = [w[0] + w[2], w[0] + w[1]];
    for (got, want) in [(&s.scores[0], want2), (&s.scores[1], want3)] {
        assert!(got.iter().zip(want).all(|(&g, w)| (f64::from(g) - w).abs() < 1e-5), "{got:?} vs {want:?}");
    }
    // A label shared by every neighbour gets a vote of (at most) exactly 1, so the
    // multi-label metric keeps the plain `> 0.5` rule (no sigmoid).
    let all = [1u8, 0, 1, 1, 1, 0];
    let split = Split::new(FeatureMatrix::new(&train, 2).unwrap(), Targets::multilabel(&all, 2)).unwrap();
    let mut rng = Rng::new(9);
    let many: Vec<f32> = (0..200).map(|_| rng.uniform() as f32).collect();
    let qm = FeatureMatrix::new(&many, 2).unwrap();
    let s = knn_scores(&split, &qm, &KnnConfig::with_ks(&[3])).unwrap();
    assert!(s.scores[0].iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert!(s.scores[0].chunks(2).all(|r| (r[0] - 1.0).abs() < 1e-6));
    let tt = vec![1u8; 200];
    let test = Split::new(qm, Targets::multilabel(&tt, 2)).unwrap();
    let report = knn_evaluate(&split, &test, &KnnConfig::with_ks(&[3])).unwrap();
    let cellino_eval::SplitMetrics::Multilabel(m) = &report.k[&3] else { panic!("multi-label") };
    assert!(!m.sigmoid_applied);
    assert_eq!(m.per_label_recall[0], 1.0);
}

#[test]
fn bad_input_is_an_error() {
    let train = [1.0f32, 0.0, 0.0, 1.0];
    let tm = FeatureMatrix::new(&train, 2).unwrap();
    let split = Split::new(tm, Targets::multiclass(&[0, 1], 2)).unwrap();
    let q3 = [1.0f32, 2.0, 3.0];
    let qm3 = FeatureMatrix::new(&q3, 3).unwrap();
    assert!(matches!(
        knn_scores(&split, &qm3, &KnnConfig::default()),
        Err(EvalError::Mismatch { expected: 2, actual: 3, .. })
    ));
    let qm = FeatureMatrix::new(&q3[..2], 2).unwrap();
    for (config, what) in [
        (KnnConfig::with_ks(&[]), "ks"),
        (KnnConfig::with_ks(&[0, 1]), "ks"),
        (KnnConfig { temperature: 0.0, ..KnnConfig::default() }, "temperature"),
        (KnnConfig { temperature: f64::NAN, ..KnnConfig::default() }, "temperature"),
        (KnnConfig { blocking: Blocking { query_block: 0, train_block: 4 }, ..KnnConfig::default() }, "blocking"),
    ] {
        match knn_scores(&split, &qm, &config) {
            Err(EvalError::InvalidConfig { what: w, .. }) => assert_eq!(w, what),
            other => panic!("{config:?}: {other:?}"),
        }
    }
    assert!(matches!(
        knn_scores(&split, &qm, &KnnConfig::with_ks(&[3])),
        Err(EvalError::TooFewSamples { n: 2, min: 3, .. })
    ));
    // NaN features are refused when the matrix is built.
    assert!(matches!(FeatureMatrix::new(&[1.0, f32::NAN], 2), Err(EvalError::NonFiniteFeature { col: 1, .. })));
    // Test split of another task / class count.
    let other = Split::new(qm, Targets::multilabel(&[1, 0], 2)).unwrap();
    assert!(matches!(knn_evaluate(&split, &other, &KnnConfig::default()), Err(EvalError::TaskMismatch { .. })));
    let other = Split::new(qm, Targets::multiclass(&[0], 3)).unwrap();
    assert!(matches!(
        knn_evaluate(&split, &other, &KnnConfig::default()),
        Err(EvalError::Mismatch { expected: 2, actual: 3, .. })
    ));
    assert!(matches!(
        one_nn_predict(&tm, &[0], &qm, Distance::L2, Blocking::default()),
        Err(EvalError::LengthMismatch { expected: 2, actual: 1, .. })
    ));
    // A zero row is allowed: cosine 0 with everything (F.normalize semantics).
    let zeros = [0.0f32, 0.0];
    let zm = FeatureMatrix::new(&zeros, 2).unwrap();
    let nb = cosine_neighbours(&tm, &zm, 2, Blocking::default()).unwrap();
    assert_eq!((nb.indices, nb.similarities), (vec![0, 1], vec![0.0, 0.0]));
}

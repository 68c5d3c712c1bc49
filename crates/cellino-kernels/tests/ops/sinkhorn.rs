use candle_core::{DType, Device, Tensor};
use cellino_kernels::{sinkhorn_knopp, sinkhorn_knopp_composite};

use crate::*;

/// DINOv2's `sinkhorn_knopp_teacher` transcribed literally (one process, no shift), in f64.
fn upstream(logits: &[Vec<f64>], temp: f64, iterations: usize) -> Vec<Vec<f64>> {
    let (b, k) = (logits.len(), logits[0].len());
    // Q = exp(t / T).t(): K × B
    let mut q: Vec<Vec<f64>> = (0..k).map(|j| (0..b).map(|i| (logits[i][j] / temp).exp()).collect()).collect();
    let total: f64 = q.iter().flatten().sum();
    q.iter_mut().flatten().for_each(|v| *v /= total);
    for _ in 0..iterations {
        for row in q.iter_mut() {
            let s: f64 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= s * k as f64);
        }
        for i in 0..b {
            let s: f64 = q.iter().map(|row| row[i]).sum();
            q.iter_mut().for_each(|row| row[i] /= s * b as f64);
        }
    }
    (0..b).map(|i| (0..k).map(|j| q[j][i] * b as f64).collect()).collect()
}

#[test]
fn matches_a_literal_transcription_of_upstream() {
    for (i, (b, k)) in [(1usize, 1usize), (3, 7), (16, 300)].into_iter().enumerate() {
        let x = uniform(&mut rng(i as u64), &[b, k], 1.0, DType::F64);
        let rows = x.to_vec2::<f64>().unwrap();
        let expected = Tensor::new(upstream(&rows, 0.04, 3), &Device::Cpu).unwrap();
        assert_close(&sinkhorn_knopp(&x, 0.04, 3).unwrap(), &expected, 1e-12, &format!("sinkhorn ({b}, {k})"));
        let got32 = sinkhorn_knopp(&x.to_dtype(DType::F32).unwrap(), 0.04, 3).unwrap();
        assert_close(&got32, &expected, 1e-5, &format!("f32 sinkhorn ({b}, {k})"));
    }
}

#[test]
fn matches_composite_and_normalises_samples() {
    for (i, (b, k)) in [(2usize, 5usize), (32, 4096), (7, 33)].into_iter().enumerate() {
        for (dtype, tol) in [(DType::F32, 1e-5), (DType::F64, 1e-12)] {
            let x = uniform(&mut rng(10 + i as u64), &[b, k], 3.0, dtype);
            let got = sinkhorn_knopp(&x, 0.07, 3).unwrap();
            assert_close(&got, &sinkhorn_knopp_composite(&x, 0.07, 3).unwrap(), tol, &format!("({b}, {k}) {dtype:?}"));
            let row_sums = got.sum(1).unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
            assert!(row_sums.iter().all(|s| (s - 1.0).abs() < 1e-4), "rows sum to {row_sums:?}");
        }
    }
}

#[test]
fn large_logits_do_not_overflow_and_half_precision_runs_in_f32() {
    // Upstream would overflow exp(100 / 0.04); the global shift cancels in the first normalisation.
    let x = (uniform(&mut rng(4), &[4, 6], 1.0, DType::F32) + 100.0).unwrap();
    let got = sinkhorn_knopp(&x, 0.04, 3).unwrap();
    assert!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().all(|v| v.is_finite()));
    let half = sinkhorn_knopp(&x.to_dtype(DType::F16).unwrap(), 0.04, 3).unwrap();
    assert_eq!(half.dtype(), DType::F32);
}

use candle_core::{DType, Tensor};
use cellino_kernels::{layer_norm, layer_norm_composite};

use crate::*;

const EPS: f64 = 1e-6;
const SHAPES: [&[usize]; 5] = [&[1, 3], &[7, 96], &[2, 197, 96], &[3, 5, 1], &[4, 33]];

fn inputs(shape: &[usize], dtype: DType, seed: u64) -> Vec<Tensor> {
    let mut r = rng(seed);
    let d = *shape.last().unwrap();
    // Non-trivial affine parameters so that every gradient term matters.
    vec![
        uniform(&mut r, shape, 2.0, dtype),
        (uniform(&mut r, &[d], 0.5, dtype) + 1.0).unwrap(),
        uniform(&mut r, &[d], 0.5, dtype),
    ]
}

fn fused(t: &[Tensor]) -> Tensor {
    weighted_sum(&layer_norm(&t[0], &t[1], &t[2], EPS).unwrap(), 1)
}

fn composite(t: &[Tensor]) -> Tensor {
    weighted_sum(&layer_norm_composite(&t[0], &t[1], &t[2], EPS).unwrap(), 1)
}

test_device! {
    fn forward_matches_composite(dev) {
        for (i, shape) in SHAPES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-5), (DType::F64, 1e-12)] {
                check_forward(
                    dev,
                    &inputs(shape, dtype, i as u64),
                    |t| layer_norm(&t[0], &t[1], &t[2], EPS).unwrap(),
                    |t| layer_norm_composite(&t[0], &t[1], &t[2], EPS).unwrap(),
                    tol,
                    &format!("layer_norm {shape:?} {dtype:?}"),
                );
            }
        }
    }
}

test_device! {
    fn gradients_match_composite(dev) {
        for (i, shape) in SHAPES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-4), (DType::F64, 1e-10)] {
                check_grads(
                    dev,
                    &inputs(shape, dtype, i as u64),
                    fused,
                    composite,
                    tol,
                    &format!("layer_norm {shape:?} {dtype:?}"),
                );
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    for (i, shape) in [&[1usize, 3][..], &[7, 96], &[2, 5, 7]].iter().enumerate() {
        assert_grads_match_finite_differences(
            &inputs(shape, DType::F64, 10 + i as u64),
            fused,
            40,
            &format!("layer_norm {shape:?}"),
        );
    }
}

#[test]
fn rows_with_a_large_mean_keep_their_precision() {
    // |mean| ≫ std breaks E[x²] − E[x]²; the two-pass kernel must match an f64 reference in f32.
    let x = (uniform(&mut rng(3), &[4, 384], 1.0, DType::F64) + 1000.0).unwrap();
    let (w, b) =
        (Tensor::ones(384, DType::F64, x.device()).unwrap(), Tensor::zeros(384, DType::F64, x.device()).unwrap());
    let reference = layer_norm(&x, &w, &b, EPS).unwrap();
    let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let got = layer_norm(&f32(&x), &f32(&w), &f32(&b), EPS).unwrap();
    assert_close(&got, &reference, 1e-3, "f32 layer_norm at mean 1000");
}

#[test]
fn half_precision_falls_back_to_the_composite() {
    let t = inputs(&[3, 8], DType::F32, 5);
    let h: Vec<Tensor> = t.iter().map(|t| t.to_dtype(DType::BF16).unwrap()).collect();
    let got = layer_norm(&h[0], &h[1], &h[2], EPS).unwrap();
    assert_eq!(got.dtype(), DType::BF16);
    assert_close(&got, &layer_norm(&t[0], &t[1], &t[2], EPS).unwrap(), 3e-2, "bf16 layer_norm");
}

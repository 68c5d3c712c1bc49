use candle_core::{DType, Tensor};
use cellino_kernels::{l2_normalize, l2_normalize_composite};

use crate::*;

const SHAPES: [&[usize]; 4] = [&[1, 1], &[7, 3], &[64, 256], &[2, 5, 96]];

const EPS: f64 = 1e-6;

fn fused(t: &[Tensor]) -> Tensor {
    weighted_sum(&l2_normalize(&t[0], EPS).unwrap(), 7)
}

fn composite(t: &[Tensor]) -> Tensor {
    weighted_sum(&l2_normalize_composite(&t[0], EPS).unwrap(), 7)
}

/// Random rows; with `small = Some(s)`, row 1 is scaled by `s` (below eps: the clamp is active)
/// and, with `zero`, row 0 is all zeros.
fn input(shape: &[usize], dtype: DType, seed: u64, small: Option<f64>, zero: bool) -> Tensor {
    let x = uniform(&mut rng(seed), shape, 1.0, DType::F64);
    let d = *shape.last().unwrap();
    let rows = x.elem_count() / d;
    let mut v = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    if rows >= 3 {
        if zero {
            v[..d].iter_mut().for_each(|x| *x = 0.0);
        }
        if let Some(s) = small {
            v[d..2 * d].iter_mut().for_each(|x| *x *= s);
        }
    }
    Tensor::from_vec(v, shape, x.device()).unwrap().to_dtype(dtype).unwrap()
}

test_device! {
    fn forward_matches_composite(dev) {
        for (i, shape) in SHAPES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-6), (DType::F64, 1e-14)] {
                let x = input(shape, dtype, i as u64, Some(1e-8), true);
                check_forward(
                    dev,
                    &[x],
                    |t| l2_normalize(&t[0], EPS).unwrap(),
                    |t| l2_normalize_composite(&t[0], EPS).unwrap(),
                    tol,
                    &format!("l2 {shape:?} {dtype:?}"),
                );
            }
        }
    }
}

test_device! {
    fn gradients_match_composite(dev) {
        for (i, shape) in SHAPES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-4), (DType::F64, 1e-10)] {
                // No zero row: the composite's sqrt has an infinite derivative there (NaN gradient),
                // where torch and the fused op give g / eps (checked in torch_fixtures).
                let x = input(shape, dtype, i as u64, Some(1e-8), false);
                check_grads(dev, &[x], fused, composite, tol, &format!("l2 {shape:?} {dtype:?}"));
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    // A large eps, so that the finite-difference step does not cross the clamp of the small row.
    let loss = |t: &[Tensor]| weighted_sum(&l2_normalize(&t[0], 0.1).unwrap(), 7);
    for (i, shape) in [&[1usize, 1][..], &[7, 3], &[3, 33]].iter().enumerate() {
        let x = input(shape, DType::F64, 60 + i as u64, Some(1e-2), true);
        assert_grads_match_finite_differences(&[x], loss, 60, &format!("l2 {shape:?}"));
    }
}

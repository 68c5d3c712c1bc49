use candle_core::{DType, Tensor};
use cellino_kernels::{scaled_residual, scaled_residual_composite};

use crate::*;

const SHAPES: [&[usize]; 4] = [&[1, 1], &[7, 3], &[2, 197, 96], &[5]];

fn inputs(shape: &[usize], dtype: DType, seed: u64) -> Vec<Tensor> {
    let mut r = rng(seed);
    let d = *shape.last().unwrap();
    vec![uniform(&mut r, shape, 1.0, dtype), uniform(&mut r, shape, 1.0, dtype), uniform(&mut r, &[d], 1.0, dtype)]
}

fn fused(t: &[Tensor]) -> Tensor {
    weighted_sum(&scaled_residual(&t[0], &t[1], &t[2]).unwrap(), 8)
}

fn composite(t: &[Tensor]) -> Tensor {
    weighted_sum(&scaled_residual_composite(&t[0], &t[1], &t[2]).unwrap(), 8)
}

test_device! {
    fn forward_matches_composite(dev) {
        for (i, shape) in SHAPES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-6), (DType::F64, 1e-14)] {
                check_forward(
                    dev,
                    &inputs(shape, dtype, i as u64),
                    |t| scaled_residual(&t[0], &t[1], &t[2]).unwrap(),
                    |t| scaled_residual_composite(&t[0], &t[1], &t[2]).unwrap(),
                    tol,
                    &format!("scaled_residual {shape:?} {dtype:?}"),
                );
            }
        }
    }
}

test_device! {
    fn gradients_match_composite(dev) {
        for (i, shape) in SHAPES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-5), (DType::F64, 1e-12)] {
                check_grads(
                    dev,
                    &inputs(shape, dtype, i as u64),
                    fused,
                    composite,
                    tol,
                    &format!("scaled_residual {shape:?} {dtype:?}"),
                );
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    for (i, shape) in [&[1usize, 1][..], &[7, 3], &[2, 5, 9]].iter().enumerate() {
        assert_grads_match_finite_differences(
            &inputs(shape, DType::F64, 70 + i as u64),
            fused,
            40,
            &format!("scaled_residual {shape:?}"),
        );
    }
}

#[test]
fn shape_mismatches_are_errors() {
    let t = inputs(&[4, 6], DType::F32, 1);
    let msg = scaled_residual(&t[0], &t[1].t().unwrap(), &t[2]).unwrap_err().to_string();
    assert!(msg.contains("scaled_residual") && msg.contains("[6, 4]"), "{msg}");
    assert!(scaled_residual(&t[0], &t[1], &t[0]).is_err());
}

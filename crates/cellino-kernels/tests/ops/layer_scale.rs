use candle_core::{DType, Tensor};
use cellino_kernels::{residual_owned, scaled_residual, scaled_residual_composite};

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

#[test]
fn owned_residual_is_bit_identical_and_leaves_tracked_tensors_alone() {
    for (i, shape) in SHAPES.iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            let t = inputs(shape, dtype, 90 + i as u64);
            let fresh = || (&t[1] * 1.0).unwrap(); // an untracked activation of its own
            let bits = |t: &Tensor| t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
            let with_gamma = residual_owned(&t[0], fresh(), Some(&t[2])).unwrap();
            assert_eq!(bits(&with_gamma), bits(&scaled_residual(&t[0], &t[1], &t[2]).unwrap()), "{shape:?} {dtype:?}");
            let plain = residual_owned(&t[0], fresh(), None).unwrap();
            assert_eq!(bits(&plain), bits(&(&t[0] + &t[1]).unwrap()), "{shape:?} {dtype:?}");
        }
    }
    // A variable is never overwritten, and the result keeps its gradient.
    let t = inputs(&[7, 3], DType::F64, 3);
    let branch = candle_core::Var::from_tensor(&t[1]).unwrap();
    let before = t[1].to_vec2::<f64>().unwrap();
    let y = residual_owned(&t[0], branch.as_tensor().clone(), Some(&t[2])).unwrap();
    assert_eq!(branch.as_tensor().to_vec2::<f64>().unwrap(), before);
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert!(grads.get(branch.as_tensor()).is_some());
    // A non-contiguous branch takes the copying path.
    let square = inputs(&[6, 6], DType::F32, 4);
    let transposed = square[1].t().unwrap();
    let want = scaled_residual(&square[0], &transposed, &square[2]).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(residual_owned(&square[0], transposed, Some(&square[2])).unwrap().to_vec2::<f32>().unwrap(), want);
    // A branch that is a view of x is not overwritten under x's feet.
    let x = &square[0];
    let before = x.to_vec2::<f32>().unwrap();
    let doubled = (x + x).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(residual_owned(x, x.clone(), None).unwrap().to_vec2::<f32>().unwrap(), doubled);
    assert_eq!(x.to_vec2::<f32>().unwrap(), before);
    let want = scaled_residual(x, x, &square[2]).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(residual_owned(x, x.clone(), Some(&square[2])).unwrap().to_vec2::<f32>().unwrap(), want);
}

#[test]
fn owned_residual_shape_mismatches_are_errors() {
    let t = inputs(&[4, 6], DType::F32, 1);
    for gamma in [Some(&t[2]), None] {
        let msg = residual_owned(&t[0], t[1].t().unwrap(), gamma).unwrap_err().to_string();
        assert!(msg.contains("scaled_residual") && msg.contains("[6, 4]"), "{msg}");
    }
}

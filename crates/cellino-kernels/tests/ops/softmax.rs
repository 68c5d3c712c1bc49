use candle_core::{DType, Tensor};
use cellino_kernels::{softmax_last_dim, softmax_last_dim_composite};

use crate::*;

const SHAPES: [&[usize]; 5] = [&[1, 1], &[7, 3], &[2, 3, 197, 197], &[5, 96], &[2, 1, 33]];

fn fused(t: &[Tensor]) -> Tensor {
    weighted_sum(&softmax_last_dim(&t[0]).unwrap(), 2)
}

fn composite(t: &[Tensor]) -> Tensor {
    weighted_sum(&softmax_last_dim_composite(&t[0]).unwrap(), 2)
}

test_device! {
    fn forward_matches_composite(dev) {
        for (i, shape) in SHAPES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-6), (DType::F64, 1e-14)] {
                let x = uniform(&mut rng(i as u64), shape, 8.0, dtype);
                check_forward(
                    dev,
                    &[x],
                    |t| softmax_last_dim(&t[0]).unwrap(),
                    |t| softmax_last_dim_composite(&t[0]).unwrap(),
                    tol,
                    &format!("softmax {shape:?} {dtype:?}"),
                );
            }
        }
    }
}

#[test]
fn large_logits_do_not_overflow() {
    let x = Tensor::new(&[[1000f32, 999.0, -1000.0], [-1e30, 0.0, 1e30]], &candle_core::Device::Cpu).unwrap();
    let y = softmax_last_dim(&x).unwrap().to_vec2::<f32>().unwrap();
    let e = (-1f32).exp();
    assert!((y[0][0] - 1.0 / (1.0 + e)).abs() < 1e-6 && (y[0][1] - e / (1.0 + e)).abs() < 1e-6 && y[0][2] == 0.0);
    assert_eq!(y[1], [0.0, 0.0, 1.0]);
}

test_device! {
    fn gradients_match_composite(dev) {
        for (i, shape) in SHAPES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-4), (DType::F64, 1e-10)] {
                let x = uniform(&mut rng(i as u64), shape, 3.0, dtype);
                check_grads(dev, &[x], fused, composite, tol, &format!("softmax {shape:?} {dtype:?}"));
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    for (i, shape) in [&[1usize, 1][..], &[7, 3], &[3, 197]].iter().enumerate() {
        let x = uniform(&mut rng(20 + i as u64), shape, 3.0, DType::F64);
        assert_grads_match_finite_differences(&[x], fused, 40, &format!("softmax {shape:?}"));
    }
}

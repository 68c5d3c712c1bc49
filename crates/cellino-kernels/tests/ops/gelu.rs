use candle_core::{DType, Tensor};
use cellino_kernels::{gelu_erf, gelu_erf_composite};

use crate::*;

const SHAPES: [&[usize]; 4] = [&[1], &[7, 3], &[2, 197, 96], &[100_003]];

fn fused(t: &[Tensor]) -> Tensor {
    weighted_sum(&gelu_erf(&t[0]).unwrap(), 3)
}

fn composite(t: &[Tensor]) -> Tensor {
    weighted_sum(&gelu_erf_composite(&t[0]).unwrap(), 3)
}

test_device! {
    fn forward_matches_composite(dev) {
        for (i, shape) in SHAPES.iter().enumerate() {
            // f32: the erf approximation PyTorch uses is within 1.5e-7 of libm's, times |x|/2 ≤ 3.
            for (dtype, tol) in [(DType::F32, 1e-6), (DType::F64, 1e-14)] {
                let x = uniform(&mut rng(i as u64), shape, 6.0, dtype);
                check_forward(
                    dev,
                    &[x],
                    |t| gelu_erf(&t[0]).unwrap(),
                    |t| gelu_erf_composite(&t[0]).unwrap(),
                    tol,
                    &format!("gelu {shape:?} {dtype:?}"),
                );
            }
        }
    }
}

#[test]
fn extreme_inputs() {
    let x = Tensor::new(&[f32::NEG_INFINITY, -100.0, 0.0, 100.0, f32::INFINITY], &candle_core::Device::Cpu).unwrap();
    let y = gelu_erf(&x).unwrap().to_vec1::<f32>().unwrap();
    assert!(y[0].is_nan() || y[0] == 0.0, "gelu(-inf) = {}", y[0]);
    assert_eq!(&y[1..4], &[-0.0, 0.0, 100.0]);
    assert_eq!(y[4], f32::INFINITY);
}

test_device! {
    fn gradients_match_composite(dev) {
        for (i, shape) in SHAPES.iter().enumerate() {
            // candle's own gelu_erf backward uses 0.398942 for 1/√(2π) (relative error 7e-7), so the
            // composite is the looser reference here; the finite differences below are the exact one.
            for (dtype, tol) in [(DType::F32, 1e-5), (DType::F64, 2e-6)] {
                let x = uniform(&mut rng(i as u64), shape, 6.0, dtype);
                check_grads(dev, &[x], fused, composite, tol, &format!("gelu {shape:?} {dtype:?}"));
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    let x = uniform(&mut rng(30), &[7, 13], 5.0, DType::F64);
    assert_grads_match_finite_differences(&[x], fused, 200, "gelu");
}

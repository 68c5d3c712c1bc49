use candle_core::{DType, Tensor};
use cellino_kernels::{linear, linear_composite};

use crate::*;

/// (x shape, out features)
const CASES: [(&[usize], usize); 5] = [(&[1, 3], 1), (&[7, 96], 5), (&[2, 197, 96], 33), (&[3, 1, 4, 7], 9), (&[5], 4)];

fn inputs(x: &[usize], out: usize, dtype: DType, seed: u64) -> Vec<Tensor> {
    let mut r = rng(seed);
    let inner = *x.last().unwrap();
    vec![
        uniform(&mut r, x, 1.0, dtype),
        uniform(&mut r, &[out, inner], 0.5, dtype),
        uniform(&mut r, &[out], 1.0, dtype),
    ]
}

fn fused(t: &[Tensor]) -> Tensor {
    weighted_sum(&linear(&t[0], &t[1], Some(&t[2])).unwrap(), 4)
}

fn composite(t: &[Tensor]) -> Tensor {
    weighted_sum(&linear_composite(&t[0], &t[1], Some(&t[2])).unwrap(), 4)
}

test_device! {
    fn forward_matches_composite(dev) {
        for (i, (x, out)) in CASES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-5), (DType::F64, 1e-12)] {
                let t = inputs(x, *out, dtype, i as u64);
                check_forward(
                    dev,
                    &t,
                    |t| linear(&t[0], &t[1], Some(&t[2])).unwrap(),
                    |t| linear_composite(&t[0], &t[1], Some(&t[2])).unwrap(),
                    tol,
                    &format!("linear {x:?}→{out} {dtype:?}"),
                );
                check_forward(
                    dev,
                    &t,
                    |t| linear(&t[0], &t[1], None).unwrap(),
                    |t| linear_composite(&t[0], &t[1], None).unwrap(),
                    tol,
                    &format!("linear without bias {x:?}→{out} {dtype:?}"),
                );
            }
        }
    }
}

#[test]
fn strided_inputs_are_read_in_place() {
    // x as the transpose of a (in, rows) buffer; the weight as the transpose of an (in, out) one.
    let mut r = rng(7);
    let x = uniform(&mut r, &[12, 10], 1.0, DType::F32).t().unwrap();
    let w = uniform(&mut r, &[12, 6], 1.0, DType::F32).t().unwrap();
    let b = uniform(&mut r, &[6], 1.0, DType::F32);
    let expected = linear_composite(&x.contiguous().unwrap(), &w.contiguous().unwrap(), Some(&b)).unwrap();
    assert_close(&linear(&x, &w, Some(&b)).unwrap(), &expected, 1e-5, "strided linear");
}

test_device! {
    fn gradients_match_composite(dev) {
        for (i, (x, out)) in CASES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-4), (DType::F64, 1e-10)] {
                check_grads(
                    dev,
                    &inputs(x, *out, dtype, i as u64),
                    fused,
                    composite,
                    tol,
                    &format!("linear {x:?}→{out} {dtype:?}"),
                );
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    for (i, (x, out)) in [(&[1usize, 3][..], 1usize), (&[2, 7, 5], 3)].iter().enumerate() {
        assert_grads_match_finite_differences(
            &inputs(x, *out, DType::F64, 40 + i as u64),
            fused,
            40,
            &format!("linear {x:?}"),
        );
    }
}

#[test]
fn empty_rows_and_features() {
    let t = inputs(&[0, 4], 3, DType::F32, 1);
    assert_eq!(linear(&t[0], &t[1], Some(&t[2])).unwrap().dims(), &[0, 3]);
    // No input features: the output is the bias.
    let x = Tensor::zeros((2, 0), DType::F32, &candle_core::Device::Cpu).unwrap();
    let w = Tensor::zeros((3, 0), DType::F32, &candle_core::Device::Cpu).unwrap();
    let y = linear(&x, &w, Some(&t[2])).unwrap();
    assert_close(&y, &t[2].unsqueeze(0).unwrap().broadcast_as((2, 3)).unwrap().contiguous().unwrap(), 0.0, "bias only");
}

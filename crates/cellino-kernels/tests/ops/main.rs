//! Every fused op against its candle composite (forward and gradients, f32 and f64) and against
//! central finite differences in f64, on random shapes including odd sizes.
//!
//! Tolerances: max abs error ≤ tol · max(1, max |reference|).
//! - forward vs composite: f32 1e-5 (1e-6 for softmax, GELU, L2 normalise, scaled residual),
//!   f64 1e-12 (1e-14 for the element-wise ones);
//! - gradients vs composite: f32 1e-4 (1e-5 for GELU and scaled residual), f64 1e-10 (GELU 2e-6:
//!   candle's own gelu_erf backward rounds 1/√(2π) to 0.398942);
//! - gradients vs central differences (f64, step 1e-6): 1e-6 + 1e-5 · |numeric| per position;
//! - PyTorch fixtures (torch_fixtures.rs): f64 1e-10 (gradients 1e-9), f32 1e-5 (gradients 1e-4).
//!
//! The fused-vs-composite parity tests are `test_device!` tests (`<name>::cpu`, and `<name>::cuda`
//! with the `cuda` feature): on a GPU they compare the device result with the CPU result at the
//! per-dtype thresholds of `common::device_tolerance`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod attention;
mod bad_input;
mod ema;
mod gelu;
mod l2_normalize;
mod layer_norm;
mod layer_scale;
mod linear;
mod nearest_neighbor;
mod sinkhorn;
mod softmax;
mod torch_fixtures;

use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Uniform in [-scale, scale), from a seeded RNG (candle's own `randn` is not seedable).
pub fn uniform(rng: &mut StdRng, shape: &[usize], scale: f64, dtype: DType) -> Tensor {
    let n = shape.iter().product::<usize>();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

pub fn max_abs(t: &Tensor) -> f64 {
    if t.elem_count() == 0 {
        return 0.0;
    }
    t.to_dtype(DType::F64).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    max_abs(&(a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap()).unwrap())
}

/// `|a − b| ≤ tol · max(1, max|b|)` element-wise maximum.
#[track_caller]
pub fn assert_close(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
    let err = max_abs_diff(a, b);
    let scale = max_abs(b).max(1.0);
    assert!(err <= tol * scale, "{what}: max abs error {err:e} > {tol:e} · {scale:.3}");
}

/// A scalar loss that weights every output element differently, so that no gradient cancels.
pub fn weighted_sum(y: &Tensor, seed: u64) -> Tensor {
    let w = uniform(&mut rng(seed), y.dims(), 1.0, y.dtype()).to_device(y.device()).unwrap();
    (y * w).unwrap().sum_all().unwrap()
}

/// Gradients of `loss(inputs)` for every input, through candle's autograd.
pub fn grads(inputs: &[Tensor], loss: impl Fn(&[Tensor]) -> Tensor) -> Vec<Tensor> {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let g = loss(&tensors).backward().unwrap();
    tensors
        .iter()
        .enumerate()
        .map(|(i, t)| g.get(t).unwrap_or_else(|| panic!("input {i} got no gradient")).clone())
        .collect()
}

/// Fused and composite gradients agree for every input.
#[track_caller]
pub fn assert_grads_match(
    inputs: &[Tensor],
    fused: impl Fn(&[Tensor]) -> Tensor,
    composite: impl Fn(&[Tensor]) -> Tensor,
    tol: f64,
    what: &str,
) {
    let (a, b) = (grads(inputs, fused), grads(inputs, composite));
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        assert_close(a, b, tol, &format!("{what}: gradient of input {i}"));
    }
}

/// The inputs on the GPU of `on` (unchanged on the CPU).
fn on_device(on: &common::On, inputs: &[Tensor]) -> Vec<Tensor> {
    match on {
        common::On::Cpu => inputs.to_vec(),
        common::On::Gpu(d) => inputs.iter().map(|t| t.to_device(d).unwrap()).collect(),
    }
}

/// Forward parity on `on`: on the CPU `fused` against `composite` at `tol`; on a GPU `fused` there
/// against `fused` on the CPU at the device threshold of the dtype.
#[track_caller]
pub fn check_forward(
    on: &common::On,
    inputs: &[Tensor],
    fused: impl Fn(&[Tensor]) -> Tensor,
    composite: impl Fn(&[Tensor]) -> Tensor,
    tol: f64,
    what: &str,
) {
    match on {
        common::On::Cpu => assert_close(&fused(inputs), &composite(inputs), tol, what),
        common::On::Gpu(_) => {
            let got = fused(&on_device(on, inputs)).to_device(&Device::Cpu).unwrap();
            let (tol, _) = common::device_tolerance(inputs[0].dtype());
            assert_close(&got, &fused(inputs), tol, &format!("{what} on the GPU vs the CPU"));
        }
    }
}

/// Gradient parity on `on`: on the CPU [`assert_grads_match`] at `tol`; on a GPU the gradients of
/// `fused` there against those on the CPU at the device threshold of the dtype.
#[track_caller]
pub fn check_grads(
    on: &common::On,
    inputs: &[Tensor],
    fused: impl Fn(&[Tensor]) -> Tensor,
    composite: impl Fn(&[Tensor]) -> Tensor,
    tol: f64,
    what: &str,
) {
    match on {
        common::On::Cpu => assert_grads_match(inputs, fused, composite, tol, what),
        common::On::Gpu(_) => {
            let (_, tol) = common::device_tolerance(inputs[0].dtype());
            let (a, b) = (grads(&on_device(on, inputs), &fused), grads(inputs, &fused));
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                let a = a.to_device(&Device::Cpu).unwrap();
                assert_close(&a, b, tol, &format!("{what} on the GPU vs the CPU: gradient of input {i}"));
            }
        }
    }
}

/// Autograd gradients of the f64 `loss` agree with central differences at up to `samples`
/// positions per input (all positions when there are fewer).
#[track_caller]
pub fn assert_grads_match_finite_differences(
    inputs: &[Tensor],
    loss: impl Fn(&[Tensor]) -> Tensor,
    samples: usize,
    what: &str,
) {
    const STEP: f64 = 1e-6;
    let analytic = grads(inputs, &loss);
    let mut pick = rng(99);
    for (i, input) in inputs.iter().enumerate() {
        let base = input.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let g = analytic[i].flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let positions: Vec<usize> = if base.len() <= samples {
            (0..base.len()).collect()
        } else {
            (0..samples).map(|_| pick.random_range(0..base.len())).collect()
        };
        for idx in positions {
            let eval = |delta: f64| {
                let mut p = base.clone();
                p[idx] += delta;
                let mut args = inputs.to_vec();
                args[i] = Tensor::from_vec(p, input.dims(), &Device::Cpu).unwrap();
                loss(&args).to_scalar::<f64>().unwrap()
            };
            let numeric = (eval(STEP) - eval(-STEP)) / (2.0 * STEP);
            let err = (numeric - g[idx]).abs();
            assert!(
                err <= 1e-6 + 1e-5 * numeric.abs(),
                "{what}: input {i}[{idx}]: autograd {} vs finite differences {numeric}",
                g[idx]
            );
        }
    }
}

//! Outputs and gradients against PyTorch (`xtask/py/make_kernel_fixtures.py`, float64). Our f64
//! kernels must agree to 1e-10, the f32 ones to 1e-5 (relative to the value scale).

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Tensor};
use cellino_kernels::*;

use crate::*;

fn fixture(name: &str) -> HashMap<String, Tensor> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ops").join(format!("{name}.npz"));
    Tensor::read_npz(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).into_iter().collect()
}

/// Check `op` on the fixture's `inputs` (in order) in f64 and f32: output and every gradient.
fn check(name: &str, inputs: &[&str], op: impl Fn(&[Tensor]) -> Tensor) {
    let f = fixture(name);
    for (dtype, tol) in [(DType::F64, 1e-10), (DType::F32, 1e-5)] {
        let args: Vec<Tensor> = inputs.iter().map(|k| f[*k].to_dtype(dtype).unwrap()).collect();
        assert_close(&op(&args), &f["out"], tol, &format!("{name} {dtype:?} output"));
        let gy = f["gy"].to_dtype(dtype).unwrap();
        let g = grads(&args, |t| (op(t) * &gy).unwrap().sum_all().unwrap());
        for (k, g) in inputs.iter().zip(&g) {
            assert_close(g, &f[&format!("grad_{k}")], tol * 10.0, &format!("{name} {dtype:?} gradient of {k}"));
        }
    }
}

#[test]
fn layer_norm_matches_torch() {
    check("layer_norm", &["x", "weight", "bias"], |t| layer_norm(&t[0], &t[1], &t[2], 1e-6).unwrap());
}

#[test]
fn softmax_matches_torch() {
    check("softmax", &["x"], |t| softmax_last_dim(&t[0]).unwrap());
}

#[test]
fn attention_matches_torch_sdpa() {
    for name in ["attention_vit", "attention_cross"] {
        check(name, &["q", "k", "v"], |t| {
            let scale = (t[0].dim(3).unwrap() as f64).powf(-0.5);
            attention(&t[0], &t[1], &t[2], scale).unwrap()
        });
    }
}

#[test]
fn gelu_matches_torch() {
    check("gelu", &["x"], |t| gelu_erf(&t[0]).unwrap());
}

#[test]
fn linear_matches_torch() {
    check("linear", &["x", "weight", "bias"], |t| linear(&t[0], &t[1], Some(&t[2])).unwrap());
}

#[test]
fn l2_normalize_matches_torch() {
    check("l2_normalize", &["x"], |t| l2_normalize(&t[0], 1e-6).unwrap());
}

#[test]
fn sinkhorn_matches_dinov2() {
    let f = fixture("sinkhorn");
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        let got = sinkhorn_knopp(&f["logits"].to_dtype(dtype).unwrap(), 0.04, 3).unwrap();
        assert_close(&got, &f["out"], tol, &format!("sinkhorn {dtype:?}"));
    }
}

#[test]
fn nearest_neighbor_matches_koleo() {
    let f = fixture("nearest_neighbor");
    for dtype in [DType::F64, DType::F32] {
        let got = nearest_neighbor_indices(&f["x"].to_dtype(dtype).unwrap()).unwrap();
        assert_eq!(got.to_vec1::<u32>().unwrap(), f["out"].to_vec1::<u32>().unwrap(), "{dtype:?}");
    }
}

//! Random shapes, mostly mismatched: every op returns a result of the right shape or an error
//! naming the op and the shapes, and never panics or reads out of bounds.

use candle_core::{DType, Device, Tensor};
use cellino_kernels::*;
use rand::Rng;

use crate::*;

fn shape(r: &mut rand::rngs::StdRng, rank: usize) -> Vec<usize> {
    (0..rank).map(|_| r.random_range(0..5)).collect()
}

/// A random f32 tensor of random shape with the given rank.
fn t(r: &mut rand::rngs::StdRng, rank: usize) -> Tensor {
    let dims = shape(r, rank);
    uniform(r, &dims, 1.0, DType::F32)
}

fn of(r: &mut rand::rngs::StdRng, dims: &[usize]) -> Tensor {
    uniform(r, dims, 1.0, DType::F32)
}

#[track_caller]
fn error_names(result: candle_core::Result<Tensor>, op: &str) -> Option<Tensor> {
    match result {
        Ok(t) => Some(t),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(op), "error for {op} does not name it: {msg}");
            None
        }
    }
}

#[test]
fn random_shapes_never_panic() {
    let mut r = rng(1234);
    for _ in 0..300 {
        let (ra, rb) = (r.random_range(0..5), r.random_range(0..3));
        let (x, w, b) = (t(&mut r, ra), t(&mut r, rb), t(&mut r, rb));
        if let Some(y) = error_names(layer_norm(&x, &w, &b, 1e-5), "layer_norm") {
            assert_eq!(y.dims(), x.dims());
        }
        if let Some(y) = error_names(linear(&x, &w, Some(&b)), "linear") {
            assert_eq!(y.dims()[..y.rank() - 1], x.dims()[..x.rank() - 1]);
        }
        let _ = error_names(linear(&x, &w, None), "linear");
        if let Some(y) = error_names(softmax_last_dim(&x), "softmax_last_dim") {
            assert_eq!(y.dims(), x.dims());
        }
        if let Some(y) = error_names(l2_normalize(&x, 1e-6), "l2_normalize") {
            assert_eq!(y.dims(), x.dims());
        }
        assert_eq!(gelu_erf(&x).unwrap().dims(), x.dims());
        if let Some(y) = error_names(scaled_residual(&x, &w, &b), "scaled_residual") {
            assert_eq!(y.dims(), x.dims());
        }
        let _ = error_names(nearest_neighbor_indices(&x), "nearest_neighbor_indices");
        let _ = error_names(sinkhorn_knopp(&x, 0.1, 3), "sinkhorn_knopp");
        let q_rank = if r.random_bool(0.8) { 4 } else { r.random_range(0..6) };
        let mut qs = shape(&mut r, q_rank);
        if q_rank == 4 && r.random_bool(0.7) {
            qs[3] = qs[3].max(1);
        }
        let mut ks = qs.clone();
        if q_rank == 4 {
            ks[2] = r.random_range(0..6);
        }
        let vs = if r.random_bool(0.8) { ks.clone() } else { shape(&mut r, 4) };
        let (q, k, v) = (of(&mut r, &qs), of(&mut r, &ks), of(&mut r, &vs));
        if let Some(y) = error_names(attention(&q, &k, &v, 0.5), "attention") {
            assert_eq!(y.dims()[..3], q.dims()[..3]);
        }
    }
}

#[test]
fn errors_name_the_op_and_the_shapes() {
    let d = Device::Cpu;
    let x = Tensor::zeros((2, 8), DType::F32, &d).unwrap();
    let w7 = Tensor::zeros(7, DType::F32, &d).unwrap();
    let msg = layer_norm(&x, &w7, &w7, 1e-6).unwrap_err().to_string();
    assert!(msg.contains("layer_norm") && msg.contains("[2, 8]") && msg.contains("[7]"), "{msg}");
    let msg = linear(&x, &Tensor::zeros((3, 7), DType::F32, &d).unwrap(), None).unwrap_err().to_string();
    assert!(msg.contains("linear") && msg.contains("[3, 7]"), "{msg}");
    let q = Tensor::zeros((1, 2, 3, 4), DType::F32, &d).unwrap();
    let k = Tensor::zeros((1, 2, 3, 5), DType::F32, &d).unwrap();
    let msg = attention(&q, &k, &k, 1.0).unwrap_err().to_string();
    assert!(msg.contains("attention") && msg.contains("[1, 2, 3, 5]"), "{msg}");
    let msg = attention(&q, &q.narrow(2, 0, 0).unwrap(), &q.narrow(2, 0, 0).unwrap(), 1.0).unwrap_err().to_string();
    assert!(msg.contains("at least one key"), "{msg}");
    let msg = layer_norm(&x, &x.get(0).unwrap().to_dtype(DType::F64).unwrap(), &x.get(0).unwrap(), 1e-6)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("layer_norm") && msg.contains("dtypes differ"), "{msg}");
}

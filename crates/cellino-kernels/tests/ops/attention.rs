use candle_core::{DType, Tensor};
use cellino_kernels::{attention, attention_composite};

use crate::*;

/// (B, H, Nq, Nk, hd, dv): single token, odd sizes, a ViT-S/16 head, cross attention, several key
/// blocks (> 256 keys, so the online softmax rescales), several query blocks, dv ≠ hd.
const CASES: [[usize; 6]; 7] = [
    [1, 1, 1, 1, 8, 8],
    [2, 3, 7, 7, 5, 5],
    [2, 6, 197, 197, 64, 64],
    [1, 2, 9, 31, 4, 4],
    [1, 1, 70, 600, 8, 8],
    [3, 1, 130, 5, 3, 3],
    [1, 2, 17, 40, 6, 11],
];

fn qkv([b, h, nq, nk, hd, dv]: [usize; 6], dtype: DType, seed: u64) -> Vec<Tensor> {
    let mut r = rng(seed);
    vec![
        uniform(&mut r, &[b, h, nq, hd], 2.0, dtype),
        uniform(&mut r, &[b, h, nk, hd], 2.0, dtype),
        uniform(&mut r, &[b, h, nk, dv], 1.0, dtype),
    ]
}

fn scale(t: &[Tensor]) -> f64 {
    (t[0].dim(3).unwrap() as f64).powf(-0.5)
}

fn fused(t: &[Tensor]) -> Tensor {
    weighted_sum(&attention(&t[0], &t[1], &t[2], scale(t)).unwrap(), 5)
}

fn composite(t: &[Tensor]) -> Tensor {
    weighted_sum(&attention_composite(&t[0], &t[1], &t[2], scale(t)).unwrap(), 5)
}

test_device! {
    fn forward_matches_composite(dev) {
        for (i, case) in CASES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-5), (DType::F64, 1e-12)] {
                check_forward(
                    dev,
                    &qkv(*case, dtype, i as u64),
                    |t| attention(&t[0], &t[1], &t[2], scale(t)).unwrap(),
                    |t| attention_composite(&t[0], &t[1], &t[2], scale(t)).unwrap(),
                    tol,
                    &format!("attention {case:?} {dtype:?}"),
                );
            }
        }
    }
}

#[test]
fn heads_cut_from_a_packed_qkv_are_read_in_place() {
    // The backbone's layout: (B, N, 3, H, hd) → permute → q, k, v views with row stride 3·H·hd.
    let (b, n, h, hd) = (2, 11, 3, 4);
    let qkv = uniform(&mut rng(8), &[b, n, 3, h, hd], 2.0, DType::F32).permute((2, 0, 3, 1, 4)).unwrap();
    let head = |t: &Tensor, i| t.narrow(0, i, 1).unwrap().squeeze(0).unwrap(); // a view (`get` copies)
    let (q, k, v) = (head(&qkv, 0), head(&qkv, 1), head(&qkv, 2));
    assert!(!q.is_contiguous());
    let got = attention(&q, &k, &v, 0.5).unwrap();
    assert_close(&got, &attention_composite(&q, &k, &v, 0.5).unwrap(), 1e-5, "packed qkv");
    // Merging heads back is a free reshape of the (B, N, H, hd) buffer.
    assert!(got.transpose(1, 2).unwrap().is_contiguous());
    let packed = qkv.contiguous().unwrap();
    let g_fused = grads(std::slice::from_ref(&packed), |t| {
        weighted_sum(&attention(&head(&t[0], 0), &head(&t[0], 1), &head(&t[0], 2), 0.5).unwrap(), 6)
    });
    let g_composite = grads(&[packed], |t| {
        weighted_sum(&attention_composite(&head(&t[0], 0), &head(&t[0], 1), &head(&t[0], 2), 0.5).unwrap(), 6)
    });
    assert_close(&g_fused[0], &g_composite[0], 1e-4, "packed qkv gradient");
}

test_device! {
    fn gradients_match_composite(dev) {
        for (i, case) in CASES.iter().enumerate() {
            for (dtype, tol) in [(DType::F32, 1e-4), (DType::F64, 1e-10)] {
                check_grads(
                    dev,
                    &qkv(*case, dtype, i as u64),
                    fused,
                    composite,
                    tol,
                    &format!("attention {case:?} {dtype:?}"),
                );
            }
        }
    }
}

#[test]
fn gradients_match_finite_differences() {
    // Small enough for every position; the long one covers several key and query blocks.
    for (i, case) in [[1usize, 2, 7, 7, 3, 3], [1, 1, 1, 1, 2, 2], [1, 1, 70, 300, 4, 5]].iter().enumerate() {
        assert_grads_match_finite_differences(
            &qkv(*case, DType::F64, 50 + i as u64),
            fused,
            30,
            &format!("attention {case:?}"),
        );
    }
}

#[test]
fn empty_outputs_and_zero_head_dims() {
    let t = qkv([1, 2, 0, 5, 4, 4], DType::F32, 1);
    assert_eq!(attention(&t[0], &t[1], &t[2], 1.0).unwrap().dims(), &[1, 2, 0, 4]);
    let t = qkv([1, 2, 3, 5, 0, 4], DType::F32, 1);
    let got = attention(&t[0], &t[1], &t[2], 1.0).unwrap();
    assert_close(&got, &attention_composite(&t[0], &t[1], &t[2], 1.0).unwrap(), 1e-6, "hd = 0");
}

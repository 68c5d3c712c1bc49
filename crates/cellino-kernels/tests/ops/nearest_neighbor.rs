use candle_core::{DType, Device, Tensor};
use cellino_kernels::{l2_normalize, nearest_neighbor_indices, nearest_neighbor_indices_composite};

use crate::*;

#[test]
fn small_example_excludes_the_row_itself() {
    let x = Tensor::new(&[[1f32, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]], &Device::Cpu).unwrap();
    let idx = nearest_neighbor_indices(&x).unwrap().to_vec1::<u32>().unwrap();
    assert_eq!(idx, [1, 0, 1, 2]);
}

#[test]
fn matches_composite_on_random_normalised_rows() {
    for (i, (b, d)) in [(2usize, 1usize), (7, 3), (64, 384), (257, 17)].into_iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            let x = l2_normalize(&uniform(&mut rng(i as u64), &[b, d], 1.0, dtype), 1e-8).unwrap();
            let got = nearest_neighbor_indices(&x).unwrap();
            assert_eq!(got.dtype(), DType::U32);
            let expected = nearest_neighbor_indices_composite(&x).unwrap();
            assert_eq!(got.to_vec1::<u32>().unwrap(), expected.to_vec1::<u32>().unwrap(), "({b}, {d}) {dtype:?}");
        }
    }
}

#[test]
fn one_row_has_no_neighbour() {
    let x = Tensor::ones((1, 4), DType::F32, &Device::Cpu).unwrap();
    let err = nearest_neighbor_indices(&x).unwrap_err().to_string();
    assert!(err.contains("nearest_neighbor_indices") && err.contains("[1, 4]"), "{err}");
}

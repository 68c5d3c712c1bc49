//! Nearest neighbour of every row by the largest dot product, the row itself excluded: the
//! pairing KoLeo uses (upstream fills the diagonal of `x xᵀ` with −1 and takes the arg-max).
//! No gradient: only indices come out.

use candle_core::{CpuStorage, CustomOp1, D, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{contiguous, fast_path, gemm_parallelism};
use crate::matmul::{Mat, MatMut, gemm};
use crate::real::Real;

const OP: &str = "nearest_neighbor_indices";

/// For `x` of shape `(B, D)` with B ≥ 2, the `(B,)` u32 indices `j ≠ i` maximising `x_i · x_j`
/// (the first on ties). L2-normalise `x` first for cosine neighbours, as KoLeo does.
pub fn nearest_neighbor_indices(x: &Tensor) -> Result<Tensor> {
    check(x)?;
    if !fast_path(&[x]) {
        return nearest_neighbor_indices_composite(x);
    }
    x.detach().apply_op1_no_bwd(&NearestNeighbor)
}

/// `argmax(x xᵀ with the diagonal at −inf)` from candle primitives (reference and fallback).
pub fn nearest_neighbor_indices_composite(x: &Tensor) -> Result<Tensor> {
    let b = check(x)?;
    let x = x.detach();
    let dots = x.matmul(&x.t()?)?;
    let diagonal = Tensor::eye(b, DType::U8, x.device())?;
    let excluded = Tensor::full(f64::NEG_INFINITY, (b, b), x.device())?.to_dtype(dots.dtype())?;
    diagonal.where_cond(&excluded, &dots)?.argmax(D::Minus1)
}

fn check(x: &Tensor) -> Result<usize> {
    match x.dims() {
        [b, _] if *b >= 2 => Ok(*b),
        dims => Err(KernelError::shape(OP, format!("needs (B, D) with B >= 2 rows, got {dims:?}"))),
    }
}

struct NearestNeighbor;

impl CustomOp1 for NearestNeighbor {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(s: &CpuStorage, l: &Layout) -> Result<Vec<u32>> {
            let (b, d) = l.shape().dims2()?;
            let x = contiguous::<T>(OP, s, l)?;
            let mut dots = vec![T::ZERO; b * b];
            let rows = Mat::rows(x, 0, b, d, d);
            gemm(MatMut::rows(&mut dots, 0, b, b, b), false, rows, rows.t(), T::ONE, gemm_parallelism())?;
            Ok(dots.par_chunks(b.max(1)).enumerate().map(|(i, row)| best_other(row, i)).collect())
        }
        let idx = match s {
            CpuStorage::F32(_) => run::<f32>(s, l)?,
            CpuStorage::F64(_) => run::<f64>(s, l)?,
            other => return Err(crate::cpu::dtype_error(OP, other)),
        };
        let b = idx.len();
        Ok((CpuStorage::U32(idx), Shape::from(b)))
    }
}

/// Index of the largest entry other than `skip` (NaNs never win; the first wins on ties).
fn best_other<T: Real>(row: &[T], skip: usize) -> u32 {
    let mut best: Option<(usize, T)> = None;
    for (j, &v) in row.iter().enumerate() {
        if j != skip && best.is_none_or(|(_, b)| v > b) {
            best = Some((j, v));
        }
    }
    best.map_or(0, |(j, _)| j as u32)
}

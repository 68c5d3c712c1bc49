//! Softmax over the last dimension, fused, with a backward computed from the saved output
//! (candle's fused `softmax_last_dim` has no backward).

use candle_core::{CpuStorage, CustomOp1, D, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{contiguous, fast_path, rows_per_task, tensor, with_data};
use crate::real::{Real, dot, exp_shifted_sum, max};
use crate::simd::multiversion;

const OP: &str = "softmax_last_dim";

/// `exp(x − max) / Σ exp(x − max)` over the last dimension (any rank ≥ 1).
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    check(x)?;
    if !fast_path(&[x]) {
        return softmax_last_dim_composite(x);
    }
    x.contiguous()?.apply_op1(Softmax)
}

/// The same maths from candle's differentiable primitives (reference and fallback).
pub fn softmax_last_dim_composite(x: &Tensor) -> Result<Tensor> {
    check(x)?;
    candle_nn::ops::softmax(x, D::Minus1)
}

fn check(x: &Tensor) -> Result<()> {
    if x.rank() == 0 {
        return Err(KernelError::shape(OP, "needs a tensor of rank >= 1, got a scalar"));
    }
    Ok(())
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
            let x = contiguous::<T>(OP, s, l)?;
            let d = l.dims().last().copied().unwrap_or(0);
            let mut y = vec![T::ZERO; x.len()];
            if let Some(rows) = x.len().checked_div(d) {
                let chunk = rows_per_task(rows, d) * d;
                x.par_chunks(chunk).zip(y.par_chunks_mut(chunk)).for_each(|(x, y)| forward_rows(x, y, d));
            }
            Ok(T::to_cpu_storage_owned(y))
        }
        let storage = match s {
            CpuStorage::F32(_) => run::<f32>(s, l)?,
            CpuStorage::F64(_) => run::<f64>(s, l)?,
            other => return Err(crate::cpu::dtype_error(OP, other)),
        };
        Ok((storage, l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        fn run<T: Real>(y: &Tensor, g: &Tensor) -> Result<Tensor> {
            let d = y.dims().last().copied().unwrap_or(0);
            let dx = with_data::<T, _>(OP, y, |y| {
                with_data::<T, _>(OP, g, |g| {
                    let mut dx = vec![T::ZERO; y.len()];
                    if d > 0 && g.len() == y.len() {
                        let chunk = rows_per_task(y.len() / d, d) * d;
                        y.par_chunks(chunk)
                            .zip(g.par_chunks(chunk))
                            .zip(dx.par_chunks_mut(chunk))
                            .for_each(|((y, g), dx)| backward_rows(y, g, dx, d));
                    }
                    Ok(dx)
                })
            })?;
            tensor(dx, y.shape())
        }
        let grad = grad.contiguous()?;
        let dx = match y.dtype() {
            candle_core::DType::F32 => run::<f32>(y, &grad)?,
            candle_core::DType::F64 => run::<f64>(y, &grad)?,
            other => return Err(KernelError::dtype(OP, other)),
        };
        Ok(Some(dx))
    }
}

multiversion! {
    fn forward_rows<T: Real>(x: &[T], y: &mut [T], d: usize) {
        for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            yr.copy_from_slice(xr);
            let inv = T::ONE / exp_shifted_sum(yr, max(xr));
            for y in yr.iter_mut() {
                *y *= inv;
            }
        }
    }
}

multiversion! {
    /// dx = y ⊙ (g − Σ g ⊙ y), row by row.
    fn backward_rows<T: Real>(y: &[T], g: &[T], dx: &mut [T], d: usize) {
        for ((yr, gr), dxr) in y.chunks_exact(d).zip(g.chunks_exact(d)).zip(dx.chunks_exact_mut(d)) {
            let s = dot(yr, gr);
            for ((dx, &y), &g) in dxr.iter_mut().zip(yr).zip(gr) {
                *dx = y * (g - s);
            }
        }
    }
}

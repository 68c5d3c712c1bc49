//! Row-wise L2 normalisation, `x / max(‖x‖, eps)` as `torch.nn.functional.normalize`, with
//! backward (the DINO head normalises its bottleneck before the prototypes; KoLeo normalises CLS).

use candle_core::{CpuStorage, CustomOp1, D, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{contiguous, fast_path, rows_per_task, tensor, with_data};
use crate::real::{Real, dot};
use crate::simd::multiversion;

const OP: &str = "l2_normalize";

/// `x / max(‖x‖₂, eps)` over the last dimension (any rank ≥ 1).
pub fn l2_normalize(x: &Tensor, eps: f64) -> Result<Tensor> {
    check(x, eps)?;
    if !fast_path(&[x]) {
        return l2_normalize_composite(x, eps);
    }
    x.contiguous()?.apply_op1(L2Normalize { eps })
}

/// The same maths from candle primitives (reference and fallback).
pub fn l2_normalize_composite(x: &Tensor, eps: f64) -> Result<Tensor> {
    check(x, eps)?;
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(eps)?;
    x.broadcast_div(&norm)
}

fn check(x: &Tensor, eps: f64) -> Result<()> {
    if x.rank() == 0 {
        return Err(KernelError::shape(OP, "needs a tensor of rank >= 1, got a scalar"));
    }
    if !(eps > 0.0 && eps.is_finite()) {
        return Err(KernelError::shape(OP, format!("eps must be positive and finite, got {eps}")));
    }
    Ok(())
}

struct L2Normalize {
    eps: f64,
}

impl CustomOp1 for L2Normalize {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(eps: f64, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
            let x = contiguous::<T>(OP, s, l)?;
            let d = l.dims().last().copied().unwrap_or(0);
            let mut y = vec![T::ZERO; x.len()];
            if let Some(rows) = x.len().checked_div(d) {
                let chunk = rows_per_task(rows, d) * d;
                let eps = T::from_f64(eps);
                x.par_chunks(chunk).zip(y.par_chunks_mut(chunk)).for_each(|(x, y)| forward_rows(x, y, d, eps));
            }
            Ok(T::to_cpu_storage_owned(y))
        }
        let storage = match s {
            CpuStorage::F32(_) => run::<f32>(self.eps, s, l)?,
            CpuStorage::F64(_) => run::<f64>(self.eps, s, l)?,
            other => return Err(crate::cpu::dtype_error(OP, other)),
        };
        Ok((storage, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        fn run<T: Real>(eps: f64, x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Tensor> {
            let d = x.dims().last().copied().unwrap_or(0);
            let eps = T::from_f64(eps);
            let dx = with_data::<T, _>(OP, x, |x| {
                with_data::<T, _>(OP, y, |y| {
                    with_data::<T, _>(OP, g, |g| {
                        let mut dx = vec![T::ZERO; x.len()];
                        if d > 0 && y.len() == x.len() && g.len() == x.len() {
                            let chunk = rows_per_task(x.len() / d, d) * d;
                            x.par_chunks(chunk)
                                .zip(y.par_chunks(chunk))
                                .zip(g.par_chunks(chunk))
                                .zip(dx.par_chunks_mut(chunk))
                                .for_each(|(((x, y), g), dx)| backward_rows(x, y, g, dx, d, eps));
                        }
                        Ok(dx)
                    })
                })
            })?;
            tensor(dx, x.shape())
        }
        let grad = grad.contiguous()?;
        let dx = match x.dtype() {
            DType::F32 => run::<f32>(self.eps, x, y, &grad)?,
            DType::F64 => run::<f64>(self.eps, x, y, &grad)?,
            other => return Err(KernelError::dtype(OP, other)),
        };
        Ok(Some(dx))
    }
}

multiversion! {
    fn forward_rows<T: Real>(x: &[T], y: &mut [T], d: usize, eps: T) {
        for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            let inv = T::ONE / dot(xr, xr).sqrt().fmax(eps);
            for (y, &x) in yr.iter_mut().zip(xr) {
                *y = x * inv;
            }
        }
    }
}

multiversion! {
    /// With n = ‖x‖: dx = (g − y (y·g)) / n where n > eps, else g / eps (the clamp is constant).
    fn backward_rows<T: Real>(x: &[T], y: &[T], g: &[T], dx: &mut [T], d: usize, eps: T) {
        let rows = x.chunks_exact(d).zip(y.chunks_exact(d)).zip(g.chunks_exact(d)).zip(dx.chunks_exact_mut(d));
        for (((xr, yr), gr), dxr) in rows {
            let n = dot(xr, xr).sqrt();
            if n > eps {
                let (inv, yg) = (T::ONE / n, dot(yr, gr));
                for ((dx, &y), &g) in dxr.iter_mut().zip(yr).zip(gr) {
                    *dx = (g - y * yg) * inv;
                }
            } else {
                let inv = T::ONE / eps;
                for (dx, &g) in dxr.iter_mut().zip(gr) {
                    *dx = g * inv;
                }
            }
        }
    }
}

//! The LayerScale residual `x + γ ⊙ branch` of a transformer block in one pass over memory
//! (candle needs two: a broadcast multiply, then the add), with backward.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{contiguous, fast_path, rows_per_task, same_dtype, tensor, with_data};
use crate::real::Real;
use crate::simd::multiversion;

const OP: &str = "scaled_residual";

/// `x + gamma ⊙ branch`, with `x` and `branch` of one shape `(…, D)` and `gamma` of shape `(D,)`.
pub fn scaled_residual(x: &Tensor, branch: &Tensor, gamma: &Tensor) -> Result<Tensor> {
    check(x, branch, gamma)?;
    if !fast_path(&[x, branch, gamma]) {
        return scaled_residual_composite(x, branch, gamma);
    }
    x.contiguous()?.apply_op3(&branch.contiguous()?, &gamma.contiguous()?, ScaledResidual)
}

/// `x + branch.broadcast_mul(gamma)` (reference and fallback).
pub fn scaled_residual_composite(x: &Tensor, branch: &Tensor, gamma: &Tensor) -> Result<Tensor> {
    check(x, branch, gamma)?;
    x + branch.broadcast_mul(gamma)?
}

fn check(x: &Tensor, branch: &Tensor, gamma: &Tensor) -> Result<()> {
    if x.dims() != branch.dims() || x.dims().last().is_none_or(|&d| gamma.dims() != [d]) {
        return Err(KernelError::shape(
            OP,
            format!(
                "x {:?}, branch {:?}, gamma {:?}: x and branch must share a shape (…, D), gamma must be (D,)",
                x.dims(),
                branch.dims(),
                gamma.dims()
            ),
        ));
    }
    same_dtype(OP, &[("x", x), ("branch", branch), ("gamma", gamma)])
}

struct ScaledResidual;

impl CustomOp3 for ScaledResidual {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(
            (xs, xl): (&CpuStorage, &Layout),
            (bs, bl): (&CpuStorage, &Layout),
            (gs, gl): (&CpuStorage, &Layout),
        ) -> Result<CpuStorage> {
            let (x, b, g) = (contiguous::<T>(OP, xs, xl)?, contiguous::<T>(OP, bs, bl)?, contiguous::<T>(OP, gs, gl)?);
            let d = g.len();
            let mut y = vec![T::ZERO; x.len()];
            if let Some(rows) = x.len().checked_div(d)
                && b.len() == x.len()
            {
                let chunk = rows_per_task(rows, d) * d;
                y.par_chunks_mut(chunk)
                    .zip(x.par_chunks(chunk))
                    .zip(b.par_chunks(chunk))
                    .for_each(|((y, x), b)| forward(x, b, g, y));
            }
            Ok(T::to_cpu_storage_owned(y))
        }
        let storage = match xs {
            CpuStorage::F32(_) => run::<f32>((xs, xl), (bs, bl), (gs, gl))?,
            CpuStorage::F64(_) => run::<f64>((xs, xl), (bs, bl), (gs, gl))?,
            other => return Err(crate::cpu::dtype_error(OP, other)),
        };
        Ok((storage, xl.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        branch: &Tensor,
        gamma: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        fn run<T: Real>(branch: &Tensor, gamma: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
            let (db, dg) = with_data::<T, _>(OP, branch, |b| {
                with_data::<T, _>(OP, gamma, |g| with_data::<T, _>(OP, grad, |dy| Ok(backward(b, g, dy))))
            })?;
            Ok((tensor(db, branch.shape())?, tensor(dg, gamma.shape())?))
        }
        let grad = grad.contiguous()?;
        let (db, dg) = match branch.dtype() {
            DType::F32 => run::<f32>(branch, gamma, &grad)?,
            DType::F64 => run::<f64>(branch, gamma, &grad)?,
            other => return Err(KernelError::dtype(OP, other)),
        };
        Ok((Some(grad), Some(db), Some(dg)))
    }
}

multiversion! {
    fn forward<T: Real>(x: &[T], b: &[T], g: &[T], y: &mut [T]) {
        let d = g.len();
        for ((yr, xr), br) in y.chunks_exact_mut(d).zip(x.chunks_exact(d)).zip(b.chunks_exact(d)) {
            for (((y, &x), &b), &g) in yr.iter_mut().zip(xr).zip(br).zip(g) {
                *y = b.mul_add(g, x);
            }
        }
    }
}

multiversion! {
    /// d branch = dy ⊙ γ; adds Σ_rows dy ⊙ branch into `dg`.
    fn backward_rows<T: Real>(b: &[T], g: &[T], dy: &[T], db: &mut [T], dg: &mut [T]) {
        let d = g.len();
        for ((br, dyr), dbr) in b.chunks_exact(d).zip(dy.chunks_exact(d)).zip(db.chunks_exact_mut(d)) {
            for ((((db, dg), &b), &dy), &g) in dbr.iter_mut().zip(dg.iter_mut()).zip(br).zip(dyr).zip(g) {
                *db = dy * g;
                *dg += dy * b;
            }
        }
    }
}

fn backward<T: Real>(b: &[T], g: &[T], dy: &[T]) -> (Vec<T>, Vec<T>) {
    let d = g.len();
    let mut db = vec![T::ZERO; b.len()];
    let Some(rows) = b.len().checked_div(d) else { return (db, vec![T::ZERO; d]) };
    if dy.len() != b.len() {
        return (db, vec![T::ZERO; d]);
    }
    let chunk = rows_per_task(rows, d) * d;
    let dg = b
        .par_chunks(chunk)
        .zip(dy.par_chunks(chunk))
        .zip(db.par_chunks_mut(chunk))
        .map(|((b, dy), db)| {
            let mut dg = vec![T::ZERO; d];
            backward_rows(b, g, dy, db, &mut dg);
            dg
        })
        .reduce(
            || vec![T::ZERO; d],
            |mut a, c| {
                a.iter_mut().zip(c).for_each(|(a, c)| *a += c);
                a
            },
        );
    (db, dg)
}

//! LayerNorm over the last dimension with affine weight and bias: one fused pass per row forward,
//! and a backward for the input, the weight and the bias (candle's fused `layer_norm` has none).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{contiguous, fast_path, rows_per_task, same_dtype, tensor, with_data};
use crate::real::{Real, sum, sum_sq_dev};
use crate::simd::multiversion;

const OP: &str = "layer_norm";

/// `(x − mean) / sqrt(var + eps) · weight + bias` over the last dimension of `x` (any rank ≥ 1),
/// with the biased variance, as `torch.nn.functional.layer_norm`. `weight` and `bias` are `(D,)`.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    check(x, weight, bias)?;
    if !fast_path(&[x, weight, bias]) {
        return layer_norm_composite(x, weight, bias, eps);
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNorm { eps })
}

/// The same maths from candle's differentiable primitives: the reference for tests and benches,
/// and the path for devices and dtypes the fused kernel does not cover.
pub fn layer_norm_composite(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    check(x, weight, bias)?;
    candle_nn::ops::layer_norm_slow(x, weight, bias, eps as f32)
}

fn check(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<()> {
    let affine_fits = x.dims().last().is_some_and(|&d| weight.dims() == [d] && bias.dims() == [d]);
    if !affine_fits {
        return Err(KernelError::shape(
            OP,
            format!(
                "x {:?}, weight {:?}, bias {:?}: weight and bias must be (D,) for the last dimension D of x",
                x.dims(),
                weight.dims(),
                bias.dims()
            ),
        ));
    }
    same_dtype(OP, &[("x", x), ("weight", weight), ("bias", bias)])
}

struct LayerNorm {
    eps: f64,
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(
            eps: f64,
            (xs, xl): (&CpuStorage, &Layout),
            (ws, wl): (&CpuStorage, &Layout),
            (bs, bl): (&CpuStorage, &Layout),
        ) -> Result<CpuStorage> {
            let (x, w, b) = (contiguous::<T>(OP, xs, xl)?, contiguous::<T>(OP, ws, wl)?, contiguous::<T>(OP, bs, bl)?);
            let d = w.len();
            let mut y = vec![T::ZERO; x.len()];
            if d > 0 && x.len().is_multiple_of(d) && b.len() == d {
                let chunk = rows_per_task(x.len() / d, d) * d;
                let eps = T::from_f64(eps);
                x.par_chunks(chunk).zip(y.par_chunks_mut(chunk)).for_each(|(x, y)| forward_rows(x, w, b, y, eps));
            }
            Ok(T::to_cpu_storage_owned(y))
        }
        let storage = match xs {
            CpuStorage::F32(_) => run::<f32>(self.eps, (xs, xl), (ws, wl), (bs, bl))?,
            CpuStorage::F64(_) => run::<f64>(self.eps, (xs, xl), (ws, wl), (bs, bl))?,
            other => return Err(crate::cpu::dtype_error(OP, other)),
        };
        Ok((storage, xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        fn run<T: Real>(eps: f64, x: &Tensor, weight: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
            let d = weight.elem_count();
            let (dx, dw, db) = with_data::<T, _>(OP, x, |x| {
                with_data::<T, _>(OP, weight, |w| {
                    with_data::<T, _>(OP, grad, |g| Ok(backward(x, w, g, T::from_f64(eps))))
                })
            })?;
            Ok((tensor(dx, x.shape())?, tensor(dw, d)?, tensor(db, d)?))
        }
        let grad = grad.contiguous()?;
        let (dx, dw, db) = match x.dtype() {
            candle_core::DType::F32 => run::<f32>(self.eps, x, weight, &grad)?,
            candle_core::DType::F64 => run::<f64>(self.eps, x, weight, &grad)?,
            other => return Err(KernelError::dtype(OP, other)),
        };
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

multiversion! {
    /// Normalise whole rows of `x` (row length `w.len()`) into `y`.
    fn forward_rows<T: Real>(x: &[T], w: &[T], b: &[T], y: &mut [T], eps: T) {
        let d = w.len();
        let inv_d = T::ONE / T::from_usize(d);
        for (xr, yr) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            // Two sweeps over a row that sits in L1 (one pass over memory): exact even when
            // |mean| ≫ std, unlike E[x²] − E[x]².
            let mean = sum(xr) * inv_d;
            let rstd = T::ONE / (sum_sq_dev(xr, mean) * inv_d + eps).sqrt();
            for (((y, &x), &w), &b) in yr.iter_mut().zip(xr).zip(w).zip(b) {
                *y = ((x - mean) * rstd).mul_add(w, b);
            }
        }
    }
}

multiversion! {
    /// Gradients for whole rows; adds this chunk's weight and bias gradients into `dw` and `db`.
    fn backward_rows<T: Real>(x: &[T], w: &[T], g: &[T], eps: T, dx: &mut [T], dw: &mut [T], db: &mut [T]) {
        let d = w.len();
        let inv_d = T::ONE / T::from_usize(d);
        for ((xr, gr), dxr) in x.chunks_exact(d).zip(g.chunks_exact(d)).zip(dx.chunks_exact_mut(d)) {
            let mean = sum(xr) * inv_d;
            let rstd = T::ONE / (sum_sq_dev(xr, mean) * inv_d + eps).sqrt();
            // dx = rstd · (g·w − mean(g·w) − x̂ · mean(g·w·x̂)), with x̂ the normalised row.
            let (mut a, mut c) = (T::ZERO, T::ZERO);
            for ((&x, &g), &w) in xr.iter().zip(gr).zip(w) {
                let gw = g * w;
                a += gw;
                c += gw * (x - mean) * rstd;
            }
            let (a, c) = (a * inv_d, c * inv_d);
            for (((((dx, dw), db), &x), &g), &w) in dxr.iter_mut().zip(dw.iter_mut()).zip(db.iter_mut()).zip(xr).zip(gr).zip(w)
            {
                let xhat = (x - mean) * rstd;
                *dx = rstd * (g * w - a - xhat * c);
                *dw += g * xhat;
                *db += g;
            }
        }
    }
}

/// Per-thread partial weight and bias gradients, summed at the end.
fn backward<T: Real>(x: &[T], w: &[T], g: &[T], eps: T) -> (Vec<T>, Vec<T>, Vec<T>) {
    let d = w.len();
    let mut dx = vec![T::ZERO; x.len()];
    if d == 0 || !x.len().is_multiple_of(d) || g.len() != x.len() {
        return (dx, vec![T::ZERO; d], vec![T::ZERO; d]);
    }
    let chunk = rows_per_task(x.len() / d, d) * d;
    let (dw, db) = x
        .par_chunks(chunk)
        .zip(g.par_chunks(chunk))
        .zip(dx.par_chunks_mut(chunk))
        .map(|((x, g), dx)| {
            let (mut dw, mut db) = (vec![T::ZERO; d], vec![T::ZERO; d]);
            backward_rows(x, w, g, eps, dx, &mut dw, &mut db);
            (dw, db)
        })
        .reduce(
            || (vec![T::ZERO; d], vec![T::ZERO; d]),
            |(mut dw, mut db), (dw2, db2)| {
                dw.iter_mut().zip(dw2).for_each(|(a, b)| *a += b);
                db.iter_mut().zip(db2).for_each(|(a, b)| *a += b);
                (dw, db)
            },
        );
    (dx, dw, db)
}

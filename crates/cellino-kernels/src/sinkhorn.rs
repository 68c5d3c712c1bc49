//! Sinkhorn-Knopp centring of teacher logits, as DINOv2's `sinkhorn_knopp_teacher` on one
//! process: `Q = exp(logits / T)ᵀ` (prototypes × samples), normalised to total 1, then
//! `iterations` rounds of {rows /= row sums, /= K; columns /= column sums, /= B}, and finally
//! `· B` so that every sample's distribution sums to 1. Returned as `(B, K)`, without gradient.
//!
//! Upstream exponentiates without shifting; here the logits are shifted by their global maximum
//! first, which the first normalisation cancels exactly, so results agree wherever upstream's
//! `exp` does not overflow.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{contiguous, fast_path, rows_per_task};
use crate::real::{Real, max, sum};
use crate::simd::multiversion;

const OP: &str = "sinkhorn_knopp";

/// Sinkhorn-Knopp targets for `(B, K)` teacher logits (B samples, K prototypes) at
/// `temperature`; upstream uses 3 iterations. Computed in f32 for f16/bf16 input, like upstream.
pub fn sinkhorn_knopp(logits: &Tensor, temperature: f64, iterations: usize) -> Result<Tensor> {
    check(logits, temperature)?;
    let logits = match logits.dtype() {
        DType::F16 | DType::BF16 => logits.to_dtype(DType::F32)?,
        _ => logits.detach(),
    };
    if !fast_path(&[&logits]) {
        return sinkhorn_knopp_composite(&logits, temperature, iterations);
    }
    logits.apply_op1_no_bwd(&Sinkhorn { temperature, iterations })
}

/// The same steps with candle primitives (reference and fallback).
pub fn sinkhorn_knopp_composite(logits: &Tensor, temperature: f64, iterations: usize) -> Result<Tensor> {
    let (b, k) = check(logits, temperature)?;
    let scaled = (logits.detach() / temperature)?;
    let shifted = scaled.broadcast_sub(&scaled.flatten_all()?.max_keepdim(0)?.reshape((1, 1))?)?;
    let q = shifted.exp()?;
    let mut q = q.broadcast_div(&q.sum_all()?.reshape((1, 1))?)?;
    for _ in 0..iterations {
        q = q.broadcast_div(&(q.sum_keepdim(0)? * k as f64)?)?;
        q = q.broadcast_div(&(q.sum_keepdim(1)? * b as f64)?)?;
    }
    q * b as f64
}

fn check(logits: &Tensor, temperature: f64) -> Result<(usize, usize)> {
    let (b, k) = match logits.dims() {
        [b, k] if *b > 0 && *k > 0 => (*b, *k),
        dims => return Err(KernelError::shape(OP, format!("needs non-empty (B, K) logits, got {dims:?}"))),
    };
    if !(temperature > 0.0 && temperature.is_finite()) {
        return Err(KernelError::shape(OP, format!("temperature must be positive and finite, got {temperature}")));
    }
    Ok((b, k))
}

struct Sinkhorn {
    temperature: f64,
    iterations: usize,
}

impl CustomOp1 for Sinkhorn {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(op: &Sinkhorn, s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
            let (b, k) = l.shape().dims2()?;
            let x = contiguous::<T>(OP, s, l)?;
            Ok(T::to_cpu_storage_owned(sinkhorn(x, b, k, T::from_f64(1.0 / op.temperature), op.iterations)))
        }
        let storage = match s {
            CpuStorage::F32(_) => run::<f32>(self, s, l)?,
            CpuStorage::F64(_) => run::<f64>(self, s, l)?,
            other => return Err(crate::cpu::dtype_error(OP, other)),
        };
        Ok((storage, l.shape().clone()))
    }
}

fn sinkhorn<T: Real>(x: &[T], b: usize, k: usize, inv_temp: T, iterations: usize) -> Vec<T> {
    let chunk = rows_per_task(b, k) * k;
    let shift = x.par_chunks(chunk).map(max).reduce(|| T::NEG_INFINITY, T::fmax) * inv_temp;
    let mut q = vec![T::ZERO; x.len()];
    let total = q
        .par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .map(|(q, x)| exp_scaled(x, q, inv_temp, shift))
        .reduce(|| T::ZERO, |a, b| a + b);
    let inv_total = T::ONE / total;
    q.par_chunks_mut(chunk).for_each(|q| q.iter_mut().for_each(|v| *v *= inv_total));
    let (kf, bf) = (T::from_usize(k), T::from_usize(b));
    for _ in 0..iterations {
        // Prototypes: each column (over samples) to total 1/K.
        let col_sums = q
            .par_chunks(chunk)
            .map(|rows| {
                let mut acc = vec![T::ZERO; k];
                rows.chunks_exact(k).for_each(|r| add_into(&mut acc, r));
                acc
            })
            .reduce(
                || vec![T::ZERO; k],
                |mut a, c| {
                    add_into(&mut a, &c);
                    a
                },
            );
        let col_scale: Vec<T> = col_sums.iter().map(|&s| T::ONE / (s * kf)).collect();
        // Samples: each row (over prototypes) to total 1/B.
        q.par_chunks_mut(chunk).for_each(|rows| scale_rows(rows, &col_scale, bf));
    }
    q.par_chunks_mut(chunk).for_each(|q| q.iter_mut().for_each(|v| *v *= bf));
    q
}

multiversion! {
    /// q = exp(x · inv_temp − shift); returns Σ q.
    fn exp_scaled<T: Real>(x: &[T], q: &mut [T], inv_temp: T, shift: T) -> T {
        for (q, &x) in q.iter_mut().zip(x) {
            *q = x.mul_add(inv_temp, -shift).exp();
        }
        sum(q)
    }
}

multiversion! {
    fn add_into<T: Real>(acc: &mut [T], row: &[T]) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    }
}

multiversion! {
    /// Scale columns by `col_scale`, then every row to sum 1/B.
    fn scale_rows<T: Real>(rows: &mut [T], col_scale: &[T], b: T) {
        for r in rows.chunks_exact_mut(col_scale.len()) {
            for (v, &c) in r.iter_mut().zip(col_scale) {
                *v *= c;
            }
            let inv = T::ONE / (sum(r) * b);
            for v in r.iter_mut() {
                *v *= inv;
            }
        }
    }
}

//! Multi-head scaled dot-product attention without a mask, flash-attention style on the CPU.
//!
//! Forward: for each image and block of query rows, all heads, the keys are visited in blocks
//! with an online softmax (running max and denominator per row, output rescaled when the max
//! grows), so at most `Q_BLOCK × K_BLOCK` scores exist at a time per thread instead of the full
//! `B·H·N·N` matrix. Only the per-row log-sum-exp is saved. Backward recomputes the scores block
//! by block from it. Tasks run in parallel with rayon; inside a task every block product is a
//! single-threaded `gemm`.
//!
//! The output buffer is laid out `(B, N, H, dv)`, so that merging heads afterwards
//! (`.transpose(1, 2).reshape((B, N, H·dv))`) costs nothing.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, D, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{cpu_storage, fast_path, same_dtype, tensor, with_data};
use crate::matmul::{Mat, MatMut, gemm};
use crate::real::{Real, dot, exp_shifted_sum, max};
use crate::simd::multiversion;

const OP: &str = "attention";
/// Query rows per task (rounded so that the blocks of a sequence have equal sizes).
const Q_BLOCK: usize = 64;
/// Keys per block: a ViT's 197 or 257 tokens fit in one block.
const K_BLOCK: usize = 256;
const SEQ: gemm::Parallelism = gemm::Parallelism::None;

/// `softmax(q kᵀ · scale) v` per batch and head: `q` is `(B, H, Nq, hd)`, `k` is `(B, H, Nk, hd)`,
/// `v` is `(B, H, Nk, dv)`; the result is `(B, H, Nq, dv)`.
///
/// On the CPU (f32, f64) the result is a transposed view of a `(B, Nq, H, dv)` buffer, and the
/// inputs are read in place whenever their last dimension is contiguous (e.g. `q`, `k`, `v` cut
/// out of one fused qkv projection without copies).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let Dims { b, h, nq, hd, dv } = check(q, k, v)?;
    if b * h * nq * dv == 0 {
        return Tensor::zeros((b, h, nq, dv), q.dtype(), q.device());
    }
    if !fast_path(&[q, k, v]) || hd == 0 {
        return attention_composite(q, k, v, scale);
    }
    let unit_last = |t: &Tensor| -> Result<Tensor> {
        if t.dims()[3] <= 1 || t.stride()[3] == 1 { Ok(t.clone()) } else { t.contiguous() }
    };
    let op = Attention { scale, lse: Mutex::new(None) };
    unit_last(q)?.apply_op3(&unit_last(k)?, &unit_last(v)?, op)?.transpose(1, 2)
}

/// `softmax(q kᵀ · scale) v` from candle primitives, materialising the scores (reference and
/// fallback).
pub fn attention_composite(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    check(q, k, v)?;
    let scores = (q.contiguous()?.matmul(&k.contiguous()?.t()?)? * scale)?;
    candle_nn::ops::softmax(&scores, D::Minus1)?.matmul(&v.contiguous()?)
}

#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    h: usize,
    nq: usize,
    hd: usize,
    dv: usize,
}

fn check(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Dims> {
    let bad =
        |why: &str| KernelError::shape(OP, format!("q {:?}, k {:?}, v {:?}: {why}", q.dims(), k.dims(), v.dims()));
    let ([b, h, nq, hd], [kb, kh, nk, khd], [vb, vh, vn, dv]) = (q.dims(), k.dims(), v.dims()) else {
        return Err(bad("expected (B, H, N, head_dim) for all three"));
    };
    if (b, h) != (kb, kh) || (b, h) != (vb, vh) {
        return Err(bad("batch and head counts must agree"));
    }
    if hd != khd || nk != vn {
        return Err(bad("q and k need the same head_dim, k and v the same length"));
    }
    if *nk == 0 {
        return Err(bad("needs at least one key"));
    }
    same_dtype(OP, &[("q", q), ("k", k), ("v", v)])?;
    Ok(Dims { b: *b, h: *h, nq: *nq, hd: *hd, dv: *dv })
}

/// One of q, k, v inside its buffer: `(B, H, N, d)` with unit stride along `d`.
struct Heads<'a, T> {
    data: &'a [T],
    start: usize,
    stride: [usize; 3],
    n: usize,
    d: usize,
}

impl<'a, T: Real> Heads<'a, T> {
    fn new(s: &'a CpuStorage, l: &Layout) -> Result<Self> {
        let data = s.as_slice::<T>()?;
        let (dims, st) = (l.dims(), l.stride());
        let ([b, h, n, d], [sb, sh, sn, sd]) = (dims, st) else {
            return Err(KernelError::shape(OP, format!("expected a rank-4 layout, got {dims:?}")));
        };
        let last =
            (b.saturating_sub(1)) * sb + h.saturating_sub(1) * sh + n.saturating_sub(1) * sn + d.saturating_sub(1);
        let empty = dims.contains(&0);
        if (*d > 1 && *sd != 1) || (!empty && l.start_offset() + last >= data.len()) {
            return Err(KernelError::shape(OP, format!("unsupported layout: dims {dims:?}, strides {st:?}")));
        }
        Ok(Self { data, start: l.start_offset(), stride: [*sb, *sh, *sn], n: *n, d: *d })
    }

    /// Rows `i0 .. i0 + len` of head `(b, h)` as a `len × d` matrix.
    fn rows(&self, b: usize, h: usize, i0: usize, len: usize) -> Mat<'a, T> {
        let [sb, sh, sn] = self.stride;
        Mat { data: self.data, offset: self.start + b * sb + h * sh + i0 * sn, rows: len, cols: self.d, rs: sn, cs: 1 }
    }
}

struct Attention {
    scale: f64,
    /// Per-row log-sum-exp of the scaled scores, `(B, Nq, H)`, written by the forward pass.
    lse: Mutex<Option<CpuStorage>>,
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(
            scale: f64,
            (qs, ql): (&CpuStorage, &Layout),
            (ks, kl): (&CpuStorage, &Layout),
            (vs, vl): (&CpuStorage, &Layout),
        ) -> Result<(CpuStorage, CpuStorage, Shape)> {
            let (q, k, v) = (Heads::<T>::new(qs, ql)?, Heads::<T>::new(ks, kl)?, Heads::<T>::new(vs, vl)?);
            let (b, h) = (ql.dims()[0], ql.dims()[1]);
            let (out, lse) = forward(T::from_f64(scale), &q, &k, &v, b, h)?;
            let shape = Shape::from((b, q.n, h, v.d));
            Ok((T::to_cpu_storage_owned(out), T::to_cpu_storage_owned(lse), shape))
        }
        let (out, lse, shape) = match qs {
            CpuStorage::F32(_) => run::<f32>(self.scale, (qs, ql), (ks, kl), (vs, vl))?,
            CpuStorage::F64(_) => run::<f64>(self.scale, (qs, ql), (ks, kl), (vs, vl))?,
            other => return Err(crate::cpu::dtype_error(OP, other)),
        };
        *self.lse.lock().map_err(|_| KernelError::shape(OP, "log-sum-exp store poisoned"))? = Some(lse);
        Ok((out, shape))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        fn run<T: Real>(
            scale: f64,
            lse: &CpuStorage,
            (q, k, v, out, grad): (&Tensor, &Tensor, &Tensor, &Tensor, &Tensor),
        ) -> Result<(Tensor, Tensor, Tensor)> {
            let lse = lse.as_slice::<T>()?;
            let (qg, ql) = q.storage_and_layout();
            let (kg, kl) = k.storage_and_layout();
            let (vg, vl) = v.storage_and_layout();
            let qh = Heads::<T>::new(cpu_storage(OP, &qg)?, ql)?;
            let kh = Heads::<T>::new(cpu_storage(OP, &kg)?, kl)?;
            let vh = Heads::<T>::new(cpu_storage(OP, &vg)?, vl)?;
            let (b, h) = (ql.dims()[0], ql.dims()[1]);
            let (dq, dk, dv) = with_data::<T, _>(OP, out, |o| {
                with_data::<T, _>(OP, grad, |g| backward(T::from_f64(scale), &qh, &kh, &vh, o, g, lse, b, h))
            })?;
            Ok((tensor(dq, q.shape())?, tensor(dk, k.shape())?, tensor(dv, v.shape())?))
        }
        let grad = grad.contiguous()?;
        let stored = self.lse.lock().map_err(|_| KernelError::shape(OP, "log-sum-exp store poisoned"))?;
        let Some(lse) = stored.as_ref() else {
            return Err(KernelError::shape(OP, "backward before forward"));
        };
        let tensors = (q, k, v, out, &grad);
        let (dq, dk, dv) = match q.dtype() {
            DType::F32 => run::<f32>(self.scale, lse, tensors)?,
            DType::F64 => run::<f64>(self.scale, lse, tensors)?,
            other => return Err(KernelError::dtype(OP, other)),
        };
        Ok((Some(dq), Some(dk), Some(dv)))
    }
}

/// Size of the query blocks: `nq` rows split into equal blocks of at most `Q_BLOCK`.
fn query_blocks(nq: usize) -> usize {
    nq.div_ceil(nq.div_ceil(Q_BLOCK).max(1)).max(1)
}

/// Output `(B, Nq, H, dv)` and log-sum-exp `(B, Nq, H)`.
fn forward<T: Real>(
    scale: T,
    q: &Heads<T>,
    k: &Heads<T>,
    v: &Heads<T>,
    b: usize,
    h: usize,
) -> Result<(Vec<T>, Vec<T>)> {
    let (nq, dv) = (q.n, v.d);
    let mut out = vec![T::ZERO; b * nq * h * dv];
    let mut lse = vec![T::ZERO; b * nq * h];
    if out.is_empty() {
        return Ok((out, lse));
    }
    // A task owns rows [i0, i0 + len) of one image for every head: contiguous in both outputs.
    let bq = query_blocks(nq);
    let mut tasks = Vec::with_capacity(b * nq.div_ceil(bq));
    let (mut out_rest, mut lse_rest) = (out.as_mut_slice(), lse.as_mut_slice());
    for bi in 0..b {
        for i0 in (0..nq).step_by(bq) {
            let len = bq.min(nq - i0);
            let (o, rest) = std::mem::take(&mut out_rest).split_at_mut(len * h * dv);
            out_rest = rest;
            let (l, rest) = std::mem::take(&mut lse_rest).split_at_mut(len * h);
            lse_rest = rest;
            tasks.push((bi, i0, o, l));
        }
    }
    tasks.into_par_iter().try_for_each_init(Vec::new, |scores, (bi, i0, o, l)| {
        forward_task(scale, (q, k, v), (bi, i0, h), o, l, scores)
    })?;
    Ok((out, lse))
}

fn forward_task<T: Real>(
    scale: T,
    (q, k, v): (&Heads<T>, &Heads<T>, &Heads<T>),
    (bi, i0, h): (usize, usize, usize),
    out: &mut [T],
    lse: &mut [T],
    scores: &mut Vec<T>,
) -> Result<()> {
    let (nk, dv) = (k.n, v.d);
    let len = lse.len() / h;
    let kb = K_BLOCK.min(nk);
    scores.resize(len * kb, T::ZERO);
    let (mut row_max, mut denom) = (vec![T::NEG_INFINITY; len], vec![T::ZERO; len]);
    for hi in 0..h {
        row_max.fill(T::NEG_INFINITY);
        denom.fill(T::ZERO);
        for j0 in (0..nk).step_by(kb) {
            let cols = kb.min(nk - j0);
            let first = j0 == 0;
            let s = &mut scores[..len * cols];
            gemm(
                MatMut::rows(s, 0, len, cols, cols),
                false,
                q.rows(bi, hi, i0, len),
                k.rows(bi, hi, j0, cols).t(),
                scale,
                SEQ,
            )?;
            online_softmax(s, cols, &mut row_max, &mut denom, out, (hi * dv, h * dv, dv), first);
            let o = MatMut { data: &mut *out, offset: hi * dv, rows: len, cols: dv, rs: h * dv, cs: 1 };
            gemm(o, !first, Mat::rows(s, 0, len, cols, cols), v.rows(bi, hi, j0, cols), T::ONE, SEQ)?;
        }
        finish_rows(out, (hi * dv, h * dv, dv), &row_max, &denom, lse, (hi, h));
    }
    Ok(())
}

multiversion! {
    /// Turn a block of scores into un-normalised probabilities against the running row maxima,
    /// updating maxima and denominators and rescaling the output rows accumulated so far.
    /// `o_at` = (offset of row 0, row stride, row length) of this head's output rows.
    fn online_softmax<T: Real>(
        s: &mut [T],
        cols: usize,
        row_max: &mut [T],
        denom: &mut [T],
        out: &mut [T],
        o_at: (usize, usize, usize),
        first: bool,
    ) {
        let (o0, ors, dv) = o_at;
        for (r, srow) in s.chunks_exact_mut(cols).enumerate() {
            let new_max = row_max[r].fmax(max(srow));
            let block_sum = exp_shifted_sum(srow, new_max);
            if first {
                denom[r] = block_sum;
            } else {
                let correction = (row_max[r] - new_max).exp();
                denom[r] = denom[r].mul_add(correction, block_sum);
                for o in &mut out[o0 + r * ors..o0 + r * ors + dv] {
                    *o *= correction;
                }
            }
            row_max[r] = new_max;
        }
    }
}

multiversion! {
    /// Divide the output rows by their denominators and store log-sum-exp = max + ln(denominator).
    fn finish_rows<T: Real>(out: &mut [T], o_at: (usize, usize, usize), row_max: &[T], denom: &[T], lse: &mut [T], head: (usize, usize)) {
        let (o0, ors, dv) = o_at;
        let (hi, h) = head;
        for (r, (&m, &d)) in row_max.iter().zip(denom).enumerate() {
            let inv = T::ONE / d;
            for o in &mut out[o0 + r * ors..o0 + r * ors + dv] {
                *o *= inv;
            }
            lse[r * h + hi] = m + d.ln();
        }
    }
}

/// Gradients `(B, H, Nq, hd)`, `(B, H, Nk, hd)`, `(B, H, Nk, dv)`, one (image, head) per task.
#[allow(clippy::too_many_arguments)]
fn backward<T: Real>(
    scale: T,
    q: &Heads<T>,
    k: &Heads<T>,
    v: &Heads<T>,
    out: &[T],
    grad: &[T],
    lse: &[T],
    b: usize,
    h: usize,
) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let (nq, nk, hd, dv) = (q.n, k.n, q.d, v.d);
    let (mut dq, mut dk, mut dvv) =
        (vec![T::ZERO; b * h * nq * hd], vec![T::ZERO; b * h * nk * hd], vec![T::ZERO; b * h * nk * dv]);
    if out.len() != b * nq * h * dv || grad.len() != out.len() || lse.len() != b * nq * h {
        return Err(KernelError::shape(OP, "saved forward results do not match the inputs"));
    }
    if dq.is_empty() || dk.is_empty() || dvv.is_empty() {
        // Empty heads never reach the kernel (`attention` sends them to the composite).
        return Ok((dq, dk, dvv));
    }
    dq.par_chunks_mut(nq * hd)
        .zip(dk.par_chunks_mut(nk * hd))
        .zip(dvv.par_chunks_mut(nk * dv))
        .enumerate()
        .try_for_each_init(Scratch::default, |scratch, (bh, ((dq, dk), dv))| {
            backward_head(scale, (q, k, v), (out, grad, lse), (bh / h, bh % h, h), (dq, dk, dv), scratch)
        })?;
    Ok((dq, dk, dvv))
}

struct Scratch<T> {
    probs: Vec<T>,
    dprobs: Vec<T>,
    /// Σ_j dO_ij O_ij for every query row of the head.
    row_dot: Vec<T>,
}

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Self { probs: Vec::new(), dprobs: Vec::new(), row_dot: Vec::new() }
    }
}

fn backward_head<T: Real>(
    scale: T,
    (q, k, v): (&Heads<T>, &Heads<T>, &Heads<T>),
    (out, grad, lse): (&[T], &[T], &[T]),
    (bi, hi, h): (usize, usize, usize),
    (dq, dk, dv): (&mut [T], &mut [T], &mut [T]),
    scratch: &mut Scratch<T>,
) -> Result<()> {
    let (nq, nk, hd, dvd) = (q.n, k.n, q.d, v.d);
    // Row i of this head in the (B, Nq, H, dv) output and its gradient.
    let row = |i: usize| ((bi * nq + i) * h + hi) * dvd;
    scratch.row_dot.clear();
    scratch.row_dot.extend((0..nq).map(|i| dot(&out[row(i)..row(i) + dvd], &grad[row(i)..row(i) + dvd])));
    let bq = query_blocks(nq);
    let kb = K_BLOCK.min(nk);
    scratch.probs.resize(bq * kb, T::ZERO);
    scratch.dprobs.resize(bq * kb, T::ZERO);
    for i0 in (0..nq).step_by(bq) {
        let len = bq.min(nq - i0);
        let d_out = Mat { data: grad, offset: row(i0), rows: len, cols: dvd, rs: h * dvd, cs: 1 };
        let lse_rows: Vec<T> = (i0..i0 + len).map(|i| lse[(bi * nq + i) * h + hi]).collect();
        for j0 in (0..nk).step_by(kb) {
            let cols = kb.min(nk - j0);
            let (p, dp) = (&mut scratch.probs[..len * cols], &mut scratch.dprobs[..len * cols]);
            let (qi, kj, vj) = (q.rows(bi, hi, i0, len), k.rows(bi, hi, j0, cols), v.rows(bi, hi, j0, cols));
            gemm(MatMut::rows(p, 0, len, cols, cols), false, qi, kj.t(), scale, SEQ)?;
            probs_from_lse(p, cols, &lse_rows);
            gemm(
                MatMut::rows(dv, j0 * dvd, cols, dvd, dvd),
                true,
                Mat::rows(p, 0, len, cols, cols).t(),
                d_out,
                T::ONE,
                SEQ,
            )?;
            gemm(MatMut::rows(dp, 0, len, cols, cols), false, d_out, vj.t(), T::ONE, SEQ)?;
            score_grad(p, dp, cols, &scratch.row_dot[i0..i0 + len]);
            let ds = Mat::rows(&*dp, 0, len, cols, cols);
            gemm(MatMut::rows(dq, i0 * hd, len, hd, hd), true, ds, kj, scale, SEQ)?;
            gemm(MatMut::rows(dk, j0 * hd, cols, hd, hd), true, ds.t(), qi, scale, SEQ)?;
        }
    }
    Ok(())
}

multiversion! {
    /// P = exp(S − lse), row by row.
    fn probs_from_lse<T: Real>(s: &mut [T], cols: usize, lse: &[T]) {
        for (srow, &l) in s.chunks_exact_mut(cols).zip(lse) {
            for x in srow {
                *x = (*x - l).exp();
            }
        }
    }
}

multiversion! {
    /// dS = P ⊙ (dP − Σ_j dO·O), written over dP.
    fn score_grad<T: Real>(p: &[T], dp: &mut [T], cols: usize, row_dot: &[T]) {
        for ((prow, dprow), &rd) in p.chunks_exact(cols).zip(dp.chunks_exact_mut(cols)).zip(row_dot) {
            for (d, &p) in dprow.iter_mut().zip(prow) {
                *d = p * (*d - rd);
            }
        }
    }
}

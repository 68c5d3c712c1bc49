//! `y = x Wᵀ + b` with the bias folded into the matrix product: the output starts as copies of the
//! bias and `gemm` accumulates into it, so there is no separate broadcast add (CANDLE_NOTES §6.2
//! measured candle's at 4.7 ms for a ViT-S/16 batch-8 qkv projection, 60 % of the product).

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{fast_path, gemm_parallelism, rows_per_task, same_dtype};
use crate::matmul::{Mat, MatMut, gemm};
use crate::real::Real;

const OP: &str = "linear";

/// `x Wᵀ + b` over the last dimension of `x` (any rank ≥ 1): `x` is `(…, in)`, `weight` is
/// `(out, in)` as in PyTorch, `bias` is `(out,)`; the result is `(…, out)`.
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (rows, out) = check(x, weight, bias)?;
    let fused = match bias {
        Some(b) if fast_path(&[x, weight, b]) => Some(b),
        _ => None,
    };
    let Some(bias) = fused else {
        return linear_composite(x, weight, bias);
    };
    // A 2-D x is read with its own strides; `reshape` would copy a non-contiguous one.
    let x2 = if x.rank() == 2 { x.clone() } else { x.reshape((rows, weight.dim(1)?))? };
    let y = x2.apply_op3(weight, &bias.contiguous()?, Linear)?;
    y.reshape(out_shape(x, out))
}

/// `matmul` then `broadcast_add` (reference and fallback; also the path without a bias, which is
/// a plain product).
pub fn linear_composite(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (rows, out) = check(x, weight, bias)?;
    let y = x.reshape((rows, weight.dim(1)?))?.matmul(&weight.t()?)?;
    let y = match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    y.reshape(out_shape(x, out))
}

fn out_shape(x: &Tensor, out: usize) -> Vec<usize> {
    let mut dims = x.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = out;
    }
    dims
}

/// (rows, out) after checking every shape.
fn check(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<(usize, usize)> {
    let bad = |why: &str| {
        KernelError::shape(
            OP,
            format!("x {:?}, weight {:?}, bias {:?}: {why}", x.dims(), weight.dims(), bias.map(|b| b.dims().to_vec())),
        )
    };
    let (Some(&inner), [out, w_in]) = (x.dims().last(), weight.dims()) else {
        return Err(bad("expected x (…, in) and weight (out, in)"));
    };
    if inner != *w_in {
        return Err(bad("the last dimension of x must equal the weight's second dimension"));
    }
    if let Some(b) = bias {
        if b.dims() != [*out] {
            return Err(bad("bias must be (out,)"));
        }
        same_dtype(OP, &[("x", x), ("weight", weight), ("bias", b)])?;
    } else {
        same_dtype(OP, &[("x", x), ("weight", weight)])?;
    }
    let rows = x.dims()[..x.rank() - 1].iter().product();
    Ok((rows, *out))
}

struct Linear;

impl CustomOp3 for Linear {
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
            (xs, xl): (&CpuStorage, &Layout),
            (ws, wl): (&CpuStorage, &Layout),
            (bs, bl): (&CpuStorage, &Layout),
        ) -> Result<(CpuStorage, Shape)> {
            let ((rows, inner), (out, _)) = (xl.shape().dims2()?, wl.shape().dims2()?);
            let bias = crate::cpu::contiguous::<T>(OP, bs, bl)?;
            if bias.len() != out {
                return Err(KernelError::shape(OP, format!("bias has {} elements for {out} outputs", bias.len())));
            }
            let mut y = vec![T::ZERO; rows * out];
            if out > 0 {
                let chunk = rows_per_task(rows, out) * out;
                y.par_chunks_mut(chunk).for_each(|c| c.chunks_exact_mut(out).for_each(|r| r.copy_from_slice(bias)));
            }
            // Strided views straight into candle's buffers: x may be any 2-D layout, W is read
            // transposed without a copy.
            let (x, w) = (xs.as_slice::<T>()?, ws.as_slice::<T>()?);
            let x =
                Mat { data: x, offset: xl.start_offset(), rows, cols: inner, rs: xl.stride()[0], cs: xl.stride()[1] };
            let w = Mat {
                data: w,
                offset: wl.start_offset(),
                rows: out,
                cols: inner,
                rs: wl.stride()[0],
                cs: wl.stride()[1],
            };
            gemm(MatMut::rows(&mut y, 0, rows, out, out), true, x, w.t(), T::ONE, gemm_parallelism())?;
            Ok((T::to_cpu_storage_owned(y), Shape::from((rows, out))))
        }
        match xs {
            CpuStorage::F32(_) => run::<f32>((xs, xl), (ws, wl), (bs, bl)),
            CpuStorage::F64(_) => run::<f64>((xs, xl), (ws, wl), (bs, bl)),
            other => Err(crate::cpu::dtype_error(OP, other)),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // The products are candle's (the same gemm); the bias gradient, a column sum, is a
        // product with a row of ones, which gemm threads (candle's `sum(0)` does not).
        let dx = grad.matmul(weight)?;
        let dw = grad.t()?.matmul(x)?;
        let ones = Tensor::ones((1, grad.dim(0)?), grad.dtype(), grad.device())?;
        let db = ones.matmul(grad)?.squeeze(0)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

//! The LayerScale residual `x + γ ⊙ branch` of a transformer block in one pass over memory
//! (candle needs two: a broadcast multiply, then the add), with backward; and, for inference,
//! the same sum written into the branch's own buffer.

use candle_core::{CpuStorage, CustomOp3, DType, InplaceOp2, InplaceOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{contiguous, contiguous_mut, fast_path, may_overwrite, rows_per_task, same_dtype, tensor, with_data};
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

/// The residual `x + gamma ⊙ branch` (LayerScale) or `x + branch` (no `gamma`) of a fresh branch
/// activation that needs no gradient, written into the branch's own storage when it can be
/// (contiguous f32 / f64 on the CPU, nothing tracked for backprop): an inference block then
/// allocates no new residual stream. Otherwise the same as [`scaled_residual`] or `x + branch`,
/// and bit-identical to them either way.
///
/// The branch's storage is overwritten: call it only on a tensor no one else holds (e.g. the
/// output of the block's last projection), as for [`crate::gelu_erf_owned`].
pub fn residual_owned(x: &Tensor, branch: Tensor, gamma: Option<&Tensor>) -> Result<Tensor> {
    let Some(gamma) = gamma else {
        if x.dims() != branch.dims() {
            return Err(KernelError::shape(
                OP,
                format!("x {:?}, branch {:?}: x and branch must share a shape", x.dims(), branch.dims()),
            ));
        }
        same_dtype(OP, &[("x", x), ("branch", &branch)])?;
        if !may_overwrite(&branch, &[x]) {
            return x + branch;
        }
        branch.inplace_op2(&x.contiguous()?, &AddInto)?;
        return Ok(branch);
    };
    check(x, &branch, gamma)?;
    if !may_overwrite(&branch, &[x, gamma]) {
        return scaled_residual(x, &branch, gamma);
    }
    branch.inplace_op3(&x.contiguous()?, &gamma.contiguous()?, &ScaledResidualInto)?;
    Ok(branch)
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

/// `branch ← x + γ ⊙ branch` in the branch's buffer (operands: x, γ).
struct ScaledResidualInto;

impl InplaceOp3 for ScaledResidualInto {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(
        &self,
        bs: &mut CpuStorage,
        bl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<()> {
        residual_into_storage((bs, bl), (xs, xl), Some((gs, gl)))
    }
}

/// `branch ← x + branch` in the branch's buffer (operand: x).
struct AddInto;

impl InplaceOp2 for AddInto {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, bs: &mut CpuStorage, bl: &Layout, xs: &CpuStorage, xl: &Layout) -> Result<()> {
        residual_into_storage((bs, bl), (xs, xl), None)
    }
}

type Operand<'a> = (&'a CpuStorage, &'a Layout);

/// `b ← x + γ ⊙ b` (or `x + b` without γ) on CPU storages of one dtype.
fn residual_into_storage(b: (&mut CpuStorage, &Layout), x: Operand, g: Option<Operand>) -> Result<()> {
    fn run<T: Real>((bs, bl): (&mut CpuStorage, &Layout), x: Operand, g: Option<Operand>) -> Result<()> {
        let x = contiguous::<T>(OP, x.0, x.1)?;
        let g = g.map(|(s, l)| contiguous::<T>(OP, s, l)).transpose()?;
        residual_into(contiguous_mut::<T>(OP, bs, bl)?, x, g);
        Ok(())
    }
    match x.0 {
        CpuStorage::F32(_) => run::<f32>(b, x, g),
        CpuStorage::F64(_) => run::<f64>(b, x, g),
        other => Err(crate::cpu::dtype_error(OP, other)),
    }
}

/// `b ← x + γ ⊙ b` (or `x + b`), row blocks across threads. Lengths were checked by the caller.
fn residual_into<T: Real>(b: &mut [T], x: &[T], g: Option<&[T]>) {
    if b.len() != x.len() {
        return;
    }
    let d = g.map_or(1, <[T]>::len).max(1);
    let chunk = rows_per_task(b.len() / d, d) * d;
    b.par_chunks_mut(chunk).zip(x.par_chunks(chunk)).for_each(|(b, x)| match g {
        Some(g) => forward_in_place(b, x, g),
        None => add_in_place(b, x),
    });
}

multiversion! {
    /// The same `mul_add` as [`forward`], so the in-place residual has the same bits.
    fn forward_in_place<T: Real>(b: &mut [T], x: &[T], g: &[T]) {
        let d = g.len();
        for (br, xr) in b.chunks_exact_mut(d).zip(x.chunks_exact(d)) {
            for ((b, &x), &g) in br.iter_mut().zip(xr).zip(g) {
                *b = b.mul_add(g, x);
            }
        }
    }
}

multiversion! {
    fn add_in_place<T: Real>(b: &mut [T], x: &[T]) {
        for (b, &x) in b.iter_mut().zip(x) {
            *b = x + *b;
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

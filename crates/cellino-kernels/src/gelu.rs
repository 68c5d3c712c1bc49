//! GELU with the exact (erf) formulation DINOv2 uses, multi-threaded and vectorised, with
//! backward. candle's `gelu_erf` runs one thread through a scalar libm `erf` (~9 ms for the
//! 2.4 M activations of a ViT-S/16 batch-8 MLP).

use candle_core::{CpuStorage, CustomOp1, InplaceOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{contiguous, contiguous_mut, fast_path, may_overwrite, rows_per_task, tensor, with_data};
use crate::real::Real;
use crate::simd::multiversion;

const OP: &str = "gelu_erf";

/// `x · Φ(x) = 0.5 · x · (1 + erf(x / √2))`, element-wise, any shape.
///
/// f32 uses the same erf approximation as PyTorch's vectorised CPU kernel (error < 1.5e-7).
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if !fast_path(&[x]) {
        return gelu_erf_composite(x);
    }
    x.contiguous()?.apply_op1(Gelu)
}

/// [`gelu_erf`] of a fresh activation that needs no gradient, computed in its own storage when
/// it can be (contiguous f32 / f64 on the CPU, not tracked for backprop): the inference MLP then
/// holds one `(tokens, hidden)` buffer instead of two. Otherwise the same as [`gelu_erf`].
///
/// The storage is overwritten: call it only on a tensor no one else holds (e.g. the output of
/// the previous op), as for candle's own `inplace_op1`.
pub fn gelu_erf_owned(x: Tensor) -> Result<Tensor> {
    if !may_overwrite(&x, &[]) {
        return gelu_erf(&x);
    }
    x.inplace_op1(&Gelu)?;
    Ok(x)
}

/// candle's own `gelu_erf` (reference and fallback).
pub fn gelu_erf_composite(x: &Tensor) -> Result<Tensor> {
    x.gelu_erf()
}

struct Gelu;

/// Elements per rayon task (element-wise ops have no rows).
fn chunk(len: usize) -> usize {
    rows_per_task(len, 1)
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        fn run<T: Real>(s: &CpuStorage, l: &Layout) -> Result<CpuStorage> {
            let x = contiguous::<T>(OP, s, l)?;
            let mut y = vec![T::ZERO; x.len()];
            let c = chunk(x.len());
            x.par_chunks(c).zip(y.par_chunks_mut(c)).for_each(|(x, y)| forward(x, y));
            Ok(T::to_cpu_storage_owned(y))
        }
        let storage = match s {
            CpuStorage::F32(_) => run::<f32>(s, l)?,
            CpuStorage::F64(_) => run::<f64>(s, l)?,
            other => return Err(crate::cpu::dtype_error(OP, other)),
        };
        Ok((storage, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        fn run<T: Real>(x: &Tensor, g: &Tensor) -> Result<Tensor> {
            let dx = with_data::<T, _>(OP, x, |x| {
                with_data::<T, _>(OP, g, |g| {
                    let mut dx = vec![T::ZERO; x.len()];
                    if g.len() == x.len() {
                        let c = chunk(x.len());
                        x.par_chunks(c)
                            .zip(g.par_chunks(c))
                            .zip(dx.par_chunks_mut(c))
                            .for_each(|((x, g), dx)| backward(x, g, dx));
                    }
                    Ok(dx)
                })
            })?;
            tensor(dx, x.shape())
        }
        let grad = grad.contiguous()?;
        let dx = match x.dtype() {
            candle_core::DType::F32 => run::<f32>(x, &grad)?,
            candle_core::DType::F64 => run::<f64>(x, &grad)?,
            other => return Err(KernelError::dtype(OP, other)),
        };
        Ok(Some(dx))
    }
}

impl InplaceOp1 for Gelu {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        fn run<T: Real>(s: &mut CpuStorage, l: &Layout) -> Result<()> {
            let v = contiguous_mut::<T>(OP, s, l)?;
            let c = chunk(v.len());
            v.par_chunks_mut(c).for_each(forward_in_place);
            Ok(())
        }
        match s {
            CpuStorage::F32(_) => run::<f32>(s, l),
            CpuStorage::F64(_) => run::<f64>(s, l),
            other => Err(crate::cpu::dtype_error(OP, other)),
        }
    }
}

multiversion! {
    fn forward_in_place<T: Real>(v: &mut [T]) {
        let rsqrt2 = T::from_f64(std::f64::consts::FRAC_1_SQRT_2);
        for v in v.iter_mut() {
            let x = *v;
            *v = T::HALF * x * (T::ONE + (x * rsqrt2).erf());
        }
    }
}

multiversion! {
    fn forward<T: Real>(x: &[T], y: &mut [T]) {
        let rsqrt2 = T::from_f64(std::f64::consts::FRAC_1_SQRT_2);
        for (y, &x) in y.iter_mut().zip(x) {
            *y = T::HALF * x * (T::ONE + (x * rsqrt2).erf());
        }
    }
}

multiversion! {
    /// d/dx [x Φ(x)] = Φ(x) + x φ(x).
    fn backward<T: Real>(x: &[T], g: &[T], dx: &mut [T]) {
        let rsqrt2 = T::from_f64(std::f64::consts::FRAC_1_SQRT_2);
        let rsqrt_2pi = T::from_f64(0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2);
        for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(g) {
            let cdf = T::HALF * (T::ONE + (x * rsqrt2).erf());
            let pdf = rsqrt_2pi * (-T::HALF * x * x).exp();
            *dx = g * x.mul_add(pdf, cdf);
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    #[test]
    fn owned_gelu_matches_and_leaves_tracked_tensors_alone() {
        let values: Vec<f32> = (0..1031).map(|i| (i as f32 - 515.0) / 97.0).collect();
        let x = Tensor::from_vec(values.clone(), (1031,), &Device::Cpu).unwrap();
        let expected = gelu_erf(&x).unwrap().to_vec1::<f32>().unwrap();
        let fresh = (&x * 1.0).unwrap(); // an untracked activation of its own
        assert_eq!(gelu_erf_owned(fresh).unwrap().to_vec1::<f32>().unwrap(), expected);
        // A variable (or anything tracked) is never overwritten: the gradient needs its input.
        let v = Var::from_tensor(&x).unwrap();
        let y = gelu_erf_owned(v.as_tensor().clone()).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), expected);
        assert_eq!(v.as_tensor().to_vec1::<f32>().unwrap(), values);
        assert!(y.backward().is_ok());
        // Non-contiguous input takes the copying path.
        let m = Tensor::from_vec(values[..1030].to_vec(), (10, 103), &Device::Cpu).unwrap().t().unwrap();
        let want = gelu_erf(&m).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(gelu_erf_owned(m).unwrap().to_vec2::<f32>().unwrap(), want);
    }
}

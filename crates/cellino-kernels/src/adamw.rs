//! AdamW's update of one parameter, in place: the two moments and the weight are rewritten in
//! their own buffers (three threaded passes, no temporaries) instead of the dozen full-size
//! tensors the composite allocates, which cost more than a ViT-S forward-backward's optimizer
//! share in PyTorch.
//!
//! The arithmetic is the composite's, operation for operation (candle's scalar ops are
//! `v · mul + add` in the tensor's dtype), so both give the same bits.

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{contiguous, contiguous_mut, fast_path};
use crate::real::Real;

const OP: &str = "adamw_step";
/// Elements per task.
const CHUNK: usize = 64 * 1024;

/// The hyper-parameters of one AdamW step (PyTorch's `torch.optim.AdamW` conventions).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWStep {
    pub lr: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// 1 for the first step (bias correction).
    pub step: u64,
}

impl AdamWStep {
    fn corrections(&self) -> (f64, f64) {
        let bc1 = 1.0 - self.beta1.powi(self.step as i32);
        let bc2_sqrt = (1.0 - self.beta2.powi(self.step as i32)).sqrt();
        (self.lr / bc1, bc2_sqrt)
    }
}

/// The step with candle ops: new `(param, exp_avg, exp_avg_sq)` (reference and fallback).
pub fn adamw_step_composite(
    param: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    grad: &Tensor,
    h: &AdamWStep,
) -> Result<(Tensor, Tensor, Tensor)> {
    let p = param.detach();
    let p = if h.lr * h.weight_decay != 0.0 { (p * (1.0 - h.lr * h.weight_decay))? } else { p };
    let m = ((exp_avg * h.beta1)? + (grad * (1.0 - h.beta1))?)?;
    let v = ((exp_avg_sq * h.beta2)? + (grad.sqr()? * (1.0 - h.beta2))?)?;
    let (step_size, bc2_sqrt) = h.corrections();
    let denom = ((v.sqrt()? / bc2_sqrt)? + h.eps)?;
    let p = (p - (m.div(&denom)? * step_size)?)?;
    Ok((p, m, v))
}

/// The step in place on `param`, `exp_avg` and `exp_avg_sq` when all four tensors are contiguous
/// CPU f32 / f64 of one shape; returns `false` (touching nothing) otherwise, for the caller to
/// use [`adamw_step_composite`]. The three state tensors must not share storage with each other
/// or with anything that should keep the old values.
pub fn adamw_step_in_place(
    param: &Tensor,
    exp_avg: &Tensor,
    exp_avg_sq: &Tensor,
    grad: &Tensor,
    h: &AdamWStep,
) -> Result<bool> {
    let all = [param, exp_avg, exp_avg_sq, grad];
    if !fast_path(&all) || all.iter().any(|t| !t.is_contiguous() || t.dims() != param.dims()) {
        return Ok(false);
    }
    exp_avg.inplace_op2(grad, &Moment { beta: h.beta1, square: false })?;
    exp_avg_sq.inplace_op2(grad, &Moment { beta: h.beta2, square: true })?;
    param.inplace_op3(exp_avg, exp_avg_sq, &Update(*h))?;
    Ok(true)
}

/// `m ← m·β + g·(1 − β)`, or with `g·g` for the second moment.
struct Moment {
    beta: f64,
    square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, ms: &mut CpuStorage, ml: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<()> {
        fn run<T: Real>(op: &Moment, ms: &mut CpuStorage, ml: &Layout, gs: &CpuStorage, gl: &Layout) -> Result<()> {
            let g = contiguous::<T>(OP, gs, gl)?;
            let m = own_slice::<T>(ms, ml, g.len())?;
            let (beta, one_minus) = (T::from_f64(op.beta), T::from_f64(1.0 - op.beta));
            let zero = T::from_f64(0.0);
            m.par_chunks_mut(CHUNK).zip(g.par_chunks(CHUNK)).for_each(|(m, g)| {
                for (m, &g) in m.iter_mut().zip(g) {
                    let g = if op.square { g * g } else { g };
                    *m = (*m * beta + zero) + (g * one_minus + zero);
                }
            });
            Ok(())
        }
        match gs {
            CpuStorage::F32(_) => run::<f32>(self, ms, ml, gs, gl),
            CpuStorage::F64(_) => run::<f64>(self, ms, ml, gs, gl),
            other => Err(crate::cpu::dtype_error(OP, other)),
        }
    }
}

/// `p ← p·(1 − lr·wd) − (m / (√v / √bc₂ + eps))·lr/bc₁`.
struct Update(AdamWStep);

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(
        &self,
        ps: &mut CpuStorage,
        pl: &Layout,
        ms: &CpuStorage,
        ml: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<()> {
        fn run<T: Real>(
            h: &AdamWStep,
            ps: &mut CpuStorage,
            pl: &Layout,
            (ms, ml): (&CpuStorage, &Layout),
            (vs, vl): (&CpuStorage, &Layout),
        ) -> Result<()> {
            let (m, v) = (contiguous::<T>(OP, ms, ml)?, contiguous::<T>(OP, vs, vl)?);
            let p = own_slice::<T>(ps, pl, m.len())?;
            if v.len() != m.len() {
                return Err(KernelError::shape(OP, "moment sizes differ"));
            }
            let decay = (h.lr * h.weight_decay != 0.0).then(|| T::from_f64(1.0 - h.lr * h.weight_decay));
            let (step_size, bc2_sqrt) = h.corrections();
            let (step_size, inv_bc2, eps) = (T::from_f64(step_size), T::from_f64(1.0 / bc2_sqrt), T::from_f64(h.eps));
            let (zero, one) = (T::from_f64(0.0), T::from_f64(1.0));
            p.par_chunks_mut(CHUNK).zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK))).for_each(|(p, (m, v))| {
                for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
                    let q = decay.map_or(*p, |d| *p * d + zero);
                    let denom = (v.sqrt() * inv_bc2 + zero) * one + eps;
                    *p = q - ((m / denom) * step_size + zero);
                }
            });
            Ok(())
        }
        match ms {
            CpuStorage::F32(_) => run::<f32>(&self.0, ps, pl, (ms, ml), (vs, vl)),
            CpuStorage::F64(_) => run::<f64>(&self.0, ps, pl, (ms, ml), (vs, vl)),
            other => Err(crate::cpu::dtype_error(OP, other)),
        }
    }
}

/// The `len` elements of a contiguous in-place operand.
fn own_slice<'a, T: Real>(s: &'a mut CpuStorage, l: &Layout, len: usize) -> Result<&'a mut [T]> {
    let x = contiguous_mut::<T>(OP, s, l)?;
    if x.len() != len {
        return Err(KernelError::shape(OP, "in-place operand and gradient sizes differ"));
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Var};

    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        // A small LCG: deterministic, spread over [-1, 1).
        let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn in_place_equals_the_composite_bit_for_bit() {
        for (n, dtype, wd) in [(1usize, DType::F32, 0.04), (70_001, DType::F32, 0.0), (1031, DType::F64, 0.1)] {
            let t = |seed| Tensor::from_vec(values(n, seed), n, &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            let (p, g) = (Var::from_tensor(&t(1)).unwrap(), t(2));
            let (m, v) = (t(3), t(4).abs().unwrap());
            for step in 1..=3 {
                let h = AdamWStep { lr: 1e-3, weight_decay: wd, beta1: 0.9, beta2: 0.999, eps: 1e-8, step };
                let (p_ref, m_ref, v_ref) = adamw_step_composite(p.as_tensor(), &m, &v, &g, &h).unwrap();
                assert!(adamw_step_in_place(p.as_tensor(), &m, &v, &g, &h).unwrap());
                for (got, want) in [(p.as_tensor(), &p_ref), (&m, &m_ref), (&v, &v_ref)] {
                    let d = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_dtype(DType::F64).unwrap();
                    assert_eq!(d.to_scalar::<f64>().unwrap(), 0.0, "n {n} {dtype:?} step {step}");
                }
            }
        }
    }

    #[test]
    fn other_layouts_are_declined_untouched() {
        let t = Tensor::from_vec(values(12, 5), (3, 4), &Device::Cpu).unwrap();
        let h = AdamWStep { lr: 1e-3, weight_decay: 0.0, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 };
        let (p, m, v) = (t.copy().unwrap(), t.copy().unwrap(), t.abs().unwrap());
        assert!(!adamw_step_in_place(&p, &m, &v, &t.t().unwrap(), &h).unwrap());
        assert!(!adamw_step_in_place(&p, &m, &v, &t.to_dtype(DType::BF16).unwrap(), &h).unwrap());
        assert_eq!(p.to_vec2::<f32>().unwrap(), t.to_vec2::<f32>().unwrap());
    }
}

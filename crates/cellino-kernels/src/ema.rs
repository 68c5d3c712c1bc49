//! Exponential moving average of many tensors at once, `teacher = m·teacher + (1 − m)·student`
//! (DINOv2's teacher update), threaded across and within tensors.

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor};
use rayon::prelude::*;

use crate::KernelError;
use crate::cpu::{contiguous, contiguous_mut, fast_path};
use crate::real::Real;
use crate::simd::multiversion;

const OP: &str = "ema_update";
/// Elements per task inside one tensor.
const CHUNK: usize = 64 * 1024;

/// New tensors `m·teacher + (1 − m)·student`, pair by pair, detached from any graph.
pub fn ema_update(teacher: &[Tensor], student: &[Tensor], momentum: f64) -> Result<Vec<Tensor>> {
    check(teacher, student, momentum)?;
    teacher
        .par_iter()
        .zip(student)
        .map(|(t, s)| {
            let t = t.detach().copy()?;
            update_one(&t, s, momentum)?;
            Ok(t)
        })
        .collect()
}

/// `teacher ← m·teacher + (1 − m)·student` in place, for every pair. Each teacher tensor must be
/// contiguous and own its storage: a teacher made with `student.clone()` or `detach()` shares
/// the student's buffer and is refused (use `copy()`). Every tensor sharing a teacher's storage
/// sees the update.
pub fn ema_update_in_place(teacher: &[Tensor], student: &[Tensor], momentum: f64) -> Result<()> {
    check(teacher, student, momentum)?;
    teacher.par_iter().zip(student).try_for_each(|(t, s)| update_one(t, s, momentum))
}

/// The update with candle primitives, returning new tensors (reference for tests and benches).
pub fn ema_update_composite(teacher: &[Tensor], student: &[Tensor], momentum: f64) -> Result<Vec<Tensor>> {
    check(teacher, student, momentum)?;
    teacher.iter().zip(student).map(|(t, s)| (t.detach() * momentum)? + (s.detach() * (1.0 - momentum))?).collect()
}

fn check(teacher: &[Tensor], student: &[Tensor], momentum: f64) -> Result<()> {
    if teacher.len() != student.len() {
        return Err(KernelError::shape(
            OP,
            format!("{} teacher tensors for {} student tensors", teacher.len(), student.len()),
        ));
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(KernelError::shape(OP, format!("momentum must be in [0, 1], got {momentum}")));
    }
    for (i, (t, s)) in teacher.iter().zip(student).enumerate() {
        if t.dims() != s.dims() || t.dtype() != s.dtype() || !t.device().same_device(s.device()) {
            return Err(KernelError::shape(
                OP,
                format!("pair {i}: teacher {:?} {:?} vs student {:?} {:?}", t.dims(), t.dtype(), s.dims(), s.dtype()),
            ));
        }
    }
    Ok(())
}

/// In place on one pair: the fused kernel on CPU f32/f64, otherwise a composite written back.
fn update_one(t: &Tensor, s: &Tensor, momentum: f64) -> Result<()> {
    if !t.is_contiguous() {
        return Err(KernelError::shape(OP, format!("teacher tensor {:?} is not contiguous", t.dims())));
    }
    if fast_path(&[t, s]) {
        let s = s.contiguous()?;
        return t.inplace_op2(&s, &Ema { momentum });
    }
    let updated = ((t * momentum)? + (s.detach() * (1.0 - momentum))?)?;
    if t.rank() == 0 {
        return Err(KernelError::shape(OP, "in-place update of a scalar off the CPU is not supported"));
    }
    t.slice_set(&updated, 0, 0)
}

struct Ema {
    momentum: f64,
}

impl InplaceOp2 for Ema {
    fn name(&self) -> &'static str {
        OP
    }

    fn cpu_fwd(&self, ts: &mut CpuStorage, tl: &Layout, ss: &CpuStorage, sl: &Layout) -> Result<()> {
        fn run<T: Real>(m: f64, ts: &mut CpuStorage, tl: &Layout, ss: &CpuStorage, sl: &Layout) -> Result<()> {
            let s = contiguous::<T>(OP, ss, sl)?;
            let t = contiguous_mut::<T>(OP, ts, tl)?;
            if t.len() != s.len() {
                return Err(KernelError::shape(OP, "teacher and student sizes differ"));
            }
            let (m, one_minus_m) = (T::from_f64(m), T::from_f64(1.0 - m));
            t.par_chunks_mut(CHUNK).zip(s.par_chunks(CHUNK)).for_each(|(t, s)| blend(t, s, m, one_minus_m));
            Ok(())
        }
        match ss {
            CpuStorage::F32(_) => run::<f32>(self.momentum, ts, tl, ss, sl),
            CpuStorage::F64(_) => run::<f64>(self.momentum, ts, tl, ss, sl),
            other => Err(crate::cpu::dtype_error(OP, other)),
        }
    }
}

multiversion! {
    fn blend<T: Real>(t: &mut [T], s: &[T], m: T, one_minus_m: T) {
        for (t, &s) in t.iter_mut().zip(s) {
            *t = (*t).mul_add(m, s * one_minus_m);
        }
    }
}

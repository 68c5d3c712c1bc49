//! Plumbing shared by the CPU kernels: which tensors take the fast path, borrowing their data,
//! and how rows are split across threads.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Result, Shape, Storage, Tensor};

use crate::KernelError;
use crate::real::Real;

/// True when every tensor is on the CPU in f32 or f64 (one dtype): the cases the fused kernels
/// handle. Everything else (CUDA, half precision) goes through the candle composites.
pub(crate) fn fast_path(tensors: &[&Tensor]) -> bool {
    let Some(first) = tensors.first() else { return false };
    let dtype = first.dtype();
    matches!(dtype, DType::F32 | DType::F64) && tensors.iter().all(|t| t.device().is_cpu() && t.dtype() == dtype)
}

/// Error unless all tensors share one dtype (the composites would fail later with less context).
pub(crate) fn same_dtype(op: &'static str, tensors: &[(&str, &Tensor)]) -> Result<()> {
    if let Some((_, first)) = tensors.first()
        && tensors.iter().any(|(_, t)| t.dtype() != first.dtype())
    {
        let list: Vec<String> = tensors.iter().map(|(n, t)| format!("{n} {:?}", t.dtype())).collect();
        return Err(KernelError::shape(op, format!("dtypes differ: {}", list.join(", "))));
    }
    Ok(())
}

/// The error for a storage dtype the kernel has no code for.
pub(crate) fn dtype_error(op: &'static str, s: &CpuStorage) -> candle_core::Error {
    KernelError::dtype(op, s.dtype())
}

/// The elements of a contiguous layout.
pub(crate) fn contiguous<'a, T: Real>(op: &'static str, s: &'a CpuStorage, l: &Layout) -> Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((start, end)) if end <= data.len() => Ok(&data[start..end]),
        _ => Err(KernelError::shape(op, format!("expects a contiguous input, got strides {:?}", l.stride()))),
    }
}

/// A tensor's CPU storage, for the backward kernels (which receive tensors, not storages).
pub(crate) fn cpu_storage<'a>(op: &'static str, storage: &'a Storage) -> Result<&'a CpuStorage> {
    match storage {
        Storage::Cpu(s) => Ok(s),
        _ => Err(KernelError::shape(op, "the fused kernel only runs on the CPU")),
    }
}

/// Whether an inference op may overwrite `dst` with a result computed from it and `operands`:
/// a contiguous `dst`, all on the CPU in f32 or f64, nothing tracked for backprop (a tracked op
/// needs its inputs for the backward, and its result must be tracked) and no operand reading
/// `dst`'s own buffer.
pub(crate) fn may_overwrite(dst: &Tensor, operands: &[&Tensor]) -> bool {
    let all: Vec<&Tensor> = std::iter::once(dst).chain(operands.iter().copied()).collect();
    dst.is_contiguous()
        && fast_path(&all)
        && all.iter().all(|t| !t.track_op())
        && operands.iter().all(|t| !share_storage(dst, t))
}

/// Whether two CPU tensors are views of one allocation (an in-place op must not read what it
/// writes; candle refuses such operands).
fn share_storage(a: &Tensor, b: &Tensor) -> bool {
    fn base(t: &Tensor) -> Option<usize> {
        let (guard, _) = t.storage_and_layout();
        match &*guard {
            Storage::Cpu(CpuStorage::F32(v)) => Some(v.as_ptr() as usize),
            Storage::Cpu(CpuStorage::F64(v)) => Some(v.as_ptr() as usize),
            _ => None,
        }
    }
    // One guard at a time: both may be the same lock.
    let a = base(a);
    a.is_some() && a == base(b)
}

/// Borrow the elements of a contiguous CPU tensor and run `f` on them.
pub(crate) fn with_data<T: Real, R>(op: &'static str, t: &Tensor, f: impl FnOnce(&[T]) -> Result<R>) -> Result<R> {
    let (guard, layout) = t.storage_and_layout();
    let data = contiguous::<T>(op, cpu_storage(op, &guard)?, layout)?;
    f(data)
}

/// A CPU tensor from a vector of results.
pub(crate) fn tensor<T: Real>(data: Vec<T>, shape: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_vec(data, shape, &candle_core::Device::Cpu)
}

/// Rows handed to one rayon task: at least ~64k elements so that scheduling stays cheap (an input
/// that fits one task runs on the calling thread without touching the pool), and no more than
/// four tasks per thread. Waking the pool costs a few µs, more than a second core saves on these
/// memory-bound passes below ~64k elements (`l2_normalize` 160×256: 6.4 µs with 32k, 3.8 µs).
pub(crate) fn rows_per_task(rows: usize, row_len: usize) -> usize {
    const MIN_TASK_ELEMS: usize = 64 * 1024;
    let by_work = MIN_TASK_ELEMS.div_ceil(row_len.max(1));
    let by_balance = rows.div_ceil(4 * rayon::current_num_threads());
    by_work.max(by_balance).max(1)
}

/// Threads for `gemm`, as candle's own matmul chooses them (`RAYON_NUM_THREADS` or the cores).
pub(crate) fn gemm_parallelism() -> gemm::Parallelism {
    match candle_core::utils::get_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    }
}

/// The elements of a contiguous in-place operand (f32 or f64 storage), mutable: the twin of
/// [`contiguous`] for `InplaceOp`s.
pub(crate) fn contiguous_mut<'a, T: Real>(op: &'static str, s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [T]> {
    let dtype = BackendStorage::dtype(s);
    let any: &mut dyn std::any::Any = match s {
        CpuStorage::F32(v) => v,
        CpuStorage::F64(v) => v,
        _ => return Err(KernelError::dtype(op, dtype)),
    };
    let data = any.downcast_mut::<Vec<T>>().ok_or_else(|| KernelError::dtype(op, dtype))?;
    match l.contiguous_offsets() {
        Some((start, end)) if end <= data.len() => Ok(&mut data[start..end]),
        _ => {
            Err(KernelError::shape(op, format!("expects a contiguous in-place operand, got strides {:?}", l.stride())))
        }
    }
}

//! A bounds-checked front end to `gemm` (the matrix-product crate candle itself uses) for strided
//! matrix views inside our own buffers, so that kernels can multiply blocks without copying them.

use candle_core::Result;

use crate::KernelError;
use crate::real::Real;

/// A read-only `rows × cols` view: element (i, j) is `data[offset + i·rs + j·cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

/// A writable view with the same addressing; rows must not overlap (checked).
pub(crate) struct MatMut<'a, T> {
    pub data: &'a mut [T],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A dense row-major matrix starting at `offset`.
    pub fn rows(data: &'a [T], offset: usize, rows: usize, cols: usize, rs: usize) -> Self {
        Self { data, offset, rows, cols, rs, cs: 1 }
    }

    /// The transpose, as a view of the same memory.
    pub fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }
}

impl<'a, T> MatMut<'a, T> {
    pub fn rows(data: &'a mut [T], offset: usize, rows: usize, cols: usize, rs: usize) -> Self {
        Self { data, offset, rows, cols, rs, cs: 1 }
    }
}

/// Largest index a view touches (`None` for an empty view).
fn last_index(offset: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return None;
    }
    Some(offset + (rows - 1) * rs + (cols - 1) * cs)
}

fn in_bounds(len: usize, offset: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    last_index(offset, rows, cols, rs, cs).is_none_or(|last| last < len)
}

/// `dst = (accumulate ? dst : 0) + scale · lhs · rhs`.
pub(crate) fn gemm<T: Real>(
    dst: MatMut<'_, T>,
    accumulate: bool,
    lhs: Mat<'_, T>,
    rhs: Mat<'_, T>,
    scale: T,
    parallelism: gemm::Parallelism,
) -> Result<()> {
    const OP: &str = "gemm";
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    if lhs.rows != m || rhs.cols != n || rhs.rows != k {
        return Err(KernelError::shape(
            OP,
            format!("({}×{}) · ({}×{}) into ({m}×{n})", lhs.rows, lhs.cols, rhs.rows, rhs.cols),
        ));
    }
    let dst_ok = in_bounds(dst.data.len(), dst.offset, m, n, dst.rs, dst.cs)
        // Every destination element must be distinct: either rows or columns are unit-stride and
        // the other stride steps over a whole line.
        && ((dst.cs == 1 && (m <= 1 || dst.rs >= n)) || (dst.rs == 1 && (n <= 1 || dst.cs >= m)));
    if !dst_ok
        || !in_bounds(lhs.data.len(), lhs.offset, m, k, lhs.rs, lhs.cs)
        || !in_bounds(rhs.data.len(), rhs.offset, k, n, rhs.rs, rhs.cs)
    {
        return Err(KernelError::shape(OP, "matrix view outside its buffer"));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst.data[dst.offset + i * dst.rs + j * dst.cs] = T::ZERO;
                }
            }
        }
        return Ok(());
    }
    // SAFETY: all three views were checked to lie inside their slices; `dst` is borrowed mutably
    // (so it aliases neither input) and its elements are distinct; T is f32 or f64, which gemm
    // supports; strides fit in isize because they index allocated slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr().add(dst.offset),
            dst.cs as isize,
            dst.rs as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.cs as isize,
            rhs.rs as isize,
            T::ONE,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_product_matches_naive_and_rejects_out_of_bounds() {
        // lhs 2×3 stored with row stride 4; rhs 3×2 read as the transpose of a 2×3.
        let a = [1.0, 2.0, 3.0, 99.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, -1.0, 2.0, 1.0, 0.5];
        let mut c = [10.0f64; 4];
        gemm(
            MatMut::rows(&mut c, 0, 2, 2, 2),
            true,
            Mat::rows(&a, 0, 2, 3, 4),
            Mat::rows(&b, 0, 2, 3, 3).t(),
            2.0,
            gemm::Parallelism::None,
        )
        .unwrap();
        assert_eq!(c, [10.0 + 2.0 * -2.0, 10.0 + 2.0 * 5.5, 10.0 + 2.0 * -2.0, 10.0 + 2.0 * 16.0]);
        let err = gemm(
            MatMut::rows(&mut c, 0, 2, 2, 2),
            false,
            Mat::rows(&a, 1, 2, 3, 4),
            Mat::rows(&b, 0, 3, 2, 2),
            1.0,
            gemm::Parallelism::None,
        );
        assert!(err.is_err());
    }
}

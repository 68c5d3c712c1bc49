//! Bicubic resampling that reproduces PyTorch's `F.interpolate(mode="bicubic", align_corners=False)`.
//!
//! candle has no bicubic resize, and DINOv2 needs one (with a gradient) to resample its position
//! embeddings. Resampling a grid is linear, so we build the two 1-D resampling matrices once and apply
//! them with matrix products: exact, differentiable, and cheap for the small grids involved.
//!
//! Two kernels exist in PyTorch and both are used by published DINOv2 models:
//! - `antialias = false`: Keys cubic with A = -0.75, four taps clamped to the border;
//! - `antialias = true`: PIL-style cubic with A = -0.5, support widened by the down-scaling factor,
//!   taps outside the input dropped and the remaining weights renormalised (also when up-sampling).

use candle_core::{DType, Device, Tensor};

use crate::KernelError;

/// How the output size and the source step are derived, as in the two ways of calling `interpolate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResizeRule {
    /// `size = out`: source step is `in / out`.
    Size,
    /// `scale_factor = s` (output `floor(in · s)` must equal the requested size): source step is `1 / s`.
    /// DINOv2 with `interpolate_offset` uses `s = (out + offset) / in`.
    ScaleFactor(f64),
}

/// One axis of a bicubic resize: a dense `(output, input)` weight matrix in row-major order.
pub fn bicubic_weights_1d(input: usize, output: usize, rule: ResizeRule, antialias: bool) -> Vec<f32> {
    if antialias { antialiased_weights(input, output, rule) } else { keys_weights(input, output, rule) }
}

/// Keys cubic convolution, `|x| <= 1`.
fn cubic_near(x: f32, a: f32) -> f32 {
    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
}

/// Keys cubic convolution, `1 < |x| < 2`.
fn cubic_far(x: f32, a: f32) -> f32 {
    ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
}

/// PyTorch's `area_pixel_compute_scale` for `align_corners = false`, in f32 like its CPU kernel.
fn source_step(input: usize, output: usize, rule: ResizeRule) -> f32 {
    match rule {
        ResizeRule::ScaleFactor(s) if s > 0.0 => (1.0 / s) as f32,
        _ => input as f32 / output as f32,
    }
}

fn keys_weights(input: usize, output: usize, rule: ResizeRule) -> Vec<f32> {
    const A: f32 = -0.75;
    let step = source_step(input, output, rule);
    let mut w = vec![0f32; output * input];
    let last = input as i64 - 1;
    for dst in 0..output {
        let src = step * (dst as f32 + 0.5) - 0.5;
        let base = src.floor();
        let t = src - base;
        let coeffs = [cubic_far(t + 1.0, A), cubic_near(t, A), cubic_near(1.0 - t, A), cubic_far(2.0 - t, A)];
        for (k, c) in coeffs.iter().enumerate() {
            // Taps beyond the border read the border pixel.
            let idx = (base as i64 - 1 + k as i64).clamp(0, last) as usize;
            w[dst * input + idx] += c;
        }
    }
    w
}

fn antialiased_weights(input: usize, output: usize, rule: ResizeRule) -> Vec<f32> {
    const A: f64 = -0.5;
    let filter = |x: f64| {
        let x = x.abs();
        if x < 1.0 {
            ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
        } else {
            0.0
        }
    };
    let step = source_step(input, output, rule) as f64;
    // Down-scaling widens the kernel so that every input pixel contributes (the anti-aliasing).
    let (support, inv_step) = if step >= 1.0 { (2.0 * step, 1.0 / step) } else { (2.0, 1.0) };
    let mut w = vec![0f32; output * input];
    for dst in 0..output {
        let center = step * (dst as f64 + 0.5);
        // Truncation toward zero, as PyTorch's integer cast does.
        let lo = ((center - support + 0.5) as i64).max(0) as usize;
        let hi = ((center + support + 0.5) as i64).min(input as i64) as usize;
        let taps: Vec<f64> = (lo..hi).map(|j| filter((j as f64 - center + 0.5) * inv_step)).collect();
        let total: f64 = taps.iter().sum();
        for (j, tap) in (lo..hi).zip(taps) {
            let value = if total != 0.0 { tap / total } else { tap };
            w[dst * input + j] = value as f32;
        }
    }
    w
}

/// A separable bicubic resize from an `(in_h, in_w)` grid to `(out_h, out_w)`, built once and applied
/// to any number of channels with two matrix products.
#[derive(Debug, Clone)]
pub struct BicubicResize {
    rows: Tensor,
    cols: Tensor,
    out_h: usize,
    out_w: usize,
}

impl BicubicResize {
    /// `rule_h` / `rule_w` give PyTorch's `size` or `scale_factor` per axis (height first).
    pub fn new(
        (in_h, in_w): (usize, usize),
        (out_h, out_w): (usize, usize),
        (rule_h, rule_w): (ResizeRule, ResizeRule),
        antialias: bool,
        device: &Device,
    ) -> Result<Self, KernelError> {
        if in_h == 0 || in_w == 0 || out_h == 0 || out_w == 0 {
            return Err(KernelError::EmptyGrid { input: (in_h, in_w), output: (out_h, out_w) });
        }
        let rows = bicubic_weights_1d(in_h, out_h, rule_h, antialias);
        let cols = bicubic_weights_1d(in_w, out_w, rule_w, antialias);
        Ok(Self {
            rows: Tensor::from_vec(rows, (out_h, in_h), device)?,
            cols: Tensor::from_vec(cols, (out_w, in_w), device)?,
            out_h,
            out_w,
        })
    }

    /// DINOv2's `interpolate_pos_encoding` call for a square `m × m` grid resized to `(h0, w0)`:
    /// with a non-zero `offset`, torch receives `scale_factor = ((h0 + offset) / m, (w0 + offset) / m)`,
    /// otherwise `size = (h0, w0)`.
    pub fn dinov2_pos_embed(
        m: usize,
        (h0, w0): (usize, usize),
        offset: f64,
        antialias: bool,
        device: &Device,
    ) -> Result<Self, KernelError> {
        let rule = |out: usize| {
            if offset != 0.0 { ResizeRule::ScaleFactor((out as f64 + offset) / m as f64) } else { ResizeRule::Size }
        };
        Self::new((m, m), (h0, w0), (rule(h0), rule(w0)), antialias, device)
    }

    /// Resample a channels-last grid `(in_h, in_w, C)` to `(out_h, out_w, C)`. Differentiable.
    pub fn apply_hwc(&self, grid: &Tensor) -> Result<Tensor, KernelError> {
        let (in_h, in_w, c) = grid.dims3()?;
        let (rows, cols) = (self.rows.to_dtype(grid.dtype())?, self.cols.to_dtype(grid.dtype())?);
        if rows.dim(1)? != in_h || cols.dim(1)? != in_w {
            return Err(KernelError::GridShape { expected: (rows.dim(1)?, cols.dim(1)?), found: (in_h, in_w) });
        }
        // Height: (out_h, in_h) · (in_h, in_w·C).
        let by_rows = rows.matmul(&grid.reshape((in_h, in_w * c))?)?;
        let by_rows = by_rows.reshape((self.out_h, in_w, c))?;
        // Width, for every output row at once: (out_h, out_w, in_w) · (out_h, in_w, C).
        let cols = cols.unsqueeze(0)?.broadcast_as((self.out_h, self.out_w, in_w))?.contiguous()?;
        Ok(cols.matmul(&by_rows)?)
    }

    /// Resample an `(N, C, in_h, in_w)` tensor like `F.interpolate` does.
    pub fn apply_nchw(&self, x: &Tensor) -> Result<Tensor, KernelError> {
        let (n, c, h, w) = x.dims4()?;
        let hwc = x.permute((2, 3, 0, 1))?.reshape((h, w, n * c))?;
        let out = self.apply_hwc(&hwc)?;
        Ok(out.reshape((self.out_h, self.out_w, n, c))?.permute((2, 3, 0, 1))?.contiguous()?)
    }

    /// Output grid size `(out_h, out_w)`.
    pub fn output_size(&self) -> (usize, usize) {
        (self.out_h, self.out_w)
    }

    /// The dtype the weights are stored in (f32).
    pub fn dtype(&self) -> DType {
        self.rows.dtype()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_both_kernels_sum_to_one() {
        for antialias in [false, true] {
            for (i, o) in [(14, 6), (14, 24), (16, 37), (3, 1), (1, 5)] {
                let w = bicubic_weights_1d(i, o, ResizeRule::Size, antialias);
                for row in w.chunks(i) {
                    let s: f32 = row.iter().sum();
                    assert!((s - 1.0).abs() < 1e-5, "{i}->{o} aa={antialias}: row sums to {s}");
                }
            }
        }
    }

    #[test]
    fn same_size_without_offset_is_identity() {
        let w = bicubic_weights_1d(7, 7, ResizeRule::Size, false);
        for r in 0..7 {
            for c in 0..7 {
                let expected = if r == c { 1.0 } else { 0.0 };
                assert!((w[r * 7 + c] - expected).abs() < 1e-6);
            }
        }
    }
}

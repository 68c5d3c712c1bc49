//! Bilinear and bicubic resizing, bit for bit as PyTorch's generic CPU kernel computes
//! `F.interpolate(..., align_corners=False, antialias=False)` on float tensors.
//!
//! That kernel (`upsample_generic_Nd_kernel_impl`) works in f32 and, in the x86-64 build of
//! torch, its compiler fused some multiply-adds; the fused operations are reproduced with
//! `f32::mul_add` (correctly rounded whatever the CPU, so results do not depend on it):
//! - source coordinate: bilinear `scale·(d + 0.5) − 0.5` unfused, bicubic fused;
//! - Keys coefficients (A = −0.75): `((A+2)x − (A+3))` fused, then `·x·x + 1` unfused;
//!   `((Ax − 5A)x + 8A)` both fused, then `·x − 4A` unfused;
//! - taps: `o = v₁w₁; o = fma(v₀, w₀, o); o = fma(vₖ, wₖ, o)` for k ≥ 2, along the width, then
//!   the same along the height.
//!
//! (torch switches to a channels-last kernel with a different summation when `out_h + out_w ≤
//! 128`, or with one thread and 3 channels; those outputs differ from these by an ulp or two.)

use rand::rngs::StdRng;

use super::ImageOp;
use crate::{DataError, MultiChannelImage};

/// Resampling kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// Two taps per axis (torch `mode="bilinear"`).
    #[default]
    Bilinear,
    /// Keys cubic, A = −0.75, four taps per axis clamped to the border (torch `mode="bicubic"`).
    Bicubic,
}

/// Source indices and weights of every output position along one axis (2 or 4 taps each).
pub(crate) struct Taps {
    pub n: usize,
    pub index: Vec<usize>,
    pub weight: Vec<f32>,
}

/// How a crop reads its source values: `v / divisor` (skipped when the divisor is 1), then
/// `· factor`, exactly as if the whole image had been divided and rescaled first.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ReadScale {
    pub divisor: f32,
    pub factor: Option<f32>,
}

impl ReadScale {
    fn is_identity(&self) -> bool {
        self.divisor == 1.0 && self.factor.is_none()
    }
}

const A: f32 = -0.75;

fn cubic1(x: f32) -> f32 {
    (A + 2.0).mul_add(x, -(A + 3.0)) * x * x + 1.0
}

fn cubic2(x: f32) -> f32 {
    A.mul_add(x, -(5.0 * A)).mul_add(x, 8.0 * A) * x - 4.0 * A
}

impl Taps {
    /// The same taps for the outputs in reverse order: resizing with them gives the mirrored
    /// output, each value computed exactly as before (a flip folded into the resize).
    pub fn reversed(&self) -> Self {
        let mut index = Vec::with_capacity(self.index.len());
        let mut weight = Vec::with_capacity(self.weight.len());
        for (i, w) in self.index.chunks_exact(self.n).rev().zip(self.weight.chunks_exact(self.n).rev()) {
            index.extend_from_slice(i);
            weight.extend_from_slice(w);
        }
        Self { n: self.n, index, weight }
    }

    pub fn new(input: usize, output: usize, interp: Interpolation) -> Self {
        // torch `area_pixel_compute_scale` (align_corners = false, size given): in / out in f32.
        let scale = input as f32 / output as f32;
        let last = input - 1;
        match interp {
            Interpolation::Bilinear => {
                let mut index = Vec::with_capacity(2 * output);
                let mut weight = Vec::with_capacity(2 * output);
                for d in 0..output {
                    if input == output {
                        index.extend([d, d]);
                        weight.extend([1.0, 0.0]);
                        continue;
                    }
                    let src = (scale * (d as f32 + 0.5) - 0.5).max(0.0);
                    let i0 = (src.floor() as usize).min(last);
                    let l1 = (src - i0 as f32).clamp(0.0, 1.0);
                    let i1 = i0 + usize::from(i0 < last);
                    index.extend([i0, i1]);
                    weight.extend([1.0 - l1, l1]);
                }
                Self { n: 2, index, weight }
            }
            Interpolation::Bicubic => {
                let mut index = Vec::with_capacity(4 * output);
                let mut weight = Vec::with_capacity(4 * output);
                for d in 0..output {
                    let src = scale.mul_add(d as f32 + 0.5, -0.5);
                    // torch `guard_index_and_lambda`.
                    let base = (src.floor() as i64).min(last as i64);
                    let t = (src - base as f32).clamp(0.0, 1.0);
                    let x2 = 1.0 - t;
                    weight.extend([cubic2(t + 1.0), cubic1(t), cubic1(x2), cubic2(x2 + 1.0)]);
                    for k in 0..4 {
                        index.push((base - 1 + k).clamp(0, last as i64) as usize);
                    }
                }
                Self { n: 4, index, weight }
            }
        }
    }
}

/// Resizes the `h × w` region at (`top`, `left`) of a plane of row length `stride` to
/// `out_h × out_w`, appending to `out`, reading values through `read`. The caller guarantees the
/// region is inside the plane and that no size is zero.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resize_region(
    plane: &[f32],
    stride: usize,
    region: (usize, usize, usize, usize),
    out_size: (usize, usize),
    rows: &Taps,
    cols: &Taps,
    read: ReadScale,
    scratch: &mut Scratch,
    out: &mut Vec<f32>,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above). `mul_add` is correctly rounded
        // with or without them, so this only changes speed, not results.
        unsafe { resize_region_avx2(plane, stride, region, out_size, rows, cols, read, scratch, out) };
        return;
    }
    resize_region_generic(plane, stride, region, out_size, rows, cols, read, scratch, out);
}

/// Reusable buffers of [`resize_region`]: the width-resized rows, one scaled source row, and
/// which region rows the height taps read.
#[derive(Default)]
pub(crate) struct Scratch {
    rows: Vec<f32>,
    line: Vec<f32>,
    used: Vec<bool>,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn resize_region_avx2(
    plane: &[f32],
    stride: usize,
    region: (usize, usize, usize, usize),
    out_size: (usize, usize),
    rows: &Taps,
    cols: &Taps,
    read: ReadScale,
    scratch: &mut Scratch,
    out: &mut Vec<f32>,
) {
    resize_region_generic(plane, stride, region, out_size, rows, cols, read, scratch, out);
}

/// One output value from `n` taps: `o = v₁w₁; o = fma(v₀, w₀, o); o = fma(vₖ, wₖ, o)`.
#[inline(always)]
fn taps_sum(value: impl Fn(usize) -> f32, idx: &[usize], wt: &[f32]) -> f32 {
    let mut acc = value(idx[1]) * wt[1];
    acc = value(idx[0]).mul_add(wt[0], acc);
    for k in 2..idx.len() {
        acc = value(idx[k]).mul_add(wt[k], acc);
    }
    acc
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn resize_region_generic(
    plane: &[f32],
    stride: usize,
    (top, left, h, w): (usize, usize, usize, usize),
    (out_h, out_w): (usize, usize),
    rows: &Taps,
    cols: &Taps,
    read: ReadScale,
    Scratch { rows: scratch, line, used }: &mut Scratch,
    out: &mut Vec<f32>,
) {
    // Along the width for every region row the height taps read (a strong downscale skips
    // some), then along the height (torch's nesting).
    used.clear();
    used.resize(h, false);
    rows.index.iter().for_each(|&i| used[i] = true);
    scratch.clear();
    scratch.resize(h * out_w, 0.0);
    for (y, resized) in scratch.chunks_exact_mut(out_w).enumerate().filter(|(y, _)| used[*y]) {
        let mut row = &plane[(top + y) * stride + left..(top + y) * stride + left + w];
        if !read.is_identity() {
            // One short row buffer instead of a copy of the whole region: same values, in cache.
            line.clear();
            line.extend(row.iter().map(|&v| if read.divisor == 1.0 { v } else { v / read.divisor }));
            if let Some(f) = read.factor {
                line.iter_mut().for_each(|v| *v *= f);
            }
            row = line;
        }
        let taps = resized.iter_mut().zip(cols.index.chunks_exact(cols.n).zip(cols.weight.chunks_exact(cols.n)));
        if cols.n == 2 {
            // The bilinear case written out: the generic loop's bookkeeping costs more than the math.
            for (o, (i, wt)) in taps {
                *o = row[i[0]].mul_add(wt[0], row[i[1]] * wt[1]);
            }
        } else {
            for (o, (i, wt)) in taps {
                *o = taps_sum(|k| row[k], i, wt);
            }
        }
    }
    for y in 0..out_h {
        let idx = &rows.index[y * rows.n..(y + 1) * rows.n];
        let wt = &rows.weight[y * rows.n..(y + 1) * rows.n];
        let line = |k: usize| &scratch[idx[k] * out_w..(idx[k] + 1) * out_w];
        let base = out.len();
        out.extend(line(1).iter().map(|v| v * wt[1]));
        for (k, &wk) in [0].into_iter().chain(2..rows.n).map(|k| (k, &wt[k])) {
            for (o, v) in out[base..].iter_mut().zip(line(k)) {
                *o = v.mul_add(wk, *o);
            }
        }
    }
}

fn check_size(what: &'static str, h: usize, w: usize) -> Result<(), DataError> {
    if h == 0 || w == 0 {
        return Err(DataError::invalid(what, "a non-zero output size", format!("{h} × {w}")));
    }
    Ok(())
}

/// `image` resized to `out_h × out_w` (every channel), as torch `F.interpolate(mode,
/// align_corners=False, antialias=False)` on a float tensor.
pub fn resize(
    image: &MultiChannelImage,
    out_h: usize,
    out_w: usize,
    interp: Interpolation,
) -> Result<MultiChannelImage, DataError> {
    resize_crop(image, (0, 0, image.height, image.width), (out_h, out_w), interp)
}

/// The `h × w` region at (`top`, `left`) of `image`, resized to `out_h × out_w` (torchvision
/// `F.resized_crop` without antialias). The region must lie inside the image.
pub fn resize_crop(
    image: &MultiChannelImage,
    (top, left, h, w): (usize, usize, usize, usize),
    (out_h, out_w): (usize, usize),
    interp: Interpolation,
) -> Result<MultiChannelImage, DataError> {
    check_size("resize", out_h, out_w)?;
    if h == 0 || w == 0 || top + h > image.height || left + w > image.width {
        return Err(DataError::invalid(
            "crop region",
            format!("a non-empty region inside {} × {}", image.height, image.width),
            format!("{h} × {w} at ({top}, {left})"),
        ));
    }
    let rows = Taps::new(h, out_h, interp);
    let cols = Taps::new(w, out_w, interp);
    let mut data = Vec::with_capacity(image.channels * out_h * out_w);
    let mut scratch = Scratch::default();
    let read = ReadScale { divisor: 1.0, factor: None };
    for plane in image.channel_planes() {
        resize_region(
            plane,
            image.width,
            (top, left, h, w),
            (out_h, out_w),
            &rows,
            &cols,
            read,
            &mut scratch,
            &mut data,
        );
    }
    let mut out = MultiChannelImage::new(data, image.channels, out_h, out_w, image.sample_type)?;
    out.channel_names = image.channel_names.clone();
    Ok(out)
}

/// The output size of torchvision `Resize(size)` with one integer: the shorter side becomes
/// `size`, the longer `int(size · long / short)`.
pub fn shorter_side_size(h: usize, w: usize, size: usize) -> (usize, usize) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((size as f64 * long as f64) / short as f64) as usize;
    if w <= h { (new_long, size) } else { (size, new_long) }
}

/// Resize so that the shorter side is `size` (torchvision `Resize(size, interpolation)` with
/// `antialias=False`, as at the pinned torchvision 0.15; unchanged if already that size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResizeShorter {
    pub size: usize,
    pub interpolation: Interpolation,
}

impl ImageOp for ResizeShorter {
    fn apply(&self, image: MultiChannelImage, _rng: &mut StdRng) -> Result<MultiChannelImage, DataError> {
        check_size("resize", self.size, self.size)?;
        let (h, w) = shorter_side_size(image.height, image.width, self.size);
        if (h, w) == (image.height, image.width) {
            return Ok(image);
        }
        check_size("resize", h, w)?;
        resize(&image, h, w, self.interpolation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SampleType;

    #[test]
    fn same_size_is_identity_and_constants_stay() {
        let data: Vec<f32> = (0..35).map(|v| (v as f32 * 0.37).sin()).collect();
        let im = MultiChannelImage::new(data.clone(), 1, 5, 7, SampleType::F32).unwrap();
        for interp in [Interpolation::Bilinear, Interpolation::Bicubic] {
            assert_eq!(resize(&im, 5, 7, interp).unwrap().data, data);
        }
        let flat = MultiChannelImage::new(vec![0.25; 12], 1, 3, 4, SampleType::F32).unwrap();
        let up = resize(&flat, 7, 9, Interpolation::Bilinear).unwrap();
        assert!(up.data.iter().all(|&v| (v - 0.25).abs() < 1e-7));
        assert!(resize(&flat, 0, 9, Interpolation::Bilinear).is_err());
        assert!(resize_crop(&flat, (1, 1, 3, 3), (2, 2), Interpolation::Bilinear).is_err());
    }

    #[test]
    fn shorter_side() {
        assert_eq!(shorter_side_size(512, 384, 256), (341, 256));
        assert_eq!(shorter_side_size(100, 300, 50), (50, 150));
        assert_eq!(shorter_side_size(7, 7, 3), (3, 3));
    }
}

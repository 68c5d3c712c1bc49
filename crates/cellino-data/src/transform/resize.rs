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

/// One plane to resize, and the factor its values are multiplied by as they are read (the
/// protein contrast, exactly as if the whole plane had been rescaled first).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlaneRead<'a> {
    pub plane: &'a [f32],
    pub factor: Option<f32>,
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

/// Resizes the `h × w` region at (`top`, `left`) of every plane in `sources` (row length `stride`)
/// to `out_h × out_w`, writing source `k` to `outs[k]` (`out_h · out_w` values each). The caller
/// guarantees the region is inside the planes and that no size is zero.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resize_region(
    sources: &[PlaneRead],
    stride: usize,
    region: (usize, usize, usize, usize),
    out_size: (usize, usize),
    rows: &Taps,
    cols: &Taps,
    scratch: &mut Scratch,
    outs: &mut [&mut [f32]],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above). `mul_add` is correctly rounded
        // with or without them, so this only changes speed, not results.
        unsafe { resize_region_avx2(sources, stride, region, out_size, rows, cols, scratch, outs) };
        return;
    }
    resize_region_generic(sources, stride, region, out_size, rows, cols, scratch, outs);
}

/// Reusable buffers of [`resize_region`]: the width-resized rows of every source, the rescaled
/// rows of the sources read with a factor, and which region rows the height taps read.
#[derive(Default)]
pub(crate) struct Scratch {
    rows: Vec<f32>,
    lines: Vec<f32>,
    used: Vec<bool>,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
fn resize_region_avx2(
    sources: &[PlaneRead],
    stride: usize,
    region: (usize, usize, usize, usize),
    out_size: (usize, usize),
    rows: &Taps,
    cols: &Taps,
    scratch: &mut Scratch,
    outs: &mut [&mut [f32]],
) {
    resize_region_generic(sources, stride, region, out_size, rows, cols, scratch, outs);
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

/// The bilinear width pass of `N` rows that share their taps: each tap's indices and weights are
/// loaded once for all `N` rows (they are the channels of one image), which is most of the cost.
///
/// # Safety
/// Every index in `cols` must be less than the length of every `src` row, and `cols` must hold
/// at least `dst[k].len()` taps.
#[inline(always)]
unsafe fn widen_bilinear<const N: usize>(src: [&[f32]; N], dst: [&mut [f32]; N], cols: &Taps) {
    let out_w = dst.iter().map(|r| r.len()).min().unwrap_or(0);
    let (index, weight) = (&cols.index[..2 * out_w], &cols.weight[..2 * out_w]);
    for d in 0..out_w {
        let (i0, i1, w0, w1) = (index[2 * d], index[2 * d + 1], weight[2 * d], weight[2 * d + 1]);
        for k in 0..N {
            // SAFETY: i0, i1 < src[k].len() (the caller's contract) and d < out_w ≤ dst[k].len().
            unsafe {
                let (v0, v1) = (*src[k].get_unchecked(i0), *src[k].get_unchecked(i1));
                *dst[k].get_unchecked_mut(d) = v0.mul_add(w0, v1 * w1);
            }
        }
    }
}

/// `N` sources from `iter` as an array (the caller takes exactly as many as remain).
#[inline(always)]
fn take_array<T, const N: usize>(iter: &mut impl Iterator<Item = T>) -> [T; N] {
    std::array::from_fn(|_| iter.next().expect("as many items as asked for"))
}

/// The width pass of one region row of every source, in groups of up to four with shared taps.
/// (Inlined into the caller so that `mul_add` compiles to the FMA instruction where enabled.)
///
/// # Safety
/// Every index in `cols` must be less than the length of every `src` row.
#[inline(always)]
unsafe fn widen_row<'a, 'b>(
    mut src: impl ExactSizeIterator<Item = &'a [f32]>,
    mut dst: impl Iterator<Item = &'b mut [f32]>,
    cols: &Taps,
) {
    if cols.n != 2 {
        for (row, out) in src.zip(dst) {
            let taps = out.iter_mut().zip(cols.index.chunks_exact(cols.n).zip(cols.weight.chunks_exact(cols.n)));
            for (o, (i, wt)) in taps {
                *o = taps_sum(|k| row[k], i, wt);
            }
        }
        return;
    }
    // SAFETY: the caller checked the taps against the source rows.
    loop {
        match src.len() {
            0 => break,
            1 => unsafe { widen_bilinear::<1>(take_array(&mut src), take_array(&mut dst), cols) },
            2 => unsafe { widen_bilinear::<2>(take_array(&mut src), take_array(&mut dst), cols) },
            3 => unsafe { widen_bilinear::<3>(take_array(&mut src), take_array(&mut dst), cols) },
            _ => unsafe { widen_bilinear::<4>(take_array(&mut src), take_array(&mut dst), cols) },
        }
    }
}

/// Grows `buffer` to at least `len` values, never clearing it (scratch rows are overwritten
/// before they are read).
pub(crate) fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// Marks in `used` which of the `h` region rows the height taps read (a strong downscale skips
/// some, and their width pass can be skipped too).
pub(crate) fn mark_rows_read(used: &mut Vec<bool>, rows: &Taps, h: usize) {
    used.clear();
    used.resize(h, false);
    rows.index.iter().for_each(|&i| used[i] = true);
}

/// Output row `y` of the height pass into `out_row`, from the width-resized rows `resized(i)`:
/// `o = r₁w₁; o = fma(r₀, w₀, o); o = fma(rₖ, wₖ, o)` (torch's order, as [`taps_sum`]).
#[inline(always)]
pub(crate) fn height_taps<'r>(out_row: &mut [f32], rows: &Taps, y: usize, resized: impl Fn(usize) -> &'r [f32]) {
    let idx = &rows.index[y * rows.n..(y + 1) * rows.n];
    let wt = &rows.weight[y * rows.n..(y + 1) * rows.n];
    out_row.iter_mut().zip(resized(idx[1])).for_each(|(o, v)| *o = v * wt[1]);
    for k in [0].into_iter().chain(2..rows.n) {
        out_row.iter_mut().zip(resized(idx[k])).for_each(|(o, v)| *o = v.mul_add(wt[k], *o));
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn resize_region_generic<'a>(
    sources: &[PlaneRead<'a>],
    stride: usize,
    (top, left, h, w): (usize, usize, usize, usize),
    (out_h, out_w): (usize, usize),
    rows: &Taps,
    cols: &Taps,
    Scratch { rows: scratch, lines, used }: &mut Scratch,
    outs: &mut [&mut [f32]],
) {
    // Along the width for every region row the height taps read (a strong downscale skips
    // some), then along the height (torch's nesting).
    mark_rows_read(used, rows, h);
    assert!(cols.index.iter().all(|&i| i < w), "resize taps outside the region");
    // Grown, never cleared: the rows the height taps skip are neither written nor read.
    let plane_rows = h * out_w;
    grow(scratch, sources.len() * plane_rows);
    grow(lines, sources.len() * w);
    for y in (0..h).filter(|&y| used[y]) {
        let start = (top + y) * stride + left;
        let row = |plane: &'a [f32]| &plane[start..start + w];
        for (s, line) in sources.iter().zip(lines.chunks_exact_mut(w)) {
            // A short rescaled row instead of a copy of the whole region: same values, in cache.
            if let Some(f) = s.factor {
                line.iter_mut().zip(row(s.plane)).for_each(|(l, &v)| *l = v * f);
            }
        }
        let src = sources
            .iter()
            .zip(lines.chunks_exact(w))
            .map(|(s, line)| if s.factor.is_some() { line } else { row(s.plane) });
        let dst = scratch.chunks_exact_mut(plane_rows).map(|p| &mut p[y * out_w..(y + 1) * out_w]);
        // SAFETY: every tap index is < w, the length of every source row (checked above).
        unsafe { widen_row(src, dst, cols) };
    }
    for (resized, out) in scratch.chunks_exact(plane_rows).zip(outs.iter_mut()) {
        for (y, out_row) in out.chunks_exact_mut(out_w).take(out_h).enumerate() {
            height_taps(out_row, rows, y, |i| &resized[i * out_w..(i + 1) * out_w]);
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
    let mut data = vec![0.0; image.channels * out_h * out_w];
    let sources: Vec<PlaneRead> = image.channel_planes().map(|plane| PlaneRead { plane, factor: None }).collect();
    let mut outs: Vec<&mut [f32]> = data.chunks_exact_mut((out_h * out_w).max(1)).collect();
    let mut scratch = Scratch::default();
    resize_region(&sources, image.width, (top, left, h, w), (out_h, out_w), &rows, &cols, &mut scratch, &mut outs);
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

//! The multi-crop's resize on a channel-interleaved copy of the image.
//!
//! Stored plane by plane, each channel of a crop needs its own scalar multiply-add per width tap.
//! Stored pixel by pixel (`data[(y·w + x)·C + c]`), the C values a tap reads are adjacent, so
//! one vector operation serves every channel. The values and the order of every operation are
//! those of [`resize_region`](super::resize::resize_region), so the crops are the same bits.

use std::mem::MaybeUninit;

use super::resize::{Taps, grow, height_taps, mark_rows_read};

/// The channel count with an interleaved path: four (HPA), where a pixel is one 128-bit vector.
/// Other counts resize plane by plane: measured with 5 channels, the scalar interleaved code was
/// 1.4× slower than that (48.7 vs 34.7 ms for the 16-image bench).
const CHANNELS: usize = 4;

/// An image divided by its range, stored pixel by pixel.
pub(crate) struct Interleaved {
    data: Vec<f32>,
    channels: usize,
    width: usize,
}

/// Reusable buffers of [`Interleaved::resize_region`].
#[derive(Default)]
pub(crate) struct InterleavedScratch {
    rows: Vec<f32>,
    line: Vec<f32>,
    out_row: Vec<f32>,
    used: Vec<bool>,
}

/// One crop: the region (`top`, `left`, `h`, `w`), its taps, the output side, the channel whose
/// values are multiplied as they are read (protein contrast), and the channel left at zero.
pub(crate) struct CropPlan<'a> {
    pub region: (usize, usize, usize, usize),
    pub out_size: (usize, usize),
    pub rows: &'a Taps,
    pub cols: &'a Taps,
    pub factor: Option<(usize, f32)>,
    pub removed: Option<usize>,
}

impl Interleaved {
    /// The image in `planes` (`channels` planes of `plane_len` values, row length `width`)
    /// divided by `divisor` (as [`DivideByRange`](super::DivideByRange)) and interleaved, with
    /// each channel's maximum; `None` for channel counts without an interleaved path.
    pub fn divided(
        planes: &[f32],
        channels: usize,
        plane_len: usize,
        width: usize,
        divisor: f32,
    ) -> Option<(Self, Vec<f32>)> {
        if channels != CHANNELS || planes.len() != channels * plane_len {
            return None;
        }
        // Every value is written below, so the buffer is not zeroed first (that cost as much as
        // the interleaving).
        let mut data = Vec::with_capacity(planes.len());
        let out = &mut data.spare_capacity_mut()[..planes.len()];
        #[cfg(target_arch = "x86_64")]
        let maxima = if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above); same quotients, wider vectors.
            unsafe { interleave_avx2(planes, plane_len, divisor, out) }
        } else {
            interleave_any(planes, plane_len, divisor, out)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let maxima = interleave_any(planes, plane_len, divisor, out);
        // SAFETY: `interleave` wrote all `planes.len()` values (every pixel of every channel).
        unsafe { data.set_len(planes.len()) };
        Some((Self { data, channels, width }, maxima))
    }

    /// One crop, channel-major (`channels · out_h · out_w` values). The caller guarantees the
    /// region is inside the image and that no size is zero.
    pub fn resize_region(&self, plan: &CropPlan, scratch: &mut InterleavedScratch) -> Vec<f32> {
        let len = self.channels * plan.out_size.0 * plan.out_size.1;
        // Every value is written (no zeroing first).
        let mut data = Vec::with_capacity(len);
        let out = &mut data.spare_capacity_mut()[..len];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above). `mul_add` is correctly
            // rounded with or without them, so this only changes speed, not results.
            unsafe { resize_avx2(self, plan, scratch, out) };
        } else {
            resize_any(self, plan, scratch, out);
        }
        #[cfg(not(target_arch = "x86_64"))]
        resize_any(self, plan, scratch, out);
        // SAFETY: `resize` wrote every value of every channel plane (see its last loops).
        unsafe { data.set_len(len) };
        data
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn interleave_avx2(planes: &[f32], plane_len: usize, divisor: f32, out: &mut [MaybeUninit<f32>]) -> Vec<f32> {
    interleave::<CHANNELS, true>(planes, plane_len, divisor, out)
}

fn interleave_any(planes: &[f32], plane_len: usize, divisor: f32, out: &mut [MaybeUninit<f32>]) -> Vec<f32> {
    interleave::<CHANNELS, false>(planes, plane_len, divisor, out)
}

#[inline(always)]
fn interleave<const C: usize, const SIMD: bool>(
    planes: &[f32],
    plane_len: usize,
    divisor: f32,
    out: &mut [MaybeUninit<f32>],
) -> Vec<f32> {
    assert_eq!(out.len(), C * plane_len, "one output value per input value");
    let planes: [&[f32]; C] = std::array::from_fn(|c| &planes[c * plane_len..(c + 1) * plane_len]);
    let mut top = [f32::NEG_INFINITY; C];
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if SIMD && C == 4 {
        done = plane_len / 8 * 8;
        // SAFETY: `SIMD` callers have AVX2; the four planes hold `plane_len` ≥ `done` values and
        // `out` holds 4 · `plane_len`.
        let maxima = unsafe { simd::interleave4(planes[..4].try_into().expect("four planes"), done, divisor, out) };
        top[..4].copy_from_slice(&maxima);
    }
    for (i, pixel) in out.chunks_exact_mut(C).enumerate().take(plane_len).skip(done) {
        for c in 0..C {
            let v = planes[c][i] / divisor;
            pixel[c].write(v);
            top[c] = if v > top[c] { v } else { top[c] };
        }
    }
    top.to_vec()
}

/// AVX2/FMA code for four interleaved channels (one pixel is one 128-bit vector).
#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    /// Divides the first `n` (a multiple of 8) values of each plane by `divisor` into `out`
    /// pixel by pixel; returns each plane's maximum over them.
    ///
    /// # Safety
    /// AVX2 must be available; every plane must hold at least `n` values and `out` 4 · `n`.
    #[inline(always)]
    pub unsafe fn interleave4(planes: [&[f32]; 4], n: usize, divisor: f32, out: &mut [MaybeUninit<f32>]) -> [f32; 4] {
        unsafe {
            let d = _mm256_set1_ps(divisor);
            let mut top = [_mm256_set1_ps(f32::NEG_INFINITY); 4];
            let o = out.as_mut_ptr().cast::<f32>();
            for i in (0..n).step_by(8) {
                let v: [__m256; 4] =
                    std::array::from_fn(|c| _mm256_div_ps(_mm256_loadu_ps(planes[c].as_ptr().add(i)), d));
                for c in 0..4 {
                    // Second operand on ties: the first maximum seen stays, as in the scalar loop.
                    top[c] = _mm256_max_ps(v[c], top[c]);
                }
                // 4 × 8 transpose: eight pixels of four channels.
                let t0 = _mm256_unpacklo_ps(v[0], v[1]);
                let t1 = _mm256_unpackhi_ps(v[0], v[1]);
                let t2 = _mm256_unpacklo_ps(v[2], v[3]);
                let t3 = _mm256_unpackhi_ps(v[2], v[3]);
                let p0 = _mm256_shuffle_ps::<0x44>(t0, t2);
                let p1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
                let p2 = _mm256_shuffle_ps::<0x44>(t1, t3);
                let p3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
                let o = o.add(4 * i);
                _mm256_storeu_ps(o, _mm256_permute2f128_ps::<0x20>(p0, p1));
                _mm256_storeu_ps(o.add(8), _mm256_permute2f128_ps::<0x20>(p2, p3));
                _mm256_storeu_ps(o.add(16), _mm256_permute2f128_ps::<0x31>(p0, p1));
                _mm256_storeu_ps(o.add(24), _mm256_permute2f128_ps::<0x31>(p2, p3));
            }
            top.map(|t| {
                let mut lanes = [0.0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), t);
                lanes.into_iter().fold(f32::NEG_INFINITY, |m, v| if v > m { v } else { m })
            })
        }
    }

    /// `pixel = v0 · w0 + v1 · w1` for the four channels at `row[i0..]` and `row[i1..]`, each
    /// lane as the scalar `v0.mul_add(w0, v1 * w1)`.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; `i0 + 4` and `i1 + 4` must not exceed `row.len()`, nor
    /// `d + 4` `pixel.len()`.
    #[inline(always)]
    pub unsafe fn tap4(row: &[f32], i0: usize, i1: usize, w0: f32, w1: f32, out: &mut [f32], d: usize) {
        unsafe {
            let v0 = _mm_loadu_ps(row.as_ptr().add(i0));
            let v1 = _mm_loadu_ps(row.as_ptr().add(i1));
            let p = _mm_mul_ps(v1, _mm_set1_ps(w1));
            _mm_storeu_ps(out.as_mut_ptr().add(d), _mm_fmadd_ps(v0, _mm_set1_ps(w0), p));
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn resize_avx2(image: &Interleaved, plan: &CropPlan, scratch: &mut InterleavedScratch, out: &mut [MaybeUninit<f32>]) {
    resize::<CHANNELS, true>(image, plan, scratch, out)
}

fn resize_any(image: &Interleaved, plan: &CropPlan, scratch: &mut InterleavedScratch, out: &mut [MaybeUninit<f32>]) {
    resize::<CHANNELS, false>(image, plan, scratch, out)
}

#[inline(always)]
fn resize<const C: usize, const SIMD: bool>(
    image: &Interleaved,
    plan: &CropPlan,
    scratch: &mut InterleavedScratch,
    out: &mut [MaybeUninit<f32>],
) {
    let CropPlan { region: (top, left, h, w), out_size: (out_h, out_w), rows, cols, factor, removed } = *plan;
    let InterleavedScratch { rows: resized, line, out_row, used } = scratch;
    // Along the width for every region row the height taps read, then along the height (torch's
    // nesting, as the planar path).
    mark_rows_read(used, rows, h);
    assert!(cols.n == 2 && cols.index.iter().all(|&i| i < w), "bilinear taps inside the region");
    let (row_len, out_len) = (w * C, out_w * C);
    grow(resized, h * out_len);
    grow(line, row_len);
    grow(out_row, out_len);
    for y in (0..h).filter(|&y| used[y]) {
        let start = ((top + y) * image.width + left) * C;
        let mut row = &image.data[start..start + row_len];
        if let Some((channel, f)) = factor {
            // Rescaled as it is read: the values `v · f` of a rescaled image, for this row only.
            line[..row_len].copy_from_slice(row);
            line[..row_len].chunks_exact_mut(C).for_each(|pixel| pixel[channel] *= f);
            row = &line[..row_len];
        }
        let dst = &mut resized[y * out_len..(y + 1) * out_len];
        for (d, (idx, wt)) in cols.index.chunks_exact(2).zip(cols.weight.chunks_exact(2)).take(out_w).enumerate() {
            let (i0, i1) = (idx[0] * C, idx[1] * C);
            #[cfg(target_arch = "x86_64")]
            if SIMD && C == 4 {
                // SAFETY: `SIMD` callers have AVX2 and FMA; i0, i1 < w · 4 − 3 (taps < w, asserted
                // above) and d · 4 + 4 ≤ out_len = dst.len().
                unsafe { simd::tap4(row, i0, i1, wt[0], wt[1], dst, d * 4) };
                continue;
            }
            for (c, o) in dst[d * C..d * C + C].iter_mut().enumerate() {
                // SAFETY: i0, i1 < w (asserted above), so i0 + c, i1 + c < w · C = row.len().
                let (v0, v1) = unsafe { (*row.get_unchecked(i0 + c), *row.get_unchecked(i1 + c)) };
                *o = v0.mul_add(wt[0], v1 * wt[1]);
            }
        }
    }
    let plane_len = out_h * out_w;
    for y in 0..out_h {
        let acc = &mut out_row[..out_len];
        height_taps(acc, rows, y, |i| &resized[i * out_len..(i + 1) * out_len]);
        for (x, pixel) in acc.chunks_exact(C).enumerate() {
            for c in 0..C {
                out[c * plane_len + y * out_w + x].write(pixel[c]);
            }
        }
    }
    if let Some(r) = removed {
        // A zeroed channel resizes to zeros.
        out[r * plane_len..(r + 1) * plane_len].iter_mut().for_each(|v| {
            v.write(0.0);
        });
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::super::Interpolation;
    use super::*;

    /// The portable code and the AVX2/FMA code give the same bits (the crop tests compare the
    /// path the CPU takes with the step-by-step pipeline).
    #[test]
    fn portable_and_vector_paths_agree() {
        let (h, w) = (37, 29);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let planes: Vec<f32> = (0..4 * h * w).map(|_| rng.random_range(0..65536u32) as f32).collect();
        let (image, maxima) = Interleaved::divided(&planes, 4, h * w, w, 65535.0).expect("four channels");
        let mut portable = vec![MaybeUninit::uninit(); planes.len()];
        let portable_maxima = interleave_any(&planes, h * w, 65535.0, &mut portable);
        let portable: Vec<f32> = portable.into_iter().map(|v| unsafe { v.assume_init() }).collect();
        assert_eq!((image.data.clone(), maxima), (portable, portable_maxima));

        let (rows, cols) = (Taps::new(20, 11, Interpolation::Bilinear), Taps::new(25, 11, Interpolation::Bilinear));
        let cols = cols.reversed();
        for (factor, removed) in [(None, None), (Some((3, 1.7)), Some(1))] {
            let plan =
                CropPlan { region: (5, 3, 20, 25), out_size: (11, 11), rows: &rows, cols: &cols, factor, removed };
            let vector = image.resize_region(&plan, &mut InterleavedScratch::default());
            let mut out = vec![MaybeUninit::uninit(); vector.len()];
            resize_any(&image, &plan, &mut InterleavedScratch::default(), &mut out);
            let out: Vec<f32> = out.into_iter().map(|v| unsafe { v.assume_init() }).collect();
            assert_eq!(vector, out);
            if let Some(r) = removed {
                assert!(out[r * 121..(r + 1) * 121].iter().all(|&v| v == 0.0));
            }
        }
    }
}

//! Sample conversion to `f32` and pixel-interleaved → channel-major reordering.

/// Lossless (or nearest-`f32`) conversion of a stored sample.
pub(crate) trait ToF32: Copy {
    fn to_f32(self) -> f32;
}

macro_rules! to_f32_as {
    ($($t:ty),*) => {$(
        impl ToF32 for $t {
            #[inline]
            fn to_f32(self) -> f32 {
                self as f32
            }
        }
    )*};
}
to_f32_as!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

/// Converts samples to `f32`.
pub(crate) fn to_f32_vec<T: ToF32>(values: &[T]) -> Vec<f32> {
    values.iter().map(|v| v.to_f32()).collect()
}

/// IEEE 754 half-precision bits to `f32` (exact).
pub(crate) fn f16_bits_to_f32(bits: u16) -> f32 {
    let sign = (u32::from(bits) & 0x8000) << 16;
    let exp = (bits >> 10) & 0x1f;
    let mant = u32::from(bits & 0x3ff);
    let magnitude = match exp {
        // Zero and subnormals: mant · 2^-24.
        0 => return signed(sign, mant as f32 * 2f32.powi(-24)),
        0x1f => 0x7f80_0000 | (mant << 13),
        e => ((u32::from(e) + 112) << 23) | (mant << 13),
    };
    f32::from_bits(sign | magnitude)
}

fn signed(sign: u32, v: f32) -> f32 {
    if sign != 0 { -v } else { v }
}

/// Pixel-interleaved (H, W, S) samples to channel-major (S, H, W).
pub(crate) fn deinterleave(values: &[f32], samples: usize) -> Vec<f32> {
    if samples <= 1 {
        return values.to_vec();
    }
    let plane = values.len() / samples;
    let mut out = vec![0.0; values.len()];
    for (s, dst) in out.chunks_exact_mut(plane).enumerate() {
        for (d, src) in dst.iter_mut().zip(values[s..].iter().step_by(samples)) {
            *d = *src;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_conversion() {
        assert_eq!(f16_bits_to_f32(0x3c00), 1.0);
        assert_eq!(f16_bits_to_f32(0xc000), -2.0);
        assert_eq!(f16_bits_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_bits_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_bits_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_bits_to_f32(0x0000), 0.0);
        assert!(f16_bits_to_f32(0x8000).is_sign_negative());
        assert_eq!(f16_bits_to_f32(0x7c00), f32::INFINITY);
        assert!(f16_bits_to_f32(0x7e00).is_nan());
        assert_eq!(f16_bits_to_f32(0x3555), 0.333_251_95);
    }

    #[test]
    fn deinterleave_rgb() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(deinterleave(&v, 3), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(deinterleave(&v, 1), v.to_vec());
    }
}

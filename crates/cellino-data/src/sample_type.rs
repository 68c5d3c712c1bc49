//! The element type an image was stored with.

use std::fmt;

/// Storage type of the samples in the file.
///
/// [`MultiChannelImage::data`](crate::MultiChannelImage) always holds `f32` with the raw values
/// (not rescaled); this records what they were, so that callers can normalise by
/// [`nominal_range`](Self::nominal_range) (e.g. divide `U16` data by 65535) or by per-image
/// statistics, as Cell-DINO does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SampleType {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F16,
    F32,
    F64,
}

impl SampleType {
    /// `(min, max)` of the integer type (`U8` → `(0, 255)`, `U16` → `(0, 65535)`, `I16` →
    /// `(-32768, 32767)`, …); `None` for floating-point types, which have no nominal range.
    pub fn nominal_range(self) -> Option<(f64, f64)> {
        Some(match self {
            Self::U8 => (0.0, u8::MAX as f64),
            Self::U16 => (0.0, u16::MAX as f64),
            Self::U32 => (0.0, u32::MAX as f64),
            Self::U64 => (0.0, u64::MAX as f64),
            Self::I8 => (i8::MIN as f64, i8::MAX as f64),
            Self::I16 => (i16::MIN as f64, i16::MAX as f64),
            Self::I32 => (i32::MIN as f64, i32::MAX as f64),
            Self::I64 => (i64::MIN as f64, i64::MAX as f64),
            Self::F16 | Self::F32 | Self::F64 => return None,
        })
    }

    /// The upper end of [`nominal_range`](Self::nominal_range): 255 for `U8`, 65535 for `U16`, …
    pub fn nominal_max(self) -> Option<f64> {
        self.nominal_range().map(|(_, max)| max)
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F16 | Self::F32 | Self::F64)
    }

    /// Bits per sample.
    pub fn bits(self) -> u32 {
        match self {
            Self::U8 | Self::I8 => 8,
            Self::U16 | Self::I16 | Self::F16 => 16,
            Self::U32 | Self::I32 | Self::F32 => 32,
            Self::U64 | Self::I64 | Self::F64 => 64,
        }
    }

    /// Whether every value of this type is represented exactly by `f32`. `U32`, `I32`, `U64`,
    /// `I64` (beyond ±2^24) and `F64` are rounded to the nearest `f32`.
    pub fn is_exact_in_f32(self) -> bool {
        matches!(self, Self::U8 | Self::U16 | Self::I8 | Self::I16 | Self::F16 | Self::F32)
    }

    /// Lower-case NumPy-like name: `"u8"`, `"u16"`, `"f32"`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "u8",
            Self::U16 => "u16",
            Self::U32 => "u32",
            Self::U64 => "u64",
            Self::I8 => "i8",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::I64 => "i64",
            Self::F16 => "f16",
            Self::F32 => "f32",
            Self::F64 => "f64",
        }
    }
}

impl fmt::Display for SampleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nominal_ranges() {
        assert_eq!(SampleType::U8.nominal_max(), Some(255.0));
        assert_eq!(SampleType::U16.nominal_max(), Some(65535.0));
        assert_eq!(SampleType::I16.nominal_range(), Some((-32768.0, 32767.0)));
        assert_eq!(SampleType::F32.nominal_range(), None);
        assert!(SampleType::F64.is_float());
        assert!(!SampleType::U32.is_exact_in_f32());
        assert_eq!(SampleType::U16.to_string(), "u16");
    }
}

//! NumPy `.npy` reader: (C, H, W) or (H, W) arrays of integers or floats.

use std::path::Path;

use crate::convert::f16_bits_to_f32;
use crate::{DataError, MultiChannelImage, ReadOptions, SampleType};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Headers are small (NumPy pads them to 64 bytes); anything this long is corrupt.
const MAX_HEADER_LEN: usize = 1 << 20;

/// Parsed `.npy` header.
#[derive(Debug)]
struct Header {
    sample_type: SampleType,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
    data_offset: usize,
}

pub(crate) fn read_npy(bytes: &[u8], path: &Path, opts: &ReadOptions) -> Result<MultiChannelImage, DataError> {
    opts.check_single_plane(path)?;
    let header = parse_header(bytes, path)?;
    let [c, h, w] = match header.shape[..] {
        [h, w] => [1, h, w],
        [c, h, w] => [c, h, w],
        _ => {
            return Err(DataError::unsupported(
                path,
                "array rank",
                "a (C, H, W) or (H, W) array",
                format!("shape {:?}", header.shape),
            ));
        }
    };
    if c == 0 || h == 0 || w == 0 {
        return Err(DataError::Empty { path: path.to_path_buf(), found: format!("shape {:?}", header.shape) });
    }
    let count = (c as u64).checked_mul(h as u64).and_then(|v| v.checked_mul(w as u64)).unwrap_or(u64::MAX);
    opts.check_max_values(path, count)?;
    let count = count as usize; // <= max_values, which fits memory by construction
    let size = (header.sample_type.bits() / 8) as usize;
    let payload = &bytes[header.data_offset..];
    let needed = count * size;
    if payload.len() < needed {
        return Err(DataError::shape(
            path,
            "npy payload",
            format!("{needed} bytes for shape {:?}", header.shape),
            format!("{} bytes (truncated file)", payload.len()),
        ));
    }
    let mut values = decode_values(&payload[..needed], header.sample_type, header.big_endian);
    if header.fortran_order {
        values = fortran_to_c(&values, &header.shape);
    }
    MultiChannelImage::from_parts(path, values, [c, h, w], header.sample_type)
}

fn decode_values(raw: &[u8], st: SampleType, big_endian: bool) -> Vec<f32> {
    macro_rules! conv {
        ($t:ty, $n:expr, $f:expr) => {
            raw.chunks_exact($n)
                .map(|b| {
                    let b: [u8; $n] = b.try_into().expect("chunks_exact yields $n bytes");
                    let v = if big_endian { <$t>::from_be_bytes(b) } else { <$t>::from_le_bytes(b) };
                    #[allow(clippy::redundant_closure_call)]
                    $f(v)
                })
                .collect()
        };
    }
    match st {
        SampleType::U8 => raw.iter().map(|&v| f32::from(v)).collect(),
        SampleType::I8 => raw.iter().map(|&v| f32::from(v as i8)).collect(),
        SampleType::U16 => conv!(u16, 2, f32::from),
        SampleType::I16 => conv!(i16, 2, f32::from),
        SampleType::U32 => conv!(u32, 4, |v| v as f32),
        SampleType::I32 => conv!(i32, 4, |v| v as f32),
        SampleType::U64 => conv!(u64, 8, |v| v as f32),
        SampleType::I64 => conv!(i64, 8, |v| v as f32),
        SampleType::F16 => conv!(u16, 2, f16_bits_to_f32),
        SampleType::F32 => conv!(f32, 4, |v| v),
        SampleType::F64 => conv!(f64, 8, |v| v as f32),
    }
}

/// Column-major values of `shape` to row-major.
fn fortran_to_c(values: &[f32], shape: &[usize]) -> Vec<f32> {
    // Row-major strides of the output and column-major strides of the input.
    let n = shape.len();
    let mut f_strides = vec![1usize; n];
    for d in 1..n {
        f_strides[d] = f_strides[d - 1] * shape[d - 1];
    }
    let mut out = Vec::with_capacity(values.len());
    let mut idx = vec![0usize; n];
    for _ in 0..values.len() {
        let src: usize = idx.iter().zip(&f_strides).map(|(i, s)| i * s).sum();
        out.push(values[src]);
        for d in (0..n).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

fn bad_header(path: &Path, expected: &str, found: impl Into<String>) -> DataError {
    DataError::metadata(path, "NPY header", expected, found)
}

fn parse_header(bytes: &[u8], path: &Path) -> Result<Header, DataError> {
    if !bytes.starts_with(MAGIC) || bytes.len() < 10 {
        return Err(bad_header(
            path,
            "the \\x93NUMPY magic, version and header length",
            format!("{} bytes", bytes.len()),
        ));
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            let Some(b) = bytes.get(8..12) else {
                return Err(bad_header(path, "a 4-byte header length", "a truncated file"));
            };
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => {
            return Err(bad_header(path, "format version 1, 2 or 3", format!("version {v}")));
        }
    };
    if len > MAX_HEADER_LEN {
        return Err(bad_header(path, "a header under 1 MiB", format!("{len} bytes")));
    }
    let Some(text) = bytes.get(start..start + len) else {
        return Err(bad_header(
            path,
            &format!("a {len}-byte header"),
            format!("{} bytes after the preamble (truncated file)", bytes.len() - start),
        ));
    };
    let text = std::str::from_utf8(text).map_err(|_| bad_header(path, "an ASCII/UTF-8 header", "invalid UTF-8"))?;

    let descr = dict_value(text, "descr").ok_or_else(|| bad_header(path, "a 'descr' key", text.trim()))?;
    let descr = descr
        .strip_prefix('\'')
        .and_then(|d| d.split('\'').next())
        .or_else(|| descr.strip_prefix('"').and_then(|d| d.split('"').next()))
        .ok_or_else(|| DataError::unsupported(path, "npy dtype", "a simple dtype string such as '<f4'", descr))?;
    let (sample_type, big_endian) = parse_descr(descr).ok_or_else(|| {
        DataError::unsupported(
            path,
            "npy dtype",
            "one of |u1 |i1 |b1 u2 i2 u4 i4 u8 i8 f2 f4 f8 (< or > byte order)",
            format!("'{descr}'"),
        )
    })?;

    let fortran =
        dict_value(text, "fortran_order").ok_or_else(|| bad_header(path, "a 'fortran_order' key", text.trim()))?;
    let fortran_order = if fortran.starts_with("True") {
        true
    } else if fortran.starts_with("False") {
        false
    } else {
        return Err(bad_header(path, "fortran_order True or False", fortran));
    };

    let shape_text = dict_value(text, "shape").ok_or_else(|| bad_header(path, "a 'shape' key", text.trim()))?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad_header(path, "a shape tuple", shape_text))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad_header(path, "a tuple of non-negative integers", shape_text))?;
    Ok(Header { sample_type, big_endian, fortran_order, shape, data_offset: start + len })
}

/// The text after `'key':` in a Python dict literal.
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    for quote in ['\'', '"'] {
        let pat = format!("{quote}{key}{quote}");
        if let Some(pos) = text.find(&pat) {
            let rest = text[pos + pat.len()..].trim_start().strip_prefix(':')?;
            return Some(rest.trim_start());
        }
    }
    None
}

fn parse_descr(descr: &str) -> Option<(SampleType, bool)> {
    let (order, code) = match descr.as_bytes().first()? {
        b'<' | b'>' | b'|' | b'=' => descr.split_at(1),
        _ => ("=", descr),
    };
    let big_endian = match order {
        ">" => true,
        "=" => cfg!(target_endian = "big"),
        _ => false,
    };
    let st = match code {
        "u1" | "b1" => SampleType::U8,
        "i1" => SampleType::I8,
        "u2" => SampleType::U16,
        "i2" => SampleType::I16,
        "u4" => SampleType::U32,
        "i4" => SampleType::I32,
        "u8" => SampleType::U64,
        "i8" => SampleType::I64,
        "f2" => SampleType::F16,
        "f4" => SampleType::F32,
        "f8" => SampleType::F64,
        _ => return None,
    };
    Some((st, big_endian))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, fortran: bool, shape: &str, payload: &[u8]) -> Vec<u8> {
        let f = if fortran { "True" } else { "False" };
        let dict = format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}");
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        let len = dict.len() + 1;
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(dict.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(payload);
        out
    }

    fn read(bytes: &[u8]) -> Result<MultiChannelImage, DataError> {
        read_npy(bytes, Path::new("x.npy"), &ReadOptions::default())
    }

    #[test]
    fn reads_shapes_and_types() {
        let im = read(&npy("|u1", false, "(2, 3)", &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(im.shape(), (1, 2, 3));
        assert_eq!(im.sample_type, SampleType::U8);
        let payload: Vec<u8> = [1i16, -2, 3, -4].iter().flat_map(|v| v.to_be_bytes()).collect();
        let im = read(&npy(">i2", false, "(1, 2, 2)", &payload)).unwrap();
        assert_eq!(im.data, vec![1.0, -2.0, 3.0, -4.0]);
        let payload: Vec<u8> = [0x3c00u16, 0xc000].iter().flat_map(|v| v.to_le_bytes()).collect();
        let im = read(&npy("<f2", false, "(1, 2)", &payload)).unwrap();
        assert_eq!((im.data.clone(), im.sample_type), (vec![1.0, -2.0], SampleType::F16));
        // Fortran order (2, 3): memory holds columns.
        let im = read(&npy("|u1", true, "(2, 3)", &[1, 4, 2, 5, 3, 6])).unwrap();
        assert_eq!(im.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn rejects_bad_input() {
        let ok = npy("<u2", false, "(2, 2)", &[0; 8]);
        for cut in [0, 5, 9, 20, ok.len() - 1] {
            assert!(read(&ok[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(read(&npy("<u2", false, "(0, 2)", &[])), Err(DataError::Empty { .. })));
        assert!(matches!(read(&npy("<c8", false, "(2, 2)", &[0; 32])), Err(DataError::Unsupported { .. })));
        assert!(matches!(read(&npy("<u2", false, "(1, 1, 2, 2)", &[0; 8])), Err(DataError::Unsupported { .. })));
        assert!(matches!(
            read(&npy("<u2", false, "(65536, 65536)", &[0; 8])),
            Err(DataError::TooLarge { found: 4294967296, .. })
        ));
        assert!(matches!(
            read(&npy("<u2", false, "(99999999999999999999, 2)", &[0; 8])),
            Err(DataError::Metadata { .. })
        ));
        assert!(matches!(
            read(&npy("<u2", false, "(18446744073709551615, 18446744073709551615)", &[0; 8])),
            Err(DataError::TooLarge { .. })
        ));
    }
}

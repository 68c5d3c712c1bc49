//! Two-dimensional little-endian `float32` NumPy files (`np.save` / `np.load` compatible).

use std::path::Path;

use crate::error::{EvalError, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The bytes of a version-1.0 `.npy` file holding a C-order `(rows, cols)` `<f4` array.
pub fn npy_f32_bytes(data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Magic (6) + version (2) + header length (2) + header + '\n' is a multiple of 64.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.extend(std::iter::repeat_n(' ', unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Reads a 2-D `float32` `.npy` file (`<f4`, C order; `(n,)` is read as `(n, 1)`):
/// `(values, rows, cols)`.
///
/// # Errors
/// [`EvalError::Io`] when the file cannot be read; [`EvalError::Format`] for anything but a
/// little-endian f32 C-order array of one or two dimensions, or a truncated file.
pub fn read_npy_f32(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    parse_npy_f32(&bytes).map_err(|reason| EvalError::format(path, reason))
}

fn parse_npy_f32(bytes: &[u8]) -> std::result::Result<(Vec<f32>, usize, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a NumPy .npy file (bad magic)".into());
    }
    let (header_len, offset): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let body = offset.checked_add(header_len).filter(|&b| b <= bytes.len()).ok_or("truncated .npy header")?;
    let header = std::str::from_utf8(&bytes[offset..body]).map_err(|_| "the .npy header is not text")?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr").ok_or("no 'descr' in the .npy header")?;
    if !(descr.starts_with("'<f4'") || descr.starts_with("'float32'")) {
        return Err(format!("expected float32 ('<f4') values, found {}", descr.split(',').next().unwrap_or(descr)));
    }
    if !field("fortran_order").is_some_and(|f| f.starts_with("False")) {
        return Err("Fortran-order arrays are not supported; save with np.ascontiguousarray".into());
    }
    let shape = field("shape").ok_or("no 'shape' in the .npy header")?;
    let inner = shape.strip_prefix('(').and_then(|s| s.split(')').next()).ok_or("malformed 'shape'")?;
    let dims: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| format!("malformed shape entry {s:?}")))
        .collect::<std::result::Result<_, _>>()?;
    let (rows, cols) = match dims[..] {
        [n] => (n, 1),
        [r, c] => (r, c),
        _ => return Err(format!("expected a 2-D (rows, dim) array, found shape {dims:?}")),
    };
    let count = rows.checked_mul(cols).ok_or("shape overflows")?;
    let data = &bytes[body..];
    if data.len() != count.saturating_mul(4) {
        return Err(format!("shape ({rows}, {cols}) needs {} data bytes, the file has {}", count * 4, data.len()));
    }
    let values = data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    Ok((values, rows, cols))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_header_alignment() {
        let data = [1.0f32, -2.5, 3.25, f32::MIN_POSITIVE, 0.0, 7.0];
        let bytes = npy_f32_bytes(&data, 2, 3);
        let header_end = 10 + usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
        assert_eq!(header_end % 64, 0);
        assert_eq!(bytes[header_end - 1], b'\n');
        assert_eq!(parse_npy_f32(&bytes).unwrap(), (data.to_vec(), 2, 3));
        assert!(parse_npy_f32(&bytes[..bytes.len() - 1]).is_err());
        assert!(parse_npy_f32(b"GIF89a....").is_err());
        let f8 = String::from_utf8(bytes.clone()).unwrap_or_default().replace("<f4", "<f8");
        assert!(parse_npy_f32(f8.as_bytes()).is_err());
    }
}

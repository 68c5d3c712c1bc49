#![allow(dead_code)]
//! Tiny image files and dataset layouts written into temporary folders by the tests.

use std::path::Path;

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// An 8-bit grey PNG.
pub fn png_gray(path: &Path, w: u32, h: u32, seed: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_raw(w, h, bytes((w * h) as usize, seed)).unwrap().save(path).unwrap();
}

/// An 8-bit RGBA PNG.
pub fn png_rgba(path: &Path, w: u32, h: u32, seed: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbaImage::from_raw(w, h, bytes((4 * w * h) as usize, seed)).unwrap().save(path).unwrap();
}

/// An 8-bit grey TIFF.
pub fn tiff_gray(path: &Path, w: u32, h: u32, seed: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::fs::File::create(path).unwrap();
    let mut enc = tiff::encoder::TiffEncoder::new(&mut file).unwrap();
    enc.write_image::<tiff::encoder::colortype::Gray8>(w, h, &bytes((w * h) as usize, seed)).unwrap();
}

/// A float32 (C, H, W) `.npy`.
pub fn npy_f32(path: &Path, shape: (usize, usize, usize), values: &[f32]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}, {}), }}", shape.0, shape.1, shape.2);
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16 + 1).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, out).unwrap();
}

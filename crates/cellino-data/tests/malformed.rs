//! Malformed and hostile input: errors, never panics.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use cellino_data::{
    ChannelTiling, ImageError, ReadOptions, read_channel_files, read_image, read_image_bytes, read_tiled_image,
};

fn opts() -> ReadOptions {
    ReadOptions::default()
}

/// Every fixture file (all formats), with its bytes.
fn fixture_files() -> Vec<(String, Vec<u8>)> {
    let dir = common::data_dir("synthetic");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "json"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    assert!(files.len() > 30);
    files
}

/// A minimal little-endian TIFF: one uncompressed grey strip with the given header values.
fn tiny_tiff(width: u32, height: u32, bits: u16, photometric: u16, payload: &[u8]) -> Vec<u8> {
    let entries: [(u16, u16, u32); 8] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, u32::from(bits)),
        (259, 3, 1),
        (262, 3, u32::from(photometric)),
        (273, 4, 0), // StripOffsets, patched below
        (278, 4, height.max(1)),
        (279, 4, payload.len() as u32),
    ];
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    let data_offset = 8 + 2 + entries.len() as u32 * 12 + 4;
    for (tag, typ, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&typ.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        let value = if tag == 273 { data_offset } else { value };
        if typ == 3 {
            out.extend_from_slice(&(value as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// PNG signature + IHDR (8-bit grey) + an empty IDAT + IEND, with valid CRCs.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

#[test]
fn crafted_tiff_sanity() {
    let im = read_image_bytes(&tiny_tiff(2, 2, 8, 1, &[1, 2, 3, 4]), "ok.tif", &opts()).unwrap();
    assert_eq!((im.shape(), im.data), ((1, 2, 2), vec![1.0, 2.0, 3.0, 4.0]));
}

#[test]
fn wrong_magic_and_missing_files() {
    for bytes in [&b""[..], b"GIF89a\x01\x00", b"II", b"\0\0\0\0\0\0\0\0", b"%PDF-1.4"] {
        let e = read_image_bytes(bytes, "x.tif", &opts()).unwrap_err();
        assert!(matches!(e, ImageError::UnknownFormat { .. }), "{e}");
        assert!(e.to_string().contains("x.tif"), "{e}");
    }
    let e = read_image("/nonexistent/cellino/image.tif", &opts()).unwrap_err();
    assert!(matches!(e, ImageError::Io { .. }));
    assert_eq!(e.path(), Path::new("/nonexistent/cellino/image.tif"));
}

#[test]
fn zero_sized_images() {
    for (w, h) in [(0, 4), (4, 0), (0, 0)] {
        let r = read_image_bytes(&tiny_tiff(w, h, 8, 1, &[]), "zero.tif", &opts());
        assert!(r.is_err(), "{w}×{h}: {r:?}");
        let r = read_image_bytes(&png_header_only(w, h), "zero.png", &opts());
        assert!(r.is_err(), "{w}×{h}: {r:?}");
    }
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0, 5), }\n";
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    let e = read_image_bytes(&npy, "zero.npy", &opts()).unwrap_err();
    assert!(matches!(e, ImageError::Empty { .. }), "{e}");
}

#[test]
fn decompression_bomb_guard_checks_headers() {
    // Headers announcing 10^10 values, with almost no data behind them.
    let e = read_image_bytes(&tiny_tiff(100_000, 100_000, 16, 1, &[0; 16]), "bomb.tif", &opts()).unwrap_err();
    assert!(matches!(e, ImageError::TooLarge { found: 10_000_000_000, .. }), "{e}");
    let e = read_image_bytes(&png_header_only(100_000, 100_000), "bomb.png", &opts()).unwrap_err();
    assert!(matches!(e, ImageError::TooLarge { found: 10_000_000_000, .. }), "{e}");
    // A configurable limit on real files: 3 × 32 × 48 = 4608 values.
    let path = common::data_dir("synthetic").join("pages_u16_lzw.tif");
    let small = ReadOptions { max_values: 4607, ..opts() };
    assert!(matches!(read_image(&path, &small), Err(ImageError::TooLarge { found: 4608, .. })));
    assert!(read_image(&path, &ReadOptions { max_values: 4608, ..opts() }).is_ok());
    let png = common::data_dir("synthetic").join("rgba_u8.png");
    assert!(matches!(read_image(&png, &small), Err(ImageError::TooLarge { .. })));
    // The per-channel reader counts the total over all files.
    let dir = common::data_dir("synthetic");
    let files = ["chan0.tif", "chan1.png", "chan2.npy"].map(|f| dir.join(f));
    let two = ReadOptions { max_values: 2 * 32 * 48, ..opts() };
    assert!(matches!(read_channel_files(&files, &["a", "b", "c"], &two), Err(ImageError::TooLarge { .. })));
}

#[test]
fn unsupported_bit_depth_is_an_error() {
    // 4-bit grey would come back bit-packed: refused with a clear message.
    let e = read_image_bytes(&tiny_tiff(4, 2, 4, 1, &[0x12, 0x34, 0x56, 0x78]), "4bit.tif", &opts()).unwrap_err();
    assert!(matches!(e, ImageError::Unsupported { .. } | ImageError::Decode { .. }), "{e}");
}

#[test]
fn truncated_files_fail_cleanly() {
    for (name, bytes) in fixture_files() {
        let n = bytes.len();
        for cut in [0, 1, 3, 4, 7, 8, 12, 16, 33, 64, n / 4, n / 2, n - 16, n - 1] {
            if cut >= n {
                continue;
            }
            let result = catch_unwind(AssertUnwindSafe(|| read_image_bytes(&bytes[..cut], &name, &opts())));
            let result = result.unwrap_or_else(|_| panic!("{name} cut at {cut}/{n} panicked"));
            // Cutting away half the file or more always loses pixels or structure.
            if cut <= n / 2 {
                assert!(result.is_err(), "{name} cut at {cut}/{n} decoded");
            }
        }
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    // Deterministic xorshift mutations: overwrite 1–4 bytes per try.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let small = ReadOptions { max_values: 1 << 22, ..opts() };
    // CELLINO_FUZZ_ITERS raises the count for a longer local run.
    let iters: usize = std::env::var("CELLINO_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let mut decoded = 0;
    for (name, bytes) in fixture_files() {
        for _ in 0..iters {
            let mut b = bytes.clone();
            // Bias towards the headers, where the structure lives.
            let span = if next() % 2 == 0 { b.len().min(512) } else { b.len() };
            for _ in 0..1 + next() % 4 {
                let at = (next() as usize) % span;
                b[at] = next() as u8;
            }
            let r = catch_unwind(AssertUnwindSafe(|| read_image_bytes(&b, &name, &small)));
            match r {
                Ok(Ok(im)) => {
                    assert_eq!(im.data.len(), im.channels * im.height * im.width);
                    decoded += 1;
                }
                Ok(Err(e)) => assert!(!e.to_string().is_empty()),
                Err(_) => panic!("{name}: panicked on corrupted input {:?}", &b[..b.len().min(64)]),
            }
        }
    }
    assert!(decoded > 0);
}

#[test]
fn option_and_argument_errors() {
    let dir = common::data_dir("synthetic");
    // Z/T on files without those axes.
    let z1 = ReadOptions { z: 1, ..opts() };
    for f in ["grey_u8.png", "chw_f32.npy", "pages_u16_lzw.tif"] {
        assert!(matches!(read_image(dir.join(f), &z1), Err(ImageError::OutOfRange { what: "Z", .. })), "{f}");
    }
    let t5 = ReadOptions { t: 5, ..opts() };
    assert!(matches!(
        read_image(dir.join("imagej_tzcyx.tif"), &t5),
        Err(ImageError::OutOfRange { what: "T", index: 5, size: 2, .. })
    ));
    // ignore_metadata: every page of the OME-TIFF becomes a channel.
    let raw = ReadOptions { ignore_metadata: true, ..opts() };
    let im = read_image(dir.join("ome_tczyx.ome.tif"), &raw).unwrap();
    assert_eq!(im.shape(), (12, 32, 48));
    assert!(im.channel_names.iter().all(Option::is_none));
    // Per-channel files: names, count, channel count.
    let files = ["chan0.tif", "chan1.png"].map(|f| dir.join(f));
    assert!(matches!(read_channel_files(&files, &["only one"], &opts()), Err(ImageError::InvalidArgument { .. })));
    let none: [&str; 0] = [];
    let im = read_channel_files(&files, &none, &opts()).unwrap();
    assert_eq!(im.channel_names, vec![None, None]);
    assert!(matches!(read_channel_files::<&Path, &str>(&[], &[], &opts()), Err(ImageError::InvalidArgument { .. })));
    let e = read_channel_files(&[dir.join("rgb_u8.png")], &["rgb"], &opts()).unwrap_err();
    assert!(matches!(e, ImageError::ShapeMismatch { .. }), "{e}");
    // Tiling that does not divide the width, or disagrees with a multi-channel file.
    let e = read_tiled_image(dir.join("chammi_tiled_4ch.png"), ChannelTiling::Count(3), &opts()).unwrap_err();
    assert!(e.to_string().contains("chammi_tiled_4ch.png"), "{e}");
    assert!(read_tiled_image(dir.join("grey_u8.png"), ChannelTiling::Square, &opts()).is_err());
    assert!(read_tiled_image(dir.join("rgb_u8.png"), ChannelTiling::Count(4), &opts()).is_err());
    let rgba = read_tiled_image(dir.join("rgba_u8.png"), ChannelTiling::Square, &opts()).unwrap();
    assert_eq!(rgba.shape(), (4, 32, 48));
}

#[test]
fn hpa_names_and_tensor() {
    let dir = common::data_dir("synthetic");
    let im = read_image(dir.join("rgba_u8.png"), &opts())
        .unwrap()
        .with_channel_names(cellino_data::HPA_CHANNEL_NAMES)
        .unwrap();
    assert_eq!(im.channel_names[1].as_deref(), Some("protein"));
    let t = im.to_tensor(&candle_core::Device::Cpu).unwrap();
    assert_eq!(t.dims(), &[4, 32, 48]);
}

#[test]
fn ome_size_c_beyond_the_pages_is_an_error() {
    // Found by hand while fuzzing (fuzz/README.md): an OME-XML SizeC of 10^14 made the plane
    // selection reserve 10^14 IFD slots (an 800 TB allocation: abort). Rewritten in place so
    // the ImageDescription keeps its length (12 pages of 48 × 32 on disk).
    let bytes = std::fs::read(common::data_dir("synthetic").join("ome_tczyx.ome.tif")).unwrap();
    let old = r#"DimensionOrder="XYZCT" Type="uint16" SizeX="48" SizeY="32" SizeZ="2" SizeC="3" SizeT="2""#;
    for size_c in ["100000000000000", "13"] {
        let new = format!(r#"SizeX="48" SizeY="32" SizeZ="1" SizeC="{size_c}" SizeT="1""#);
        let new = format!("{new:<width$}", width = old.len());
        let at = bytes.windows(old.len()).position(|w| w == old.as_bytes()).expect("the fixture's Pixels attributes");
        let mut forged = bytes.clone();
        forged[at..at + old.len()].copy_from_slice(new.as_bytes());
        let r = catch_unwind(AssertUnwindSafe(|| read_image_bytes(&forged, "bigc.ome.tif", &opts())));
        let e = r.unwrap_or_else(|_| panic!("SizeC {size_c} panicked")).unwrap_err();
        assert!(matches!(e, ImageError::Metadata { .. }), "SizeC {size_c}: {e}");
        assert!(e.to_string().contains("SizeC"), "{e}");
    }
}

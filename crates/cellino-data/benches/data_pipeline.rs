//! Decode and Cell-DINO multi-crop throughput (`cargo bench -p cellino-data --bench data_pipeline`).
//!
//! The bench writes its inputs once into `target/bench-data/` so that the Python reference
//! (`xtask/py/bench_data_pipeline.py`, run by `cargo xtask bench`) reads the very same files:
//!
//! * `decode/`: one 4-channel 16-bit 512 × 512 synthetic cell image stored as multi-page TIFF
//!   (uncompressed, LZW, Deflate), as 16-bit grey PNG (first channel), as 8-bit RGBA PNG and as
//!   `.npy`; plus a real 512 × 512 16-bit nucleus image (stardist's DSB2018 sample, BSD-3).
//! * `fields/`: 16 such 4-channel 16-bit TIFFs and their manifest.
//!
//! `cpu_decode_<format>`: one file read from disk and decoded (per iteration: one image).
//! `cpu_multicrop_t<threads>`: one epoch of the [`Loader`] over `fields/` (16 images, batch 8)
//! with the default Cell-DINO augmentation (2 × 224 + 8 × 96 crops), batches stacked into candle
//! tensors. images/s = 16 / median.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::Device;
use cellino_data::{
    CellAugmentation, Dataset, Loader, LoaderConfig, MultiChannelImage, ReadOptions, SampleType, SynthConfig,
    SynthFormat, generate_cell, read_image, write_synthetic_dataset,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tiff::encoder::{Compression, DeflateLevel, TiffEncoder, colortype};

const SIZE: usize = 512;
const FIELDS: usize = 16;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data")
}

fn synth_config() -> SynthConfig {
    SynthConfig {
        seed: 11,
        num_images: FIELDS,
        size: SIZE,
        channels: 4,
        sample_type: SampleType::U16,
        format: SynthFormat::Tiff,
        ..SynthConfig::default()
    }
}

fn write_tiff_pages(path: &Path, image: &MultiChannelImage, compression: Compression) {
    let mut file = std::fs::File::create(path).expect("bench data folder is writable");
    let mut tiff = TiffEncoder::new(&mut file).expect("tiff header").with_compression(compression);
    for plane in image.channel_planes() {
        let pixels: Vec<u16> = plane.iter().map(|&v| v as u16).collect();
        tiff.write_image::<colortype::Gray16>(image.width as u32, image.height as u32, &pixels).expect("tiff page");
    }
}

fn write_npy_u16(path: &Path, image: &MultiChannelImage) {
    let mut header = format!(
        "{{'descr': '<u2', 'fortran_order': False, 'shape': ({}, {}, {}), }}",
        image.channels, image.height, image.width
    );
    // Pad so that magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend(image.data.iter().flat_map(|&v| (v as u16).to_le_bytes()));
    std::fs::File::create(path).and_then(|mut f| f.write_all(&bytes)).expect("npy written");
}

/// Writes the decode inputs (once) and returns (bench name, path) pairs.
fn decode_inputs() -> Vec<(&'static str, PathBuf)> {
    let dir = data_dir().join("decode");
    std::fs::create_dir_all(&dir).expect("bench data folder");
    let cell = generate_cell(&synth_config(), 0).expect("synthetic cell").image;
    let plane0: Vec<u16> = cell.channel_planes().next().unwrap().iter().map(|&v| v as u16).collect();
    let rgba: Vec<u8> = (0..SIZE * SIZE)
        .flat_map(|i| (0..4).map(move |c| (i, c)))
        .map(|(i, c)| (cell.data[c * SIZE * SIZE + i] / 257.0) as u8)
        .collect();
    let files: Vec<(&str, &str)> = vec![
        ("cpu_decode_tiff_u16_4page_none", "u16_4page_none.tif"),
        ("cpu_decode_tiff_u16_4page_lzw", "u16_4page_lzw.tif"),
        ("cpu_decode_tiff_u16_4page_deflate", "u16_4page_deflate.tif"),
        ("cpu_decode_png_u16_grey", "u16_grey.png"),
        ("cpu_decode_png_u8_rgba", "u8_rgba.png"),
        ("cpu_decode_npy_u16_4ch", "u16_4ch.npy"),
        ("cpu_decode_tiff_u16_real_dsb2018", "real_dsb2018_img2d.tif"),
    ];
    for (_, name) in &files {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        match *name {
            "u16_4page_none.tif" => write_tiff_pages(&path, &cell, Compression::Uncompressed),
            "u16_4page_lzw.tif" => write_tiff_pages(&path, &cell, Compression::Lzw),
            "u16_4page_deflate.tif" => write_tiff_pages(&path, &cell, Compression::Deflate(DeflateLevel::Balanced)),
            "u16_grey.png" => {
                image::ImageBuffer::<image::Luma<u16>, _>::from_raw(SIZE as u32, SIZE as u32, plane0.clone())
                    .expect("grey buffer")
                    .save(&path)
                    .expect("png written")
            }
            "u8_rgba.png" => image::RgbaImage::from_raw(SIZE as u32, SIZE as u32, rgba.clone())
                .expect("rgba buffer")
                .save(&path)
                .expect("png written"),
            "u16_4ch.npy" => write_npy_u16(&path, &cell),
            _ => {
                let real =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real/stardist_dsb2018_nuclei/img2d.tif");
                std::fs::copy(real, &path).expect("real sample copied");
            }
        }
    }
    files.into_iter().map(|(bench, name)| (bench, dir.join(name))).collect()
}

/// Writes the multi-crop dataset (once) and returns its manifest.
fn fields_manifest() -> PathBuf {
    let dir = data_dir().join("fields");
    let manifest = dir.join("manifest.csv");
    if !manifest.exists() {
        write_synthetic_dataset(&dir, &synth_config()).expect("synthetic fields written");
    }
    manifest
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("data_decode");
    group.throughput(Throughput::Elements(1));
    let opts = ReadOptions::default();
    for (name, path) in decode_inputs() {
        group.bench_function(name, |b| b.iter(|| black_box(read_image(&path, &opts).expect("decodes"))));
    }
    group.finish();
}

fn multicrop(c: &mut Criterion) {
    let manifest = fields_manifest();
    let dataset = Dataset::from_manifest(&manifest, &synth_config().manifest_options()).expect("manifest opens");
    let mut group = c.benchmark_group("data_multicrop");
    group.sample_size(10).throughput(Throughput::Elements(FIELDS as u64));
    for threads in [1, 2] {
        let config = LoaderConfig {
            batch_size: 8,
            seed: 3,
            shuffle: false,
            drop_last: false,
            num_threads: threads,
            ..LoaderConfig::default()
        };
        let loader = Loader::new(dataset.clone(), CellAugmentation::default(), config, Device::Cpu).expect("loader");
        group.bench_function(format!("cpu_multicrop_t{threads}"), |b| {
            b.iter(|| {
                for batch in loader.epoch(0) {
                    black_box(batch.expect("batch"));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, multicrop);
criterion_main!(benches);

//! Any bytes through `read_image_bytes`: TIFF / BigTIFF / OME-TIFF / ImageJ, PNG, JPEG and npy,
//! chosen by magic-byte sniffing. Must return `Ok` or a `DataError`, never panic.

#![no_main]

use cellino_data::{ReadOptions, read_image_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A small decompression-bomb budget keeps every execution fast and within the RSS limit.
    let opts = ReadOptions { max_values: 1 << 22, ..ReadOptions::default() };
    if let Ok(image) = read_image_bytes(data, "fuzz.bin", &opts) {
        assert_eq!(image.data.len(), image.channels * image.height * image.width);
        assert!(image.data.len() as u64 <= opts.max_values);
    }
    // The Z / T selection of OME-TIFF and ImageJ hyperstacks, and the metadata escape hatch.
    if let Some(&last) = data.last() {
        let opts = ReadOptions {
            z: usize::from(last & 3),
            t: usize::from((last >> 2) & 3),
            ignore_metadata: last >> 7 == 1,
            ..opts
        };
        let _ = read_image_bytes(data, "fuzz.bin", &opts);
    }
});

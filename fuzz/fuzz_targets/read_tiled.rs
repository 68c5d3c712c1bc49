//! The CHAMMI tiled reader (`read_tiled_image`, channels side by side along the width) on any
//! bytes. It has no in-memory entry point, so the input is written to a file that is reused
//! across executions. The last byte picks the tiling: `Square` or `Count(1..=15)`; the whole
//! input (that byte included) is the file.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use cellino_data::{ChannelTiling, ReadOptions, read_tiled_image};
use libfuzzer_sys::fuzz_target;

fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cellino-fuzz-tiled-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz temp dir");
        dir.join("tiled.bin")
    })
}

fuzz_target!(|data: &[u8]| {
    let tiling = match data.last().map_or(0, |b| b & 15) {
        0 => ChannelTiling::Square,
        n => ChannelTiling::Count(usize::from(n)),
    };
    let path = file();
    std::fs::write(path, data).expect("write the fuzz input");
    let opts = ReadOptions { max_values: 1 << 22, ..ReadOptions::default() };
    if let Ok(image) = read_tiled_image(path, tiling, &opts) {
        assert_eq!(image.data.len(), image.channels * image.height * image.width);
        if let ChannelTiling::Count(n) = tiling {
            assert_eq!(image.channels, n);
        }
    }
});

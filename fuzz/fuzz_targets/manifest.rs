//! Any bytes as a CSV manifest: `Dataset::from_manifest` with a few option sets, then loading
//! every record; and the same bytes (as UTF-8) through the dinov2 dataset-string parser
//! (`DatasetSpec`).
//!
//! The manifest sits in a temporary folder next to a few tiny valid images (copied from the
//! synthetic test fixtures) that rows can point at. Only records whose files all resolve inside
//! that folder are loaded: a row naming `/dev/zero` would otherwise make the harness, not the
//! reader, hang.

#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use cellino_data::{ChannelTiling, Dataset, DatasetSpec, LabelColumns, ManifestOptions, ReadOptions};
use libfuzzer_sys::fuzz_target;

const FIXTURES: [(&str, &[u8]); 6] = [
    ("a.png", include_bytes!("../../crates/cellino-data/tests/data/synthetic/grey_u8.png")),
    ("b.tif", include_bytes!("../../crates/cellino-data/tests/data/synthetic/chan0.tif")),
    ("c.npy", include_bytes!("../../crates/cellino-data/tests/data/synthetic/hw_u8.npy")),
    ("d.jpg", include_bytes!("../../crates/cellino-data/tests/data/synthetic/grey_u8.jpg")),
    ("t.png", include_bytes!("../../crates/cellino-data/tests/data/synthetic/chammi_tiled_4ch.png")),
    ("e.png", include_bytes!("../../crates/cellino-data/tests/data/synthetic/la_u8.png")),
];

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cellino-fuzz-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz temp dir");
        for (name, bytes) in FIXTURES {
            std::fs::write(dir.join(name), bytes).expect("write a fixture");
        }
        dir
    })
}

/// A path that stays inside `dir` without `..` (symlinks: there are none in `dir`).
fn inside(path: &Path, dir: &Path) -> bool {
    path.strip_prefix(dir).is_ok_and(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<DatasetSpec>();
        for line in text.lines() {
            if let Ok(spec) = line.parse::<DatasetSpec>() {
                let _ = spec.separate_channels();
            }
        }
    }

    let dir = dir();
    let manifest = dir.join("manifest.csv");
    std::fs::write(&manifest, data).expect("write the fuzz input");
    let read_options = ReadOptions { max_values: 1 << 20, ..ReadOptions::default() };
    let selector = data.last().copied().unwrap_or(0);
    let tiling = match selector & 7 {
        0..=4 => None,
        5 => Some(ChannelTiling::Square),
        n => Some(ChannelTiling::Count(usize::from(n - 2))),
    };
    let labels = match (selector >> 3) & 3 {
        0 | 1 => LabelColumns::Auto,
        2 => LabelColumns::Separated { column: "labels".into(), separator: '|', labels: None },
        _ => LabelColumns::Columns(vec!["a".into(), "b".into()]),
    };
    let opts = ManifestOptions { tiling, labels, read_options, ..ManifestOptions::default() };
    let Ok(dataset) = Dataset::from_manifest(&manifest, &opts) else { return };
    for (i, record) in dataset.records.iter().enumerate().take(16) {
        let _ = dataset.origin(i);
        if record.source.paths().iter().all(|p| inside(p, dir)) {
            let _ = dataset.load(i);
        }
    }
    let _ = dataset.missing_files();
});

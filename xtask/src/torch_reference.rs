//! The PyTorch side of `cargo xtask bench --compare-torch`: committed Python scripts that time the
//! same work on the same machine and print `<bench name> <median seconds>` lines keyed like ours.
//!
//! * `xtask/py/bench_vit_torch.py`: ViT-S/16 forwards, forward + backward, the AdamW step
//!   (upstream dinov2 from the checkout in `DINOV2_PATH`);
//! * `xtask/py/bench_data_pipeline.py` (CPU only): decode and Cell-DINO multi-crop of the files the
//!   data bench wrote to `target/bench-data/` (tifffile, Pillow, NumPy, torch).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Medians of every reference that can run here; a note on stderr for each that cannot.
pub fn medians(root: &Path, device: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    match std::env::var("DINOV2_PATH") {
        Ok(dinov2) => {
            let args = ["--dinov2", dinov2.as_str(), "--device", device];
            out.extend(run_script(&root.join("xtask/py/bench_vit_torch.py"), &args));
        }
        Err(_) => eprintln!("note: set DINOV2_PATH to a dinov2 checkout for the PyTorch backbone column"),
    }
    let data = root.join("target/bench-data");
    if device == "cpu" && data.join("fields/manifest.csv").exists() {
        let data = data.to_string_lossy().into_owned();
        out.extend(run_script(&root.join("xtask/py/bench_data_pipeline.py"), &["--data", &data]));
    }
    out
}

fn run_script(script: &Path, args: &[&str]) -> BTreeMap<String, f64> {
    let name = script.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    eprintln!("running {name} (PyTorch reference)");
    match Command::new("python3").arg(script).args(args).output() {
        Ok(o) if o.status.success() => parse_medians(&String::from_utf8_lossy(&o.stdout)),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            eprintln!("note: {name} failed: {}", err.trim().lines().last().unwrap_or(""));
            BTreeMap::new()
        }
        Err(e) => {
            eprintln!("note: cannot run python3 for {name}: {e}");
            BTreeMap::new()
        }
    }
}

/// `name seconds` lines; anything else is ignored.
pub fn parse_medians(stdout: &str) -> BTreeMap<String, f64> {
    stdout
        .lines()
        .filter_map(|line| {
            let (name, secs) = line.split_once(' ')?;
            Some((name.to_string(), secs.trim().parse::<f64>().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_name_seconds_lines_count() {
        let m = parse_medians("cpu_a 0.5\nwarning: something\ncpu_b 1e-3\n\n");
        assert_eq!(m, BTreeMap::from([("cpu_a".to_string(), 0.5), ("cpu_b".to_string(), 1e-3)]));
    }
}

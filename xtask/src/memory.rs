//! Peak resident memory of one ViT-S/16 inference forward, cellino vs PyTorch, each in its own
//! process and measured the same way (see `crates/cellino-vit/examples/forward_peak_memory.rs`).

use std::path::Path;
use std::process::Command;

/// `(batch, channels)` of the measured forwards.
pub const SHAPES: [(usize, usize); 2] = [(8, 4), (32, 4)];

/// Peak RSS of the process and what the forward added, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakMemory {
    pub process: u64,
    pub forward: u64,
}

/// Parses the `peak_rss_bytes N` / `forward_extra_bytes N` lines both programs print.
pub fn parse(stdout: &str) -> Option<PeakMemory> {
    let field = |key: &str| stdout.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse::<u64>().ok()));
    Some(PeakMemory { process: field("peak_rss_bytes ")?, forward: field("forward_extra_bytes ")? })
}

fn run(cmd: &mut Command) -> Result<PeakMemory, String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().lines().last().unwrap_or("failed").to_string());
    }
    parse(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| "no peak_rss_bytes line".to_string())
}

/// cellino's peak for `(batch, channels)` (release build of the example).
pub fn cellino(root: &Path, cargo: &str, batch: usize, channels: usize) -> Result<PeakMemory, String> {
    run(Command::new(cargo).current_dir(root).args([
        "run",
        "--release",
        "-q",
        "-p",
        "cellino-vit",
        "--example",
        "forward_peak_memory",
        "--",
        &batch.to_string(),
        &channels.to_string(),
    ]))
}

/// PyTorch's peak for `(batch, channels)`, from upstream dinov2 at `dinov2`.
pub fn torch(root: &Path, dinov2: &str, batch: usize, channels: usize) -> Result<PeakMemory, String> {
    run(Command::new("python3").arg(root.join("xtask/py/bench_vit_torch.py")).args([
        "--dinov2",
        dinov2,
        "--peak-memory",
        &batch.to_string(),
        &channels.to_string(),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_lines_or_nothing() {
        let m = parse("x\npeak_rss_bytes 100\nforward_extra_bytes 7\n").unwrap();
        assert_eq!(m, PeakMemory { process: 100, forward: 7 });
        assert_eq!(parse("peak_rss_bytes 100\n"), None);
    }
}

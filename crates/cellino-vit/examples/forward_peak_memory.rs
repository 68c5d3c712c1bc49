//! Peak resident memory of one ViT-S/16 inference forward, for `cargo xtask bench` to compare
//! with PyTorch's (`xtask/py/bench_vit_torch.py --peak-memory`) under the same rule:
//!
//! ```text
//! cargo run --release -p cellino-vit --example forward_peak_memory -- <batch> <channels>
//! ```
//!
//! Builds the model and a seeded input, runs one forward to warm up, resets the kernel's
//! high-water mark (`/proc/self/clear_refs` ← 5), runs a second forward and prints
//! `peak_rss_bytes <VmHWM>` (the whole process at the forward's peak: weights, input, runtime)
//! and `forward_extra_bytes <VmHWM − VmRSS before the forward>` (what the forward itself adds).
//! Linux only (it prints nothing elsewhere).

use candle_core::{Device, Tensor};
use cellino_vit::{Arch, DinoVisionTransformer, VitConfig, random_state_dict};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A `/proc/self/status` memory field (`VmHWM`, `VmRSS`) in bytes.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let batch = args.next().unwrap_or(Ok(8))?;
    let channels = args.next().unwrap_or(Ok(4))?;
    let config = VitConfig::for_arch(Arch::VitSmall, 16, channels, 224);
    let weights = random_state_dict(&config, 1.0, 0, &Device::Cpu)?;
    let model = DinoVisionTransformer::from_state_dict(config, &weights)?;
    let mut rng = StdRng::seed_from_u64(7);
    let values: Vec<f32> = (0..batch * channels * 224 * 224).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x = Tensor::from_vec(values, (batch, channels, 224, 224), &Device::Cpu)?;
    drop(model.forward(&x)?);
    std::fs::write("/proc/self/clear_refs", "5")?;
    let before = status_bytes("VmRSS");
    let out = model.forward(&x)?;
    if let (Some(peak), Some(before)) = (status_bytes("VmHWM"), before) {
        println!("peak_rss_bytes {peak}");
        println!("forward_extra_bytes {}", peak.saturating_sub(before));
    }
    drop(out);
    Ok(())
}

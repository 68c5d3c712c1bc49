//! A 20-iteration training run of the tiny Bag-of-Channels SSL config on synthetic cells: every
//! loss finite, and the iBOT + KoLeo losses of the last 5 iterations lower than those of the
//! first 5. The DINO terms are not a progress signal this early: they rise by design while the
//! centre flattens the teacher targets (teacher entropy from about 0.5 to 5 nats in 20 steps).

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use cellino_data::{BagOfChannels, Cursor, Loader, SynthConfig, open_dataset, write_synthetic_dataset};
use cellino_ssl::{SslConfig, SslTrainer, augmentation, loader_config};

use super::parity::BoxErr;

/// The repository's tiny config, compiled in: the binary must work without the repository.
const TINY_CONFIG: &str = include_str!("../../../../configs/train/tiny_cpu_boc.yaml");
pub const ITERATIONS: u64 = 20;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SmokeResult {
    pub iterations: u64,
    /// Total loss per iteration.
    pub losses: Vec<f64>,
    /// iBOT + KoLeo loss per iteration (the decreasing check).
    pub ibot_plus_koleo: Vec<f64>,
    /// Mean teacher target entropy (nats) per iteration.
    pub teacher_entropy: Vec<f64>,
    pub seconds_per_iteration: f64,
    pub all_finite: bool,
    /// Mean iBOT + KoLeo of the last 5 iterations below that of the first 5.
    pub decreasing: bool,
    pub pass: bool,
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Result<Scratch, BoxErr> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("cellino-selftest-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(Scratch(dir))
}

fn config(manifest: &Path, out: &Path) -> Result<SslConfig, BoxErr> {
    let overrides = [
        format!("train.dataset_path={}", manifest.display()),
        format!("train.output_dir={}", out.display()),
        // The 20 iterations are the learning-rate warm-up of a 100-iteration schedule.
        "train.OFFICIAL_EPOCH_LENGTH=20".into(),
        "optim.epochs=5".into(),
        "optim.warmup_epochs=1".into(),
        // A constant teacher temperature: its warm-up raises the loss by itself.
        "teacher.warmup_teacher_temp_epochs=0".into(),
        "teacher.warmup_teacher_temp=0.04".into(),
        "teacher.teacher_temp=0.04".into(),
        "train.num_workers=2".into(),
    ];
    let config = SslConfig::from_yaml_str(TINY_CONFIG, "tiny_cpu_boc.yaml (built in)")?.with_overrides(&overrides)?;
    config.validate()?;
    Ok(config)
}

pub fn run(device: &Device) -> Result<SmokeResult, BoxErr> {
    let dir = scratch()?;
    let synth = SynthConfig { num_images: 48, size: 48, channels: 3, ..SynthConfig::default() };
    let manifest = write_synthetic_dataset(dir.0.join("data"), &synth)?;
    let config = config(&manifest, &dir.0.join("run"))?;
    let opened = open_dataset(&manifest.to_string_lossy())?;
    let source = BagOfChannels::with_channel_count(opened.dataset, synth.channels)?;
    let loader =
        Loader::new(source, augmentation(&config), loader_config(&config, config.train.num_workers)?, device.clone())?;
    let mut trainer = SslTrainer::new(config, device)?;
    let (mut losses, mut progress, mut entropy) = (vec![], vec![], vec![]);
    let t0 = Instant::now();
    cellino_ssl::train(&mut trainer, &loader, Cursor::default(), ITERATIONS, None, |m| {
        losses.push(m.total_loss);
        progress.push(m.ibot_loss + m.koleo_loss);
        entropy.push(m.teacher_entropy);
    })?;
    let seconds_per_iteration = t0.elapsed().as_secs_f64() / ITERATIONS as f64;
    let all_finite = losses.len() as u64 == ITERATIONS && losses.iter().chain(&progress).all(|l| l.is_finite());
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let decreasing = progress.len() >= 10 && mean(&progress[progress.len() - 5..]) < mean(&progress[..5]);
    Ok(SmokeResult {
        iterations: ITERATIONS,
        pass: all_finite && decreasing,
        losses,
        ibot_plus_koleo: progress,
        teacher_entropy: entropy,
        seconds_per_iteration,
        all_finite,
        decreasing,
    })
}

//! Data pipeline from a config and the training loop (infinite sampler over epochs, periodic
//! checkpoints, per-iteration metrics).

use std::path::{Path, PathBuf};

use cellino_data::{
    CellAugmentation, CropGroup, Cursor, IbotMasking, Loader, LoaderConfig, MaskingGenerator, SampleSource,
};

use crate::config::SslConfig;
use crate::error::Result;
use crate::trainer::{SslTrainer, StepMetrics};

/// The Cell-DINO multi-crop of a config (crop sizes, counts and scales from `crops.*`).
pub fn augmentation(config: &SslConfig) -> CellAugmentation {
    let c = &config.crops;
    CellAugmentation {
        global: CropGroup { count: 2, size: c.global_crops_size, scale: c.global_crops_scale },
        local: CropGroup { count: c.local_crops_number, size: c.local_crops_size, scale: c.local_crops_scale },
        ..CellAugmentation::default()
    }
}

/// Loader settings of a config: batch `train.batch_size_per_gpu`, seed `train.seed`, iBOT masks
/// from `ibot.*`, shuffled, drop-last.
pub fn loader_config(config: &SslConfig, num_threads: usize) -> Result<LoaderConfig> {
    let generator = MaskingGenerator::for_crops(config.crops.global_crops_size, config.student.patch_size)?;
    Ok(LoaderConfig {
        batch_size: config.train.batch_size_per_gpu,
        seed: config.train.seed,
        shuffle: true,
        drop_last: true,
        num_threads,
        prefetch: 2,
        skip_bad_samples: false,
        masking: Some(IbotMasking {
            generator,
            mask_probability: config.ibot.mask_sample_probability,
            ratio_min_max: config.ibot.mask_ratio_min_max,
        }),
    })
}

/// Where and how often [`train`] checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointPolicy {
    pub dir: PathBuf,
    /// Every `period` iterations (and at the end).
    pub period: u64,
    pub keep: usize,
}

impl CheckpointPolicy {
    /// From `train.checkpoint_period` (0 = `3 · OFFICIAL_EPOCH_LENGTH`, as upstream),
    /// `train.keep_checkpoints` and `<train.output_dir>/checkpoints`.
    pub fn from_config(config: &SslConfig) -> Self {
        let period = match config.train.checkpoint_period {
            0 => 3 * config.train.official_epoch_length,
            p => p,
        };
        Self { dir: checkpoint_dir(config), period: period as u64, keep: config.train.keep_checkpoints }
    }
}

/// Run until `trainer.iteration == until`, drawing batches from `cursor` on (epochs roll over).
/// Calls `on_step` after every step; returns the cursor after the last batch used.
pub fn train<S, T>(
    trainer: &mut SslTrainer,
    loader: &Loader<S, T>,
    mut cursor: Cursor,
    until: u64,
    checkpoints: Option<&CheckpointPolicy>,
    mut on_step: impl FnMut(&StepMetrics),
) -> Result<Cursor>
where
    S: SampleSource + 'static,
    T: cellino_data::Transform + 'static,
{
    if loader.batches_per_epoch() == 0 {
        return Err(crate::error::SslError::Invalid(format!(
            "the dataset has fewer samples than one batch of {}",
            loader.config().batch_size
        )));
    }
    let mut last_ckpt = String::from("none");
    if let Some(p) = checkpoints
        && let Some(l) = crate::checkpoint::latest_checkpoint(&p.dir)?
    {
        last_ckpt = l.display().to_string();
    }
    while trainer.iteration < until {
        let mut iter = loader.iter_from(cursor);
        let mut any = false;
        while trainer.iteration < until {
            let t0 = std::time::Instant::now();
            let Some(batch) = iter.next() else { break };
            let batch = batch?;
            any = true;
            let mut m = trainer.step(&batch, &last_ckpt)?;
            m.images_per_second = batch.len() as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            cursor = batch.next;
            on_step(&m);
            if let Some(p) = checkpoints
                && (trainer.iteration.is_multiple_of(p.period.max(1)) || trainer.iteration == until)
            {
                last_ckpt = trainer.save_checkpoint(&p.dir, cursor, p.keep)?.display().to_string();
            }
        }
        if trainer.iteration < until {
            // Epoch exhausted: the sampler is infinite, go on with the next epoch.
            if !any && cursor.position == 0 {
                return Err(crate::error::SslError::Invalid("the loader gave no batch for a whole epoch".into()));
            }
            cursor = Cursor { epoch: cursor.epoch + 1, position: 0 };
        }
    }
    Ok(cursor)
}

/// Write metrics as one JSON line.
pub fn metrics_json_line(m: &StepMetrics) -> String {
    serde_json::to_string(m).unwrap_or_default()
}

/// Default checkpoint directory of a config (`<output_dir>/checkpoints`).
pub fn checkpoint_dir(config: &SslConfig) -> PathBuf {
    Path::new(&config.train.output_dir).join("checkpoints")
}

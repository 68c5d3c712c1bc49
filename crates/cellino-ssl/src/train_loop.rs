//! Data pipeline from a config and the training loop (infinite sampler over epochs, periodic
//! checkpoints, per-iteration metrics).

use std::path::{Path, PathBuf};

use cellino_data::{
    CellAugmentation, CropGroup, Cursor, IbotMasking, Loader, LoaderConfig, MaskingGenerator, SampleSource,
};

use crate::config::SslConfig;
use crate::error::Result;
use crate::trainer::{SslTrainer, StepMetrics};

/// The multi-crop of a config (crop sizes, counts and scales from `crops.*`, protein channel
/// `train.protein_channel`). `train.cell_augmentation: true` is the Cell-DINO augmentation;
/// `false` drops its two channel-specific ops (channel removal and protein contrast get p 0) and
/// keeps the crops, flips, brightness / contrast and self-normalisation. On 1-channel samples
/// (Bag of Channels) those two ops never fire, so both settings give the same crops.
pub fn augmentation(config: &SslConfig) -> CellAugmentation {
    let c = &config.crops;
    let mut aug = CellAugmentation {
        global: CropGroup { count: 2, size: c.global_crops_size, scale: c.global_crops_scale },
        local: CropGroup { count: c.local_crops_number, size: c.local_crops_size, scale: c.local_crops_scale },
        ..CellAugmentation::default()
    }
    .with_protein_channel(config.train.protein_channel);
    if !config.train.cell_augmentation {
        aug.remove_channel.p = 0.0;
        aug.protein_contrast.p = 0.0;
    }
    aug
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

/// Run until `trainer.iteration == until`, drawing batches from `cursor` on (epochs roll over,
/// also inside an iteration). One iteration takes `train.grad_accumulation_steps` consecutive
/// batches; the cursor (checkpointed, returned) is the one after the iteration's last batch, so
/// resuming continues the exact data order. Calls `on_step` after every iteration.
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
    let k = trainer.config.train.grad_accumulation_steps.max(1);
    let mut last_ckpt = String::from("none");
    if let Some(p) = checkpoints
        && let Some(l) = crate::checkpoint::latest_checkpoint(&p.dir)?
    {
        last_ckpt = l.display().to_string();
    }
    let mut iter = None;
    while trainer.iteration < until {
        let t0 = std::time::Instant::now();
        let mut batches = Vec::with_capacity(k);
        while batches.len() < k {
            let it = iter.get_or_insert_with(|| loader.iter_from(cursor));
            match it.next() {
                Some(batch) => {
                    let batch = batch?;
                    cursor = batch.next;
                    batches.push(batch);
                }
                None => {
                    // Epoch exhausted: the sampler is infinite, go on with the next epoch.
                    if cursor.position == 0 {
                        return Err(crate::error::SslError::Invalid(
                            "the loader gave no batch for a whole epoch".into(),
                        ));
                    }
                    cursor = Cursor { epoch: cursor.epoch + 1, position: 0 };
                    iter = None;
                }
            }
        }
        let mut m = trainer.step_batches(&batches, &last_ckpt)?;
        let images: usize = batches.iter().map(|b| b.len()).sum();
        m.images_per_second = images as f64 / t0.elapsed().as_secs_f64().max(1e-9);
        on_step(&m);
        if let Some(p) = checkpoints
            && (trainer.iteration.is_multiple_of(p.period.max(1)) || trainer.iteration == until)
        {
            last_ckpt = trainer.save_checkpoint(&p.dir, cursor, p.keep)?.display().to_string();
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

//! Feature extraction: a frozen backbone over a dataset, rows in dataset (manifest) order.

use candle_core::{DType, Tensor};
use cellino_data::{Dataset, EvalTransform, LabelSchema, Loader, LoaderConfig, Target};
use cellino_vit::DinoVisionTransformer;

use crate::error::{EvalError, Result};
use crate::layout::FeatureLayout;

/// What to extract (spec §4, §6). Defaults: the last block's CLS, no patch average, no Bag
/// of Channels, no normalisation, the evaluation centre crop at 224 px, batches of 32.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractConfig {
    /// CLS tokens of the last `n` blocks, oldest first (`--n-last-blocks`).
    pub n_last_blocks: usize,
    /// Append the mean of the last block's patch tokens (`--avgpool`).
    pub avgpool: bool,
    /// Run the single-channel backbone on every channel and concatenate in channel order
    /// (`--bag-of-channels`).
    pub bag_of_channels: bool,
    /// Divide every row by its L2 norm (kNN features; `F.normalize`, eps 1e-12).
    pub l2_normalize: bool,
    /// The evaluation transform (`SELF_NORM_CENTER_CROP`: resize, crop size).
    pub transform: EvalTransform,
    /// Images per forward pass (Bag of Channels: `C ×` as many single-channel images).
    pub batch_size: usize,
    /// Loader threads (0 = all cores); the features do not depend on it.
    pub num_threads: usize,
}

impl Default for ExtractConfig {
    fn default() -> Self {
        Self {
            n_last_blocks: 1,
            avgpool: false,
            bag_of_channels: false,
            l2_normalize: false,
            transform: EvalTransform::center(224, 0),
            batch_size: 32,
            num_threads: 0,
        }
    }
}

/// Progress of [`extract_features`], given to the caller's callback after every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Images embedded so far.
    pub done: usize,
    /// Images in the dataset.
    pub total: usize,
}

/// Extracted features and what they came from (written by
/// [`write_embeddings`](crate::write_embeddings)).
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// Row-major `(n_rows, layout.dim)`, row `i` = dataset record `i`.
    pub features: Vec<f32>,
    pub n_rows: usize,
    pub layout: FeatureLayout,
    /// Channel names of the input images (`channel<i>` where the data has none).
    pub channel_names: Vec<String>,
    /// The transform that was applied.
    pub transform: EvalTransform,
    /// One target per row.
    pub targets: Vec<Target>,
    pub labels: LabelSchema,
    /// The dataset's metadata columns and, per row, its values.
    pub metadata_columns: Vec<String>,
    pub metadata: Vec<Vec<String>>,
    /// Per row: the image file(s) (`;`-joined for one file per channel) and manifest line.
    pub sources: Vec<String>,
    pub lines: Vec<u64>,
    /// The dataset's name and manifest.
    pub dataset: String,
    pub manifest: Option<String>,
}

impl Extracted {
    /// Row `i` (panics if `i >= n_rows`, like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.layout.dim..(i + 1) * self.layout.dim]
    }
}

/// Embeds every record of `dataset` with `model` under `config`, in record order, loading
/// and transforming batches on the data crate's [`Loader`] (parallel, prefetching, no
/// shuffling, nothing dropped). `progress`, if given, is called after every batch.
///
/// Every image must have the same channel count (Bag of Channels: any count, but one for the
/// whole dataset, since the row width is `n·C·D`).
///
/// # Errors
/// An empty dataset, a bad configuration (`n_last_blocks` outside `1..=depth`, batch size
/// 0, Bag of Channels with a multi-channel model), images the model cannot take, a sample
/// that fails to load (naming the file and manifest line), non-finite features.
pub fn extract_features(
    model: &DinoVisionTransformer,
    dataset: &Dataset,
    config: &ExtractConfig,
    mut progress: Option<&mut dyn FnMut(Progress)>,
) -> Result<Extracted> {
    let total = dataset.len();
    if total == 0 {
        return Err(EvalError::Empty { what: "dataset (no records)" });
    }
    if config.batch_size == 0 {
        return Err(EvalError::InvalidConfig { what: "batch size", reason: "must be at least 1".into() });
    }
    let mc = model.config();
    if config.bag_of_channels && mc.in_chans != 1 {
        return Err(EvalError::InvalidConfig {
            what: "bag_of_channels",
            reason: format!("needs a single-channel model, but the weights take {} channels", mc.in_chans),
        });
    }
    // The channel count and names, from the first record.
    let first = dataset.load(0)?.image;
    let channels = first.channels;
    if !config.bag_of_channels && channels != mc.in_chans {
        return Err(EvalError::Mismatch {
            what: "image channels (the model's in_chans; use Bag of Channels for a 1-channel model)",
            expected: mc.in_chans,
            actual: channels,
        });
    }
    let channel_names: Vec<String> = first
        .channel_names
        .iter()
        .enumerate()
        .map(|(i, n)| n.clone().unwrap_or_else(|| format!("channel{i}")))
        .collect();
    drop(first);
    let mut layout = FeatureLayout::new(
        config.n_last_blocks,
        config.avgpool,
        config.bag_of_channels,
        mc.embed_dim,
        channels,
        mc.depth,
        config.bag_of_channels.then_some(channel_names.as_slice()),
    )?;
    layout.l2_normalized = config.l2_normalize;
    let dim = layout.dim;

    let loader_config = LoaderConfig {
        batch_size: config.batch_size,
        seed: 0,
        shuffle: false,
        drop_last: false,
        num_threads: config.num_threads,
        prefetch: 2,
        skip_bad_samples: false,
        masking: None,
    };
    let loader = Loader::new(dataset.clone(), config.transform, loader_config, model.device().clone())?;
    let mut features = Vec::with_capacity(total.saturating_mul(dim));
    let mut targets = Vec::with_capacity(total);
    let mut done = 0;
    for batch in loader.epoch(0) {
        let batch = batch?;
        for (j, s) in batch.samples.iter().enumerate() {
            if s.index != done + j {
                return Err(EvalError::Data(format!(
                    "the loader returned sample {} at row {}; rows must follow the dataset order",
                    s.index,
                    done + j
                )));
            }
        }
        let rows = embed(model, &batch.global, config, channels)?;
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::NonFiniteFeature {
                what: "extracted features",
                row: done + i / dim,
                col: i % dim,
                value: f64::from(rows[i]),
            });
        }
        features.extend_from_slice(&rows);
        targets.extend(batch.targets);
        done += batch.samples.len();
        if let Some(cb) = progress.as_mut() {
            cb(Progress { done, total });
        }
    }
    if done != total {
        return Err(EvalError::LengthMismatch { what: "embedded images", expected: total, actual: done });
    }
    if config.l2_normalize {
        features.chunks_exact_mut(dim).for_each(l2_normalize);
    }
    let record_source = |r: &cellino_data::Record| {
        r.source.paths().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(";")
    };
    Ok(Extracted {
        features,
        n_rows: total,
        layout,
        channel_names,
        transform: config.transform,
        targets,
        labels: dataset.labels.clone(),
        metadata_columns: dataset.metadata_columns.clone(),
        metadata: dataset.records.iter().map(|r| r.metadata.clone()).collect(),
        sources: dataset.records.iter().map(record_source).collect(),
        lines: dataset.records.iter().map(|r| r.line).collect(),
        dataset: dataset.name.clone(),
        manifest: dataset.manifest.as_ref().map(|m| m.display().to_string()),
    })
}

/// Divides `row` by `max(‖row‖₂, 1e-12)` (PyTorch `F.normalize`).
pub fn l2_normalize(row: &mut [f32]) {
    let norm = row.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt().max(1e-12) as f32;
    row.iter_mut().for_each(|x| *x /= norm);
}

/// The feature rows of one `(B, C, H, W)` batch, flat `(B, dim)`.
fn embed(model: &DinoVisionTransformer, x: &Tensor, config: &ExtractConfig, channels: usize) -> Result<Vec<f32>> {
    let (b, c, h, w) = x.dims4()?;
    if c != channels {
        return Err(EvalError::Mismatch {
            what: "image channels (same for every image)",
            expected: channels,
            actual: c,
        });
    }
    let input = if config.bag_of_channels { x.reshape((b * c, 1, h, w))? } else { x.clone() };
    // Bag of Channels: rows b0c0, b0c1, … regrouped to (B, C·D), channel-major.
    let width = if config.bag_of_channels { c } else { 1 };
    let blocks = model.get_intermediate_layers(&input, config.n_last_blocks, true)?;
    let d = model.config().embed_dim;
    let mut parts = Vec::with_capacity(blocks.len() + 1);
    for (_, cls) in &blocks {
        parts.push(cls.reshape((b, width * d))?);
    }
    if config.avgpool {
        let (patches, _) = blocks.last().ok_or(EvalError::Empty { what: "backbone blocks" })?;
        parts.push(patches.mean(1)?.reshape((b, width * d))?);
    }
    let out = Tensor::cat(&parts, 1)?.to_dtype(DType::F32)?;
    Ok(out.flatten_all()?.to_vec1::<f32>()?)
}

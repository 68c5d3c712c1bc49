//! The parallel, reproducible, resumable batch loader.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rayon::prelude::*;

use crate::transform::{Transform, Views};
use crate::{ChannelId, DataError, IbotMasking, MaskBatch, RngStream, SampleSource, Target, keyed_rng};

/// How the [`Loader`] draws and batches samples.
#[derive(Clone, Debug, PartialEq)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Run seed: with the epoch and the sample's index it keys every random draw.
    pub seed: u64,
    /// A new permutation of the samples every epoch (keyed by seed and epoch); else index order.
    pub shuffle: bool,
    /// Leave out the last, incomplete batch of an epoch.
    pub drop_last: bool,
    /// Worker threads that load and transform the samples of a batch; 0 = all cores. The batches
    /// do not depend on it.
    pub num_threads: usize,
    /// Batches prepared ahead of the consumer (bounded memory), at least 1.
    pub prefetch: usize,
    /// Leave out samples that fail to load or transform (reported in [`Batch::skipped`] and
    /// [`Loader::skipped`]) instead of stopping with the error.
    pub skip_bad_samples: bool,
    /// iBOT masks for the global crops of every batch ([`Batch::masks`]).
    pub masking: Option<IbotMasking>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            seed: 0,
            shuffle: true,
            drop_last: true,
            num_threads: 0,
            prefetch: 2,
            skip_bad_samples: false,
            masking: None,
        }
    }
}

/// A position in the stream of samples: `position` samples of epoch `epoch` have been consumed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor {
    pub epoch: u64,
    pub position: usize,
}

/// A sample the loader left out ([`LoaderConfig::skip_bad_samples`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSample {
    pub epoch: u64,
    /// Index in the sample source.
    pub index: usize,
    /// The error, naming the file (and manifest line).
    pub error: String,
}

/// Where a batch element comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleInfo {
    pub index: usize,
    pub image_index: usize,
    pub channel: Option<ChannelId>,
}

/// One batch of `len()` samples.
#[derive(Debug)]
pub struct Batch {
    /// f32 `(n_global · B, C, H, W)`, crop-major: rows `[g·B, (g+1)·B)` are global crop `g` of
    /// every sample. For a single-view transform, `(B, C, H, W)`.
    pub global: Tensor,
    /// f32 `(n_local · B, C, h, w)`, crop-major; `None` without local crops.
    pub local: Option<Tensor>,
    pub n_global: usize,
    pub n_local: usize,
    pub targets: Vec<Target>,
    pub samples: Vec<SampleInfo>,
    /// iBOT masks of the `n_global · B` global crops, in the same order.
    pub masks: Option<MaskBatch>,
    /// Samples of this batch that were left out.
    pub skipped: Vec<SkippedSample>,
    /// Where this batch starts.
    pub cursor: Cursor,
    /// Resume here to continue after this batch.
    pub next: Cursor,
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The class indices as a u32 `(B,)` tensor, if every target is a [`Target::Class`].
    pub fn class_tensor(&self) -> Result<Option<Tensor>, DataError> {
        let classes: Option<Vec<u32>> = self.targets.iter().map(|t| t.class().map(|c| c as u32)).collect();
        let device = self.global.device();
        Ok(match classes {
            Some(c) if !c.is_empty() => Some(Tensor::from_vec(c, self.targets.len(), device)?),
            _ => None,
        })
    }

    /// The multi-hot targets as an f32 `(B, K)` tensor, if every target is a
    /// [`Target::MultiHot`] of the same length.
    pub fn multi_hot_tensor(&self) -> Result<Option<Tensor>, DataError> {
        let rows: Option<Vec<&[u8]>> = self.targets.iter().map(Target::multi_hot).collect();
        let Some(rows) = rows.filter(|r| !r.is_empty()) else { return Ok(None) };
        let k = rows[0].len();
        if rows.iter().any(|r| r.len() != k) {
            return Ok(None);
        }
        let data: Vec<f32> = rows.iter().flat_map(|r| r.iter().map(|&v| f32::from(v))).collect();
        Ok(Some(Tensor::from_vec(data, (rows.len(), k), self.global.device())?))
    }
}

type Shape4 = (usize, usize, usize, usize);

/// A batch before its tensors are made (built on the worker side).
struct HostBatch {
    global: Vec<f32>,
    global_shape: Shape4,
    local: Option<(Vec<f32>, Shape4)>,
    n_global: usize,
    n_local: usize,
    targets: Vec<Target>,
    samples: Vec<SampleInfo>,
    masks: Option<MaskBatch>,
    skipped: Vec<SkippedSample>,
    cursor: Cursor,
    next: Cursor,
}

type Shape = (usize, usize, usize);

fn views_shape(v: &Views) -> (usize, usize, Option<Shape>, Option<Shape>) {
    (v.global.len(), v.local.len(), v.global.first().map(|i| i.shape()), v.local.first().map(|i| i.shape()))
}

fn check_views(v: &Views, reference: &(usize, usize, Option<Shape>, Option<Shape>)) -> Result<(), String> {
    let same = |list: &[crate::MultiChannelImage], s: &Option<Shape>| list.iter().all(|i| Some(i.shape()) == *s);
    if views_shape(v).0 != reference.0
        || views_shape(v).1 != reference.1
        || !same(&v.global, &reference.2)
        || !same(&v.local, &reference.3)
    {
        return Err(format!(
            "views of another shape than the batch's first sample: expected {} global {:?} + {} local {:?}, found {} global {:?} + {} local {:?}",
            reference.0,
            reference.2,
            reference.1,
            reference.3,
            v.global.len(),
            v.global.iter().map(|i| i.shape()).collect::<Vec<_>>(),
            v.local.len(),
            v.local.iter().map(|i| i.shape()).collect::<Vec<_>>(),
        ));
    }
    Ok(())
}

struct Shared<S, T> {
    source: S,
    transform: T,
    config: LoaderConfig,
    pool: rayon::ThreadPool,
}

impl<S: SampleSource, T: Transform> Shared<S, T> {
    fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.source.len()).collect();
        if self.config.shuffle {
            order.shuffle(&mut keyed_rng(self.config.seed, epoch, 0, RngStream::Shuffle));
        }
        order
    }

    /// The end position of the batch starting at `position`, or `None` at the end of the epoch.
    fn batch_end(&self, position: usize) -> Option<usize> {
        let n = self.source.len();
        let end = position.checked_add(self.config.batch_size)?.min(n);
        (position < n && !(self.config.drop_last && end - position < self.config.batch_size)).then_some(end)
    }

    fn build(&self, epoch: u64, order: &[usize], position: usize, end: usize) -> Result<HostBatch, DataError> {
        let cfg = &self.config;
        let indices = &order[position..end];
        let results: Vec<Result<(SampleInfo, Target, Views), DataError>> = self.pool.install(|| {
            indices
                .par_iter()
                .map(|&index| {
                    let wrap = |e: DataError| match e {
                        e @ DataError::Sample { .. } => e,
                        e => DataError::Sample { index, origin: self.source.origin(index), source: Box::new(e) },
                    };
                    let sample = self.source.load(index).map_err(wrap)?;
                    let mut rng = keyed_rng(cfg.seed, epoch, index as u64, RngStream::Sample);
                    let views = self.transform.apply(sample.image, &mut rng).map_err(wrap)?;
                    if views.global.is_empty() {
                        return Err(wrap(DataError::invalid("transform", "at least one global view", "none")));
                    }
                    let info = SampleInfo { index, image_index: sample.image_index, channel: sample.channel };
                    Ok((info, sample.target, views))
                })
                .collect()
        });

        let mut good = Vec::with_capacity(results.len());
        let mut skipped = Vec::new();
        let mut reference = None;
        for (r, &index) in results.into_iter().zip(indices) {
            let r = r.and_then(|(info, target, views)| {
                let shape = reference.get_or_insert_with(|| views_shape(&views));
                check_views(&views, shape).map_err(|found| DataError::Sample {
                    index,
                    origin: self.source.origin(index),
                    source: Box::new(DataError::invalid("batch", "views of one shape", found)),
                })?;
                Ok((info, target, views))
            });
            match r {
                Ok(x) => good.push(x),
                Err(e) if cfg.skip_bad_samples => skipped.push(SkippedSample { epoch, index, error: e.to_string() }),
                Err(e) => return Err(e),
            }
        }

        let b = good.len();
        let (n_global, n_local, gshape, lshape) = reference.unwrap_or((0, 0, None, None));
        let collate = |local: bool, shape: Option<Shape>, n: usize| {
            shape.map(|(c, h, w)| {
                let mut data = Vec::with_capacity(n * b * c * h * w);
                for k in 0..n {
                    for (_, _, v) in &good {
                        data.extend_from_slice(&if local { &v.local } else { &v.global }[k].data);
                    }
                }
                (data, (n * b, c, h, w))
            })
        };
        let (global, global_shape) = collate(false, gshape, n_global).unwrap_or_default();
        let local = collate(true, lshape, n_local);
        let masks = cfg
            .masking
            .filter(|_| b > 0)
            .map(|m| m.sample(n_global * b, &mut keyed_rng(cfg.seed, epoch, position as u64, RngStream::Masks)));
        let (samples, targets) = good.into_iter().map(|(i, t, _)| (i, t)).unzip();
        Ok(HostBatch {
            global,
            global_shape,
            local,
            n_global,
            n_local,
            targets,
            samples,
            masks,
            skipped,
            cursor: Cursor { epoch, position },
            next: Cursor { epoch, position: end },
        })
    }
}

/// Loads batches of `transform`ed samples of `source` on worker threads.
///
/// The sample at dataset index `i` in epoch `e` is transformed with the RNG keyed by
/// (seed, `e`, `i`); the epoch order is a permutation keyed by (seed, `e`); iBOT masks are keyed
/// by (seed, `e`, batch start). So batches are bit-identical for any thread count, and
/// [`iter_from`](Self::iter_from) a saved [`Cursor`] continues exactly where a run stopped.
///
/// ```
/// use cellino_data::{Loader, LoaderConfig, Cursor, EvalTransform, Sample, SampleSource, DataError,
///     MultiChannelImage, SampleType, Target};
/// use candle_core::Device;
///
/// struct Ramp; // 10 single-channel 8 × 8 images
/// impl SampleSource for Ramp {
///     fn len(&self) -> usize { 10 }
///     fn load(&self, index: usize) -> Result<Sample, DataError> {
///         let data = (0..64).map(|v| ((v * (index + 1)) % 256) as f32).collect();
///         let image = MultiChannelImage::new(data, 1, 8, 8, SampleType::U8)?;
///         Ok(Sample { image, target: Target::Class(index % 2), index, image_index: index, channel: None })
///     }
/// }
///
/// let config = LoaderConfig { batch_size: 4, num_threads: 2, ..LoaderConfig::default() };
/// let loader = Loader::new(Ramp, EvalTransform::center(6, 0), config, Device::Cpu)?;
/// assert_eq!(loader.batches_per_epoch(), 2); // drop_last
/// let batches: Vec<_> = loader.epoch(0).collect::<Result<_, _>>()?;
/// assert_eq!(batches[1].global.dims(), &[4, 1, 6, 6]);
/// // Resume after the first batch: same second batch.
/// let again = loader.iter_from(batches[0].next).next().unwrap()?;
/// assert_eq!(again.samples, batches[1].samples);
/// # Ok::<(), DataError>(())
/// ```
pub struct Loader<S, T> {
    shared: Arc<Shared<S, T>>,
    device: Device,
    skipped: Arc<Mutex<Vec<SkippedSample>>>,
}

impl<S: SampleSource + 'static, T: Transform + 'static> Loader<S, T> {
    pub fn new(source: S, transform: T, config: LoaderConfig, device: Device) -> Result<Self, DataError> {
        if config.batch_size == 0 {
            return Err(DataError::invalid("loader", "batch_size ≥ 1", "0"));
        }
        if config.prefetch == 0 {
            return Err(DataError::invalid("loader", "prefetch ≥ 1", "0"));
        }
        let threads = match config.num_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("cellino-loader-{i}"))
            .build()
            .map_err(|e| DataError::invalid("loader", "a worker thread pool", e.to_string()))?;
        Ok(Self {
            shared: Arc::new(Shared { source, transform, config, pool }),
            device,
            skipped: Arc::new(Mutex::new(Vec::new())),
        })
    }

    pub fn config(&self) -> &LoaderConfig {
        &self.shared.config
    }

    pub fn source(&self) -> &S {
        &self.shared.source
    }

    /// Batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.shared.source.len(), self.shared.config.batch_size);
        if self.shared.config.drop_last { n / b } else { n.div_ceil(b) }
    }

    /// The sample order of `epoch` (source indices).
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        self.shared.order(epoch)
    }

    /// Every sample left out so far ([`LoaderConfig::skip_bad_samples`]).
    pub fn skipped(&self) -> Vec<SkippedSample> {
        self.skipped.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The batch starting at `cursor`, built now on the worker pool (no prefetching); `None` at
    /// the end of the epoch.
    pub fn batch_at(&self, cursor: Cursor) -> Result<Option<Batch>, DataError> {
        let Some(end) = self.shared.batch_end(cursor.position) else { return Ok(None) };
        let order = self.shared.order(cursor.epoch);
        let host = self.shared.build(cursor.epoch, &order, cursor.position, end)?;
        self.record_skipped(&host.skipped);
        self.finish(host).map(Some)
    }

    /// The batches of epoch `epoch`.
    pub fn epoch(&self, epoch: u64) -> BatchIter<S, T> {
        self.iter_from(Cursor { epoch, position: 0 })
    }

    /// The remaining batches of `cursor.epoch` from `cursor.position`, prepared by a background
    /// thread up to [`LoaderConfig::prefetch`] batches ahead. Stops after the first error
    /// (unless bad samples are skipped).
    pub fn iter_from(&self, cursor: Cursor) -> BatchIter<S, T> {
        let (tx, rx) = sync_channel(self.shared.config.prefetch);
        let shared = Arc::clone(&self.shared);
        let handle = std::thread::Builder::new()
            .name("cellino-loader".into())
            .spawn(move || produce(shared, cursor, tx))
            .map_err(|e| DataError::invalid("loader", "a producer thread", e.to_string()));
        let (handle, startup_error) = match handle {
            Ok(h) => (Some(h), None),
            Err(e) => (None, Some(e)),
        };
        BatchIter {
            loader: Loader {
                shared: Arc::clone(&self.shared),
                device: self.device.clone(),
                skipped: Arc::clone(&self.skipped),
            },
            rx: Some(rx),
            handle,
            startup_error,
            pending: Vec::new(),
            done: false,
        }
    }

    fn finish(&self, host: HostBatch) -> Result<Batch, DataError> {
        let global = Tensor::from_vec(host.global, host.global_shape, &self.device)?;
        let local = host.local.map(|(d, s)| Tensor::from_vec(d, s, &self.device)).transpose()?;
        Ok(Batch {
            global,
            local,
            n_global: host.n_global,
            n_local: host.n_local,
            targets: host.targets,
            samples: host.samples,
            masks: host.masks,
            skipped: host.skipped,
            cursor: host.cursor,
            next: host.next,
        })
    }
}

fn produce<S: SampleSource, T: Transform>(
    shared: Arc<Shared<S, T>>,
    cursor: Cursor,
    tx: SyncSender<Result<HostBatch, DataError>>,
) {
    let order = shared.order(cursor.epoch);
    let mut position = cursor.position;
    while let Some(end) = shared.batch_end(position) {
        let result = shared.build(cursor.epoch, &order, position, end);
        let failed = result.is_err();
        if tx.send(result).is_err() || failed {
            return;
        }
        position = end;
    }
}

/// Batches of one epoch; see [`Loader::iter_from`].
pub struct BatchIter<S, T> {
    loader: Loader<S, T>,
    rx: Option<Receiver<Result<HostBatch, DataError>>>,
    handle: Option<JoinHandle<()>>,
    startup_error: Option<DataError>,
    /// Skipped samples of batches that were skipped entirely, reported with the next batch.
    pending: Vec<SkippedSample>,
    done: bool,
}

impl<S: SampleSource + 'static, T: Transform + 'static> Iterator for BatchIter<S, T> {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.startup_error.take() {
            self.done = true;
            return Some(Err(e));
        }
        while !self.done {
            let received = self.rx.as_ref().map(Receiver::recv);
            match received {
                Some(Ok(Ok(mut host))) => {
                    self.loader.record_skipped(&host.skipped);
                    if host.samples.is_empty() {
                        // Every sample of this batch was skipped.
                        self.pending.append(&mut host.skipped);
                        continue;
                    }
                    let mut skipped = std::mem::take(&mut self.pending);
                    skipped.append(&mut host.skipped);
                    host.skipped = skipped;
                    let batch = self.loader.finish(host);
                    self.done = batch.is_err();
                    return Some(batch);
                }
                Some(Ok(Err(e))) => {
                    self.done = true;
                    return Some(Err(e));
                }
                _ => {
                    self.done = true;
                    let panicked = self.handle.take().is_some_and(|h| h.join().is_err());
                    if panicked {
                        return Some(Err(DataError::invalid("loader", "a running producer thread", "it panicked")));
                    }
                }
            }
        }
        None
    }
}

impl<S, T> Loader<S, T> {
    fn record_skipped(&self, skipped: &[SkippedSample]) {
        if skipped.is_empty() {
            return;
        }
        if let Ok(mut s) = self.skipped.lock() {
            s.extend(skipped.iter().cloned());
        }
    }
}

impl<S, T> Drop for BatchIter<S, T> {
    fn drop(&mut self) {
        // Closing the channel makes the producer stop at its next send.
        drop(self.rx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

//! The loader: thread-count determinism, resuming, crop-major batches, masks, bad samples.

mod synth;

use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::Device;
use cellino_data::{
    BagOfChannels, CellAugmentation, CropGroup, Cursor, DataError, Dataset, EvalTransform, IbotMasking, Loader,
    LoaderConfig, ManifestOptions, MultiChannelImage, Sample, SampleSource, SampleType, Target,
};

/// `n` synthetic 4-channel 8-bit images of 40 × 48; sample 5 fails if `fail_at_5`.
struct Cells {
    n: usize,
    fail_at_5: bool,
    loads: AtomicUsize,
}

impl Cells {
    fn new(n: usize) -> Self {
        Self { n, fail_at_5: false, loads: AtomicUsize::new(0) }
    }
}

impl SampleSource for Cells {
    fn len(&self) -> usize {
        self.n
    }
    fn load(&self, index: usize) -> Result<Sample, DataError> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        if self.fail_at_5 && index == 5 {
            return Err(DataError::InvalidArgument {
                path: "s5.png".into(),
                what: "test",
                expected: "a readable file".into(),
                found: "sample 5 is broken".into(),
            });
        }
        let data = synth::bytes(4 * 40 * 48, index as u64).into_iter().map(f32::from).collect();
        let image = MultiChannelImage::new(data, 4, 40, 48, SampleType::U8)?;
        Ok(Sample { image, target: Target::Class(index % 3), index, image_index: index, channel: None })
    }
    fn channel_count(&self, _index: usize) -> Option<usize> {
        Some(4)
    }
}

fn small_aug() -> CellAugmentation {
    CellAugmentation {
        global: CropGroup { count: 2, size: 32, scale: (0.4, 1.0) },
        local: CropGroup { count: 3, size: 16, scale: (0.05, 0.4) },
        ..Default::default()
    }
}

fn config(threads: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size: 4,
        seed: 7,
        num_threads: threads,
        masking: Some(IbotMasking::for_crops(32, 8).unwrap()),
        ..LoaderConfig::default()
    }
}

fn flat(t: &candle_core::Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn same_batches_for_any_thread_count_and_after_resume() {
    let one = Loader::new(Cells::new(10), small_aug(), config(1), Device::Cpu).unwrap();
    let four = Loader::new(Cells::new(10), small_aug(), config(4), Device::Cpu).unwrap();
    assert_eq!(one.batches_per_epoch(), 2);
    for epoch in [0, 3] {
        let a: Vec<_> = one.epoch(epoch).collect::<Result<_, _>>().unwrap();
        let b: Vec<_> = four.epoch(epoch).collect::<Result<_, _>>().unwrap();
        assert_eq!(a.len(), 2);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.samples, y.samples);
            assert_eq!(flat(&x.global), flat(&y.global));
            assert_eq!(flat(x.local.as_ref().unwrap()), flat(y.local.as_ref().unwrap()));
            assert_eq!(x.masks, y.masks);
        }
        // Resume from the second batch's cursor: identical batch.
        let resumed = four.iter_from(a[0].next).next().unwrap().unwrap();
        assert_eq!(resumed.cursor, Cursor { epoch, position: 4 });
        assert_eq!(flat(&resumed.global), flat(&a[1].global));
        assert_eq!(resumed.masks, a[1].masks);
        let direct = one.batch_at(a[1].cursor).unwrap().unwrap();
        assert_eq!(flat(&direct.local.unwrap()), flat(a[1].local.as_ref().unwrap()));
    }
    // Different epochs: different order and crops; the order is a permutation.
    let (o0, o1) = (one.epoch_order(0), one.epoch_order(1));
    assert_ne!(o0, o1);
    let mut sorted = o0.clone();
    sorted.sort();
    assert_eq!(sorted, (0..10).collect::<Vec<_>>());
    // Another seed changes the batches.
    let other = Loader::new(Cells::new(10), small_aug(), LoaderConfig { seed: 8, ..config(2) }, Device::Cpu).unwrap();
    let x = one.batch_at(Cursor::default()).unwrap().unwrap();
    let y = other.batch_at(Cursor::default()).unwrap().unwrap();
    assert_ne!(flat(&x.global), flat(&y.global));
}

#[test]
fn multi_crop_batches_are_crop_major() {
    let loader =
        Loader::new(Cells::new(8), small_aug(), LoaderConfig { shuffle: false, ..config(2) }, Device::Cpu).unwrap();
    let batch = loader.batch_at(Cursor::default()).unwrap().unwrap();
    assert_eq!(batch.global.dims(), &[2 * 4, 4, 32, 32]);
    assert_eq!(batch.local.as_ref().unwrap().dims(), &[3 * 4, 4, 16, 16]);
    assert_eq!((batch.n_global, batch.n_local, batch.len()), (2, 3, 4));
    assert_eq!(batch.samples.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1, 2, 3]);
    // Rows [g·B, (g+1)·B) are crop g: row 1 is sample 1's first global crop, row 5 its second.
    let views = cellino_data::Transform::apply(
        &small_aug(),
        Cells::new(8).load(1).unwrap().image,
        &mut cellino_data::keyed_rng(7, 0, 1, cellino_data::RngStream::Sample),
    )
    .unwrap();
    let row = |k: usize| flat(&batch.global.get(k).unwrap());
    assert_eq!(row(1), views.global[0].data);
    assert_eq!(row(5), views.global[1].data);
    // Every crop is self-normalised per channel.
    let crop = &views.local[2];
    for plane in crop.channel_planes() {
        let mean: f32 = plane.iter().sum::<f32>() / plane.len() as f32;
        assert!(mean.abs() < 1e-4, "{mean}");
    }
    // Masks: one per global crop image; half of them masked.
    let masks = batch.masks.as_ref().unwrap();
    assert_eq!((masks.n_images, masks.grid), (8, (4, 4)));
    assert_eq!((0..8).filter(|&i| masks.count(i) > 0).count(), 4);
    assert_eq!(batch.class_tensor().unwrap().unwrap().to_vec1::<u32>().unwrap(), [0, 1, 2, 0]);
    assert!(batch.multi_hot_tensor().unwrap().is_none());
}

#[test]
fn bad_samples_stop_the_epoch_or_are_skipped_and_reported() {
    let strict = Loader::new(
        Cells { fail_at_5: true, ..Cells::new(12) },
        small_aug(),
        LoaderConfig { shuffle: false, ..config(3) },
        Device::Cpu,
    )
    .unwrap();
    let results: Vec<_> = strict.epoch(0).collect();
    assert_eq!(results.len(), 2, "the error ends the epoch");
    assert!(results[0].is_ok());
    let err = results[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("sample 5") && err.contains("sample 5 is broken"), "{err}");

    let lenient = Loader::new(
        Cells { fail_at_5: true, ..Cells::new(12) },
        small_aug(),
        LoaderConfig { shuffle: false, skip_bad_samples: true, ..config(3) },
        Device::Cpu,
    )
    .unwrap();
    let batches: Vec<_> = lenient.epoch(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[1].len(), 3);
    assert_eq!(batches[1].global.dims()[0], 2 * 3);
    assert_eq!(batches[1].skipped.len(), 1);
    assert_eq!(batches[1].skipped[0].index, 5);
    assert_eq!(lenient.skipped().len(), 1);
    assert!(lenient.skipped()[0].error.contains("broken"));
}

#[test]
fn bag_of_channels_epoch_sees_every_pair_once_with_eval_views() {
    let boc = BagOfChannels::new(Cells::new(6)).unwrap();
    let loader = Loader::new(
        boc,
        EvalTransform::center(24, 0),
        LoaderConfig { batch_size: 5, drop_last: false, seed: 3, num_threads: 2, ..LoaderConfig::default() },
        Device::Cpu,
    )
    .unwrap();
    assert_eq!(loader.batches_per_epoch(), 5); // 24 samples, last batch 4
    let mut seen = vec![0usize; 24];
    let mut per_channel = [0usize; 4];
    for batch in loader.epoch(0) {
        let batch = batch.unwrap();
        assert_eq!(&batch.global.dims()[1..], &[1, 24, 24]);
        assert!(batch.local.is_none());
        for s in &batch.samples {
            seen[s.image_index * 4 + s.channel.as_ref().unwrap().index] += 1;
            per_channel[s.channel.as_ref().unwrap().index] += 1;
        }
    }
    assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
    assert_eq!(per_channel, [6; 4]);
}

#[test]
fn loader_reads_a_manifest_and_rejects_bad_configs() {
    let dir = tempfile::tempdir().unwrap();
    for k in 0..4 {
        synth::png_rgba(&dir.path().join(format!("{k}.png")), 20, 20, k);
    }
    synth::write(&dir.path().join("m.csv"), "path,label\n0.png,a\n1.png,b\n2.png,a\n3.png,b\n");
    let ds = Dataset::from_manifest(dir.path().join("m.csv"), &ManifestOptions::default()).unwrap();
    let loader = Loader::new(
        ds,
        EvalTransform::probe_training(16, 18),
        LoaderConfig { batch_size: 2, ..Default::default() },
        Device::Cpu,
    )
    .unwrap();
    let batches: Vec<_> = loader.epoch(1).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].global.dims(), &[2, 4, 16, 16]);
    assert!(Loader::new(Cells::new(2), small_aug(), LoaderConfig { batch_size: 0, ..config(1) }, Device::Cpu).is_err());
    assert!(Loader::new(Cells::new(2), small_aug(), LoaderConfig { prefetch: 0, ..config(1) }, Device::Cpu).is_err());
    // An iterator dropped early stops its producer.
    let l = Loader::new(Cells::new(40), small_aug(), LoaderConfig { prefetch: 1, ..config(2) }, Device::Cpu).unwrap();
    let mut it = l.epoch(0);
    assert!(it.next().unwrap().is_ok());
    drop(it);
    assert!(l.source().loads.load(Ordering::Relaxed) < 40);
}

//! Gradient accumulation (`train.grad_accumulation_steps`) and the augmentation switches
//! (`train.cell_augmentation`, `train.protein_channel`).

mod common;

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use cellino_data::{Batch, MultiChannelImage, SampleType, Transform};
use cellino_ssl::{MicroBatch, SslConfig, SslTrainer, augmentation};
use common::{tiny_config, tiny_loader};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The first `n` batches of epoch 0 of the tiny loader.
fn batches(config: &SslConfig, n: usize) -> Vec<Batch> {
    tiny_loader(config, 8 * n).epoch(0).take(n).map(|b| b.unwrap()).collect()
}

fn max_abs(t: &Tensor) -> f32 {
    t.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

/// max |a − b| / max |b| over one tensor.
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    max_abs(&(a - b).unwrap()) / max_abs(b).max(1e-30)
}

fn mean_of(g0: &BTreeMap<String, Tensor>, g1: &BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    assert_eq!(g0.keys().collect::<Vec<_>>(), g1.keys().collect::<Vec<_>>());
    g0.iter().map(|(k, a)| (k.clone(), ((a + &g1[k]).unwrap() * 0.5).unwrap())).collect()
}

// Sinkhorn centering is stateless and drop path is off, so a micro-batch's gradient does not
// depend on whether it is computed inside an accumulation or on its own.
const EXACT: [&str; 4] =
    ["train.centering=sinkhorn_knopp", "student.drop_path_rate=0", "optim.warmup_epochs=0", "train.seed=7"];

#[test]
fn accumulated_gradient_is_the_mean_of_the_micro_batch_gradients() {
    let config = tiny_config(&[&EXACT[..], &["train.grad_accumulation_steps=2"]].concat());
    let bs = batches(&config, 2);
    let mut t = SslTrainer::new(config, &Device::Cpu).unwrap();
    let (acc, m) = t.accumulate_gradients(&[MicroBatch::from(&bs[0]), MicroBatch::from(&bs[1])], "none").unwrap();
    let (g0, m0) = t.accumulate_gradients(&[MicroBatch::from(&bs[0])], "none").unwrap();
    let (g1, m1) = t.accumulate_gradients(&[MicroBatch::from(&bs[1])], "none").unwrap();
    assert_eq!(t.iteration, 0, "accumulating gradients must not step");
    let mean = mean_of(&g0, &g1);
    assert_eq!(acc.keys().collect::<Vec<_>>(), mean.keys().collect::<Vec<_>>());
    assert_eq!(acc.len(), t.student_tensors().len(), "every student parameter gets a gradient");
    let (mut worst, mut spread) = (0f32, 0f32);
    for (k, a) in &acc {
        worst = worst.max(rel_err(a, &mean[k]));
        spread = spread.max(rel_err(&g0[k], &g1[k]));
    }
    eprintln!("accumulated vs mean gradient: max rel err {worst:.2e} (micro-batches differ by {spread:.2e})");
    assert!(worst < 2e-6, "accumulated gradient differs from the mean: {worst}");
    // The two micro-batches really differ (so the sum without the 1/k scale would fail).
    assert!(spread > 1e-2, "micro-batch gradients are too similar for the test to mean anything");
    assert!((m.total_loss - (m0.total_loss + m1.total_loss) / 2.0).abs() < 1e-6 * m.total_loss.abs());
    assert_eq!(m.masked_patches, m0.masked_patches + m1.masked_patches);
}

#[test]
fn accumulated_step_equals_one_update_with_the_mean_gradient() {
    let config = tiny_config(&[&EXACT[..], &["train.grad_accumulation_steps=2"]].concat());
    let bs = batches(&config, 2);
    // k = 2 through the loader-facing step.
    let mut a = SslTrainer::new(config.clone(), &Device::Cpu).unwrap();
    let before = a.student_tensors().into_iter().map(|(k, v)| (k, v.copy().unwrap())).collect::<BTreeMap<_, _>>();
    let ma = a.step_batches(&bs, "none").unwrap();
    assert_eq!(a.iteration, 1, "k micro-batches are one iteration");
    // Reference: the two gradients computed separately, averaged by hand, one update.
    let mut b = SslTrainer::new(config, &Device::Cpu).unwrap();
    let (g0, _) = b.accumulate_gradients(&[MicroBatch::from(&bs[0])], "none").unwrap();
    let (g1, _) = b.accumulate_gradients(&[MicroBatch::from(&bs[1])], "none").unwrap();
    let (nb, nh) = b.apply_gradients(&mean_of(&g0, &g1)).unwrap();
    assert!((ma.grad_norm_backbone - nb).abs() < 1e-5 * nb && (ma.grad_norm_head - nh).abs() < 1e-5 * nh);
    let mut worst = 0f32;
    for (what, ta, tb) in [
        ("student", a.student_tensors(), b.student_tensors()),
        ("teacher", a.teacher_tensors().clone(), b.teacher_tensors().clone()),
    ] {
        for (k, x) in &ta {
            let e = rel_err(x, &tb[k]);
            assert!(e < 1e-5, "{what} {k}: {e}");
            worst = worst.max(e);
        }
    }
    eprintln!("weights after k=2 step vs manual mean-gradient update: max rel err {worst:.2e}");
    // And the update moved the weights (AdamW's first step is ±lr per element).
    let moved = before.iter().map(|(k, x)| max_abs(&(x - &a.student_tensors()[k]).unwrap())).fold(0f32, f32::max);
    assert!(moved > 1e-5, "the step did not change the weights");
}

#[test]
fn accumulation_counts_one_iteration_per_k_batches_and_reports_the_mean_loss() {
    let config = tiny_config(&["train.grad_accumulation_steps=3"]);
    let loader = tiny_loader(&config, 16); // 2 batches per epoch: iterations straddle epochs
    let mut t = SslTrainer::new(config, &Device::Cpu).unwrap();
    let mut seen = vec![];
    let c = cellino_ssl::train(&mut t, &loader, cellino_data::Cursor::default(), 2, None, |m| seen.push(m.clone()))
        .unwrap();
    assert_eq!(t.iteration, 2);
    assert_eq!(seen.iter().map(|m| m.iteration).collect::<Vec<_>>(), vec![0, 1]);
    // 6 batches of 2 per epoch: the cursor ends after epoch 2's last batch.
    assert_eq!((c.epoch, c.position), (2, 16));
    // The schedules advance per iteration, not per micro-batch.
    assert_eq!(seen[1].lr, t.schedules().at(1).lr);
    assert!(seen.iter().all(|m| m.total_loss.is_finite() && m.images_per_second > 0.0));
}

#[test]
fn zero_accumulation_steps_are_refused_and_the_lr_uses_the_effective_batch() {
    let bad = tiny_config(&["train.grad_accumulation_steps=0"]);
    let msg = bad.validate().unwrap_err().to_string();
    assert!(msg.contains("train.grad_accumulation_steps must be at least 1"), "{msg}");
    assert!(SslTrainer::new(bad, &Device::Cpu).is_err());
    // sqrt_wrt_1024 on batch 16 × 4 accumulation steps = the lr of batch 64.
    let c = SslConfig::default()
        .with_overrides(&["train.batch_size_per_gpu=16", "train.grad_accumulation_steps=4", "optim.base_lr=0.004"])
        .unwrap();
    assert_eq!(c.effective_batch_size(), 64);
    assert!((c.scaled_lr().unwrap() - 0.004 * (64.0f64 / 1024.0).sqrt()).abs() < 1e-15);
}

fn image(channels: usize, seed: u64) -> MultiChannelImage {
    let mut rng = StdRng::seed_from_u64(seed);
    let data = (0..channels * 40 * 40).map(|_| rand::Rng::random_range(&mut rng, 0.0..255.0f32)).collect();
    MultiChannelImage::new(data, channels, 40, 40, SampleType::U8).unwrap()
}

/// Whether both augmentations give the same crops from the same RNG seed.
fn views_equal(
    aug_a: &cellino_data::CellAugmentation,
    aug_b: &cellino_data::CellAugmentation,
    img: &MultiChannelImage,
    seed: u64,
) -> bool {
    let va = aug_a.apply(img.clone(), &mut StdRng::seed_from_u64(seed)).unwrap();
    let vb = aug_b.apply(img.clone(), &mut StdRng::seed_from_u64(seed)).unwrap();
    va.global.iter().chain(&va.local).zip(vb.global.iter().chain(&vb.local)).all(|(x, y)| x.data == y.data)
}

#[test]
fn cell_augmentation_switches_the_channel_ops_and_protein_channel_is_used() {
    let four = ["student.in_chans=4", "teacher.in_chans=4", "train.protein_channel=3"];
    let on = augmentation(&tiny_config(&[&four[..], &["train.cell_augmentation=true"]].concat()));
    let off = augmentation(&tiny_config(&[&four[..], &["train.cell_augmentation=false"]].concat()));
    assert_eq!((on.remove_channel.protected, on.protein_contrast.protein), (3, 3));
    assert_eq!((on.remove_channel.p, on.protein_contrast.p), (0.2, 0.2));
    assert_eq!((off.remove_channel.p, off.protein_contrast.p), (0.0, 0.0));
    // Everything else (crops, flips, jitter, normalisation) is the same.
    let mut off_with_p = off;
    off_with_p.remove_channel.p = 0.2;
    off_with_p.protein_contrast.p = 0.2;
    assert_eq!(off_with_p, on);
    // 4 channels: some seeds draw a channel op under `true` (p 0.2 each per crop, 6 crops).
    assert!((0..10).any(|s| !views_equal(&on, &off, &image(4, s), s)), "the channel ops never changed a crop");
    // 1 channel (Bag of Channels): the channel ops never fire (and draw nothing), so the crops
    // are bit-identical whatever `cell_augmentation` says.
    for s in 0..5 {
        assert!(views_equal(&on, &off, &image(1, s), s));
    }
}

#[test]
fn protein_channel_outside_the_model_is_refused_except_for_bag_of_channels() {
    let c = tiny_config(&["student.in_chans=4", "teacher.in_chans=4", "train.protein_channel=4"]);
    let msg = c.validate().unwrap_err().to_string();
    assert!(msg.contains("train.protein_channel 4 is not a channel of a student.in_chans 4 model"), "{msg}");
    tiny_config(&["student.in_chans=4", "teacher.in_chans=4", "train.protein_channel=3"]).validate().unwrap();
    // A 1-channel model sees one channel at a time: the index is kept for the record.
    tiny_config(&["train.protein_channel=3"]).validate().unwrap();
    assert_eq!(SslConfig::default().train.protein_channel, 1);
}

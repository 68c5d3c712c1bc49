//! Statistics of the random augmentations with fixed seeds, and seed determinism.

use cellino_data::transform::{RandomBrightness, RandomContrast, RandomContrastProtein, RandomFlip, RandomResizedCrop};
use cellino_data::{
    CellAugmentation, CropGroup, ImageOp, MultiChannelImage, RngStream, SampleType, Transform, keyed_rng,
};

const N: u64 = 20_000;

fn image(c: usize, h: usize, w: usize, data: Vec<f32>) -> MultiChannelImage {
    MultiChannelImage::new(data, c, h, w, SampleType::F32).unwrap()
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (m, (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt())
}

/// `max(N(1, 0.2), 0.5)`: mean ≈ 1.0001, std ≈ 0.1993, P(f = 0.5) = Φ(−2.5) ≈ 0.0062.
fn check_factor_law(factors: &[f64]) {
    let (m, s) = mean_std(factors);
    assert!((m - 1.0001).abs() < 0.005, "mean {m}");
    assert!((s - 0.1993).abs() < 0.005, "std {s}");
    let floor = factors.iter().filter(|&&f| (f - 0.5).abs() < 1e-6).count() as f64 / factors.len() as f64;
    assert!((0.003..0.0105).contains(&floor), "P(f = 0.5) = {floor}");
    assert!(factors.iter().all(|&f| f >= 0.5 - 1e-6));
}

#[test]
fn brightness_factor_law_per_channel() {
    let op = RandomBrightness::default();
    let mut factors = Vec::new();
    let mut same = 0;
    for i in 0..N / 2 {
        let mut rng = keyed_rng(1, 0, i, RngStream::Sample);
        // Two channels at 0.25: each gets its own factor f = out / 0.25 (no clamp below 4).
        let out = op.apply(image(2, 1, 1, vec![0.25, 0.25]), &mut rng).unwrap();
        factors.extend(out.data.iter().map(|&v| f64::from(v) / 0.25));
        same += usize::from(out.data[0] == out.data[1]);
    }
    check_factor_law(&factors);
    assert!(same < 100, "channels must draw independent factors");
    // Clamped to [0, 1].
    let mut rng = keyed_rng(1, 1, 0, RngStream::Sample);
    let out = op.apply(image(1, 1, 2, vec![0.99, 0.0]), &mut rng).unwrap();
    assert!(out.data.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn contrast_factor_law_around_the_channel_mean() {
    let op = RandomContrast::default();
    let mut factors = Vec::new();
    for i in 0..N {
        let mut rng = keyed_rng(2, 0, i, RngStream::Sample);
        // [0.2, 0.4], mean 0.3: out0 = f·0.2 + (1 − f)·0.3 = 0.3 − 0.1 f.
        let out = op.apply(image(1, 1, 2, vec![0.2, 0.4]), &mut rng).unwrap();
        factors.push((0.3 - f64::from(out.data[0])) / 0.1);
        assert!((f64::from(out.data[0] + out.data[1]) - 0.6).abs() < 1e-6, "the mean is kept");
    }
    check_factor_law(&factors);
}

#[test]
fn flip_probability() {
    for p in [0.5, 0.2] {
        let op = RandomFlip { p, ..RandomFlip::horizontal() };
        let flipped = (0..N)
            .filter(|&i| {
                let out = op.apply(image(1, 1, 2, vec![0.0, 1.0]), &mut keyed_rng(3, 0, i, RngStream::Sample)).unwrap();
                out.data[0] == 1.0
            })
            .count() as f64
            / N as f64;
        assert!((flipped - p).abs() < 0.012, "p {p}: {flipped}");
    }
}

#[test]
fn protein_contrast_probability_and_factor() {
    let op = RandomContrastProtein::default();
    let mut factors = Vec::new();
    for i in 0..N {
        let mut rng = keyed_rng(4, 0, i, RngStream::Sample);
        let out = op.apply(image(4, 1, 1, vec![0.5, 0.25, 0.1, 0.1]), &mut rng).unwrap();
        if out.data[1] != 0.25 {
            factors.push(f64::from(out.data[1]) / 0.25);
        }
    }
    let rate = factors.len() as f64 / N as f64;
    assert!((rate - 0.2).abs() < 0.012, "{rate}");
    // Factor U(0, 2) / max = U(0, 4) here: mean 2, std 4/√12.
    let (m, s) = mean_std(&factors);
    assert!((m - 2.0).abs() < 0.06 && (s - 4.0 / 12f64.sqrt()).abs() < 0.05, "{m} {s}");
}

#[test]
fn resized_crop_area_and_ratio_laws() {
    let op = RandomResizedCrop::new(8, (0.4, 1.0));
    let (mut areas, mut log_ratios) = (Vec::new(), Vec::new());
    for i in 0..N {
        let (_, _, h, w) = op.params(512, 512, &mut keyed_rng(5, 0, i, RngStream::Sample));
        areas.push((h * w) as f64 / (512.0 * 512.0));
        log_ratios.push((w as f64 / h as f64).ln());
    }
    // Accepted draws: area ~ U(0.4, 1) restricted to crops that fit; ratio log-uniform and symmetric.
    let (ma, _) = mean_std(&areas);
    assert!((0.6..0.72).contains(&ma), "{ma}");
    let (mr, sr) = mean_std(&log_ratios);
    assert!(mr.abs() < 0.01 && (0.12..0.18).contains(&sr), "{mr} {sr}");
    assert!(areas.iter().all(|&a| (0.39..=1.0).contains(&a)));
}

#[test]
fn multi_crop_same_seed_same_views_other_seed_other_views() {
    let aug = CellAugmentation {
        global: CropGroup { count: 2, size: 24, scale: (0.4, 1.0) },
        local: CropGroup { count: 8, size: 12, scale: (0.005, 0.4) },
        ..Default::default()
    };
    let data: Vec<f32> = (0..4 * 50 * 60).map(|v| ((v * 7919) % 256) as f32).collect();
    let im = MultiChannelImage::new(data, 4, 50, 60, SampleType::U8).unwrap();
    let run = |seed| aug.apply(im.clone(), &mut keyed_rng(seed, 0, 0, RngStream::Sample)).unwrap();
    let (a, b, c) = (run(9), run(9), run(10));
    assert_eq!(a, b);
    assert_ne!(a.global, c.global);
    assert_eq!((a.global.len(), a.local.len()), (2, 8));
    assert_eq!(a.local[7].shape(), (4, 12, 12));
    assert_ne!(a.global[0], a.global[1], "crops are drawn independently");
    // Defaults are the Cell-DINO configs.
    let d = CellAugmentation::default();
    assert_eq!((d.global.count, d.global.size, d.global.scale), (2, 224, (0.4, 1.0)));
    assert_eq!((d.local.count, d.local.size, d.local.scale), (8, 96, (0.005, 0.4)));
    // Bag of Channels: one channel, the channel augmentations are no-ops and nothing fails.
    let one = im.select_channels(&[1]).unwrap();
    let v = aug.apply(one, &mut keyed_rng(9, 0, 0, RngStream::Sample)).unwrap();
    assert_eq!(v.global[0].shape(), (1, 24, 24));
    // Bad configurations are errors, not panics.
    let bad = CellAugmentation { local: CropGroup { count: 1, size: 0, scale: (0.1, 0.2) }, ..aug };
    assert!(bad.apply(im, &mut keyed_rng(0, 0, 0, RngStream::Sample)).is_err());
}

//! Feature extraction on a tiny synthetic dataset with the random test backbones of
//! cellino-vit: shapes, row order, Bag-of-Channels blocks recovered from the sidecar, L2
//! norms, and files read back identically.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use cellino_data::{Dataset, EvalTransform, ManifestOptions, RngStream, Transform, keyed_rng};
use cellino_eval::{
    EmbeddingPaths, EvalError, ExtractConfig, ModelSource, Progress, SegmentKind, StoredLabels, Targets,
    extract_features, read_embeddings, write_embeddings,
};
use cellino_vit::{DinoVisionTransformer, PosEmbedInterpolation, bag_of_channels};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cellino-vit/tests/fixtures").join(name).join("model.safetensors")
}

fn model(name: &str, interpolation: PosEmbedInterpolation) -> DinoVisionTransformer {
    DinoVisionTransformer::load(fixture(name), None, Some(4), interpolation).expect("test backbone")
}

/// Five 4-channel PNGs of different sizes and contents (one smaller than the crop) and a
/// manifest listing them out of file-name order, with a label and a metadata column.
fn write_dataset(dir: &Path) -> PathBuf {
    let sizes = [(40u32, 36u32), (32, 32), (28, 44), (48, 40), (36, 36)];
    for (i, &(w, h)) in sizes.iter().enumerate() {
        let pixels: Vec<u8> =
            (0..w * h * 4).map(|v| ((v * (7 + 3 * i as u32) + v / (w * 4) * 11 + i as u32 * 29) % 251) as u8).collect();
        image::RgbaImage::from_raw(w, h, pixels).expect("image").save(dir.join(format!("img{i}.png"))).expect("png");
    }
    let manifest = dir.join("cells.csv");
    std::fs::write(
        &manifest,
        "path,label,plate\nimg3.png,nucleoli,P2\nimg0.png,cytosol,P1\nimg4.png,cytosol,P3\nimg1.png,nucleoli,P1\nimg2.png,cytosol,P2\n",
    )
    .expect("manifest");
    manifest
}

fn dataset(dir: &Path) -> Dataset {
    Dataset::from_manifest(write_dataset(dir), &ManifestOptions::default()).expect("manifest").with_channel_names([
        "microtubules",
        "protein",
        "nucleus",
        "er",
    ])
}

/// The transformed image of record `i` as a (1, C, H, W) tensor, computed without the loader.
fn input(ds: &Dataset, i: usize, transform: &EvalTransform) -> Tensor {
    let image = ds.load(i).expect("load").image;
    let view = Transform::apply(transform, image, &mut keyed_rng(0, 0, i as u64, RngStream::Sample))
        .expect("transform")
        .global
        .remove(0);
    Tensor::from_vec(view.data, (1, view.channels, view.height, view.width), &Device::Cpu).expect("tensor")
}

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol * (1.0 + y.abs()))
}

#[test]
fn bag_of_channels_extraction_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dataset(dir.path());
    let m = model("boc_p16_offset", PosEmbedInterpolation::DINOV2);
    let transform = EvalTransform::center(32, 0);
    let config = ExtractConfig {
        n_last_blocks: 2,
        avgpool: true,
        bag_of_channels: true,
        transform,
        batch_size: 2,
        num_threads: 2,
        ..ExtractConfig::default()
    };
    let mut calls = Vec::new();
    let mut cb = |p: Progress| calls.push(p);
    let x = extract_features(&m, &ds, &config, Some(&mut cb)).expect("extract");
    // n·C·D + C·D = 2·4·96 + 4·96.
    assert_eq!((x.n_rows, x.layout.dim, x.features.len()), (5, 1152, 5 * 1152));
    assert_eq!(calls.last(), Some(&Progress { done: 5, total: 5 }));
    assert_eq!(calls.len(), 3);
    assert_eq!(x.channel_names, ["microtubules", "protein", "nucleus", "er"]);

    let out = dir.path().join("emb.npy");
    let sidecar = write_embeddings(
        &out,
        &x,
        m.config(),
        ModelSource { checkpoint: Some(&fixture("boc_p16_offset")), arch: None },
    )
    .expect("write");
    let paths = EmbeddingPaths::for_features(&out).unwrap();
    assert!(paths.metadata.is_file() && paths.sidecar.is_file());
    let ck = sidecar.model.checkpoint.as_ref().expect("checkpoint recorded");
    assert_eq!(ck.sha256.len(), 64);
    assert!(ck.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    // No temporaries left behind.
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");

    // Read back: identical features, metadata in manifest order, labels.
    let set = read_embeddings(&out).expect("read");
    assert_eq!(set.features, x.features);
    assert_eq!((set.n_rows, set.dim), (5, 1152));
    assert_eq!(set.sidecar, sidecar);
    assert_eq!(set.column("plate").unwrap(), ["P2", "P1", "P3", "P1", "P2"]);
    assert!(set.sources[0].ends_with("img3.png") && set.sources[4].ends_with("img2.png"));
    assert_eq!(
        set.labels,
        StoredLabels::Multiclass {
            classes: vec!["cytosol".into(), "nucleoli".into()],
            labels: vec![1, 0, 0, 1, 0],
            missing: vec![]
        }
    );
    assert_eq!(set.split().unwrap().targets(), Targets::multiclass(&[1, 0, 0, 1, 0], 2));
    assert_eq!(set.sidecar.transform.crop_size, 32);
    assert_eq!(set.sidecar.transform.name, "self_norm_center_crop");

    // Every row = the manifest's image, and the sidecar's BoC blocks are the per-channel CLS
    // (last block) and patch means computed directly with `bag_of_channels`.
    let layout = &set.sidecar.layout;
    let last = layout.depth - 1;
    assert_eq!(layout.segments.len(), 2 * 4 + 4);
    for i in 0..5 {
        let direct = bag_of_channels(&m, &input(&ds, i, &transform)).expect("boc");
        let cls = direct.cls.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let avg = direct.avgpool.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for c in 0..4 {
            let r = layout.segment(SegmentKind::Cls, last, Some(c)).expect("segment");
            assert!(close(&set.row(i)[r], &cls[c * 96..(c + 1) * 96], 1e-4), "row {i} channel {c} CLS");
            let r = layout.segment(SegmentKind::Avgpool, last, Some(c)).expect("segment");
            assert!(close(&set.row(i)[r], &avg[c * 96..(c + 1) * 96], 1e-4), "row {i} channel {c} avgpool");
        }
        // The earlier block's CLS: get_intermediate_layers on the single-channel batch.
        let x1 = input(&ds, i, &transform);
        let (_, c, h, w) = x1.dims4().unwrap();
        let inter = m.get_intermediate_layers(&x1.reshape((c, 1, h, w)).unwrap(), 2, true).unwrap();
        let first = inter[0].1.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let r = layout.segment(SegmentKind::Cls, last - 1, Some(2)).unwrap();
        assert!(close(&set.row(i)[r], &first[2 * 96..3 * 96], 1e-4), "row {i} block {}", last - 1);
        assert_eq!(layout.segments[2].channel_name.as_deref(), Some("nucleus"));
    }
}

#[test]
fn l2_normalised_multichannel_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dataset(dir.path());
    let m = model("reg4_c4", PosEmbedInterpolation::REGISTERS);
    let transform = EvalTransform::center(32, 0);
    let base = ExtractConfig { n_last_blocks: 4, avgpool: true, transform, batch_size: 3, ..ExtractConfig::default() };
    let raw = extract_features(&m, &ds, &base, None).expect("extract");
    assert_eq!(raw.layout.dim, 5 * 96);
    assert!(raw.layout.segments.iter().all(|s| s.channel.is_none()));
    let normed =
        extract_features(&m, &ds, &ExtractConfig { l2_normalize: true, ..base.clone() }, None).expect("extract");
    assert!(normed.layout.l2_normalized);
    for i in 0..5 {
        let norm = raw.row(i).iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        let n2 = normed.row(i).iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
        assert!((n2 - 1.0).abs() < 1e-5, "row {i}: squared norm {n2}");
        let scaled: Vec<f32> = raw.row(i).iter().map(|&v| (f64::from(v) / norm) as f32).collect();
        assert!(close(normed.row(i), &scaled, 1e-5));
        // Last block CLS = forward_features CLS.
        let cls = m.forward(&input(&ds, i, &transform)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let r = raw.layout.segment(SegmentKind::Cls, 3, None).unwrap();
        assert!(close(&raw.row(i)[r], &cls, 1e-4), "row {i}");
    }
    let out = dir.path().join("knn.npy");
    write_embeddings(&out, &normed, m.config(), ModelSource::default()).expect("write");
    let set = read_embeddings(&out).expect("read");
    assert_eq!(set.features, normed.features);
    assert!(set.sidecar.model.checkpoint.is_none() && set.sidecar.layout.l2_normalized);
}

#[test]
fn bad_configurations_are_errors_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ds = dataset(dir.path());
    let multi = model("reg4_c4", PosEmbedInterpolation::REGISTERS);
    let single = model("boc_p16_offset", PosEmbedInterpolation::DINOV2);
    let t = EvalTransform::center(32, 0);
    let boc = ExtractConfig { bag_of_channels: true, transform: t, ..ExtractConfig::default() };
    assert!(matches!(extract_features(&multi, &ds, &boc, None), Err(EvalError::InvalidConfig { .. })));
    let plain = ExtractConfig { transform: t, ..ExtractConfig::default() };
    assert!(matches!(extract_features(&single, &ds, &plain, None), Err(EvalError::Mismatch { .. })));
    let deep = ExtractConfig { n_last_blocks: 5, ..plain.clone() };
    assert!(matches!(extract_features(&multi, &ds, &deep, None), Err(EvalError::InvalidConfig { .. })));
    let zero = ExtractConfig { batch_size: 0, ..plain.clone() };
    assert!(extract_features(&multi, &ds, &zero, None).is_err());

    // A missing image: an error naming it.
    std::fs::remove_file(dir.path().join("img1.png")).unwrap();
    let err = extract_features(&multi, &ds, &plain, None).unwrap_err();
    assert!(matches!(&err, EvalError::Data(m) if m.contains("img1.png")), "{err}");

    // Output names: must be .npy; a failed hash (missing checkpoint) writes nothing.
    let x = extract_features(&multi, &Dataset { records: ds.records[..1].to_vec(), ..ds.clone() }, &plain, None)
        .expect("one record");
    assert!(write_embeddings(dir.path().join("emb.csv"), &x, multi.config(), ModelSource::default()).is_err());
    let out = dir.path().join("never.npy");
    let missing = dir.path().join("nope.safetensors");
    let source = ModelSource { checkpoint: Some(&missing), arch: None };
    assert!(matches!(write_embeddings(&out, &x, multi.config(), source), Err(EvalError::Io { .. })));
    assert!(!out.exists() && !out.with_extension("json").exists() && !out.with_extension("csv").exists());
    // Reading a set whose table disagrees with its features is an error.
    write_embeddings(&out, &x, multi.config(), ModelSource::default()).expect("write");
    std::fs::write(out.with_extension("csv"), "row_index,source_path\n0,x\n").unwrap();
    assert!(matches!(read_embeddings(&out), Err(EvalError::Format { .. })));
}

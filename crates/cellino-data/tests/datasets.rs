//! Datasets on small synthetic layouts written to temporary folders: CSV manifests, folders,
//! CHAMMI, HPA-FoV, HPA single cell, the dataset-string grammar, channel selection, BoC.

mod synth;

use std::path::Path;

use cellino_data::{
    BagOfChannels, ChammiMetadata, ChammiSplit, ChammiSubset, ChannelAdapter, ChannelRef, DataError, Dataset,
    FolderOptions, HPA_FOV_LOCALIZATIONS, HPA_SC_CELL_LINES, HPA_SC_LOCALIZATIONS, HpaFovSplit, HpaMode, HpaOneSplit,
    ImageColumns, LabelColumns, LabelSchema, ManifestOptions, SampleSource, SampleType, Target, chammi_loo_groups,
    open_dataset,
};
use synth::{npy_f32, png_gray, png_rgba, tiff_gray, write};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn manifest_single_label_metadata_and_relative_paths() {
    let dir = tmp();
    let root = dir.path();
    png_rgba(&root.join("img/a.png"), 8, 6, 1);
    png_rgba(&root.join("img/b.png"), 8, 6, 2);
    write(&root.join("m.csv"), "path,label,plate,well\nimg/a.png,nucleoli,P1,A01\nimg/b.png,cytosol,P2,B02\n");
    let ds = Dataset::from_manifest(root.join("m.csv"), &ManifestOptions::default()).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.labels, LabelSchema::SingleLabel { classes: vec!["cytosol".into(), "nucleoli".into()] });
    assert_eq!(ds.metadata_columns, ["plate", "well"]);
    assert_eq!(ds.metadata(1, "well"), Some("B02"));
    let s = ds.load(0).unwrap();
    assert_eq!((s.image.shape(), s.target.clone()), ((4, 6, 8), Target::Class(1)));
    assert_eq!(s.image.sample_type, SampleType::U8);

    // Integer labels keep their values; a fixed class list rejects others, naming file and line.
    write(&root.join("n.csv"), "file,label\nimg/a.png,3\nimg/b.png,0\n");
    let ds = Dataset::from_manifest(root.join("n.csv"), &ManifestOptions::default()).unwrap();
    assert_eq!(ds.records[0].target, Target::Class(3));
    assert_eq!(ds.labels.names().len(), 4);
    let opts = ManifestOptions {
        labels: LabelColumns::Single { column: "label".into(), classes: Some(vec!["0".into(), "1".into()]) },
        ..Default::default()
    };
    let err = Dataset::from_manifest(root.join("n.csv"), &opts).unwrap_err();
    assert!(matches!(err, DataError::UnknownLabel { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("n.csv:2"), "{err}");
}

#[test]
fn manifest_multi_label_and_per_channel_columns() {
    let dir = tmp();
    let root = dir.path();
    for (k, ch) in ["dna", "rna", "mito"].iter().enumerate() {
        png_gray(&root.join(format!("s1_{ch}.png")), 5, 4, k as u64);
        png_gray(&root.join(format!("s2_{ch}.png")), 5, 4, 10 + k as u64);
    }
    // Auto: path_<channel> columns; `labels` column separated by ';'.
    write(
        &root.join("m.csv"),
        "path_DNA,path_RNA,path_Mito,labels,site\ns1_dna.png,s1_rna.png,s1_mito.png,golgi;er,1\ns2_dna.png,s2_rna.png,s2_mito.png,,2\n",
    );
    let ds = Dataset::from_manifest(root.join("m.csv"), &ManifestOptions::default()).unwrap();
    assert_eq!(ds.channel_names.as_deref(), Some(&["DNA".to_string(), "RNA".into(), "Mito".into()][..]));
    assert_eq!(ds.labels, LabelSchema::MultiLabel { labels: vec!["er".into(), "golgi".into()] });
    assert_eq!(ds.records[0].target, Target::MultiHot(vec![1, 1]));
    assert_eq!(ds.records[1].target, Target::MultiHot(vec![0, 0]));
    let s = ds.load(0).unwrap();
    assert_eq!(s.image.shape(), (3, 4, 5));
    assert_eq!(s.image.channel_names[2].as_deref(), Some("Mito"));
    // Select by name (case-insensitive) and by index.
    let sel = ds.clone().select_channels(vec!["mito".into(), ChannelRef::Index(0)]);
    let s2 = sel.load(0).unwrap();
    assert_eq!(s2.image.channel(0).unwrap(), s.image.channel(2).unwrap());
    let bad = ds.clone().select_channels(vec!["actin".into()]);
    let err = bad.load(0).unwrap_err().to_string();
    assert!(err.contains("\"actin\"") && err.contains("s1_dna.png") && err.contains("m.csv line 2"), "{err}");

    // Multi-label as one 0/1 column per label.
    write(&root.join("c.csv"), "image,golgi,er\ns1_dna.png,1,0\ns2_dna.png,true,yes\n");
    let opts =
        ManifestOptions { labels: LabelColumns::Columns(vec!["golgi".into(), "er".into()]), ..Default::default() };
    let ds = Dataset::from_manifest(root.join("c.csv"), &opts).unwrap();
    assert_eq!(ds.records[1].target, Target::MultiHot(vec![1, 1]));
    write(&root.join("d.csv"), "image,golgi\ns1_dna.png,maybe\n");
    let opts = ManifestOptions { labels: LabelColumns::Columns(vec!["golgi".into()]), ..Default::default() };
    let err = Dataset::from_manifest(root.join("d.csv"), &opts).unwrap_err();
    assert!(matches!(err, DataError::Csv { line: 2, .. }), "{err}");
    // Explicit channel columns get their column names.
    let opts = ManifestOptions {
        image: ImageColumns::Channels(vec!["path_RNA".into(), "path_DNA".into()]),
        labels: LabelColumns::None,
        ..Default::default()
    };
    let ds = Dataset::from_manifest(root.join("m.csv"), &opts).unwrap();
    assert_eq!(ds.channels, Some(2));
    assert!(ds.metadata_columns.contains(&"labels".to_string()));
}

#[test]
fn manifest_bad_input_is_an_error_naming_file_and_line() {
    let dir = tmp();
    let root = dir.path();
    png_gray(&root.join("one.png"), 4, 4, 0);
    png_rgba(&root.join("four.png"), 4, 4, 0);
    npy_f32(&root.join("nan.npy"), (1, 2, 2), &[0.0, f32::NAN, 1.0, f32::INFINITY]);
    write(&root.join("m.csv"), "path\none.png\nmissing.png\nfour.png\nnan.npy\n");
    let ds = Dataset::from_manifest(root.join("m.csv"), &ManifestOptions::default()).unwrap();
    assert_eq!(ds.missing_files().len(), 1);
    let err = ds.load(1).unwrap_err();
    assert!(matches!(&err, DataError::Sample { index: 1, .. }));
    assert!(err.to_string().contains("m.csv line 3") && err.to_string().contains("missing.png"), "{err}");
    assert!(err.path().ends_with("missing.png"));
    let err = ds.load(3).unwrap_err().to_string();
    assert!(err.contains("2 non-finite") && err.contains("nan.npy"), "{err}");
    // A declared channel count catches rows that differ.
    let one = ds.clone().with_channel_names(["x"]);
    assert!(one.load(0).is_ok());
    let err = one.load(2).unwrap_err().to_string();
    assert!(err.contains("four.png") && err.contains("1 channels (one per name)"), "{err}");
    assert!(ds.load(99).is_err());
    // Through Bag of Channels the error names the sample, its channel and the manifest line.
    let boc = BagOfChannels::with_channel_count(ds.clone(), 1).unwrap();
    let err = boc.load(1).unwrap_err().to_string();
    assert!(err.starts_with("sample 1 (channel 0 of ") && err.contains("m.csv line 3"), "{err}");
    // Manifest-level errors.
    write(&root.join("e.csv"), "name\nx\n");
    assert!(
        Dataset::from_manifest(root.join("e.csv"), &ManifestOptions::default())
            .unwrap_err()
            .to_string()
            .contains("no image column")
    );
    write(&root.join("f.csv"), "path\n\"\"\n");
    assert!(matches!(
        Dataset::from_manifest(root.join("f.csv"), &ManifestOptions::default()),
        Err(DataError::Csv { line: 2, .. })
    ));
    write(&root.join("g.csv"), "path,x\none.png\n");
    assert!(matches!(
        Dataset::from_manifest(root.join("g.csv"), &ManifestOptions::default()),
        Err(DataError::Csv { .. })
    ));
    assert!(matches!(
        Dataset::from_manifest(root.join("none.csv"), &ManifestOptions::default()),
        Err(DataError::Io { .. })
    ));
}

#[test]
fn folder_with_and_without_classes() {
    let dir = tmp();
    let root = dir.path();
    png_gray(&root.join("nucleoli/a.png"), 4, 4, 1);
    png_gray(&root.join("nucleoli/deep/b.PNG"), 4, 4, 2);
    tiff_gray(&root.join("cytosol/c.tif"), 4, 4, 3);
    write(&root.join("cytosol/notes.txt"), "x");
    let ds =
        Dataset::from_folder(root, &FolderOptions { classes_from_subfolders: true, ..Default::default() }).unwrap();
    assert_eq!(ds.labels.names(), ["cytosol", "nucleoli"]);
    let targets: Vec<_> = ds.records.iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, [Target::Class(0), Target::Class(1), Target::Class(1)]);
    assert_eq!(ds.load(0).unwrap().image.shape(), (1, 4, 4));
    let flat = Dataset::from_folder(root, &FolderOptions::default()).unwrap();
    assert_eq!(flat.len(), 3);
    assert_eq!(flat.records[0].target, Target::None);
    assert!(Dataset::from_folder(root.join("nope"), &FolderOptions::default()).is_err());
    // A folder string opens as a folder.
    assert_eq!(open_dataset(root.to_str().unwrap()).unwrap().dataset.len(), 3);
}

/// A CHAMMI tree: 2 WTC (3 × 4 px tiled TIFF), 3 HPA (4 × 5 px PNG), 2 CP (5 × 6 px PNG).
fn chammi_tree(root: &Path) {
    tiff_gray(&root.join("Allen/crops/w1.ome.tiff"), 12, 4, 1);
    tiff_gray(&root.join("Allen/crops/w2.ome.tiff"), 12, 4, 2);
    for k in 0..3 {
        png_gray(&root.join(format!("HPA/crops/h{k}.png")), 20, 5, 10 + k);
    }
    png_gray(&root.join("CP/crops/c1.png"), 30, 6, 20);
    png_gray(&root.join("CP/crops/c2.png"), 30, 6, 21);
    write(
        &root.join("morphem70k_v2.csv"),
        "file_path,ID,train_test_split,label\n\
         Allen/crops/w1.ome.tiff,1,Train,M3\n\
         Allen/crops/w2.ome.tiff,2,Task_one,M0\n\
         HPA/crops/h0.png,3,Train,microtubules\n\
         HPA/crops/h1.png,4,Task_three,cytosol\n\
         HPA/crops/h2.png,5,Task_three,nucleoplasm\n\
         CP/crops/c1.png,6,Train,DMSO\n\
         CP/crops/c2.png,7,Task_four,BRD-K77947974\n",
    );
    write(
        &root.join("HPA/enriched_meta.csv"),
        "file_path,train_test_split,label,cell_type\n\
         HPA/crops/h0.png,Train,microtubules,U2OS\n\
         HPA/crops/h1.png,Task_three,cytosol,HeLa\n\
         HPA/crops/h2.png,Task_three,nucleoplasm,A549\n",
    );
}

#[test]
fn chammi_subsets_splits_and_loo() {
    let dir = tmp();
    let root = dir.path();
    chammi_tree(root);
    let wtc = Dataset::chammi(root, ChammiSubset::Wtc, ChammiSplit::Train, ChammiMetadata::Combined).unwrap();
    assert_eq!(wtc.len(), 1);
    assert_eq!(wtc.records[0].target, Target::Class(2));
    assert_eq!(wtc.load(0).unwrap().image.shape(), (3, 4, 4));
    let hpa = Dataset::chammi(root, ChammiSubset::Hpa, ChammiSplit::TaskThree, ChammiMetadata::Combined).unwrap();
    assert_eq!(hpa.records.iter().map(|r| r.target.clone()).collect::<Vec<_>>(), [Target::Class(4), Target::Class(6)]);
    assert_eq!(hpa.load(1).unwrap().image.shape(), (4, 5, 5));
    assert_eq!(hpa.metadata(0, "ID"), Some("4"));
    let cp = Dataset::chammi(root, ChammiSubset::Cp, ChammiSplit::TaskFour, ChammiMetadata::Combined).unwrap();
    assert_eq!((cp.len(), cp.records[0].target.clone()), (1, Target::Class(6)));
    assert_eq!(cp.load(0).unwrap().image.shape(), (5, 6, 6));
    // Splits a subset does not have, unknown labels.
    assert!(Dataset::chammi(root, ChammiSubset::Wtc, ChammiSplit::TaskThree, ChammiMetadata::Combined).is_err());
    let enriched = Dataset::chammi(root, ChammiSubset::Hpa, ChammiSplit::TaskThree, ChammiMetadata::Enriched).unwrap();
    assert_eq!(enriched.metadata(1, "cell_type"), Some("A549"));
    assert_eq!(chammi_loo_groups(root, ChammiSubset::Hpa).unwrap(), ["HeLa", "A549"]);
    assert!(chammi_loo_groups(root, ChammiSubset::Wtc).is_err());
    // Dataset strings (split compared upper-cased), and Bag of Channels.
    let opened = open_dataset(&format!("CHAMMI_CP:split=train:root={}", root.display())).unwrap();
    assert_eq!(opened.dataset.len(), 1);
    let boc = open_dataset(&format!("CHAMMI_HPA:split=TASK_THREE:root={}:wildcard=SEPARATE_CHANNELS", root.display()))
        .unwrap()
        .into_source()
        .unwrap();
    assert_eq!(boc.len(), 2 * 4);
    let s = boc.load(5).unwrap();
    assert_eq!((s.image.shape(), s.image_index, s.channel.unwrap().index), ((1, 5, 5), 1, 1));
    assert!(open_dataset(&format!("CHAMMI_CP:root={}", root.display())).is_err());
    write(&root.join("morphem70k_v2.csv"), "file_path,train_test_split,label\nCP/crops/c1.png,Train,aspirin\n");
    let err = Dataset::chammi(root, ChammiSubset::Cp, ChammiSplit::Train, ChammiMetadata::Combined).unwrap_err();
    assert!(matches!(err, DataError::UnknownLabel { line: 2, .. }), "{err}");
}

fn hpa_fov_header() -> String {
    let mut h = String::from("ID,file,cell_type");
    for l in HPA_FOV_LOCALIZATIONS {
        h.push(',');
        h.push_str(l);
    }
    h
}

fn hpa_fov_row(id: &str, file: &str, cell: &str, positives: &[usize]) -> String {
    let mut r = format!("{id},{file},{cell}");
    for k in 0..HPA_FOV_LOCALIZATIONS.len() {
        r.push_str(if positives.contains(&k) { ",True" } else { ",False" });
    }
    r
}

#[test]
fn hpa_fov_layout() {
    let dir = tmp();
    let root = dir.path();
    png_rgba(&root.join("512_whole_images/a.png"), 6, 6, 1);
    png_rgba(&root.join("512_whole_images/c.png"), 6, 6, 3);
    // b is only there as .tiff (upstream fallback): a 4-page TIFF would need an encoder with
    // pages; a grey TIFF still exercises the fallback path.
    tiff_gray(&root.join("512_whole_images/b.tiff"), 6, 6, 2);
    let rows = [
        hpa_fov_row("1", "some/dir/a.png", "U-2 OS", &[0, 25]),
        hpa_fov_row("2", "x/b.png", "NotALine", &[3]),
        hpa_fov_row("3", "x/c.png", "HeLa", &[]),
    ];
    write(&root.join("whole_images_512_train.csv"), &format!("{}\n{}\n", hpa_fov_header(), rows.join("\n")));
    let ds = Dataset::hpa_fov(root, HpaFovSplit::Train, HpaMode::All).unwrap();
    assert_eq!(ds.len(), 2, "the row without a positive label is dropped");
    let Target::Tuple(t) = &ds.records[0].target else { panic!() };
    assert_eq!(t[0].multi_hot().unwrap().iter().map(|&v| v as usize).sum::<usize>(), 2);
    assert_eq!(t[1], Target::Class(4));
    let Target::Tuple(t) = &ds.records[1].target else { panic!() };
    assert_eq!(t[1], Target::Missing);
    assert!(ds.records[1].source.path().ends_with("b.tiff"));
    assert_eq!(ds.metadata(0, "ID"), Some("1"));
    let s = ds.load(0).unwrap();
    assert_eq!(s.image.shape(), (4, 6, 6));
    assert_eq!(s.image.channel_names[1].as_deref(), Some("protein"));
    // The grey TIFF is not 4 channels: a clear error.
    assert!(ds.load(1).unwrap_err().to_string().contains("4 channels"));
    let cell = Dataset::hpa_fov(root, HpaFovSplit::Train, HpaMode::CellType).unwrap();
    assert_eq!(cell.len(), 3);
    assert_eq!(cell.records[2].target, Target::Class(12));
    let loc = Dataset::hpa_fov(root, HpaFovSplit::Train, HpaMode::ProteinLocalization).unwrap();
    assert!(matches!(loc.labels, LabelSchema::MultiLabel { ref labels } if labels.len() == 28));
    // Bag of Channels from the dataset string: N·4 samples, every channel once.
    let src = open_dataset(&format!("HPAFoV:split=TRAIN:root={}:wildcard=SEPARATE_CHANNELS", root.display()))
        .unwrap()
        .into_source()
        .unwrap();
    assert_eq!(src.len(), 8);
    let chans: Vec<usize> = (0..4).map(|k| src.load(k).unwrap().channel.unwrap().index).collect();
    assert_eq!(chans, [0, 1, 2, 3]);
    // SSL split, missing files.
    write(&root.join("whole_images_names.csv"), "ID\nq1\nq2\n");
    let ssl = Dataset::hpa_fov(root, HpaFovSplit::Ssl, HpaMode::All).unwrap();
    assert!(ssl.records[1].source.path().ends_with("normalized_data/q2.png"));
    write(
        &root.join("whole_images_512_test.csv"),
        &format!("{}\n{}\n", hpa_fov_header(), hpa_fov_row("9", "z.png", "BJ", &[1])),
    );
    let err = Dataset::hpa_fov(root, HpaFovSplit::Val, HpaMode::All).unwrap_err();
    assert!(matches!(err, DataError::Csv { line: 2, .. }) && err.to_string().contains("z.tiff"), "{err}");
}

#[test]
fn hpa_single_cell_layout() {
    let dir = tmp();
    let root = dir.path();
    png_rgba(&root.join("fixed_size_masked_single_cells_HPA/cell1.png"), 5, 5, 1);
    png_gray(&root.join("varied_size_masked_single_cells_HPA/sub/v1.png"), 28, 7, 2);
    let mut header = String::from("file");
    for c in HPA_SC_LOCALIZATIONS.iter().chain(HPA_SC_CELL_LINES.iter()) {
        header.push_str(&format!(",\"{c}\""));
    }
    let mut row = String::from("/abs/elsewhere/cell1.png");
    for k in 0..HPA_SC_LOCALIZATIONS.len() {
        row.push_str(if k == 14 { ",True" } else { ",False" });
    }
    for k in 0..HPA_SC_CELL_LINES.len() {
        row.push_str(if k == 3 || k == 13 { ",True" } else { ",False" });
    }
    write(&root.join("fixed_size_masked_single_cells_pretrain_20240507.csv"), &format!("{header}\n{row}\n"));
    let ds = Dataset::hpa_single_cell(root, HpaOneSplit::Train, HpaMode::CellType).unwrap();
    assert_eq!(ds.records[0].target, Target::Class(13), "last True wins");
    assert_eq!(ds.load(0).unwrap().image.shape(), (4, 5, 5));
    let loc = Dataset::hpa_single_cell(root, HpaOneSplit::Train, HpaMode::ProteinLocalization).unwrap();
    assert_eq!(loc.records[0].target, Target::multi_hot_from([14], 19));
    write(&root.join("varied_size_masked_single_cells_pretrain_20240507.csv"), "img_path\nsub/v1.png\n");
    let all = open_dataset(&format!("HPAone:root={}", root.display())).unwrap().dataset;
    assert_eq!(all.records[0].target, Target::None);
    // A 7 × 28 grey PNG is 4 square channels side by side.
    assert_eq!(all.load(0).unwrap().image.shape(), (4, 7, 7));
    assert!(open_dataset(&format!("HPAone:root={}:split=TEST", root.display())).is_err());
    assert!(open_dataset(&format!("HPAone:root={}:mode=SHAPE", root.display())).is_err());
}

#[test]
fn adapter_on_a_dataset_and_bag_of_channels_counts() {
    let dir = tmp();
    let root = dir.path();
    for k in 0..3 {
        png_gray(&root.join(format!("c{k}_dapi.png")), 4, 4, k);
        png_gray(&root.join(format!("c{k}_tub.png")), 4, 4, 10 + k);
        png_gray(&root.join(format!("c{k}_ab.png")), 4, 4, 20 + k);
    }
    let rows: Vec<String> = (0..3).map(|k| format!("c{k}_dapi.png,c{k}_tub.png,c{k}_ab.png")).collect();
    write(&root.join("m.csv"), &format!("path_DAPI,path_tubulin,path_antibody\n{}\n", rows.join("\n")));
    let ds = Dataset::from_manifest(root.join("m.csv"), &ManifestOptions::default()).unwrap();
    let raw = ds.load(1).unwrap().image;
    let hpa = ds.clone().adapt_channels(ChannelAdapter::hpa());
    let s = hpa.load(1).unwrap();
    assert_eq!(s.image.channels, 4);
    assert_eq!(s.image.channel(0).unwrap(), raw.channel(1).unwrap()); // microtubules ← tubulin
    assert_eq!(s.image.channel(2).unwrap(), raw.channel(0).unwrap()); // nucleus ← DAPI
    assert!(s.image.channel(3).unwrap().iter().all(|&v| v == 0.0)); // no ER: zeros
    // BoC over the adapted dataset: 3 images × 4 channels, every pair once.
    let boc = BagOfChannels::new(hpa).unwrap();
    assert_eq!(boc.len(), 12);
    let mut pairs: Vec<(usize, usize)> =
        (0..12).map(|k| boc.load(k).unwrap()).map(|s| (s.image_index, s.channel.unwrap().index)).collect();
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 12);
    // Unknown channel counts must be given.
    let flat = Dataset::from_folder(root, &FolderOptions::default()).unwrap();
    assert!(BagOfChannels::new(flat.clone()).is_err());
    assert_eq!(BagOfChannels::with_channel_count(flat, 1).unwrap().len(), 9);
}

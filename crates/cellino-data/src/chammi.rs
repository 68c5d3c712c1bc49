//! CHAMMI (Chen et al. 2023): the WTC-11, HPA and Cell Painting subsets and their tasks.

use std::path::Path;
use std::str::FromStr;

use crate::csv_table::CsvTable;
use crate::{ChannelTiling, DataError, Dataset, ImageSource, LabelSchema, Record, Target};

/// A CHAMMI subset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChammiSubset {
    /// WTC-11 hiPSC (folder `Allen`): 3 channels, TIFF tiled along the width.
    Wtc,
    /// Human Protein Atlas: 4 channels, PNG.
    Hpa,
    /// Cell Painting: 5 channels, PNG.
    Cp,
}

/// A CHAMMI split (`train_test_split` column, compared upper-cased).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChammiSplit {
    Train,
    TaskOne,
    TaskTwo,
    TaskThree,
    TaskFour,
}

/// Which CSV lists the images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChammiMetadata {
    /// `<root>/morphem70k_v2.csv`, all subsets (what upstream reads).
    #[default]
    Combined,
    /// `<root>/<Allen|HPA|CP>/enriched_meta.csv`, one subset with its extra columns
    /// (`cell_type`, `Plate`, … for leave-one-out).
    Enriched,
}

impl ChammiSubset {
    /// First path component of its images and its folder: `Allen`, `HPA`, `CP`.
    pub fn folder(self) -> &'static str {
        match self {
            Self::Wtc => "Allen",
            Self::Hpa => "HPA",
            Self::Cp => "CP",
        }
    }

    /// Number of channels.
    pub fn channels(self) -> usize {
        match self {
            Self::Wtc => 3,
            Self::Hpa => 4,
            Self::Cp => 5,
        }
    }

    /// How the channels are stored: WTC TIFFs have 3 channels of width W/3; HPA and CP PNGs have
    /// square channels side by side.
    pub fn tiling(self) -> ChannelTiling {
        match self {
            Self::Wtc => ChannelTiling::Count(3),
            Self::Hpa | Self::Cp => ChannelTiling::Square,
        }
    }

    /// The class names in label order.
    pub fn classes(self) -> &'static [&'static str] {
        match self {
            Self::Wtc => &["M0", "M1M2", "M3", "M4M5", "M6M7_complete", "M6M7_single"],
            Self::Hpa => &[
                "golgi apparatus",
                "microtubules",
                "mitochondria",
                "nuclear speckles",
                "cytosol",
                "endoplasmic reticulum",
                "nucleoplasm",
            ],
            Self::Cp => &[
                "BRD-A29260609",
                "BRD-K04185004",
                "BRD-K21680192",
                "DMSO",
                "BRD-K11129031",
                "BRD-K62310379",
                "BRD-K77947974",
            ],
        }
    }

    /// The splits the subset has.
    pub fn splits(self) -> &'static [ChammiSplit] {
        use ChammiSplit::*;
        match self {
            Self::Wtc => &[Train, TaskOne, TaskTwo],
            Self::Hpa => &[Train, TaskOne, TaskTwo, TaskThree],
            Self::Cp => &[Train, TaskOne, TaskTwo, TaskThree, TaskFour],
        }
    }

    /// The leave-one-out task and group column: HPA Task 3 by `cell_type`, CP Task 4 by `Plate`.
    pub fn leave_one_out(self) -> Option<(ChammiSplit, &'static str)> {
        match self {
            Self::Wtc => None,
            Self::Hpa => Some((ChammiSplit::TaskThree, "cell_type")),
            Self::Cp => Some((ChammiSplit::TaskFour, "Plate")),
        }
    }
}

impl ChammiSplit {
    /// The upper-cased value of `train_test_split`: `TRAIN`, `TASK_ONE`, …
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "TRAIN",
            Self::TaskOne => "TASK_ONE",
            Self::TaskTwo => "TASK_TWO",
            Self::TaskThree => "TASK_THREE",
            Self::TaskFour => "TASK_FOUR",
        }
    }
}

impl FromStr for ChammiSplit {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        let up = s.trim().to_uppercase();
        [Self::Train, Self::TaskOne, Self::TaskTwo, Self::TaskThree, Self::TaskFour]
            .into_iter()
            .find(|x| x.name() == up)
            .ok_or_else(|| DataError::invalid("CHAMMI split", "TRAIN or TASK_ONE … TASK_FOUR", s))
    }
}

fn check_split(subset: ChammiSubset, split: ChammiSplit) -> Result<(), DataError> {
    if subset.splits().contains(&split) {
        return Ok(());
    }
    Err(DataError::invalid(
        "CHAMMI split",
        format!("one of {:?} for {}", subset.splits().iter().map(|s| s.name()).collect::<Vec<_>>(), subset.folder()),
        split.name(),
    ))
}

impl Dataset {
    /// One CHAMMI subset and split: the rows of the metadata CSV whose `file_path` starts with
    /// the subset folder and whose `train_test_split` upper-cased is the split, images at
    /// `<root>/<file_path>`, `label` mapped by [`ChammiSubset::classes`] (another label is an
    /// error naming the line). Other columns are kept as metadata. Channel names are not in the
    /// data; the order is the tiling order.
    pub fn chammi(
        root: impl AsRef<Path>,
        subset: ChammiSubset,
        split: ChammiSplit,
        metadata: ChammiMetadata,
    ) -> Result<Dataset, DataError> {
        let root = root.as_ref();
        check_split(subset, split)?;
        let csv = match metadata {
            ChammiMetadata::Combined => root.join("morphem70k_v2.csv"),
            ChammiMetadata::Enriched => root.join(subset.folder()).join("enriched_meta.csv"),
        };
        let table = CsvTable::read(&csv)?;
        let path_col = table.column("file_path")?;
        let split_col = table.column("train_test_split")?;
        let label_col =
            table.find("label").or_else(|| table.find("Label")).map_or_else(|| table.column("label"), Ok)?;
        let meta_cols: Vec<usize> =
            (0..table.headers.len()).filter(|c| ![path_col, split_col, label_col].contains(c)).collect();
        let classes = subset.classes();
        let mut records = Vec::new();
        for (line, row) in &table.rows {
            let file = &row[path_col];
            if file.split('/').next() != Some(subset.folder()) || row[split_col].to_uppercase() != split.name() {
                continue;
            }
            let label = &row[label_col];
            let class = classes.iter().position(|c| c == label).ok_or_else(|| DataError::UnknownLabel {
                path: csv.clone(),
                line: *line,
                expected: format!("{classes:?}"),
                found: label.clone(),
            })?;
            records.push(Record {
                source: ImageSource::Tiled { path: root.join(file), tiling: subset.tiling() },
                target: Target::Class(class),
                metadata: meta_cols.iter().map(|&c| row[c].clone()).collect(),
                line: *line,
            });
        }
        let mut ds = Dataset::from_records(format!("CHAMMI_{}:{}", subset.folder(), split.name()), records);
        ds.labels = LabelSchema::single(classes);
        ds.channels = Some(subset.channels());
        ds.metadata_columns = meta_cols.iter().map(|&c| table.headers[c].clone()).collect();
        ds.manifest = Some(csv);
        Ok(ds)
    }
}

/// The leave-one-out groups of a CHAMMI subset (HPA: `cell_type` of Task 3; CP: `Plate` of
/// Task 4), read from `<root>/<subset>/enriched_meta.csv` in row order, as upstream aligns them
/// with the dataset order.
pub fn chammi_loo_groups(root: impl AsRef<Path>, subset: ChammiSubset) -> Result<Vec<String>, DataError> {
    let (split, column) = subset
        .leave_one_out()
        .ok_or_else(|| DataError::invalid("CHAMMI leave-one-out", "the HPA or CP subset", subset.folder()))?;
    let csv = root.as_ref().join(subset.folder()).join("enriched_meta.csv");
    let table = CsvTable::read(&csv)?;
    let split_col = table.column("train_test_split")?;
    let group = table.column(column)?;
    Ok(table
        .rows
        .iter()
        .filter(|(_, r)| r[split_col].to_uppercase() == split.name())
        .map(|(_, r)| r[group].clone())
        .collect())
}

//! The HPA layouts of Cell-DINO: HPA field of view (`HPAFoV`) and HPA single cell (`HPAone`).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::csv_table::CsvTable;
use crate::{ChannelTiling, DataError, Dataset, HPA_CHANNEL_NAMES, ImageSource, LabelSchema, Record, Target};

/// The 28 HPA-FoV protein localisations, in label order (Kaggle HPA order).
pub const HPA_FOV_LOCALIZATIONS: [&str; 28] = [
    "nucleoplasm",
    "nuclear membrane",
    "nucleoli",
    "nucleoli fibrillar center",
    "nuclear speckles",
    "nuclear bodies",
    "endoplasmic reticulum",
    "golgi apparatus",
    "peroxisomes",
    "endosomes",
    "lysosomes",
    "intermediate filaments",
    "actin filaments",
    "focal adhesion sites",
    "microtubules",
    "microtubule ends",
    "cytokinetic bridge",
    "mitotic spindle",
    "microtubule organizing center",
    "centrosome",
    "lipid droplets",
    "plasma membrane",
    "cell junctions",
    "mitochondria",
    "aggresome",
    "cytosol",
    "cytoplasmic bodies",
    "rods & rings",
];

/// The 35 HPA-FoV cell lines, in class order.
pub const HPA_FOV_CELL_LINES: [&str; 35] = [
    "BJ",
    "LHCN-M2",
    "RH-30",
    "SH-SY5Y",
    "U-2 OS",
    "ASC TERT1",
    "HaCaT",
    "A-431",
    "U-251 MG",
    "HEK 293",
    "A549",
    "RT4",
    "HeLa",
    "MCF7",
    "PC-3",
    "hTERT-RPE1",
    "SK-MEL-30",
    "EFO-21",
    "AF22",
    "HEL",
    "Hep G2",
    "HUVEC TERT2",
    "THP-1",
    "CACO-2",
    "JURKAT",
    "RPTEC TERT1",
    "SuSa",
    "REH",
    "HDLM-2",
    "K-562",
    "hTCEpi",
    "NB-4",
    "HAP1",
    "OE19",
    "SiHa",
];

/// The 19 HPA single-cell protein localisations, in label order.
pub const HPA_SC_LOCALIZATIONS: [&str; 19] = [
    "actin filaments,focal adhesion sites",
    "aggresome",
    "centrosome,centriolar satellite",
    "cytosol",
    "endoplasmic reticulum",
    "golgi apparatus",
    "intermediate filaments",
    "microtubules",
    "mitochondria",
    "mitotic spindle",
    "no staining",
    "nuclear bodies",
    "nuclear membrane",
    "nuclear speckles",
    "nucleoli",
    "nucleoli fibrillar center",
    "nucleoplasm",
    "plasma membrane,cell junctions",
    "vesicles,peroxisomes,endosomes,lysosomes,lipid droplets,cytoplasmic bodies",
];

/// The 29 HPA single-cell cell lines, in class order.
pub const HPA_SC_CELL_LINES: [&str; 29] = [
    "A-431",
    "A549",
    "AF22",
    "ASC TERT1",
    "BJ",
    "CACO-2",
    "EFO-21",
    "HAP1",
    "HDLM-2",
    "HEK 293",
    "HEL",
    "HUVEC TERT2",
    "HaCaT",
    "HeLa",
    "Hep G2",
    "JURKAT",
    "K-562",
    "MCF7",
    "PC-3",
    "REH",
    "RH-30",
    "RPTEC TERT1",
    "RT4",
    "SH-SY5Y",
    "SK-MEL-30",
    "SiHa",
    "U-2 OS",
    "U-251 MG",
    "hTCEpi",
];

/// Which targets an HPA dataset gives (dataset-string key `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HpaMode {
    /// Both: `Tuple([MultiHot(localisations), Class(cell line)])` (upstream: no mode / `ALL`).
    #[default]
    All,
    /// Localisation multi-hot (`PROTEIN_LOCALIZATION`).
    ProteinLocalization,
    /// Cell-line class (`CELL_TYPE`).
    CellType,
}

/// Splits of HPA-FoV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HpaFovSplit {
    /// `whole_images_512_train.csv`.
    #[default]
    Train,
    /// `whole_images_512_test.csv`.
    Val,
    /// Unlabelled SSL images: `whole_images_names.csv` → `normalized_data/<ID>.png`.
    Ssl,
}

/// Splits of HPA single cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HpaOneSplit {
    /// Unlabelled SSL cells: `varied_size_masked_single_cells_pretrain_20240507.csv`.
    #[default]
    All,
    /// `fixed_size_masked_single_cells_pretrain_20240507.csv`.
    Train,
    /// `fixed_size_masked_single_cells_evaluation_20240507.csv`.
    Val,
}

fn parse_upper<T: Copy>(what: &'static str, s: &str, table: &[(&str, T)]) -> Result<T, DataError> {
    let up = s.trim().to_uppercase();
    table.iter().find(|(k, _)| *k == up).map(|(_, v)| *v).ok_or_else(|| {
        DataError::invalid(what, format!("one of {:?}", table.iter().map(|(k, _)| *k).collect::<Vec<_>>()), s)
    })
}

impl FromStr for HpaMode {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        parse_upper(
            "HPA mode",
            s,
            &[("ALL", Self::All), ("PROTEIN_LOCALIZATION", Self::ProteinLocalization), ("CELL_TYPE", Self::CellType)],
        )
    }
}

impl FromStr for HpaFovSplit {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        parse_upper("HPAFoV split", s, &[("TRAIN", Self::Train), ("VAL", Self::Val), ("SSL", Self::Ssl)])
    }
}

impl FromStr for HpaOneSplit {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, DataError> {
        parse_upper("HPAone split", s, &[("ALL", Self::All), ("TRAIN", Self::Train), ("VAL", Self::Val)])
    }
}

/// The part of `file` after its last `/` (upstream `row["file"].split("/")[-1]`).
fn basename(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

fn hpa_dataset(name: &str, records: Vec<Record>, labels: LabelSchema, csv: &Path) -> Dataset {
    let mut ds = Dataset::from_records(name, records);
    ds.labels = labels;
    ds.channels = Some(4);
    ds.channel_names = Some(HPA_CHANNEL_NAMES.iter().map(|s| s.to_string()).collect());
    ds.manifest = Some(csv.to_path_buf());
    ds
}

fn schema(mode: HpaMode, locs: &[&str], lines: &[&str]) -> LabelSchema {
    match mode {
        HpaMode::ProteinLocalization => LabelSchema::multi(locs),
        HpaMode::CellType => LabelSchema::single(lines),
        HpaMode::All => LabelSchema::Tuple(vec![LabelSchema::multi(locs), LabelSchema::single(lines)]),
    }
}

fn multi_hot(cols: &[usize], row: &[String]) -> Vec<u8> {
    cols.iter().map(|&c| u8::from(row[c] == "True")).collect()
}

impl Dataset {
    /// HPA field of view (`HPAFoV`): RGBA PNGs (channels microtubules, protein, nucleus, ER)
    /// under `root/512_whole_images/` (basename of column `file`; if absent, the same stem with
    /// `.tiff`; neither is an error naming the CSV line), 28 localisation columns
    /// (`"True"` = positive) and `cell_type` (35 lines; other values → [`Target::Missing`]).
    /// Rows without any positive localisation are dropped except in [`HpaMode::CellType`]. Other
    /// columns are kept as metadata. [`HpaFovSplit::Ssl`] lists `whole_images_names.csv`
    /// (column `ID`) without labels.
    pub fn hpa_fov(root: impl AsRef<Path>, split: HpaFovSplit, mode: HpaMode) -> Result<Dataset, DataError> {
        let root = root.as_ref();
        if split == HpaFovSplit::Ssl {
            let csv = root.join("whole_images_names.csv");
            let table = CsvTable::read(&csv)?;
            let id = table.column("ID")?;
            let records = table
                .rows
                .iter()
                .map(|(line, row)| Record {
                    source: ImageSource::File(root.join("normalized_data").join(format!("{}.png", row[id]))),
                    target: Target::None,
                    metadata: vec![],
                    line: *line,
                })
                .collect();
            return Ok(hpa_dataset("HPAFoV:SSL", records, LabelSchema::None, &csv));
        }
        let csv = root.join(match split {
            HpaFovSplit::Val => "whole_images_512_test.csv",
            _ => "whole_images_512_train.csv",
        });
        let table = CsvTable::read(&csv)?;
        let file = table.column("file")?;
        let loc_cols: Vec<usize> = match mode {
            HpaMode::CellType => vec![],
            _ => HPA_FOV_LOCALIZATIONS.iter().map(|l| table.column(l)).collect::<Result<_, _>>()?,
        };
        let cell_col = match mode {
            HpaMode::ProteinLocalization => None,
            _ => Some(table.column("cell_type")?),
        };
        let meta_cols: Vec<usize> =
            (0..table.headers.len()).filter(|c| *c != file && !loc_cols.contains(c) && Some(*c) != cell_col).collect();
        let data = root.join("512_whole_images");
        let mut records = Vec::new();
        for (line, row) in &table.rows {
            let cell = cell_col.map(|c| match HPA_FOV_CELL_LINES.iter().position(|l| *l == row[c]) {
                Some(k) => Target::Class(k),
                None => Target::Missing,
            });
            let locs = (!loc_cols.is_empty()).then(|| multi_hot(&loc_cols, row));
            if locs.as_ref().is_some_and(|v| !v.contains(&1)) {
                continue;
            }
            let target = match (locs, cell) {
                (Some(l), Some(c)) => Target::Tuple(vec![Target::MultiHot(l), c]),
                (Some(l), None) => Target::MultiHot(l),
                (None, Some(c)) => c,
                (None, None) => Target::None,
            };
            let name = basename(&row[file]);
            let mut path = data.join(name);
            if !path.is_file() {
                let stem = name.split('.').next().unwrap_or(name);
                let tiff = data.join(format!("{stem}.tiff"));
                if !tiff.is_file() {
                    return Err(DataError::csv(
                        &csv,
                        *line,
                        format!("image not found: neither {} nor {}", path.display(), tiff.display()),
                    ));
                }
                path = tiff;
            }
            let metadata = meta_cols.iter().map(|&c| row[c].clone()).collect();
            records.push(Record { source: ImageSource::File(path), target, metadata, line: *line });
        }
        let mut ds = hpa_dataset("HPAFoV", records, schema(mode, &HPA_FOV_LOCALIZATIONS, &HPA_FOV_CELL_LINES), &csv);
        ds.metadata_columns = meta_cols.iter().map(|&c| table.headers[c].clone()).collect();
        Ok(ds)
    }

    /// HPA single cell (`HPAone`): 4-channel cell crops (RGBA PNG, or channels tiled along the
    /// width as upstream's `XChannelsDecoder` accepts). [`HpaOneSplit::All`]: column `img_path`
    /// under `root/varied_size_masked_single_cells_HPA/`, no labels. Train/Val: basename of `file`
    /// under `root/fixed_size_masked_single_cells_HPA/`, 19 localisation columns (`"True"` =
    /// positive) and 29 one-hot cell-line columns (the last `"True"` wins, none → class 0, as
    /// upstream). No metadata is kept (≈1.3 M rows).
    pub fn hpa_single_cell(root: impl AsRef<Path>, split: HpaOneSplit, mode: HpaMode) -> Result<Dataset, DataError> {
        let root = root.as_ref();
        let tiled = |path: PathBuf| ImageSource::Tiled { path, tiling: ChannelTiling::Square };
        if split == HpaOneSplit::All {
            let csv = root.join("varied_size_masked_single_cells_pretrain_20240507.csv");
            let table = CsvTable::read(&csv)?;
            let col = table.column("img_path")?;
            let dir = root.join("varied_size_masked_single_cells_HPA");
            let records = table
                .rows
                .iter()
                .map(|(line, row)| Record {
                    source: tiled(dir.join(&row[col])),
                    target: Target::None,
                    metadata: vec![],
                    line: *line,
                })
                .collect();
            return Ok(hpa_dataset("HPAone:ALL", records, LabelSchema::None, &csv));
        }
        let csv = root.join(match split {
            HpaOneSplit::Val => "fixed_size_masked_single_cells_evaluation_20240507.csv",
            _ => "fixed_size_masked_single_cells_pretrain_20240507.csv",
        });
        let table = CsvTable::read(&csv)?;
        let file = table.column("file")?;
        let loc_cols: Vec<usize> = HPA_SC_LOCALIZATIONS.iter().map(|l| table.column(l)).collect::<Result<_, _>>()?;
        let cell_cols: Vec<usize> = HPA_SC_CELL_LINES.iter().map(|l| table.column(l)).collect::<Result<_, _>>()?;
        let dir = root.join("fixed_size_masked_single_cells_HPA");
        let records = table
            .rows
            .iter()
            .map(|(line, row)| {
                let locs = multi_hot(&loc_cols, row);
                let cell = cell_cols.iter().rposition(|&c| row[c] == "True").unwrap_or(0);
                let target = match mode {
                    HpaMode::ProteinLocalization => Target::MultiHot(locs),
                    HpaMode::CellType => Target::Class(cell),
                    HpaMode::All => Target::Tuple(vec![Target::MultiHot(locs), Target::Class(cell)]),
                };
                Record { source: tiled(dir.join(basename(&row[file]))), target, metadata: vec![], line: *line }
            })
            .collect();
        Ok(hpa_dataset("HPAone", records, schema(mode, &HPA_SC_LOCALIZATIONS, &HPA_SC_CELL_LINES), &csv))
    }
}

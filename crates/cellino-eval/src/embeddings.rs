//! Embedding files: `emb.npy` (float32 `(N, D)`), the metadata table (one row per feature row)
//! as `emb.csv` and `emb.parquet`, and `emb.json` ([`EmbeddingSidecar`]), written atomically and
//! read back.

use std::ops::Range;
use std::path::{Path, PathBuf};

use cellino_data::Target;
use cellino_vit::{Arch, VitConfig};

use crate::atomic::write_all_atomic;
use crate::data::{FeatureMatrix, Split, Targets, Task};
use crate::error::{EvalError, Result};
use crate::extract::Extracted;
use crate::npy::{npy_f32_bytes, read_npy_f32};
use crate::parquet_table::table_parquet;
use crate::sidecar::{CheckpointInfo, EmbeddingSidecar, LabelInfo, ModelInfo, SIDECAR_FORMAT_VERSION, TransformInfo};

/// The fixed leading columns of the metadata table.
pub const LEADING_COLUMNS: [&str; 3] = ["row_index", "source_path", "manifest_line"];
/// The fixed trailing columns: class index (`;`-joined label indices for multi-label) and
/// name(s). Empty for an unlabelled or missing target.
pub const LABEL_COLUMNS: [&str; 2] = ["label", "label_name"];

/// The three files of one embedding set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingPaths {
    pub features: PathBuf,
    pub metadata: PathBuf,
    /// The same table as `metadata`, in Parquet.
    pub metadata_parquet: PathBuf,
    pub sidecar: PathBuf,
}

impl EmbeddingPaths {
    /// `x.npy` → `x.npy`, `x.csv`, `x.parquet`, `x.json`.
    ///
    /// # Errors
    /// [`EvalError::InvalidConfig`] when `features` does not end in `.npy`.
    pub fn for_features(features: impl AsRef<Path>) -> Result<Self> {
        let features = features.as_ref();
        if features.extension().and_then(|e| e.to_str()) != Some("npy") {
            return Err(EvalError::InvalidConfig {
                what: "output path",
                reason: format!("{} must end in .npy (the .csv and .json go next to it)", features.display()),
            });
        }
        Ok(Self {
            features: features.to_path_buf(),
            metadata: features.with_extension("csv"),
            metadata_parquet: features.with_extension("parquet"),
            sidecar: features.with_extension("json"),
        })
    }
}

/// Where the backbone came from, for the sidecar.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModelSource<'a> {
    /// The checkpoint file (hashed with SHA-256).
    pub checkpoint: Option<&'a Path>,
    pub arch: Option<Arch>,
}

/// Writes `extracted` as `paths.features` (`.npy`), `.csv`, `.parquet` and `.json`, all
/// atomically: nothing appears under those names until the four are complete. Returns the sidecar.
///
/// # Errors
/// An unreadable checkpoint, a path not ending in `.npy`, a failed write.
pub fn write_embeddings(
    features_path: impl AsRef<Path>,
    extracted: &Extracted,
    model_config: &VitConfig,
    source: ModelSource<'_>,
) -> Result<EmbeddingSidecar> {
    let paths = EmbeddingPaths::for_features(features_path)?;
    check_extracted(extracted)?;
    let checkpoint = source.checkpoint.map(CheckpointInfo::of_file).transpose()?;
    let file_name = |p: &Path| p.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let sidecar = EmbeddingSidecar {
        format_version: SIDECAR_FORMAT_VERSION,
        written_by: format!("cellino-eval {}", env!("CARGO_PKG_VERSION")),
        features_file: file_name(&paths.features),
        metadata_file: file_name(&paths.metadata),
        metadata_parquet_file: Some(file_name(&paths.metadata_parquet)),
        n_rows: extracted.n_rows,
        dim: extracted.layout.dim,
        dtype: "float32".into(),
        model: ModelInfo { arch: source.arch.map(|a| a.name().to_owned()), config: model_config.clone(), checkpoint },
        dataset: extracted.dataset.clone(),
        manifest: extracted.manifest.clone(),
        channel_names: extracted.channel_names.clone(),
        transform: TransformInfo::from(&extracted.transform),
        layout: extracted.layout.clone(),
        labels: LabelInfo::from(&extracted.labels),
        metadata_columns: extracted.metadata_columns.clone(),
    };
    let npy = npy_f32_bytes(&extracted.features, extracted.n_rows, extracted.layout.dim);
    let (header, rows) = metadata_table(extracted, &sidecar.labels);
    let csv = table_csv(&header, &rows)?;
    let parquet = table_parquet(&header, &rows)?;
    let mut json = serde_json::to_vec_pretty(&sidecar).map_err(|e| EvalError::io(&paths.sidecar, e))?;
    json.push(b'\n');
    // The features last: their presence means the set is complete.
    write_all_atomic(&[
        (paths.metadata, csv),
        (paths.metadata_parquet, parquet),
        (paths.sidecar, json),
        (paths.features, npy),
    ])?;
    Ok(sidecar)
}

/// The parts of an [`Extracted`] (public fields) must agree before anything is written.
fn check_extracted(x: &Extracted) -> Result<()> {
    x.layout.validate()?;
    let n = x.n_rows;
    if n == 0 {
        return Err(EvalError::Empty { what: "extracted features (no rows)" });
    }
    let expect = |what: &'static str, actual: usize, expected: usize| {
        if actual == expected { Ok(()) } else { Err(EvalError::LengthMismatch { what, expected, actual }) }
    };
    expect("extracted features (n_rows × dim values)", x.features.len(), n.saturating_mul(x.layout.dim))?;
    expect("extracted targets", x.targets.len(), n)?;
    expect("extracted sources", x.sources.len(), n)?;
    expect("extracted manifest lines", x.lines.len(), n)?;
    expect("extracted metadata rows", x.metadata.len(), n)?;
    if let Some(r) = x.metadata.iter().find(|r| r.len() != x.metadata_columns.len()) {
        expect("metadata values per row", r.len(), x.metadata_columns.len())?;
    }
    if x.layout.bag_of_channels {
        expect("channel names", x.channel_names.len(), x.layout.channels)?;
    }
    Ok(())
}

fn label_cells(target: &Target, labels: &LabelInfo) -> (String, String) {
    let name = |i: usize| labels.names.get(i).cloned().unwrap_or_default();
    match target {
        Target::Class(c) => (c.to_string(), name(*c)),
        Target::MultiHot(v) => {
            let on: Vec<usize> = v.iter().enumerate().filter(|(_, x)| **x != 0).map(|(i, _)| i).collect();
            let idx = on.iter().map(usize::to_string).collect::<Vec<_>>().join(";");
            (idx, on.into_iter().map(name).collect::<Vec<_>>().join(";"))
        }
        Target::None | Target::Missing | Target::Tuple(_) => (String::new(), String::new()),
    }
}

/// The metadata table: header and one row of cells per feature row.
fn metadata_table<'a>(x: &'a Extracted, labels: &LabelInfo) -> (Vec<&'a str>, Vec<Vec<String>>) {
    let header: Vec<&str> = LEADING_COLUMNS
        .iter()
        .copied()
        .chain(x.metadata_columns.iter().map(String::as_str))
        .chain(LABEL_COLUMNS)
        .collect();
    let rows = (0..x.n_rows)
        .map(|i| {
            let (label, name) = x.targets.get(i).map_or_else(Default::default, |t| label_cells(t, labels));
            let mut row = vec![i.to_string(), x.sources[i].clone(), x.lines[i].to_string()];
            row.extend(x.metadata[i].iter().cloned());
            row.extend([label, name]);
            row
        })
        .collect();
    (header, rows)
}

fn table_csv(header: &[&str], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let err = |e: csv::Error| EvalError::Io { path: "metadata table".into(), message: e.to_string() };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(err)?;
    for row in rows {
        w.write_record(row).map_err(err)?;
    }
    w.into_inner().map_err(|e| EvalError::Io { path: "metadata table".into(), message: e.to_string() })
}

/// Labels read back from the metadata table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredLabels {
    /// Unlabelled data.
    None,
    /// Class indices; rows in `missing` had no label (their entry is 0).
    Multiclass { classes: Vec<String>, labels: Vec<usize>, missing: Vec<usize> },
    /// Row-major multi-hot rows; rows in `missing` had no label (all zeros).
    Multilabel { names: Vec<String>, targets: Vec<u8>, missing: Vec<usize> },
}

/// An embedding set read back by [`read_embeddings`].
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingSet {
    /// Row-major `(n_rows, dim)`.
    pub features: Vec<f32>,
    pub n_rows: usize,
    pub dim: usize,
    pub sidecar: EmbeddingSidecar,
    /// Metadata column names (as in the sidecar) and, per row, the values.
    pub metadata_columns: Vec<String>,
    pub metadata: Vec<Vec<String>>,
    pub sources: Vec<String>,
    pub labels: StoredLabels,
}

impl EmbeddingSet {
    /// Row `i` (panics if `i >= n_rows`, like slice indexing).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.dim..(i + 1) * self.dim]
    }

    /// The values of metadata column `name`, one per row.
    pub fn column(&self, name: &str) -> Option<Vec<&str>> {
        let k = self.metadata_columns.iter().position(|c| c == name)?;
        Some(self.metadata.iter().map(|r| r[k].as_str()).collect())
    }

    /// The features as a validated matrix.
    ///
    /// # Errors
    /// Non-finite values.
    pub fn matrix(&self) -> Result<FeatureMatrix<'_>> {
        FeatureMatrix::new(&self.features, self.dim)
    }

    /// The labelled split (every row must have a label).
    ///
    /// # Errors
    /// No labels, rows without a label, non-finite features.
    pub fn split(&self) -> Result<Split<'_>> {
        let targets = match &self.labels {
            StoredLabels::None => return Err(EvalError::Empty { what: "labels (the embeddings are unlabelled)" }),
            StoredLabels::Multiclass { missing, .. } | StoredLabels::Multilabel { missing, .. }
                if !missing.is_empty() =>
            {
                return Err(EvalError::format(
                    &self.metadata_path(),
                    format!("{} rows have no label (first: row {})", missing.len(), missing[0]),
                ));
            }
            StoredLabels::Multiclass { classes, labels, .. } => Targets::multiclass(labels, classes.len()),
            StoredLabels::Multilabel { names, targets, .. } => Targets::multilabel(targets, names.len()),
        };
        Split::new(self.matrix()?, targets)
    }

    /// Copies of the columns `ranges` of every row, concatenated: `(values, width)`.
    ///
    /// # Errors
    /// A range outside `0..dim` or empty in total.
    pub fn columns(&self, ranges: &[Range<usize>]) -> Result<(Vec<f32>, usize)> {
        let width: usize = ranges.iter().map(|r| r.len()).sum();
        if width == 0 {
            return Err(EvalError::Empty { what: "column selection" });
        }
        if let Some(r) = ranges.iter().find(|r| r.start > r.end || r.end > self.dim) {
            return Err(EvalError::IndexOutOfRange {
                what: "feature columns",
                position: 0,
                index: r.end,
                len: self.dim,
            });
        }
        let mut out = Vec::with_capacity(self.n_rows * width);
        for i in 0..self.n_rows {
            let row = self.row(i);
            for r in ranges {
                out.extend_from_slice(&row[r.clone()]);
            }
        }
        Ok((out, width))
    }

    fn metadata_path(&self) -> PathBuf {
        PathBuf::from(&self.sidecar.metadata_file)
    }
}

/// Reads `emb.npy` with its `emb.json` and `emb.csv` (names from the `.npy` path), checking
/// that they agree: shape vs sidecar, one table row per feature row in order, the columns
/// the sidecar lists, labels inside the label list, a consistent layout.
///
/// # Errors
/// Missing or unreadable files ([`EvalError::Io`]), any disagreement
/// ([`EvalError::Format`] naming the file).
pub fn read_embeddings(features_path: impl AsRef<Path>) -> Result<EmbeddingSet> {
    let paths = EmbeddingPaths::for_features(features_path)?;
    let json = std::fs::read(&paths.sidecar).map_err(|e| EvalError::io(&paths.sidecar, e))?;
    let sidecar: EmbeddingSidecar =
        serde_json::from_slice(&json).map_err(|e| EvalError::format(&paths.sidecar, e.to_string()))?;
    sidecar.layout.validate().map_err(|e| EvalError::format(&paths.sidecar, e.to_string()))?;
    let (features, n_rows, dim) = read_npy_f32(&paths.features)?;
    if (n_rows, dim) != (sidecar.n_rows, sidecar.dim) || dim != sidecar.layout.dim {
        return Err(EvalError::format(
            &paths.features,
            format!(
                "shape ({n_rows}, {dim}) does not match the sidecar's ({}, {}) / layout dim {}",
                sidecar.n_rows, sidecar.dim, sidecar.layout.dim
            ),
        ));
    }
    let table = read_table(&paths.metadata, &sidecar, n_rows)?;
    Ok(EmbeddingSet {
        features,
        n_rows,
        dim,
        metadata_columns: sidecar.metadata_columns.clone(),
        metadata: table.metadata,
        sources: table.sources,
        labels: table.labels,
        sidecar,
    })
}

struct Table {
    metadata: Vec<Vec<String>>,
    sources: Vec<String>,
    labels: StoredLabels,
}

fn read_table(path: &Path, sidecar: &EmbeddingSidecar, n_rows: usize) -> Result<Table> {
    let bad = |reason: String| EvalError::format(path, reason);
    let mut r = csv::Reader::from_path(path).map_err(|e| EvalError::io(path, e))?;
    let headers: Vec<String> = r.headers().map_err(|e| bad(e.to_string()))?.iter().map(str::to_owned).collect();
    let expected: Vec<String> = LEADING_COLUMNS
        .iter()
        .map(|s| s.to_string())
        .chain(sidecar.metadata_columns.iter().cloned())
        .chain(LABEL_COLUMNS.iter().map(|s| s.to_string()))
        .collect();
    if headers != expected {
        return Err(bad(format!("columns {headers:?}, expected {expected:?}")));
    }
    let m = sidecar.metadata_columns.len();
    let names = &sidecar.labels.names;
    let mut metadata = Vec::with_capacity(n_rows);
    let mut sources = Vec::with_capacity(n_rows);
    let (mut classes, mut multi, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        let line = i + 2;
        if rec.get(0) != Some(i.to_string().as_str()) {
            return Err(bad(format!("line {line}: row_index {:?}, expected {i}", rec.get(0).unwrap_or(""))));
        }
        sources.push(rec.get(1).unwrap_or_default().to_owned());
        metadata.push((0..m).map(|k| rec.get(3 + k).unwrap_or_default().to_owned()).collect());
        let cell = rec.get(3 + m).unwrap_or_default().trim();
        let parse = |s: &str| -> Result<usize> {
            let v: usize = s.parse().map_err(|_| bad(format!("line {line}: label {s:?} is not an index")))?;
            if v >= names.len() {
                return Err(bad(format!("line {line}: label {v} is outside the {} labels", names.len())));
            }
            Ok(v)
        };
        match sidecar.labels.task {
            _ if cell.is_empty() => {
                missing.push(i);
                classes.push(0);
                multi.extend(std::iter::repeat_n(0u8, names.len()));
            }
            None => return Err(bad(format!("line {line}: a label in an unlabelled set"))),
            Some(Task::Multiclass) => classes.push(parse(cell)?),
            Some(Task::Multilabel) => {
                let mut row = vec![0u8; names.len()];
                for s in cell.split(';') {
                    row[parse(s.trim())?] = 1;
                }
                multi.extend(row);
            }
        }
    }
    if sources.len() != n_rows {
        return Err(bad(format!("{} rows, the features have {n_rows}", sources.len())));
    }
    let labels = match sidecar.labels.task {
        None => StoredLabels::None,
        Some(Task::Multiclass) => StoredLabels::Multiclass { classes: names.clone(), labels: classes, missing },
        Some(Task::Multilabel) => StoredLabels::Multilabel { names: names.clone(), targets: multi, missing },
    };
    Ok(Table { metadata, sources, labels })
}

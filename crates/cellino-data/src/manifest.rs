//! CSV manifests: one row per image, paths relative to the manifest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::csv_table::CsvTable;
use crate::{ChannelTiling, DataError, Dataset, ImageSource, LabelSchema, ReadOptions, Record, Target};

/// Column names tried, in order, for the image path when [`ImageColumns::Auto`] is used.
pub const PATH_COLUMNS: [&str; 8] =
    ["path", "file_path", "filepath", "image", "image_path", "img_path", "file", "filename"];

/// Where a manifest row's image is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ImageColumns {
    /// The first of [`PATH_COLUMNS`] present; else every column named `path_<channel>` (or
    /// `channel_<channel>`), one file per channel, named after the suffix.
    #[default]
    Auto,
    /// One column with the path of a file holding all channels.
    Path(String),
    /// One column per channel, each with the path of a single-channel file; the column names
    /// become the channel names unless [`ManifestOptions::channel_names`] is set.
    Channels(Vec<String>),
}

/// Which columns hold the labels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LabelColumns {
    /// `label` → [`Single`](Self::Single); else `labels` → [`Separated`](Self::Separated) with `;`;
    /// else no labels.
    #[default]
    Auto,
    None,
    /// One class per row. With `classes`, a value outside the list is an error; without, the
    /// classes are `0..=max` if every value is a non-negative integer, else the sorted distinct
    /// values. An empty cell is [`Target::Missing`].
    Single {
        column: String,
        classes: Option<Vec<String>>,
    },
    /// Multi-label, one column per label holding 1/0 (or true/false, yes/no); the column names
    /// are the labels.
    Columns(Vec<String>),
    /// Multi-label in one column, labels separated by `separator` (e.g. `"nucleoli;cytosol"`).
    /// With `labels`, an unknown label is an error; without, the labels are the sorted distinct
    /// values.
    Separated {
        column: String,
        separator: char,
        labels: Option<Vec<String>>,
    },
}

/// How to read a CSV manifest ([`Dataset::from_manifest`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestOptions {
    pub image: ImageColumns,
    pub labels: LabelColumns,
    /// Names of the channels of every image (overrides names from the files or columns).
    pub channel_names: Option<Vec<String>>,
    /// The files hold channels tiled along the width (CHAMMI).
    pub tiling: Option<ChannelTiling>,
    /// Base folder of relative paths; default: the manifest's folder.
    pub root: Option<PathBuf>,
    pub read_options: ReadOptions,
}

fn truthy(v: &str) -> Option<u8> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "1.0" | "true" | "t" | "yes" | "y" => Some(1),
        "0" | "0.0" | "false" | "f" | "no" | "n" | "" => Some(0),
        _ => None,
    }
}

fn channel_suffix(col: &str) -> Option<&str> {
    ["path_", "channel_"].iter().find_map(|p| col.strip_prefix(p)).filter(|s| !s.is_empty())
}

enum Labeler {
    None,
    Single { col: usize, classes: Vec<String>, fixed: bool, integers: bool },
    Columns(Vec<usize>),
    Separated { col: usize, sep: char, labels: Vec<String> },
}

impl Labeler {
    fn new(table: &CsvTable, spec: &LabelColumns) -> Result<Self, DataError> {
        let spec = match spec {
            LabelColumns::Auto if table.find("label").is_some() => {
                LabelColumns::Single { column: "label".into(), classes: None }
            }
            LabelColumns::Auto if table.find("labels").is_some() => {
                LabelColumns::Separated { column: "labels".into(), separator: ';', labels: None }
            }
            LabelColumns::Auto => LabelColumns::None,
            other => other.clone(),
        };
        Ok(match spec {
            LabelColumns::Auto | LabelColumns::None => Self::None,
            LabelColumns::Single { column, classes: Some(classes) } => {
                Self::Single { col: table.column(&column)?, classes, fixed: true, integers: false }
            }
            LabelColumns::Single { column, classes: None } => {
                let col = table.column(&column)?;
                let values: Vec<&str> =
                    table.rows.iter().map(|(_, r)| r[col].as_str()).filter(|v| !v.is_empty()).collect();
                let ints: Option<Vec<u64>> = values.iter().map(|v| v.parse::<u64>().ok()).collect();
                match ints {
                    Some(ints) if !ints.is_empty() && ints.iter().all(|&i| i < 1 << 24) => {
                        let max = ints.iter().copied().max().unwrap_or(0);
                        Self::Single {
                            col,
                            classes: (0..=max).map(|i| i.to_string()).collect(),
                            fixed: false,
                            integers: true,
                        }
                    }
                    _ => {
                        let set: BTreeSet<&str> = values.into_iter().collect();
                        Self::Single {
                            col,
                            classes: set.into_iter().map(str::to_owned).collect(),
                            fixed: false,
                            integers: false,
                        }
                    }
                }
            }
            LabelColumns::Columns(cols) => {
                if cols.is_empty() {
                    return Err(DataError::invalid("label columns", "at least one column", "none"));
                }
                Self::Columns(cols.iter().map(|c| table.column(c)).collect::<Result<_, _>>()?)
            }
            LabelColumns::Separated { column, separator, labels } => {
                let col = table.column(&column)?;
                match labels {
                    Some(labels) => Self::Separated { col, sep: separator, labels },
                    None => {
                        let set: BTreeSet<&str> = table
                            .rows
                            .iter()
                            .flat_map(|(_, r)| r[col].split(separator).map(str::trim))
                            .filter(|v| !v.is_empty())
                            .collect();
                        Self::Separated { col, sep: separator, labels: set.into_iter().map(str::to_owned).collect() }
                    }
                }
            }
        })
    }

    fn columns(&self) -> Vec<usize> {
        match self {
            Self::None => vec![],
            Self::Single { col, .. } | Self::Separated { col, .. } => vec![*col],
            Self::Columns(cols) => cols.clone(),
        }
    }

    fn schema(&self, table: &CsvTable) -> LabelSchema {
        match self {
            Self::None => LabelSchema::None,
            Self::Single { classes, .. } => LabelSchema::SingleLabel { classes: classes.clone() },
            Self::Columns(cols) => {
                LabelSchema::MultiLabel { labels: cols.iter().map(|&c| table.headers[c].clone()).collect() }
            }
            Self::Separated { labels, .. } => LabelSchema::MultiLabel { labels: labels.clone() },
        }
    }

    fn target(&self, table: &CsvTable, line: u64, row: &[String]) -> Result<Target, DataError> {
        let unknown = |found: &str, list: &[String]| DataError::UnknownLabel {
            path: table.path.clone(),
            line,
            expected: format!("{list:?}"),
            found: found.to_owned(),
        };
        Ok(match self {
            Self::None => Target::None,
            Self::Single { col, .. } if row[*col].is_empty() => Target::Missing,
            Self::Single { col, classes, fixed, integers } => {
                let v = row[*col].as_str();
                let found = if *integers { v.parse::<usize>().ok() } else { classes.iter().position(|c| c == v) };
                match found {
                    Some(c) if !*fixed || c < classes.len() => Target::Class(c),
                    _ => return Err(unknown(v, classes)),
                }
            }
            Self::Columns(cols) => Target::MultiHot(
                cols.iter()
                    .map(|&c| {
                        truthy(&row[c]).ok_or_else(|| {
                            DataError::csv(
                                &table.path,
                                line,
                                format!(
                                    "column {:?}: expected 1/0, true/false or yes/no, found {:?}",
                                    table.headers[c], row[c]
                                ),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Self::Separated { col, sep, labels } => {
                let mut v = vec![0u8; labels.len()];
                for l in row[*col].split(*sep).map(str::trim).filter(|l| !l.is_empty()) {
                    let k = labels.iter().position(|x| x == l).ok_or_else(|| unknown(l, labels))?;
                    v[k] = 1;
                }
                Target::MultiHot(v)
            }
        })
    }
}

impl Dataset {
    /// Reads a CSV manifest: one row per image, paths relative to the manifest's folder (or
    /// [`ManifestOptions::root`]), labels per [`LabelColumns`], every other column kept as
    /// metadata. Errors name the manifest and line (missing columns, bad label values, empty
    /// paths). Files are not opened here; a missing file is an error at [`load`](Dataset::load)
    /// (or check up front with [`missing_files`](Dataset::missing_files)).
    ///
    /// ```
    /// use cellino_data::{Dataset, LabelSchema, ManifestOptions, Target};
    /// let dir = std::env::temp_dir().join(format!("cellino-doc-manifest-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// std::fs::write(dir.join("m.csv"), "path,label,plate\na.png,cytosol,P1\nb.png,nucleoli,P2\n")?;
    /// let ds = Dataset::from_manifest(dir.join("m.csv"), &ManifestOptions::default())?;
    /// assert_eq!(ds.labels, LabelSchema::SingleLabel { classes: vec!["cytosol".into(), "nucleoli".into()] });
    /// assert_eq!(ds.records[1].target, Target::Class(1));
    /// assert_eq!(ds.metadata(1, "plate"), Some("P2"));
    /// assert_eq!(ds.records[0].source.path(), dir.join("a.png"));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_manifest(path: impl AsRef<Path>, opts: &ManifestOptions) -> Result<Dataset, DataError> {
        let path = path.as_ref();
        let table = CsvTable::read(path)?;
        let root = opts.root.clone().unwrap_or_else(|| path.parent().map(Path::to_path_buf).unwrap_or_default());

        // Image columns and default channel names.
        let (image_cols, column_names): (Vec<usize>, Option<Vec<String>>) = match &opts.image {
            ImageColumns::Path(c) => (vec![table.column(c)?], None),
            ImageColumns::Channels(cols) if cols.is_empty() => {
                return Err(DataError::invalid("channel columns", "at least one column", "none"));
            }
            ImageColumns::Channels(cols) => {
                (cols.iter().map(|c| table.column(c)).collect::<Result<_, _>>()?, Some(cols.clone()))
            }
            ImageColumns::Auto => match PATH_COLUMNS.iter().find_map(|c| table.find(c)) {
                Some(c) => (vec![c], None),
                None => {
                    let chans: Vec<usize> =
                        (0..table.headers.len()).filter(|&c| channel_suffix(&table.headers[c]).is_some()).collect();
                    if chans.is_empty() {
                        return Err(DataError::csv(
                            path,
                            1,
                            format!(
                                "no image column: expected one of {PATH_COLUMNS:?} or columns named path_<channel>, found {:?}",
                                table.headers
                            ),
                        ));
                    }
                    let names =
                        chans.iter().filter_map(|&c| channel_suffix(&table.headers[c]).map(str::to_owned)).collect();
                    (chans, Some(names))
                }
            },
        };
        let per_channel = column_names.is_some();
        if per_channel && opts.tiling.is_some() {
            return Err(DataError::invalid(
                "manifest",
                "tiling with a single path column",
                "tiling with per-channel columns",
            ));
        }
        if let (true, Some(names)) = (per_channel, &opts.channel_names)
            && names.len() != image_cols.len()
        {
            return Err(DataError::invalid(
                "channel names",
                format!("{} names (one per channel column)", image_cols.len()),
                format!("{} names", names.len()),
            ));
        }
        let labeler = Labeler::new(&table, &opts.labels)?;
        let label_cols = labeler.columns();
        if let Some(&c) = label_cols.iter().find(|c| image_cols.contains(c)) {
            return Err(DataError::csv(
                path,
                1,
                format!("column {:?} is both an image and a label column", table.headers[c]),
            ));
        }
        let meta_cols: Vec<usize> =
            (0..table.headers.len()).filter(|c| !image_cols.contains(c) && !label_cols.contains(c)).collect();

        let mut records = Vec::with_capacity(table.rows.len());
        for (line, row) in &table.rows {
            let mut paths = Vec::with_capacity(image_cols.len());
            for &c in &image_cols {
                if row[c].is_empty() {
                    return Err(DataError::csv(path, *line, format!("empty path in column {:?}", table.headers[c])));
                }
                paths.push(root.join(&row[c]));
            }
            let source = match (per_channel, opts.tiling) {
                (true, _) => ImageSource::ChannelFiles(paths),
                (false, Some(tiling)) => ImageSource::Tiled { path: paths.remove(0), tiling },
                (false, None) => ImageSource::File(paths.remove(0)),
            };
            let target = labeler.target(&table, *line, row)?;
            let metadata = meta_cols.iter().map(|&c| row[c].clone()).collect();
            records.push(Record { source, target, metadata, line: *line });
        }

        let mut ds = Dataset::from_records(
            path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
            records,
        );
        ds.labels = labeler.schema(&table);
        ds.channel_names = opts.channel_names.clone().or(column_names);
        ds.channels = match (&ds.channel_names, opts.tiling) {
            (Some(n), _) => Some(n.len()),
            (None, Some(ChannelTiling::Count(n))) => Some(n),
            _ => None,
        };
        ds.metadata_columns = meta_cols.iter().map(|&c| table.headers[c].clone()).collect();
        ds.manifest = Some(path.to_path_buf());
        ds.read_options = opts.read_options.clone();
        Ok(ds)
    }
}

//! Feature and label files of `cellino eval linear|knn`: `.npy` features, `.npy` or CSV labels,
//! turned into the owned class indices / multi-hot rows the eval crate takes.

use std::path::Path;

use candle_core::{DType, Tensor};

/// A float32 feature matrix read from a `.npy` (any float or int dtype, 2-D; 1-D is one column).
pub struct Features {
    pub values: Vec<f32>,
    pub rows: usize,
    pub dim: usize,
}

pub fn read_features(path: &Path, flag: &str) -> Result<Features, String> {
    let err = |e: String| format!("{flag} {}: {e}", path.display());
    let t = Tensor::read_npy(path).map_err(|e| err(e.to_string()))?;
    let (rows, dim) = match *t.dims() {
        [n] => (n, 1),
        [n, d] => (n, d),
        ref other => return Err(err(format!("expected a 2-D (N, D) array, found shape {other:?}"))),
    };
    let values = t
        .to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| err(e.to_string()))?;
    if rows == 0 || dim == 0 {
        return Err(err(format!("empty feature matrix ({rows}, {dim})")));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(err(format!(
            "feature row {} column {} is {} (features must be finite)",
            i / dim,
            i % dim,
            values[i]
        )));
    }
    Ok(Features { values, rows, dim })
}

/// Labels as read from a file, before the class list is known.
#[derive(Debug, Clone, PartialEq)]
pub enum RawLabels {
    /// One class per row, as written (`3`, `golgi apparatus`).
    Classes(Vec<String>),
    /// Row-major 0/1 rows of width `names.len()`.
    MultiHot { values: Vec<u8>, names: Vec<String> },
}

impl RawLabels {
    pub fn rows(&self) -> usize {
        match self {
            Self::Classes(v) => v.len(),
            Self::MultiHot { values, names } => values.len() / names.len().max(1),
        }
    }
}

/// Reads labels: `.npy` int/float `(N,)` or `(N, 1)` → classes, `(N, K)` → 0/1 multi-hot
/// (`(N, 1)` is multi-hot only when `multilabel`); a CSV with a `label` column (or a single
/// column) → classes, else every column 0/1 → multi-hot named after the columns.
pub fn read_labels(path: &Path, flag: &str, multilabel: bool) -> Result<RawLabels, String> {
    let err = |e: String| format!("{flag} {}: {e}", path.display());
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let labels = if is_csv { read_csv_labels(path, multilabel) } else { read_npy_labels(path, multilabel) };
    let labels = labels.map_err(err)?;
    if labels.rows() == 0 {
        return Err(err("no labels".into()));
    }
    Ok(labels)
}

fn read_npy_labels(path: &Path, multilabel: bool) -> Result<RawLabels, String> {
    let t = Tensor::read_npy(path).map_err(|e| e.to_string())?;
    let dims = t.dims().to_vec();
    let values = t
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .map_err(|e| e.to_string())?;
    let k = match dims[..] {
        [_] => None,
        [_, 1] if !multilabel => None,
        [_, k] => Some(k),
        _ => return Err(format!("expected labels of shape (N,) or (N, K), found {dims:?}")),
    };
    match k {
        None => {
            let classes = values
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 {
                        Ok(format!("{}", v as u64))
                    } else {
                        Err(format!("row {i}: label {v} is not a non-negative integer class index"))
                    }
                })
                .collect::<Result<_, _>>()?;
            Ok(RawLabels::Classes(classes))
        }
        Some(k) => {
            let values = values
                .iter()
                .enumerate()
                .map(|(i, &v)| match v {
                    0.0 => Ok(0u8),
                    1.0 => Ok(1u8),
                    _ => Err(format!("row {} column {}: multi-label value {v} is not 0 or 1", i / k, i % k)),
                })
                .collect::<Result<_, _>>()?;
            Ok(RawLabels::MultiHot { values, names: (0..k).map(|i| i.to_string()).collect() })
        }
    }
}

fn read_csv_labels(path: &Path, multilabel: bool) -> Result<RawLabels, String> {
    let mut r = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let headers: Vec<String> = r.headers().map_err(|e| e.to_string())?.iter().map(|h| h.trim().to_owned()).collect();
    let rows: Vec<Vec<String>> = r
        .records()
        .map(|rec| rec.map(|rec| rec.iter().map(|c| c.trim().to_owned()).collect()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let single = headers.iter().position(|h| h == "label").or((headers.len() == 1 && !multilabel).then_some(0));
    if let Some(c) = single {
        let classes = rows
            .iter()
            .enumerate()
            .map(|(i, row)| match row.get(c).filter(|v| !v.is_empty()) {
                Some(v) => Ok(v.clone()),
                None => Err(format!("line {}: empty label", i + 2)),
            })
            .collect::<Result<_, _>>()?;
        return Ok(RawLabels::Classes(classes));
    }
    let mut values = Vec::with_capacity(rows.len() * headers.len());
    for (i, row) in rows.iter().enumerate() {
        for (j, v) in row.iter().enumerate() {
            values.push(match v.as_str() {
                "1" | "1.0" | "true" | "True" => 1,
                "0" | "0.0" | "false" | "False" => 0,
                _ => {
                    return Err(format!(
                        "line {}: column {:?} value {v:?} is not 0/1 (multi-label CSVs hold one 0/1 column per \
                         label; multi-class CSVs a `label` column)",
                        i + 2,
                        headers[j]
                    ));
                }
            });
        }
    }
    Ok(RawLabels::MultiHot { values, names: headers })
}

/// Labels of every split mapped onto one class / label list.
pub enum Encoded {
    Multiclass { classes: Vec<String>, splits: Vec<Vec<usize>> },
    Multilabel { names: Vec<String>, splits: Vec<Vec<u8>> },
}

/// Maps the labels of the splits (train first) onto the class list. Multi-class: the list is
/// `0..num_classes` if given, else `0..=max` of the train labels when they are all integers,
/// else the sorted distinct train labels; a label of any split outside it is an error.
/// Multi-label: every split must have the same width.
pub fn encode(splits: &[(&str, RawLabels)], num_classes: Option<usize>) -> Result<Encoded, String> {
    let Some((train_name, train)) = splits.first() else { return Err("no labels".into()) };
    match train {
        RawLabels::Classes(train_values) => {
            let integers: Option<Vec<u64>> = train_values.iter().map(|v| v.parse::<u64>().ok()).collect();
            let classes: Vec<String> = match (num_classes, integers) {
                (Some(k), _) => (0..k).map(|i| i.to_string()).collect(),
                (None, Some(ints)) => (0..=ints.iter().copied().max().unwrap_or(0)).map(|i| i.to_string()).collect(),
                (None, None) => {
                    let mut v = train_values.clone();
                    v.sort();
                    v.dedup();
                    v
                }
            };
            let index: std::collections::HashMap<&str, usize> =
                classes.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
            let mut out = Vec::new();
            for (name, labels) in splits {
                let RawLabels::Classes(values) = labels else {
                    return Err(format!("{name} are multi-label but {train_name} are multi-class"));
                };
                let mapped = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        index.get(v.as_str()).copied().ok_or_else(|| {
                            let list = if classes.len() <= 12 {
                                format!("{classes:?}")
                            } else {
                                format!("{} classes from {train_name}", classes.len())
                            };
                            format!("{name} row {i}: label {v:?} is outside the class list {list}")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(mapped);
            }
            Ok(Encoded::Multiclass { classes, splits: out })
        }
        RawLabels::MultiHot { names, .. } => {
            let mut out = Vec::new();
            for (name, labels) in splits {
                let RawLabels::MultiHot { values, names: n } = labels else {
                    return Err(format!("{name} are multi-class but {train_name} are multi-label"));
                };
                if n.len() != names.len() {
                    return Err(format!(
                        "{name} have {} label columns, {train_name} have {} (labels outside the label list)",
                        n.len(),
                        names.len()
                    ));
                }
                out.push(values.clone());
            }
            Ok(Encoded::Multilabel { names: names.clone(), splits: out })
        }
    }
}

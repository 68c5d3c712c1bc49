//! What a dataset holds: row count, the channel layouts of its images, label counts and the rows
//! whose image cannot be read ([`DatasetSummary`], for `cellino inspect`).

use std::path::PathBuf;

use crate::{DataError, Dataset, LabelSchema, Target};

/// Images with one channel layout, and how many rows have it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSet {
    pub channels: usize,
    /// The channel names as loaded; `None` when no channel has a name.
    pub names: Option<Vec<Option<String>>>,
    pub rows: usize,
}

/// A row whose image could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadableRow {
    /// Index of the record in the dataset.
    pub index: usize,
    /// The file that failed (for per-channel files: the failing one).
    pub path: PathBuf,
    /// 1-based manifest line (0 when the record does not come from a manifest).
    pub line: u64,
    /// Why, on one line, without the path.
    pub error: String,
}

/// A summary of a [`Dataset`], built by [`DatasetSummary::of`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetSummary {
    pub rows: usize,
    /// Rows whose image was read: the first `max_rows` (all by default).
    pub scanned: usize,
    /// Channel layouts of the scanned rows that could be read, most frequent first (ties: first seen).
    pub channel_sets: Vec<ChannelSet>,
    /// Per class (single-label) or per label (multi-label, rows where it is positive), in the
    /// dataset's label order, over all rows (labels come from the manifest, not the images).
    /// Tuple targets (HPA without `mode`) list the labels of every part.
    pub labels: Vec<(String, usize)>,
    /// Rows of a labelled dataset whose label (or a part of it) is missing.
    pub missing_labels: usize,
    pub unreadable: Vec<UnreadableRow>,
}

impl DatasetSummary {
    /// Reads the images of the first `max_rows` rows (all when `None`) one by one, calling
    /// `progress(done, total)` after each. Unreadable images are listed, not returned as errors.
    pub fn of(dataset: &Dataset, max_rows: Option<usize>, mut progress: impl FnMut(usize, usize)) -> Self {
        let rows = dataset.len();
        let scanned = max_rows.map_or(rows, |m| m.min(rows));
        let mut channel_sets: Vec<ChannelSet> = Vec::new();
        let mut unreadable = Vec::new();
        for index in 0..scanned {
            match dataset.load(index) {
                Ok(sample) => {
                    let names = sample.image.channel_names.clone();
                    let names = names.iter().any(Option::is_some).then_some(names);
                    let channels = sample.image.channels;
                    match channel_sets.iter_mut().find(|s| s.channels == channels && s.names == names) {
                        Some(set) => set.rows += 1,
                        None => channel_sets.push(ChannelSet { channels, names, rows: 1 }),
                    }
                }
                Err(e) => unreadable.push(unreadable_row(dataset, index, e)),
            }
            progress(index + 1, scanned);
        }
        // Stable: equal counts keep the order they were first seen in.
        channel_sets.sort_by_key(|s| std::cmp::Reverse(s.rows));

        let names = label_names(&dataset.labels);
        let mut counts = vec![0usize; names.len()];
        let mut missing_labels = 0;
        if dataset.labels != LabelSchema::None {
            for record in &dataset.records {
                if !add_labels(&dataset.labels, &record.target, &mut counts) {
                    missing_labels += 1;
                }
            }
        }
        Self {
            rows,
            scanned,
            channel_sets,
            labels: names.into_iter().zip(counts).collect(),
            missing_labels,
            unreadable,
        }
    }
}

fn unreadable_row(dataset: &Dataset, index: usize, error: DataError) -> UnreadableRow {
    // `load` wraps the reader's error with the sample's origin; the row's path and line say that.
    let inner = match error {
        DataError::Sample { source, .. } => *source,
        e => e,
    };
    let record = &dataset.records[index];
    let path = if inner.path().as_os_str().is_empty() { record.source.path() } else { inner.path() }.to_path_buf();
    let text = inner.to_string();
    let prefix = format!("{}: ", path.display());
    let text = text.strip_prefix(&prefix).unwrap_or(&text);
    let error = text.split_whitespace().collect::<Vec<_>>().join(" ");
    UnreadableRow { index, path, line: record.line, error }
}

/// The label names of `schema`, the parts of a tuple one after the other.
fn label_names(schema: &LabelSchema) -> Vec<String> {
    match schema {
        LabelSchema::Tuple(parts) => parts.iter().flat_map(label_names).collect(),
        other => other.names().to_vec(),
    }
}

/// Adds `target` to `counts` (laid out as [`label_names`]); false when the label is missing.
fn add_labels(schema: &LabelSchema, target: &Target, counts: &mut [usize]) -> bool {
    match (schema, target) {
        (LabelSchema::SingleLabel { .. }, Target::Class(c)) => match counts.get_mut(*c) {
            Some(n) => {
                *n += 1;
                true
            }
            None => false,
        },
        (LabelSchema::MultiLabel { .. }, Target::MultiHot(v)) => {
            for (n, &b) in counts.iter_mut().zip(v) {
                *n += usize::from(b != 0);
            }
            true
        }
        (LabelSchema::Tuple(parts), Target::Tuple(targets)) => {
            let mut offset = 0;
            let mut complete = parts.len() == targets.len();
            for (part, t) in parts.iter().zip(targets) {
                let n = label_names(part).len();
                complete &= counts.get_mut(offset..offset + n).is_some_and(|c| add_labels(part, t, c));
                offset += n;
            }
            complete
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManifestOptions, SynthConfig, write_synthetic_dataset};

    #[test]
    fn counts_channels_labels_and_unreadable_rows() {
        let dir = tempfile::tempdir().unwrap();
        let config = SynthConfig { num_images: 6, size: 32, seed: 1, ..SynthConfig::default() };
        let manifest = write_synthetic_dataset(dir.path(), &config).unwrap();
        let mut text = std::fs::read_to_string(&manifest).unwrap();
        let first = text.lines().nth(1).unwrap().split_once(',').unwrap().1.to_owned();
        text.push_str(&format!("images/gone.png,{first}\n"));
        std::fs::write(&manifest, text).unwrap();
        let dataset = Dataset::from_manifest(&manifest, &config.manifest_options()).unwrap();

        let mut calls = Vec::new();
        let s = DatasetSummary::of(&dataset, None, |done, total| calls.push((done, total)));
        assert_eq!((s.rows, s.scanned, calls.len(), calls[6]), (7, 7, 7, (7, 7)));
        assert_eq!(s.channel_sets.len(), 1);
        let set = &s.channel_sets[0];
        assert_eq!((set.channels, set.rows), (4, 6));
        assert_eq!(set.names.as_ref().unwrap()[0].as_deref(), Some("nucleus"));
        assert_eq!(s.labels.len(), 6);
        assert_eq!(s.labels.iter().map(|l| l.1).sum::<usize>(), 7);
        assert_eq!(s.missing_labels, 0);
        assert_eq!(s.unreadable.len(), 1);
        let bad = &s.unreadable[0];
        assert_eq!((bad.index, bad.line), (6, 8));
        assert!(bad.path.ends_with("images/gone.png"));
        assert!(bad.error.starts_with("cannot read file"), "{}", bad.error);

        let s = DatasetSummary::of(&dataset, Some(2), |_, _| {});
        assert_eq!((s.rows, s.scanned, s.channel_sets[0].rows), (7, 2, 2));
        assert!(s.unreadable.is_empty());
    }

    #[test]
    fn multi_label_counts_positives_and_empty_cells_are_missing() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("m.csv");
        std::fs::write(&csv, "path,labels\na.png,x;y\nb.png,y\nc.png,\n").unwrap();
        let ds = Dataset::from_manifest(&csv, &ManifestOptions::default()).unwrap();
        let s = DatasetSummary::of(&ds, Some(0), |_, _| {});
        assert_eq!(s.labels, vec![("x".to_owned(), 1), ("y".to_owned(), 2)]);
        assert_eq!((s.scanned, s.missing_labels), (0, 0));

        std::fs::write(&csv, "path,label\na.png,x\nb.png,\n").unwrap();
        let ds = Dataset::from_manifest(&csv, &ManifestOptions::default()).unwrap();
        let s = DatasetSummary::of(&ds, Some(0), |_, _| {});
        assert_eq!((s.labels.clone(), s.missing_labels), (vec![("x".to_owned(), 1)], 1));
    }
}

//! Channel-subset sweep for Bag-of-Channels features: every feature row is the concatenation
//! of per-channel blocks ([`FeatureLayout`]), so the features of the model run on a subset of
//! the channels are those blocks, kept in column order. Each subset is scored with kNN or
//! the linear probe.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::data::{FeatureMatrix, Split};
use crate::error::{EvalError, Result};
use crate::knn::{KnnConfig, knn_evaluate};
use crate::layout::FeatureLayout;
use crate::linear::{LinearProbeConfig, Validation, run_linear_probe};

/// At most this many channels for [`SweepSubsets::All`] (2^8 − 1 = 255 subsets).
pub const MAX_SWEEP_CHANNELS: usize = 8;

/// Which channel subsets to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepSubsets {
    /// Every non-empty subset: by size, then in lexicographic order of channel indices.
    All,
    /// The given subsets, by channel name, in the order given (each sorted into channel order).
    Named(Vec<Vec<String>>),
}

/// The classifier fitted on every subset.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepClassifier {
    /// Weighted kNN; the headline score is the first `k`'s.
    Knn(KnnConfig),
    /// The linear-probe grid, selected on `fraction` of the train rows (seeded), never on test.
    Linear { config: LinearProbeConfig, fraction: f64, seed: u64 },
}

/// The score of one channel subset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    /// Channel names, in channel order.
    pub channels: Vec<String>,
    /// Channel indices, in channel order.
    pub channel_indices: Vec<usize>,
    /// Feature columns used.
    pub dim: usize,
    pub macro_f1: f64,
    pub accuracy: f64,
}

/// The channel names of a Bag-of-Channels layout, in channel order (`channel<i>` where the
/// layout has no name).
///
/// # Errors
/// [`EvalError::NotBagOfChannels`] for a layout without per-channel blocks.
pub fn layout_channel_names(layout: &FeatureLayout) -> Result<Vec<String>> {
    if !layout.bag_of_channels {
        return Err(EvalError::NotBagOfChannels { what: "channel-subset sweep" });
    }
    Ok((0..layout.channels)
        .map(|c| {
            layout
                .segments
                .iter()
                .find(|s| s.channel == Some(c))
                .and_then(|s| s.channel_name.clone())
                .unwrap_or_else(|| format!("channel{c}"))
        })
        .collect())
}

/// The column ranges of `channels` (indices, any order): every block of those channels, in
/// column order (adjacent blocks merged).
///
/// # Errors
/// A non-BoC layout, an empty subset, a channel index out of range.
pub fn subset_columns(layout: &FeatureLayout, channels: &[usize]) -> Result<Vec<Range<usize>>> {
    if !layout.bag_of_channels {
        return Err(EvalError::NotBagOfChannels { what: "channel-subset sweep" });
    }
    if channels.is_empty() {
        return Err(EvalError::Empty { what: "channel subset" });
    }
    if let Some((position, &index)) = channels.iter().enumerate().find(|(_, c)| **c >= layout.channels) {
        return Err(EvalError::IndexOutOfRange { what: "channel subset", position, index, len: layout.channels });
    }
    let mut out: Vec<Range<usize>> = Vec::new();
    for s in layout.segments.iter().filter(|s| s.channel.is_some_and(|c| channels.contains(&c))) {
        match out.last_mut() {
            Some(last) if last.end == s.start => last.end = s.end,
            _ => out.push(s.columns()),
        }
    }
    Ok(out)
}

/// The columns `ranges` of every row of `m`, row-major.
pub fn select_columns(m: &FeatureMatrix<'_>, ranges: &[Range<usize>]) -> Vec<f32> {
    let width: usize = ranges.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(m.n_rows() * width);
    for i in 0..m.n_rows() {
        let row = m.row(i);
        ranges.iter().for_each(|r| out.extend_from_slice(&row[r.clone()]));
    }
    out
}

/// The channel indices of the subsets to run, each in channel order.
fn resolve(subsets: &SweepSubsets, names: &[String]) -> Result<Vec<Vec<usize>>> {
    match subsets {
        SweepSubsets::All => {
            let c = names.len();
            if c > MAX_SWEEP_CHANNELS {
                return Err(EvalError::InvalidConfig {
                    what: "channel-subset sweep",
                    reason: format!(
                        "{c} channels give {} subsets; every subset is allowed for at most {MAX_SWEEP_CHANNELS} \
                         channels (list the subsets instead)",
                        (1u128 << c.min(127)) - 1
                    ),
                });
            }
            let mut all: Vec<Vec<usize>> =
                (1u32..1 << c).map(|mask| (0..c).filter(|&i| mask & (1 << i) != 0).collect()).collect();
            all.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
            Ok(all)
        }
        SweepSubsets::Named(list) => {
            if list.is_empty() {
                return Err(EvalError::Empty { what: "channel subset list" });
            }
            list.iter()
                .map(|subset| {
                    if subset.is_empty() {
                        return Err(EvalError::Empty { what: "channel subset" });
                    }
                    let mut idx = subset
                        .iter()
                        .map(|n| {
                            names
                                .iter()
                                .position(|k| k == n.trim())
                                .ok_or_else(|| EvalError::UnknownChannel { name: n.clone(), known: names.to_vec() })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    idx.sort_unstable();
                    if idx.windows(2).any(|w| w[0] == w[1]) {
                        return Err(EvalError::InvalidConfig {
                            what: "channel subset",
                            reason: format!("{subset:?} names a channel twice"),
                        });
                    }
                    Ok(idx)
                })
                .collect()
        }
    }
}

/// Scores every channel subset of Bag-of-Channels features: the subset's blocks are cut
/// from train and test (same layout) and `classifier` is fitted and scored on them.
///
/// # Errors
/// Layouts that differ, are not BoC or do not match the matrices; unknown channel names,
/// empty or repeated subsets, too many channels for [`SweepSubsets::All`]; the classifier's
/// errors.
pub fn channel_sweep(
    train: &Split<'_>,
    test: &Split<'_>,
    layout: &FeatureLayout,
    subsets: &SweepSubsets,
    classifier: &SweepClassifier,
) -> Result<Vec<SweepResult>> {
    channel_sweep_reporting(train, test, layout, subsets, classifier, &mut |_, _| {})
}

/// [`channel_sweep`], calling `progress(done, total)` after every channel subset scored (for a
/// progress bar: up to 255 subsets, each a full kNN or linear-probe fit).
pub fn channel_sweep_reporting(
    train: &Split<'_>,
    test: &Split<'_>,
    layout: &FeatureLayout,
    subsets: &SweepSubsets,
    classifier: &SweepClassifier,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<SweepResult>> {
    train.check_compatible(test, "test split (vs train)")?;
    let names = layout_channel_names(layout)?;
    layout.validate()?;
    if layout.dim != train.features().dim() {
        return Err(EvalError::Mismatch {
            what: "feature columns (vs the layout)",
            expected: layout.dim,
            actual: train.features().dim(),
        });
    }
    let plan = resolve(subsets, &names)?;
    let (total, mut out) = (plan.len(), Vec::with_capacity(plan.len()));
    for channels in plan {
        let cols = subset_columns(layout, &channels)?;
        let tx = select_columns(&train.features(), &cols);
        let qx = select_columns(&test.features(), &cols);
        let dim = cols.iter().map(|r| r.len()).sum();
        let tr = Split::from_parts(&tx, dim, train.targets())?;
        let te = Split::from_parts(&qx, dim, test.targets())?;
        let metrics = match classifier {
            SweepClassifier::Knn(config) => {
                let first = config.ks.first().copied().ok_or(EvalError::Empty { what: "kNN k list" })?;
                let mut r = knn_evaluate(&tr, &te, config)?;
                r.k.remove(&first).ok_or(EvalError::Empty { what: "kNN scores" })?
            }
            SweepClassifier::Linear { config, fraction, seed } => {
                let validation = Validation::CarveFromTrain { fraction: *fraction, seed: *seed };
                run_linear_probe(&tr, validation, &te, config)?.test
            }
        };
        out.push(SweepResult {
            channels: channels.iter().map(|&c| names[c].clone()).collect(),
            channel_indices: channels,
            dim,
            macro_f1: metrics.macro_f1(),
            accuracy: metrics.accuracy(),
        });
        progress(out.len(), total);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Targets;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// 3 channels, width 2, CLS of the last 2 blocks + patch average: 18 columns.
    fn layout() -> FeatureLayout {
        FeatureLayout::new(2, true, true, 2, 3, 4, Some(&names(&["DNA", "ER", "Mito"]))).unwrap()
    }

    #[test]
    fn subset_picks_exactly_the_channel_blocks() {
        let l = layout();
        // Value = column index, 2 rows (second row offset by 100).
        let data: Vec<f32> = (0..2).flat_map(|r| (0..18).map(move |c| (r * 100 + c) as f32)).collect();
        let m = FeatureMatrix::new(&data, 18).unwrap();
        // Channels DNA (0) and Mito (2): per block [c0 | c1 | c2] = cols [0,1 | 2,3 | 4,5], then
        // block 3 at 6..12, avgpool at 12..18.
        let cols = subset_columns(&l, &[2, 0]).unwrap();
        assert_eq!(cols, vec![0..2, 4..8, 10..14, 16..18]);
        let want: Vec<f32> = (0..2)
            .flat_map(|r| [0, 1, 4, 5, 6, 7, 10, 11, 12, 13, 16, 17].map(move |c| (r * 100 + c) as f32))
            .collect();
        assert_eq!(select_columns(&m, &cols), want);
        // One channel.
        assert_eq!(subset_columns(&l, &[1]).unwrap(), vec![2..4, 8..10, 14..16]);
        // All channels: the whole row.
        assert_eq!(subset_columns(&l, &[0, 1, 2]).unwrap(), vec![0..18]);
    }

    #[test]
    fn resolve_orders_and_checks() {
        let n = names(&["DNA", "ER", "Mito"]);
        let all = resolve(&SweepSubsets::All, &n).unwrap();
        assert_eq!(all, vec![vec![0], vec![1], vec![2], vec![0, 1], vec![0, 2], vec![1, 2], vec![0, 1, 2]]);
        let given = SweepSubsets::Named(vec![names(&["Mito", "DNA"]), names(&["ER"])]);
        assert_eq!(resolve(&given, &n).unwrap(), vec![vec![0, 2], vec![1]]);
        let unknown = resolve(&SweepSubsets::Named(vec![names(&["RNA"])]), &n);
        assert!(matches!(unknown, Err(EvalError::UnknownChannel { ref name, .. }) if name == "RNA"));
        let empty = resolve(&SweepSubsets::Named(vec![vec![]]), &n);
        assert!(matches!(empty, Err(EvalError::Empty { .. })));
        let twice = resolve(&SweepSubsets::Named(vec![names(&["ER", "ER"])]), &n);
        assert!(matches!(twice, Err(EvalError::InvalidConfig { .. })));
        let nine: Vec<String> = (0..9).map(|i| format!("c{i}")).collect();
        assert!(matches!(resolve(&SweepSubsets::All, &nine), Err(EvalError::InvalidConfig { .. })));
        assert_eq!(resolve(&SweepSubsets::All, &nine[..8]).unwrap().len(), 255);
        let not_boc = FeatureLayout::new(1, false, false, 4, 3, 4, None).unwrap();
        assert!(matches!(layout_channel_names(&not_boc), Err(EvalError::NotBagOfChannels { .. })));
        assert!(matches!(subset_columns(&not_boc, &[0]), Err(EvalError::NotBagOfChannels { .. })));
        assert!(matches!(subset_columns(&layout(), &[]), Err(EvalError::Empty { .. })));
        assert!(matches!(subset_columns(&layout(), &[3]), Err(EvalError::IndexOutOfRange { .. })));
    }

    /// Features where only the ER channel (1) carries the class.
    fn data(n: usize, offset: usize) -> (Vec<f32>, Vec<usize>) {
        let l = layout();
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let class = (i + offset) % 3;
            let mut row: Vec<f32> =
                (0..l.dim).map(|c| (((i * 31 + c * 17 + offset * 7) % 23) as f32 / 23.0) - 0.5).collect();
            for s in l.segments.iter().filter(|s| s.channel == Some(1)) {
                // Three directions in the block's plane: +x, +y, −x.
                row[s.start] += [3.0, 0.0, -3.0][class];
                row[s.start + 1] += [0.0, 3.0, 0.0][class];
            }
            x.extend(row);
            y.push(class);
        }
        (x, y)
    }

    /// Runs `f` on the [`layout`] and train (60 rows) and test (21 rows) splits of [`data`].
    fn with_splits(f: impl FnOnce(&FeatureLayout, Split<'_>, Split<'_>)) {
        let l = layout();
        let (tx, ty) = data(60, 0);
        let (qx, qy) = data(21, 1);
        let train = Split::from_parts(&tx, l.dim, Targets::multiclass(&ty, 3)).unwrap();
        let test = Split::from_parts(&qx, l.dim, Targets::multiclass(&qy, 3)).unwrap();
        f(&l, train, test);
    }

    #[test]
    fn full_set_equals_knn_on_the_whole_matrix() {
        with_splits(|l, train, test| {
            let config = KnnConfig::with_ks(&[5]);
            let subsets = SweepSubsets::Named(vec![names(&["DNA", "ER", "Mito"]), names(&["ER"]), names(&["DNA"])]);
            let r = channel_sweep(&train, &test, l, &subsets, &SweepClassifier::Knn(config.clone())).unwrap();
            let whole = knn_evaluate(&train, &test, &config).unwrap();
            assert_eq!(r[0].channels, names(&["DNA", "ER", "Mito"]));
            assert_eq!(r[0].dim, 18);
            assert_eq!(r[0].macro_f1, whole.k[&5].macro_f1());
            assert_eq!(r[0].accuracy, whole.k[&5].accuracy());
            // ER alone carries the class; DNA alone does not.
            assert_eq!((r[1].dim, r[1].accuracy), (6, 1.0));
            assert!(r[2].accuracy < 0.7, "DNA alone: {}", r[2].accuracy);
            // Layout / matrix mismatch is an error, not a panic.
            let other = FeatureLayout::new(1, false, true, 2, 3, 4, None).unwrap();
            assert!(matches!(
                channel_sweep(&train, &test, &other, &SweepSubsets::All, &SweepClassifier::Knn(config)),
                Err(EvalError::Mismatch { .. })
            ));
        });
    }

    #[test]
    fn reporting_counts_subsets() {
        with_splits(|l, train, test| {
            let knn = SweepClassifier::Knn(KnnConfig::with_ks(&[3]));
            let (reported, total) = crate::testing::recording(|p| {
                channel_sweep_reporting(&train, &test, l, &SweepSubsets::All, &knn, p).unwrap()
            });
            assert_eq!(total, 7);
            assert_eq!(reported, channel_sweep(&train, &test, l, &SweepSubsets::All, &knn).unwrap());
        });
    }
}

//! `cellino eval linear|knn|chammi|sweep`: thin wrappers over cellino-eval that read feature and label
//! files, run the protocol and write one result JSON atomically.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cellino_data::{ChammiSplit, ChammiSubset};
use cellino_eval::{
    ChammiClassifier, Distance, EmbeddingSet, FeatureLayout, KnnConfig, LinearProbeConfig, MAX_SWEEP_CHANNELS,
    MulticlassMetrics, ProbeSelection, Split, SplitMetrics, StoredLabels, SweepClassifier, SweepSubsets, Targets,
    Validation, chammi_task_inputs, channel_sweep_reporting, knn_evaluate_reporting, layout_channel_names,
    nearest_neighbours_reporting, read_embeddings, run_linear_probe_reporting,
};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::labels::{Encoded, Features, RawLabels, encode, read_features, read_labels};
use crate::progress;
use cellino_data::write_atomically;

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  cellino eval knn --train-features train.npy --train-labels train.csv \\\n      \
--test-features test.npy --test-labels test.csv --out knn.json\n\nEach subcommand's --help has its own example.")]
pub struct EvalArgs {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Debug, Subcommand)]
enum EvalCommand {
    /// Linear-probe grid (AdamW, cosine schedule) on frozen features; selection on a split other than test.
    Linear(LinearArgs),
    /// Weighted kNN (cosine, softmax(sim / T) votes) for several k, or the exact L2 1-NN of CHAMMI.
    Knn(KnnArgs),
    /// The CHAMMI tasks of one subset (MorphEm protocol) from one embedding file and enriched_meta.csv.
    Chammi(ChammiArgs),
    /// Bag-of-Channels channel-subset sweep: kNN or linear probe on the columns of each channel subset.
    Sweep(SweepArgs),
}

pub fn run(args: &EvalArgs) -> Result<(), String> {
    match &args.command {
        EvalCommand::Linear(a) => run_linear(a),
        EvalCommand::Knn(a) => run_knn(a),
        EvalCommand::Chammi(a) => run_chammi(a),
        EvalCommand::Sweep(a) => run_sweep(a),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TaskKind {
    Multiclass,
    Multilabel,
}

#[derive(Debug, Args)]
#[command(after_long_help = LINEAR_HELP)]
struct LinearArgs {
    #[command(flatten)]
    data: TrainTestArgs,
    /// Validation split for model selection [default: 10 % carved from train, seed 0].
    #[arg(long, value_name = "NPY", requires = "val_labels")]
    val_features: Option<PathBuf>,
    #[arg(long, value_name = "NPY|CSV", requires = "val_features")]
    val_labels: Option<PathBuf>,
    /// Multi-class (cross-entropy, arg-max) or multi-label (BCE, sigmoid > 0.5).
    #[arg(long, value_enum)]
    task: TaskKind,
    #[command(flatten)]
    grid: ProbeGridArgs,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fix the multi-class class list to 0..K-1.
    #[arg(long, value_name = "K")]
    num_classes: Option<usize>,
    /// Result JSON (written atomically).
    #[arg(long)]
    out: PathBuf,
}

const LINEAR_HELP: &str = "\
Example:
  cellino eval linear --train-features train.npy --train-labels train.csv \\
      --test-features test.npy --test-labels test.csv --task multiclass --out linear.json

Defaults (16 learning rates x 3 weight decays, 30 epochs x 145 iterations, batch 64) are listed in
configs/eval/linear.yaml.

Result JSON: the cellino-eval LinearProbeReport (`test` and `validation` with accuracy and macro_f1,
the chosen `best_classifier`, `selection` saying where it was chosen, the whole `grid`), plus `inputs`.

Selection: on --val-features/--val-labels if given, else on --val-fraction of the train rows (seeded,
reported as carved). --select-on-test reproduces dinov2 (selection on the reported split; labelled).

Labels: .npy int or float (N,) class indices (multi-class) or 0/1 (N, K) (multi-label); or a CSV
with a `label` column (any class names) or K 0/1 columns named after the labels. The class list is
0..=max of the train labels (integers), or the sorted distinct train labels (names); --num-classes K
fixes it to 0..K-1. A label of any split outside it is an error. Features: .npy (N, D), any float or
int dtype, finite. Every split needs at least 2 rows, and as many label rows as feature rows.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Metric {
    Cosine,
    L2,
}

#[derive(Debug, Args)]
#[command(after_long_help = KNN_HELP)]
struct KnnArgs {
    #[command(flatten)]
    data: TrainTestArgs,
    /// Numbers of neighbours, evaluated at once.
    #[arg(long, value_delimiter = ',', default_value = "1,20", value_name = "K,K")]
    k: Vec<usize>,
    /// Softmax temperature of the vote weights (cosine).
    #[arg(long, default_value_t = 0.07)]
    temperature: f64,
    /// cosine: dinov2 weighted kNN. l2: exact 1-NN with Euclidean distance (CHAMMI); only k = 1.
    #[arg(long, value_enum, default_value = "cosine")]
    metric: Metric,
    /// Fix the multi-class class list to 0..K-1.
    #[arg(long, value_name = "K")]
    num_classes: Option<usize>,
    /// Result JSON (written atomically).
    #[arg(long)]
    out: PathBuf,
}

const KNN_HELP: &str = "\
Example:
  cellino eval knn --train-features train.npy --train-labels train.csv \\
      --test-features test.npy --test-labels test.csv --k 1,20 --out knn.json

Defaults (k 1,20, temperature 0.07, cosine) are listed in configs/eval/knn.yaml.

Metrics:
  cosine  dinov2 weighted kNN: L2-normalised features, top-k cosine neighbours, votes weighted by
          softmax(sim / T), several k at once (k = 1 is the cosine 1-NN).
  l2      the exact 1-NN of CHAMMI with Euclidean distance (f64, ties to the lower train row). Only
          k = 1 exists under l2: a k > 1 with --metric l2 is an error (weighted votes are defined on
          cosine similarity; use --metric cosine for k > 1). Multi-label: the neighbour's label row.

Result JSON: `k.<k>` holds accuracy and macro_f1 (plus per-class metrics) for every k.

Labels: .npy int or float (N,) class indices (multi-class) or 0/1 (N, K) (multi-label); or a CSV
with a `label` column (any class names) or K 0/1 columns named after the labels. The class list is
0..=max of the train labels (integers), or the sorted distinct train labels (names); --num-classes K
fixes it to 0..K-1. A label of any split outside it is an error. Every split needs at least 2 rows,
and as many label rows as feature rows.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SubsetArg {
    #[value(name = "WTC", alias = "wtc", alias = "Allen")]
    Wtc,
    #[value(name = "HPA", alias = "hpa")]
    Hpa,
    #[value(name = "CP", alias = "cp")]
    Cp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ClassifierArg {
    /// Exact 1-NN (MorphEm protocol), distance from --metric.
    #[value(name = "1nn")]
    OneNn,
    /// dinov2 weighted kNN (cosine), k from --k.
    Knn,
    /// Linear-probe grid.
    Linear,
}

#[derive(Debug, Args)]
#[command(after_long_help = CHAMMI_HELP)]
struct ChammiArgs {
    /// Embeddings written by `cellino embed` (emb.npy with emb.csv and emb.json next to it).
    #[arg(long, value_name = "NPY")]
    features: PathBuf,
    /// The subset's enriched_meta.csv (file_path, train_test_split, label, cell_type / Plate); the combined
    /// morphem70k_v2.csv works for the tasks that need no group column.
    #[arg(long, value_name = "CSV")]
    meta: PathBuf,
    #[arg(long, value_enum)]
    subset: SubsetArg,
    #[arg(long, value_enum, default_value = "1nn")]
    classifier: ClassifierArg,
    /// 1nn distance.
    #[arg(long, value_enum, default_value = "l2")]
    metric: Metric,
    /// knn: numbers of neighbours (the first is the headline score).
    #[arg(long, value_delimiter = ',', default_value = "1", value_name = "K,K")]
    k: Vec<usize>,
    /// knn: softmax temperature.
    #[arg(long, default_value_t = 0.07)]
    temperature: f64,
    #[command(flatten)]
    grid: ProbeGridArgs,
    /// Result JSON (written atomically).
    #[arg(long)]
    out: PathBuf,
}

const CHAMMI_HELP: &str = "\
Example:
  cellino eval chammi --features hpa.npy --meta /data/chammi/HPA/enriched_meta.csv --subset HPA --out chammi.json

How the splits are derived: the embedding rows are matched to the --meta rows of the subset (those
whose file_path starts with WTC's `Allen/`, `HPA/` or `CP/`) by path: an embedding row's source_path
(emb.csv) must end with the row's file_path. Rows of the embedding that match no meta row are ignored
(counted in the report); a meta row without an embedding row is an error. train_test_split gives
TRAIN and the tasks (WTC: TASK_ONE, TASK_TWO; HPA: + TASK_THREE; CP: + TASK_FOUR), `label` the class
(the subset's fixed class list; another label is an error), cell_type (HPA) / Plate (CP) the groups
of the leave-one-out task, which is scored over the novel classes [4, 5, 6] on the last block's CLS
(+ patch average) columns. A task with no rows in --meta is skipped and listed in `skipped_tasks`.

Make the embedding with
  cellino embed ... --bag-of-channels --input <root>/HPA/enriched_meta.csv --manifest-root <root> \\
      --tiling square --output hpa.npy

Result JSON: `tasks.<TASK_ONE|...>` holds macro_f1 and accuracy (and every score, e.g. `scores.k=1`),
`summary` one row per task.";

/// The train and test features and labels that `eval linear` and `eval knn` both take.
#[derive(Debug, Args)]
struct TrainTestArgs {
    #[arg(long, value_name = "NPY")]
    train_features: PathBuf,
    #[arg(long, value_name = "NPY|CSV")]
    train_labels: PathBuf,
    #[arg(long, value_name = "NPY")]
    test_features: PathBuf,
    #[arg(long, value_name = "NPY|CSV")]
    test_labels: PathBuf,
}

/// Features and labels of train and test, read and checked against each other.
struct TrainTest {
    train_x: Features,
    test_x: Features,
    train_y: RawLabels,
    test_y: RawLabels,
}

impl TrainTestArgs {
    fn read(&self, multilabel: bool) -> Result<TrainTest, String> {
        let train_x = read_features(&self.train_features, "--train-features")?;
        let test_x = read_features(&self.test_features, "--test-features")?;
        let train_y = read_labels(&self.train_labels, "--train-labels", multilabel)?;
        let test_y = read_labels(&self.test_labels, "--test-labels", multilabel)?;
        check_rows("train", &train_x, &train_y)?;
        check_rows("test", &test_x, &test_y)?;
        check_dims(&train_x, &test_x, "test")?;
        Ok(TrainTest { train_x, test_x, train_y, test_y })
    }

    /// The input paths, as recorded in the result JSON.
    fn inputs_json(&self) -> Value {
        json!({
            "train_features": path_str(&self.train_features),
            "train_labels": path_str(&self.train_labels),
            "test_features": path_str(&self.test_features),
            "test_labels": path_str(&self.test_labels),
        })
    }
}

fn check_rows(what: &str, features: &Features, labels: &RawLabels) -> Result<(), String> {
    if features.rows != labels.rows() {
        return Err(format!(
            "{what}: {} feature rows but {} label rows (they must match one to one)",
            features.rows,
            labels.rows()
        ));
    }
    if features.rows < 2 {
        return Err(format!("{what}: the split has {} sample; at least 2 are needed", features.rows));
    }
    Ok(())
}

fn check_dims(train: &Features, other: &Features, what: &str) -> Result<(), String> {
    if train.dim != other.dim {
        return Err(format!("{what} features have {} columns, train features {}", other.dim, train.dim));
    }
    Ok(())
}

/// Write `value` as pretty JSON to `out`, atomically.
fn write_json(out: &Path, value: &Value) -> Result<(), String> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }
    write_atomically(out, |tmp| std::fs::write(tmp, &bytes))
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(())
}

fn targets<'a>(enc: &'a Encoded, i: usize) -> Targets<'a> {
    match enc {
        Encoded::Multiclass { classes, splits } => Targets::multiclass(&splits[i], classes.len()),
        Encoded::Multilabel { names, splits } => Targets::multilabel(&splits[i], names.len()),
    }
}

fn class_names(enc: &Encoded) -> &[String] {
    match enc {
        Encoded::Multiclass { classes, .. } => classes,
        Encoded::Multilabel { names, .. } => names,
    }
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// `n_last_blocks` / `avgpool` from the embedding sidecar next to `features` (for classifier names).
fn sidecar_layout(features: &Path) -> (usize, bool) {
    let json: Option<Value> =
        std::fs::read(features.with_extension("json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
    let layout = json.as_ref().map(|v| &v["layout"]);
    let n = layout.and_then(|l| l["n_last_blocks"].as_u64()).unwrap_or(1) as usize;
    let avgpool = layout.and_then(|l| l["avgpool"].as_bool()).unwrap_or(false);
    (n, avgpool)
}

/// The linear-probe grid and its training schedule, shared by `eval linear` and `eval chammi --classifier linear`.
#[derive(Debug, Args)]
struct ProbeGridArgs {
    /// Linear probe: learning rates of the grid, before the batch/256 scaling [default: dinov2's 16].
    #[arg(long, value_delimiter = ',', value_name = "LR,LR")]
    learning_rates: Option<Vec<f64>>,
    /// Linear probe: weight decays of the grid [default: 0,1e-4,1e-5].
    #[arg(long, value_delimiter = ',', value_name = "WD,WD")]
    weight_decays: Option<Vec<f64>>,
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Linear probe: iterations per epoch; 0 = one pass over the fitted rows.
    #[arg(long, default_value_t = 145)]
    epoch_length: usize,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Linear probe: fraction of the fitted rows held out for selection when no validation split is given.
    #[arg(long, default_value_t = 0.1)]
    val_fraction: f64,
    /// Upstream dinov2 behaviour (to reproduce published numbers): select the classifier on the reported
    /// split itself. Optimistic; the report says so.
    #[arg(long)]
    select_on_test: bool,
}

impl ProbeGridArgs {
    fn config(&self) -> LinearProbeConfig {
        let mut c = LinearProbeConfig::default();
        if let Some(lr) = &self.learning_rates {
            c.learning_rates = lr.clone();
        }
        if let Some(wd) = &self.weight_decays {
            c.weight_decays = wd.clone();
        }
        c.epochs = self.epochs;
        c.epoch_length = (self.epoch_length > 0).then_some(self.epoch_length);
        c.batch_size = self.batch_size;
        c
    }
}

fn run_linear(a: &LinearArgs) -> Result<(), String> {
    if a.grid.select_on_test && a.val_features.is_some() {
        return Err("--select-on-test selects on the test split; it cannot be combined with --val-features".into());
    }
    let multilabel = a.task == TaskKind::Multilabel;
    let TrainTest { train_x, test_x, train_y, test_y } = a.data.read(multilabel)?;
    let mut label_sets = vec![("train labels", train_y), ("test labels", test_y)];
    let val_x = match (&a.val_features, &a.val_labels) {
        (Some(f), Some(l)) => {
            let x = read_features(f, "--val-features")?;
            let y = read_labels(l, "--val-labels", multilabel)?;
            check_rows("validation", &x, &y)?;
            check_dims(&train_x, &x, "validation")?;
            label_sets.push(("validation labels", y));
            Some(x)
        }
        _ => None,
    };
    let enc = encode(&label_sets, a.num_classes)?;
    let found_multilabel = matches!(enc, Encoded::Multilabel { .. });
    if found_multilabel != multilabel {
        return Err(format!(
            "--task {} but the labels are {} (class indices (N,) are multi-class, 0/1 (N, K) multi-label)",
            if multilabel { "multilabel" } else { "multiclass" },
            if found_multilabel { "multi-label" } else { "multi-class" }
        ));
    }
    let e = |e: cellino_eval::EvalError| e.to_string();
    let train = Split::from_parts(&train_x.values, train_x.dim, targets(&enc, 0)).map_err(e)?;
    let test = Split::from_parts(&test_x.values, test_x.dim, targets(&enc, 1)).map_err(e)?;
    let validation = match &val_x {
        Some(x) => Validation::Split(Split::from_parts(&x.values, x.dim, targets(&enc, 2)).map_err(e)?),
        None if a.grid.select_on_test => Validation::UpstreamSelectOnTest,
        None => Validation::CarveFromTrain { fraction: a.grid.val_fraction, seed: a.seed },
    };
    let mut config = a.grid.config();
    config.seed = a.seed;
    (config.n_last_blocks, config.avgpool) = sidecar_layout(&a.data.train_features);
    let pb = progress::bar(config.iterations(train.n_samples()), "iterations", "linear-probe grid");
    let report =
        run_linear_probe_reporting(&train, validation, &test, &config, &mut progress::reporter(&pb)).map_err(e)?;
    pb.finish_and_clear();
    let mut v = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    v["classes"] = json!(class_names(&enc));
    let mut inputs = a.data.inputs_json();
    inputs["val_features"] = json!(a.val_features.as_deref().map(path_str));
    inputs["val_labels"] = json!(a.val_labels.as_deref().map(path_str));
    v["inputs"] = inputs;
    write_json(&a.out, &v)?;
    crate::info!(
        "{}: test macro F1 {:.4}, accuracy {:.4} ({}); wrote {}",
        report.best_classifier,
        report.test.macro_f1(),
        report.test.accuracy(),
        report.selection.note,
        a.out.display()
    );
    Ok(())
}

fn run_knn(a: &KnnArgs) -> Result<(), String> {
    if a.k.is_empty() || a.k.contains(&0) {
        return Err("--k: give positive numbers of neighbours, e.g. --k 1,20".into());
    }
    if a.metric == Metric::L2 && a.k.iter().any(|&k| k != 1) {
        return Err(format!(
            "--metric l2 is the exact 1-NN of CHAMMI and only takes --k 1 (got {:?}); weighted kNN with k > 1 uses \
             cosine similarity: --metric cosine",
            a.k
        ));
    }
    let TrainTest { train_x, test_x, train_y, test_y } = a.data.read(false)?;
    let enc = encode(&[("train labels", train_y), ("test labels", test_y)], a.num_classes)?;
    let e = |e: cellino_eval::EvalError| e.to_string();
    let train = Split::from_parts(&train_x.values, train_x.dim, targets(&enc, 0)).map_err(e)?;
    let test = Split::from_parts(&test_x.values, test_x.dim, targets(&enc, 1)).map_err(e)?;
    let pb = progress::bar(test.n_samples(), "queries", "kNN search");
    let mut v = match a.metric {
        Metric::Cosine => {
            let config = KnnConfig { ks: a.k.clone(), temperature: a.temperature, ..KnnConfig::default() };
            let report = knn_evaluate_reporting(&train, &test, &config, &mut progress::reporter(&pb)).map_err(e)?;
            let mut v = serde_json::to_value(report).map_err(|e| e.to_string())?;
            v["metric"] = json!("cosine");
            v
        }
        Metric::L2 => {
            let (fit, queries) = (train.features(), test.features());
            let nn = nearest_neighbours_reporting(
                &fit,
                &queries,
                Distance::L2,
                Default::default(),
                &mut progress::reporter(&pb),
            )
            .map_err(e)?;
            let metrics = match (train.targets(), test.targets()) {
                (Targets::Multiclass { labels, n_classes }, Targets::Multiclass { labels: truth, .. }) => {
                    let pred: Vec<usize> = nn.iter().map(|n| labels[n.index]).collect();
                    SplitMetrics::Multiclass(
                        MulticlassMetrics::from_predictions(truth, &pred, n_classes).map_err(e)?.into(),
                    )
                }
                (Targets::Multilabel { targets: rows, n_labels }, tt) => {
                    let scores: Vec<f32> = nn
                        .iter()
                        .flat_map(|n| rows[n.index * n_labels..(n.index + 1) * n_labels].iter().map(|&x| f32::from(x)))
                        .collect();
                    SplitMetrics::from_scores(tt, &scores).map_err(e)?
                }
                _ => return Err("train and test labels are of different kinds".into()),
            };
            json!({
                "task": if matches!(enc, Encoded::Multilabel { .. }) { "multilabel" } else { "multiclass" },
                "metric": "l2",
                "note": "exact 1-NN with Euclidean distance (CHAMMI); the neighbour's label is the prediction",
                "n_train": train.n_samples(),
                "n_test": test.n_samples(),
                "dim": train_x.dim,
                "k": { "1": metrics },
            })
        }
    };
    pb.finish_and_clear();
    v["classes"] = json!(class_names(&enc));
    v["inputs"] = a.data.inputs_json();
    write_json(&a.out, &v)?;
    let summary: Vec<String> = v["k"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, s)| format!("k={k}: macro F1 {:.4}", s["macro_f1"].as_f64().unwrap_or(f64::NAN)))
                .collect()
        })
        .unwrap_or_default();
    crate::info!("{}; wrote {}", summary.join(", "), a.out.display());
    Ok(())
}

fn subset_of(s: SubsetArg) -> ChammiSubset {
    match s {
        SubsetArg::Wtc => ChammiSubset::Wtc,
        SubsetArg::Hpa => ChammiSubset::Hpa,
        SubsetArg::Cp => ChammiSubset::Cp,
    }
}

/// The subset rows of the meta CSV: (file_path, split, class index, group).
struct MetaRow {
    file: String,
    split: ChammiSplit,
    class: usize,
    group: Option<String>,
}

fn read_meta(path: &Path, subset: ChammiSubset) -> Result<(Vec<MetaRow>, bool), String> {
    let err = |e: String| format!("--meta {}: {e}", path.display());
    let mut r = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    let headers: Vec<String> = r.headers().map_err(|e| err(e.to_string()))?.iter().map(str::to_owned).collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let need = |name: &str| col(name).ok_or_else(|| err(format!("no `{name}` column (columns: {headers:?})")));
    let (path_col, split_col) = (need("file_path")?, need("train_test_split")?);
    let label_col = col("label").or_else(|| col("Label")).ok_or_else(|| err("no `label` column".into()))?;
    let group_col = subset.leave_one_out().and_then(|(_, g)| col(g));
    let classes = subset.classes();
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| err(e.to_string()))?;
        let line = i + 2;
        let get = |c: usize| rec.get(c).unwrap_or_default().trim().to_owned();
        let file = get(path_col);
        if file.split('/').next() != Some(subset.folder()) {
            continue;
        }
        let split_name = get(split_col);
        let split: ChammiSplit =
            split_name.parse().map_err(|e: cellino_data::DataError| err(format!("line {line}: {e}")))?;
        if !subset.splits().contains(&split) {
            return Err(err(format!("line {line}: {} has no split {}", subset.folder(), split.name())));
        }
        let label = get(label_col);
        let class = classes.iter().position(|c| *c == label).ok_or_else(|| {
            err(format!("line {line}: label {label:?} is outside the {} class list {classes:?}", subset.folder()))
        })?;
        rows.push(MetaRow { file, split, class, group: group_col.map(get) });
    }
    if rows.is_empty() {
        return Err(err(format!(
            "no rows of the {} subset (file_path starting with {}/)",
            subset.folder(),
            subset.folder()
        )));
    }
    Ok((rows, group_col.is_some()))
}

/// For every meta row, the embedding row whose source path ends with its file_path.
fn match_rows(set: &EmbeddingSet, meta: &[MetaRow], meta_path: &Path) -> Result<(Vec<usize>, usize), String> {
    let mut by_file: HashMap<PathBuf, usize> = HashMap::new();
    for (i, m) in meta.iter().enumerate() {
        if by_file.insert(PathBuf::from(&m.file), i).is_some() {
            return Err(format!("--meta {}: file_path {} is listed twice", meta_path.display(), m.file));
        }
    }
    let mut found: Vec<Option<usize>> = vec![None; meta.len()];
    let mut ignored = 0;
    for (row, source) in set.sources.iter().enumerate() {
        let p = Path::new(source);
        let comps: Vec<_> = p.components().collect();
        let hit = (0..comps.len()).find_map(|s| by_file.get(&comps[s..].iter().collect::<PathBuf>()).copied());
        match hit {
            Some(m) => {
                if let Some(prev) = found[m] {
                    return Err(format!(
                        "--features: rows {prev} and {row} are both embeddings of {} (one image, one row)",
                        meta[m].file
                    ));
                }
                found[m] = Some(row);
            }
            None => ignored += 1,
        }
    }
    let rows = found
        .iter()
        .zip(meta)
        .map(|(f, m)| {
            f.ok_or_else(|| {
                format!(
                    "--meta row {} ({}) has no embedding in --features (matched by the source_path column of the \
                     embedding's .csv); embed every row of the meta file",
                    m.file,
                    m.split.name()
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, ignored))
}

/// The embedding rows of one split as an [`EmbeddingSet`] labelled with the subset's classes.
fn split_set(
    set: &EmbeddingSet,
    meta: &[MetaRow],
    rows: &[usize],
    split: ChammiSplit,
    subset: ChammiSubset,
) -> EmbeddingSet {
    let group = subset.leave_one_out().map_or("group", |(_, g)| g);
    let idx: Vec<usize> = (0..meta.len()).filter(|&i| meta[i].split == split).collect();
    let mut features = Vec::with_capacity(idx.len() * set.dim);
    idx.iter().for_each(|&i| features.extend_from_slice(set.row(rows[i])));
    let mut sidecar = set.sidecar.clone();
    sidecar.n_rows = idx.len();
    EmbeddingSet {
        features,
        n_rows: idx.len(),
        dim: set.dim,
        sidecar,
        metadata_columns: vec![group.to_owned()],
        metadata: idx.iter().map(|&i| vec![meta[i].group.clone().unwrap_or_default()]).collect(),
        sources: idx.iter().map(|&i| set.sources[rows[i]].clone()).collect(),
        labels: StoredLabels::Multiclass {
            classes: subset.classes().iter().map(|s| s.to_string()).collect(),
            labels: idx.iter().map(|&i| meta[i].class).collect(),
            missing: Vec::new(),
        },
    }
}

fn run_chammi(a: &ChammiArgs) -> Result<(), String> {
    let subset = subset_of(a.subset);
    let classifier = match a.classifier {
        ClassifierArg::OneNn => ChammiClassifier::OneNn(match a.metric {
            Metric::L2 => Distance::L2,
            Metric::Cosine => Distance::Cosine,
        }),
        ClassifierArg::Knn => {
            if a.k.is_empty() || a.k.contains(&0) {
                return Err("--k: give positive numbers of neighbours".into());
            }
            ChammiClassifier::Knn(KnnConfig { ks: a.k.clone(), temperature: a.temperature, ..KnnConfig::default() })
        }
        ClassifierArg::Linear => {
            let mut config = a.grid.config();
            (config.n_last_blocks, config.avgpool) = sidecar_layout(&a.features);
            let selection = if a.grid.select_on_test {
                ProbeSelection::UpstreamSelectOnTest
            } else {
                ProbeSelection::CarveFromTrain { fraction: a.grid.val_fraction, seed: 0 }
            };
            ChammiClassifier::Linear { config, selection }
        }
    };
    let set = read_embeddings(&a.features).map_err(|e| format!("--features: {e}"))?;
    let (meta, has_groups) = read_meta(&a.meta, subset)?;
    let (rows, ignored) = match_rows(&set, &meta, &a.meta)?;
    let group = subset.leave_one_out().map_or("group", |(_, g)| g);
    let count = |s: ChammiSplit| meta.iter().filter(|m| m.split == s).count();
    let n_train = count(ChammiSplit::Train);
    if n_train < 2 {
        return Err(format!("the TRAIN split of {} has {n_train} sample(s); at least 2 are needed", subset.folder()));
    }
    let train = split_set(&set, &meta, &rows, ChammiSplit::Train, subset);
    let mut tasks = BTreeMap::new();
    let mut summary = Vec::new();
    let mut skipped = Vec::new();
    for &split in subset.splits().iter().filter(|s| **s != ChammiSplit::Train) {
        let n = count(split);
        if n == 0 {
            skipped.push(split.name());
            continue;
        }
        if n < 2 {
            return Err(format!(
                "the {} split of {} has 1 sample; at least 2 are needed",
                split.name(),
                subset.folder()
            ));
        }
        if subset.leave_one_out().is_some_and(|(s, _)| s == split) && !has_groups {
            return Err(format!(
                "--meta {} has no `{group}` column, needed for the leave-one-out task {} (use enriched_meta.csv)",
                a.meta.display(),
                split.name()
            ));
        }
        let test = split_set(&set, &meta, &rows, split, subset);
        let inputs = chammi_task_inputs(&train, &test, subset, split, None).map_err(|e| e.to_string())?;
        let task = inputs.task().map_err(|e| e.to_string())?;
        // One bar per task: a leave-one-out task refits once per group (fold), a plain task once.
        let pb = progress::bar(1, "folds", &task.name);
        let report = task
            .run_reporting(&classifier, &mut progress::reporter(&pb))
            .map_err(|e| format!("{}: {e}", split.name()))?;
        pb.finish_and_clear();
        crate::info!("{}: macro F1 {:.4}, accuracy {:.4}", report.task, report.macro_f1, report.accuracy);
        summary.push(json!({
            "task": split.name(),
            "macro_f1": report.macro_f1,
            "accuracy": report.accuracy,
            "n_test": report.n_test,
            "leave_one_out": report.leave_one_out_labels.is_some(),
        }));
        tasks.insert(split.name().to_owned(), serde_json::to_value(&report).map_err(|e| e.to_string())?);
    }
    if tasks.is_empty() {
        return Err(format!("--meta {}: no task rows for {} (only TRAIN)", a.meta.display(), subset.folder()));
    }
    let v = json!({
        "subset": subset.folder(),
        "classifier": tasks.values().next().map(|t| t["classifier"].clone()),
        "tasks": tasks,
        "summary": summary,
        "skipped_tasks": skipped,
        "n_train": n_train,
        "embedding_rows_matched": meta.len(),
        "embedding_rows_ignored": ignored,
        "inputs": { "features": path_str(&a.features), "meta": path_str(&a.meta) },
    });
    write_json(&a.out, &v)?;
    crate::info!("wrote {}", a.out.display());
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SweepClassifierArg {
    /// dinov2 weighted kNN (cosine), k from --k.
    Knn,
    /// Linear-probe grid, selected on --val-fraction of the train rows.
    Linear,
}

#[derive(Debug, Args)]
#[command(after_long_help = SWEEP_HELP)]
struct SweepArgs {
    /// Train and test embeddings of `cellino embed --bag-of-channels` (the layout is read from the
    /// emb.json next to each .npy).
    #[command(flatten)]
    data: TrainTestArgs,
    /// Channel subsets by name, `;` between subsets, `,` inside one, e.g. "DNA,ER;DNA" [default: every
    /// non-empty subset, at most 8 channels].
    #[arg(long, value_name = "CH,CH;CH")]
    subsets: Option<String>,
    #[arg(long, value_enum, default_value = "knn")]
    classifier: SweepClassifierArg,
    /// knn: number of neighbours.
    #[arg(long, default_value_t = 20)]
    k: usize,
    /// knn: softmax temperature.
    #[arg(long, default_value_t = 0.07)]
    temperature: f64,
    /// Multi-class (arg-max) or multi-label (> 0.5) labels.
    #[arg(long, value_enum, default_value = "multiclass")]
    task: TaskKind,
    #[command(flatten)]
    grid: ProbeGridArgs,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fix the multi-class class list to 0..K-1.
    #[arg(long, value_name = "K")]
    num_classes: Option<usize>,
    /// Result JSON (written atomically).
    #[arg(long)]
    out: PathBuf,
}

const SWEEP_HELP: &str = "\
Example:
  cellino eval sweep --train-features train.npy --train-labels train.csv \\
      --test-features test.npy --test-labels test.csv --subsets \"DNA,ER;DNA\" --out sweep.json

Bag-of-Channels rows are per-channel column blocks (emb.json `layout`); the features of a channel
subset are its blocks in column order, i.e. what the model gives on only those channels. Every
subset is fitted on train and scored on test with the same classifier.

Result JSON: `subsets` lists, in the order evaluated, `channels` (names, channel order),
`channel_indices`, `dim`, `macro_f1` and `accuracy`; plus `channels` (all names), `classifier`,
`inputs`. Subsets given by --subsets keep their order; by default they are sorted by size, then by
channel index.

Labels: as `cellino eval knn` (.npy class indices or 0/1 rows, or a CSV with a `label` column).";

/// The feature layout from the emb.json sidecar next to `features`.
fn read_layout(features: &Path, flag: &str) -> Result<FeatureLayout, String> {
    let path = features.with_extension("json");
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "{flag}: cannot read the sidecar {} ({e}); the sweep needs the layout written by `cellino embed \
             --bag-of-channels`",
            path.display()
        )
    })?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("{flag}: {}: {e}", path.display()))?;
    let layout: FeatureLayout = serde_json::from_value(v["layout"].clone())
        .map_err(|e| format!("{flag}: {}: no valid `layout`: {e}", path.display()))?;
    layout.validate().map_err(|e| format!("{flag}: {}: {e}", path.display()))?;
    Ok(layout)
}

/// "DNA,ER;DNA" -> [["DNA", "ER"], ["DNA"]] (an empty subset stays empty and is refused later).
fn parse_subsets(s: &str) -> Vec<Vec<String>> {
    s.split(';')
        .map(|part| part.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect())
        .collect()
}

fn run_sweep(a: &SweepArgs) -> Result<(), String> {
    if a.k == 0 {
        return Err("--k: give a positive number of neighbours".into());
    }
    let layout = read_layout(&a.data.train_features, "--train-features")?;
    let test_layout = read_layout(&a.data.test_features, "--test-features")?;
    if layout != test_layout {
        return Err("--test-features: its layout (emb.json) differs from the train features' layout".into());
    }
    let names = layout_channel_names(&layout).map_err(|e| format!("--train-features: {e}"))?;
    let multilabel = a.task == TaskKind::Multilabel;
    let TrainTest { train_x, test_x, train_y, test_y } = a.data.read(multilabel)?;
    if train_x.dim != layout.dim {
        return Err(format!("--train-features has {} columns but its emb.json layout has {}", train_x.dim, layout.dim));
    }
    let enc = encode(&[("train labels", train_y), ("test labels", test_y)], a.num_classes)?;
    if matches!(enc, Encoded::Multilabel { .. }) != multilabel {
        let (want, got) = if multilabel { ("multilabel", "multi-class") } else { ("multiclass", "multi-label") };
        return Err(format!("--task {want} but the labels are {got}"));
    }
    let e = |e: cellino_eval::EvalError| e.to_string();
    let train = Split::from_parts(&train_x.values, train_x.dim, targets(&enc, 0)).map_err(e)?;
    let test = Split::from_parts(&test_x.values, test_x.dim, targets(&enc, 1)).map_err(e)?;
    let subsets = match &a.subsets {
        Some(s) => SweepSubsets::Named(parse_subsets(s)),
        None => SweepSubsets::All,
    };
    let classifier = match a.classifier {
        SweepClassifierArg::Knn => {
            SweepClassifier::Knn(KnnConfig { ks: vec![a.k], temperature: a.temperature, ..KnnConfig::default() })
        }
        SweepClassifierArg::Linear => {
            let mut config = a.grid.config();
            config.seed = a.seed;
            (config.n_last_blocks, config.avgpool) = (layout.n_last_blocks, layout.avgpool);
            SweepClassifier::Linear { config, fraction: a.grid.val_fraction, seed: a.seed }
        }
    };
    let n_subsets = match &subsets {
        SweepSubsets::Named(list) => list.len(),
        SweepSubsets::All => (1usize << names.len().min(MAX_SWEEP_CHANNELS)) - 1,
    };
    let pb = progress::bar(n_subsets, "subsets", "channel sweep");
    let results = channel_sweep_reporting(&train, &test, &layout, &subsets, &classifier, &mut progress::reporter(&pb))
        .map_err(e)?;
    pb.finish_and_clear();
    for r in &results {
        crate::info!("{}: macro F1 {:.4}, accuracy {:.4}", r.channels.join(","), r.macro_f1, r.accuracy);
    }
    let v = json!({
        "subsets": results,
        "channels": names,
        "classifier": match a.classifier {
            SweepClassifierArg::Knn => json!({ "kind": "knn", "k": a.k, "temperature": a.temperature }),
            SweepClassifierArg::Linear => json!({ "kind": "linear", "val_fraction": a.grid.val_fraction, "seed": a.seed }),
        },
        "classes": class_names(&enc),
        "inputs": a.data.inputs_json(),
    });
    write_json(&a.out, &v)?;
    crate::info!("{} subsets; wrote {}", results.len(), a.out.display());
    Ok(())
}

//! `--help` of every command shows an example; the evaluation defaults documented in
//! `configs/eval/*.yaml` are the ones the code and `--help` use; every file under `configs/` is
//! read by something.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn cellino(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cellino")).args(args).output().expect("run cellino")
}

fn help(args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.push("--help");
    let run = cellino(&args);
    assert!(run.status.success(), "{args:?}: {}", String::from_utf8_lossy(&run.stderr));
    String::from_utf8(run.stdout).unwrap()
}

/// The subcommand names listed under `Commands:` in a help text (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_command_help_has_an_example() {
    let top = help(&[]);
    assert!(top.contains("Example"), "cellino --help:\n{top}");
    let commands = subcommands(&top);
    assert!(commands.len() >= 9, "{commands:?}");
    let mut checked = 0;
    for command in &commands {
        let text = help(&[command]);
        assert!(text.contains("Example"), "cellino {command} --help has no example:\n{text}");
        checked += 1;
        for sub in subcommands(&text) {
            let text = help(&[command, &sub]);
            assert!(text.contains("Example"), "cellino {command} {sub} --help has no example:\n{text}");
            checked += 1;
        }
    }
    // The nested `eval` commands were reached too.
    assert!(checked >= commands.len() + 4, "{checked}");
}

/// A flat YAML file of `key: value` lines (values: scalars or `[a, b, ...]` lists), as the eval
/// reference files are written. Keys outside `known`, repeated keys and other syntax are errors
/// naming the line and column.
fn parse_flat_yaml(text: &str, origin: &str, known: &[&str]) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default();
        if line.trim().is_empty() {
            continue;
        }
        let column = line.len() - line.trim_start().len() + 1;
        let at = |msg: String| format!("{origin}:{}:{column}: {msg}", i + 1);
        if column != 1 {
            return Err(at("nested keys are not used in these files".into()));
        }
        let (key, value) = line.split_once(':').ok_or_else(|| at(format!("expected `key: value`, found {raw:?}")))?;
        let key = key.trim();
        if !known.contains(&key) {
            return Err(at(format!("unknown key {key:?}; expected one of {known:?}")));
        }
        let value = value.trim();
        let values = match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            Some(list) => list.split(',').map(|v| v.trim().to_owned()).collect(),
            None => vec![value.to_owned()],
        };
        if values.iter().any(String::is_empty) {
            return Err(at(format!("empty value for {key:?}")));
        }
        if out.insert(key.to_owned(), values).is_some() {
            return Err(at(format!("{key:?} given twice")));
        }
    }
    if let Some(missing) = known.iter().find(|k| !out.contains_key(**k)) {
        return Err(format!("{origin}: no {missing:?}"));
    }
    Ok(out)
}

fn eval_config(name: &str, known: &[&str]) -> BTreeMap<String, Vec<String>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs/eval").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_flat_yaml(&text, name, known).unwrap()
}

/// The `[default: ...]` clap prints under `--flag` in a long help text.
fn help_default(help: &str, flag: &str) -> String {
    let start = help.find(&format!("--{flag} ")).unwrap_or_else(|| panic!("no --{flag} in:\n{help}"));
    let section = &help[start..];
    let end = section[2..].find("\n      --").map_or(section.len(), |e| e + 2);
    let section = &section[..end];
    let d = section.find("[default: ").unwrap_or_else(|| panic!("--{flag} shows no default:\n{section}"));
    section[d + 10..].split(']').next().unwrap().to_owned()
}

fn floats(values: &[String]) -> Vec<f64> {
    values.iter().map(|v| v.parse::<f64>().unwrap_or_else(|_| panic!("not a number: {v}"))).collect()
}

#[test]
fn eval_reference_configs_match_the_code_and_help() {
    let linear = eval_config(
        "linear.yaml",
        &["learning_rates", "weight_decays", "epochs", "epoch_length", "batch_size", "val_fraction", "seed"],
    );
    let code = cellino_eval::LinearProbeConfig::default();
    assert_eq!(floats(&linear["learning_rates"]), code.learning_rates);
    assert_eq!(floats(&linear["weight_decays"]), code.weight_decays);
    assert_eq!((code.learning_rates.len(), code.weight_decays.len()), (16, 3));
    assert_eq!(floats(&linear["epochs"]), [code.epochs as f64]);
    assert_eq!(floats(&linear["epoch_length"]), [code.epoch_length.unwrap() as f64]);
    assert_eq!(floats(&linear["batch_size"]), [code.batch_size as f64]);
    let text = help(&["eval", "linear"]);
    for key in ["epochs", "epoch_length", "batch_size", "val_fraction", "seed"] {
        let shown: f64 = help_default(&text, &key.replace('_', "-")).parse().unwrap();
        assert_eq!(floats(&linear[key]), [shown], "{key}");
    }

    let knn = eval_config("knn.yaml", &["k", "temperature", "metric"]);
    let text = help(&["eval", "knn"]);
    assert_eq!(knn["k"].join(","), help_default(&text, "k"));
    assert_eq!(floats(&knn["temperature"]), [cellino_eval::DEFAULT_TEMPERATURE]);
    assert_eq!(floats(&knn["temperature"]), [help_default(&text, "temperature").parse::<f64>().unwrap()]);
    assert_eq!(knn["metric"], [help_default(&text, "metric")]);
}

#[test]
fn unknown_keys_in_a_reference_config_name_line_and_column() {
    let err = parse_flat_yaml("k: [1, 20]\n\ntemprature: 0.07\n", "knn.yaml", &["k", "temperature"]).unwrap_err();
    assert!(err.starts_with("knn.yaml:3:1: unknown key \"temprature\""), "{err}");
    let err = parse_flat_yaml("k: 1\n  temperature: 1\n", "knn.yaml", &["k", "temperature"]).unwrap_err();
    assert!(err.starts_with("knn.yaml:2:3:"), "{err}");
}

fn configs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../configs")
}

#[test]
fn every_config_file_is_read_by_something() {
    let mut files = Vec::new();
    let mut dirs = vec![configs()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut training = 0;
    for path in &files {
        let rel = path.strip_prefix(configs()).unwrap().to_string_lossy().replace('\\', "/");
        if rel.starts_with("eval/") {
            // Checked key by key in eval_reference_configs_match_the_code_and_help.
            assert!(["eval/linear.yaml", "eval/knn.yaml"].contains(&rel.as_str()), "{rel}: nothing reads it");
        } else {
            // The training schema: train/*.yaml, quickstart.yaml (compiled into `cellino quickstart`)
            // and the defaults.
            assert!(rel.starts_with("train/") || rel == "quickstart.yaml" || rel == "ssl_default_config.yaml", "{rel}");
            let config = cellino_ssl::SslConfig::from_yaml_file(path).unwrap_or_else(|e| panic!("{rel}: {e}"));
            config.validate().unwrap_or_else(|e| panic!("{rel}: {e}"));
            training += 1;
        }
    }
    assert!(training >= 6, "{files:?}");

    // The quickstart recipe still rejects an unknown key, naming line and column.
    let text = std::fs::read_to_string(configs().join("quickstart.yaml")).unwrap();
    let line = text.lines().position(|l| l == "train:").unwrap() + 2;
    let bad = text.replacen("train:\n", "train:\n  batch_size: 32\n", 1);
    let err = cellino_ssl::SslConfig::from_yaml_str(&bad, "quickstart.yaml").unwrap_err().to_string();
    assert!(err.contains("batch_size") && err.contains(&format!("line {line}")) && err.contains("column"), "{err}");
}

/// `RUST_LOG=error` leaves only errors on stderr; the default shows the progress notes.
#[test]
fn rust_log_sets_the_verbosity() {
    let dir = tempfile::tempdir().unwrap();
    let synth = |level: Option<&str>, out: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cellino"));
        cmd.args(["synth", "--out", dir.path().join(out).to_str().unwrap(), "--images", "6", "--size", "16"]);
        match level {
            Some(l) => cmd.env("RUST_LOG", l),
            None => cmd.env_remove("RUST_LOG"),
        };
        cmd.output().unwrap()
    };
    let default = synth(None, "a");
    assert!(default.status.success());
    assert!(String::from_utf8_lossy(&default.stderr).contains("wrote"), "{default:?}");
    let quiet = synth(Some("error"), "b");
    assert!(quiet.status.success());
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    assert!(dir.path().join("b/manifest.csv").is_file());
    // Errors still print.
    let bad = Command::new(env!("CARGO_BIN_EXE_cellino"))
        .args(["inspect", dir.path().join("missing.tif").to_str().unwrap()])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("error:"));
}

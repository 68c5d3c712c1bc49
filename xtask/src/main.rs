//! Project automation, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `bench [--device cpu|cuda] [--quick]`: run every criterion bench of the workspace, then the
//!   PyTorch reference (`xtask/py/bench_vit_torch.py`, if `python3` has torch and `DINOV2_PATH`
//!   points at a dinov2 checkout) on the same machine, and print one table of medians and ratios.
//! - `cuda-build [--compute-cap 90] [--profile release|gpu] [--print-env]`: install a build-only CUDA 13.0 toolkit from PyPI
//!   wheels into `.cuda/` and build `cellino` with `--features cuda` (no GPU needed).

mod cuda_build;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// (package, bench target) pairs run by `cargo xtask bench`.
const BENCHES: [(&str, &str); 2] = [("cellino-vit", "vit_forward"), ("cellino-kernels", "kernels")];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("cuda-build") => cuda_build::cuda_build(&workspace_root(), &args[1..]),
        _ => Err("usage: cargo xtask bench [--device cpu|cuda] [--quick] | cargo xtask cuda-build [--compute-cap 90] [--profile release|gpu] [--print-env]"
            .to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn bench(args: &[String]) -> Result<(), String> {
    let mut device = "cpu".to_string();
    let mut quick = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--device" => device = it.next().ok_or("--device needs cpu or cuda")?.clone(),
            "--quick" => quick = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if device != "cpu" && device != "cuda" {
        return Err(format!("unknown device `{device}` (cpu or cuda)"));
    }
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for (package, target) in BENCHES {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root).args(["bench", "-p", package, "--bench", target]);
        if device == "cuda" {
            cmd.args(["--features", "cuda"]);
        }
        cmd.args(["--", &format!("{device}_")]);
        if quick {
            cmd.args(["--warm-up-time", "1", "--measurement-time", "3"]);
        }
        let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("bench {package}/{target} failed"));
        }
    }
    let ours = criterion_medians(&root.join("target/criterion"), &device);
    let torch = torch_reference(&root, &device);
    print_table(&ours, &torch);
    Ok(())
}

/// Median seconds per iteration of every criterion bench whose name starts with the device prefix.
fn criterion_medians(dir: &Path, device: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(groups) = std::fs::read_dir(dir) else { return out };
    for group in groups.flatten() {
        let Ok(benches) = std::fs::read_dir(group.path()) else { continue };
        for bench in benches.flatten() {
            let name = bench.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&format!("{device}_")) {
                continue;
            }
            let estimates = bench.path().join("new/estimates.json");
            if let Some(median_ns) = std::fs::read_to_string(estimates).ok().and_then(|s| json_number(&s, "median")) {
                out.insert(name, median_ns * 1e-9);
            }
        }
    }
    out
}

/// `"key": { ... "point_estimate": X` → X, enough for criterion's estimates.json.
fn json_number(text: &str, key: &str) -> Option<f64> {
    let after_key = &text[text.find(&format!("\"{key}\""))?..];
    let after_point = &after_key[after_key.find("\"point_estimate\"")? + "\"point_estimate\"".len()..];
    let value: String = after_point
        .trim_start_matches([':', ' '])
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        .collect();
    value.parse().ok()
}

/// Medians from the PyTorch script, keyed like our bench names; empty (with a note) when unavailable.
fn torch_reference(root: &Path, device: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(dinov2) = std::env::var("DINOV2_PATH") else {
        eprintln!("note: set DINOV2_PATH to a dinov2 checkout (and have torch in python3) for the PyTorch column");
        return out;
    };
    let script = root.join("xtask/py/bench_vit_torch.py");
    let run = Command::new("python3").arg(script).args(["--dinov2", &dinov2, "--device", device]).output();
    match run {
        Ok(o) if o.status.success() => {
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                if let Some((name, secs)) = line.split_once(' ')
                    && let Ok(s) = secs.trim().parse::<f64>()
                {
                    out.insert(name.to_string(), s);
                }
            }
        }
        Ok(o) => eprintln!("note: PyTorch reference failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => eprintln!("note: cannot run python3: {e}"),
    }
    out
}

fn print_table(ours: &BTreeMap<String, f64>, torch: &BTreeMap<String, f64>) {
    println!();
    println!("{:<44} {:>12} {:>12} {:>11}", "bench (median per iteration)", "cellino", "pytorch", "torch/ours");
    for (name, secs) in ours {
        let (t, ratio) = match torch.get(name) {
            Some(t) => (human(*t), format!("{:.2}", t / secs)),
            None => ("-".into(), "-".into()),
        };
        println!("{name:<44} {:>12} {t:>12} {ratio:>11}", human(*secs));
    }
}

/// Seconds with a unit that keeps three significant digits visible.
fn human(secs: f64) -> String {
    if secs >= 1.0 {
        format!("{secs:.3} s")
    } else if secs >= 1e-3 {
        format!("{:.3} ms", secs * 1e3)
    } else {
        format!("{:.3} µs", secs * 1e6)
    }
}

//! Project automation, run as `cargo xtask <task>` (alias in `.cargo/config.toml`).
//!
//! - `bench [--device cpu|cuda] [--quick] [--compare-torch]`: run every criterion bench of the
//!   workspace (the `[[bench]]` targets of `crates/*/Cargo.toml`) filtered to the names that start
//!   with the device (`cpu_…` / `cuda_…`; for `cuda` built with `--features cuda` into
//!   `target/cuda`), the peak memory of the ViT-S/16 forward (CPU), and with `--compare-torch` the
//!   PyTorch references of [`torch_reference`] on the same machine; print one table of medians and
//!   ratios, the backbone's FLOP rate as a fraction of the measured GEMM ceiling ([`flops`]) and
//!   the memory table, and write them to `target/bench/<git-rev>-<device>.json` and `.md`.
//! - `fixtures [--dinov2 PATH] [--real PATH]`: regenerate the committed test fixtures with the
//!   Python reference scripts ([`fixtures`]).
//! - `cuda-build [--compute-cap 90] [--profile release|gpu] [--print-env]`: install a build-only CUDA 13.0 toolkit from PyPI
//!   wheels into `.cuda/` and build `cellino` with `--features cuda` (no GPU needed).

mod cuda_build;
mod fixtures;
mod flops;
mod memory;
mod torch_reference;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::SystemTime;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("cuda-build") => cuda_build::cuda_build(&workspace_root(), &args[1..]),
        Some("fixtures") => fixtures::fixtures(&workspace_root(), &args[1..]),
        _ => Err("usage: cargo xtask bench [--device cpu|cuda] [--quick] [--compare-torch] | \
                  cargo xtask cuda-build [--compute-cap 90] [--profile release|gpu] [--print-env] | \
                  cargo xtask fixtures [--dinov2 PATH] [--real PATH]"
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
    let (mut quick, mut compare_torch) = (false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--device" => device = it.next().ok_or("--device needs cpu or cuda")?.clone(),
            "--quick" => quick = true,
            "--compare-torch" => compare_torch = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if device != "cpu" && device != "cuda" {
        return Err(format!("unknown device `{device}` (cpu or cuda)"));
    }
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // CUDA builds get their own target dir (as `cuda-build`), so they never evict the CPU build;
    // criterion writes under it too.
    let target = if device == "cuda" { root.join("target/cuda") } else { root.join("target") };
    let benches = workspace_benches(&root)?;
    let started = SystemTime::now();
    for (package, bench_target) in &benches {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root).args(["bench", "-p", package, "--bench", bench_target]);
        cmd.env("CARGO_TARGET_DIR", &target).env("CRITERION_HOME", target.join("criterion"));
        if device == "cuda" {
            cmd.args(["--features", "cuda"]);
            let cuda_home = root.join(".cuda/nvidia/cu13");
            // The toolkit `cuda-build` installs, if present; otherwise the caller's environment.
            if cuda_home.join("bin/nvcc").exists() {
                let env = cuda_build::environment(&cuda_home, "90")?;
                cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            }
        }
        cmd.args(["--", &format!("{device}_")]);
        if quick {
            cmd.args(["--warm-up-time", "1", "--measurement-time", "3"]);
        }
        let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("bench {package}/{bench_target} failed"));
        }
    }
    let ours = criterion_medians(&target.join("criterion"), &device, started);
    if ours.is_empty() {
        return Err(format!("no `{device}_` bench produced a result"));
    }
    let torch = if compare_torch { torch_reference::medians(&root, &device) } else { BTreeMap::new() };
    let memory = if device == "cpu" { peak_memory(&root, &cargo, compare_torch) } else { vec![] };
    let extras = Extras { gemm: flops::gemm_fractions(&ours, &torch, &device), memory };
    print!("{}", table(&ours, &torch, false));
    print!("{}", extras_text(&extras, &ours, &device, false));
    let (rev, dirty) = git_revision(&root);
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let stem = out.join(format!("{rev}-{device}"));
    let meta = RunMeta { rev: &rev, dirty, device: &device, quick };
    let markdown = format!("{}{}", to_markdown(&meta, &ours, &torch), extras_text(&extras, &ours, &device, true));
    for (ext, text) in [("json", to_json(&meta, &ours, &torch, &extras)), ("md", markdown)] {
        let path = stem.with_extension(ext);
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// What the run measured besides the medians.
struct Extras {
    /// (bench, GFLOP/s, fraction of the GEMM ceiling, PyTorch GFLOP/s).
    gemm: Vec<(String, f64, f64, Option<f64>)>,
    /// ((batch, channels), cellino, PyTorch) peak memory of the forward.
    memory: Vec<((usize, usize), memory::PeakMemory, Option<memory::PeakMemory>)>,
}

/// Peak memory of the ViT-S/16 forward per [`memory::SHAPES`]; PyTorch's too with `compare_torch`.
fn peak_memory(
    root: &Path,
    cargo: &str,
    compare_torch: bool,
) -> Vec<((usize, usize), memory::PeakMemory, Option<memory::PeakMemory>)> {
    let dinov2 = std::env::var("DINOV2_PATH").ok().filter(|_| compare_torch);
    let mut rows = vec![];
    for (b, c) in memory::SHAPES {
        match memory::cellino(root, cargo, b, c) {
            Ok(ours) => {
                let theirs = dinov2.as_deref().and_then(|d| {
                    memory::torch(root, d, b, c).map_err(|e| eprintln!("note: PyTorch peak memory: {e}")).ok()
                });
                rows.push(((b, c), ours, theirs));
            }
            Err(e) => eprintln!("note: peak memory (batch {b}, {c} channels) not measured: {e}"),
        }
    }
    rows
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The GEMM-fraction and memory tables, as text or Markdown.
fn extras_text(extras: &Extras, ours: &BTreeMap<String, f64>, device: &str, markdown: bool) -> String {
    let mut out = String::new();
    let mut rows: Vec<[String; 4]> = vec![];
    if let Some(ceiling) = flops::ceiling_gflops(ours, device) {
        let _ = writeln!(out, "\nViT-S/16 forward FLOP rate vs the measured GEMM ceiling ({ceiling:.1} GFLOP/s):");
        for (name, gflops, fraction, torch) in &extras.gemm {
            let t = torch.map_or("-".into(), |t| format!("{t:.1} GFLOP/s ({:.0} %)", 100.0 * t / ceiling));
            rows.push([name.clone(), format!("{gflops:.1} GFLOP/s"), format!("{:.0} %", 100.0 * fraction), t]);
        }
        out.push_str(&grid(&["bench", "cellino", "of ceiling", "pytorch"], &rows, markdown));
    }
    if !extras.memory.is_empty() {
        let _ =
            writeln!(out, "\nPeak resident memory of one ViT-S/16 224² forward (process peak / added by the forward):");
        rows = extras
            .memory
            .iter()
            .map(|((b, c), ours, theirs)| {
                let t = theirs.map_or("-".into(), |t| format!("{} / {}", mib(t.process), mib(t.forward)));
                [
                    format!("batch {b}, {c} channels"),
                    format!("{} / {}", mib(ours.process), mib(ours.forward)),
                    t,
                    String::new(),
                ]
            })
            .collect();
        out.push_str(&grid(&["forward", "cellino", "pytorch", ""], &rows, markdown));
    }
    out
}

/// Rows under a header: aligned text or a Markdown table (empty trailing columns dropped).
fn grid(header: &[&str; 4], rows: &[[String; 4]], markdown: bool) -> String {
    let width = if header[3].is_empty() { 3 } else { 4 };
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "\n| {} |", header[..width].join(" | "));
        let _ = writeln!(out, "|---{}|", "|---:".repeat(width - 1));
        for r in rows {
            let _ = writeln!(out, "| `{}` | {} |", r[0], r[1..width].join(" | "));
        }
    } else {
        for r in std::iter::once(header.map(String::from)).chain(rows.iter().cloned()) {
            let _ = writeln!(out, "{:<36} {:>22} {:>16} {:>26}", r[0], r[1], r[2], if width == 4 { &r[3] } else { "" });
        }
    }
    out
}

/// `(package, bench target)` of every `[[bench]]` in `crates/*/Cargo.toml`, sorted.
fn workspace_benches(root: &Path) -> Result<Vec<(String, String)>, String> {
    let crates = root.join("crates");
    let dirs = std::fs::read_dir(&crates).map_err(|e| format!("{}: {e}", crates.display()))?;
    let mut out = vec![];
    for dir in dirs.flatten() {
        if let Ok(text) = std::fs::read_to_string(dir.path().join("Cargo.toml")) {
            out.extend(benches_in_manifest(&text));
        }
    }
    out.sort();
    Ok(out)
}

/// The package name and the `[[bench]]` target names of one manifest (enough TOML for ours).
fn benches_in_manifest(text: &str) -> Vec<(String, String)> {
    let (mut section, mut package, mut benches) = (String::new(), None, vec![]);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        let Some(value) = line.strip_prefix("name").map(str::trim).and_then(|r| r.strip_prefix('=')) else {
            continue;
        };
        let value = value.trim().trim_matches('"').to_string();
        match section.as_str() {
            "[package]" => package = Some(value),
            "[[bench]]" => benches.push(value),
            _ => {}
        }
    }
    package.map(|p| benches.into_iter().map(|b| (p.clone(), b)).collect()).unwrap_or_default()
}

/// The short commit id and whether the work tree has uncommitted changes (`unknown` without git).
fn git_revision(root: &Path) -> (String, bool) {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let rev = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    (rev, dirty)
}

/// Median seconds per iteration of every criterion bench whose name (or group name) starts with
/// the device prefix, measured by this run (older `estimates.json` files are left out).
fn criterion_medians(dir: &Path, device: &str, since: SystemTime) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let Ok(groups) = std::fs::read_dir(dir) else { return out };
    for group in groups.flatten() {
        let group_name = group.file_name().to_string_lossy().into_owned();
        let Ok(benches) = std::fs::read_dir(group.path()) else { continue };
        for bench in benches.flatten() {
            let name = bench.file_name().to_string_lossy().into_owned();
            let Some(key) = bench_key(&group_name, &name, device) else { continue };
            let estimates = bench.path().join("new/estimates.json");
            let fresh = std::fs::metadata(&estimates).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
            if !fresh {
                continue;
            }
            if let Some(median_ns) = std::fs::read_to_string(estimates).ok().and_then(|s| json_number(&s, "median")) {
                out.insert(key, median_ns * 1e-9);
            }
        }
    }
    out
}

/// The table key of bench `name` in `group` for `device`: the name when it carries the device
/// prefix, `group/name` when only the group does, none otherwise (another device's bench, or
/// criterion's `report` folder).
fn bench_key(group: &str, name: &str, device: &str) -> Option<String> {
    let prefix = format!("{device}_");
    if name.starts_with(&prefix) {
        Some(name.to_string())
    } else if group.starts_with(&prefix) && name != "report" {
        Some(format!("{group}/{name}"))
    } else {
        None
    }
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

/// What a result file records about its run.
struct RunMeta<'a> {
    rev: &'a str,
    dirty: bool,
    device: &'a str,
    quick: bool,
}

/// One table of medians and ratios: aligned text for the terminal, or Markdown.
fn table(ours: &BTreeMap<String, f64>, torch: &BTreeMap<String, f64>, markdown: bool) -> String {
    let mut out = String::new();
    let header = ["bench (median per iteration)", "cellino", "pytorch", "torch/ours"];
    let mut rows = vec![];
    for (name, secs) in ours {
        let (t, ratio) = match torch.get(name) {
            Some(t) => (human(*t), format!("{:.2}", t / secs)),
            None => ("-".into(), "-".into()),
        };
        rows.push([name.clone(), human(*secs), t, ratio]);
    }
    if markdown {
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for r in rows {
            let _ = writeln!(out, "| `{}` | {} | {} | {} |", r[0], r[1], r[2], r[3]);
        }
    } else {
        let _ = writeln!(out, "\n{:<44} {:>12} {:>12} {:>11}", header[0], header[1], header[2], header[3]);
        for r in rows {
            let _ = writeln!(out, "{:<44} {:>12} {:>12} {:>11}", r[0], r[1], r[2], r[3]);
        }
    }
    out
}

fn to_markdown(meta: &RunMeta, ours: &BTreeMap<String, f64>, torch: &BTreeMap<String, f64>) -> String {
    let dirty = if meta.dirty { " (with uncommitted changes)" } else { "" };
    let quick = if meta.quick { ", `--quick`" } else { "" };
    format!(
        "# cargo xtask bench --device {}\n\ncommit `{}`{dirty}{quick}\n\n{}",
        meta.device,
        meta.rev,
        table(ours, torch, true)
    )
}

/// The result file: run metadata and, per bench, the median seconds (and PyTorch's, or null).
fn to_json(meta: &RunMeta, ours: &BTreeMap<String, f64>, torch: &BTreeMap<String, f64>, extras: &Extras) -> String {
    let mut out = format!(
        "{{\n  \"git_rev\": {},\n  \"dirty\": {},\n  \"device\": {},\n  \"quick\": {},\n  \"benches\": {{",
        json_string(meta.rev),
        meta.dirty,
        json_string(meta.device),
        meta.quick
    );
    for (i, (name, secs)) in ours.iter().enumerate() {
        let t = torch.get(name).map_or("null".to_string(), |t| format!("{t:e}"));
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}\n    {}: {{\"median_s\": {secs:e}, \"pytorch_median_s\": {t}}}", json_string(name));
    }
    out.push_str("\n  },\n  \"gemm_fraction\": {");
    for (i, (name, gflops, fraction, _)) in extras.gemm.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ =
            write!(out, "{sep}\n    {}: {{\"gflops\": {gflops:.3}, \"fraction\": {fraction:.4}}}", json_string(name));
    }
    out.push_str("\n  },\n  \"peak_memory_bytes\": [");
    for (i, ((b, c), ours, theirs)) in extras.memory.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let t = theirs
            .map_or("null".to_string(), |t| format!("{{\"process\": {}, \"forward\": {}}}", t.process, t.forward));
        let _ = write!(
            out,
            "{sep}\n    {{\"batch\": {b}, \"channels\": {c}, \"cellino\": {{\"process\": {}, \"forward\": {}}}, \"pytorch\": {t}}}",
            ours.process, ours.forward
        );
    }
    out.push_str("\n  ]\n}\n");
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_give_package_and_bench_names() {
        let toml = "[package]\nname = \"cellino-vit\"\n\n[dependencies]\nname = \"x\"\n\n[[bench]]\nname = \"vit_forward\"\nharness = false\n";
        assert_eq!(benches_in_manifest(toml), [("cellino-vit".to_string(), "vit_forward".to_string())]);
        assert!(benches_in_manifest("[package]\nname = \"a\"\n").is_empty());
    }

    #[test]
    fn only_the_devices_benches_are_keyed() {
        assert_eq!(bench_key("vit_forward", "cuda_vit_small", "cuda").as_deref(), Some("cuda_vit_small"));
        assert_eq!(bench_key("vit_forward", "cpu_vit_small", "cuda"), None);
        assert_eq!(bench_key("cpu_knn", "50k_x_5k_k20", "cpu").as_deref(), Some("cpu_knn/50k_x_5k_k20"));
        assert_eq!(bench_key("cpu_knn", "report", "cpu"), None);
        assert_eq!(bench_key("cpu_knn", "50k_x_5k_k20", "cuda"), None);
    }

    #[test]
    fn result_json_is_well_formed() {
        let meta = RunMeta { rev: "abc123", dirty: true, device: "cpu", quick: false };
        let ours = BTreeMap::from([("cpu_a".to_string(), 0.5), ("cpu_\"b\"".to_string(), 2e-6)]);
        let torch = BTreeMap::from([("cpu_a".to_string(), 0.25)]);
        let peak = memory::PeakMemory { process: 100, forward: 7 };
        let extras = Extras { gemm: vec![("cpu_a".into(), 12.5, 0.25, None)], memory: vec![((8, 4), peak, None)] };
        let json = to_json(&meta, &ours, &torch, &extras);
        assert!(json.contains("\"cpu_a\": {\"gflops\": 12.500, \"fraction\": 0.2500}"), "{json}");
        assert!(json.contains("\"cellino\": {\"process\": 100, \"forward\": 7}, \"pytorch\": null}"), "{json}");
        assert_eq!(json.matches('[').count(), json.matches(']').count());
        assert!(json.contains("\"cpu_a\": {\"median_s\": 5e-1, \"pytorch_median_s\": 2.5e-1}"), "{json}");
        assert!(json.contains("\"cpu_\\\"b\\\"\": {\"median_s\": 2e-6, \"pytorch_median_s\": null}"), "{json}");
        assert_eq!(json.matches('{').count(), json.matches('}').count());
        let md = to_markdown(&meta, &ours, &torch);
        assert!(md.contains("| `cpu_a` | 500.000 ms | 250.000 ms | 0.50 |"), "{md}");
    }

    #[test]
    fn medians_come_from_this_runs_estimates_only() {
        let dir = std::env::temp_dir().join(format!("xtask-criterion-{}", std::process::id()));
        let write = |group: &str, bench: &str, median_ns: f64| {
            let d = dir.join(group).join(bench).join("new");
            std::fs::create_dir_all(&d).unwrap();
            let json = format!("{{\"mean\":{{\"point_estimate\":1.0}},\"median\":{{\"point_estimate\":{median_ns}}}}}");
            std::fs::write(d.join("estimates.json"), json).unwrap();
        };
        write("kernels", "cpu_old", 5.0);
        let since = SystemTime::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write("kernels", "cpu_gelu", 2.5e6);
        write("kernels", "cuda_gelu", 1e3);
        write("cpu_knn", "k20", 4e9);
        let m = criterion_medians(&dir, "cpu", since);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(m, BTreeMap::from([("cpu_gelu".to_string(), 2.5e-3), ("cpu_knn/k20".to_string(), 4.0)]));
    }
}

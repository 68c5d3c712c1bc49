//! `cargo xtask fixtures`: regenerate the committed test fixtures with the Python reference
//! scripts in `xtask/py/` (versions pinned in `xtask/py/requirements.txt`), then list what changed.
//! Scripts that need an input this machine lacks are skipped with a note:
//!
//! * `--dinov2 PATH` (or `DINOV2_PATH`): an upstream dinov2 checkout, for the backbone fixtures;
//! * `--real PATH`: the folder of real images the data fixtures were cut from (`shared/data/real`);
//!   without it the image and crop fixtures are rebuilt from the copies already in the repository.

use std::path::Path;
use std::process::Command;

/// One script: file name, extra arguments, and what it needs besides Python.
struct Script {
    file: &'static str,
    needs: Needs,
}

enum Needs {
    Nothing,
    Dinov2,
    /// Runs without the real-data folder, passes it as `--real-src` when given.
    OptionalReal,
    /// `make_sample.py`: only with the real-data folder.
    Real,
}

const SCRIPTS: [Script; 10] = [
    Script { file: "make_vit_fixtures.py", needs: Needs::Dinov2 },
    Script { file: "make_kernel_fixtures.py", needs: Needs::Nothing },
    Script { file: "make_ssl_fixtures.py", needs: Needs::Nothing },
    Script { file: "make_metric_fixtures.py", needs: Needs::Nothing },
    Script { file: "make_probe_fixtures.py", needs: Needs::Nothing },
    Script { file: "chammi_reference.py", needs: Needs::Nothing },
    Script { file: "make_image_fixtures.py", needs: Needs::OptionalReal },
    Script { file: "make_crop_fixtures.py", needs: Needs::OptionalReal },
    Script { file: "make_data_fixtures.py", needs: Needs::Nothing },
    Script { file: "make_sample.py", needs: Needs::Real },
];

pub fn fixtures(root: &Path, args: &[String]) -> Result<(), String> {
    let mut dinov2 = std::env::var("DINOV2_PATH").ok();
    let mut real = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dinov2" => dinov2 = Some(it.next().ok_or("--dinov2 needs a path")?.clone()),
            "--real" => real = Some(it.next().ok_or("--real needs a path")?.clone()),
            other => return Err(format!("unknown argument `{other}` (fixtures [--dinov2 PATH] [--real PATH])")),
        }
    }
    let mut failed = vec![];
    for script in &SCRIPTS {
        let mut extra: Vec<String> = vec![];
        match (&script.needs, &dinov2, &real) {
            (Needs::Dinov2, None, _) => {
                eprintln!("skip {}: give --dinov2 PATH (an upstream dinov2 checkout)", script.file);
                continue;
            }
            (Needs::Dinov2, Some(d), _) => extra.extend(["--dinov2".into(), d.clone()]),
            (Needs::OptionalReal, _, Some(r)) => extra.extend(["--real-src".into(), r.clone()]),
            (Needs::Real, _, None) => {
                eprintln!("skip {}: give --real PATH (the real-data folder)", script.file);
                continue;
            }
            (Needs::Real, _, Some(r)) => {
                let r = Path::new(r);
                let fly = r.join("cellprofiler_examplefly_kc167");
                let nuclei = r.join("derived/nuclei_examplefly_kc167.csv");
                extra.extend(["--examplefly".into(), fly.to_string_lossy().into(), "--nuclei".into()]);
                extra.push(nuclei.to_string_lossy().into());
            }
            _ => {}
        }
        eprintln!("running {} {}", script.file, extra.join(" "));
        let status = Command::new("python3")
            .current_dir(root)
            .arg(root.join("xtask/py").join(script.file))
            .args(&extra)
            .status()
            .map_err(|e| format!("cannot run python3: {e}"))?;
        if !status.success() {
            failed.push(script.file);
        }
    }
    let changed = Command::new("git").current_dir(root).args(["status", "--short", "--", "crates", "samples"]).output();
    if let Ok(o) = changed {
        let list = String::from_utf8_lossy(&o.stdout);
        if list.trim().is_empty() {
            println!("fixtures unchanged");
        } else {
            println!("changed fixture files (review before committing):\n{list}");
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("failed: {}", failed.join(", "))) }
}

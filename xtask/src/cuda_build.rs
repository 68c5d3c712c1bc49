//! `cargo xtask cuda-build`: build `cellino` with `--features cuda` on a machine without a GPU or a
//! CUDA installation, from NVIDIA's CUDA 13.0 toolkit wheels on PyPI (recipe measured in the
//! project's CUDA notes: nvcc 13.0 matches the GPU machines' driver 580 and their torch cu130).
//!
//! Installs into `.cuda/` (git-ignored, ~1.2 GB), adds the unversioned library names the linker
//! wants and a stub `libcuda.so` (no wheel ships the driver), then builds into `target/cuda`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The toolkit wheels, pinned: newer nvcc emits PTX that driver 580 cannot JIT.
const WHEELS: [&str; 8] = [
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-nvvm==13.0.88",
    "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-runtime==13.0.96",
    "nvidia-cuda-nvrtc==13.0.88",
    "nvidia-cublas==13.0.2.14",
    "nvidia-curand==10.4.0.35",
    "nvidia-cuda-cccl==13.0.85",
];

pub fn cuda_build(root: &Path, args: &[String]) -> Result<(), String> {
    let mut compute_cap = "90".to_string();
    let mut print_only = false;
    // `gpu` (root Cargo.toml): release, stripped; the binary to carry to a GPU machine.
    let mut profile = "release".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--compute-cap" => compute_cap = it.next().ok_or("--compute-cap needs a value, e.g. 90 or 80")?.clone(),
            "--print-env" => print_only = true,
            "--profile" => profile = it.next().ok_or("--profile needs a value: release or gpu")?.clone(),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    let dest = root.join(".cuda");
    let cuda_home = dest.join("nvidia/cu13");
    let env = environment(&cuda_home, &compute_cap)?;
    if print_only {
        // stdout is only `export` lines, so `eval "$(cargo xtask cuda-build --print-env)"` works;
        // the explanation goes to stderr.
        for (k, v) in &env {
            let v = if k == "PATH" { format!("\"{}/bin:$PATH\"", cuda_home.display()) } else { format!("'{v}'") };
            println!("export {k}={v}");
        }
        eprintln!("(the environment for `--features cuda` builds; by hand:)");
        print_by_hand(&env, &profile, true);
        return Ok(());
    }
    if !cuda_home.join("bin/nvcc").exists() {
        install_toolkit(&dest)?;
    }
    link_unversioned(&cuda_home)?;
    build_stub_driver(root, &cuda_home)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(["build", "--profile", &profile])
        .args(["-p", "cellino-cli", "--features", "cuda", "--target-dir", "target/cuda"])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build --features cuda failed".into());
    }
    let binary = format!("target/cuda/{}/cellino", if profile == "dev" { "debug" } else { &profile });
    let size = std::fs::metadata(root.join(&binary)).map(|m| m.len() as f64 / (1 << 20) as f64).unwrap_or(0.0);
    println!("built {binary} ({size:.1} MiB, sm_{compute_cap})");
    print_by_hand(&env, &profile, false);
    Ok(())
}

pub fn environment(cuda_home: &Path, compute_cap: &str) -> Result<Vec<(String, String)>, String> {
    let path = std::env::var("PATH").unwrap_or_default();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    Ok(vec![
        ("CUDA_HOME".into(), cuda_home.display().to_string()),
        ("PATH".into(), format!("{}:{path}", cuda_home.join("bin").display())),
        // candle-kernels cannot detect the GPU here (no nvidia-smi): 90 = H100/H200 (sm_90a).
        ("CUDA_COMPUTE_CAP".into(), compute_cap.to_string()),
        // cudaforge defaults to half the cores: one nvcc job on a 2-core machine.
        ("CUDAFORGE_THREADS".into(), threads.to_string()),
    ])
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    status.success().then_some(()).ok_or_else(|| format!("{what} failed ({status})"))
}

fn install_toolkit(dest: &Path) -> Result<(), String> {
    println!("installing the CUDA 13.0 build toolkit into {} (~1.2 GB)", dest.display());
    // One pip call: the wheels share nvidia/cu13/, a second --target run would skip it.
    run(
        Command::new("python3").args(["-m", "pip", "install", "-q", "--no-deps", "--target"]).arg(dest).args(WHEELS),
        "pip install of the CUDA wheels",
    )
}

fn link_unversioned(cuda_home: &Path) -> Result<(), String> {
    let lib = cuda_home.join("lib");
    for (name, target) in [
        ("libcudart.so", "libcudart.so.13"),
        ("libcublas.so", "libcublas.so.13"),
        ("libcublasLt.so", "libcublasLt.so.13"),
        ("libnvrtc.so", "libnvrtc.so.13"),
        ("libcurand.so", "libcurand.so.10"),
    ] {
        let link = lib.join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(target, &link).map_err(|e| format!("symlink {}: {e}", link.display()))?;
        }
    }
    Ok(())
}

/// cudarc's driver bindings, from which the stub's symbol list is taken.
fn cudarc_driver_bindings(root: &Path) -> Result<PathBuf, String> {
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).current_dir(root).arg("fetch"),
        "cargo fetch",
    )?;
    let home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo"));
    let mut found = vec![];
    for index in std::fs::read_dir(home.join("registry/src")).map_err(|e| format!("cargo registry: {e}"))?.flatten() {
        for krate in std::fs::read_dir(index.path()).into_iter().flatten().flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if name.starts_with("cudarc-0.19.") {
                found.push(krate.path().join("src/driver/sys/mod.rs"));
            }
        }
    }
    found.sort();
    found.pop().filter(|p| p.exists()).ok_or_else(|| "cudarc 0.19 source not found after cargo fetch".into())
}

/// A `libcuda.so.1` whose every entry point returns CUDA_ERROR_STUB_LIBRARY (34): enough to link,
/// and at run time without a GPU `Device::new_cuda` fails cleanly instead of the loader refusing.
fn build_stub_driver(root: &Path, cuda_home: &Path) -> Result<(), String> {
    let stubs = cuda_home.join("lib/stubs");
    if stubs.join("libcuda.so.1").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(&stubs).map_err(|e| format!("{}: {e}", stubs.display()))?;
    let bindings = std::fs::read_to_string(cudarc_driver_bindings(root)?).map_err(|e| e.to_string())?;
    let mut names: Vec<&str> = bindings
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("pub unsafe fn "))
        .filter_map(|rest| rest.split(['(', '<']).next())
        .filter(|n| n.starts_with("cu") && *n != "cuGetErrorString" && *n != "cuGetErrorName")
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut c = String::from("static const char m[] = \"CUDA stub driver: no NVIDIA driver on this machine\";\n");
    c.push_str("int cuGetErrorString(int e, const char **p) { if (p) *p = m; return 0; }\n");
    c.push_str("int cuGetErrorName(int e, const char **p) { if (p) *p = \"CUDA_ERROR_STUB_LIBRARY\"; return 0; }\n");
    for n in &names {
        let _ = writeln!(c, "int {n}(void) {{ return 34; }}");
    }
    let source = stubs.join("libcuda_stub.c");
    std::fs::write(&source, c).map_err(|e| format!("{}: {e}", source.display()))?;
    run(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-O1", "-Wl,-soname,libcuda.so.1", "-o"])
            .arg(stubs.join("libcuda.so"))
            .arg(&source),
        "gcc (stub libcuda)",
    )?;
    std::os::unix::fs::symlink("libcuda.so", stubs.join("libcuda.so.1")).map_err(|e| e.to_string())?;
    println!("stub libcuda.so with {} entry points", names.len() + 2);
    Ok(())
}

fn print_by_hand(env: &[(String, String)], profile: &str, to_stderr: bool) {
    let mut text = String::from("\nBy hand (after `cargo xtask cuda-build` installed .cuda/ once):\n");
    for (k, v) in env {
        // PATH is shown relative to the caller's own PATH.
        let v = if k == "PATH" { format!("{}/bin:$PATH", env[0].1) } else { v.clone() };
        let _ = writeln!(text, "  export {k}={v}");
    }
    let _ = writeln!(text, "  cargo build --profile {profile} -p cellino-cli --features cuda --target-dir target/cuda");
    let _ = writeln!(text, "To run it here (no GPU; Device::new_cuda fails cleanly):");
    let _ = writeln!(text, "  export LD_LIBRARY_PATH={0}/lib/stubs:{0}/lib", env[0].1);
    let _ = writeln!(text, "On a GPU machine, use its driver's libcuda and its PyTorch's CUDA libraries instead:");
    let _ = writeln!(text, "  carry the binary and scripts/, then run scripts/gpu-check.sh (see scripts/README.md).");
    if to_stderr {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

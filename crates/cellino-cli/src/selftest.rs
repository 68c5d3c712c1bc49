//! `cellino selftest`: the one-binary check of a device (CPU, or a CUDA GPU with a `cuda` build).
//!
//! 1. **Op parity**: every op of `cellino-kernels` (fused and `*_composite`) and a small ViT,
//!    forward and backward, in f32 and bf16 (`--dtypes`) on the device, against the CPU f32 composite on the
//!    same inputs; relative L2 error `‖x − ref‖₂ / ‖ref‖₂` with thresholds f32 1e-4, bf16 2e-2.
//! 2. **Training smoke run**: 20 iterations of the tiny Bag-of-Channels SSL config on synthetic
//!    cells; all losses finite and the iBOT + KoLeo losses going down (see `smoke`).
//! 3. **Throughput**: ViT-S/16 and ViT-L/16 embedding (images/s) and a ViT-S/16 backbone training
//!    step, 224×224; batch 64 with f32 and bf16 on CUDA, batch 8 f32 on CPU.
//!
//! One table on stdout (progress on stderr), optionally the same as JSON (`--json`); the exit
//! status is non-zero when a parity check or the smoke run fails (throughput never fails).
//! `scripts/gpu-check.sh` runs it on a GPU machine next to the same work in PyTorch.

mod bench;
mod parity;
mod smoke;

use std::path::PathBuf;
use std::time::Instant;

use candle_core::{DType, Device};
use clap::Args;

use cellino_data::write_atomically;

const SELFTEST_HELP: &str = "\
Examples:
  cellino selftest --device cpu --quick            # about a minute on a laptop
  cellino selftest --device cuda --json gpu.json   # a cuda build (cargo xtask cuda-build) on a GPU

On a GPU machine use scripts/gpu-check.sh: it finds the CUDA libraries of the machine's PyTorch,
runs this, then the same throughput work in PyTorch, and prints the ratios.";

#[derive(Debug, Args)]
#[command(after_long_help = SELFTEST_HELP)]
pub struct SelftestArgs {
    /// Device to test: cpu, or cuda (GPU 0; needs a binary built with `cargo xtask cuda-build`).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    device: String,
    /// Smaller shapes and fewer benchmarks (no ViT-L, single timed iterations on the CPU).
    #[arg(long)]
    quick: bool,
    /// Also write every number as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Parity dtypes [default: f32,bf16 on cuda; f32 on cpu, where bf16 is not a training path and
    /// candle's bf16 reductions accumulate in bf16].
    #[arg(long, value_delimiter = ',', value_parser = ["f32", "bf16"], value_name = "LIST")]
    dtypes: Vec<String>,
    /// Skip the throughput benchmarks.
    #[arg(long)]
    no_bench: bool,
}

fn open_device(name: &str) -> Result<Device, String> {
    match name {
        "cpu" => Ok(Device::Cpu),
        _ if !cfg!(feature = "cuda") => Err("--device cuda: this cellino was built without CUDA; build it with \
                                            `cargo xtask cuda-build` (target/cuda/release/cellino)"
            .into()),
        _ => Device::new_cuda(0).map_err(|mut e| {
            // candle attaches a backtrace when RUST_BACKTRACE is set: one line is wanted.
            while let candle_core::Error::WithBacktrace { inner, .. } = e {
                e = *inner;
            }
            format!(
                "--device cuda: cannot open CUDA device 0: {} (no usable NVIDIA GPU and driver here; on a GPU machine \
                 run scripts/gpu-check.sh, which puts its PyTorch's CUDA libraries on LD_LIBRARY_PATH)",
                parity::one_line(&e.to_string())
            )
        }),
    }
}

fn fmt_err(e: Option<f64>) -> String {
    match e {
        None => "-".into(),
        Some(e) if e.is_infinite() => "nan/inf".into(),
        Some(e) => format!("{e:.2e}"),
    }
}

fn fmt_num(x: Option<f64>, digits: usize) -> String {
    x.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

pub fn run(args: &SelftestArgs) -> Result<(), String> {
    let device = open_device(&args.device)?;
    let cuda = device.is_cuda();
    let t0 = Instant::now();
    let build = if cfg!(feature = "cuda") { "cuda" } else { "cpu-only" };
    crate::info!("selftest on {} ({build} build), quick={}", args.device, args.quick);

    // 1. Parity.
    let dtypes: Vec<DType> = match (args.dtypes.is_empty(), cuda) {
        (true, true) => vec![DType::F32, DType::BF16],
        (true, false) => vec![DType::F32],
        (false, _) => args.dtypes.iter().map(|d| if d == "bf16" { DType::BF16 } else { DType::F32 }).collect(),
    };
    let parity = parity::run(&device, &dtypes, args.quick).map_err(|e| format!("op parity: {e}"))?;
    crate::info!("op parity done ({:.1} s)", t0.elapsed().as_secs_f64());

    // 2. Training smoke run.
    let smoke = smoke::run(&device).map_err(|e| parity::one_line(&e.to_string()));
    crate::info!("training smoke run done ({:.1} s)", t0.elapsed().as_secs_f64());

    // 3. Throughput.
    let jobs = if args.no_bench { vec![] } else { bench::jobs(cuda, args.quick) };
    let bench = bench::run(&device, &jobs, args.quick, |r| {
        crate::info!(
            "bench {} {} {} batch {}: {} img/s ({:.1} s)",
            r.model,
            r.work,
            r.dtype,
            r.batch,
            fmt_num(r.images_per_second, 1),
            t0.elapsed().as_secs_f64()
        )
    });

    // The table.
    let mut out = String::new();
    let line = |out: &mut String, s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(
        &mut out,
        format!("cellino selftest: device {} ({build} build){}", args.device, if args.quick { ", quick" } else { "" }),
    );
    line(
        &mut out,
        "op parity vs CPU f32 composite on the same inputs; err = |x-ref|_2/|ref|_2; limit f32 1e-4, bf16 2e-2".into(),
    );
    line(
        &mut out,
        format!(
            "  {:<18} {:<10} {:<5} {:>9} {:>9} {:>7}  result",
            "op", "impl", "dtype", "fwd err", "bwd err", "limit"
        ),
    );
    for r in &parity {
        let result = match (&r.error, r.pass) {
            (Some(e), _) => format!("FAIL: {e}"),
            (None, true) => "ok".into(),
            (None, false) => "FAIL".into(),
        };
        line(
            &mut out,
            format!(
                "  {:<18} {:<10} {:<5} {:>9} {:>9} {:>7.0e}  {result}",
                r.op,
                r.implementation,
                r.dtype,
                fmt_err(r.fwd_err),
                fmt_err(r.bwd_err),
                r.threshold
            ),
        );
    }
    match &smoke {
        Ok(s) => {
            let ends = |v: &[f64]| {
                let (a, b) = (v.first().copied().unwrap_or(f64::NAN), v.last().copied().unwrap_or(f64::NAN));
                format!("{a:.3} -> {b:.3}")
            };
            line(
                &mut out,
                format!(
                    "training smoke run (tiny SSL config, {} iterations, synthetic cells): total loss {}, ibot+koleo {}, \
                     teacher entropy {}, {:.3} s/it, finite {}, ibot+koleo decreasing {}  {}",
                    s.iterations,
                    ends(&s.losses),
                    ends(&s.ibot_plus_koleo),
                    ends(&s.teacher_entropy),
                    s.seconds_per_iteration,
                    s.all_finite,
                    s.decreasing,
                    if s.pass { "ok" } else { "FAIL" }
                ),
            );
        }
        Err(e) => line(&mut out, format!("training smoke run: FAIL: {e}")),
    }
    if !bench.is_empty() {
        line(
            &mut out,
            "throughput (224x224, random weights; train_step = fwd + bwd + AdamW, bf16 = autocast-like)".into(),
        );
        line(
            &mut out,
            format!(
                "  {:<8} {:<10} {:<5} {:>5} {:>10} {:>10} {:>5}",
                "model", "work", "dtype", "batch", "img/s", "ms/iter", "iters"
            ),
        );
        for r in &bench {
            let tail = r.error.as_ref().map(|e| format!("  error: {e}")).unwrap_or_default();
            line(
                &mut out,
                format!(
                    "  {:<8} {:<10} {:<5} {:>5} {:>10} {:>10} {:>5}{tail}",
                    r.model,
                    r.work,
                    r.dtype,
                    r.batch,
                    fmt_num(r.images_per_second, 1),
                    fmt_num(r.ms_per_iteration, 1),
                    r.iterations
                ),
            );
        }
    }
    let failed_ops: Vec<String> =
        parity.iter().filter(|r| !r.pass).map(|r| format!("{}/{}/{}", r.op, r.implementation, r.dtype)).collect();
    let smoke_ok = smoke.as_ref().is_ok_and(|s| s.pass);
    let pass = failed_ops.is_empty() && smoke_ok;
    line(
        &mut out,
        format!("selftest {} in {:.1} s", if pass { "PASSED" } else { "FAILED" }, t0.elapsed().as_secs_f64()),
    );
    print!("{out}");

    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "device": args.device,
            "build": build,
            "quick": args.quick,
            "pass": pass,
            "parity": parity,
            "smoke": match &smoke { Ok(s) => serde_json::to_value(s).unwrap_or_default(), Err(e) => serde_json::json!({"error": e, "pass": false}) },
            "bench": bench,
            "seconds": t0.elapsed().as_secs_f64(),
        });
        let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        write_atomically(path, |p| std::fs::write(p, &text))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if pass {
        return Ok(());
    }
    let mut why = vec![];
    if !failed_ops.is_empty() {
        why.push(format!("op parity failed for {}", failed_ops.join(", ")));
    }
    if !smoke_ok {
        why.push("the training smoke run failed".into());
    }
    Err(format!("selftest failed: {}", why.join("; ")))
}

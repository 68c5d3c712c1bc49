//! Throughput: ViT embedding (final-norm CLS + patch tokens, no gradient) in images/s, and one
//! backbone training step (forward, `mean(cls²) + mean(patch²)` in f32, backward, AdamW on f32
//! master weights; bf16 = weights cast to bf16 inside the graph, as under torch autocast).
//! `scripts/gpu_bench_torch.py` times the same work in PyTorch.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use cellino_ssl::{AdamW, AdamWConfig};
use cellino_vit::{Arch, DinoVisionTransformer, StateDict, VitConfig, random_state_dict};

use super::parity::{BoxErr, dtype_name, one_line};

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
    /// `vit_s16` or `vit_l16`.
    pub model: String,
    /// `embed` or `train_step`.
    pub work: String,
    pub dtype: String,
    pub batch: usize,
    pub images_per_second: Option<f64>,
    pub ms_per_iteration: Option<f64>,
    pub iterations: usize,
    pub error: Option<String>,
}

/// One benchmark to run.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    pub arch: Arch,
    pub train: bool,
    pub dtype: DType,
    pub batch: usize,
}

pub fn model_name(arch: Arch) -> &'static str {
    match arch {
        Arch::VitSmall => "vit_s16",
        Arch::VitBase => "vit_b16",
        Arch::VitLarge => "vit_l16",
        _ => "vit_g16",
    }
}

/// The jobs for a device: batch 64 and f32 + bf16 on CUDA (ViT-L skipped with `--quick`); batch 8,
/// f32 and ViT-S only on CPU (ViT-L embedding added without `--quick`).
pub fn jobs(cuda: bool, quick: bool) -> Vec<Job> {
    let mut jobs = vec![];
    let (batch, dtypes): (usize, &[DType]) = if cuda { (64, &[DType::F32, DType::BF16]) } else { (8, &[DType::F32]) };
    for &dtype in dtypes {
        jobs.push(Job { arch: Arch::VitSmall, train: false, dtype, batch });
        if !quick {
            jobs.push(Job { arch: Arch::VitLarge, train: false, dtype, batch });
        }
        jobs.push(Job { arch: Arch::VitSmall, train: true, dtype, batch });
    }
    jobs
}

fn sync(device: &Device, t: &Tensor) -> Result<(), BoxErr> {
    device.synchronize()?;
    // Reading one number back is a barrier on every backend.
    t.flatten_all()?.narrow(0, 0, 1)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
    Ok(())
}

/// Warm-up runs, then timed runs until `budget_s` (at least `min_iters`, at most `max_iters`).
fn time_it(
    device: &Device,
    warmup: usize,
    min_iters: usize,
    max_iters: usize,
    budget_s: f64,
    mut step: impl FnMut() -> Result<Tensor, BoxErr>,
) -> Result<(f64, usize), BoxErr> {
    for _ in 0..warmup {
        let t = step()?;
        sync(device, &t)?;
    }
    let t0 = Instant::now();
    let mut n = 0;
    while n < max_iters && (n < min_iters || t0.elapsed().as_secs_f64() < budget_s) {
        let t = step()?;
        n += 1;
        if n == max_iters || t0.elapsed().as_secs_f64() >= budget_s {
            sync(device, &t)?;
        }
    }
    Ok((t0.elapsed().as_secs_f64() / n as f64, n))
}

fn model(config: &VitConfig, tensors: BTreeMap<String, Tensor>) -> Result<DinoVisionTransformer, BoxErr> {
    let sd = StateDict { tensors, source: "selftest".into(), head_keys: vec![], layout: "in memory".into() };
    Ok(DinoVisionTransformer::from_state_dict(config.clone(), &sd)?)
}

fn run_job(job: Job, device: &Device, quick: bool) -> Result<(f64, usize), BoxErr> {
    let config = VitConfig::for_arch(job.arch, 16, 3, 224);
    let sd = random_state_dict(&config, 1e-5, 0, device)?;
    let cpu = device.is_cpu();
    let (warmup, min_iters, max_iters, budget) = match (cpu, quick) {
        (true, true) => (0, 1, 1, 0.0),
        (true, false) => (1, 2, 20, 10.0),
        (false, true) => (2, 5, 50, 3.0),
        (false, false) => (3, 10, 200, 5.0),
    };
    let x = Tensor::randn(0f32, 1.0, (job.batch, 3, 224, 224), device)?.to_dtype(job.dtype)?;
    if !job.train {
        let tensors =
            sd.tensors.into_iter().map(|(k, t)| Ok((k, t.to_dtype(job.dtype)?))).collect::<Result<_, BoxErr>>()?;
        let m = model(&config, tensors)?;
        return time_it(device, warmup, min_iters, max_iters, budget, || {
            let f = m.forward_features(&x, None)?;
            Ok(Tensor::cat(&[f.cls.unsqueeze(1)?, f.patches], 1)?)
        });
    }
    let vars: BTreeMap<String, Var> =
        sd.tensors.into_iter().map(|(k, t)| Ok((k, Var::from_tensor(&t)?))).collect::<Result<_, BoxErr>>()?;
    let f32_model = if job.dtype == DType::F32 {
        Some(model(&config, vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect())?)
    } else {
        None
    };
    let mut opt = AdamW::new(AdamWConfig::default());
    time_it(device, warmup, min_iters, max_iters, budget, || {
        // bf16: the cast is part of the graph, so the gradients reach the f32 master weights.
        let cast;
        let m = match &f32_model {
            Some(m) => m,
            None => {
                let t = vars
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), v.as_tensor().to_dtype(job.dtype)?)))
                    .collect::<Result<_, BoxErr>>()?;
                cast = model(&config, t)?;
                &cast
            }
        };
        let f = m.forward_features(&x, None)?;
        let loss =
            (f.cls.to_dtype(DType::F32)?.sqr()?.mean_all()? + f.patches.to_dtype(DType::F32)?.sqr()?.mean_all()?)?;
        let grads = loss.backward()?;
        for (name, var) in &vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                opt.step_param(name, var, g, 1e-4, 0.04)?;
            }
        }
        Ok(loss)
    })
}

pub fn run(device: &Device, jobs: &[Job], quick: bool, mut progress: impl FnMut(&BenchRow)) -> Vec<BenchRow> {
    jobs.iter()
        .map(|&job| {
            let (ips, ms, iterations, error) = match run_job(job, device, quick) {
                Ok((secs, n)) => (Some(job.batch as f64 / secs), Some(secs * 1e3), n, None),
                Err(e) => (None, None, 0, Some(one_line(&e.to_string()))),
            };
            let row = BenchRow {
                model: model_name(job.arch).into(),
                work: if job.train { "train_step" } else { "embed" }.into(),
                dtype: dtype_name(job.dtype).into(),
                batch: job.batch,
                images_per_second: ips,
                ms_per_iteration: ms,
                iterations,
                error,
            };
            progress(&row);
            row
        })
        .collect()
}

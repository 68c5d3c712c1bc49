//! Training-step throughput on CPU, inputs built in memory from a seeded generator:
//!
//! - `cpu_backbone_adamw_step_vit_small_p16_b8_224_c4`: ViT-S/16 (4 channels, drop path 0.1),
//!   forward + backward of the summed final-norm CLS, then the crate's AdamW over every backbone
//!   parameter (PyTorch: `forward_features(x)["x_norm_clstoken"].sum().backward(); opt.step();
//!   opt.zero_grad()`).
//! - `cpu_ssl_step_small`: one DINO + iBOT + KoLeo iteration (student, EMA teacher, shared head,
//!   multi-crop) at `configs/train/tiny_cpu_boc.yaml` (batch 8, 2×32² + 4×16², D 64, K 256).
//! - `cpu_ssl_step_vit_small_published_crops`: the same iteration with ViT-S/16, 4 channels,
//!   batch 8, 2×224² + 8×96², published head sizes (65,536 prototypes, hidden 2048, bottleneck 256;
//!   iBOT shares the DINO head, as `ibot.separate_head: false`).
//!
//! Criterion's throughput is images (each with all its crops) per second.

use std::time::Duration;

use candle_core::{Device, Tensor, Var};
use cellino_data::MaskBatch;
use cellino_ssl::{AdamW, AdamWConfig, SslConfig, SslTrainer};
use cellino_vit::{Arch, DinoVisionTransformer, StateDict, VitConfig, random_state_dict};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BATCH: usize = 8;

/// A `(n, c, s, s)` tensor uniform in [-1, 1).
fn uniform(rng: &mut StdRng, n: usize, c: usize, s: usize) -> Tensor {
    let v: Vec<f32> = (0..n * c * s * s).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(v, (n, c, s, s), &Device::Cpu).expect("input")
}

fn backbone_adamw_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("ssl_train");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1));
    let mut config = VitConfig::for_arch(Arch::VitSmall, 16, 4, 224);
    config.drop_path_rate = 0.1;
    let sd = random_state_dict(&config, 1.0, 0, &Device::Cpu).expect("random weights");
    let vars: Vec<(String, Var)> =
        sd.tensors.iter().map(|(k, t)| (k.clone(), Var::from_tensor(t).expect("var"))).collect();
    let tensors = vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    let model = DinoVisionTransformer::from_state_dict(config, &StateDict { tensors, ..sd }).expect("model");
    let x = uniform(&mut StdRng::seed_from_u64(7), BATCH, 4, 224);
    let mut opt = AdamW::new(AdamWConfig::default());
    let mut step = 0u64;
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("cpu_backbone_adamw_step_vit_small_p16_b8_224_c4", |b| {
        b.iter(|| {
            step += 1;
            let f = model.forward_features_train(&x, None, &mut StdRng::seed_from_u64(step)).expect("forward");
            let grads = f.cls.sum_all().expect("sum").backward().expect("backward");
            for (name, var) in &vars {
                if let Some(g) = grads.get(var.as_tensor()) {
                    opt.step_param(name, var, g, 1e-4, 0.04).expect("adamw");
                }
            }
        })
    });
    group.finish();
}

/// Crop-major globals (2B), locals (n_local·B) and iBOT masks (half the globals masked, about a
/// third of their patches) for `config`.
fn synthetic_batch(config: &SslConfig, seed: u64) -> (Tensor, Option<Tensor>, MaskBatch) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (c, crops) = (config.student.in_chans, &config.crops);
    let global = uniform(&mut rng, 2 * BATCH, c, crops.global_crops_size);
    let local = (crops.local_crops_number > 0)
        .then(|| uniform(&mut rng, crops.local_crops_number * BATCH, c, crops.local_crops_size));
    let g = crops.global_crops_size / config.student.patch_size;
    let masks = (0..2 * BATCH)
        .flat_map(|i| {
            let masked = i % 2 == 0;
            (0..g * g).map(|_| masked && rng.random::<f64>() < 0.3).collect::<Vec<_>>()
        })
        .collect();
    (global, local, MaskBatch { masks, n_images: 2 * BATCH, grid: (g, g) })
}

fn ssl_step(c: &mut Criterion, name: &str, config: SslConfig, measurement: Duration) {
    let mut group = c.benchmark_group("ssl_train");
    group.sample_size(10).measurement_time(measurement).warm_up_time(Duration::from_secs(1));
    let (global, local, masks) = synthetic_batch(&config, 3);
    let mut trainer = SslTrainer::new(config, &Device::Cpu).expect("trainer");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function(name, |b| {
        b.iter(|| trainer.step_tensors(&global, local.as_ref(), Some(&masks), "none").expect("step"))
    });
    group.finish();
}

fn tiny_config(overrides: &[&str]) -> SslConfig {
    let text = include_str!("../../../configs/train/tiny_cpu_boc.yaml");
    let config = SslConfig::from_yaml_str(text, "configs/train/tiny_cpu_boc.yaml").expect("tiny config");
    config.with_overrides(overrides).expect("overrides")
}

fn ssl_step_small(c: &mut Criterion) {
    ssl_step(c, "cpu_ssl_step_small", tiny_config(&[]), Duration::from_secs(10));
}

fn ssl_step_published_crops(c: &mut Criterion) {
    let config = tiny_config(&[
        "student.embed_dim=~",
        "student.depth=~",
        "student.num_heads=~",
        "student.patch_size=16",
        "student.in_chans=4",
        "teacher.in_chans=4",
        "crops.global_crops_size=224",
        "crops.local_crops_size=96",
        "crops.local_crops_number=8",
        "dino.head_n_prototypes=65536",
        "dino.head_bottleneck_dim=256",
        "dino.head_hidden_dim=2048",
    ]);
    // About 10 s an iteration on 2 cores: 10 samples of one iteration each.
    ssl_step(c, "cpu_ssl_step_vit_small_published_crops", config, Duration::from_secs(60));
}

criterion_group!(benches, backbone_adamw_step, ssl_step_small, ssl_step_published_crops);
criterion_main!(benches);

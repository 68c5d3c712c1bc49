//! Backbone throughput: ViT-S/16, 224×224, random weights: the inference forward at batch 8 and
//! 32 with 1 and 4 input channels, and a training step's forward + backward at batch 8 (weights as
//! `Var`s, 4 channels, no optimizer; the step with AdamW is in cellino-ssl's `train_step` bench).
//! Bench names carry the device (`cpu_`, `cuda_`) so CPU and GPU results never mix. Inputs come
//! from a seeded generator (candle's CPU RNG cannot be seeded).

use std::time::Duration;

use candle_core::{Device, Tensor, Var};
use cellino_vit::{Arch, DinoVisionTransformer, StateDict, VitConfig, random_state_dict};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn devices() -> Vec<(&'static str, Device)> {
    #[cfg_attr(not(feature = "cuda"), allow(unused_mut))]
    let mut out = vec![("cpu", Device::Cpu)];
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        out.push(("cuda", d));
    }
    out
}

/// A `(b, c, 224, 224)` input with values uniform in [-1, 1), from a seeded generator.
fn input(b: usize, c: usize, device: &Device) -> Tensor {
    let mut rng = StdRng::seed_from_u64(7);
    let values: Vec<f32> = (0..b * c * 224 * 224).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(values, (b, c, 224, 224), device).expect("input")
}

fn vit_small_forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("vit_forward");
    group.sample_size(10).measurement_time(Duration::from_secs(12)).warm_up_time(Duration::from_secs(2));
    for (device_name, device) in devices() {
        for (batch, in_chans) in [(8, 1), (8, 4), (32, 1), (32, 4)] {
            let config = VitConfig::for_arch(Arch::VitSmall, 16, in_chans, 224);
            let weights = random_state_dict(&config, 1.0, 0, &device).expect("random weights");
            let model = DinoVisionTransformer::from_state_dict(config, &weights).expect("model");
            let x = input(batch, in_chans, &device);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{device_name}_vit_small_p16_b{batch}_224_c{in_chans}"), |b| {
                b.iter(|| {
                    let out = model.forward(&x).expect("forward");
                    device.synchronize().expect("sync");
                    out
                })
            });
        }
    }
    group.finish();
}

fn vit_small_train_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("vit_train");
    group.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1));
    for (device_name, device) in devices() {
        let mut config = VitConfig::for_arch(Arch::VitSmall, 16, 4, 224);
        config.drop_path_rate = 0.1;
        let sd = random_state_dict(&config, 1.0, 0, &device).expect("random weights");
        let vars: Vec<Var> = sd.tensors.values().map(|t| Var::from_tensor(t).expect("var")).collect();
        let tensors = sd.tensors.keys().cloned().zip(vars.iter().map(|v| v.as_tensor().clone())).collect();
        let model = DinoVisionTransformer::from_state_dict(config, &StateDict { tensors, ..sd }).expect("model");
        let x = input(8, 4, &device);
        group.throughput(Throughput::Elements(8));
        group.bench_function(format!("{device_name}_vit_small_p16_b8_224_c4_fwdbwd"), |b| {
            b.iter(|| {
                let f = model.forward_features_train(&x, None, &mut StdRng::seed_from_u64(0)).expect("forward");
                let grads = f.cls.backward().expect("backward");
                device.synchronize().expect("sync");
                grads
            })
        });
    }
    group.finish();
}

criterion_group!(benches, vit_small_forward, vit_small_train_step);
criterion_main!(benches);

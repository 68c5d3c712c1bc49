//! Backbone forward throughput: ViT-S/16, batch 8, 224×224, 1 and 4 input channels, random weights.
//! Bench names carry the device (`cpu_`, `cuda_`) so CPU and GPU results never mix.

use std::time::Duration;

use candle_core::{Device, Tensor};
use cellino_vit::{Arch, DinoVisionTransformer, VitConfig, random_state_dict};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn devices() -> Vec<(&'static str, Device)> {
    #[cfg_attr(not(feature = "cuda"), allow(unused_mut))]
    let mut out = vec![("cpu", Device::Cpu)];
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        out.push(("cuda", d));
    }
    out
}

fn vit_small_forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("vit_forward");
    group.sample_size(10).measurement_time(Duration::from_secs(12)).warm_up_time(Duration::from_secs(2));
    for (device_name, device) in devices() {
        for in_chans in [1, 4] {
            let config = VitConfig::for_arch(Arch::VitSmall, 16, in_chans, 224);
            let weights = random_state_dict(&config, 1.0, 0, &device).expect("random weights");
            let model = DinoVisionTransformer::from_state_dict(config, &weights).expect("model");
            let x = Tensor::randn(0f32, 1.0, (8, in_chans, 224, 224), &device).expect("input");
            group.throughput(Throughput::Elements(8));
            group.bench_function(format!("{device_name}_vit_small_p16_b8_224_c{in_chans}"), |b| {
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

criterion_group!(benches, vit_small_forward);
criterion_main!(benches);

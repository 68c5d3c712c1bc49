//! Per-op CPU benches at ViT-S/16 batch-8 shapes (N = 197 tokens, D = 384, 6 heads, MLP 1536) and
//! SSL-head shapes. Each fused op `cpu_<op>_<shape>` is paired with its candle composite
//! `cpu_<op>_composite_<shape>` (the differentiable path training had to use), and where candle
//! has a gradient-free fused kernel, with it as `cpu_<op>_candle_nograd_<shape>`. `_fwdbwd`
//! variants time forward + backward. `cargo xtask bench` prints the medians.

use std::time::Duration;

use candle_core::{Device, Tensor, Var};
use cellino_kernels::*;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime};

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(0f32, 1.0, shape, &Device::Cpu).expect("randn")
}

fn bench(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, f: impl Fn() -> Tensor) {
    g.bench_function(name, |b| b.iter(&f));
}

/// Forward + backward with respect to every input, from an upstream gradient of ones (candle's
/// `backward` on a non-scalar; a `sum_all` loss would add candle's slow stride-0 broadcast).
fn bench_fwdbwd(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).expect("var")).collect();
    let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    g.bench_function(name, |b| b.iter(|| f(&tensors).backward().expect("backward")));
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernels");
    g.sample_size(10).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));

    // LayerNorm, (8, 197, 384).
    let (x, w, b) = (randn(&[8, 197, 384]), randn(&[384]), randn(&[384]));
    bench(&mut g, "cpu_layer_norm_b8n197d384", || layer_norm(&x, &w, &b, 1e-6).unwrap());
    bench(&mut g, "cpu_layer_norm_composite_b8n197d384", || layer_norm_composite(&x, &w, &b, 1e-6).unwrap());
    bench(&mut g, "cpu_layer_norm_candle_nograd_b8n197d384", || candle_nn::ops::layer_norm(&x, &w, &b, 1e-6).unwrap());
    let ln = [x.clone(), w.clone(), b.clone()];
    bench_fwdbwd(&mut g, "cpu_layer_norm_fwdbwd_b8n197d384", &ln, |t| layer_norm(&t[0], &t[1], &t[2], 1e-6).unwrap());
    bench_fwdbwd(&mut g, "cpu_layer_norm_composite_fwdbwd_b8n197d384", &ln, |t| {
        layer_norm_composite(&t[0], &t[1], &t[2], 1e-6).unwrap()
    });

    // Softmax over attention scores, (8, 6, 197, 197).
    let s = randn(&[8, 6, 197, 197]);
    bench(&mut g, "cpu_softmax_b8h6n197", || softmax_last_dim(&s).unwrap());
    bench(&mut g, "cpu_softmax_composite_b8h6n197", || softmax_last_dim_composite(&s).unwrap());
    bench(&mut g, "cpu_softmax_candle_nograd_b8h6n197", || candle_nn::ops::softmax_last_dim(&s).unwrap());
    bench_fwdbwd(&mut g, "cpu_softmax_fwdbwd_b8h6n197", std::slice::from_ref(&s), |t| softmax_last_dim(&t[0]).unwrap());
    bench_fwdbwd(&mut g, "cpu_softmax_composite_fwdbwd_b8h6n197", std::slice::from_ref(&s), |t| {
        softmax_last_dim_composite(&t[0]).unwrap()
    });
    drop(s);

    // Attention: a ViT-S/16 batch (197 tokens) and a ChannelViT-style long sequence (4·196 + 1).
    for (tag, (bsz, n)) in [("b8h6n197d64", (8, 197)), ("b2h6n785d64", (2, 785))] {
        let qkv: Vec<Tensor> = (0..3).map(|_| randn(&[bsz, 6, n, 64])).collect();
        let scale = 0.125;
        bench(&mut g, &format!("cpu_attention_{tag}"), || attention(&qkv[0], &qkv[1], &qkv[2], scale).unwrap());
        bench(&mut g, &format!("cpu_attention_composite_{tag}"), || {
            attention_composite(&qkv[0], &qkv[1], &qkv[2], scale).unwrap()
        });
        // What inference used before: q·kᵀ, candle's gradient-free softmax, ·v.
        bench(&mut g, &format!("cpu_attention_candle_nograd_{tag}"), || {
            let s = (qkv[0].matmul(&qkv[1].t().unwrap()).unwrap() * scale).unwrap();
            candle_nn::ops::softmax_last_dim(&s).unwrap().matmul(&qkv[2]).unwrap()
        });
        bench_fwdbwd(&mut g, &format!("cpu_attention_fwdbwd_{tag}"), &qkv, |t| {
            attention(&t[0], &t[1], &t[2], scale).unwrap()
        });
        bench_fwdbwd(&mut g, &format!("cpu_attention_composite_fwdbwd_{tag}"), &qkv, |t| {
            attention_composite(&t[0], &t[1], &t[2], scale).unwrap()
        });
    }

    // GELU on the MLP hidden layer, (8, 197, 1536).
    let h = randn(&[8, 197, 1536]);
    bench(&mut g, "cpu_gelu_b8n197d1536", || gelu_erf(&h).unwrap());
    bench(&mut g, "cpu_gelu_composite_b8n197d1536", || gelu_erf_composite(&h).unwrap());
    bench_fwdbwd(&mut g, "cpu_gelu_fwdbwd_b8n197d1536", std::slice::from_ref(&h), |t| gelu_erf(&t[0]).unwrap());
    bench_fwdbwd(&mut g, "cpu_gelu_composite_fwdbwd_b8n197d1536", std::slice::from_ref(&h), |t| {
        gelu_erf_composite(&t[0]).unwrap()
    });
    drop(h);

    // Linear: the qkv projection, (8·197, 384) → 1152.
    let (x, w, b) = (randn(&[8, 197, 384]), randn(&[1152, 384]), randn(&[1152]));
    bench(&mut g, "cpu_linear_b8n197d384o1152", || linear(&x, &w, Some(&b)).unwrap());
    bench(&mut g, "cpu_linear_composite_b8n197d384o1152", || linear_composite(&x, &w, Some(&b)).unwrap());
    let lin = [x.clone(), w.clone(), b.clone()];
    bench_fwdbwd(&mut g, "cpu_linear_fwdbwd_b8n197d384o1152", &lin, |t| linear(&t[0], &t[1], Some(&t[2])).unwrap());
    bench_fwdbwd(&mut g, "cpu_linear_composite_fwdbwd_b8n197d384o1152", &lin, |t| {
        linear_composite(&t[0], &t[1], Some(&t[2])).unwrap()
    });

    // The GEMM ceiling `cargo xtask bench` divides the backbone's FLOP rate by: the largest
    // matrix product of a ViT-S/16 batch-8 forward (MLP fc1, 1576 × 384 · 384 × 1536) through
    // candle's matmul, both operands contiguous.
    let (a, bt) = (randn(&[8 * 197, 384]), randn(&[384, 1536]));
    bench(&mut g, "cpu_gemm_m1576k384n1536", || a.matmul(&bt).unwrap());

    // LayerScale residual, (8, 197, 384).
    let (x, br, gamma) = (randn(&[8, 197, 384]), randn(&[8, 197, 384]), randn(&[384]));
    bench(&mut g, "cpu_scaled_residual_b8n197d384", || scaled_residual(&x, &br, &gamma).unwrap());
    bench(&mut g, "cpu_scaled_residual_composite_b8n197d384", || scaled_residual_composite(&x, &br, &gamma).unwrap());

    // SSL ops: DINO-head bottleneck normalisation, KoLeo pairing, Sinkhorn-Knopp on 65,536
    // prototypes, EMA over ViT-S-sized parameters (21.7 M in 150 tensors).
    let z = randn(&[160, 256]);
    bench(&mut g, "cpu_l2_normalize_b160d256", || l2_normalize(&z, 1e-6).unwrap());
    bench(&mut g, "cpu_l2_normalize_composite_b160d256", || l2_normalize_composite(&z, 1e-6).unwrap());
    let cls = l2_normalize(&randn(&[64, 384]), 1e-8).unwrap();
    bench(&mut g, "cpu_nearest_neighbor_b64d384", || nearest_neighbor_indices(&cls).unwrap());
    bench(&mut g, "cpu_nearest_neighbor_composite_b64d384", || nearest_neighbor_indices_composite(&cls).unwrap());
    let logits = randn(&[16, 65536]);
    bench(&mut g, "cpu_sinkhorn_b16k65536", || sinkhorn_knopp(&logits, 0.07, 3).unwrap());
    bench(&mut g, "cpu_sinkhorn_composite_b16k65536", || sinkhorn_knopp_composite(&logits, 0.07, 3).unwrap());
    let shapes: Vec<Vec<usize>> = (0..12)
        .flat_map(|_| [vec![1152, 384], vec![384, 384], vec![1536, 384], vec![384, 1536]])
        .chain((0..102).map(|_| vec![384]))
        .collect();
    let teacher: Vec<Tensor> = shapes.iter().map(|s| randn(s)).collect();
    let student: Vec<Tensor> = shapes.iter().map(|s| randn(s)).collect();
    g.bench_function("cpu_ema_vit_small", |bch| bch.iter(|| ema_update_in_place(&teacher, &student, 0.996).unwrap()));
    g.bench_function("cpu_ema_composite_vit_small", |bch| {
        bch.iter(|| ema_update_composite(&teacher, &student, 0.996).unwrap())
    });
    g.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);

//! Training mode: differentiable everywhere (every weight gets a gradient, checked against finite
//! differences), stochastic depth drawn from the caller's seed, mask tokens in place of patches.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use cellino_vit::{Arch, DinoVisionTransformer, StateDict, VitConfig, random_state_dict};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn tiny_config() -> VitConfig {
    let mut c = VitConfig::for_arch(Arch::VitSmall, 8, 2, 32);
    c.embed_dim = 32;
    c.num_heads = 2;
    c.depth = 2;
    c.ffn_hidden = 64;
    c.num_register_tokens = 2;
    c
}

/// Random weights as `Var`s (LayerScale 0.5 and perturbed norms so that no gradient is trivially zero).
fn vars(config: &VitConfig, dtype: DType) -> (StateDict, BTreeMap<String, Var>) {
    let mut sd = random_state_dict(config, 0.5, 7, &Device::Cpu).unwrap();
    let mut vars = BTreeMap::new();
    for (k, t) in sd.tensors.iter_mut() {
        let noise = Tensor::randn(0f32, 0.02, t.dims(), &Device::Cpu).unwrap();
        let base = if k == "cls_token" || k == "mask_token" || k.ends_with("bias") {
            (t.clone() + noise).unwrap()
        } else {
            t.clone()
        };
        let v = Var::from_tensor(&base.to_dtype(dtype).unwrap()).unwrap();
        *t = v.as_tensor().clone();
        vars.insert(k.clone(), v);
    }
    (sd, vars)
}

fn input(dtype: DType) -> (Tensor, Tensor) {
    // Non-square 24×40 so the position embedding is resampled (and must carry a gradient).
    let n = 2 * 2 * 24 * 40;
    let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let x = Tensor::from_vec(x, (2, 2, 24, 40), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
    let mut m = vec![0u8; 2 * 15];
    m[3] = 1;
    m[20] = 1;
    (x, Tensor::from_vec(m, (2, 15), &Device::Cpu).unwrap())
}

fn loss(model: &DinoVisionTransformer, x: &Tensor, masks: &Tensor) -> Tensor {
    let mut rng = StdRng::seed_from_u64(0);
    let f = model.forward_features_train(x, Some(masks), &mut rng).unwrap();
    let w = Tensor::arange(0f32, 32.0, &Device::Cpu).unwrap().to_dtype(x.dtype()).unwrap();
    let cls = f.cls.broadcast_mul(&w).unwrap().sum_all().unwrap();
    let patch = f.patches.sqr().unwrap().mean_all().unwrap();
    let reg = f.registers.broadcast_mul(&w).unwrap().mean_all().unwrap();
    ((cls + patch).unwrap() + reg).unwrap()
}

#[test]
fn every_weight_receives_a_nonzero_gradient() {
    let config = tiny_config();
    let (sd, vars) = vars(&config, DType::F32);
    let model = DinoVisionTransformer::from_state_dict(config, &sd).unwrap();
    let (x, masks) = input(DType::F32);
    let grads = loss(&model, &x, &masks).backward().unwrap();
    for (name, v) in &vars {
        let g = grads.get(v.as_tensor()).unwrap_or_else(|| panic!("{name} has no gradient"));
        let norm = g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(norm > 0.0, "{name} has a zero gradient");
    }
}

#[test]
fn gradients_match_finite_differences_in_f64() {
    let config = tiny_config();
    let (sd, vars) = vars(&config, DType::F64);
    let model = DinoVisionTransformer::from_state_dict(config, &sd).unwrap();
    let (x, masks) = input(DType::F64);
    let grads = loss(&model, &x, &masks).backward().unwrap();
    let eps = 1e-6;
    for name in [
        "pos_embed",
        "mask_token",
        "patch_embed.proj.weight",
        "blocks.0.attn.qkv.weight",
        "blocks.1.norm2.weight",
        "blocks.1.ls2.gamma",
        "norm.bias",
        "register_tokens",
        "blocks.0.mlp.fc1.bias",
    ] {
        let v = &vars[name];
        let analytic = grads.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let original = v.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for idx in [0, original.len() / 3, original.len() - 1] {
            let eval = |delta: f64| {
                let mut p = original.clone();
                p[idx] += delta;
                v.set(&Tensor::from_vec(p, v.dims(), &Device::Cpu).unwrap()).unwrap();
                loss(&model, &x, &masks).to_scalar::<f64>().unwrap()
            };
            let numeric = (eval(eps) - eval(-eps)) / (2.0 * eps);
            v.set(&Tensor::from_vec(original.clone(), v.dims(), &Device::Cpu).unwrap()).unwrap();
            let err = (numeric - analytic[idx]).abs();
            assert!(
                err <= 1e-6 + 1e-4 * numeric.abs(),
                "{name}[{idx}]: analytic {} vs numeric {numeric}",
                analytic[idx]
            );
        }
    }
}

#[test]
fn training_path_without_drop_path_equals_inference() {
    let config = tiny_config();
    let sd = random_state_dict(&config, 0.5, 3, &Device::Cpu).unwrap();
    let model = DinoVisionTransformer::from_state_dict(config, &sd).unwrap();
    let (x, _) = input(DType::F32);
    let a = model.forward_features(&x, None).unwrap().prenorm;
    let b = model.forward_features_train(&x, None, &mut StdRng::seed_from_u64(1)).unwrap().prenorm;
    let err = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
    assert!(err < 1e-5, "fused and differentiable paths differ by {err}");
}

#[test]
fn drop_path_is_seeded_and_drops_whole_samples() {
    let mut config = tiny_config();
    config.drop_path_rate = 0.5;
    let sd = random_state_dict(&config, 1.0, 3, &Device::Cpu).unwrap();
    let model = DinoVisionTransformer::from_state_dict(config, &sd).unwrap();
    let x = Tensor::randn(0f32, 1.0, (4, 2, 16, 16), &Device::Cpu).unwrap();
    let run = |seed| model.forward_features_train(&x, None, &mut StdRng::seed_from_u64(seed)).unwrap().cls;
    let same = (run(5) - run(5)).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(same, 0.0, "same seed must give the same output");
    let differs = (0..8u64)
        .any(|s| (run(5) - run(100 + s)).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 1e-4);
    assert!(differs, "drop path never changed the output");
}

#[test]
fn masked_patches_become_the_mask_token() {
    let config = tiny_config();
    let sd = random_state_dict(&config, 1.0, 3, &Device::Cpu).unwrap();
    let mut tensors = sd.tensors.clone();
    tensors.insert("mask_token".into(), Tensor::ones((1, 32), DType::F32, &Device::Cpu).unwrap());
    let sd = StateDict { tensors, ..sd };
    let model = DinoVisionTransformer::from_state_dict(config, &sd).unwrap();
    let a = Tensor::randn(0f32, 1.0, (1, 2, 16, 16), &Device::Cpu).unwrap();
    let b = Tensor::randn(0f32, 1.0, (1, 2, 16, 16), &Device::Cpu).unwrap();
    let all = Tensor::ones((1, 4), DType::U8, &Device::Cpu).unwrap();
    // With every patch masked, the image content no longer matters.
    let fa = model.forward_features(&a, Some(&all)).unwrap().cls;
    let fb = model.forward_features(&b, Some(&all)).unwrap().cls;
    let diff = (fa - fb).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(diff, 0.0);
}

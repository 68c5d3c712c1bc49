//! Parity with the PyTorch references of `xtask/py/make_ssl_fixtures.py`.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor, Var};
use cellino_ssl::*;
use serde_json::Value;

fn fx() -> Value {
    serde_json::from_str(include_str!("fixtures/ssl_fixtures.json")).unwrap()
}

fn vec_f32(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn vec_f64(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn t(v: &Value, shape: &[usize]) -> Tensor {
    Tensor::from_vec(vec_f32(v), shape, &Device::Cpu).unwrap()
}

fn n(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

fn flat(x: &Tensor) -> Vec<f64> {
    x.flatten_all().unwrap().to_dtype(candle_core::DType::F64).unwrap().to_vec1().unwrap()
}

fn scalar(x: &Tensor) -> f64 {
    x.to_dtype(candle_core::DType::F64).unwrap().to_scalar().unwrap()
}

/// Max relative error with an absolute floor of `floor`.
fn assert_close(what: &str, got: &[f64], want: &[f64], rel: f64, floor: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let mut worst = 0f64;
    for (g, w) in got.iter().zip(want) {
        let e = (g - w).abs() / w.abs().max(floor);
        worst = worst.max(e);
    }
    eprintln!("{what}: max rel err {worst:.2e}");
    assert!(worst <= rel, "{what}: max relative error {worst:.3e} > {rel:.1e}\n got {got:?}\nwant {want:?}");
}

#[test]
fn dino_loss_and_center_match_torch() {
    let f = &fx()["dino"];
    let (b, k, nl) = (n(&f["B"]), n(&f["K"]), n(&f["n_local"]));
    let tt = f["teacher_temp"].as_f64().unwrap();
    let sg = t(&f["student_global"], &[2 * b, k]);
    let sl = t(&f["student_local"], &[nl * b, k]);
    let tl = t(&f["teacher_logits"], &[2 * b, k]);
    let swapped = Tensor::cat(&[tl.narrow(0, b, b).unwrap(), tl.narrow(0, 0, b).unwrap()], 0).unwrap();
    let mut center = Center { value: t(&f["center"], &[1, k]) };
    let p = center.softmax_and_update(&swapped, tt).unwrap();
    assert_close("teacher probs", &flat(&p), &vec_f64(&f["teacher_probs_swapped"]), 1e-5, 1e-6);
    assert_close("center", &flat(&center.value), &vec_f64(&f["center_after"]), 1e-5, 1e-3);
    let terms = dino_loss(&sg, Some(&sl), &p, 2, nl, 0.1).unwrap();
    assert_close("dino local", &[scalar(&terms.local)], &[f["local"].as_f64().unwrap()], 1e-5, 1e-6);
    assert_close("dino global", &[scalar(&terms.global)], &[f["global_"].as_f64().unwrap()], 1e-5, 1e-6);
}

#[test]
fn sinkhorn_knopp_matches_torch() {
    let f = &fx()["sinkhorn"];
    let (b, k) = (n(&f["B"]), n(&f["K"]));
    let q = sinkhorn_knopp(&t(&f["logits"], &[b, k]), f["temperature"].as_f64().unwrap(), 3).unwrap();
    assert_eq!(q.dims(), &[b, k]);
    assert_close("sinkhorn", &flat(&q), &vec_f64(&f["targets"]), 1e-5, 1e-6);
}

#[test]
fn ibot_loss_weights_and_center_match_torch() {
    let f = &fx()["ibot"];
    let (ni, nt, k) = (n(&f["n_images"]), n(&f["n_tokens"]), n(&f["K"]));
    let masks: Vec<bool> = f["masks"].as_array().unwrap().iter().map(|v| v.as_u64() == Some(1)).collect();
    let w = mask_weights(&masks, nt);
    assert_close("weights", &w.iter().map(|&x| x as f64).collect::<Vec<_>>(), &vec_f64(&f["weights"]), 1e-7, 1e-6);
    let m = w.len();
    let mut center = Center { value: t(&f["center"], &[1, k]) };
    let p = center.softmax_and_update(&t(&f["teacher_logits"], &[m, k]), f["teacher_temp"].as_f64().unwrap()).unwrap();
    let wt = Tensor::from_vec(w, m, &Device::Cpu).unwrap();
    let loss = ibot_loss(&t(&f["student"], &[m, k]), &p, &wt, ni, 0.1).unwrap();
    assert_close("ibot", &[scalar(&loss)], &[f["loss"].as_f64().unwrap()], 1e-5, 1e-6);
    assert_close("ibot center", &flat(&center.value), &vec_f64(&f["center_after"]), 1e-5, 1e-3);
}

#[test]
fn koleo_matches_torch_and_refuses_batch_of_one() {
    let f = &fx()["koleo"];
    let (b, d) = (n(&f["B"]), n(&f["D"]));
    let x = t(&f["x"], &[b, d]);
    let loss = koleo_loss(&x).unwrap();
    assert_close("koleo", &[scalar(&loss)], &[f["loss"].as_f64().unwrap()], 1e-5, 1e-6);
    let err = koleo_loss(&x.narrow(0, 0, 1).unwrap()).unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
}

#[test]
fn dino_head_matches_torch() {
    let f = &fx()["head"];
    let cfg = HeadConfig {
        in_dim: n(&f["in_dim"]),
        hidden_dim: n(&f["hidden"]),
        bottleneck_dim: n(&f["bottleneck"]),
        n_prototypes: n(&f["K"]),
        nlayers: 3,
    };
    let shapes: BTreeMap<String, Vec<usize>> = cfg.shapes().into_iter().collect();
    let keys = [
        ("mlp.0.weight", "w0"),
        ("mlp.0.bias", "b0"),
        ("mlp.2.weight", "w2"),
        ("mlp.2.bias", "b2"),
        ("mlp.4.weight", "w4"),
        ("mlp.4.bias", "b4"),
        ("last_layer.weight_g", "g"),
        ("last_layer.weight_v", "v"),
    ];
    assert_eq!(shapes.len(), keys.len());
    let w: BTreeMap<String, Tensor> = keys.iter().map(|(k, j)| (k.to_string(), t(&f[*j], &shapes[*k]))).collect();
    let head = DinoHead::from_tensors(cfg, &w).unwrap();
    let out = head.forward(&t(&f["x"], &[n(&f["N"]), cfg.in_dim])).unwrap();
    assert_close("head", &flat(&out), &vec_f64(&f["out"]), 1e-5, 1e-4);
    // Random init follows torch's rules: g = 1, biases 0, v within ±1/√bottleneck.
    let r = random_head_weights(&cfg, 3, &Device::Cpu).unwrap();
    assert!(flat(&r["last_layer.weight_g"]).iter().all(|&v| v == 1.0));
    assert!(flat(&r["mlp.2.bias"]).iter().all(|&v| v == 0.0));
    let bound = 1.0 / (cfg.bottleneck_dim as f64).sqrt();
    assert!(flat(&r["last_layer.weight_v"]).iter().all(|&v| v.abs() <= bound));
}

#[test]
fn adamw_matches_torch() {
    let f = &fx()["adamw"];
    let shape: Vec<usize> = f["shape"].as_array().unwrap().iter().map(n).collect();
    let var = Var::from_tensor(&t(&f["p0"], &shape)).unwrap();
    let mut opt = AdamW::new(AdamWConfig::default());
    let lrs = vec_f64(&f["lrs"]);
    let wds = vec_f64(&f["wds"]);
    for (i, g) in f["grads"].as_array().unwrap().iter().enumerate() {
        opt.step_param("p", &var, &t(g, &shape), lrs[i], wds[i]).unwrap();
    }
    assert_close("adamw p", &flat(var.as_tensor()), &vec_f64(&f["p"]), 1e-5, 1e-3);
    let st = &opt.state["p"];
    assert_eq!(st.step, 4);
    assert_close("adamw m", &flat(&st.exp_avg), &vec_f64(&f["exp_avg"]), 1e-5, 1e-4);
    assert_close("adamw v", &flat(&st.exp_avg_sq), &vec_f64(&f["exp_avg_sq"]), 1e-5, 1e-6);
}

#[test]
fn clip_grad_norm_matches_torch() {
    let f = &fx()["clip"];
    let (a, b) = (t(&f["a"], &[3, 2]), t(&f["b"], &[5]));
    let (out, norm) = clip_grad_norm(&[a, b], f["max_norm"].as_f64().unwrap()).unwrap();
    assert_close("norm", &[norm], &[f["norm"].as_f64().unwrap()], 1e-6, 1e-6);
    assert_close("a", &flat(&out[0]), &vec_f64(&f["a_clipped"]), 1e-6, 1e-6);
    assert_close("b", &flat(&out[1]), &vec_f64(&f["b_clipped"]), 1e-6, 1e-6);
}

#[test]
fn schedules_match_numpy() {
    let f = &fx()["schedules"];
    let config = SslConfig::default()
        .with_overrides(&[
            format!("train.OFFICIAL_EPOCH_LENGTH={}", f["el"]),
            format!("train.batch_size_per_gpu={}", f["batch"]),
            format!("optim.epochs={}", f["epochs"]),
            format!("optim.warmup_epochs={}", f["warmup_epochs"]),
            format!("optim.freeze_last_layer_epochs={}", f["freeze_last_layer_epochs"]),
            "optim.base_lr=5e-4".into(),
            "optim.weight_decay_end=0.2".into(),
            "teacher.momentum_teacher=0.996".into(),
            "teacher.warmup_teacher_temp_epochs=4".into(),
        ])
        .unwrap();
    assert_close("lr", &[config.scaled_lr().unwrap()], &[f["lr"].as_f64().unwrap()], 1e-12, 1e-12);
    let s = config.schedules().unwrap();
    let check = |what: &str, got: &CosineScheduler, key: &str| {
        assert_close(what, &got.schedule, &vec_f64(&f[key]), 1e-12, 1e-9);
    };
    check("lr", &s.lr, "lr_schedule");
    check("last layer lr", &s.last_layer_lr, "last_layer_lr");
    check("wd", &s.wd, "wd");
    check("momentum", &s.momentum, "momentum");
    check("teacher temp", &s.teacher_temp, "teacher_temp");
    // Past the end: the final value; teacher temperature 0.04 → 0.07, then 0.07.
    assert_eq!(s.teacher_temp.get(0), 0.04);
    assert_eq!(s.teacher_temp.get(19), 0.07);
    assert_eq!(s.teacher_temp.get(1000), 0.07);
    assert_eq!(s.lr.get(10_000), 1e-6);
    let fr = CosineScheduler::new(1.0, 0.5, 10, 3, 0.2, 2).unwrap();
    assert_close("freeze", &fr.schedule, &vec_f64(&f["freeze_example"]), 1e-12, 1e-9);
    assert!(CosineScheduler::new(1.0, 0.5, 4, 3, 0.2, 2).is_none());
}

#[test]
fn param_groups_match_reference() {
    let f = &fx()["param_groups"];
    let depth = n(&f["depth"]);
    for g in f["groups"].as_array().unwrap() {
        let name = g["name"].as_str().unwrap();
        let got = match name.strip_prefix("head:") {
            Some(h) => head_group(h),
            None => backbone_group(name, depth, 0.9, 0.2),
        };
        let want_lr = g["lr_mult"].as_f64().unwrap();
        assert!((got.lr_mult - want_lr).abs() < 1e-12, "{name}: lr_mult {} vs {want_lr}", got.lr_mult);
        assert_eq!(got.wd_mult, g["wd_mult"].as_f64().unwrap(), "{name}: wd_mult");
        assert_eq!(got.is_last_layer, g["last"].as_bool().unwrap(), "{name}: last layer");
    }
}

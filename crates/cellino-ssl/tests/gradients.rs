//! Analytic gradients (candle autograd through our compositions and the fused kernels) against
//! central finite differences, in f64.

use candle_core::{DType, Device, Tensor, Var};
use cellino_ssl::{DinoHead, HeadConfig, cross_entropy, dino_loss, koleo_loss, random_head_weights};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn rand_t(rng: &mut StdRng, shape: &[usize], scale: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0) * scale).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Compare d f / d x from autograd with central differences on every element.
fn check(what: &str, x0: &Tensor, f: impl Fn(&Tensor) -> Tensor, h: f64, tol: f64) {
    let var = Var::from_tensor(x0).unwrap();
    let y = f(var.as_tensor());
    let grads = y.backward().unwrap();
    let g: Vec<f64> = grads.get(var.as_tensor()).expect("gradient").flatten_all().unwrap().to_vec1().unwrap();
    let base: Vec<f64> = x0.flatten_all().unwrap().to_vec1().unwrap();
    let mut worst = 0f64;
    for i in 0..base.len() {
        let eval = |d: f64| {
            let mut v = base.clone();
            v[i] += d;
            let t = Tensor::from_vec(v, x0.shape(), &Device::Cpu).unwrap();
            f(&t).to_scalar::<f64>().unwrap()
        };
        let fd = (eval(h) - eval(-h)) / (2.0 * h);
        worst = worst.max((fd - g[i]).abs() / fd.abs().max(1e-3));
    }
    eprintln!("{what}: max rel err vs finite differences {worst:.2e}");
    assert!(worst < tol, "{what}: {worst}");
}

#[test]
fn dino_cross_entropy_gradient() {
    let mut rng = StdRng::seed_from_u64(1);
    let s = rand_t(&mut rng, &[3, 7], 1.0);
    let logits = rand_t(&mut rng, &[3, 7], 2.0);
    let p = cellino_ssl::softmax_t(&logits, 0.5).unwrap();
    check("dino ce", &s, |x| cross_entropy(x, &p, 0.1).unwrap(), 1e-6, 1e-5);
}

#[test]
fn dino_multi_crop_loss_gradient() {
    let mut rng = StdRng::seed_from_u64(2);
    let b = 2;
    let sg = rand_t(&mut rng, &[2 * b, 5], 1.0);
    let sl = rand_t(&mut rng, &[3 * b, 5], 1.0);
    let p = cellino_ssl::softmax_t(&rand_t(&mut rng, &[2 * b, 5], 2.0), 0.3).unwrap();
    check(
        "dino global",
        &sg,
        |x| {
            let t = dino_loss(x, Some(&sl), &p, 2, 3, 0.1).unwrap();
            (t.local + t.global).unwrap()
        },
        1e-6,
        1e-5,
    );
    check(
        "dino local",
        &sl,
        |x| {
            let t = dino_loss(&sg, Some(x), &p, 2, 3, 0.1).unwrap();
            (t.local + t.global).unwrap()
        },
        1e-6,
        1e-5,
    );
}

#[test]
fn koleo_gradient() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = rand_t(&mut rng, &[5, 4], 1.0);
    check("koleo", &x, |x| koleo_loss(x).unwrap(), 1e-6, 1e-4);
}

#[test]
fn head_gradient_reaches_input_and_weight_g() {
    let cfg = HeadConfig { in_dim: 4, hidden_dim: 6, bottleneck_dim: 3, n_prototypes: 5, nlayers: 3 };
    let w = random_head_weights(&cfg, 7, &Device::Cpu).unwrap();
    let w64: std::collections::BTreeMap<String, Tensor> =
        w.iter().map(|(k, t)| (k.clone(), t.to_dtype(DType::F64).unwrap())).collect();
    let mut rng = StdRng::seed_from_u64(4);
    let x = rand_t(&mut rng, &[2, 4], 1.0);
    let p = cellino_ssl::softmax_t(&rand_t(&mut rng, &[2, 5], 1.0), 0.5).unwrap();
    let head = DinoHead::from_tensors(cfg, &w64).unwrap();
    check("head input", &x, |x| cross_entropy(&head.forward(x).unwrap(), &p, 0.1).unwrap(), 1e-6, 1e-4);
    let g0 = (w64["last_layer.weight_g"].clone() * 1.3).unwrap();
    check(
        "head weight_g",
        &g0,
        |g| {
            let mut w = w64.clone();
            w.insert("last_layer.weight_g".into(), g.clone());
            let head = DinoHead::from_tensors(cfg, &w).unwrap();
            cross_entropy(&head.forward(&x).unwrap(), &p, 0.1).unwrap()
        },
        1e-6,
        1e-4,
    );
}

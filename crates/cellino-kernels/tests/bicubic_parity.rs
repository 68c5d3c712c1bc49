//! `BicubicResize` against `torch.nn.functional.interpolate` outputs written by
//! `xtask/py/make_vit_fixtures.py` (both DINOv2 conventions: offset 0.1 scale factor without
//! antialias, and size-based with antialias).

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use cellino_kernels::BicubicResize;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bicubic")
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn every_fixture_case_matches_torch() {
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("cases.json")).unwrap()).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 19, "fixture lists {} cases", cases.len());
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let grid = Tensor::read_npy(fixtures().join(case["grid"].as_str().unwrap())).unwrap();
        let expected = Tensor::read_npy(fixtures().join(file)).unwrap();
        let m = case["M"].as_u64().unwrap() as usize;
        let out = (case["h0"].as_u64().unwrap() as usize, case["w0"].as_u64().unwrap() as usize);
        let resize = BicubicResize::dinov2_pos_embed(
            m,
            out,
            case["offset"].as_f64().unwrap(),
            case["antialias"].as_bool().unwrap(),
            &Device::Cpu,
        )
        .unwrap();
        let got = resize.apply_nchw(&grid).unwrap();
        assert_eq!(got.dims(), expected.dims(), "{file}");
        let err = max_abs_diff(&got, &expected);
        eprintln!("{file}: max abs error {err:.2e}");
        assert!(err <= 1e-5, "{file}: max abs error {err:e} > 1e-5");
    }
}

#[test]
fn the_two_conventions_differ_where_published_models_would_notice() {
    // Guards against a resize that silently ignores the offset or the antialias flag.
    let grid = Tensor::read_npy(fixtures().join("grid.npy")).unwrap();
    let a = BicubicResize::dinov2_pos_embed(14, (10, 10), 0.1, false, &Device::Cpu).unwrap();
    let b = BicubicResize::dinov2_pos_embed(14, (10, 10), 0.0, false, &Device::Cpu).unwrap();
    let c = BicubicResize::dinov2_pos_embed(14, (10, 10), 0.0, true, &Device::Cpu).unwrap();
    let (a, b, c) = (a.apply_nchw(&grid).unwrap(), b.apply_nchw(&grid).unwrap(), c.apply_nchw(&grid).unwrap());
    assert!(max_abs_diff(&a, &b) > 1e-2);
    assert!(max_abs_diff(&b, &c) > 1e-2);
}

#[test]
fn gradient_flows_through_the_resize() {
    let grid = candle_core::Var::from_tensor(&Tensor::read_npy(fixtures().join("grid.npy")).unwrap()).unwrap();
    let resize = BicubicResize::dinov2_pos_embed(14, (6, 6), 0.1, false, &Device::Cpu).unwrap();
    let loss = resize.apply_nchw(grid.as_tensor()).unwrap().sqr().unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    let g = grads.get(grid.as_tensor()).expect("resize must propagate a gradient");
    assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
}

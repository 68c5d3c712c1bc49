//! Op parity: every op of `cellino-kernels` (fused and `*_composite` twin) and a small ViT, forward
//! and backward, on the tested device and dtype against the CPU f32 composite on the same inputs.
//!
//! Inputs are drawn on the CPU in f32 and rounded to the tested dtype first, so the reference and
//! the device see the same numbers and only the arithmetic differs. The error of a tensor is the
//! relative L2 error `‖x − ref‖₂ / ‖ref‖₂` (the worst single element, `max |x − ref| / max |ref|`,
//! goes to the JSON as well); the backward error is the largest over the op's inputs, for the
//! loss `Σ out ⊙ w` with a fixed random `w` (so softmax-like ops get a non-zero gradient).

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use cellino_kernels as k;
use cellino_vit::{Arch, DinoVisionTransformer, StateDict, VitConfig, random_state_dict};

pub type BoxErr = Box<dyn std::error::Error>;
type OpFn = Box<dyn Fn(&[Tensor]) -> Result<Tensor, BoxErr>>;

/// The stated per-dtype thresholds on the relative error.
pub fn threshold(dtype: DType) -> f64 {
    match dtype {
        DType::BF16 | DType::F16 => 2e-2,
        _ => 1e-4,
    }
}

/// How an output is compared with the reference.
#[derive(Clone, Copy, PartialEq)]
enum Metric {
    /// Values, `‖x − ref‖₂ / ‖ref‖₂`.
    Values,
    /// Nearest-neighbour indices: the dot product with the chosen neighbour against the best one
    /// (so equally near neighbours are not counted as disagreement).
    NeighborDots,
}

struct OpCase {
    name: &'static str,
    inputs: Vec<Tensor>,
    /// Differentiable: backward is checked for every input.
    grad: bool,
    fused: OpFn,
    /// `None` when the op has a single implementation (bicubic resize, the ViT).
    composite: Option<OpFn>,
    metric: Metric,
}

/// One row of the parity table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParityRow {
    pub op: String,
    /// `fused`, `composite` or `model`.
    pub implementation: String,
    pub dtype: String,
    pub fwd_err: Option<f64>,
    pub bwd_err: Option<f64>,
    /// `max |x − ref| / max |ref|`, forward and backward (not thresholded).
    pub fwd_max_err: Option<f64>,
    pub bwd_max_err: Option<f64>,
    pub threshold: f64,
    pub pass: bool,
    /// Set when the op failed to run.
    pub error: Option<String>,
}

/// Deterministic normal numbers (xorshift + Box–Muller), independent of candle's RNGs.
fn normal(shape: &[usize], seed: u64, mean: f32, std: f32) -> candle_core::Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    let v: Vec<f32> = (0..n)
        .map(|_| {
            let (u1, u2) = (next(), next());
            mean + std * ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
}

fn cases(quick: bool) -> candle_core::Result<Vec<OpCase>> {
    // Shapes cross the fused kernels' block sizes (77 tokens, 6 heads of 64).
    let (b, n, d) = (if quick { 2 } else { 3 }, 77, 384);
    let mut out = vec![
        OpCase {
            name: "layer_norm",
            inputs: vec![normal(&[b, n, d], 1, 0.5, 2.0)?, normal(&[d], 2, 1.0, 0.3)?, normal(&[d], 3, 0.0, 0.3)?],
            grad: true,
            fused: Box::new(|t| Ok(k::layer_norm(&t[0], &t[1], &t[2], 1e-6)?)),
            composite: Some(Box::new(|t| Ok(k::layer_norm_composite(&t[0], &t[1], &t[2], 1e-6)?))),
            metric: Metric::Values,
        },
        OpCase {
            name: "softmax_last_dim",
            inputs: vec![normal(&[b, 6, n, n], 4, 0.0, 3.0)?],
            grad: true,
            fused: Box::new(|t| Ok(k::softmax_last_dim(&t[0])?)),
            composite: Some(Box::new(|t| Ok(k::softmax_last_dim_composite(&t[0])?))),
            metric: Metric::Values,
        },
        OpCase {
            name: "attention",
            inputs: vec![
                normal(&[b, 6, n, 64], 5, 0.0, 1.0)?,
                normal(&[b, 6, n, 64], 6, 0.0, 1.0)?,
                normal(&[b, 6, n, 64], 7, 0.0, 1.0)?,
            ],
            grad: true,
            fused: Box::new(|t| Ok(k::attention(&t[0], &t[1], &t[2], 0.125)?)),
            composite: Some(Box::new(|t| Ok(k::attention_composite(&t[0], &t[1], &t[2], 0.125)?))),
            metric: Metric::Values,
        },
        OpCase {
            name: "gelu_erf",
            inputs: vec![normal(&[b, n, 4 * d], 8, 0.0, 2.0)?],
            grad: true,
            fused: Box::new(|t| Ok(k::gelu_erf(&t[0])?)),
            composite: Some(Box::new(|t| Ok(k::gelu_erf_composite(&t[0])?))),
            metric: Metric::Values,
        },
        OpCase {
            name: "linear",
            inputs: vec![
                normal(&[b, n, d], 9, 0.0, 1.0)?,
                normal(&[3 * d, d], 10, 0.0, 0.05)?,
                normal(&[3 * d], 11, 0.0, 0.1)?,
            ],
            grad: true,
            fused: Box::new(|t| Ok(k::linear(&t[0], &t[1], Some(&t[2]))?)),
            composite: Some(Box::new(|t| Ok(k::linear_composite(&t[0], &t[1], Some(&t[2]))?))),
            metric: Metric::Values,
        },
        OpCase {
            name: "scaled_residual",
            inputs: vec![
                normal(&[b, n, d], 12, 0.0, 1.0)?,
                normal(&[b, n, d], 13, 0.0, 1.0)?,
                normal(&[d], 14, 0.1, 0.1)?,
            ],
            grad: true,
            fused: Box::new(|t| Ok(k::scaled_residual(&t[0], &t[1], &t[2])?)),
            composite: Some(Box::new(|t| Ok(k::scaled_residual_composite(&t[0], &t[1], &t[2])?))),
            metric: Metric::Values,
        },
        OpCase {
            name: "l2_normalize",
            inputs: vec![normal(&[64, 256], 15, 0.1, 1.0)?],
            grad: true,
            fused: Box::new(|t| Ok(k::l2_normalize(&t[0], 1e-12)?)),
            composite: Some(Box::new(|t| Ok(k::l2_normalize_composite(&t[0], 1e-12)?))),
            metric: Metric::Values,
        },
        OpCase {
            name: "nearest_neighbor",
            inputs: vec![normal(&[64, 256], 16, 0.0, 1.0)?],
            grad: false,
            fused: Box::new(|t| Ok(k::nearest_neighbor_indices(&t[0])?)),
            composite: Some(Box::new(|t| Ok(k::nearest_neighbor_indices_composite(&t[0])?))),
            metric: Metric::NeighborDots,
        },
        OpCase {
            name: "sinkhorn_knopp",
            inputs: vec![normal(&[64, 1024], 17, 0.0, 0.3)?],
            grad: false,
            fused: Box::new(|t| Ok(k::sinkhorn_knopp(&t[0], 0.05, 3)?)),
            composite: Some(Box::new(|t| Ok(k::sinkhorn_knopp_composite(&t[0], 0.05, 3)?))),
            metric: Metric::Values,
        },
        OpCase {
            name: "ema_update",
            inputs: vec![
                normal(&[d, 4 * d], 18, 0.0, 0.05)?,
                normal(&[d], 19, 1.0, 0.1)?,
                normal(&[d, 4 * d], 20, 0.0, 0.05)?,
                normal(&[d], 21, 1.0, 0.1)?,
            ],
            grad: false,
            fused: Box::new(|t| flat(k::ema_update(&t[..2], &t[2..], 0.996)?)),
            composite: Some(Box::new(|t| flat(k::ema_update_composite(&t[..2], &t[2..], 0.996)?))),
            metric: Metric::Values,
        },
        OpCase {
            name: "bicubic_pos_embed",
            inputs: vec![normal(&[14, 14, d], 22, 0.0, 0.02)?],
            grad: true,
            fused: Box::new(|t| {
                let r = k::BicubicResize::dinov2_pos_embed(14, (10, 12), 0.1, false, t[0].device())?;
                Ok(r.apply_hwc(&t[0])?)
            }),
            composite: None,
            metric: Metric::Values,
        },
    ];
    out.push(vit_case()?);
    Ok(out)
}

fn flat(ts: Vec<Tensor>) -> Result<Tensor, BoxErr> {
    let v = ts.iter().map(|t| t.flatten_all()).collect::<candle_core::Result<Vec<_>>>()?;
    Ok(Tensor::cat(&v, 0)?)
}

/// A 2-block ViT-S-width model (patch 16, 3 channels, 64×64, 1 register), CLS and patch tokens;
/// backward to the image and every weight.
fn vit_case() -> candle_core::Result<OpCase> {
    let mut config = VitConfig::for_arch(Arch::VitSmall, 16, 3, 64);
    config.depth = 2;
    config.num_register_tokens = 1;
    let sd = random_state_dict(&config, 0.5, 7, &Device::Cpu).map_err(candle_core::Error::wrap)?;
    let names: Vec<String> = sd.tensors.keys().cloned().collect();
    let mut inputs = vec![normal(&[2, 3, 64, 64], 23, 0.0, 1.0)?];
    inputs.extend(sd.tensors.values().cloned());
    let fused: OpFn = Box::new(move |t: &[Tensor]| {
        let tensors: BTreeMap<String, Tensor> = names.iter().cloned().zip(t[1..].iter().cloned()).collect();
        let sd = StateDict { tensors, source: "selftest".into(), head_keys: vec![], layout: "in memory".into() };
        let model = DinoVisionTransformer::from_state_dict(config.clone(), &sd)?;
        let f = model.forward_features(&t[0], None)?;
        Ok(Tensor::cat(&[f.cls.flatten_all()?, f.registers.flatten_all()?, f.patches.flatten_all()?], 0)?)
    });
    Ok(OpCase { name: "vit_forward", inputs, grad: true, fused, composite: None, metric: Metric::Values })
}

fn max_abs(t: &Tensor) -> Result<f64, BoxErr> {
    Ok(t.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()? as f64)
}

fn l2(t: &Tensor) -> Result<f64, BoxErr> {
    Ok((t.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?).sqrt())
}

/// `(‖x − ref‖₂ / ‖ref‖₂, max |x − ref| / max |ref|)`; NaN or infinity anywhere gives infinity.
fn rel_err(x: &Tensor, r: &Tensor) -> Result<(f64, f64), BoxErr> {
    if x.dims() != r.dims() {
        return Err(format!("shape {:?} differs from the reference {:?}", x.dims(), r.dims()).into());
    }
    let d = (x - r)?;
    let finite = |e: f64| if e.is_finite() { e } else { f64::INFINITY };
    Ok((finite(l2(&d)? / l2(r)?.max(1e-30)), finite(max_abs(&d)? / max_abs(r)?.max(1e-30))))
}

/// Run `f` on `inputs` (CPU f32) moved to `device` as `dtype`: the output and the input gradients
/// (when `grad`), both as CPU f32.
fn run_side(
    f: &OpFn,
    inputs: &[Tensor],
    weight: Option<&Tensor>,
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Vec<Option<Tensor>>), BoxErr> {
    let moved = inputs.iter().map(|t| t.to_device(device)?.to_dtype(dtype)).collect::<candle_core::Result<Vec<_>>>()?;
    let Some(w) = weight else {
        let out = f(&moved)?;
        let out = if out.dtype() == DType::U32 { out } else { out.to_dtype(DType::F32)? };
        return Ok((out.to_device(&Device::Cpu)?, vec![]));
    };
    let vars = moved.iter().map(Var::from_tensor).collect::<candle_core::Result<Vec<_>>>()?;
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&ts)?.to_dtype(DType::F32)?;
    let loss = (&out * w.to_device(device)?)?.sum_all()?;
    let grads = loss.backward()?;
    let g = vars
        .iter()
        .map(|v| {
            // Inputs the output does not depend on (the ViT's mask token) have no gradient.
            grads.get(v.as_tensor()).map(|g| g.to_dtype(DType::F32)?.to_device(&Device::Cpu)).transpose()
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    Ok((out.to_device(&Device::Cpu)?, g))
}

fn neighbor_err(x: &Tensor, idx: &Tensor, ref_idx: &Tensor) -> Result<(f64, f64), BoxErr> {
    let dots = x.matmul(&x.t()?)?;
    let pick = |i: &Tensor| -> candle_core::Result<Tensor> { dots.gather(&i.to_dtype(DType::U32)?.unsqueeze(1)?, 1) };
    rel_err(&pick(idx)?, &pick(ref_idx)?)
}

/// `((fwd l2, fwd max), Some((bwd l2, bwd max)))`.
type Errors = ((f64, f64), Option<(f64, f64)>);

fn compare(case: &OpCase, f: &OpFn, dtype: DType, device: &Device) -> Result<Errors, BoxErr> {
    // The same numbers on both sides: inputs rounded to `dtype`.
    let inputs =
        case.inputs.iter().map(|t| t.to_dtype(dtype)?.to_dtype(DType::F32)).collect::<candle_core::Result<Vec<_>>>()?;
    let reference = case.composite.as_ref().unwrap_or(&case.fused);
    let (ref_out, _) = run_side(reference, &inputs, None, DType::F32, &Device::Cpu)?;
    let weight = if case.grad { Some(normal(ref_out.dims(), 99, 0.0, 1.0)?) } else { None };
    let (ref_out, ref_grads) = run_side(reference, &inputs, weight.as_ref(), DType::F32, &Device::Cpu)?;
    let (out, grads) = run_side(f, &inputs, weight.as_ref(), dtype, device)?;
    let fwd = match case.metric {
        Metric::Values => rel_err(&out, &ref_out)?,
        Metric::NeighborDots => neighbor_err(&inputs[0], &out, &ref_out)?,
    };
    let bwd = if case.grad {
        let mut worst = (0f64, 0f64);
        for (i, (g, r)) in grads.iter().zip(&ref_grads).enumerate() {
            let e = match (g, r) {
                (Some(g), Some(r)) => rel_err(g, r)?,
                (None, None) => continue,
                _ => return Err(format!("input {i} has a gradient on one side only").into()),
            };
            worst = (worst.0.max(e.0), worst.1.max(e.1));
        }
        Some(worst)
    } else {
        None
    };
    Ok((fwd, bwd))
}

/// Every case × implementation × dtype on `device`.
pub fn run(device: &Device, dtypes: &[DType], quick: bool) -> Result<Vec<ParityRow>, BoxErr> {
    let mut rows = vec![];
    for case in cases(quick)? {
        let mut impls: Vec<(&str, &OpFn)> = vec![];
        match &case.composite {
            Some(c) => {
                impls.push(("fused", &case.fused));
                impls.push(("composite", c));
            }
            None => impls.push(("model", &case.fused)),
        }
        for &dtype in dtypes {
            for (name, f) in &impls {
                let limit = threshold(dtype);
                let row = match compare(&case, f, dtype, device) {
                    Ok((fwd, bwd)) => ParityRow {
                        op: case.name.into(),
                        implementation: (*name).into(),
                        dtype: dtype_name(dtype).into(),
                        fwd_err: Some(fwd.0),
                        bwd_err: bwd.map(|b| b.0),
                        fwd_max_err: Some(fwd.1),
                        bwd_max_err: bwd.map(|b| b.1),
                        threshold: limit,
                        pass: fwd.0 <= limit && bwd.is_none_or(|b| b.0 <= limit),
                        error: None,
                    },
                    Err(e) => ParityRow {
                        op: case.name.into(),
                        implementation: (*name).into(),
                        dtype: dtype_name(dtype).into(),
                        fwd_err: None,
                        bwd_err: None,
                        fwd_max_err: None,
                        bwd_max_err: None,
                        threshold: limit,
                        pass: false,
                        error: Some(one_line(&e.to_string())),
                    },
                };
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F32 => "f32",
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F64 => "f64",
        _ => "other",
    }
}

/// `s` on one line, without the backtrace candle appends under RUST_BACKTRACE (`0: ... 1: ...`).
pub fn one_line(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match (s.find(" 0: "), s.find(" 1: ")) {
        (Some(a), Some(b)) if a < b => s[..a].to_string(),
        _ => s,
    }
}

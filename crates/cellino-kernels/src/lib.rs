//! Tensor kernels for cellino: fused, differentiable candle ops for the DINOv2 backbone and its
//! self-supervised training, plus PyTorch-exact bicubic resampling.
//!
//! candle 0.11 silently drops gradients through its fused `layer_norm` and `softmax_last_dim`,
//! has no CPU attention with a backward, and spends about half of a ViT forward outside matrix
//! products (broadcast bias adds, single-threaded GELU, unfused softmax). Each op here is a candle
//! custom op (`apply_op*`, so autograd keeps it) with a fused, multi-threaded CPU kernel for f32
//! and f64, and a backward:
//!
//! | op | forward | backward |
//! |---|---|---|
//! | [`layer_norm`] | one sweep over memory per row | x, weight, bias |
//! | [`softmax_last_dim`] | max-shifted, vectorised `exp` | from the saved output |
//! | [`attention`] | key blocks with an online softmax, log-sum-exp saved | scores recomputed per block |
//! | [`gelu_erf`] | vectorised `erf`, threaded | x |
//! | [`linear`] | bias pre-filled, product accumulated onto it | x, weight, bias |
//! | [`scaled_residual`] | `x + γ ⊙ branch` (LayerScale) in one pass | x, branch, γ |
//! | [`l2_normalize`] | `x / max(‖x‖, eps)` per row | x |
//! | [`nearest_neighbor_indices`], [`sinkhorn_knopp`], [`ema_update`] | threaded | none (not needed) |
//!
//! For inference, [`gelu_erf_owned`] and [`residual_owned`] compute the same values in the
//! buffer of a fresh, untracked activation (the MLP's hidden layer, the block's branch), so a
//! forward pass allocates fewer large buffers; on tracked tensors they fall back to the ops above.
//!
//! Every op has a `*_composite` twin built from candle primitives: it is the reference in the
//! tests and benches, and the path taken for other devices (CUDA) and for f16/bf16, so callers
//! never branch on the device. Bad shapes and dtypes give errors that name the op and the
//! shapes; nothing panics.
//!
//! ```
//! use candle_core::{D, DType, Device, Tensor, Var};
//! use cellino_kernels::{attention, gelu_erf, layer_norm, linear};
//!
//! // One pre-norm attention step on 2 images × 5 tokens × 8 features, 2 heads.
//! let dev = Device::Cpu;
//! let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (2, 5, 8), &dev)?)?;
//! let (w, b) = (Tensor::ones(8, DType::F32, &dev)?, Tensor::zeros(8, DType::F32, &dev)?);
//! let h = layer_norm(x.as_tensor(), &w, &b, 1e-6)?;
//! let qkv_w = Tensor::randn(0f32, 0.3, (24, 8), &dev)?;
//! let qkv = linear(&h, &qkv_w, Some(&Tensor::zeros(24, DType::F32, &dev)?))?;
//! let qkv = qkv.reshape((2, 5, 3, 2, 4))?.permute((2, 0, 3, 1, 4))?; // (3, B, H, N, hd) view
//! let head = |i| qkv.narrow(0, i, 1)?.squeeze(0); // q, k, v without copies (`get` would copy)
//! let out = attention(&head(0)?, &head(1)?, &head(2)?, 0.5)?; // (B, H, N, hd)
//! let out = gelu_erf(&out.transpose(1, 2)?.reshape((2, 5, 8))?)?; // heads merged for free
//!
//! // Gradients reach the input through every fused op.
//! let grads = out.sum_all()?.backward()?;
//! assert_eq!(grads.get(x.as_tensor()).expect("gradient").dims(), &[2, 5, 8]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`BicubicResize`] reproduces `F.interpolate(mode="bicubic")` (both `antialias` settings and
//! DINOv2's scale-factor convention) as two fixed matrix products, so it is exact and
//! differentiable:
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use cellino_kernels::BicubicResize;
//!
//! // Resample a 14×14 position grid with 8 channels to 10×10, as DINOv2 does for a 160-px input
//! // with patch 16 (interpolate_offset 0.1, no antialias).
//! let grid = Tensor::zeros((14, 14, 8), candle_core::DType::F32, &Device::Cpu)?;
//! let resize = BicubicResize::dinov2_pos_embed(14, (10, 10), 0.1, false, &Device::Cpu)?;
//! let out = resize.apply_hwc(&grid)?;
//! assert_eq!(out.dims(), &[10, 10, 8]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod attention;
mod bicubic;
mod cpu;
mod ema;
mod error;
mod gelu;
mod l2_normalize;
mod layer_norm;
mod layer_scale;
mod linear;
mod matmul;
mod nearest_neighbor;
mod real;
mod simd;
mod sinkhorn;
mod softmax;

pub use attention::{attention, attention_composite};
pub use bicubic::{BicubicResize, ResizeRule, bicubic_weights_1d};
pub use ema::{ema_update, ema_update_composite, ema_update_in_place};
pub use error::KernelError;
pub use gelu::{gelu_erf, gelu_erf_composite, gelu_erf_owned};
pub use l2_normalize::{l2_normalize, l2_normalize_composite};
pub use layer_norm::{layer_norm, layer_norm_composite};
pub use layer_scale::{residual_owned, scaled_residual, scaled_residual_composite};
pub use linear::{linear, linear_composite};
pub use nearest_neighbor::{nearest_neighbor_indices, nearest_neighbor_indices_composite};
pub use sinkhorn::{sinkhorn_knopp, sinkhorn_knopp_composite};
pub use softmax::{softmax_last_dim, softmax_last_dim_composite};

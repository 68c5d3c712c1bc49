//! Tensor kernels for cellino.
//!
//! Today this crate holds the exact PyTorch-compatible bicubic resampling that DINOv2's
//! position-embedding interpolation needs ([`BicubicResize`]). The fused, differentiable
//! LayerNorm / softmax / attention / GELU ops of the kernels issue land here next.
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

mod bicubic;
mod error;

pub use bicubic::{BicubicResize, ResizeRule, bicubic_weights_1d};
pub use error::KernelError;

//! The DINOv2 vision transformer as used by Cell-DINO and Channel-Adaptive DINO, on candle.
//!
//! - [`DinoVisionTransformer`]: ViT-S/B/L/giant2, any patch size and channel count, registers,
//!   LayerScale, MLP or SwiGLU feed-forward, mask token, stochastic depth in training mode;
//!   `forward_features` and `get_intermediate_layers` as upstream.
//! - Position embeddings are resampled exactly like PyTorch's bicubic `interpolate` under both
//!   published settings ([`PosEmbedInterpolation::DINOV2`], [`PosEmbedInterpolation::REGISTERS`]).
//! - [`load_state_dict`] reads safetensors, sharded safetensors and PyTorch `.pth` files, including
//!   `teacher_checkpoint.pth` training checkpoints and the `block_chunks` key layout.
//! - [`bag_of_channels`] applies a 1-channel model to images with any number of channels.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use cellino_vit::{Arch, DinoVisionTransformer, VitConfig, bag_of_channels, random_state_dict};
//!
//! // A tiny single-channel model with random weights (use `DinoVisionTransformer::load` for files).
//! let mut config = VitConfig::for_arch(Arch::VitSmall, 16, 1, 64);
//! config.depth = 1;
//! let weights = random_state_dict(&config, 1.0, 0, &Device::Cpu)?;
//! let model = DinoVisionTransformer::from_state_dict(config, &weights)?;
//!
//! // Five channels, 48×48 pixels: each channel is embedded on its own, CLS tokens concatenated.
//! let images = Tensor::randn(0f32, 1.0, (2, 5, 48, 48), &Device::Cpu)?;
//! let features = bag_of_channels(&model, &images)?;
//! assert_eq!(features.cls.dims(), &[2, 5 * 384]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bag_of_channels;
mod block;
mod checkpoint;
mod config;
mod embed;
mod error;
mod infer;
mod init;
mod keys;
mod layers;
mod vision_transformer;

pub use bag_of_channels::{BagOfChannelsFeatures, bag_of_channels};
pub use checkpoint::{StateDict, load_state_dict};
pub use config::{Arch, FfnKind, PosEmbedInterpolation, VitConfig};
pub use embed::{FeatureKind, check_finite, embed_batch};
pub use error::{Result, VitError};
pub use infer::infer_config;
pub use init::random_state_dict;
pub use keys::expected_shapes;
pub use vision_transformer::{DinoVisionTransformer, Features};

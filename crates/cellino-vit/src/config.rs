//! Architecture description of a DINOv2 vision transformer.

use serde::{Deserialize, Serialize};

use crate::error::{Result, VitError};

/// The named DINOv2 sizes. The name fixes the head count and the feed-forward type; everything
/// else (patch size, channels, depth, registers, position grid) is read from the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    VitSmall,
    VitBase,
    VitLarge,
    VitGiant2,
}

impl Arch {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "vit_small" => Ok(Self::VitSmall),
            "vit_base" => Ok(Self::VitBase),
            "vit_large" => Ok(Self::VitLarge),
            "vit_giant2" => Ok(Self::VitGiant2),
            other => Err(VitError::UnknownArch(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::VitSmall => "vit_small",
            Self::VitBase => "vit_base",
            Self::VitLarge => "vit_large",
            Self::VitGiant2 => "vit_giant2",
        }
    }

    /// (embed dim, depth, heads) of the published model.
    pub fn dims(self) -> (usize, usize, usize) {
        match self {
            Self::VitSmall => (384, 12, 6),
            Self::VitBase => (768, 12, 12),
            Self::VitLarge => (1024, 24, 16),
            Self::VitGiant2 => (1536, 40, 24),
        }
    }

    /// Feed-forward type used by the published model (giant uses fused SwiGLU).
    pub fn ffn(self) -> FfnKind {
        match self {
            Self::VitGiant2 => FfnKind::SwiGlu,
            _ => FfnKind::Mlp,
        }
    }
}

/// The feed-forward network of each block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FfnKind {
    /// `fc1` → exact (erf) GELU → `fc2`.
    Mlp,
    /// DINOv2's `SwiGLUFFNFused`: `w12` → silu(x1)·x2 → `w3`.
    SwiGlu,
}

impl FfnKind {
    /// Hidden width for an embedding `dim` and `mlp_ratio` (SwiGLU rounds 2/3 of it up to a multiple of 8).
    pub fn hidden_dim(self, dim: usize, mlp_ratio: f64) -> usize {
        let hidden = (dim as f64 * mlp_ratio) as usize;
        match self {
            Self::Mlp => hidden,
            Self::SwiGlu => (hidden * 2 / 3).div_ceil(8) * 8,
        }
    }
}

/// How the position embedding is resampled to another grid. Published models use one of two
/// settings: Cell-DINO and the original DINOv2 use [`PosEmbedInterpolation::DINOV2`]; the
/// register (`*_reg`) models use [`PosEmbedInterpolation::REGISTERS`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PosEmbedInterpolation {
    /// Added to the target grid before computing torch's scale factor; 0 means size-based resize.
    pub offset: f64,
    /// PyTorch's `antialias` flag of the bicubic resize.
    pub antialias: bool,
}

impl PosEmbedInterpolation {
    pub const DINOV2: Self = Self { offset: 0.1, antialias: false };
    pub const REGISTERS: Self = Self { offset: 0.0, antialias: true };
}

impl Default for PosEmbedInterpolation {
    fn default() -> Self {
        Self::DINOV2
    }
}

/// Everything needed to build the backbone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VitConfig {
    pub embed_dim: usize,
    pub depth: usize,
    pub num_heads: usize,
    pub ffn: FfnKind,
    /// Hidden width of the feed-forward network (4·D for the MLP).
    pub ffn_hidden: usize,
    pub patch_size: usize,
    pub in_chans: usize,
    pub num_register_tokens: usize,
    /// Side of the square position-embedding grid (`img_size / patch_size`).
    pub pos_grid: usize,
    pub qkv_bias: bool,
    pub proj_bias: bool,
    pub ffn_bias: bool,
    /// Whether the blocks carry LayerScale (`ls1.gamma`, `ls2.gamma`).
    pub layerscale: bool,
    pub interpolation: PosEmbedInterpolation,
    /// Stochastic-depth rate, applied to every block in training mode only.
    pub drop_path_rate: f64,
}

impl VitConfig {
    /// A published architecture with the given patch size, channels and training image size.
    pub fn for_arch(arch: Arch, patch_size: usize, in_chans: usize, img_size: usize) -> Self {
        let (embed_dim, depth, num_heads) = arch.dims();
        let ffn = arch.ffn();
        Self {
            embed_dim,
            depth,
            num_heads,
            ffn,
            ffn_hidden: ffn.hidden_dim(embed_dim, 4.0),
            patch_size,
            in_chans,
            num_register_tokens: 0,
            pos_grid: img_size / patch_size,
            qkv_bias: true,
            proj_bias: true,
            ffn_bias: true,
            layerscale: true,
            interpolation: PosEmbedInterpolation::DINOV2,
            drop_path_rate: 0.0,
        }
    }

    pub fn head_dim(&self) -> usize {
        self.embed_dim / self.num_heads
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(VitError::Architecture(msg));
        if self.embed_dim == 0 || self.num_heads == 0 || !self.embed_dim.is_multiple_of(self.num_heads) {
            return bad(format!("embed dim {} is not divisible by {} heads", self.embed_dim, self.num_heads));
        }
        if self.depth == 0 || self.patch_size == 0 || self.in_chans == 0 || self.pos_grid == 0 {
            return bad(format!(
                "depth {}, patch size {}, channels {} and position grid {} must all be positive",
                self.depth, self.patch_size, self.in_chans, self.pos_grid
            ));
        }
        if !(0.0..1.0).contains(&self.drop_path_rate) {
            return bad(format!("drop path rate {} is outside [0, 1)", self.drop_path_rate));
        }
        Ok(())
    }
}

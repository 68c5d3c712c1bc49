//! The JSON sidecar of an embeddings file: where the features come from and how they are
//! laid out.

use std::io::Read;
use std::path::Path;

use cellino_data::{EvalCrop, EvalTransform, LabelSchema};
use cellino_vit::VitConfig;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::Task;
use crate::error::{EvalError, Result};
use crate::layout::FeatureLayout;

/// Version of the sidecar format written by this crate.
pub const SIDECAR_FORMAT_VERSION: u32 = 1;

/// The checkpoint the features were computed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    /// The path as given.
    pub path: String,
    /// Lower-case hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub size_bytes: u64,
}

impl CheckpointInfo {
    /// Hashes `path` (streamed).
    ///
    /// # Errors
    /// [`EvalError::Io`] when the file cannot be read.
    pub fn of_file(path: &Path) -> Result<Self> {
        let mut file = std::fs::File::open(path).map_err(|e| EvalError::io(path, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(|e| EvalError::io(path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let sha256 = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Ok(Self { path: path.display().to_string(), sha256, size_bytes: size })
    }
}

/// The backbone as recorded: architecture name, full configuration, checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `vit_small`, `vit_large`… where known.
    pub arch: Option<String>,
    pub config: VitConfig,
    /// `None` for weights that do not come from a file (random test models).
    pub checkpoint: Option<CheckpointInfo>,
}

/// The evaluation transform as recorded (spec §3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformInfo {
    /// `self_norm_center_crop` or `self_norm_aug_decoder`.
    pub name: String,
    /// Shorter side resized to this (0 = no resize).
    pub resize: usize,
    pub interpolation: String,
    pub crop_size: usize,
    /// Fixed divisor, or `None` for the nominal range of each file's sample type.
    pub divisor: Option<f32>,
    pub self_normalize_eps: f32,
}

impl From<&EvalTransform> for TransformInfo {
    fn from(t: &EvalTransform) -> Self {
        Self {
            name: match t.crop {
                EvalCrop::Center => "self_norm_center_crop",
                EvalCrop::RandomWithFlips => "self_norm_aug_decoder",
            }
            .into(),
            resize: t.resize,
            interpolation: format!("{:?}", t.interpolation).to_lowercase(),
            crop_size: t.crop_size,
            divisor: t.divide.divisor,
            self_normalize_eps: t.normalize.eps,
        }
    }
}

/// The label list of the rows, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelInfo {
    /// `None` for unlabelled data (or tuple targets, which are not written).
    pub task: Option<Task>,
    /// Class (multi-class) or label (multi-label) names, in index order.
    pub names: Vec<String>,
}

impl From<&LabelSchema> for LabelInfo {
    fn from(s: &LabelSchema) -> Self {
        let task = match s {
            LabelSchema::SingleLabel { .. } => Some(Task::Multiclass),
            LabelSchema::MultiLabel { .. } => Some(Task::Multilabel),
            LabelSchema::None | LabelSchema::Tuple(_) => None,
        };
        Self { task, names: s.names().to_vec() }
    }
}

/// The `emb.json` next to `emb.npy` and `emb.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingSidecar {
    pub format_version: u32,
    /// `cellino-eval <version>`.
    pub written_by: String,
    /// File names (same folder) of the features and the metadata table.
    pub features_file: String,
    pub metadata_file: String,
    /// The metadata table in Parquet (absent in sidecars written before it existed).
    #[serde(default)]
    pub metadata_parquet_file: Option<String>,
    pub n_rows: usize,
    pub dim: usize,
    pub dtype: String,
    pub model: ModelInfo,
    pub dataset: String,
    pub manifest: Option<String>,
    /// Names of the input channels, in channel order.
    pub channel_names: Vec<String>,
    pub transform: TransformInfo,
    /// Column ranges per block / channel / avgpool.
    pub layout: FeatureLayout,
    pub labels: LabelInfo,
    /// The dataset's metadata columns, as in the metadata table.
    pub metadata_columns: Vec<String>,
}

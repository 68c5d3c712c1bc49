//! The dinov2 training config (`ssl_default_config.yaml` subset + Cell-DINO keys) from YAML, with
//! `key.sub=value` overrides. Unknown keys and wrong types are errors that name the key.

use std::path::Path;

use candle_core::DType;
use serde::{Deserialize, Serialize};
use serde_norway::Value;

use crate::error::{Result, SslError};

/// The whole config. Every section and key has dinov2's default (`ssl_default_config.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SslConfig {
    pub train: TrainConfig,
    pub student: StudentConfig,
    pub teacher: TeacherConfig,
    pub dino: DinoConfig,
    pub ibot: IbotConfig,
    pub optim: OptimConfig,
    pub crops: CropsConfig,
    pub evaluation: EvaluationConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub batch_size_per_gpu: usize,
    pub dataset_path: String,
    pub output_dir: String,
    pub saveckp_freq: usize,
    pub seed: u64,
    pub num_workers: usize,
    #[serde(rename = "OFFICIAL_EPOCH_LENGTH")]
    pub official_epoch_length: usize,
    pub cache_dataset: bool,
    /// `centering` (EMA center) or `sinkhorn_knopp`.
    pub centering: String,
    /// `true`: the Cell-DINO augmentation (channel removal, protein contrast, flips,
    /// brightness / contrast, self-normalise); `false`: the same multi-crop without the two
    /// channel-specific ops.
    pub cell_augmentation: bool,
    /// cellino: index of the protein channel (kept by channel removal, rescaled by protein
    /// contrast); 1 in the HPA order microtubules, protein, nucleus, ER.
    pub protein_channel: usize,
    /// Read by no upstream code; kept for schema compatibility.
    pub channel_adaptive: bool,
    /// cellino: checkpoints kept on disk (upstream `max_to_keep` 3).
    pub keep_checkpoints: usize,
    /// cellino: checkpoint period in iterations (0 = `3 · OFFICIAL_EPOCH_LENGTH`, as upstream).
    pub checkpoint_period: usize,
    /// cellino (stands in for upstream `compute_precision`): `none` (f32 throughout) or `bf16`
    /// (student and teacher backbones compute in bf16 over f32 master weights; heads, softmax,
    /// centering and losses stay f32).
    pub mixed_precision: String,
    /// cellino: loader batches per iteration (gradients summed over `k` micro-batches, each loss
    /// scaled by 1/k, then one optimiser step and one EMA update). 1 = no accumulation.
    pub grad_accumulation_steps: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch_size_per_gpu: 64,
            dataset_path: "ImageNet:split=TRAIN".into(),
            output_dir: ".".into(),
            saveckp_freq: 20,
            seed: 0,
            num_workers: 10,
            official_epoch_length: 1250,
            cache_dataset: true,
            centering: "centering".into(),
            cell_augmentation: false,
            protein_channel: 1,
            channel_adaptive: false,
            keep_checkpoints: 3,
            checkpoint_period: 0,
            mixed_precision: "none".into(),
            grad_accumulation_steps: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StudentConfig {
    pub arch: String,
    pub patch_size: usize,
    pub drop_path_rate: f64,
    pub layerscale: f64,
    pub drop_path_uniform: bool,
    pub pretrained_weights: String,
    pub ffn_layer: String,
    pub block_chunks: usize,
    pub qkv_bias: bool,
    pub proj_bias: bool,
    pub ffn_bias: bool,
    pub num_register_tokens: usize,
    pub interpolate_antialias: bool,
    pub interpolate_offset: f64,
    pub in_chans: usize,
    pub channel_adaptive: bool,
    /// cellino: override the arch's width (for small CPU models).
    pub embed_dim: Option<usize>,
    /// cellino: override the arch's depth.
    pub depth: Option<usize>,
    /// cellino: override the arch's head count.
    pub num_heads: Option<usize>,
}

impl Default for StudentConfig {
    fn default() -> Self {
        Self {
            arch: "vit_large".into(),
            patch_size: 16,
            drop_path_rate: 0.3,
            layerscale: 1e-5,
            drop_path_uniform: true,
            pretrained_weights: String::new(),
            ffn_layer: "mlp".into(),
            block_chunks: 0,
            qkv_bias: true,
            proj_bias: true,
            ffn_bias: true,
            num_register_tokens: 0,
            interpolate_antialias: false,
            interpolate_offset: 0.1,
            in_chans: 3,
            channel_adaptive: false,
            embed_dim: None,
            depth: None,
            num_heads: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeacherConfig {
    pub momentum_teacher: f64,
    pub final_momentum_teacher: f64,
    pub warmup_teacher_temp: f64,
    pub teacher_temp: f64,
    pub warmup_teacher_temp_epochs: usize,
    /// Unread upstream (the teacher is built from `student`); must equal `student.in_chans`.
    pub in_chans: usize,
    pub channel_adaptive: bool,
}

impl Default for TeacherConfig {
    fn default() -> Self {
        Self {
            momentum_teacher: 0.992,
            final_momentum_teacher: 1.0,
            warmup_teacher_temp: 0.04,
            teacher_temp: 0.07,
            warmup_teacher_temp_epochs: 30,
            in_chans: 3,
            channel_adaptive: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DinoConfig {
    pub loss_weight: f64,
    pub head_n_prototypes: usize,
    pub head_bottleneck_dim: usize,
    pub head_nlayers: usize,
    pub head_hidden_dim: usize,
    pub koleo_loss_weight: f64,
}

impl Default for DinoConfig {
    fn default() -> Self {
        Self {
            loss_weight: 1.0,
            head_n_prototypes: 65536,
            head_bottleneck_dim: 256,
            head_nlayers: 3,
            head_hidden_dim: 2048,
            koleo_loss_weight: 0.1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IbotConfig {
    pub loss_weight: f64,
    pub mask_sample_probability: f64,
    pub mask_ratio_min_max: (f64, f64),
    pub separate_head: bool,
    pub head_n_prototypes: usize,
    pub head_bottleneck_dim: usize,
    pub head_nlayers: usize,
    pub head_hidden_dim: usize,
}

impl Default for IbotConfig {
    fn default() -> Self {
        Self {
            loss_weight: 1.0,
            mask_sample_probability: 0.5,
            mask_ratio_min_max: (0.1, 0.5),
            separate_head: false,
            head_n_prototypes: 65536,
            head_bottleneck_dim: 256,
            head_nlayers: 3,
            head_hidden_dim: 2048,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    pub epochs: usize,
    pub weight_decay: f64,
    pub weight_decay_end: f64,
    pub base_lr: f64,
    /// Computed from `base_lr` by `scaling_rule` at start (the file value is ignored, as upstream).
    pub lr: f64,
    pub warmup_epochs: usize,
    pub min_lr: f64,
    pub clip_grad: f64,
    pub freeze_last_layer_epochs: usize,
    /// `sqrt_wrt_1024` or `none`.
    pub scaling_rule: String,
    pub patch_embed_lr_mult: f64,
    pub layerwise_decay: f64,
    pub adamw_beta1: f64,
    pub adamw_beta2: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            epochs: 100,
            weight_decay: 0.04,
            weight_decay_end: 0.4,
            base_lr: 0.004,
            lr: 0.0,
            warmup_epochs: 10,
            min_lr: 1e-6,
            clip_grad: 3.0,
            freeze_last_layer_epochs: 1,
            scaling_rule: "sqrt_wrt_1024".into(),
            patch_embed_lr_mult: 0.2,
            layerwise_decay: 0.9,
            adamw_beta1: 0.9,
            adamw_beta2: 0.999,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CropsConfig {
    pub global_crops_scale: (f64, f64),
    pub local_crops_number: usize,
    pub local_crops_scale: (f64, f64),
    pub global_crops_size: usize,
    pub local_crops_size: usize,
}

impl Default for CropsConfig {
    fn default() -> Self {
        Self {
            global_crops_scale: (0.32, 1.0),
            local_crops_number: 8,
            local_crops_scale: (0.05, 0.32),
            global_crops_size: 224,
            local_crops_size: 96,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    pub eval_period_iterations: usize,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self { eval_period_iterations: 12500 }
    }
}

impl SslConfig {
    /// Parse YAML text merged onto the defaults; `origin` names the source in errors. Unknown
    /// keys and wrong types report the key path with line and column.
    pub fn from_yaml_str(text: &str, origin: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_norway::from_str(text).map_err(|e| SslError::Config { origin: origin.into(), message: e.to_string() })
    }

    /// Read a YAML file (see [`SslConfig::from_yaml_str`]).
    pub fn from_yaml_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(crate::error::io_err(path))?;
        Self::from_yaml_str(&text, &path.display().to_string())
    }

    /// The config as YAML (every key, defaults included).
    pub fn to_yaml(&self) -> Result<String> {
        serde_norway::to_string(self).map_err(|e| SslError::Config { origin: "config".into(), message: e.to_string() })
    }

    /// Apply OmegaConf-style dotlist overrides `a.b=value` (value parsed as YAML: `0.5`, `true`,
    /// `[0.4,1.0]`, `~`). The key must exist in the schema.
    pub fn with_overrides<S: AsRef<str>>(&self, overrides: &[S]) -> Result<Self> {
        let mut tree = serde_norway::to_value(self)
            .map_err(|e| SslError::Config { origin: "config".into(), message: e.to_string() })?;
        for ov in overrides {
            let ov = ov.as_ref();
            let err = |message: String| SslError::Config { origin: format!("override `{ov}`"), message };
            let (key, raw) = ov.split_once('=').ok_or_else(|| err("expected `key.sub=value`".into()))?;
            let value: Value = serde_norway::from_str(raw).map_err(|e| err(e.to_string()))?;
            let mut node = &mut tree;
            let parts: Vec<&str> = key.trim().split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                let map =
                    node.as_mapping_mut().ok_or_else(|| err(format!("`{}` is not a section", parts[..i].join("."))))?;
                node = map
                    .get_mut(Value::String((*part).to_string()))
                    .ok_or_else(|| err(format!("unknown key `{}`", parts[..=i].join("."))))?;
            }
            *node = value;
        }
        serde_norway::from_value(tree).map_err(|e| SslError::Config {
            origin: "overrides".into(),
            message: format!("{e} (after applying {:?})", overrides.iter().map(|s| s.as_ref()).collect::<Vec<_>>()),
        })
    }

    /// Images per optimiser step: `batch_size_per_gpu · grad_accumulation_steps` (one device).
    pub fn effective_batch_size(&self) -> usize {
        self.train.batch_size_per_gpu * self.train.grad_accumulation_steps.max(1)
    }

    /// `optim.lr` from `base_lr` and the effective batch size (`sqrt_wrt_1024`:
    /// `base_lr · √(batch · k / 1024)`, as upstream's global batch with k accumulation steps).
    pub fn scaled_lr(&self) -> Result<f64> {
        match self.optim.scaling_rule.as_str() {
            "sqrt_wrt_1024" => Ok(self.optim.base_lr * (self.effective_batch_size() as f64 / 1024.0).sqrt()),
            "none" | "" => Ok(self.optim.base_lr),
            other => Err(SslError::Config {
                origin: "optim.scaling_rule".into(),
                message: format!("unknown scaling rule `{other}` (expected `sqrt_wrt_1024` or `none`)"),
            }),
        }
    }

    /// The dtype the backbones compute in, from `train.mixed_precision` (`none` → f32, `bf16`).
    pub fn compute_dtype(&self) -> Result<DType> {
        let bad = |m: &str| Err(SslError::Invalid(m.into()));
        match self.train.mixed_precision.as_str() {
            "none" => Ok(DType::F32),
            "bf16" => Ok(DType::BF16),
            // Upstream trains fp16 with a gradient scaler; bf16 has f32's range and needs none.
            "fp16" => bad("train.mixed_precision fp16 is not supported (it needs a gradient scaler): use bf16 or none"),
            other => Err(SslError::Invalid(format!("train.mixed_precision `{other}` must be `none` or `bf16`"))),
        }
    }

    /// The backbone architecture this config trains (teacher: same, without stochastic depth).
    pub fn vit_config(&self) -> Result<cellino_vit::VitConfig> {
        let s = &self.student;
        let arch = cellino_vit::Arch::from_name(&s.arch)?;
        let mut c = cellino_vit::VitConfig::for_arch(arch, s.patch_size, s.in_chans, self.crops.global_crops_size);
        if let Some(d) = s.embed_dim {
            c.embed_dim = d;
            c.ffn_hidden = c.ffn.hidden_dim(d, 4.0);
        }
        if let Some(d) = s.depth {
            c.depth = d;
        }
        if let Some(h) = s.num_heads {
            c.num_heads = h;
        }
        match s.ffn_layer.as_str() {
            "mlp" => {}
            other => {
                return Err(SslError::Invalid(format!(
                    "student.ffn_layer `{other}` is not supported for training (mlp only)"
                )));
            }
        }
        c.qkv_bias = s.qkv_bias;
        c.proj_bias = s.proj_bias;
        c.ffn_bias = s.ffn_bias;
        c.num_register_tokens = s.num_register_tokens;
        c.layerscale = s.layerscale > 0.0;
        c.interpolation =
            cellino_vit::PosEmbedInterpolation { offset: s.interpolate_offset, antialias: s.interpolate_antialias };
        c.drop_path_rate = s.drop_path_rate;
        Ok(c)
    }

    /// Refuse impossible combinations before training, with one sentence each.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(SslError::Invalid(m));
        let p = self.student.patch_size;
        if p == 0 {
            return bad("student.patch_size must be positive".into());
        }
        if !self.crops.global_crops_size.is_multiple_of(p) {
            return bad(format!(
                "crops.global_crops_size {} is not divisible by student.patch_size {p}",
                self.crops.global_crops_size
            ));
        }
        if self.crops.local_crops_number > 0 && !self.crops.local_crops_size.is_multiple_of(p) {
            return bad(format!(
                "crops.local_crops_size {} is not divisible by student.patch_size {p}",
                self.crops.local_crops_size
            ));
        }
        if self.teacher.in_chans != self.student.in_chans {
            return bad(format!(
                "teacher.in_chans {} differs from student.in_chans {} (the teacher is a copy of the student)",
                self.teacher.in_chans, self.student.in_chans
            ));
        }
        if self.dino.koleo_loss_weight > 0.0 && self.train.batch_size_per_gpu < 2 {
            return bad(format!(
                "train.batch_size_per_gpu {} is too small for KoLeo (needs at least 2; or set dino.koleo_loss_weight: 0)",
                self.train.batch_size_per_gpu
            ));
        }
        if self.train.batch_size_per_gpu == 0 {
            return bad("train.batch_size_per_gpu must be positive".into());
        }
        if self.train.grad_accumulation_steps == 0 {
            return bad("train.grad_accumulation_steps must be at least 1 (1 = no accumulation)".into());
        }
        // A 1-channel (Bag-of-Channels) model sees one channel at a time: the channel ops never fire.
        if self.student.in_chans > 1 && self.train.protein_channel >= self.student.in_chans {
            return bad(format!(
                "train.protein_channel {} is not a channel of a student.in_chans {} model (channels are 0-based)",
                self.train.protein_channel, self.student.in_chans
            ));
        }
        if self.train.official_epoch_length == 0 {
            return bad("train.OFFICIAL_EPOCH_LENGTH must be positive".into());
        }
        if self.ibot.separate_head {
            return bad("ibot.separate_head: true is not supported yet (the DINO head is shared)".into());
        }
        if !matches!(self.train.centering.as_str(), "centering" | "sinkhorn_knopp") {
            return bad(format!("train.centering `{}` must be `centering` or `sinkhorn_knopp`", self.train.centering));
        }
        if self.optim.warmup_epochs > self.optim.epochs {
            return bad(format!(
                "optim.warmup_epochs {} exceeds optim.epochs {}",
                self.optim.warmup_epochs, self.optim.epochs
            ));
        }
        if self.optim.freeze_last_layer_epochs > self.optim.epochs {
            return bad("optim.freeze_last_layer_epochs exceeds optim.epochs".into());
        }
        self.scaled_lr()?;
        self.vit_config()?;
        self.compute_dtype()?;
        Ok(())
    }

    /// The run's schedules (§5.5), with `lr` from [`SslConfig::scaled_lr`].
    pub fn schedules(&self) -> Result<crate::schedule::Schedules> {
        use crate::schedule::CosineScheduler;
        let el = self.train.official_epoch_length;
        let total = self.optim.epochs * el;
        let lr = self.scaled_lr()?;
        let bad = |what: &str| SslError::Invalid(format!("{what} schedule: warm-up longer than the run"));
        let lr_s = CosineScheduler::new(lr, self.optim.min_lr, total, self.optim.warmup_epochs * el, 0.0, 0)
            .ok_or_else(|| bad("lr"))?;
        let mut last = lr_s.clone();
        let freeze = (self.optim.freeze_last_layer_epochs * el).min(last.schedule.len());
        last.schedule[..freeze].iter_mut().for_each(|v| *v = 0.0);
        let wd = CosineScheduler::new(self.optim.weight_decay, self.optim.weight_decay_end, total, 0, 0.0, 0)
            .ok_or_else(|| bad("wd"))?;
        let momentum =
            CosineScheduler::new(self.teacher.momentum_teacher, self.teacher.final_momentum_teacher, total, 0, 0.0, 0)
                .ok_or_else(|| bad("momentum"))?;
        let tt_iters = self.teacher.warmup_teacher_temp_epochs * el;
        let teacher_temp = CosineScheduler::new(
            self.teacher.teacher_temp,
            self.teacher.teacher_temp,
            tt_iters,
            tt_iters,
            self.teacher.warmup_teacher_temp,
            0,
        )
        .ok_or_else(|| bad("teacher temperature"))?;
        Ok(crate::schedule::Schedules { lr: lr_s, last_layer_lr: last, wd, momentum, teacher_temp })
    }
}

//! Self-supervised pretraining for cellino: DINOv2 / Cell-DINO / Bag-of-Channels (DINO + iBOT +
//! KoLeo, EMA teacher, multi-crop, resumable checkpoints), on candle.
//!
//! - [`SslConfig`]: the dinov2 schema (`train`, `student`, `teacher`, `dino`, `ibot`, `optim`,
//!   `crops`, `evaluation`) from YAML with `ssl_default_config.yaml` defaults and `key.sub=value`
//!   overrides; unknown keys and wrong types are errors naming the key.
//! - [`SslTrainer`]: student (trainable `Var`s) and EMA teacher (plain tensors), shared
//!   [`DinoHead`], one [`SslTrainer::step`] = teacher targets → student → DINO + iBOT + KoLeo →
//!   backward → per-submodule clipping → [`AdamW`] with parameter groups → EMA. With
//!   `train.grad_accumulation_steps: k` an iteration is k loader batches
//!   ([`SslTrainer::step_micro_batches`]): losses scaled by 1/k, gradients summed, one update.
//! - Losses: [`dino_loss`], [`ibot_loss`], [`koleo_loss`]; centering [`Center`] (EMA, one-step
//!   lag) and [`sinkhorn_knopp`]; schedules [`CosineScheduler`].
//! - Checkpoints ([`SslTrainer::save_checkpoint`], [`SslTrainer::load_checkpoint`]) resume bit
//!   for bit; [`SslTrainer::export_teacher`] writes dinov2's `teacher_checkpoint` key layout.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use cellino_ssl::{SslConfig, SslTrainer};
//!
//! // A tiny 2-channel model: D 32, 1 block, 16-px globals, 8-px locals, patch 8, 64 prototypes.
//! let config = SslConfig::default().with_overrides(&[
//!     "student.arch=vit_small", "student.embed_dim=32", "student.depth=1", "student.num_heads=2",
//!     "student.patch_size=8", "student.in_chans=2", "teacher.in_chans=2",
//!     "crops.global_crops_size=16", "crops.local_crops_size=8", "crops.local_crops_number=2",
//!     "dino.head_n_prototypes=64", "dino.head_hidden_dim=32", "dino.head_bottleneck_dim=16",
//!     "train.batch_size_per_gpu=2", "train.OFFICIAL_EPOCH_LENGTH=10",
//! ])?;
//! let mut trainer = SslTrainer::new(config, &Device::Cpu)?;
//! // Crop-major batch of 2 images: 2 global crops (4 rows), 2 local crops (4 rows).
//! let global = Tensor::randn(0f32, 1.0, (4, 2, 16, 16), &Device::Cpu)?;
//! let local = Tensor::randn(0f32, 1.0, (4, 2, 8, 8), &Device::Cpu)?;
//! let metrics = trainer.step_tensors(&global, Some(&local), None, "none")?;
//! assert!(metrics.total_loss.is_finite());
//! assert_eq!(trainer.iteration, 1);
//! # Ok::<(), cellino_ssl::SslError>(())
//! ```

mod adamw;
mod centering;
mod checkpoint;
mod clip;
mod config;
mod dino_loss;
mod error;
mod head;
mod ibot_loss;
mod koleo;
mod param_groups;
mod schedule;
mod train_loop;
mod trainer;

pub use adamw::{AdamW, AdamWConfig, ParamState};
pub use centering::{CENTER_MOMENTUM, Center, sinkhorn_knopp};
pub use checkpoint::{CHECKPOINT_FORMAT, CheckpointMeta, checkpoint_paths, latest_checkpoint, list_checkpoints};
pub use clip::clip_grad_norm;
pub use config::{
    CropsConfig, DinoConfig, EvaluationConfig, IbotConfig, OptimConfig, SslConfig, StudentConfig, TeacherConfig,
    TrainConfig,
};
pub use dino_loss::{DinoTerms, cross_entropy, dino_loss, log_softmax_t, softmax_t};
pub use error::{Result, SslError};
pub use head::{DinoHead, HeadConfig, random_head_weights, to_vars};
pub use ibot_loss::{ibot_loss, mask_weights};
pub use koleo::koleo_loss;
pub use param_groups::{ParamGroup, backbone_group, backbone_layer_id, head_group};
pub use schedule::{CosineScheduler, ScheduleValues, Schedules, linspace};
pub use train_loop::{CheckpointPolicy, augmentation, checkpoint_dir, loader_config, metrics_json_line, train};
pub use trainer::{BACKBONE, DINO_HEAD, MicroBatch, SslTrainer, StepMetrics, head_config, micro_seed, step_seed};

//! The SSL meta-architecture and one training step (§5.1, §5.6): student + EMA teacher, shared
//! DINO head, DINO / iBOT / KoLeo losses, per-submodule clipping, AdamW, EMA.

use std::collections::BTreeMap;

use candle_core::{D, DType, Device, Tensor, Var};
use cellino_data::{Batch, MaskBatch};
use cellino_vit::{DinoVisionTransformer, StateDict, VitConfig};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::adamw::{AdamW, AdamWConfig};
use crate::centering::{Center, sinkhorn_knopp};
use crate::clip::clip_grad_norm;
use crate::config::SslConfig;
use crate::dino_loss::dino_loss;
use crate::error::{Result, SslError};
use crate::head::{DinoHead, HeadConfig, random_head_weights};
use crate::ibot_loss::{ibot_loss, mask_weights};
use crate::koleo::koleo_loss;
use crate::param_groups::{ParamGroup, backbone_group, head_group};
use crate::schedule::Schedules;

/// Prefix of backbone parameters in [`SslTrainer`] names (dinov2's submodule name).
pub const BACKBONE: &str = "backbone.";
/// Prefix of the DINO head parameters.
pub const DINO_HEAD: &str = "dino_head.";

/// Everything measured in one step (JSON-lines friendly).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub iteration: u64,
    pub total_loss: f64,
    pub dino_local_crops_loss: f64,
    pub dino_global_crops_loss: f64,
    pub koleo_loss: f64,
    pub ibot_loss: f64,
    pub lr: f64,
    pub last_layer_lr: f64,
    pub wd: f64,
    pub momentum: f64,
    pub teacher_temp: f64,
    pub grad_norm_backbone: f64,
    pub grad_norm_head: f64,
    /// Mean per-sample entropy of the teacher DINO targets (nats).
    pub teacher_entropy: f64,
    /// Entropy of the batch-mean teacher target: near 0 when every image maps to one prototype.
    pub teacher_marginal_entropy: f64,
    /// Mean over features of the student CLS standard deviation across the batch.
    pub embedding_std: f64,
    pub center_norm: f64,
    pub masked_patches: usize,
    /// Images (each with all its crops) per second, data loading included; set by [`crate::train`].
    pub images_per_second: f64,
}

/// Student, teacher, centers, optimiser and schedules of a run.
pub struct SslTrainer {
    pub config: SslConfig,
    pub vit_config: VitConfig,
    pub head_config: HeadConfig,
    /// Trainable student tensors, `backbone.*` and `dino_head.*`.
    pub(crate) student: BTreeMap<String, Var>,
    /// EMA teacher tensors (plain, no graph), same names.
    pub(crate) teacher: BTreeMap<String, Tensor>,
    student_backbone: DinoVisionTransformer,
    student_head: DinoHead,
    teacher_backbone: DinoVisionTransformer,
    teacher_head: DinoHead,
    pub(crate) dino_center: Center,
    pub(crate) ibot_center: Center,
    pub(crate) optimizer: AdamW,
    groups: BTreeMap<String, ParamGroup>,
    schedules: Schedules,
    /// Iterations done (the 0-based index of the next step).
    pub iteration: u64,
    device: Device,
    /// Backbone compute dtype (`train.mixed_precision`); weights, heads and losses stay f32.
    compute_dtype: DType,
}

impl std::fmt::Debug for SslTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SslTrainer").field("iteration", &self.iteration).field("vit", &self.vit_config).finish()
    }
}

/// Split `backbone.x` / `dino_head.x` maps into the two submodules.
fn split_prefixed(all: &BTreeMap<String, Tensor>) -> (BTreeMap<String, Tensor>, BTreeMap<String, Tensor>) {
    let (mut bb, mut head) = (BTreeMap::new(), BTreeMap::new());
    for (k, t) in all {
        if let Some(r) = k.strip_prefix(BACKBONE) {
            bb.insert(r.to_string(), t.clone());
        } else if let Some(r) = k.strip_prefix(DINO_HEAD) {
            head.insert(r.to_string(), t.clone());
        }
    }
    (bb, head)
}

fn state_dict(tensors: BTreeMap<String, Tensor>) -> StateDict {
    StateDict { tensors, source: "cellino-ssl".into(), head_keys: vec![], layout: "in memory".into() }
}

impl SslTrainer {
    /// A new run with random weights seeded by `train.seed`; the teacher starts as a copy.
    pub fn new(config: SslConfig, device: &Device) -> Result<Self> {
        config.validate()?;
        let vit = config.vit_config()?;
        let head_cfg = head_config(&config, &vit);
        let seed = config.train.seed;
        let bb = cellino_vit::random_state_dict(&vit, config.student.layerscale as f32, seed, device)?;
        let head = random_head_weights(&head_cfg, seed.wrapping_add(0x4EAD), device)?;
        let mut all = BTreeMap::new();
        for (k, t) in bb.tensors {
            all.insert(format!("{BACKBONE}{k}"), t);
        }
        for (k, t) in head {
            all.insert(format!("{DINO_HEAD}{k}"), t);
        }
        let k = head_cfg.n_prototypes;
        let (dc, ic) = (Center::new(k, device)?, Center::new(k, device)?);
        Self::from_parts(config, &all, &all, dc, ic, AdamW::new(AdamWConfig::default()), 0, device)
    }

    /// Assemble from student and teacher tensors (`backbone.*`, `dino_head.*`), centers, optimiser
    /// state and the iteration count (used by checkpoint loading). Tensors are copied.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        config: SslConfig,
        student: &BTreeMap<String, Tensor>,
        teacher: &BTreeMap<String, Tensor>,
        dino_center: Center,
        ibot_center: Center,
        mut optimizer: AdamW,
        iteration: u64,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let vit = config.vit_config()?;
        let head_cfg = head_config(&config, &vit);
        optimizer.config = AdamWConfig { beta1: config.optim.adamw_beta1, beta2: config.optim.adamw_beta2, eps: 1e-8 };
        let student: BTreeMap<String, Var> = student
            .iter()
            .map(|(k, t)| Ok((k.clone(), Var::from_tensor(&t.to_device(device)?.to_dtype(DType::F32)?.copy()?)?)))
            .collect::<Result<_>>()?;
        let teacher: BTreeMap<String, Tensor> = teacher
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.to_device(device)?.to_dtype(DType::F32)?.copy()?)))
            .collect::<Result<_>>()?;
        let s_tensors: BTreeMap<String, Tensor> =
            student.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
        let (s_bb, s_head) = split_prefixed(&s_tensors);
        let (t_bb, t_head) = split_prefixed(&teacher);
        if s_tensors.len() != s_bb.len() + s_head.len() || teacher.len() != t_bb.len() + t_head.len() {
            return Err(SslError::Invalid(
                "student/teacher tensors must all start with `backbone.` or `dino_head.`".into(),
            ));
        }
        let student_backbone = DinoVisionTransformer::from_state_dict(vit.clone(), &state_dict(s_bb))?;
        let mut teacher_vit = vit.clone();
        teacher_vit.drop_path_rate = 0.0;
        let teacher_backbone = DinoVisionTransformer::from_state_dict(teacher_vit, &state_dict(t_bb))?;
        let student_head = DinoHead::from_tensors(head_cfg, &s_head)?;
        let teacher_head = DinoHead::from_tensors(head_cfg, &t_head)?;
        let groups = student
            .keys()
            .map(|k| {
                let g = if let Some(r) = k.strip_prefix(BACKBONE) {
                    backbone_group(r, vit.depth, config.optim.layerwise_decay, config.optim.patch_embed_lr_mult)
                } else {
                    head_group(k.strip_prefix(DINO_HEAD).unwrap_or(k))
                };
                (k.clone(), g)
            })
            .collect();
        let schedules = config.schedules()?;
        let compute_dtype = config.compute_dtype()?;
        Ok(Self {
            config,
            vit_config: vit,
            head_config: head_cfg,
            student,
            teacher,
            student_backbone,
            student_head,
            teacher_backbone,
            teacher_head,
            dino_center,
            ibot_center,
            optimizer,
            groups,
            schedules,
            iteration,
            device: device.clone(),
            compute_dtype,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype the backbones compute in (f32, or bf16 under `train.mixed_precision: bf16`).
    pub fn compute_dtype(&self) -> DType {
        self.compute_dtype
    }

    /// The group (lr / wd multipliers, last-layer flag) of every student parameter.
    pub fn param_groups(&self) -> &BTreeMap<String, ParamGroup> {
        &self.groups
    }

    /// The optimiser (moments and step counts per parameter).
    pub fn optimizer(&self) -> &AdamW {
        &self.optimizer
    }

    pub fn schedules(&self) -> &Schedules {
        &self.schedules
    }

    /// The student tensors (`backbone.*`, `dino_head.*`). They share storage with the trainable
    /// variables, so later steps change them; `copy()` them for a snapshot.
    pub fn student_tensors(&self) -> BTreeMap<String, Tensor> {
        self.student.iter().map(|(k, v)| (k.clone(), v.as_tensor().detach())).collect()
    }

    /// Current teacher tensors (`backbone.*`, `dino_head.*`).
    pub fn teacher_tensors(&self) -> &BTreeMap<String, Tensor> {
        &self.teacher
    }

    /// The teacher backbone (for embedding / evaluation).
    pub fn teacher_backbone(&self) -> &DinoVisionTransformer {
        &self.teacher_backbone
    }

    /// One step on a multi-crop batch from the loader (globals crop-major (2B, C, H, W), locals
    /// (n_local·B, C, h, w), iBOT masks for the 2B globals). `last_checkpoint` is named in the
    /// error if the loss is not finite; the weights are then left unchanged.
    pub fn step(&mut self, batch: &Batch, last_checkpoint: &str) -> Result<StepMetrics> {
        self.step_micro_batches(&[MicroBatch::from(batch)], last_checkpoint)
    }

    /// One iteration over several loader batches (gradient accumulation, see
    /// [`SslTrainer::step_micro_batches`]); [`crate::train`] passes `train.grad_accumulation_steps`.
    pub fn step_batches(&mut self, batches: &[Batch], last_checkpoint: &str) -> Result<StepMetrics> {
        let micro: Vec<MicroBatch<'_>> = batches.iter().map(MicroBatch::from).collect();
        self.step_micro_batches(&micro, last_checkpoint)
    }

    /// [`SslTrainer::step`] on raw tensors.
    pub fn step_tensors(
        &mut self,
        global: &Tensor,
        local: Option<&Tensor>,
        masks: Option<&MaskBatch>,
        last_checkpoint: &str,
    ) -> Result<StepMetrics> {
        self.step_micro_batches(&[MicroBatch { global, local, masks }], last_checkpoint)
    }

    /// One iteration over `k = micro.len()` micro-batches:
    /// [`accumulate_gradients`](SslTrainer::accumulate_gradients) (each loss scaled by 1/k, the
    /// gradients summed), then [`apply_gradients`](SslTrainer::apply_gradients) (one clip, one AdamW
    /// step, one EMA update). With one micro-batch this is the plain dinov2 step.
    pub fn step_micro_batches(&mut self, micro: &[MicroBatch<'_>], last_checkpoint: &str) -> Result<StepMetrics> {
        let (grads, mut metrics) = self.accumulate_gradients(micro, last_checkpoint)?;
        let (gb, gh) = self.apply_gradients(&grads)?;
        metrics.grad_norm_backbone = gb;
        metrics.grad_norm_head = gh;
        Ok(metrics)
    }

    /// Forward and backward of each micro-batch at the current iteration, losses scaled by
    /// `1/micro.len()`: the summed gradient of every student parameter (so the mean of the
    /// micro-batch gradients) and the metrics (losses, entropies and embedding spread are means
    /// over micro-batches, `masked_patches` a sum; grad norms are left 0). Weights do not change,
    /// but centering is per micro-batch: the EMA centers fold in every micro-batch, and
    /// Sinkhorn-Knopp normalises over one micro-batch's rows. A non-finite loss is an error.
    pub fn accumulate_gradients(
        &mut self,
        micro: &[MicroBatch<'_>],
        last_checkpoint: &str,
    ) -> Result<(BTreeMap<String, Tensor>, StepMetrics)> {
        let k = micro.len();
        if k == 0 {
            return Err(SslError::Invalid("an iteration needs at least one micro-batch".into()));
        }
        let it = self.iteration;
        let sv = self.schedules.at(it);
        // Mixed precision: both backbones run autocast, their matrix products on bf16 casts of the
        // current f32 weights (made per iteration, as the weights change); the student's casts are
        // graph ops, so its gradients come back f32 to the master `Var`s. At f32 every cast is a
        // no-op clone and the step is unchanged.
        let cd = self.compute_dtype;
        let cast_backbones = if cd == DType::F32 {
            None
        } else {
            Some((self.teacher_backbone.autocast(cd)?, self.student_backbone.autocast(cd)?))
        };
        let (teacher_backbone, student_backbone) = match &cast_backbones {
            Some((t, s)) => (t, s),
            None => (&self.teacher_backbone, &self.student_backbone),
        };
        let mut metrics = StepMetrics {
            iteration: it,
            lr: sv.lr,
            last_layer_lr: sv.last_layer_lr,
            wd: sv.wd,
            momentum: sv.momentum,
            teacher_temp: sv.teacher_temp,
            ..Default::default()
        };
        let mut sum: BTreeMap<String, Tensor> = BTreeMap::new();
        for (j, mb) in micro.iter().enumerate() {
            let MicroBatch { global, local, masks } = *mb;
            let n_global = 2usize;
            let rows = global.dim(0)?;
            if rows == 0 || !rows.is_multiple_of(n_global) {
                return Err(SslError::Invalid(format!(
                    "a step needs 2 global crops per image, got {rows} global rows"
                )));
            }
            let b = rows / n_global;
            let c = global.dim(1)?;
            if c != self.vit_config.in_chans {
                return Err(SslError::Invalid(format!(
                    "the batch has {c} channels but the model has student.in_chans {}",
                    self.vit_config.in_chans
                )));
            }
            let koleo_w = self.config.dino.koleo_loss_weight;
            if koleo_w > 0.0 && b < 2 {
                return Err(SslError::Invalid(format!(
                    "KoLeo needs at least 2 images per global crop, the batch has {b}"
                )));
            }
            let n_local = match local {
                Some(l) => {
                    let r = l.dim(0)?;
                    if !r.is_multiple_of(b) {
                        return Err(SslError::Invalid(format!("{r} local crops are not a multiple of batch {b}")));
                    }
                    r / b
                }
                None => 0,
            };
            let (_, _, h, w) = global.dims4()?;
            let n_patches = (h / self.vit_config.patch_size) * (w / self.vit_config.patch_size);
            let mask_flags: Vec<bool> = match masks {
                Some(m) => {
                    if m.n_images != rows || m.n_tokens() != n_patches {
                        return Err(SslError::Invalid(format!(
                            "masks for {} images × {} patches, the globals have {rows} × {n_patches}",
                            m.n_images,
                            m.n_tokens()
                        )));
                    }
                    m.masks.clone()
                }
                None => vec![false; rows * n_patches],
            };
            let idx: Vec<u32> = mask_flags.iter().enumerate().filter(|(_, m)| **m).map(|(i, _)| i as u32).collect();
            let m_count = idx.len();
            let idx_t = Tensor::from_vec(idx, m_count, &self.device)?;
            let weights = Tensor::from_vec(mask_weights(&mask_flags, n_patches), m_count, &self.device)?;
            let mask_tensor = Tensor::from_vec(
                mask_flags.iter().map(|&m| u8::from(m)).collect::<Vec<u8>>(),
                (rows, n_patches),
                &self.device,
            )?;

            // Teacher targets, no graph.
            let t_feats = teacher_backbone.forward_features(global, None)?;
            let t_cls = t_feats.cls.detach();
            let t_swapped = Tensor::cat(&[t_cls.narrow(0, b, b)?, t_cls.narrow(0, 0, b)?], 0)?;
            let d = self.vit_config.embed_dim;
            let t_masked = t_feats.patches.detach().reshape((rows * n_patches, d))?.index_select(&idx_t, 0)?;
            let t_logits = self.teacher_head.forward(&Tensor::cat(&[&t_swapped, &t_masked], 0)?)?.detach();
            let t_cls_logits = t_logits.narrow(0, 0, rows)?;
            let t_patch_logits = t_logits.narrow(0, rows, m_count)?;
            let temp = sv.teacher_temp;
            let (t_cls_p, t_patch_p) = if self.config.train.centering == "sinkhorn_knopp" {
                (sinkhorn_knopp(&t_cls_logits, temp, 3)?, sinkhorn_knopp(&t_patch_logits, temp, 3)?)
            } else {
                (
                    self.dino_center.softmax_and_update(&t_cls_logits, temp)?,
                    self.ibot_center.softmax_and_update(&t_patch_logits, temp)?,
                )
            };

            // Student: masked globals, then locals, one head pass over CLS and masked patches.
            let mut dp_rng = StdRng::seed_from_u64(micro_seed(self.config.train.seed, it, j));
            let s_glob = student_backbone.forward_features_train(global, Some(&mask_tensor), &mut dp_rng)?;
            let s_loc = match local {
                Some(l) if n_local > 0 => Some(student_backbone.forward_features_train(l, None, &mut dp_rng)?),
                _ => None,
            };
            let s_masked = s_glob.patches.reshape((rows * n_patches, d))?.index_select(&idx_t, 0)?;
            let mut head_in = vec![s_glob.cls.clone()];
            if let Some(sl) = &s_loc {
                head_in.push(sl.cls.clone());
            }
            head_in.push(s_masked);
            let s_logits = self.student_head.forward(&Tensor::cat(&head_in, 0)?)?;
            let s_glob_logits = s_logits.narrow(0, 0, rows)?;
            let n_loc_rows = n_local * b;
            let s_loc_logits = if n_loc_rows > 0 { Some(s_logits.narrow(0, rows, n_loc_rows)?) } else { None };
            let s_patch_logits = s_logits.narrow(0, rows + n_loc_rows, m_count)?;

            let st = 0.1;
            let dino = dino_loss(&s_glob_logits, s_loc_logits.as_ref(), &t_cls_p, n_global, n_local, st)?;
            let dw = self.config.dino.loss_weight;
            let mut total = ((&dino.local * dw)? + (&dino.global * dw)?)?;
            let mut koleo_v = 0.0;
            if koleo_w > 0.0 {
                let mut kl = Tensor::zeros((), DType::F32, &self.device)?;
                for g in 0..n_global {
                    kl = (kl + koleo_loss(&s_glob.cls.narrow(0, g * b, b)?)?)?;
                }
                let kl = (kl * koleo_w)?;
                koleo_v = kl.to_scalar::<f32>()? as f64;
                total = (total + kl)?;
            }
            let ibot = ibot_loss(&s_patch_logits, &t_patch_p, &weights, rows, st)?;
            let iw = self.config.ibot.loss_weight;
            total = (total + (&ibot * iw)?)?;

            let total_v = total.to_scalar::<f32>()? as f64;
            let parts = [
                ("total_loss", total_v),
                ("dino_local_crops_loss", dino.local.to_scalar::<f32>()? as f64 * dw),
                ("dino_global_crops_loss", dino.global.to_scalar::<f32>()? as f64 * dw),
                ("koleo_loss", koleo_v),
                ("ibot_loss", ibot.to_scalar::<f32>()? as f64 * iw),
            ];
            for (what, v) in parts {
                if !v.is_finite() {
                    return Err(SslError::NonFinite {
                        what: what.into(),
                        value: v,
                        iteration: it,
                        last_checkpoint: last_checkpoint.to_string(),
                    });
                }
            }
            let (ent, marg) = entropies(&t_cls_p)?;
            let emb_std =
                s_glob.cls.detach().to_dtype(DType::F64)?.var_keepdim(0)?.sqrt()?.mean_all()?.to_scalar::<f64>()?;
            // Means over micro-batches (a sum then one division, so k = 1 is the plain step).
            metrics.total_loss += parts[0].1;
            metrics.dino_local_crops_loss += parts[1].1;
            metrics.dino_global_crops_loss += parts[2].1;
            metrics.koleo_loss += parts[3].1;
            metrics.ibot_loss += parts[4].1;
            metrics.teacher_entropy += ent;
            metrics.teacher_marginal_entropy += marg;
            metrics.embedding_std += emb_std;
            metrics.masked_patches += m_count;

            // Backward of loss/k; keep only the student's gradients (detached, so this
            // micro-batch's graph is freed before the next one).
            let grads = if k == 1 { total.backward()? } else { (total / k as f64)?.backward()? };
            for (n, var) in &self.student {
                if let Some(g) = grads.get(var.as_tensor()) {
                    let g = g.detach();
                    let acc = match sum.remove(n) {
                        Some(prev) => (prev + g)?,
                        None => g,
                    };
                    sum.insert(n.clone(), acc);
                }
            }
        }
        let kf = k as f64;
        for v in [
            &mut metrics.total_loss,
            &mut metrics.dino_local_crops_loss,
            &mut metrics.dino_global_crops_loss,
            &mut metrics.koleo_loss,
            &mut metrics.ibot_loss,
            &mut metrics.teacher_entropy,
            &mut metrics.teacher_marginal_entropy,
            &mut metrics.embedding_std,
        ] {
            *v /= kf;
        }
        metrics.center_norm = self.dino_center.value.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()? as f64;
        Ok((sum, metrics))
    }

    /// The update half of an iteration: clip `grads` (student name → gradient) per submodule,
    /// one AdamW step with this iteration's schedules, one teacher EMA update, then the iteration
    /// count advances. Returns the (backbone, head) gradient norms before clipping.
    pub fn apply_gradients(&mut self, grads: &BTreeMap<String, Tensor>) -> Result<(f64, f64)> {
        let sv = self.schedules.at(self.iteration);
        let clip = self.config.optim.clip_grad;
        let mut norms = [0.0; 2];
        for (prefix, slot) in [(BACKBONE, 0usize), (DINO_HEAD, 1usize)] {
            let (with_grad, gs): (Vec<&String>, Vec<Tensor>) = self
                .student
                .keys()
                .filter(|k| k.starts_with(prefix))
                .filter_map(|n| grads.get(n).map(|g| (n, g.clone())))
                .unzip();
            let (gs, norm) = clip_grad_norm(&gs, clip)?;
            norms[slot] = norm;
            for (n, g) in with_grad.into_iter().zip(gs) {
                let grp = self.groups[n];
                let lr = if grp.is_last_layer { sv.last_layer_lr } else { sv.lr } * grp.lr_mult;
                let wd = sv.wd * grp.wd_mult;
                self.optimizer.step_param(n, &self.student[n], &g, lr, wd)?;
            }
        }

        // EMA teacher over backbone + head parameters.
        let names: Vec<&String> = self.teacher.keys().collect();
        let t: Vec<Tensor> = names.iter().map(|n| self.teacher[*n].clone()).collect();
        let s: Vec<Tensor> = names.iter().map(|n| self.student[*n].as_tensor().detach()).collect();
        cellino_kernels::ema_update_in_place(&t, &s, sv.momentum)?;
        self.iteration += 1;
        Ok((norms[0], norms[1]))
    }
}

/// One micro-batch of an iteration: crop-major globals (2B, C, H, W), locals (n_local·B, C, h, w)
/// and the iBOT masks of the 2B globals.
#[derive(Debug, Clone, Copy)]
pub struct MicroBatch<'a> {
    pub global: &'a Tensor,
    pub local: Option<&'a Tensor>,
    pub masks: Option<&'a MaskBatch>,
}

impl<'a> From<&'a Batch> for MicroBatch<'a> {
    fn from(b: &'a Batch) -> Self {
        Self { global: &b.global, local: b.local.as_ref(), masks: b.masks.as_ref() }
    }
}

/// The head shape of a config for a backbone.
pub fn head_config(config: &SslConfig, vit: &VitConfig) -> HeadConfig {
    HeadConfig {
        in_dim: vit.embed_dim,
        hidden_dim: config.dino.head_hidden_dim,
        bottleneck_dim: config.dino.head_bottleneck_dim,
        n_prototypes: config.dino.head_n_prototypes,
        nlayers: config.dino.head_nlayers,
    }
}

/// The seed of the stochastic-depth RNG of iteration `it` (keyed, so resuming needs no RNG state).
pub fn step_seed(seed: u64, it: u64) -> u64 {
    let mut z = seed ^ 0x5353_4C5F_4450_0000 ^ it.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stochastic-depth seed of micro-batch `j` of iteration `it` (micro-batch 0 is [`step_seed`],
/// so one micro-batch per iteration draws as before accumulation existed).
pub fn micro_seed(seed: u64, it: u64, j: usize) -> u64 {
    if j == 0 { step_seed(seed, it) } else { step_seed(seed ^ (j as u64).wrapping_mul(0xD1B5_4A32_D192_ED03), it) }
}

/// (mean per-row entropy, entropy of the mean row) of probabilities (N, K), in nats.
fn entropies(p: &Tensor) -> Result<(f64, f64)> {
    let p = p.to_dtype(DType::F64)?;
    let ent = |q: &Tensor| -> Result<Tensor> { Ok((q * (q + 1e-12)?.log()?)?.sum(D::Minus1)?.neg()?) };
    let per = ent(&p)?.mean_all()?.to_scalar::<f64>()?;
    let marg = ent(&p.mean(0)?)?.to_scalar::<f64>()?;
    Ok((per, marg))
}

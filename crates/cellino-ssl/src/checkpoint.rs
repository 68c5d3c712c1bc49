//! Checkpoints: one safetensors file (student, teacher, centers, AdamW moments) plus a JSON
//! sidecar (config, iteration, RNG position, data cursor, crate version), written atomically and
//! pruned to the last N; and the teacher export in dinov2's `teacher_checkpoint` key layout.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use cellino_data::Cursor;
use serde::{Deserialize, Serialize};

use crate::adamw::{AdamW, AdamWConfig, ParamState};
use crate::centering::Center;
use crate::config::SslConfig;
use crate::error::{Result, SslError, io_err};
use crate::trainer::SslTrainer;

/// Version tag of the checkpoint layout.
pub const CHECKPOINT_FORMAT: &str = "cellino-ssl-checkpoint-v1";

/// The JSON sidecar of a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format: String,
    pub crate_version: String,
    /// Iterations done: the next step is this 0-based iteration.
    pub iteration: u64,
    /// Run seed; the stochastic-depth RNG of iteration `it` is keyed by (seed, it), so
    /// `rng_position` = `iteration` is all the RNG state there is.
    pub seed: u64,
    pub rng_position: u64,
    /// Where the data loader resumes.
    pub data_epoch: u64,
    pub data_position: usize,
    /// AdamW step count per parameter.
    pub optimizer_steps: BTreeMap<String, u64>,
    pub config: SslConfig,
}

/// `<dir>/model_<iteration:07>.safetensors` / `.json`.
pub fn checkpoint_paths(dir: &Path, iteration: u64) -> (PathBuf, PathBuf) {
    let stem = format!("model_{iteration:07}");
    (dir.join(format!("{stem}.safetensors")), dir.join(format!("{stem}.json")))
}

fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    write(&tmp)?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

impl SslTrainer {
    /// Save to `dir` (created if needed) with the loader cursor; keeps the newest `keep` checkpoints
    /// (0 = all). The tensors are written first, the sidecar last: a checkpoint counts only once its
    /// sidecar exists, so a kill at any moment leaves the previous one loadable. Returns the
    /// safetensors path.
    pub fn save_checkpoint(&self, dir: &Path, cursor: Cursor, keep: usize) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for (k, v) in &self.student {
            tensors.insert(format!("student.{k}"), v.as_tensor().detach());
        }
        for (k, t) in &self.teacher {
            tensors.insert(format!("teacher.{k}"), t.clone());
        }
        tensors.insert("dino_loss.center".into(), self.dino_center.value.clone());
        tensors.insert("ibot_patch_loss.center".into(), self.ibot_center.value.clone());
        let mut steps = BTreeMap::new();
        for (k, s) in &self.optimizer.state {
            tensors.insert(format!("optimizer.exp_avg.{k}"), s.exp_avg.clone());
            tensors.insert(format!("optimizer.exp_avg_sq.{k}"), s.exp_avg_sq.clone());
            steps.insert(k.clone(), s.step);
        }
        let meta = CheckpointMeta {
            format: CHECKPOINT_FORMAT.into(),
            crate_version: env!("CARGO_PKG_VERSION").into(),
            iteration: self.iteration,
            seed: self.config.train.seed,
            rng_position: self.iteration,
            data_epoch: cursor.epoch,
            data_position: cursor.position,
            optimizer_steps: steps,
            config: self.config.clone(),
        };
        let (st_path, json_path) = checkpoint_paths(dir, self.iteration);
        write_atomic(&st_path, |p| Ok(candle_core::safetensors::save(&tensors, p)?))?;
        let json = serde_json::to_string_pretty(&meta)
            .map_err(|e| SslError::Checkpoint { path: json_path.clone(), message: e.to_string() })?;
        write_atomic(&json_path, |p| std::fs::write(p, json).map_err(io_err(p)))?;
        if keep > 0 {
            let all = list_checkpoints(dir)?;
            for (_, st, js) in all.iter().take(all.len().saturating_sub(keep)) {
                // Sidecar first, so a half-pruned checkpoint is never taken as complete.
                let _ = std::fs::remove_file(js);
                let _ = std::fs::remove_file(st);
            }
        }
        Ok(st_path)
    }

    /// Load a checkpoint (its `.safetensors` or `.json` path); returns the trainer and the loader
    /// cursor to resume from. The stored config is used as is, so the resume is exact.
    pub fn load_checkpoint(path: &Path, device: &Device) -> Result<(Self, Cursor)> {
        let (st_path, json_path) = (path.with_extension("safetensors"), path.with_extension("json"));
        let ck = |message: String| SslError::Checkpoint { path: st_path.clone(), message };
        let text = std::fs::read_to_string(&json_path).map_err(io_err(&json_path))?;
        let meta: CheckpointMeta = serde_json::from_str(&text)
            .map_err(|e| SslError::Checkpoint { path: json_path.clone(), message: e.to_string() })?;
        if meta.format != CHECKPOINT_FORMAT {
            return Err(ck(format!("format `{}`, expected `{CHECKPOINT_FORMAT}`", meta.format)));
        }
        let raw = candle_core::safetensors::load(&st_path, device).map_err(|e| ck(e.to_string()))?;
        let (mut student, mut teacher) = (BTreeMap::new(), BTreeMap::new());
        let (mut m1, mut m2) = (BTreeMap::new(), BTreeMap::new());
        let (mut dc, mut ic) = (None, None);
        for (k, t) in raw {
            if let Some(r) = k.strip_prefix("student.") {
                student.insert(r.to_string(), t);
            } else if let Some(r) = k.strip_prefix("teacher.") {
                teacher.insert(r.to_string(), t);
            } else if let Some(r) = k.strip_prefix("optimizer.exp_avg_sq.") {
                m2.insert(r.to_string(), t);
            } else if let Some(r) = k.strip_prefix("optimizer.exp_avg.") {
                m1.insert(r.to_string(), t);
            } else if k == "dino_loss.center" {
                dc = Some(t);
            } else if k == "ibot_patch_loss.center" {
                ic = Some(t);
            } else {
                return Err(ck(format!("unexpected tensor `{k}`")));
            }
        }
        let mut opt = AdamW::new(AdamWConfig::default());
        for (k, step) in &meta.optimizer_steps {
            let (a, b) = (m1.remove(k), m2.remove(k));
            match (a, b) {
                (Some(exp_avg), Some(exp_avg_sq)) => {
                    opt.state.insert(k.clone(), ParamState { exp_avg, exp_avg_sq, step: *step });
                }
                _ => return Err(ck(format!("optimizer moments of `{k}` are missing"))),
            }
        }
        let dc = dc.ok_or_else(|| ck("`dino_loss.center` is missing".into()))?;
        let ic = ic.ok_or_else(|| ck("`ibot_patch_loss.center` is missing".into()))?;
        let trainer = SslTrainer::from_parts(
            meta.config.clone(),
            &student,
            &teacher,
            Center { value: dc },
            Center { value: ic },
            opt,
            meta.iteration,
            device,
        )
        .map_err(|e| ck(e.to_string()))?;
        Ok((trainer, Cursor { epoch: meta.data_epoch, position: meta.data_position }))
    }

    /// Write the teacher as safetensors in dinov2's `teacher_checkpoint` key layout
    /// (`backbone.<flat dinov2 key>`, `dino_head.<key>`), atomically. `cellino embed` and
    /// `cellino_vit::load_state_dict` read it directly.
    pub fn export_teacher(&self, path: &Path) -> Result<()> {
        let tensors: HashMap<String, Tensor> = self.teacher.iter().map(|(k, t)| (k.clone(), t.clone())).collect();
        write_atomic(path, |p| Ok(candle_core::safetensors::save(&tensors, p)?))
    }
}

/// Complete checkpoints in `dir` (both files present), oldest first: (iteration, safetensors, json).
pub fn list_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf, PathBuf)>> {
    let mut out = vec![];
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(SslError::Io { path: dir.into(), source: e }),
    };
    for entry in rd {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(num) = name.strip_prefix("model_").and_then(|s| s.strip_suffix(".json")) else { continue };
        let Ok(it) = num.parse::<u64>() else { continue };
        let (st, js) = checkpoint_paths(dir, it);
        if st.exists() {
            out.push((it, st, js));
        }
    }
    out.sort();
    Ok(out)
}

/// The newest complete checkpoint in `dir`, if any.
pub fn latest_checkpoint(dir: &Path) -> Result<Option<PathBuf>> {
    Ok(list_checkpoints(dir)?.pop().map(|(_, st, _)| st))
}

//! Reading backbone weights from the files users actually have, without Python.
//!
//! Supported containers: safetensors (memory-mapped), Hugging Face sharded safetensors
//! (`*.safetensors.index.json`), and PyTorch `.pth` zip archives (`torch.save`). Supported layouts:
//! plain backbone state dicts, `{"teacher": {...}}` training checkpoints with `backbone.` /
//! `dino_head.` prefixes, `module.` prefixes, and the `block_chunks` layout `blocks.<chunk>.<i>.*`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Result, VitError};

/// Backbone tensors under their canonical DINOv2 names (`blocks.<i>.*`, no prefixes), in f32.
#[derive(Debug, Clone)]
pub struct StateDict {
    pub tensors: BTreeMap<String, Tensor>,
    /// Where the tensors came from, for error messages.
    pub source: PathBuf,
    /// Keys that belong to training heads (`dino_head.*`, `ibot_head.*`, `head.*`) and were set aside.
    pub head_keys: Vec<String>,
    /// The layout that was recognised, e.g. "teacher checkpoint, chunked blocks".
    pub layout: String,
}

impl StateDict {
    pub fn get(&self, key: &str) -> Option<&Tensor> {
        self.tensors.get(key)
    }
}

/// Container format, recognised from the file's first bytes (the extension is only a hint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Safetensors,
    ShardIndex,
    TorchZip,
}

fn sniff(path: &Path) -> Result<Container> {
    let io = |source| VitError::Io { path: path.to_path_buf(), source };
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(io)?;
    let n = file.read(&mut head).map_err(io)?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") {
        return Ok(Container::TorchZip);
    }
    if head.len() >= 9 && head[8] == b'{' {
        return Ok(Container::Safetensors);
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(Container::ShardIndex);
    }
    Err(VitError::NotACheckpoint {
        path: path.to_path_buf(),
        reason: "expected a safetensors file, a *.safetensors.index.json or a PyTorch .pth zip archive".into(),
    })
}

/// Load the backbone tensors of a checkpoint, whatever its container and layout.
pub fn load_state_dict(path: impl AsRef<Path>) -> Result<StateDict> {
    let path = path.as_ref();
    let (raw, container_name) = match sniff(path)? {
        Container::Safetensors => (read_safetensors(path)?, "safetensors"),
        Container::ShardIndex => (read_sharded(path)?, "sharded safetensors"),
        Container::TorchZip => (read_pth(path)?, "PyTorch .pth"),
    };
    if raw.is_empty() {
        return Err(VitError::NoTensors { path: path.to_path_buf() });
    }
    canonicalise(raw, path, container_name)
}

fn not_checkpoint(path: &Path, err: impl std::fmt::Display) -> VitError {
    VitError::NotACheckpoint { path: path.to_path_buf(), reason: err.to_string() }
}

fn read_safetensors(path: &Path) -> Result<Vec<(String, Tensor)>> {
    // SAFETY: the mapping is read-only and dropped before this function returns; tensors are
    // copied out by `load`.
    let st = unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }.map_err(|e| not_checkpoint(path, e))?;
    st.tensors()
        .into_iter()
        .map(|(name, _)| {
            let t = st.load(&name, &Device::Cpu).map_err(|e| not_checkpoint(path, format!("tensor `{name}`: {e}")))?;
            Ok((name, t))
        })
        .collect()
}

fn read_sharded(index_path: &Path) -> Result<Vec<(String, Tensor)>> {
    let text = std::fs::read_to_string(index_path)
        .map_err(|source| VitError::Io { path: index_path.to_path_buf(), source })?;
    let index: serde_json::Value = serde_json::from_str(&text).map_err(|e| not_checkpoint(index_path, e))?;
    let map = index
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| not_checkpoint(index_path, "the JSON has no `weight_map` object"))?;
    let dir = index_path.parent().unwrap_or(Path::new("."));
    let mut by_shard: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (key, shard) in map {
        let shard =
            shard.as_str().ok_or_else(|| not_checkpoint(index_path, format!("`{key}` maps to a non-string")))?;
        by_shard.entry(shard).or_default().insert(key);
    }
    let mut out = Vec::with_capacity(map.len());
    for (shard, keys) in by_shard {
        let shard_path = dir.join(shard);
        let tensors = read_safetensors(&shard_path)?;
        let found: BTreeSet<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
        let missing: Vec<&str> = keys.iter().filter(|k| !found.contains(*k)).copied().collect();
        if !missing.is_empty() {
            return Err(VitError::KeyMismatch {
                path: shard_path,
                details: format!("the index lists keys this shard does not hold: {}", missing.join(", ")),
            });
        }
        out.extend(tensors.into_iter().filter(|(k, _)| keys.contains(k.as_str())));
    }
    Ok(out)
}

/// Top-level keys under which training scripts nest the state dict.
const NESTED_KEYS: [&str; 4] = ["teacher", "model", "state_dict", "student"];

fn read_pth(path: &Path) -> Result<Vec<(String, Tensor)>> {
    use candle_core::pickle::PthTensors;
    for key in std::iter::once(None).chain(NESTED_KEYS.iter().copied().map(Some)) {
        let pth = match PthTensors::new(path, key) {
            Ok(pth) => pth,
            // A missing nested key is normal; a broken archive is not.
            Err(e) if key.is_some() && e.to_string().contains("not found") => continue,
            Err(e) => return Err(not_checkpoint(path, e)),
        };
        if pth.tensor_infos().is_empty() {
            continue;
        }
        let mut names: Vec<String> = pth.tensor_infos().keys().cloned().collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let t = pth
                .get(&name)
                .map_err(|e| not_checkpoint(path, format!("tensor `{name}`: {e}")))?
                .ok_or_else(|| not_checkpoint(path, format!("tensor `{name}` vanished")))?;
            out.push((name, t));
        }
        return Ok(out);
    }
    Err(VitError::NoTensors { path: path.to_path_buf() })
}

/// Prefixes that mark training heads rather than the backbone.
const HEAD_PREFIXES: [&str; 3] = ["dino_head.", "ibot_head.", "head."];

/// Strip wrappers (`module.`, `backbone.`, `_fsdp_wrapped_module.`), set heads aside, and flatten
/// `blocks.<chunk>.<i>.*` to `blocks.<i>.*`.
fn canonicalise(raw: Vec<(String, Tensor)>, path: &Path, container: &str) -> Result<StateDict> {
    let mut tensors = BTreeMap::new();
    let mut head_keys = vec![];
    let (mut chunked, mut had_backbone_prefix) = (false, false);
    for (key, t) in raw {
        let mut name = key.replace("_fsdp_wrapped_module.", "").replace("module.", "");
        if let Some(rest) = name.strip_prefix("backbone.") {
            had_backbone_prefix = true;
            name = rest.to_string();
        }
        if HEAD_PREFIXES.iter().any(|p| name.starts_with(p)) {
            head_keys.push(key);
            continue;
        }
        if let Some(flat) = flatten_chunked_block_key(&name) {
            chunked = true;
            name = flat;
        }
        let t = if t.dtype() == DType::F32 { t } else { t.to_dtype(DType::F32)? };
        if tensors.insert(name.clone(), t).is_some() {
            return Err(VitError::KeyMismatch {
                path: path.to_path_buf(),
                details: format!("`{name}` appears twice after removing prefixes and block chunks"),
            });
        }
    }
    if tensors.is_empty() {
        return Err(VitError::NoTensors { path: path.to_path_buf() });
    }
    let mut layout = container.to_string();
    if had_backbone_prefix {
        layout.push_str(", training checkpoint (backbone.*)");
    }
    layout.push_str(if chunked { ", chunked blocks (block_chunks > 0)" } else { ", flat blocks" });
    Ok(StateDict { tensors, source: path.to_path_buf(), head_keys, layout })
}

/// `blocks.<chunk>.<i>.rest` → `blocks.<i>.rest`; `None` for any other key.
fn flatten_chunked_block_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix("blocks.")?;
    let mut parts = rest.splitn(3, '.');
    let (chunk, index, tail) = (parts.next()?, parts.next()?, parts.next()?);
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(chunk) && numeric(index)).then(|| format!("blocks.{index}.{tail}"))
}

#[cfg(test)]
mod tests {
    use super::flatten_chunked_block_key;

    #[test]
    fn chunked_keys_are_flattened_and_flat_keys_left_alone() {
        assert_eq!(
            flatten_chunked_block_key("blocks.2.13.attn.qkv.weight").as_deref(),
            Some("blocks.13.attn.qkv.weight")
        );
        assert_eq!(flatten_chunked_block_key("blocks.13.attn.qkv.weight"), None);
        assert_eq!(flatten_chunked_block_key("norm.weight"), None);
    }
}

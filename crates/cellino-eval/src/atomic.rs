//! Atomic writes: every output is written to a temporary file in the same folder and renamed
//! over its final name only when all of them are complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{EvalError, Result};

/// Writes every `(path, bytes)` to a temporary sibling, syncs it, then renames them in
/// order. Until the first rename nothing exists under the final names; if a write fails the
/// temporaries are removed.
///
/// # Errors
/// [`EvalError::Io`] naming the file.
pub fn write_all_atomic(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut temps: Vec<PathBuf> = Vec::with_capacity(files.len());
    let cleanup = |temps: &[PathBuf]| temps.iter().for_each(|t| drop(std::fs::remove_file(t)));
    for (path, bytes) in files {
        let tmp = temp_name(path);
        if let Err(e) = write_synced(&tmp, bytes) {
            cleanup(&temps);
            drop(std::fs::remove_file(&tmp));
            return Err(EvalError::io(path, e));
        }
        temps.push(tmp);
    }
    for (i, ((path, _), tmp)) in files.iter().zip(&temps).enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            cleanup(&temps[i..]);
            return Err(EvalError::io(path, e));
        }
    }
    Ok(())
}

/// Writes one file atomically.
///
/// # Errors
/// [`EvalError::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_all_atomic(&[(path.to_path_buf(), bytes.to_vec())])
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

//! Writes that never leave a partial file behind: write a temporary sibling, then rename. Shared
//! by this crate's writers and the `cellino` command line.

use std::path::{Path, PathBuf};

/// Call `write` on a temporary path next to `dest` and move the result into place only if it
/// succeeded; on failure the temporary file is removed and `dest` is untouched.
pub fn write_atomically<E>(dest: &Path, write: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), AtomicWriteError<E>> {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "output".into());
    let tmp: PathBuf = dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    if let Err(e) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(AtomicWriteError::Write(e));
    }
    std::fs::rename(&tmp, dest).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        AtomicWriteError::Rename { path: dest.to_path_buf(), source }
    })
}

#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError<E> {
    #[error("{0}")]
    Write(E),
    #[error("cannot move the finished file to {path}: {source}")]
    Rename { path: PathBuf, source: std::io::Error },
}

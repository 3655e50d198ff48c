//! Where an interrupted load stopped: `<state folder>/warm-checkpoint.json`,
//! rewritten (atomically) after every batch Redis acknowledged, removed
//! when a load completes. It names its source (path, size and mtime of a
//! file; the address and database of a Redis) and tenant, so a rerun with
//! the same source continues after the last acknowledged batch and any
//! other source starts over.

use crate::exit::Failure;
use redplate_config::Diagnostic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The checkpoint's file name in the state folder.
pub const FILE: &str = "warm-checkpoint.json";

/// How far a load got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// What was being loaded (see [`identity`]).
    pub source: String,
    pub tenant: Option<String>,
    /// Lines (files) or keys (Redis) done.
    pub line: u64,
    /// Bytes of the file done.
    pub offset: u64,
    /// The `SCAN` cursor to continue from (Redis).
    pub cursor: Option<String>,
    /// Counts over every run of this load so far.
    pub written: u64,
    pub failed: u64,
}

/// Where `state_dir`'s checkpoint is.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// What identifies a file source: its absolute path, size and mtime, so a
/// file that changed since is loaded from the start.
pub fn file_identity(file: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(file)?;
    let absolute = std::fs::canonicalize(file)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!("file:{}:{}:{mtime}", absolute.display(), meta.len()))
}

/// The checkpoint of `state_dir` if it is for `source` and `tenant`.
pub fn load(state_dir: &Path, source: &str, tenant: Option<&str>) -> Option<Checkpoint> {
    let text = std::fs::read_to_string(path(state_dir)).ok()?;
    let c: Checkpoint = serde_json::from_str(&text).ok()?;
    (c.source == source && c.tenant.as_deref() == tenant).then_some(c)
}

/// Writes the checkpoint (to a temporary file, then renamed over the old one).
pub fn save(state_dir: &Path, checkpoint: &Checkpoint) -> Result<(), Failure> {
    let file = path(state_dir);
    let tmp = state_dir.join(format!("{FILE}.tmp"));
    let text = serde_json::to_vec(checkpoint).map_err(|e| {
        Failure::could_not_run(Diagnostic::error("warm.checkpoint", "", format!("cannot encode the checkpoint: {e}")))
    })?;
    std::fs::write(&tmp, text).map_err(|e| Failure::write(&tmp, e))?;
    std::fs::rename(&tmp, &file).map_err(|e| Failure::write(&file, e))
}

/// Removes the checkpoint (a finished load, or `--restart`).
pub fn clear(state_dir: &Path) -> Result<(), Failure> {
    let file = path(state_dir);
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Failure::write(&file, e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_only_for_its_own_source_and_tenant() {
        let dir = tempfile::tempdir().expect("tmp");
        let c = Checkpoint { source: "file:/a:1:2".into(), line: 7, offset: 99, ..Checkpoint::default() };
        save(dir.path(), &c).expect("saves");
        assert_eq!(load(dir.path(), "file:/a:1:2", None), Some(c));
        assert_eq!(load(dir.path(), "file:/a:1:3", None), None);
        assert_eq!(load(dir.path(), "file:/a:1:2", Some("acme")), None);
        clear(dir.path()).expect("clears");
        assert_eq!(load(dir.path(), "file:/a:1:2", None), None);
        clear(dir.path()).expect("clearing twice is fine");
    }
}

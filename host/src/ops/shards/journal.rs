//! The plan of a `scale --shards` run, kept in the state folder
//! (`scale-shards.json`) from its start until it is done, so that a run
//! that was interrupted is recognised (and reported) when the command is
//! run again. The cluster itself says what is left to do — open slots,
//! nodes that still have to start or go, slots not yet even — so the
//! journal records the intent, not each slot.

use crate::exit::Failure;
use redplate_config::Diagnostic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The journal's file name in the state folder.
pub const FILE: &str = "scale-shards.json";

/// What a run set out to do, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// Shards before the run.
    pub from: u8,
    /// Shards asked for.
    pub to: u8,
    /// The step it was at: `nodes-added`, `slots`, `nodes-removed`.
    pub phase: String,
    pub started_unix: u64,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// The journal an earlier run left in the state folder, if any.
pub fn load(state_dir: &Path) -> Result<Option<Journal>, Failure> {
    let p = path(state_dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Failure::could_not_run(Diagnostic::error(
                "scale.journal",
                "",
                format!("cannot read `{}`: {e}", p.display()),
            )));
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Failure::could_not_run(
            Diagnostic::error(
                "scale.journal",
                "",
                format!(
                    "`{}` is unreadable (line {}): {}",
                    p.display(),
                    e.line(),
                    crate::text::clean(&e.to_string(), 200)
                ),
            )
            .with_hint("delete it: running `redplate scale` again reads what is left to do from the cluster itself"),
        )
    })
}

/// Records `journal` (atomically).
pub fn save(state_dir: &Path, journal: &Journal) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(journal).unwrap_or_default() + "\n";
    crate::ops::config::write_file(&path(state_dir), text.as_bytes())
}

/// Removes the journal of a finished run.
pub fn remove(state_dir: &Path) -> Result<(), Failure> {
    match std::fs::remove_file(path(state_dir)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure::could_not_run(Diagnostic::error(
            "scale.journal",
            "",
            format!("cannot remove `{}`: {e}", path(state_dir).display()),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_is_kept_until_removed_and_an_unreadable_one_names_its_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).ok().flatten(), None, "no run under way");
        let j = Journal { from: 3, to: 4, phase: "slots".into(), started_unix: 1 };
        save(dir.path(), &j).expect("save");
        assert_eq!(load(dir.path()).ok().flatten(), Some(j));
        remove(dir.path()).expect("remove");
        assert!(remove(dir.path()).is_ok(), "removing twice is fine");
        std::fs::write(dir.path().join(FILE), "{\n  \"from\": 3,\n  \"to\": x\n}\n").expect("write");
        let e = load(dir.path()).expect_err("unreadable");
        let text = e.diagnostics[0].message.clone();
        assert!(text.contains("line 3") && text.contains(FILE), "{text}");
    }
}

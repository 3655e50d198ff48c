//! The plan of a `scale --shards` run, kept in the state folder
//! (`scale-shards.json`) from its start until it is done, so that a run
//! that was interrupted is recognised (and reported) when the command is
//! run again. The cluster itself says what is left to do — open slots,
//! nodes that still have to start or go, slots not yet even — so the
//! journal records the intent, not each slot.

use crate::exit::Failure;
use crate::registry::Record;
use redplate_config::Diagnostic;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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

fn path(record: &Record) -> PathBuf {
    record.state_dir.join(FILE)
}

/// The journal an earlier run left, if any.
pub fn load(record: &Record) -> Result<Option<Journal>, Failure> {
    let p = path(record);
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
pub fn save(record: &Record, journal: &Journal) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(journal).unwrap_or_default() + "\n";
    crate::ops::config::write_file(&path(record), text.as_bytes())
}

/// Removes the journal of a finished run.
pub fn remove(record: &Record) -> Result<(), Failure> {
    match std::fs::remove_file(path(record)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure::could_not_run(Diagnostic::error(
            "scale.journal",
            "",
            format!("cannot remove `{}`: {e}", path(record).display()),
        ))),
    }
}

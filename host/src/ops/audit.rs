//! The audit log of a deployment: `<state folder>/audit.log`, one JSON
//! object per line, appended for every command run through `exec` and every
//! destructive operation (flush, restore), whether it ran, was refused or
//! failed. It names commands, never their arguments (values and passwords
//! stay out of logs). Mode 0600, like the rest of the state.

use serde::Serialize;
use std::io::Write as _;
use std::path::Path;

/// One audited action.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    /// Unix seconds.
    pub time: u64,
    /// Who asked: the OS user for the CLI (the API adds its token id).
    pub actor: String,
    pub operation: &'a str,
    /// The node(s) it ran on.
    pub target: String,
    /// The command's name (and subcommand) and how many arguments it had.
    pub command: String,
    pub arguments: usize,
    /// `ok`, `refused: …` or `failed: …`.
    pub outcome: String,
}

/// The OS user running redplate (its name, else its uid).
pub fn actor() -> String {
    use std::os::unix::fs::MetadataExt as _;
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .map(|u| crate::text::clean(&u, 64))
        .unwrap_or_else(|| {
            std::fs::metadata("/proc/self").map_or_else(|_| "unknown".into(), |m| format!("uid {}", m.uid()))
        })
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Appends `entry` to the deployment's audit log. An entry that cannot be
/// written is an error: an unaudited destructive command must not run.
pub fn append(state_dir: &Path, entry: &Entry<'_>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file =
        std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(state_dir.join("audit.log"))?;
    file.write_all(&line)
}

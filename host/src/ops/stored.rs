//! A deployment's own copy of its resolved template —
//! `<state folder>/template.json`, the canonical export — which is the
//! deployment's source of truth: moving or editing the user's file changes
//! nothing, and every runtime change (tenants, quotas, scale) is written
//! here, so `apply`, restarts and re-renders keep it.

use crate::exit::Failure;
use crate::registry::Record;
use redplate_config::{Config, Diagnostic, Resolved};
use std::path::{Path, PathBuf};

/// The stored copy's file name in the state folder.
pub const FILE: &str = "template.json";

/// Where `record`'s stored template is.
pub fn path(record: &Record) -> PathBuf {
    record.state_dir.join(FILE)
}

/// Writes `config` as the stored template of the deployment whose state
/// folder is `state_dir` (atomically, mode 0600 like the rest of the state).
pub fn save_in(state_dir: &Path, config: &Config) -> Result<(), Failure> {
    let text = redplate_config::export(config) + "\n";
    crate::ops::config::write_file(&state_dir.join(FILE), text.as_bytes())
}

/// Writes `config` as `record`'s stored template.
pub fn save(record: &Record, config: &Config) -> Result<(), Failure> {
    save_in(&record.state_dir, config)
}

/// The deployment's resolved template: the stored copy, or — for a
/// deployment made before copies were kept — the user's file with the
/// preset and `--set`s it was deployed with (then stored, so the next
/// change starts from the copy).
pub fn load(record: &Record) -> Result<Resolved, Failure> {
    let copy = path(record);
    if copy.exists() {
        return crate::ops::config::load(Some(&copy), None, &[]);
    }
    let resolved = crate::ops::config::load(Some(&record.template), record.preset, &record.sets).map_err(|mut f| {
        f.diagnostics.push(Diagnostic::new(
            redplate_config::Severity::Info,
            "deployment.no-stored-template",
            "",
            format!(
                "`{}` has no stored template yet and was deployed from `{}`, which could not be read as it was",
                record.name,
                record.template.display()
            ),
        ));
        f
    })?;
    save(record, &resolved.config)?;
    Ok(resolved)
}

/// `redplate export <deployment>`: the record of the deployment named
/// `arg`, when `arg` is no file (the template the user meant) but names a
/// registered deployment.
pub fn deployment_named(home: &Path, arg: &Path) -> Option<Record> {
    if arg.exists() {
        return None;
    }
    let name = arg.to_str().filter(|n| crate::registry::valid_name(n))?;
    crate::registry::Registry::new(home).load(name).ok()
}

/// The stored template of `record` with `preset` and `sets` layered on top
/// (none: the copy as it is).
pub fn load_with(
    record: &Record,
    preset: Option<redplate_config::model::Environment>,
    sets: &[String],
) -> Result<Resolved, Failure> {
    let resolved = load(record)?;
    if preset.is_none() && sets.is_empty() {
        return Ok(resolved);
    }
    crate::ops::config::load(Some(&path(record)), preset, sets)
}

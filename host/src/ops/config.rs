//! Template operations: load, validate (host rules and plugins' `validate`),
//! schema, presets, adapt, export and import.

use crate::exit::Failure;
use crate::ops::render::{PluginSet, input_document};
use crate::plugin::PluginHost;
use redplate_config::model::Environment;
use redplate_config::{Diagnostic, LoadError, LoadRequest, Resolved, Target};
use std::path::{Path, PathBuf};

/// Loads and layers a template: preset ← file ← `--set`.
pub fn load(template: Option<&Path>, preset: Option<Environment>, sets: &[String]) -> Result<Resolved, Failure> {
    if let Some(dir) = template.filter(|t| t.is_dir()) {
        return Err(Failure::could_not_run(
            Diagnostic::error("template.is-a-folder", "", format!("`{}` is a folder, not a template", dir.display()))
                .with_hint(format!(
                    "give one template file, or render every template in it with `redplate render {} --batch --out DIR`",
                    dir.display()
                )),
        ));
    }
    let request = LoadRequest { path: template.map(Path::to_owned), preset, sets: sets.to_vec() };
    redplate_config::load(&request).map_err(load_failure)
}

/// A load error as a failure: unreadable file → could not run; anything
/// else → invalid.
pub fn load_failure(e: LoadError) -> Failure {
    match e {
        LoadError::Io { .. } => Failure::could_not_run(Diagnostic::error("template.unreadable", "", e.to_string())),
        LoadError::Invalid(ds) => Failure::invalid(ds),
    }
}

/// What `validate` found.
#[derive(Debug, serde::Serialize)]
pub struct Validation {
    pub valid: bool,
    pub diagnostics: Vec<Diagnostic>,
}

/// `redplate validate`: the host rules and every plugin's `validate` (the
/// built-ins, those in `plugin_dirs`, and the template's own, relative to
/// `template`).
pub fn validate_with_plugins(
    host: &PluginHost,
    resolved: &Resolved,
    template: Option<&Path>,
    plugin_dirs: &[PathBuf],
) -> Result<Validation, Failure> {
    let extra = crate::ops::render::template_plugins(&resolved.config, template);
    let all = [Target::Local, Target::Compose, Target::Kubernetes];
    let set = PluginSet::load(host, &all, Some(&resolved.config.cache.strategy), &extra, plugin_dirs)?;
    validate(resolved, Some((host, &set)))
}

/// Host rules, then (with `plugins`) every generator's and the selected
/// strategy's `validate` export for every target.
pub fn validate(resolved: &Resolved, plugins: Option<(&PluginHost, &PluginSet)>) -> Result<Validation, Failure> {
    let mut diagnostics = redplate_config::validate(resolved);
    if let Some((host, set)) = plugins.filter(|_| !diagnostics.iter().any(Diagnostic::is_error)) {
        for target in [Target::Local, Target::Compose, Target::Kubernetes] {
            // Plugins validate shape, not secrets: no password is read or made here.
            let secrets = crate::secrets::placeholders(&resolved.config, target);
            let input = input_document(host, &resolved.config, target, None, secrets)?;
            let strategy = resolved.config.cache.strategy.as_str();
            let selected = set
                .strategies
                .iter()
                .filter(|p| p.info.name == strategy || p.info.outputs.iter().any(|o| o == strategy));
            for plugin in set.generators.iter().chain(selected) {
                for d in host.validate(plugin, &input)?.value {
                    if !diagnostics.iter().any(|e| e.code == d.code && e.pointer == d.pointer) {
                        diagnostics.push(d);
                    }
                }
            }
        }
        crate::ops::render::locate_plugin_diagnostics(resolved, &mut diagnostics);
    }
    let valid = !diagnostics.iter().any(Diagnostic::is_error);
    Ok(Validation { valid, diagnostics })
}

/// `adapt`: the template re-based on another preset, with the difference.
pub fn adapt(resolved: &Resolved, to: Environment, out: Option<&Path>) -> Result<redplate_config::Adaptation, Failure> {
    let adaptation = redplate_config::adapt(resolved, to).map_err(load_failure)?;
    if let Some(out) = out {
        write_file(out, adaptation.yaml.as_bytes())?;
    }
    Ok(adaptation)
}

/// `import`: reads a canonical JSON export and checks it as `validate`
/// checks a template (schema, then the host rules), with positions in the
/// file; the result exports back to the same bytes. An export edited into
/// something the host rules refuse is invalid (exit 1), not imported.
pub fn import(path: &Path) -> Result<redplate_config::Config, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::could_not_run(Diagnostic::error(
            "import.unreadable",
            "",
            format!("cannot read `{}`: {e}", path.display()),
        ))
    })?;
    let resolved = redplate_config::import_file(&text, &path.display().to_string()).map_err(load_failure)?;
    let diagnostics = redplate_config::validate(&resolved);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(Failure::invalid(diagnostics));
    }
    Ok(resolved.config)
}

/// Writes a file atomically (temp file + rename).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write as _;
    let fail = |e: std::io::Error| Failure::write(path, e);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(fail)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

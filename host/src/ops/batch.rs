//! `redplate render --batch`: every template in a folder, on worker threads
//! sharing one plugin host, each written to its own folder atomically.

use crate::exit::Failure;
use crate::ops::render::{PluginSet, render};
use crate::plugin::PluginHost;
use crate::secrets::SecretStore;
use redplate_config::{Diagnostic, Target};
use std::path::{Path, PathBuf};

/// One template's outcome in a batch.
#[derive(Debug, serde::Serialize)]
pub struct BatchItem {
    pub template: PathBuf,
    pub files: usize,
    /// Empty when it rendered; otherwise why not.
    pub diagnostics: Vec<Diagnostic>,
    pub status: u8,
}

/// The templates (`*.yaml`, `*.yml`, `*.json`, `*.toml`) in a folder, sorted.
pub fn batch_templates(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        Failure::could_not_run(Diagnostic::error(
            "batch.unreadable",
            "",
            format!("cannot read `{}`: {e}", dir.display()),
        ))
    })?;
    let mut templates: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| matches!(e.to_str(), Some("yaml" | "yml" | "json" | "toml"))))
        .collect();
    templates.sort();
    Ok(templates)
}

/// Renders every template into `out/<file stem>/`, on `threads` workers
/// sharing one plugin host (compiled code, pre-linked instances, compiled
/// templates). Each template's folder is written atomically on its own.
pub fn render_batch(
    host: &PluginHost,
    plugins: &PluginSet,
    templates: &[PathBuf],
    targets: &[Target],
    out: &Path,
    store: &SecretStore,
    threads: usize,
) -> Vec<BatchItem> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let one = |template: &Path| -> BatchItem {
        let result = crate::ops::config::load(Some(template), None, &[]).and_then(|resolved| {
            let rendered = render(host, plugins, &resolved, targets, store, false)?;
            let stem = template.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let dir = out.join(stem);
            rendered.artifacts.write_atomically(&dir).map_err(|e| Failure::write(&dir, e))?;
            Ok(rendered.artifacts.len())
        });
        match result {
            Ok(files) => BatchItem { template: template.to_owned(), files, diagnostics: Vec::new(), status: 0 },
            Err(f) => BatchItem {
                template: template.to_owned(),
                files: 0,
                diagnostics: f.diagnostics,
                status: f.status as u8,
            },
        }
    };
    let mut items: Vec<(usize, BatchItem)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(t) = templates.get(i) else { break };
                        done.push((i, one(t)));
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().filter_map(|w| w.join().ok()).flatten().collect()
    });
    items.sort_by_key(|(i, _)| *i);
    items.into_iter().map(|(_, item)| item).collect()
}

//! `redplate render --batch`: every template in a folder, on worker threads
//! sharing one plugin host, each written to its own folder atomically.

use crate::exit::{ExitStatus, Failure};
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
    pub status: ExitStatus,
}

/// The exit status of a whole batch: the worst of its items'.
pub fn worst(items: &[BatchItem]) -> ExitStatus {
    items.iter().map(|i| i.status).max().unwrap_or(ExitStatus::Ok)
}

/// The default number of batch threads: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
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

/// The output folder of a template in a batch: its file name without the
/// extension.
fn stem(template: &Path) -> String {
    template.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Templates whose output folders would collide (`a.yaml` and `a.json`):
/// for each, the error naming the other. Neither is rendered — one would
/// silently overwrite the other.
fn collisions(templates: &[PathBuf]) -> std::collections::HashMap<usize, Diagnostic> {
    let mut by_stem: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    for (i, t) in templates.iter().enumerate() {
        by_stem.entry(stem(t)).or_default().push(i);
    }
    let mut out = std::collections::HashMap::new();
    for (stem, group) in by_stem.into_iter().filter(|(_, g)| g.len() > 1) {
        let names: Vec<String> = group.iter().map(|&i| format!("`{}`", templates[i].display())).collect();
        for &i in &group {
            out.insert(
                i,
                Diagnostic::error(
                    "batch.same-output",
                    "",
                    format!("{} would all be written to the folder `{stem}/`", names.join(" and ")),
                )
                .with_hint("rename all but one of them (the output folder is the file name without its extension)"),
            );
        }
    }
    out
}

/// Renders every template into `out/<file stem>/`, on `threads` workers
/// sharing one plugin host (compiled code, pre-linked instances, compiled
/// templates). Each template's folder is written atomically on its own,
/// under the rules of [`crate::artifact::ArtifactSet::write_atomically`].
#[expect(clippy::too_many_arguments, reason = "the resolved settings of one batch")]
pub fn render_batch(
    host: &PluginHost,
    plugins: &PluginSet,
    templates: &[PathBuf],
    targets: &[Target],
    out: &Path,
    replace: bool,
    store: &SecretStore,
    threads: usize,
) -> Result<Vec<BatchItem>, Failure> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let collisions = collisions(templates);
    let one = |i: usize, template: &Path| -> BatchItem {
        let result = match collisions.get(&i) {
            Some(d) => Err(Failure::invalid(vec![d.clone()])),
            None => crate::ops::config::load(Some(template), None, &[]).and_then(|resolved| {
                let rendered = render(host, plugins, &resolved, targets, store, false)?;
                let dir = out.join(stem(template));
                rendered.artifacts.write_atomically(&dir, replace).map_err(|e| Failure::output(&dir, e))?;
                Ok(rendered.artifacts.len())
            }),
        };
        match result {
            Ok(files) => {
                BatchItem { template: template.to_owned(), files, diagnostics: Vec::new(), status: ExitStatus::Ok }
            }
            Err(f) => {
                BatchItem { template: template.to_owned(), files: 0, diagnostics: f.diagnostics, status: f.status }
            }
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
                        done.push((i, one(i, t)));
                    }
                    done
                })
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.join().map_err(|payload| Failure::panicked("a `--batch` worker", &*payload))?);
        }
        Ok::<_, Failure>(all)
    })?;
    items.sort_by_key(|(i, _)| *i);
    Ok(items.into_iter().map(|(_, item)| item).collect())
}

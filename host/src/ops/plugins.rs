//! Plugin operations for plugin authors and CI: list, inspect, test.

use crate::artifact::Artifact;
use crate::exit::Failure;
use crate::plugin::{
    CacheOutcome, CallReport, Plugin, PluginError, PluginHost, PluginInfo, PluginSource, StrategyPlan,
};
use redplate_config::Diagnostic;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One row of `plugins list`.
#[derive(Debug, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub info: PluginInfo,
    pub source: PluginSource,
}

/// Lists the built-in plugins and those found in `plugin_dirs`. A plugin
/// that fails to load is reported as a diagnostic, not listed.
pub fn list(host: &PluginHost, plugin_dirs: &[PathBuf]) -> (Vec<Listed>, Vec<Diagnostic>) {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut loaded = host.load_builtins();
    for dir in plugin_dirs {
        match host.load_dir(dir) {
            Ok(found) => loaded.extend(found),
            Err(e) => problems.push(e.to_diagnostic()),
        }
    }
    for result in loaded {
        match result {
            Ok(p) => rows.push(Listed { info: p.info, source: p.source }),
            Err(e) => problems.push(e.to_diagnostic()),
        }
    }
    (rows, problems)
}

/// What `plugins inspect` shows.
#[derive(Debug, Serialize)]
pub struct Inspection {
    #[serde(flatten)]
    pub info: PluginInfo,
    pub source: PluginSource,
    pub size_bytes: usize,
    pub sha256: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub cache: CacheOutcome,
    pub load_micros: u128,
}

/// Finds a plugin by path (anything with a `/` or ending in `.wasm`) or by
/// name among the built-ins and the plugin folders.
pub fn find(host: &PluginHost, name_or_path: &str, plugin_dirs: &[PathBuf]) -> Result<Plugin, PluginError> {
    if name_or_path.contains('/') || name_or_path.ends_with(".wasm") {
        return host.load_file(Path::new(name_or_path));
    }
    if crate::plugin::builtin_names().any(|n| n == name_or_path) {
        return host.load_builtin(name_or_path);
    }
    let mut known: Vec<String> = crate::plugin::builtin_names().map(str::to_owned).collect();
    for dir in plugin_dirs {
        for plugin in host.load_dir(dir)?.into_iter().flatten() {
            if plugin.info.name == name_or_path {
                return Ok(plugin);
            }
            known.push(plugin.info.name);
        }
    }
    Err(PluginError::NotFound { name: name_or_path.to_owned(), known })
}

/// `plugins inspect`.
pub fn inspect(host: &PluginHost, name_or_path: &str, plugin_dirs: &[PathBuf]) -> Result<Inspection, Failure> {
    let p = find(host, name_or_path, plugin_dirs)?;
    Ok(Inspection {
        info: p.info,
        source: p.source,
        size_bytes: p.size,
        sha256: p.sha256,
        imports: p.imports,
        exports: p.exports,
        cache: p.cache,
        load_micros: p.load_time.as_micros(),
    })
}

/// One artifact as the test report shows it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ArtifactSummary {
    pub path: String,
    pub bytes: usize,
    pub media_type: String,
    pub executable: bool,
    pub sha256: String,
}

/// What `plugins test` found.
#[derive(Debug, Serialize)]
pub struct TestReport {
    pub plugin: PluginInfo,
    pub cache: CacheOutcome,
    /// Diagnostics from `validate`.
    pub validate: Vec<Diagnostic>,
    /// Diagnostics from `generate`/`plan` (its warnings, or why it refused).
    pub diagnostics: Vec<Diagnostic>,
    /// Whether the plugin refused the input.
    pub refused: bool,
    pub artifacts: Vec<ArtifactSummary>,
    /// The plan, for a cache strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<StrategyPlan>,
    /// Both runs' costs.
    pub runs: Vec<CallReport>,
    /// Whether both runs gave byte-identical results.
    pub deterministic: bool,
}

/// `plugins test`: runs `validate`, then `generate` (or `plan`) twice and
/// compares the results byte for byte. Writes the artifacts to `out`
/// (atomically) only when everything passed.
pub fn test(
    host: &PluginHost,
    path: &Path,
    input: &Path,
    out: Option<&Path>,
    replace: bool,
) -> Result<TestReport, Failure> {
    let plugin = host.load_file(path)?;
    let input_json = with_template_overrides(host, read_json(input)?);
    let validate = host.validate(&plugin, &input_json)?.value;
    let mut runs = Vec::new();
    let mut results = Vec::new();
    let mut plans = Vec::new();
    for _ in 0..2 {
        match plugin.info.kind {
            crate::plugin::PluginKind::Generator => {
                let run = host.generate(&plugin, &input_json)?;
                runs.push(run.report);
                results.push(run.value.map(|g| (g.artifacts, g.diagnostics)));
            }
            crate::plugin::PluginKind::CacheStrategy => {
                let run = host.plan(&plugin, &input_json)?;
                runs.push(run.report);
                let value = run.value.map(|p| {
                    let parts = (p.artifacts.clone(), p.diagnostics.clone());
                    plans.push(p);
                    parts
                });
                results.push(value);
            }
        }
    }
    let deterministic = results[0] == results[1]
        && plans.first().map(|p| format!("{p:?}")) == plans.get(1).map(|p| format!("{p:?}"))
        && runs[0].fuel_used == runs[1].fuel_used;
    let (refused, artifacts, diagnostics): (bool, Vec<Artifact>, Vec<Diagnostic>) = match results.swap_remove(0) {
        Ok((a, d)) => (false, a, d),
        Err(d) => (true, Vec::new(), d),
    };
    let report = TestReport {
        plugin: plugin.info.clone(),
        cache: plugin.cache.clone(),
        validate,
        diagnostics,
        refused,
        artifacts: artifacts.iter().map(summary).collect(),
        plan: plans.into_iter().next(),
        runs,
        deterministic,
    };
    if let Some(out) = out.filter(|_| report.passed()) {
        let mut set = crate::artifact::ArtifactSet::new();
        for a in artifacts {
            let path = a.path.clone();
            set.insert(a).map_err(|e| {
                Failure::could_not_run(Diagnostic::error(
                    "artifact.rejected",
                    "",
                    format!("artifact `{path}` rejected: {e:?}"),
                ))
            })?;
        }
        // The input's passwords (if it carries any) make the files holding them 0600.
        let input_value: serde_json::Value = serde_json::from_str(&input_json).unwrap_or_default();
        set.mark_secret_holders(&crate::secrets::passwords(&input_value["secrets"]));
        set.write_atomically(out, replace).map_err(|e| Failure::output(out, e))?;
    }
    Ok(report)
}

impl TestReport {
    /// Passed: the plugin accepted the input and was deterministic.
    pub fn passed(&self) -> bool {
        self.deterministic && !self.refused && !self.validate.iter().any(Diagnostic::is_error)
    }
}

fn summary(a: &Artifact) -> ArtifactSummary {
    use sha2::Digest;
    ArtifactSummary {
        path: a.path.clone(),
        bytes: a.content.len(),
        media_type: a.media_type.clone(),
        executable: a.executable,
        sha256: hex::encode(sha2::Sha256::digest(&a.content)),
    }
}

/// The input with `template_overrides` set to this run's `--templates`
/// (the host decides which templates are the user's, not the file).
fn with_template_overrides(host: &PluginHost, input_json: String) -> String {
    match serde_json::from_str::<serde_json::Value>(&input_json) {
        Ok(serde_json::Value::Object(mut doc)) => {
            doc.insert("template_overrides".into(), serde_json::json!(host.template_overrides()));
            serde_json::Value::Object(doc).to_string()
        }
        _ => input_json,
    }
}

/// Reads a JSON input document, pointing at the line and column of a
/// syntax error.
pub fn read_json(path: &Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::could_not_run(Diagnostic::error(
            "input.unreadable",
            "",
            format!("cannot read `{}`: {e}", path.display()),
        ))
    })?;
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
        let loc = redplate_config::Location { file: path.display().to_string(), line: e.line(), column: e.column() };
        return Err(Failure::invalid(vec![
            Diagnostic::error("input.not-json", "", format!("the input is not JSON: {e}"))
                .with_location(loc)
                .with_hint("`plugins test --input` takes the JSON document a plugin receives: `{config, target, topology, strategy}`"),
        ]));
    }
    Ok(text)
}

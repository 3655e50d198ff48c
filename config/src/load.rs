//! Loading a template: read the file (YAML, JSON or TOML), layer it over its
//! preset, apply `--set` assignments, check it strictly against the schema
//! and deserialize it into a typed [`Config`], keeping the source map.

use crate::diagnostic::{Diagnostic, Location};
use crate::layer::{apply_set, merge};
use crate::model::{Config, Environment};
use crate::source::{Format, SourceMap, Tree, child_pointer, parse};
use crate::{presets, strict};
use serde_json::Value;
use std::path::PathBuf;

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct LoadRequest {
    /// The template file; `None` loads the preset alone.
    pub path: Option<PathBuf>,
    /// The preset to layer under the file; overrides the file's `extends`.
    pub preset: Option<Environment>,
    /// `a.b.c=value` assignments applied last, in order.
    pub sets: Vec<String>,
}

/// A loaded template: the typed config, the merged JSON and where every
/// value came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The typed configuration.
    pub config: Config,
    /// The merged document, as written (before defaults).
    pub value: Value,
    /// JSON pointer → file position.
    pub sources: SourceMap,
    /// The preset layered under the file, if any.
    pub preset: Option<Environment>,
}

impl Resolved {
    /// Where the value at `pointer` (or its nearest written ancestor) came from.
    pub fn locate(&self, pointer: &str) -> Option<Location> {
        self.sources.locate(pointer).cloned()
    }

    /// Fills in missing locations of `diagnostics` from the source map.
    pub fn attach_locations(&self, diagnostics: &mut [Diagnostic]) {
        for d in diagnostics {
            if d.location.is_none() {
                d.location = self.locate(&d.pointer);
            }
        }
    }
}

/// Why a template could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The template file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The template is malformed: syntax, unknown keys, wrong types or values.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl LoadError {
    /// The problems as diagnostics (an I/O error becomes one too).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            LoadError::Io { path, source } => vec![
                Diagnostic::error("template.unreadable", "", format!("cannot read `{}`: {source}", path.display()))
                    .with_hint("check the path and its permissions"),
            ],
            LoadError::Invalid(d) => d.clone(),
        }
    }
}

impl From<Diagnostic> for LoadError {
    fn from(d: Diagnostic) -> Self {
        LoadError::Invalid(vec![d])
    }
}

/// Loads, layers, checks and types a template.
pub fn load(request: &LoadRequest) -> Result<Resolved, LoadError> {
    match &request.path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: path.clone(), source })?;
            let name = path.display().to_string();
            load_str(&text, Format::from_path(&name), &name, request.preset, &request.sets)
        }
        None => load_str("", Format::Yaml, "<empty>", request.preset, &request.sets),
    }
}

/// Like [`load`], from text already in memory; `file` names it in locations.
pub fn load_str(
    text: &str,
    format: Format,
    file: &str,
    preset: Option<Environment>,
    sets: &[String],
) -> Result<Resolved, LoadError> {
    let file_tree = parse(text, format, file)?;
    let extends = extends_of(&file_tree)?;
    let preset = preset.or(extends);
    let mut tree = match preset {
        Some(env) => presets::tree(env)?,
        None => Tree { value: Value::Object(Default::default()), sources: SourceMap::default() },
    };
    merge(&mut tree, file_tree);
    let mut problems = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        if let Err(d) = apply_set(&mut tree, set, i) {
            problems.push(d);
        }
    }
    if !problems.is_empty() {
        locate_all(&mut problems, &tree.sources);
        return Err(LoadError::Invalid(problems));
    }
    let mut resolved = typed(tree)?;
    resolved.preset = preset;
    Ok(resolved)
}

/// Checks a merged tree strictly and deserializes it.
pub(crate) fn typed(tree: Tree) -> Result<Resolved, LoadError> {
    let mut problems = strict::check(&tree.value);
    if problems.is_empty() {
        match deserialize(&tree.value) {
            Ok(config) => return Ok(Resolved { config, value: tree.value, sources: tree.sources, preset: None }),
            Err(refused) => {
                problems = refused;
                locate_all(&mut problems, &tree.sources);
                // In the order of the file, not of the model's fields.
                problems.sort_by_key(|d| d.location.as_ref().map(|l| (l.file.clone(), l.line, l.column)));
            }
        }
    }
    locate_all(&mut problems, &tree.sources);
    Err(LoadError::Invalid(problems))
}

/// Deserializes `value`, reporting every value serde refuses (sizes,
/// durations, percentages the schema cannot check), not only the first:
/// after each refusal the value is taken out of a scratch copy, so its
/// default applies, and the rest is tried again. Each round removes a node,
/// so this ends; a refusal the removals caused themselves (a parent missing a
/// field just taken out) is not the user's and is not reported. At most
/// [`MAX_REFUSALS`] rounds: each deserializes the whole document again.
fn deserialize(value: &Value) -> Result<Config, Vec<Diagnostic>> {
    let mut scratch = value.clone();
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    loop {
        if removed.len() >= MAX_REFUSALS {
            return Err(problems);
        }
        let e = match serde_path_to_error::deserialize::<_, Config>(&scratch) {
            Ok(config) if problems.is_empty() => return Ok(config),
            Ok(_) => return Err(problems),
            Err(e) => e,
        };
        let d = type_error(&e);
        let caused_by_removal = removed.iter().any(|r| r == &d.pointer || r.starts_with(&format!("{}/", d.pointer)));
        let pointer = d.pointer.clone();
        if !caused_by_removal {
            problems.push(d);
        }
        match remove_nearest(&mut scratch, &pointer) {
            Some(taken) => removed.push(taken),
            None => return Err(problems),
        }
    }
}

/// How many refused values one load reports.
const MAX_REFUSALS: usize = 100;

/// Removes the value at `pointer`, or its nearest ancestor that exists
/// (never the root); the pointer of what was removed.
fn remove_nearest(value: &mut Value, pointer: &str) -> Option<String> {
    let mut at = pointer.to_owned();
    while let Some((parent, last)) = at.rsplit_once('/') {
        let key = last.replace("~1", "/").replace("~0", "~");
        let taken = match value.pointer_mut(parent) {
            Some(Value::Object(map)) => map.remove(&key).is_some(),
            Some(Value::Array(items)) => match key.parse::<usize>() {
                // The element becomes null rather than moving its neighbours' indices.
                Ok(i) if i < items.len() && !items[i].is_null() => {
                    items[i] = Value::Null;
                    true
                }
                _ => false,
            },
            _ => false,
        };
        if taken {
            return Some(at);
        }
        at = parent.to_owned();
    }
    None
}

fn locate_all(problems: &mut [Diagnostic], sources: &SourceMap) {
    for d in problems {
        if d.location.is_none() {
            d.location = sources.locate(&d.pointer).cloned();
        }
    }
}

fn extends_of(tree: &Tree) -> Result<Option<Environment>, Diagnostic> {
    match tree.value.get("extends") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|msg: String| {
            let names = Environment::ALL.map(|e| e.as_str());
            let hint = match strict::did_you_mean(s, names) {
                Some(m) => format!("did you mean `{m}`?"),
                None => "use `development`, `staging` or `production`".into(),
            };
            Diagnostic::error("template.unknown-preset", "/extends", msg).with_hint(hint).with_location(
                tree.sources.locate("/extends").cloned().unwrap_or_else(|| Location {
                    file: String::new(),
                    line: 1,
                    column: 1,
                }),
            )
        }),
        Some(other) => Err(Diagnostic::error(
            "template.wrong-type",
            "/extends",
            format!("`extends` must be a preset name, found {}", crate::source::kind_name(other)),
        )
        .with_hint("write `extends: production`")
        .with_location(tree.sources.locate("/extends").cloned().unwrap_or_else(|| Location {
            file: String::new(),
            line: 1,
            column: 1,
        }))),
    }
}

/// Turns a serde error with its path into a pointed diagnostic.
fn type_error(e: &serde_path_to_error::Error<serde_json::Error>) -> Diagnostic {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for seg in e.path().iter() {
        match seg {
            Segment::Seq { index } => pointer = child_pointer(&pointer, &index.to_string()),
            Segment::Map { key } => pointer = child_pointer(&pointer, key),
            Segment::Enum { variant } => pointer = child_pointer(&pointer, variant),
            Segment::Unknown => {}
        }
    }
    let key = e.path().iter().next_back().map(|s| s.to_string()).unwrap_or_default();
    let inner = e.inner().to_string();
    Diagnostic::error("template.invalid-value", pointer, format!("invalid value for `{key}`: {inner}"))
        .with_hint("see the template schema (`redplate schema`) for the accepted formats")
}

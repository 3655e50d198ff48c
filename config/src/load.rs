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
        match serde_path_to_error::deserialize::<_, Config>(&tree.value) {
            Ok(config) => return Ok(Resolved { config, value: tree.value, sources: tree.sources, preset: None }),
            Err(e) => problems.push(type_error(&e)),
        }
    }
    locate_all(&mut problems, &tree.sources);
    Err(LoadError::Invalid(problems))
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

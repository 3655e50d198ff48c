//! Plain Rust mirrors of the WIT records, with constructors for plugin code.

use serde::{Deserialize, Serialize};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// One finding about the input, tied to a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: String,
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    fn new(severity: Severity, code: impl Into<String>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic { severity, code: code.into(), path: path.into(), message: message.into(), hint: None }
    }
    /// An error at `path` (a JSON pointer).
    pub fn error(code: impl Into<String>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, path, message)
    }
    /// A warning at `path`.
    pub fn warning(code: impl Into<String>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, path, message)
    }
    /// A note at `path`.
    pub fn info(code: impl Into<String>, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Info, code, path, message)
    }
    /// Adds what the user can do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// One file a generator produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub path: String,
    pub content: Vec<u8>,
    pub media_type: String,
    pub executable: bool,
}

impl Artifact {
    /// A text file with an explicit media type.
    pub fn new(path: impl Into<String>, content: impl Into<Vec<u8>>, media_type: impl Into<String>) -> Self {
        Artifact { path: path.into(), content: content.into(), media_type: media_type.into(), executable: false }
    }
    /// A `text/plain` file.
    pub fn text(path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        Self::new(path, content, "text/plain")
    }
    /// Marks the file executable.
    pub fn executable(mut self) -> Self {
        self.executable = true;
        self
    }
}

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PluginKind {
    Generator,
    CacheStrategy,
}

/// How a plugin names itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub kind: PluginKind,
    pub description: String,
    pub outputs: Vec<String>,
    pub contract_version: String,
}

impl PluginInfo {
    fn new(kind: PluginKind, name: &str, version: &str, description: &str, outputs: &[&str]) -> Self {
        PluginInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            kind,
            description: description.to_owned(),
            outputs: outputs.iter().map(|s| (*s).to_owned()).collect(),
            contract_version: crate::CONTRACT_VERSION.to_owned(),
        }
    }
    /// A generator writing `outputs` (paths or globs).
    pub fn generator(name: &str, version: &str, description: &str, outputs: &[&str]) -> Self {
        Self::new(PluginKind::Generator, name, version, description, outputs)
    }
    /// A cache strategy providing the strategies named in `outputs`.
    pub fn cache_strategy(name: &str, version: &str, description: &str, outputs: &[&str]) -> Self {
        Self::new(PluginKind::CacheStrategy, name, version, description, outputs)
    }
}

/// What a generator returns on success.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub artifacts: Vec<Artifact>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Output {
    /// Artifacts and no diagnostics.
    pub fn new(artifacts: Vec<Artifact>) -> Self {
        Output { artifacts, diagnostics: Vec::new() }
    }
}

/// How writes reach the backing store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMode {
    Invalidate,
    WriteThrough,
    WriteBehind,
}

/// A `redis.conf` directive a strategy needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directive {
    pub name: String,
    pub value: String,
    pub reason: String,
}

/// How keys matching a pattern are cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRule {
    pub pattern: String,
    pub ttl_ms: Option<u64>,
    pub jitter_percent: u8,
    pub sliding: bool,
    pub refresh_ahead_percent: Option<u8>,
    pub write_mode: WriteMode,
}

/// What a strategy contributes to a deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub directives: Vec<Directive>,
    pub key_rules: Vec<KeyRule>,
    pub artifacts: Vec<Artifact>,
    pub diagnostics: Vec<Diagnostic>,
}

/// What a strategy decides for one write of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub ttl_ms: Option<u64>,
    pub sliding: bool,
    pub refresh_below_ms: Option<u64>,
    pub write_mode: WriteMode,
}

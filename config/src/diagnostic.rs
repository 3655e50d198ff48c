//! Diagnostics: one finding about a template or a plugin's work, tied to a
//! JSON pointer and, where known, a file position. Shared by host validation
//! and by the plugin runtime so that every finding prints the same way.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The input cannot be used as it is.
    Error,
    /// Works, but probably not what the user wants.
    Warning,
    /// Worth knowing; changes nothing.
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// The file as the user named it (or `<preset:production>`, `<--set>`).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One finding, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// How serious it is.
    pub severity: Severity,
    /// Stable machine-readable code, e.g. `cluster.too-few-masters` or
    /// `plugin.fuel-exhausted`.
    pub code: String,
    /// JSON pointer (RFC 6901) into the document it concerns; empty for the
    /// whole document.
    pub pointer: String,
    /// What is wrong, as a lowercase phrase.
    pub message: String,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Where in a file the pointed-at value came from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Who reported it: `None` for the host, the plugin's name otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Diagnostic {
    /// A new diagnostic with no hint, location or source.
    pub fn new(
        severity: Severity,
        code: impl Into<String>,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            code: code.into(),
            pointer: pointer.into(),
            message: message.into(),
            hint: None,
            location: None,
            source: None,
        }
    }

    /// An error.
    pub fn error(code: impl Into<String>, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, pointer, message)
    }

    /// A warning.
    pub fn warning(code: impl Into<String>, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, pointer, message)
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds the reporting plugin's name.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Adds a file location.
    pub fn with_location(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Renders like cargo: `error[code]: message` then `  --> file:line:col (pointer)`
/// and `  = hint: …`.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]: ", self.severity, self.code)?;
        // Plugin failures already name the plugin in their message.
        if let Some(source) = self.source.as_deref().filter(|s| !self.message.contains(&format!("`{s}`"))) {
            write!(f, "plugin `{source}`: ")?;
        }
        f.write_str(&self.message)?;
        match (&self.location, self.pointer.is_empty()) {
            (Some(loc), false) => write!(f, "\n  --> {loc} (`{}`)", self.pointer)?,
            (Some(loc), true) => write!(f, "\n  --> {loc}")?,
            (None, false) => write!(f, "\n  --> `{}`", self.pointer)?,
            (None, true) => {}
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  = hint: {hint}")?;
        }
        Ok(())
    }
}

//! Exit codes and the failure type every operation returns.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | ok |
//! | 1 | invalid: the template, the input or a plugin's verdict on it is wrong; fix the input |
//! | 2 | could not run: a plugin failed (trap, limit, bad output), a file could not be read, the tool broke |

use crate::plugin::PluginError;
use redplate_config::Diagnostic;

/// The documented exit codes, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExitStatus {
    /// Everything is fine.
    Ok = 0,
    /// The input is invalid.
    Invalid = 1,
    /// redplate could not do its job.
    CouldNotRun = 2,
}

/// As the number a process exits with.
impl serde::Serialize for ExitStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(*self as u8)
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s as u8)
    }
}

/// Why an operation did not succeed, with what to show the user.
#[derive(Debug)]
pub struct Failure {
    /// Which exit code this maps to.
    pub status: ExitStatus,
    /// What to show.
    pub diagnostics: Vec<Diagnostic>,
}

impl Failure {
    /// The input is invalid.
    pub fn invalid(diagnostics: Vec<Diagnostic>) -> Self {
        Failure { status: ExitStatus::Invalid, diagnostics }
    }

    /// The tool could not do its job.
    pub fn could_not_run(diagnostic: Diagnostic) -> Self {
        Failure { status: ExitStatus::CouldNotRun, diagnostics: vec![diagnostic] }
    }
}

impl Failure {
    /// A file or folder could not be written.
    pub fn write(path: &std::path::Path, error: std::io::Error) -> Self {
        Failure::could_not_run(Diagnostic::error(
            "output.write",
            "",
            format!("cannot write `{}`: {error}", path.display()),
        ))
    }
}

impl Failure {
    /// A worker thread panicked: a bug in redplate, shown as one — never a
    /// result that silently goes missing.
    pub fn panicked(what: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Failure::could_not_run(
            Diagnostic::error(
                "internal.panic",
                "",
                format!("{what} panicked: {}", crate::text::clean(&why, crate::text::MAX_MESSAGE_BYTES)),
            )
            .with_hint("this is a bug in redplate: please report it with the command you ran"),
        )
    }
}

impl Failure {
    /// An output folder was not written (see [`crate::artifact::OutputError`]).
    pub fn output(dir: &std::path::Path, error: crate::artifact::OutputError) -> Self {
        let mut d = Diagnostic::error("output.write", "", format!("cannot write `{}`: {error}", dir.display()));
        d.hint = error.hint().map(str::to_owned);
        Failure::could_not_run(d)
    }
}

impl From<PluginError> for Failure {
    fn from(e: PluginError) -> Self {
        Failure::could_not_run(e.to_diagnostic())
    }
}

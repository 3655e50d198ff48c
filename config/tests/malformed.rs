//! The malformed corpus: every `tests/malformed/*.yaml` is rejected (by the
//! loader or by a host rule) with a diagnostic whose code, JSON pointer,
//! line and message match its `.expected` sidecar.

use redplate_config::{Diagnostic, LoadRequest, load, validate};
use std::path::{Path, PathBuf};

struct Expected {
    code: String,
    pointer: String,
    line: Option<usize>,
    message: String,
}

fn expected(path: &Path) -> Expected {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    Expected {
        code: field("code"),
        pointer: field("pointer"),
        line: field("line").parse().ok(),
        message: field("message"),
    }
}

fn diagnostics(path: &Path) -> Vec<Diagnostic> {
    match load(&LoadRequest { path: Some(path.to_path_buf()), ..Default::default() }) {
        Err(e) => e.diagnostics(),
        Ok(r) => validate(&r).into_iter().filter(Diagnostic::is_error).collect(),
    }
}

#[test]
fn malformed_templates_get_pointed_errors() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/malformed");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "yaml")).collect()
        })
        .unwrap_or_default();
    files.sort();
    assert!(files.len() >= 50, "only {} malformed templates", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let exp = expected(&file.with_extension("expected"));
        let diags = diagnostics(file);
        let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let found = diags.iter().any(|d| {
            d.is_error()
                && d.code == exp.code
                && d.pointer == exp.pointer
                && (d.message.contains(&exp.message) || d.hint.as_deref().is_some_and(|h| h.contains(&exp.message)))
                && d.location
                    .as_ref()
                    .is_some_and(|l| exp.line.is_none_or(|line| l.line == line && l.file.ends_with(&name)))
        });
        if !found {
            let got: Vec<String> = diags.iter().map(ToString::to_string).collect();
            failures.push(format!(
                "{name}: expected {} at `{}` line {:?} ~ {:?}\n  got:\n{}",
                exp.code,
                exp.pointer,
                exp.line,
                exp.message,
                got.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} failed:\n{}", failures.len(), files.len(), failures.join("\n\n"));
}

#[test]
fn every_invalid_value_of_a_file_is_reported_with_its_line() {
    // Values only deserialization can judge (sizes, durations, percentages):
    // one bad value must not hide the next.
    let text = "extends: production\nresources:\n  memory: 4xb\nsentinel:\n  down_after: 10q\nmemory:\n  maxmemory: 200%\nbackup:\n  timeout: soon\n";
    let err = redplate_config::load_str(text, redplate_config::Format::Yaml, "bad.yaml", None, &[])
        .expect_err("four invalid values");
    let got: Vec<(String, String, Option<usize>)> = err
        .diagnostics()
        .into_iter()
        .map(|d| (d.code, d.pointer, d.location.filter(|l| l.file == "bad.yaml").map(|l| l.line)))
        .collect();
    let want =
        [("/resources/memory", 3), ("/sentinel/down_after", 5), ("/memory/maxmemory", 7), ("/backup/timeout", 9)];
    let want: Vec<(String, String, Option<usize>)> =
        want.iter().map(|(p, l)| ("template.invalid-value".to_owned(), (*p).to_owned(), Some(*l))).collect();
    assert_eq!(got, want);
}

//! How results look on the terminal (human) or to scripts (JSON).

use super::Format;
use crate::ops::plugins::{Inspection, Listed, TestReport};
use crate::plugin::{CacheOutcome, CallReport};
use redplate_config::Diagnostic;

/// Writes to stdout; a closed pipe (`redplate … | head`) ends the process
/// quietly instead of panicking, as other Unix tools do.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(2);
    }
}

/// `print!` that survives a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::print::write_out(format_args!($($arg)*)) };
}

/// `println!` that survives a closed pipe.
macro_rules! outln {
    () => { $crate::cli::print::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::print::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};

/// JSON on stdout. serde escapes C0 controls itself; C1 controls and
/// bidirectional overrides are escaped by the types that carry outside text
/// (diagnostics via [`cleaned`], plugin logs and info at the boundary).
pub fn json<T: serde::Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => outln!("{text}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

/// Diagnostics go to stderr, errors and warnings always, notes unless quiet.
/// Their text is made safe on the way out: a template's or a Redis reply's
/// words can carry control characters as well as a plugin's can.
pub fn diagnostics(ds: &[Diagnostic], quiet: bool) {
    for d in ds {
        if quiet && d.severity == redplate_config::Severity::Info {
            continue;
        }
        eprintln!("{}", cleaned(d));
    }
}

/// A copy of `d` that is safe to print (see [`crate::text`]).
pub fn cleaned(d: &Diagnostic) -> Diagnostic {
    let mut d = d.clone();
    crate::text::clean_diagnostic(&mut d, true);
    d
}

pub fn plugin_list(rows: &[Listed], format: Format) {
    if format == Format::Json {
        return json(&rows);
    }
    let width = rows.iter().map(|r| r.info.name.len()).max().unwrap_or(4).max(4);
    outln!("{:width$}  {:8}  {:14}  {:8}  DESCRIPTION", "NAME", "VERSION", "KIND", "SOURCE");
    for r in rows {
        let source = match &r.source {
            crate::plugin::PluginSource::Builtin => "built-in".to_owned(),
            crate::plugin::PluginSource::File(p) => p.display().to_string(),
        };
        outln!(
            "{:width$}  {:8}  {:14}  {:8}  {}",
            r.info.name,
            r.info.version,
            r.info.kind.to_string(),
            source,
            r.info.description
        );
    }
}

pub fn inspection(i: &Inspection, format: Format) {
    if format == Format::Json {
        return json(i);
    }
    outln!("name:        {}", i.info.name);
    outln!("version:     {}", i.info.version);
    outln!("kind:        {}", i.info.kind);
    outln!("contract:    redplate:plugin@{}", i.info.contract_version);
    outln!("description: {}", i.info.description);
    outln!("outputs:     {}", i.info.outputs.join(", "));
    match &i.source {
        crate::plugin::PluginSource::Builtin => outln!("source:      built-in"),
        crate::plugin::PluginSource::File(p) => outln!("source:      {}", p.display()),
    }
    outln!("size:        {} bytes", i.size_bytes);
    outln!("sha256:      {}", i.sha256);
    outln!("exports:     {}", i.exports.join(", "));
    outln!("imports:     {}", i.imports.join(", "));
    outln!("code cache:  {} ({} µs)", cache(&i.cache), i.load_micros);
}

fn cache(c: &CacheOutcome) -> String {
    match c {
        CacheOutcome::Disabled => "disabled".into(),
        CacheOutcome::Hit => "loaded from cache".into(),
        CacheOutcome::Miss => "compiled and cached".into(),
        CacheOutcome::Recovered(why) => format!("recompiled: {why}"),
        CacheOutcome::StoreFailed(why) => format!("compiled, not cached: {why}"),
    }
}

fn run_line(n: usize, r: &CallReport) -> String {
    format!(
        "run {n}: fuel {} units, peak memory {:.1} MiB, output {} bytes, wall {:.2} ms",
        r.fuel_used,
        r.peak_memory_bytes as f64 / (1024.0 * 1024.0),
        r.output_bytes,
        r.wall.as_secs_f64() * 1000.0
    )
}

pub fn test_report(t: &TestReport, format: Format) {
    if format == Format::Json {
        return json(t);
    }
    outln!(
        "plugin {} {} ({}, contract {}), code cache: {}",
        t.plugin.name,
        t.plugin.version,
        t.plugin.kind,
        t.plugin.contract_version,
        cache(&t.cache)
    );
    // `validate` and `generate` often report the same finding: show it once.
    let mut shown: Vec<&Diagnostic> = Vec::new();
    for d in t.validate.iter().chain(&t.diagnostics) {
        if !shown.contains(&d) {
            outln!("{}", cleaned(d));
            shown.push(d);
        }
    }
    if let Some(plan) = &t.plan {
        for d in &plan.directives {
            outln!("directive {} {}  ({})", d.name, d.value, d.reason);
        }
        for r in &plan.key_rules {
            outln!("key rule {}: ttl {:?} ms, jitter {}%, {:?}", r.pattern, r.ttl_ms, r.jitter_percent, r.write_mode);
        }
    }
    for a in &t.artifacts {
        outln!(
            "artifact {} ({} bytes, {}{})",
            a.path,
            a.bytes,
            a.media_type,
            if a.executable { ", executable" } else { "" }
        );
    }
    for (i, r) in t.runs.iter().enumerate() {
        outln!("{}", run_line(i + 1, r));
    }
    if let Some(r) = t.runs.first() {
        for l in &r.logs {
            outln!("log [{}] {}", l.level, l.message);
        }
        if r.logs_dropped > 0 {
            outln!("log: {} more lines dropped past the log cap", r.logs_dropped);
        }
    }
    let verdict = match (t.refused, t.deterministic) {
        (true, _) => "FAIL: the plugin refused the input",
        (false, false) => "FAIL: the two runs gave different results (the plugin is not deterministic)",
        (false, true) => "ok: both runs gave byte-identical results",
    };
    outln!("{verdict}");
}

pub fn validation(v: &crate::ops::config::Validation, template: &std::path::Path, format: Format, quiet: bool) {
    if format == Format::Json {
        let diagnostics: Vec<Diagnostic> = v.diagnostics.iter().map(cleaned).collect();
        return json(&crate::ops::config::Validation { valid: v.valid, diagnostics });
    }
    diagnostics(&v.diagnostics, quiet);
    let errors = v.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = v.diagnostics.iter().filter(|d| d.severity == redplate_config::Severity::Warning).count();
    let (errors, warnings) = (count(errors, "error"), count(warnings, "warning"));
    if v.valid {
        eprintln!("{} is valid ({warnings})", template.display());
    } else {
        eprintln!("{} is invalid: {errors}, {warnings}", template.display());
    }
}

/// "1 warning", "2 warnings".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `--timings`: each phase's wall time, then each plugin call's, on stderr.
pub struct Timings {
    enabled: bool,
    started: std::time::Instant,
    last: std::time::Instant,
}

impl Timings {
    pub fn new(enabled: bool) -> Self {
        let now = std::time::Instant::now();
        Timings { enabled, started: now, last: now }
    }

    /// The phase `what` just ended.
    pub fn lap(&mut self, what: &str) {
        let now = std::time::Instant::now();
        if self.enabled {
            eprintln!("{:>9.2} ms  {what}", (now - self.last).as_secs_f64() * 1000.0);
        }
        self.last = now;
    }

    /// Each plugin call of a render (they may have run in parallel).
    pub fn calls(&self, reports: &[(String, redplate_config::Target, CallReport)]) {
        if !self.enabled {
            return;
        }
        for (plugin, target, r) in reports {
            eprintln!(
                "{:>9.2} ms    {plugin} ({}): {} fuel, {:.1} MiB peak memory, {} bytes out",
                r.wall.as_secs_f64() * 1000.0,
                crate::ops::render::target_name(*target),
                r.fuel_used,
                r.peak_memory_bytes as f64 / (1024.0 * 1024.0),
                r.output_bytes
            );
        }
    }

    /// The whole command, since the start of the clock.
    pub fn total(&self) {
        if self.enabled {
            eprintln!("{:>9.2} ms  total", self.started.elapsed().as_secs_f64() * 1000.0);
        }
    }
}

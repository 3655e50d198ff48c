//! Turning a failed call into the [`PluginError`] that names its cause, and
//! collecting what a call logged.

use super::sandbox::{LogLine, State};
use super::{Limits, PluginError, PluginInfo};
use wasmtime::Trap;

/// Names a failed call after the limit or fault that ended it.
pub(super) fn classify(
    plugin: &str,
    call: &'static str,
    limits: &Limits,
    error: Option<wasmtime::Error>,
    state: State,
) -> PluginError {
    let plugin = plugin.to_owned();
    if state.render_overflow {
        return PluginError::RenderTooLarge { plugin, call, cap: crate::templates::DEFAULT_RENDER_CAP };
    }
    if state.limiter.cap_hit {
        return PluginError::MemoryCap { plugin, call, cap: limits.memory_bytes };
    }
    let Some(error) = error else {
        return PluginError::Trap { plugin, call, message: "unknown failure".into() };
    };
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return PluginError::FuelExhausted { plugin, call, budget: limits.fuel },
        Some(Trap::Interrupt) => return PluginError::Deadline { plugin, call, timeout: limits.timeout },
        _ => {}
    }
    // A full stdio pipe makes the guest's print fail, which surfaces as a
    // trap or a panic; name the flood rather than its symptom.
    let near_full = |len: usize| len + 4096 >= limits.max_stdio_bytes;
    if near_full(state.stdout.contents().len()) {
        return PluginError::OutputFlood { plugin, call, stream: "stdout", cap: limits.max_stdio_bytes };
    }
    if near_full(state.stderr.contents().len()) {
        return PluginError::OutputFlood { plugin, call, stream: "stderr", cap: limits.max_stdio_bytes };
    }
    let stderr = String::from_utf8_lossy(&state.stderr.contents()).into_owned();
    if let Some(message) = panic_message(&stderr) {
        return PluginError::Panic { plugin, call, message };
    }
    let message = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    PluginError::Trap { plugin, call, message }
}

/// The message of a Rust panic as printed to stderr by the guest's std.
fn panic_message(stderr: &str) -> Option<String> {
    let at = stderr.find("panicked at")?;
    let rest = &stderr[at..];
    let message: Vec<&str> = rest.lines().skip(1).take_while(|l| !l.starts_with("note: ")).collect();
    let mut message = message.join(" ").trim().to_owned();
    if message.is_empty() {
        message = rest.lines().next().unwrap_or_default().to_owned();
    }
    message.truncate(500);
    Some(message)
}

pub(super) fn collect_logs(mut state: State) -> Vec<LogLine> {
    let mut logs = std::mem::take(&mut state.logs);
    for (pipe, level) in
        [(&state.stdout, redplate_config::Severity::Info), (&state.stderr, redplate_config::Severity::Warning)]
    {
        let text = pipe.contents();
        for line in String::from_utf8_lossy(&text).lines().filter(|l| !l.trim().is_empty()) {
            logs.push(LogLine { level, message: crate::text::clean(line, crate::text::MAX_MESSAGE_BYTES) });
        }
    }
    logs
}

pub(super) fn check_info(label: &str, info: &PluginInfo, contract_version: &str) -> Result<(), PluginError> {
    let bad = |reason: String| Err(PluginError::BadInfo { plugin: label.to_owned(), reason });
    let valid_name = !info.name.is_empty()
        && info.name.len() <= 64
        && info.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !info.name.starts_with('-');
    if !valid_name {
        return bad(format!(
            "its name `{}` is not kebab-case ASCII of at most 64 characters",
            info.name.escape_debug()
        ));
    }
    if info.version.is_empty() {
        return bad("its version is empty".into());
    }
    if info.contract_version != contract_version {
        return bad(format!(
            "it says it targets contract {} but exports contract {contract_version}",
            info.contract_version
        ));
    }
    Ok(())
}

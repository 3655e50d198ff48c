//! Text from outside (plugins, templates, Redis replies, files on disk) made
//! safe to show: control characters escaped — so a hostile plugin cannot
//! clear the screen, set the terminal title or overwrite a line with `\r` —
//! and each message capped in length. Applied where such text enters the
//! host and again where it leaves for a terminal or a log.

/// The longest message kept, in bytes; longer ones are cut at a character
/// boundary and say how much was dropped.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Whether `c` would be interpreted by a terminal rather than shown: C0 and
/// C1 controls, DEL, and the bidirectional overrides and isolates that make
/// text display in another order than it is read (CVE-2021-42574).
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// `text` with every unsafe character escaped (`\u{1b}`), cut to `max`
/// bytes. Tabs survive; newlines are escaped too, so one message stays one
/// line (use [`clean_lines`] where line breaks are meant).
pub fn clean(text: &str, max: usize) -> String {
    clean_with(text, max, |c| c != '\t' && is_unsafe(c))
}

/// Like [`clean`], but keeps `\n` (for multi-line text such as a log's tail).
pub fn clean_lines(text: &str, max: usize) -> String {
    clean_with(text, max, |c| c != '\t' && c != '\n' && is_unsafe(c))
}

fn clean_with(text: &str, max: usize, escape: impl Fn(char) -> bool) -> String {
    if text.len() <= max && !text.chars().any(&escape) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len().min(max) + 16);
    for (i, c) in text.char_indices() {
        if out.len() >= max {
            out.push_str(&format!("… ({} more bytes)", text.len() - i));
            break;
        }
        if escape(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A diagnostic with every text field cleaned (codes and pointers included:
/// a plugin chooses them too). With `keep_lines`, line breaks in the
/// message and hint survive (the host's own multi-line messages); text from
/// a plugin is cleaned without, so it cannot print a line of its own.
pub fn clean_diagnostic(d: &mut redplate_config::Diagnostic, keep_lines: bool) {
    let text = |t: &str| if keep_lines { clean_lines(t, MAX_MESSAGE_BYTES) } else { clean(t, MAX_MESSAGE_BYTES) };
    d.code = clean(&d.code, 128);
    d.pointer = clean(&d.pointer, 512);
    d.message = text(&d.message);
    if let Some(hint) = &mut d.hint {
        *hint = text(hint);
    }
    if let Some(source) = &mut d.source {
        *source = clean(source, 128);
    }
    if let Some(location) = &mut d.location {
        location.file = clean(&location.file, 1024);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_carriage_returns_are_shown_not_obeyed() {
        let hostile = "\x1b[2J\x1b]0;pwned\x07\rall good\u{9b}31m\u{202e}txt.exe";
        let shown = clean(hostile, MAX_MESSAGE_BYTES);
        assert!(!shown.chars().any(is_unsafe), "{shown:?}");
        assert!(shown.contains("\\u{1b}[2J") && shown.contains("\\u{d}all good") && shown.contains("\\u{202e}"));
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary_and_says_so() {
        let long = "é".repeat(10_000);
        let shown = clean(&long, 100);
        assert!(shown.len() < 140, "{}", shown.len());
        assert!(shown.ends_with("more bytes)"), "{shown}");
    }

    #[test]
    fn plain_text_and_tabs_pass_unchanged_and_lines_keep_their_breaks_when_asked() {
        assert_eq!(clean("a\tb `c`", 100), "a\tb `c`");
        assert_eq!(clean("a\nb", 100), "a\\u{a}b");
        assert_eq!(clean_lines("a\nb\x1b", 100), "a\nb\\u{1b}");
    }
}

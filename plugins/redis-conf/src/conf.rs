//! Config-file building blocks shared by `redis.conf` and `sentinel.conf`:
//! directives grouped in titled sections, Redis's argument quoting, and the
//! JSON handed to the Handlebars templates.

use serde_json::Value;
use std::borrow::Cow;
use std::fmt::{Display, Write as _};

/// One line: a directive name and its arguments, quoted for Redis and
/// joined by spaces (names are mostly literals: no allocation for them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: Cow<'static, str>,
    /// The arguments as written after the name (quoted, space-separated).
    pub value: String,
}

impl Directive {
    /// `name` with `args` (unquoted).
    pub fn new<I, S>(name: impl Into<Cow<'static, str>>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut value = String::new();
        for (i, a) in args.into_iter().enumerate() {
            if i > 0 {
                value.push(' ');
            }
            push_quoted(&mut value, a.as_ref());
        }
        Directive { name: name.into(), value }
    }

    /// The line as Redis reads it (`sdssplitargs`): arguments quoted when needed.
    pub fn line(&self) -> String {
        let mut s = String::with_capacity(self.name.len() + 1 + self.value.len());
        self.write_line(&mut s);
        s
    }

    /// Appends [`Directive::line`] to `out`.
    pub fn write_line(&self, out: &mut String) {
        out.push_str(&self.name);
        if !self.value.is_empty() {
            out.push(' ');
            out.push_str(&self.value);
        }
    }
}

/// A titled group of directives.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub title: &'static str,
    pub directives: Vec<Directive>,
}

impl Section {
    pub fn new(title: &'static str) -> Self {
        Section { title, directives: Vec::new() }
    }

    /// Adds `name args...`.
    pub fn args<I, S>(&mut self, name: impl Into<Cow<'static, str>>, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.directives.push(Directive::new(name, args));
        self
    }

    /// Adds `name value`.
    pub fn set(&mut self, name: impl Into<Cow<'static, str>>, value: impl Display) -> &mut Self {
        let mut text = String::new();
        let _ = write!(text, "{value}");
        let value = if is_plain(&text) { text } else { quote(&text) };
        self.directives.push(Directive { name: name.into(), value });
        self
    }

    /// Adds `name value` when the value is known (absent: Redis's default).
    pub fn opt(&mut self, name: impl Into<Cow<'static, str>>, value: Option<impl Display>) -> &mut Self {
        if let Some(v) = value {
            self.set(name, v);
        }
        self
    }

    /// Adds `name yes|no` when known.
    pub fn flag(&mut self, name: impl Into<Cow<'static, str>>, value: Option<bool>) -> &mut Self {
        if let Some(v) = value {
            self.directives.push(Directive { name: name.into(), value: yes_no(v).to_owned() });
        }
        self
    }
}

pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Replaces every directive named like one of `overrides` in place, and
/// appends the others to a final section titled `title`. A directive is
/// never written twice.
pub fn apply_overrides(sections: &mut Vec<Section>, overrides: &[Directive], title: &'static str) {
    let mut extra = Section::new(title);
    for o in overrides {
        let mut found = false;
        for s in sections.iter_mut() {
            s.directives.retain_mut(|d| {
                if d.name != o.name {
                    return true;
                }
                let keep = !found;
                if keep {
                    d.value.clone_from(&o.value);
                }
                found = true;
                keep
            });
        }
        if !found {
            match extra.directives.iter_mut().find(|d| d.name == o.name) {
                Some(d) => d.value.clone_from(&o.value),
                None => extra.directives.push(o.clone()),
            }
        }
    }
    if !extra.directives.is_empty() {
        sections.push(extra);
    }
}

/// The JSON a config template renders: sections of `{name, value, line}`.
pub fn sections_json(sections: &[Section]) -> Value {
    serde_json::to_value(sections_view(sections)).unwrap_or(Value::Null)
}

/// One section as the templates see it.
#[derive(serde::Serialize)]
pub struct SectionView<'a> {
    pub title: &'static str,
    pub directives: Vec<DirectiveView<'a>>,
}

/// One directive as the templates see it.
#[derive(serde::Serialize)]
pub struct DirectiveView<'a> {
    pub name: &'a str,
    pub value: String,
    pub line: String,
}

/// The template data for `sections`, serialized straight to JSON (building
/// a `serde_json::Value` first cost most of a render's instructions).
pub fn sections_view(sections: &[Section]) -> Vec<SectionView<'_>> {
    sections
        .iter()
        .filter(|s| !s.directives.is_empty())
        .map(|s| SectionView {
            title: s.title,
            directives: s
                .directives
                .iter()
                .map(|d| DirectiveView { name: &d.name, value: d.value.clone(), line: d.line() })
                .collect(),
        })
        .collect()
}

/// The layout of the `redis.conf` and `sentinel.conf` templates, natively:
/// `header`, then each non-empty section as a blank line, `# title` and
/// one directive per line.
pub fn layout(header: String, sections: &[Section]) -> String {
    let mut out = header;
    out.reserve(sections.iter().map(|s| 16 + s.directives.len() * 40).sum());
    for s in sections.iter().filter(|s| !s.directives.is_empty()) {
        out.push_str("\n# ");
        out.push_str(s.title);
        out.push('\n');
        for d in &s.directives {
            d.write_line(&mut out);
            out.push('\n');
        }
    }
    out
}

/// Quotes an argument for Redis's config parser when it is empty or holds
/// spaces, quotes, backslashes or control characters.
pub fn quote(arg: &str) -> String {
    let mut s = String::with_capacity(arg.len() + 2);
    push_quoted(&mut s, arg);
    s
}

/// Whether `arg` needs no quoting.
fn is_plain(arg: &str) -> bool {
    !arg.is_empty() && arg.bytes().all(|c| c.is_ascii_graphic() && !matches!(c, b'"' | b'\'' | b'\\'))
}

/// Appends [`quote`]`(arg)` to `s`.
fn push_quoted(s: &mut String, arg: &str) {
    if is_plain(arg) {
        s.push_str(arg);
        return;
    }
    s.push('"');
    for c in arg.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    s.push_str(&format!("\\x{b:02x}"));
                }
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_sdssplitargs() {
        assert_eq!(quote("yes"), "yes");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("p\"w\\d"), "\"p\\\"w\\\\d\"");
        assert_eq!(quote("x\ny"), "\"x\\ny\"");
    }

    #[test]
    fn overrides_replace_in_place_and_never_duplicate() {
        let mut a = Section::new("memory");
        a.set("maxmemory-policy", "noeviction").set("maxmemory", 10);
        let mut sections = vec![a];
        let o = |n: &'static str, v: &str| Directive::new(n, [v]);
        apply_overrides(
            &mut sections,
            &[
                o("maxmemory-policy", "allkeys-lru"),
                o("notify-keyspace-events", "Ex"),
                o("notify-keyspace-events", "Kx"),
            ],
            "strategy",
        );
        let lines: Vec<String> = sections.iter().flat_map(|s| s.directives.iter().map(Directive::line)).collect();
        assert_eq!(lines, ["maxmemory-policy allkeys-lru", "maxmemory 10", "notify-keyspace-events Kx"]);
    }
}

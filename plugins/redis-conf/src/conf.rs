//! Config-file building blocks shared by `redis.conf` and `sentinel.conf`:
//! directives grouped in titled sections, Redis's argument quoting, and the
//! JSON handed to the Handlebars templates.

use serde_json::Value;
use std::fmt::Display;

/// One line: a directive name and its arguments (unquoted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
}

impl Directive {
    /// The line as Redis reads it (`sdssplitargs`): arguments quoted when needed.
    pub fn line(&self) -> String {
        let mut s = self.name.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(&quote(a));
        }
        s
    }
}

/// A titled group of directives.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub title: String,
    pub directives: Vec<Directive>,
}

impl Section {
    pub fn new(title: &str) -> Self {
        Section { title: title.to_owned(), directives: Vec::new() }
    }

    /// Adds `name args...`.
    pub fn args<I, S>(&mut self, name: &str, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.directives.push(Directive { name: name.to_owned(), args: args.into_iter().map(Into::into).collect() });
        self
    }

    /// Adds `name value`.
    pub fn set(&mut self, name: &str, value: impl Display) -> &mut Self {
        self.args(name, [value.to_string()])
    }

    /// Adds `name value` when the value is known (absent: Redis's default).
    pub fn opt(&mut self, name: &str, value: Option<impl Display>) -> &mut Self {
        if let Some(v) = value {
            self.set(name, v);
        }
        self
    }

    /// Adds `name yes|no` when known.
    pub fn flag(&mut self, name: &str, value: Option<bool>) -> &mut Self {
        self.opt(name, value.map(yes_no))
    }
}

pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Replaces every directive named like one of `overrides` in place, and
/// appends the others to a final section titled `title`. A directive is
/// never written twice.
pub fn apply_overrides(sections: &mut Vec<Section>, overrides: &[Directive], title: &str) {
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
                    d.args.clone_from(&o.args);
                }
                found = true;
                keep
            });
        }
        if !found {
            match extra.directives.iter_mut().find(|d| d.name == o.name) {
                Some(d) => d.args.clone_from(&o.args),
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
    pub title: &'a str,
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
            title: &s.title,
            directives: s
                .directives
                .iter()
                .map(|d| {
                    let value: Vec<String> = d.args.iter().map(|a| quote(a)).collect();
                    DirectiveView { name: &d.name, value: value.join(" "), line: d.line() }
                })
                .collect(),
        })
        .collect()
}

/// Quotes an argument for Redis's config parser when it is empty or holds
/// spaces, quotes, backslashes or control characters.
pub fn quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '\\'));
    if plain {
        return arg.to_owned();
    }
    let mut s = String::with_capacity(arg.len() + 2);
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
    s
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
        let o = |n: &str, v: &str| Directive { name: n.into(), args: vec![v.into()] };
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

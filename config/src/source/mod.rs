//! Parsing YAML, JSON and TOML into one JSON-like tree that remembers where
//! every value came from: a `serde_json::Value` plus a JSON pointer →
//! [`Location`] map. Parsing is iterative and bounded (depth, node count), so
//! no input can exhaust the stack or memory.

use crate::diagnostic::{Diagnostic, Location};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

mod toml;
mod yaml;

use self::toml::parse_toml;
use self::yaml::parse_yaml;
#[cfg(test)]
use self::yaml::plain_scalar;

/// Deepest nesting accepted in a template.
pub const MAX_DEPTH: usize = 64;
/// Most values (after alias expansion) accepted in a template.
pub const MAX_NODES: usize = 200_000;
/// Largest template accepted, in bytes.
pub const MAX_INPUT: usize = 4 * 1024 * 1024;

/// The input format of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML 1.2 (the primary format).
    Yaml,
    /// JSON.
    Json,
    /// TOML.
    Toml,
}

impl Format {
    /// Guesses the format from a file name's extension (YAML by default).
    pub fn from_path(path: &str) -> Format {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".json") {
            Format::Json
        } else if lower.ends_with(".toml") {
            Format::Toml
        } else {
            Format::Yaml
        }
    }
}

/// JSON pointer → where the value (or its key) was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceMap {
    entries: BTreeMap<String, Location>,
}

impl SourceMap {
    /// Records a location.
    pub fn insert(&mut self, pointer: String, location: Location) {
        self.entries.insert(pointer, location);
    }

    /// The location recorded for exactly this pointer.
    pub fn get(&self, pointer: &str) -> Option<&Location> {
        self.entries.get(pointer)
    }

    /// The location of this pointer or of its nearest recorded ancestor.
    pub fn locate(&self, pointer: &str) -> Option<&Location> {
        let mut p = pointer;
        loop {
            if let Some(loc) = self.entries.get(p) {
                return Some(loc);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }

    /// Forgets everything strictly below `pointer`.
    pub fn remove_below(&mut self, pointer: &str) {
        let prefix = format!("{pointer}/");
        let doomed: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.entries.remove(&k);
        }
    }

    /// Adds (and overrides with) every entry of `other`.
    pub fn extend(&mut self, other: SourceMap) {
        self.entries.extend(other.entries);
    }

    /// Every entry, in pointer order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Location)> {
        self.entries.iter()
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A parsed document: its value and where each part came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tree {
    /// The document as JSON.
    pub value: Value,
    /// Pointer → location.
    pub sources: SourceMap,
}

/// Appends one RFC 6901 reference token to a pointer.
pub fn child_pointer(parent: &str, token: &str) -> String {
    let mut p = String::with_capacity(parent.len() + token.len() + 1);
    p.push_str(parent);
    p.push('/');
    for c in token.chars() {
        match c {
            '~' => p.push_str("~0"),
            '/' => p.push_str("~1"),
            c => p.push(c),
        }
    }
    p
}

pub(crate) fn syntax_error(file: &str, line: usize, column: usize, message: String) -> Diagnostic {
    Diagnostic::error("template.syntax", "", message)
        .with_hint("fix the syntax at this position; templates are YAML, JSON or TOML")
        .with_location(Location { file: file.to_string(), line, column })
}

/// Parses a template in the given format. `file` names it in locations.
pub fn parse(text: &str, format: Format, file: &str) -> Result<Tree, Diagnostic> {
    if text.len() > MAX_INPUT {
        return Err(syntax_error(file, 1, 1, format!("the template is larger than {} bytes", MAX_INPUT)));
    }
    let tree = match format {
        Format::Yaml => parse_yaml(text, file)?,
        Format::Json => parse_json(text, file)?,
        Format::Toml => parse_toml(text, file)?,
    };
    match tree.value {
        Value::Object(_) => Ok(tree),
        Value::Null => Ok(Tree { value: Value::Object(Map::new()), sources: tree.sources }),
        ref other => Err(Diagnostic::error(
            "template.not-a-mapping",
            "",
            format!("the template must be a mapping of sections, found {}", kind_name(other)),
        )
        .with_hint("start the file with a section such as `deployment:`")
        .with_location(Location { file: file.to_string(), line: 1, column: 1 })),
    }
}

/// The JSON type name of a value, for messages.
pub fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses a single YAML value (used by `--set`), e.g. `512mb`, `true`, `[a, b]`.
pub fn parse_yaml_value(text: &str, file: &str) -> Result<Value, Diagnostic> {
    Ok(parse_yaml(text, file)?.value)
}

fn parse_json(text: &str, file: &str) -> Result<Tree, Diagnostic> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| syntax_error(file, e.line().max(1), e.column().max(1), format!("invalid JSON: {e}")))?;
    // JSON is YAML 1.2: reuse the YAML parser for positions when it agrees.
    let sources = match parse_yaml(text, file) {
        Ok(tree) if tree.value == value => tree.sources,
        _ => {
            let mut m = SourceMap::default();
            m.insert(String::new(), Location { file: file.to_string(), line: 1, column: 1 });
            m
        }
    };
    Ok(Tree { value, sources })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_positions() {
        let t = parse("deployment:\n  name: x\n  mode: cluster\nlist:\n  - 1\n  - two\n", Format::Yaml, "t.yaml")
            .map_err(|d| d.to_string());
        let t = t.unwrap_or_default();
        assert_eq!(t.value["deployment"]["mode"], "cluster");
        let l = t.sources.get("/deployment/mode").cloned();
        assert_eq!(l.map(|l| (l.line, l.column)), Some((3, 3)));
        let l = t.sources.get("/list/1").cloned();
        assert_eq!(l.map(|l| (l.line, l.column)), Some((6, 5)));
    }

    #[test]
    fn scalars_follow_yaml_12() {
        assert_eq!(plain_scalar("yes"), Value::String("yes".into()));
        assert_eq!(plain_scalar("12"), Value::from(12u64));
        assert_eq!(plain_scalar("-3"), Value::from(-3i64));
        assert_eq!(plain_scalar("1.5"), Value::from(1.5));
        assert_eq!(plain_scalar("~"), Value::Null);
        assert_eq!(plain_scalar("512mb"), Value::String("512mb".into()));
    }

    #[test]
    fn errors_are_positioned() {
        let e = parse("a:\n  b: [1, 2\n", Format::Yaml, "t.yaml").err();
        assert!(e.is_some_and(|d| d.location.is_some_and(|l| l.line >= 2)));
        let e = parse("a:\n  b: 1\na: 2\n", Format::Yaml, "t.yaml").err();
        assert!(e.is_some_and(|d| d.message.contains("duplicate key `a`")));
    }

    /// The message a parse fails with (`None` when it parses).
    fn refusal(text: &str, format: Format) -> Option<String> {
        parse(text, format, "t").err().map(|d| d.message)
    }

    #[test]
    fn depth_and_aliases_are_bounded() {
        let too_deep = format!("the template nests deeper than {MAX_DEPTH} levels");
        // Well-formed flow nesting: accepted within the limit, refused past it for its depth.
        let flow = |n: usize| format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        assert_eq!(refusal(&flow(MAX_DEPTH - 2), Format::Yaml), None);
        assert_eq!(refusal(&flow(MAX_DEPTH + 1), Format::Yaml).as_deref(), Some(too_deep.as_str()));
        // Far past it the YAML scanner's own recursion limit may answer first.
        assert!(refusal(&flow(10_000), Format::Yaml).is_some());
        // Block mappings, each level indented under the last.
        let block = |n: usize| {
            let mut t: String = (0..n).map(|i| format!("{}k:\n", "  ".repeat(i))).collect();
            t.push_str(&format!("{}k: v\n", "  ".repeat(n)));
            t
        };
        assert_eq!(refusal(&block(MAX_DEPTH - 2), Format::Yaml), None);
        assert_eq!(refusal(&block(MAX_DEPTH + 1), Format::Yaml).as_deref(), Some(too_deep.as_str()));
        // TOML tables nest the same way.
        let toml = format!("[{}]\nv = 1\n", vec!["k"; MAX_DEPTH + 2].join("."));
        assert_eq!(refusal(&toml, Format::Toml).as_deref(), Some(too_deep.as_str()));

        // An alias bomb: ten levels of ten aliases to the level below, 10^10
        // values once expanded, in 700 bytes. Refused by the value count.
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..10 {
            let prev = if i == 0 { "a".to_string() } else { format!("l{}", i - 1) };
            let items = vec![format!("*{prev}"); 10].join(", ");
            bomb.push_str(&format!("l{i}: &l{i} [{items}]\n"));
        }
        assert!(bomb.len() < 1000, "{}", bomb.len());
        let too_many = format!("the template has more than {MAX_NODES} values");
        assert_eq!(refusal(&bomb, Format::Yaml).as_deref(), Some(too_many.as_str()));
        // The same shape, two levels deep (1,110 values), is fine: aliases
        // are expanded, not refused.
        let small: String = bomb.lines().take(3).map(|l| format!("{l}\n")).collect();
        let t = parse(&small, Format::Yaml, "t").map_err(|d| d.message);
        assert_eq!(t.map(|t| t.value["l1"][9][9][9].clone()), Ok(Value::String("x".into())));
    }

    #[test]
    fn toml_and_json() {
        let t =
            parse("[deployment]\nname = \"x\"\n[cluster]\nshards = 3\n", Format::Toml, "t.toml").unwrap_or_default();
        assert_eq!(t.value["cluster"]["shards"], 3);
        assert_eq!(t.sources.get("/cluster/shards").map(|l| l.line), Some(4));
        let t = parse("{\n \"cluster\": {\"shards\": 3}\n}", Format::Json, "t.json").unwrap_or_default();
        assert_eq!(t.sources.get("/cluster/shards").map(|l| l.line), Some(2));
    }
}

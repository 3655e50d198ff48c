//! Parsing YAML, JSON and TOML into one JSON-like tree that remembers where
//! every value came from: a `serde_json::Value` plus a JSON pointer →
//! [`Location`] map. Parsing is iterative and bounded (depth, node count), so
//! no input can exhaust the stack or memory.

use crate::diagnostic::{Diagnostic, Location};
use serde_json::{Map, Number, Value};
use std::collections::{BTreeMap, HashMap};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

fn syntax_error(file: &str, line: usize, column: usize, message: String) -> Diagnostic {
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

enum Frame {
    Map { map: Map<String, Value>, pointer: String, key: Option<String> },
    Seq { seq: Vec<Value>, pointer: String },
}

struct Builder<'a> {
    file: &'a str,
    stack: Vec<Frame>,
    root: Option<Value>,
    sources: SourceMap,
    anchors: HashMap<usize, (Value, usize)>,
    anchor_of_frame: Vec<usize>,
    nodes: usize,
    documents: usize,
    error: Option<Diagnostic>,
}

impl Builder<'_> {
    fn loc(&self, m: Marker) -> Location {
        Location { file: self.file.to_string(), line: m.line().max(1), column: m.col() + 1 }
    }

    fn fail(&mut self, m: Marker, msg: String) {
        if self.error.is_none() {
            self.error = Some(syntax_error(self.file, m.line().max(1), m.col() + 1, msg));
        }
    }

    /// The pointer the next value will get, or `None` if the next scalar is a key.
    fn next_pointer(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Map { key: Some(k), pointer, .. }) => Some(child_pointer(pointer, k)),
            Some(Frame::Seq { seq, pointer }) => Some(child_pointer(pointer, &seq.len().to_string())),
        }
    }

    fn count(&mut self, n: usize, m: Marker) -> bool {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            self.fail(m, format!("the template has more than {MAX_NODES} values"));
            return false;
        }
        true
    }

    fn put(&mut self, value: Value, m: Marker) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { seq, .. }) => seq.push(value),
            Some(Frame::Map { map, key, .. }) => {
                if let Some(k) = key.take() {
                    map.insert(k, value);
                } else {
                    self.fail(m, "a mapping key must be a plain string".into());
                }
            }
        }
    }

    fn start(&mut self, frame_is_map: bool, anchor: usize, m: Marker) {
        let Some(pointer) = self.next_pointer() else {
            self.fail(m, "a mapping or list cannot be used as a mapping key".into());
            return;
        };
        if self.stack.len() >= MAX_DEPTH {
            self.fail(m, format!("the template nests deeper than {MAX_DEPTH} levels"));
            return;
        }
        if !self.count(1, m) {
            return;
        }
        if matches!(self.stack.last(), Some(Frame::Seq { .. }) | None) {
            let loc = self.loc(m);
            self.sources.insert(pointer.clone(), loc);
        }
        self.anchor_of_frame.push(anchor);
        self.stack.push(if frame_is_map {
            Frame::Map { map: Map::new(), pointer, key: None }
        } else {
            Frame::Seq { seq: Vec::new(), pointer }
        });
    }

    fn end(&mut self, m: Marker) {
        let anchor = self.anchor_of_frame.pop().unwrap_or(0);
        let value = match self.stack.pop() {
            Some(Frame::Map { map, .. }) => Value::Object(map),
            Some(Frame::Seq { seq, .. }) => Value::Array(seq),
            None => return,
        };
        if anchor != 0 {
            let size = count_nodes(&value);
            self.anchors.insert(anchor, (value.clone(), size));
        }
        self.put(value, m);
    }

    fn scalar(&mut self, text: String, style: TScalarStyle, anchor: usize, tag_str: bool, m: Marker) {
        if !self.count(1, m) {
            return;
        }
        match self.stack.last_mut() {
            Some(Frame::Map { map, key: key @ None, pointer }) => {
                if map.contains_key(&text) {
                    let msg = format!("duplicate key `{text}`");
                    self.fail(m, msg);
                    return;
                }
                let p = child_pointer(pointer, &text);
                *key = Some(text);
                let loc = self.loc(m);
                self.sources.insert(p, loc);
            }
            _ => {
                let pointer = self.next_pointer().unwrap_or_default();
                if !matches!(self.stack.last(), Some(Frame::Map { .. })) {
                    let loc = self.loc(m);
                    self.sources.insert(pointer, loc);
                }
                let value =
                    if style == TScalarStyle::Plain && !tag_str { plain_scalar(&text) } else { Value::String(text) };
                if anchor != 0 {
                    self.anchors.insert(anchor, (value.clone(), 1));
                }
                self.put(value, m);
            }
        }
    }

    fn alias(&mut self, id: usize, m: Marker) {
        let Some((value, size)) = self.anchors.get(&id).cloned() else {
            self.fail(m, "unknown alias".into());
            return;
        };
        if !self.count(size, m) {
            return;
        }
        match self.next_pointer() {
            None => self.fail(m, "an alias cannot be used as a mapping key".into()),
            Some(pointer) => {
                if !matches!(self.stack.last(), Some(Frame::Map { .. })) {
                    let loc = self.loc(m);
                    self.sources.insert(pointer, loc);
                }
                self.put(value, m);
            }
        }
    }
}

fn count_nodes(v: &Value) -> usize {
    let mut n = 0usize;
    let mut todo = vec![v];
    while let Some(v) = todo.pop() {
        n += 1;
        match v {
            Value::Array(a) => todo.extend(a.iter()),
            Value::Object(o) => todo.extend(o.values()),
            _ => {}
        }
    }
    n
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, m: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(m, "a template holds exactly one YAML document (remove the second `---`)".into());
                }
            }
            Event::MappingStart(anchor, _) => self.start(true, anchor, m),
            Event::SequenceStart(anchor, _) => self.start(false, anchor, m),
            Event::MappingEnd | Event::SequenceEnd => self.end(m),
            Event::Scalar(text, style, anchor, tag) => {
                let tag_str = tag.as_ref().is_some_and(|t| t.suffix == "str" || t.suffix.ends_with(":str"));
                self.scalar(text, style, anchor, tag_str, m)
            }
            Event::Alias(id) => self.alias(id, m),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

fn parse_yaml(text: &str, file: &str) -> Result<Tree, Diagnostic> {
    let mut b = Builder {
        file,
        stack: Vec::new(),
        root: None,
        sources: SourceMap::default(),
        anchors: HashMap::new(),
        anchor_of_frame: Vec::new(),
        nodes: 0,
        documents: 0,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut b, true) {
        let m = e.marker();
        return Err(syntax_error(file, m.line().max(1), m.col() + 1, format!("invalid YAML: {}", e.info())));
    }
    if let Some(err) = b.error {
        return Err(err);
    }
    b.sources.insert(String::new(), Location { file: file.to_string(), line: 1, column: 1 });
    Ok(Tree { value: b.root.unwrap_or(Value::Null), sources: b.sources })
}

/// Resolves a plain YAML 1.2 scalar (core schema).
fn plain_scalar(t: &str) -> Value {
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let unsigned = t.strip_prefix('+').unwrap_or(t);
    if let Some(hex) = unsigned.strip_prefix("0x") {
        if let Ok(n) = u64::from_str_radix(hex, 16) {
            return Value::Number(n.into());
        }
    } else if let Some(oct) = unsigned.strip_prefix("0o")
        && let Ok(n) = u64::from_str_radix(oct, 8)
    {
        return Value::Number(n.into());
    }
    if let Ok(n) = unsigned.parse::<u64>() {
        return Value::Number(n.into());
    }
    if let Ok(n) = t.parse::<i64>() {
        return Value::Number(n.into());
    }
    let looks_float = t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if looks_float && let Some(n) = t.parse::<f64>().ok().and_then(Number::from_f64) {
        return Value::Number(n);
    }
    Value::String(t.to_string())
}

fn parse_toml(text: &str, file: &str) -> Result<Tree, Diagnostic> {
    use toml::de::{DeTable, DeValue};
    let line_starts: Vec<usize> = std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let loc = |offset: usize| {
        let line = line_starts.partition_point(|&s| s <= offset).max(1);
        let start = line_starts.get(line - 1).copied().unwrap_or(0);
        let column = text.get(start..offset).map(|s| s.chars().count()).unwrap_or(0) + 1;
        Location { file: file.to_string(), line, column }
    };
    let table = DeTable::parse(text).map_err(|e| {
        let l = loc(e.span().map(|s| s.start).unwrap_or(0));
        syntax_error(file, l.line, l.column, format!("invalid TOML: {}", e.message()))
    })?;
    let mut sources = SourceMap::default();
    sources.insert(String::new(), Location { file: file.to_string(), line: 1, column: 1 });

    fn convert(
        v: &DeValue<'_>,
        ptr: &str,
        depth: usize,
        sources: &mut SourceMap,
        loc: &dyn Fn(usize) -> Location,
        spans: &mut Vec<(String, usize)>,
    ) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("the template nests deeper than {MAX_DEPTH} levels"));
        }
        Ok(match v {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(i) => {
                let digits: String = i.as_str().chars().filter(|c| *c != '_').collect();
                let digits = digits.trim_start_matches('+');
                let (neg, body) = match digits.strip_prefix('-') {
                    Some(b) => (true, b),
                    None => (false, digits),
                };
                let body = body.trim_start_matches("0x").trim_start_matches("0o").trim_start_matches("0b");
                match u64::from_str_radix(body, i.radix()) {
                    Ok(n) if !neg => Value::Number(n.into()),
                    Ok(n) => i64::try_from(n)
                        .map(|n| Value::Number((-n).into()))
                        .unwrap_or(Value::String(i.as_str().to_string())),
                    Err(_) => Value::String(i.as_str().to_string()),
                }
            }
            DeValue::Float(f) => {
                let s: String = f.as_str().chars().filter(|c| *c != '_').collect();
                s.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).unwrap_or(Value::String(s))
            }
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for (i, item) in a.iter().enumerate() {
                    let p = child_pointer(ptr, &i.to_string());
                    sources.insert(p.clone(), loc(item.span().start));
                    out.push(convert(item.get_ref(), &p, depth + 1, sources, loc, spans)?);
                }
                Value::Array(out)
            }
            DeValue::Table(t) => {
                let mut out = Map::new();
                for (k, item) in t.iter() {
                    let p = child_pointer(ptr, k.get_ref());
                    sources.insert(p.clone(), loc(k.span().start));
                    spans.push((p.clone(), k.span().start));
                    out.insert(k.get_ref().to_string(), convert(item.get_ref(), &p, depth + 1, sources, loc, spans)?);
                }
                Value::Object(out)
            }
        })
    }
    let root = DeValue::Table(table.into_inner());
    let mut spans = Vec::new();
    let value = convert(&root, "", 0, &mut sources, &loc, &mut spans).map_err(|msg| syntax_error(file, 1, 1, msg))?;
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

    #[test]
    fn depth_and_aliases_are_bounded() {
        let deep = "[".repeat(10_000);
        assert!(parse(&deep, Format::Yaml, "t").is_err());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..10 {
            let prev = if i == 0 { "a".to_string() } else { format!("l{}", i - 1) };
            bomb.push_str(&format!("l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        assert!(parse(&bomb, Format::Yaml, "t").is_err());
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

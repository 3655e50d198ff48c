//! The YAML reader: yaml-rust2 events folded into a JSON tree, recording
//! the position of every key and list item. Iterative and bounded.

use super::{MAX_DEPTH, MAX_NODES, SourceMap, Tree, child_pointer, syntax_error};
use crate::diagnostic::{Diagnostic, Location};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

pub(super) fn parse_yaml(text: &str, file: &str) -> Result<Tree, Diagnostic> {
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
pub(super) fn plain_scalar(t: &str) -> Value {
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

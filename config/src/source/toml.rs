//! The TOML reader: `toml`'s spanned document converted to a JSON tree,
//! byte spans turned into lines and columns.

use super::{MAX_DEPTH, SourceMap, Tree, child_pointer, syntax_error};
use crate::diagnostic::{Diagnostic, Location};
use serde_json::{Map, Number, Value};

pub(super) fn parse_toml(text: &str, file: &str) -> Result<Tree, Diagnostic> {
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

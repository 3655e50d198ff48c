//! Reading keys to load from a file: JSONL (one object per line, every
//! type; parsed here) or CSV (`key,value[,ttl_ms]` strings, RFC 4180
//! quoting; parsed in [`super::csv`]). A bad
//! record becomes a [`Bad`] with its line number and reason, never the end
//! of the load. The reader remembers how far it got (line and byte offset)
//! so an interrupted load can seek straight back to where it stopped.

use super::csv;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

/// One key's data.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    String(Vec<u8>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    Set(Vec<Vec<u8>>),
    List(Vec<Vec<u8>>),
    /// (member, score)
    Zset(Vec<(Vec<u8>, f64)>),
    /// A `DUMP` payload from another Redis, loaded with `RESTORE`.
    Dump(Vec<u8>),
}

/// One key to load.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Line number (files) or the key's index in the scan (Redis).
    pub position: u64,
    pub key: Vec<u8>,
    pub data: Data,
    /// The TTL the source gives; `None`: the strategy decides.
    pub ttl_ms: Option<u64>,
}

/// A record that could not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bad {
    /// Line number (files; where the record starts) or scan index (Redis).
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub reason: String,
}

/// What one record turned into.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Item(Item),
    Bad(Bad),
    /// A blank line or the CSV header.
    Nothing,
}

/// The input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    /// The format a file's extension names.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// A file being read record by record.
pub struct FileReader {
    format: Format,
    reader: BufReader<File>,
    /// Lines consumed so far.
    pub line: u64,
    /// Bytes consumed so far.
    pub offset: u64,
    buf: Vec<u8>,
}

impl FileReader {
    /// Opens `path` and, when resuming, seeks to `offset` (after `line` lines).
    pub fn open(path: &Path, format: Format, line: u64, offset: u64) -> std::io::Result<FileReader> {
        let mut file = File::open(path)?;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))?;
        }
        Ok(FileReader { format, reader: BufReader::with_capacity(256 * 1024, file), line, offset, buf: Vec::new() })
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> std::io::Result<Option<Record>> {
        let start_line = self.line + 1;
        if !self.read_line()? {
            return Ok(None);
        }
        let record = match self.format {
            Format::Jsonl => jsonl(start_line, trim_eol(&self.buf)),
            Format::Csv => {
                // A quoted field may hold line breaks: read on until the quotes close.
                while csv::open_quote(&self.buf) {
                    let before = self.buf.len();
                    let mut more = Vec::new();
                    std::mem::swap(&mut more, &mut self.buf);
                    let got = self.read_line()?;
                    more.extend_from_slice(&self.buf);
                    self.buf = more;
                    if !got || self.buf.len() == before {
                        break;
                    }
                }
                csv::record(start_line, trim_eol(&self.buf))
            }
        };
        Ok(Some(record))
    }

    fn read_line(&mut self) -> std::io::Result<bool> {
        self.buf.clear();
        let n = self.reader.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        self.offset += n as u64;
        Ok(true)
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A bad record; its key and reason (which may quote the file) cleaned for a terminal.
pub(super) fn bad(line: u64, key: Option<&str>, reason: impl Into<String>) -> Record {
    let reason = crate::text::clean(&reason.into(), 500);
    Record::Bad(Bad { line, key: key.map(|k| crate::text::clean(k, 200)), reason })
}

/// One JSONL line: `{"key":"k","type":"string","value":"v","ttl_ms":60000}`.
pub fn jsonl(line: u64, bytes: &[u8]) -> Record {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Record::Nothing;
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return bad(line, None, format!("not JSON: {e}")),
    };
    let serde_json::Value::Object(mut object) = value else {
        return bad(line, None, "not a JSON object (each line is `{\"key\": …, \"value\": …}`)");
    };
    let key = match object.remove("key") {
        Some(serde_json::Value::String(k)) if !k.is_empty() => k,
        Some(serde_json::Value::String(_)) => return bad(line, None, "`key` is empty"),
        Some(_) => return bad(line, None, "`key` is not a string"),
        None => return bad(line, None, "no `key`"),
    };
    let fail = |reason: String| bad(line, Some(&key), reason);
    let ttl_ms = match object.remove("ttl_ms") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => match n.as_u64() {
            Some(t) if t > 0 => Some(t),
            _ => {
                return fail(format!(
                    "`ttl_ms` is {n}: give a whole number of milliseconds above 0, or leave it out for the strategy's TTL"
                ));
            }
        },
        Some(_) => return fail("`ttl_ms` is not a number".into()),
    };
    let kind = match object.remove("type") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(t)) => Some(t),
        Some(_) => return fail("`type` is not a string".into()),
    };
    let Some(value) = object.remove("value") else {
        return fail("no `value`".into());
    };
    if let Some(extra) = object.keys().next() {
        return fail(format!("unknown field `{}` (known: key, type, value, ttl_ms)", crate::text::clean(extra, 64)));
    }
    let kind = kind.unwrap_or_else(|| {
        match &value {
            serde_json::Value::Object(_) => "hash",
            serde_json::Value::Array(_) => "list",
            _ => "string",
        }
        .into()
    });
    match data(&kind, value) {
        Ok(data) => Record::Item(Item { position: line, key: key.clone().into_bytes(), data, ttl_ms }),
        Err(reason) => fail(reason),
    }
}

/// A JSON scalar as the bytes Redis stores.
fn scalar(v: &serde_json::Value, what: &str) -> Result<Vec<u8>, String> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone().into_bytes()),
        serde_json::Value::Number(n) => Ok(n.to_string().into_bytes()),
        serde_json::Value::Bool(b) => Ok(b.to_string().into_bytes()),
        _ => Err(format!("{what} is not a string or number")),
    }
}

fn score(v: &serde_json::Value) -> Result<f64, String> {
    let s = match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    s.filter(|f| !f.is_nan()).ok_or_else(|| format!("score `{v}` is not a number"))
}

fn data(kind: &str, value: serde_json::Value) -> Result<Data, String> {
    use serde_json::Value as J;
    let empty = |t: &str| Err(format!("an empty {t} cannot be stored (Redis deletes empty collections)"));
    match (kind, value) {
        ("string", v) => scalar(&v, "a string's `value`").map(Data::String),
        ("hash", J::Object(m)) if m.is_empty() => empty("hash"),
        ("hash", J::Object(m)) => {
            let fields: Result<Vec<_>, String> =
                m.iter().map(|(f, v)| Ok((f.clone().into_bytes(), scalar(v, &format!("field `{f}`"))?))).collect();
            fields.map(Data::Hash)
        }
        ("set" | "list", J::Array(a)) if a.is_empty() => empty(kind),
        ("set" | "list", J::Array(a)) => {
            let items: Result<Vec<_>, String> = a.iter().map(|v| scalar(v, "an element")).collect();
            items.map(|items| if kind == "set" { Data::Set(items) } else { Data::List(items) })
        }
        ("zset", J::Array(a)) if a.is_empty() => empty("sorted set"),
        ("zset", J::Array(a)) => {
            let pairs: Result<Vec<_>, String> = a
                .iter()
                .map(|pair| match pair {
                    J::Array(p) if p.len() == 2 => Ok((scalar(&p[0], "a member")?, score(&p[1])?)),
                    _ => Err("a sorted set's elements are `[member, score]` pairs".to_owned()),
                })
                .collect();
            pairs.map(Data::Zset)
        }
        ("zset", J::Object(m)) if m.is_empty() => empty("sorted set"),
        ("zset", J::Object(m)) => {
            let pairs: Result<Vec<_>, String> =
                m.iter().map(|(k, v)| Ok((k.clone().into_bytes(), score(v)?))).collect();
            pairs.map(Data::Zset)
        }
        ("hash", _) => Err("a hash's `value` is an object of field → value".into()),
        ("set" | "list", _) => Err(format!("a {kind}'s `value` is an array")),
        ("zset", _) => {
            Err("a sorted set's `value` is an array of `[member, score]` or an object of member → score".into())
        }
        (other, _) => {
            Err(format!("unknown type `{}` (known: string, hash, set, list, zset)", crate::text::clean(other, 32)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(r: Record) -> Item {
        match r {
            Record::Item(i) => i,
            other => panic!("not an item: {other:?}"),
        }
    }

    fn reason(r: Record) -> String {
        match r {
            Record::Bad(b) => b.reason,
            other => panic!("not bad: {other:?}"),
        }
    }

    #[test]
    fn jsonl_reads_every_type() {
        let s = item(jsonl(1, br#"{"key":"k","type":"string","value":"v","ttl_ms":60000}"#));
        assert_eq!((s.data, s.ttl_ms), (Data::String(b"v".to_vec()), Some(60000)));
        let h = item(jsonl(2, br#"{"key":"h","value":{"a":"1","b":2}}"#));
        assert_eq!(h.data, Data::Hash(vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]));
        let z = item(jsonl(3, br#"{"key":"z","type":"zset","value":[["m",1.5],["n","2"]]}"#));
        assert_eq!(z.data, Data::Zset(vec![(b"m".to_vec(), 1.5), (b"n".to_vec(), 2.0)]));
        let z = item(jsonl(4, br#"{"key":"z","type":"zset","value":{"m":3}}"#));
        assert_eq!(z.data, Data::Zset(vec![(b"m".to_vec(), 3.0)]));
        let l = item(jsonl(5, br#"{"key":"l","type":"list","value":["a","b"]}"#));
        assert_eq!(l.data, Data::List(vec![b"a".to_vec(), b"b".to_vec()]));
        assert_eq!(jsonl(6, b"  "), Record::Nothing);
    }

    #[test]
    fn jsonl_says_what_is_wrong() {
        assert!(reason(jsonl(1, b"{nope")).starts_with("not JSON"));
        assert!(reason(jsonl(1, br#"{"key":"k","value":"v","ttl_ms":0}"#)).contains("above 0"));
        assert!(reason(jsonl(1, br#"{"key":"k","type":"set","value":[]}"#)).contains("empty set"));
        assert!(reason(jsonl(1, br#"{"key":"k","type":"stream","value":1}"#)).contains("unknown type"));
        assert!(reason(jsonl(1, br#"{"key":"k","value":"v","tll":1}"#)).contains("unknown field `tll`"));
        let hostile =
            reason(jsonl(1, "{\"key\":\"k\",\"type\":\"zset\",\"value\":{\"m\":\"\u{1b}[2J\u{202e}\"}}".as_bytes()));
        assert!(!hostile.contains('\u{1b}') && !hostile.contains('\u{202e}'), "{hostile}");
    }

    #[test]
    fn a_reader_joins_quoted_line_breaks_and_counts_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("in.csv");
        std::fs::write(&path, "key,value\na,\"x\ny\"\nb,2\n").expect("write");
        let mut r = FileReader::open(&path, Format::Csv, 0, 0).expect("open");
        assert_eq!(r.next_record().expect("read"), Some(Record::Nothing));
        let a = item(r.next_record().expect("read").expect("a"));
        assert_eq!((a.position, a.data), (2, Data::String(b"x\ny".to_vec())));
        let b = item(r.next_record().expect("read").expect("b"));
        assert_eq!(b.position, 4);
        assert_eq!(r.next_record().expect("read"), None);
        let (line, offset) = (r.line, r.offset);
        assert_eq!(line, 4);
        let mut again = FileReader::open(&path, Format::Csv, 3, 18).expect("open");
        assert_eq!(item(again.next_record().expect("read").expect("b")).key, b"b".to_vec());
        assert_eq!(offset, 22);
    }
}

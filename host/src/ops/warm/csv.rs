//! CSV records for `warm`: `key,value[,ttl_ms]`, strings only, RFC 4180
//! quoting (`"` quotes a field, `""` inside quotes is one `"`, quoted fields
//! may hold commas and line breaks), an optional `key,value[,ttl_ms]` header.

use super::source::{Data, Item, Record, bad};

/// Whether a CSV record read so far ends inside a quoted field. A stray
/// quote inside an unquoted field opens nothing (that record is reported
/// bad), so it cannot swallow the lines after it.
pub(super) fn open_quote(bytes: &[u8]) -> bool {
    let (mut quoted, mut field_start, mut i) = (false, true, 0);
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            }
        } else if b == b',' {
            field_start = true;
            i += 1;
            continue;
        } else if b == b'"' && field_start {
            quoted = true;
        }
        field_start = false;
        i += 1;
    }
    quoted
}

/// One CSV record (which may span lines): `key,value[,ttl_ms]`.
pub fn record(line: u64, bytes: &[u8]) -> Record {
    if bytes.is_empty() {
        return Record::Nothing;
    }
    let fields = match csv_fields(bytes) {
        Ok(f) => f,
        Err(reason) => return bad(line, None, reason),
    };
    if line == 1 {
        let names: Vec<String> =
            fields.iter().map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase()).collect();
        if names == ["key", "value"] || names == ["key", "value", "ttl_ms"] {
            return Record::Nothing;
        }
    }
    if !(2..=3).contains(&fields.len()) {
        return bad(line, None, format!("{} fields; a record is `key,value[,ttl_ms]`", fields.len()));
    }
    let key = fields[0].clone();
    let shown = String::from_utf8_lossy(&key).into_owned();
    if key.is_empty() {
        return bad(line, None, "the key is empty");
    }
    let ttl_ms = match fields.get(2).map(|t| String::from_utf8_lossy(t).trim().to_owned()) {
        None => None,
        Some(t) if t.is_empty() => None,
        Some(t) => match t.parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return bad(
                    line,
                    Some(&shown),
                    format!(
                        "ttl_ms `{}` is not a whole number of milliseconds above 0 (leave it empty for the strategy's TTL)",
                        crate::text::clean(&t, 32)
                    ),
                );
            }
        },
    };
    Record::Item(Item { position: line, key, data: Data::String(fields[1].clone()), ttl_ms })
}

/// Splits an RFC 4180 record into fields: `"` quotes a field, `""` inside
/// quotes is one `"`, quoted fields may hold commas and line breaks.
fn csv_fields(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut i = 0;
    let mut quoted = false;
    let mut after_quote = false;
    let mut field_start = true;
    while i < bytes.len() {
        let b = bytes[i];
        if quoted {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    field.push(b'"');
                    i += 1;
                } else {
                    quoted = false;
                    after_quote = true;
                }
            } else {
                field.push(b);
            }
        } else if b == b',' {
            fields.push(std::mem::take(&mut field));
            after_quote = false;
            field_start = true;
            i += 1;
            continue;
        } else if after_quote {
            return Err(format!("text after a closing quote in field {}", fields.len() + 1));
        } else if b == b'"' {
            if !field_start {
                return Err(format!(
                    "a quote inside unquoted field {} (quote the whole field and double the quote)",
                    fields.len() + 1
                ));
            }
            quoted = true;
        } else {
            field.push(b);
        }
        field_start = false;
        i += 1;
    }
    if quoted {
        return Err(format!("field {} opens a quote that never closes", fields.len() + 1));
    }
    fields.push(field);
    Ok(fields)
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
    fn csv_follows_rfc_4180() {
        assert_eq!(record(1, b"key,value,ttl_ms"), Record::Nothing);
        let i = item(record(2, b"\"a,b\",\"say \"\"hi\"\"\nthere\",500"));
        assert_eq!(
            (i.key, i.data, i.ttl_ms),
            (b"a,b".to_vec(), Data::String(b"say \"hi\"\nthere".to_vec()), Some(500))
        );
        let i = item(record(3, b"k,v,"));
        assert_eq!(i.ttl_ms, None);
        assert!(reason(record(4, b"k")).contains("1 fields"));
        assert!(reason(record(5, b"k,\"v")).contains("never closes"));
        assert!(reason(record(6, b"k,v,soon")).contains("ttl_ms `soon`"));
        assert!(reason(record(7, b"k,a\"b")).contains("quote inside"));
        assert!(!open_quote(b"k,a\"b") && open_quote(b"k,\"a\"\"b") && !open_quote(b"\"k\",\"a\"\"\""));
    }
}

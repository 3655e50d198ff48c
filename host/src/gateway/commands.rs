//! What the gateway needs to know of each command, asked of the server it
//! fronts (`COMMAND`), so it is right for that server's version: whether it
//! may grow memory (`denyoom`: refused past the memory quota, as Redis
//! refuses it past `maxmemory`), whether it writes, and where its keys are.

use crate::client::{ClientError, Node};
use redis::Value;
use std::collections::HashMap;

/// One command's flags and key positions (`COMMAND` reply fields 2–5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Info {
    pub write: bool,
    pub denyoom: bool,
    /// It may wait for data (`blocking`: `BLPOP`, `XREAD`…) or cannot be
    /// queued in a transaction (`no-multi`: `SYNC`, `PSYNC`…): a session
    /// that sends it needs an upstream connection of its own.
    pub own_connection: bool,
    pub first: i64,
    pub last: i64,
    pub step: i64,
}

impl Info {
    /// The positions of the keys in a command of `n` arguments (the name
    /// is position 0).
    pub fn keys(&self, n: usize) -> impl Iterator<Item = usize> {
        let n = n as i64;
        let (first, step) = (self.first, self.step.max(1));
        let last = if self.last < 0 { n + self.last } else { self.last.min(n - 1) };
        let valid = first > 0 && first < n;
        (first..=last).step_by(step as usize).filter(move |_| valid).map(|p| p as usize)
    }
}

/// The server's command table, by lowercase name.
#[derive(Debug, Default)]
pub struct Table {
    by_name: HashMap<Vec<u8>, Info>,
}

impl Table {
    pub async fn load(node: &Node) -> Result<Table, ClientError> {
        Ok(Self::parse(&node.call(&["COMMAND"]).await?))
    }

    fn parse(reply: &Value) -> Table {
        let mut by_name = HashMap::new();
        let Value::Array(entries) = reply else { return Table { by_name } };
        for entry in entries {
            let Value::Array(f) = entry else { continue };
            let Some(name) = f.first().and_then(text) else { continue };
            let flags: Vec<String> = match f.get(2) {
                Some(Value::Array(v) | Value::Set(v)) => v.iter().filter_map(text).collect(),
                _ => Vec::new(),
            };
            let int = |i: usize| match f.get(i) {
                Some(Value::Int(n)) => *n,
                _ => 0,
            };
            let has = |flag: &str| flags.iter().any(|f| f.eq_ignore_ascii_case(flag));
            by_name.insert(
                name.to_ascii_lowercase().into_bytes(),
                Info {
                    write: has("write"),
                    denyoom: has("denyoom"),
                    own_connection: has("blocking") || has("no_multi") || has("no-multi"),
                    first: int(3),
                    last: int(4),
                    step: int(5),
                },
            );
        }
        Table { by_name }
    }

    /// The command named `name` (any case).
    pub fn get(&self, name: &[u8]) -> Option<&Info> {
        let mut lower = [0u8; 32];
        if name.len() > lower.len() {
            return None;
        }
        for (d, s) in lower.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        self.by_name.get(&lower[..name.len()])
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_positions_follow_first_last_step() {
        let mset = Info { write: true, denyoom: true, own_connection: false, first: 1, last: -1, step: 2 };
        assert_eq!(mset.keys(5).collect::<Vec<_>>(), [1, 3]);
        let set = Info { write: true, denyoom: true, own_connection: false, first: 1, last: 1, step: 1 };
        assert_eq!(set.keys(3).collect::<Vec<_>>(), [1]);
        assert_eq!(set.keys(1).count(), 0, "no key argument given");
        let ping = Info::default();
        assert_eq!(ping.keys(2).count(), 0);
    }

    #[test]
    fn the_table_is_read_from_a_command_reply() {
        let s = |t: &str| Value::SimpleString(t.into());
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::BulkString(b"set".to_vec()),
                Value::Int(-3),
                Value::Set(vec![s("write"), s("denyoom")]),
                Value::Int(1),
                Value::Int(1),
                Value::Int(1),
            ]),
            Value::Array(vec![
                Value::BulkString(b"blpop".to_vec()),
                Value::Int(-3),
                Value::Set(vec![s("write"), s("blocking")]),
                Value::Int(1),
                Value::Int(-2),
                Value::Int(1),
            ]),
        ]);
        let t = Table::parse(&reply);
        assert_eq!(
            t.get(b"SET").map(|i| (i.write, i.denyoom, i.first, i.own_connection)),
            Some((true, true, 1, false))
        );
        assert_eq!(t.get(b"BLPOP").map(|i| (i.denyoom, i.own_connection)), Some((false, true)));
        assert!(t.get(b"get").is_none());
    }
}

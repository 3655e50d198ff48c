//! One paced walk over a master's keys, reading what the server knows of
//! each: `OBJECT ENCODING`, `PTTL` and `MEMORY USAGE` in one pipeline per
//! `SCAN` batch, then `TYPE` where the encoding leaves it open and the
//! element count (`HLEN`, `ZCARD`, …) of the aggregates. `analyze` and `optimize` both read keys
//! through this.
//!
//! Pacing: the `SCAN`'s `COUNT` follows a time budget (the tenant scanner's
//! [`Pace`]), and the walk rests so that our round trips take at most `duty`
//! of the time. A pipeline does not hold the server for its whole length:
//! Redis reads a client's pipeline 16 KB at a time (`PROTO_IOBUF_LEN`) and
//! serves other clients between reads, so each of our turns is a few hundred
//! cheap commands.

use crate::client::{ClientError, Node};
use crate::ops::probe::{int, text};
use crate::ops::tenant::{Pace, Scanner};
use redis::Value;
use std::time::{Duration, Instant};

/// How long one pipeline may take before the walk gives up on the node.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the walk reads of one key.
#[derive(Debug, Clone, Copy)]
pub struct KeyFacts<'a> {
    pub key: &'a [u8],
    /// `TYPE`: `string`, `hash`, …
    pub kind: &'a str,
    /// `OBJECT ENCODING`: `listpack`, `hashtable`, `embstr`, …
    pub encoding: &'a str,
    /// Milliseconds left; `None`: no TTL.
    pub ttl_ms: Option<u64>,
    /// `MEMORY USAGE` (aggregates: estimated by Redis from 5 samples).
    pub bytes: u64,
    /// Elements of an aggregate (fields, members, items, entries).
    pub elements: Option<u64>,
}

/// Which keys to read and how hard to press.
#[derive(Debug, Clone)]
pub struct Walk {
    /// Only keys starting with this (empty: all).
    pub prefix: Vec<u8>,
    /// Stop after this many keys (`None`: every key).
    pub sample: Option<u64>,
    pub pace: Pace,
}

/// What a walk over one master saw.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Walked {
    pub node: String,
    /// `DBSIZE` before the walk.
    pub dbsize: u64,
    /// Keys `SCAN` returned (all of them, the prefix's or not).
    pub visited: u64,
    /// Keys read (the prefix's, up to the sample).
    pub analyzed: u64,
    /// Whether `SCAN` went through the whole keyspace.
    pub complete: bool,
    /// What each analysed key stands for: `dbsize / visited` for an
    /// incomplete walk, 1 for a complete one.
    pub scale: f64,
}

/// What one key's read found (`None`: gone since `SCAN` saw it).
struct Row {
    kind: String,
    encoding: String,
    ttl_ms: Option<u64>,
    bytes: u64,
    elements: Option<u64>,
}

/// Reads the keys of `conn` (the master `name`) as `walk` says, handing
/// each to `visit`.
pub async fn walk(
    name: &str,
    conn: &Node,
    walk: &Walk,
    visit: &mut dyn FnMut(&KeyFacts<'_>),
) -> Result<Walked, ClientError> {
    let dbsize: u64 = conn.query(&["DBSIZE"]).await?;
    let mut scan = Scanner::new(conn, "*".into(), walk.pace);
    let (mut visited, mut taken, mut analyzed, mut complete) = (0u64, 0u64, 0u64, false);
    loop {
        let Some(batch) = scan.next().await? else {
            complete = true;
            break;
        };
        // Visited: the keys up to the last one taken, so that a sample
        // that ends inside a batch stands for the part of it seen.
        let left = walk.sample.map_or(u64::MAX, |s| s.saturating_sub(taken));
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for key in batch {
            if keys.len() as u64 >= left {
                break;
            }
            visited += 1;
            if key.starts_with(&walk.prefix) {
                keys.push(key);
            }
        }
        taken += keys.len() as u64;
        if !keys.is_empty() {
            // One batch at a time: on the caller's single-threaded runtime a
            // read in flight would add its reply parsing to the next `SCAN`'s
            // time, and the budget would shrink the batches for nothing.
            let started = Instant::now();
            let rows = fetch(conn, &keys).await?;
            scan.busy(started.elapsed());
            analyzed += hand_over(&keys, &rows, visit);
        }
        if walk.sample.is_some_and(|s| taken >= s) {
            break;
        }
    }
    let scale = if complete || visited == 0 { 1.0 } else { dbsize as f64 / visited as f64 };
    Ok(Walked { node: name.to_owned(), dbsize, visited, analyzed, complete, scale: scale.max(1.0) })
}

fn hand_over(keys: &[Vec<u8>], rows: &[Option<Row>], visit: &mut dyn FnMut(&KeyFacts<'_>)) -> u64 {
    let mut n = 0;
    for (key, row) in keys.iter().zip(rows) {
        let Some(row) = row else { continue };
        n += 1;
        visit(&KeyFacts {
            key,
            kind: &row.kind,
            encoding: &row.encoding,
            ttl_ms: row.ttl_ms,
            bytes: row.bytes,
            elements: row.elements,
        });
    }
    n
}

fn command(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// The element-count command of a type, if it is an aggregate.
fn length_command(kind: &str) -> Option<&'static [u8]> {
    Some(match kind {
        "hash" => b"HLEN",
        "zset" => b"ZCARD",
        "set" => b"SCARD",
        "list" => b"LLEN",
        "stream" => b"XLEN",
        _ => return None,
    })
}

/// The type an encoding belongs to, when only one type uses it (Redis
/// 7.0–7.2); `listpack`, `hashtable` and `raw` (also a module type's) need
/// a `TYPE`.
fn type_of_encoding(encoding: &str) -> Option<&'static str> {
    Some(match encoding {
        "embstr" | "int" => "string",
        "quicklist" => "list",
        "intset" => "set",
        "skiplist" => "zset",
        "stream" => "stream",
        _ => return None,
    })
}

/// Reads one batch of keys: encoding, TTL and memory of each; then `TYPE`
/// where the encoding does not tell it (a string's `embstr` does: 60% of a
/// typical keyspace costs 3 commands instead of 4) and the aggregates'
/// sizes; then the sizes of the aggregates only `TYPE` identified.
async fn fetch(conn: &Node, keys: &[Vec<u8>]) -> Result<Vec<Option<Row>>, ClientError> {
    let mut commands = Vec::with_capacity(keys.len() * 3);
    for k in keys {
        commands.push(command(&[b"OBJECT", b"ENCODING", k]));
        commands.push(command(&[b"PTTL", k]));
        commands.push(command(&[b"MEMORY", b"USAGE", k]));
    }
    let replies = conn.pipeline(&commands, PIPELINE_TIMEOUT).await?;
    let mut rows: Vec<Option<Row>> = Vec::with_capacity(keys.len());
    for r in replies.chunks(3) {
        // No encoding: deleted or expired since `SCAN` saw it.
        let (Some(encoding), [_, ttl, bytes]) = (r.first().and_then(text), r) else {
            rows.push(None);
            continue;
        };
        let ttl_ms = match ttl {
            Value::Int(ms) if *ms >= 0 => Some(*ms as u64),
            _ => None,
        };
        let kind = type_of_encoding(&encoding).unwrap_or_default().to_owned();
        rows.push(Some(Row { kind, encoding, ttl_ms, bytes: int(bytes).unwrap_or(0), elements: None }));
    }
    // Second round: `TYPE` of the undecided, sizes of the known aggregates.
    let second: Vec<(usize, bool)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let r = r.as_ref()?;
            if r.kind.is_empty() { Some((i, true)) } else { length_command(&r.kind).map(|_| (i, false)) }
        })
        .collect();
    if second.is_empty() {
        return Ok(rows);
    }
    let commands: Vec<Vec<Vec<u8>>> = second
        .iter()
        .filter_map(|&(i, typing)| {
            let cmd: &[u8] = if typing { b"TYPE" } else { length_command(&rows[i].as_ref()?.kind)? };
            Some(command(&[cmd, &keys[i]]))
        })
        .collect();
    let replies = conn.pipeline(&commands, PIPELINE_TIMEOUT).await?;
    let mut third = Vec::new();
    for (&(i, typing), reply) in second.iter().zip(&replies) {
        let Some(slot) = rows.get_mut(i) else { continue };
        if !typing {
            if let Some(row) = slot {
                row.elements = int(reply);
            }
            continue;
        }
        match text(reply) {
            Some(kind) if kind != "none" => {
                if let Some(row) = slot {
                    row.kind = kind;
                    if length_command(&row.kind).is_some() {
                        third.push(i);
                    }
                }
            }
            _ => *slot = None,
        }
    }
    if third.is_empty() {
        return Ok(rows);
    }
    let commands: Vec<Vec<Vec<u8>>> =
        third.iter().filter_map(|&i| Some(command(&[length_command(&rows[i].as_ref()?.kind)?, &keys[i]]))).collect();
    let replies = conn.pipeline(&commands, PIPELINE_TIMEOUT).await?;
    for (&i, reply) in third.iter().zip(&replies) {
        if let Some(Some(row)) = rows.get_mut(i) {
            row.elements = int(reply);
        }
    }
    Ok(rows)
}

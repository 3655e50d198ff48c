//! A local deployment's ports at start: checked free before anything is
//! spawned, and moved when another program took one (`start --new-ports`).
//!
//! Every port of a local deployment is its base port plus a fixed offset
//! (see `Topology::derive`), so a move shifts them all by one amount: the
//! record, then every file that names a port — each node's config (live and
//! pristine), a cluster node's `nodes.conf` (its peers' addresses) and the
//! rendered scripts' `*_PORT=` defaults — so replicas, sentinels and cluster
//! peers find each other on the new ports, and a later render (`apply`,
//! `scale`) with the new base port agrees with them. Must not move a
//! deployment with a running node.

use super::apply::{RENDERED, walk};
use super::{files, process};
use crate::backend::BackendError;
use crate::registry::{Record, write_atomic};
use std::collections::BTreeMap;
use std::path::Path;

/// The `--set` that holds the base port in a record.
const BASE_SET: &str = "network.local_base_port=";

fn running(record: &Record) -> Option<&str> {
    let dir = &record.state_dir;
    record.nodes.iter().find(|n| n.pid.is_some_and(|p| process::ours(p, dir))).map(|n| n.name.as_str())
}

/// `Err(PortTaken)` when a port of a node that is not running is in use.
pub fn check_free(record: &Record) -> Result<(), BackendError> {
    for n in record.nodes.iter().filter(|n| !n.pid.is_some_and(|p| process::ours(p, &record.state_dir))) {
        if let Some(port) = n.ports.iter().copied().find(|p| !process::port_free(*p)) {
            return Err(BackendError::PortTaken { node: n.name.clone(), port });
        }
    }
    Ok(())
}

/// Every port of `record` with `base` in place of its base port, or `None`
/// past 65535.
fn shifted(record: &Record, base: u16) -> Option<Vec<u16>> {
    let by = i32::from(base) - i32::from(record.base_port);
    record.nodes.iter().flat_map(|n| &n.ports).map(|p| u16::try_from(i32::from(*p) + by).ok()).collect()
}

/// A base port for the stopped deployment `record` whose ports are all
/// free, kept by no other deployment (`reserved`) and none of its own now
/// (so old and new ports never mix up in a rewrite).
pub fn choose(record: &Record, reserved: &BTreeMap<u16, String>) -> Result<u16, BackendError> {
    if let Some(node) = running(record) {
        return Err(BackendError::CannotMove {
            deployment: record.name.clone(),
            reason: format!("node `{node}` is running; `redplate stop {}` first", record.name),
        });
    }
    let mut taken = reserved.clone();
    taken.extend(record.nodes.iter().flat_map(|n| &n.ports).map(|p| (*p, record.name.clone())));
    // The topology's slots are 10 ports apart: one step moves past all of them.
    let slots = record.data_nodes().count().max(record.sentinels().count());
    let step = u16::try_from(10 * slots).unwrap_or(u16::MAX).max(10);
    process::free_base(record.base_port.saturating_add(step), step, &taken, |b| shifted(record, b))
}

/// Moves the record to `base` and rewrites its files; a move interrupted
/// before (see [`finish`]) is finished first. `save` records each step, so
/// that a crash midway leaves a record that the next `start` finishes.
pub fn move_to(
    record: &mut Record,
    base: u16,
    save: &dyn Fn(&Record) -> Result<(), BackendError>,
) -> Result<(), BackendError> {
    finish(record, save)?;
    if shifted(record, base).is_none() {
        return Err(BackendError::NoFreePorts { from: base, count: record.nodes.iter().map(|n| n.ports.len()).sum() });
    }
    let by = i32::from(base) - i32::from(record.base_port);
    let shift = |p: u16| u16::try_from(i32::from(p) + by).unwrap_or(p);
    for n in &mut record.nodes {
        n.port = shift(n.port);
        n.ports = n.ports.iter().map(|p| shift(*p)).collect();
    }
    record.ports_moved_from = Some(record.base_port);
    record.base_port = base;
    record.sets.retain(|s| !s.starts_with(BASE_SET));
    record.sets.push(format!("{BASE_SET}{base}"));
    save(record)?;
    finish(record, save)
}

/// Finishes a move: rewrites every file from the ports of
/// `ports_moved_from` to the recorded ones (old and new ports never
/// overlap, so a file rewritten already stays as it is), then clears it.
pub fn finish(record: &mut Record, save: &dyn Fn(&Record) -> Result<(), BackendError>) -> Result<(), BackendError> {
    let Some(from) = record.ports_moved_from else { return Ok(()) };
    let old = shifted(record, from).unwrap_or_default();
    let new = record.nodes.iter().flat_map(|n| n.ports.iter().copied());
    let map: BTreeMap<u16, u16> = old.into_iter().zip(new).collect();
    let pristine = record.path(RENDERED);
    for file in walk(&pristine) {
        let rel = file.strip_prefix(&pristine).unwrap_or(&file);
        let line: fn(&str, &BTreeMap<u16, u16>) -> Option<String> = match rel.extension() {
            Some(e) if e == "conf" => conf_line,
            Some(e) if e == "sh" => script_line,
            _ => continue,
        };
        rewrite(&file, &map, line)?;
        rewrite(&record.state_dir.join(rel), &map, line)?;
    }
    for n in record.data_nodes() {
        let name = files::conf_value(&record.path(&n.conf), "cluster-config-file");
        if let Some(name) = name {
            rewrite(&record.path(&format!("data/{}/{name}", n.name)), &map, nodes_line)?;
        }
    }
    record.ports_moved_from = None;
    save(record)
}

/// Rewrites the lines of `path` that `line` changes, keeping its mode; a
/// missing file is left missing.
fn rewrite(
    path: &Path,
    map: &BTreeMap<u16, u16>,
    line: fn(&str, &BTreeMap<u16, u16>) -> Option<String>,
) -> Result<(), BackendError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BackendError::Io { action: "read", path: path.to_owned(), source: e }),
    };
    let mut out = String::with_capacity(text.len());
    for l in text.split_inclusive('\n') {
        let (body, end) = l.strip_suffix('\n').map_or((l, ""), |b| (b, "\n"));
        out.push_str(&line(body, map).unwrap_or_else(|| body.to_owned()));
        out.push_str(end);
    }
    if out == text {
        return Ok(());
    }
    let perms = std::fs::metadata(path).map_err(BackendError::io("read", path))?.permissions();
    write_atomic(path, out.as_bytes(), true)?;
    std::fs::set_permissions(path, perms).map_err(BackendError::io("chmod", path))
}

/// Which word of a redis.conf / sentinel.conf line holds a port.
fn port_word(words: &[&str]) -> Option<usize> {
    match words.first()?.to_ascii_lowercase().as_str() {
        "port"
        | "tls-port"
        | "cluster-port"
        | "cluster-announce-port"
        | "cluster-announce-tls-port"
        | "cluster-announce-bus-port"
        | "replica-announce-port"
        | "slave-announce-port" => Some(1),
        "replicaof" | "slaveof" => Some(2),
        "sentinel" => match words.get(1)?.to_ascii_lowercase().as_str() {
            "announce-port" => Some(2),
            // `sentinel monitor <master> <ip> <port> <quorum>`, `known-* <master> <ip> <port> …`
            "monitor" | "known-replica" | "known-slave" | "known-sentinel" => Some(4),
            _ => None,
        },
        _ => None,
    }
}

/// A config line with its port moved (by position: `save 900 1 60 10000`
/// holds numbers that are no ports).
fn conf_line(line: &str, map: &BTreeMap<u16, u16>) -> Option<String> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    let i = port_word(&words)?;
    let word = *words.get(i)?;
    let new = map.get(&word.trim_matches('"').parse::<u16>().ok()?)?.to_string();
    let moved = if word.starts_with('"') { format!("\"{new}\"") } else { new };
    words[i] = &moved;
    Some(words.join(" "))
}

/// A `nodes.conf` line (`<id> <ip>:<port>@<bus>[,<hostname>] <flags> …`)
/// with its peer's ports moved.
fn nodes_line(line: &str, map: &BTreeMap<u16, u16>) -> Option<String> {
    let mut words: Vec<&str> = line.split(' ').collect();
    let (addr, hostname) = words.get(1)?.split_once(',').map_or((*words.get(1)?, None), |(a, h)| (a, Some(h)));
    let (ip, ports) = addr.rsplit_once(':')?;
    let (port, bus) = ports.split_once('@')?;
    let moved = |p: &str| p.parse::<u16>().ok().and_then(|p| map.get(&p).copied());
    let (port, bus) = (moved(port)?, moved(bus)?);
    let addr = match hostname {
        Some(h) => format!("{ip}:{port}@{bus},{h}"),
        None => format!("{ip}:{port}@{bus}"),
    };
    words[1] = &addr;
    Some(words.join(" "))
}

/// A script's `NAME_PORT='7001'` default with its port moved.
fn script_line(line: &str, map: &BTreeMap<u16, u16>) -> Option<String> {
    let (name, value) = line.split_once('=')?;
    if !name.ends_with("_PORT") || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        return None;
    }
    let old = value.trim_matches(['\'', '"']);
    let new = map.get(&old.parse::<u16>().ok()?)?;
    Some(format!("{name}={}", value.replacen(old, &new.to_string(), 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_move_by_position_and_other_numbers_stay() {
        let map = BTreeMap::from([(7000, 9000), (7001, 9001), (7002, 9002), (17000, 19000), (10000, 12000)]);
        let conf = |l: &str| conf_line(l, &map);
        assert_eq!(conf("port 7000").as_deref(), Some("port 9000"));
        assert_eq!(conf("replicaof 127.0.0.1 \"7000\"").as_deref(), Some("replicaof 127.0.0.1 \"9000\""));
        assert_eq!(conf("sentinel monitor m 127.0.0.1 7000 2").as_deref(), Some("sentinel monitor m 127.0.0.1 9000 2"));
        assert_eq!(
            conf("sentinel known-sentinel m 127.0.0.1 7002 abc").as_deref(),
            Some("sentinel known-sentinel m 127.0.0.1 9002 abc")
        );
        assert_eq!(conf("save \"900 1 60 10000\""), None, "a number in another directive is no port");
        assert_eq!(conf("sentinel down-after-milliseconds m 10000"), None);
        assert_eq!(conf("port 6379"), None, "a port of no node stays");
        let node = "e7399fc6 127.0.0.1:7000@17000,localhost myself,master - 0 0 1 connected 0-5460";
        assert_eq!(
            nodes_line(node, &map).as_deref(),
            Some("e7399fc6 127.0.0.1:9000@19000,localhost myself,master - 0 0 1 connected 0-5460")
        );
        assert_eq!(nodes_line("vars currentEpoch 6 lastVoteEpoch 0", &map), None);
        assert_eq!(script_line("DEFAULT_REDIS_PORT='7001'", &map).as_deref(), Some("DEFAULT_REDIS_PORT='9001'"));
        assert_eq!(script_line("TIMEOUT='7001'", &map), None);
        assert_eq!(script_line("REDIS_PORT=\"${REDIS_PORT:-$DEFAULT_REDIS_PORT}\"", &map), None);
    }

    #[test]
    fn a_rewrite_keeps_the_mode_and_the_lines_it_does_not_change() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("backup.sh");
        std::fs::write(&path, "#!/bin/sh\nDEFAULT_REDIS_PORT='7001'\necho 7001\n").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        }
        let map = BTreeMap::from([(7001, 9001)]);
        rewrite(&path, &map, script_line).expect("rewrite");
        rewrite(&path, &map, script_line).expect("again: nothing to do");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "#!/bin/sh\nDEFAULT_REDIS_PORT='9001'\necho 7001\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        rewrite(&tmp.path().join("missing.conf"), &map, conf_line).expect("a missing file is no error");
    }
}

//! Waiting until a local deployment is ready: every node answers PING,
//! replicas are in sync with the master, and sentinels agree on the master
//! and know its replicas and each other (a cluster: [`super::cluster`]).

use super::conn::{Redis, T};
use super::files::tail;
use super::process;
use crate::backend::BackendError;
use crate::client::Info;
use crate::registry::{NodeRecord, Record};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::Location;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// The first pause between two looks, doubled after each look of the same
/// wait up to [`POLL_MAX`]: a quick step is seen at once, and a slow one (or
/// one that never ends) costs a few round trips a second, not fifty.
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(250);

/// How many lines, and bytes at most, of a node's log an error quotes.
const LOG_LINES: usize = 12;
const LOG_BYTES: usize = 2048;

/// A deadline with what is being waited for, for the error message, and the
/// processes that must stay alive meanwhile.
pub struct Deadline {
    start: Instant,
    at: Instant,
    /// The wait that looked last (its call site) and its current pause.
    poll: Cell<(Option<&'static Location<'static>>, Duration)>,
    /// Node name, pid, log file: a process that answered and then died
    /// fails the wait at once, instead of when the deadline passes.
    watched: RefCell<Vec<(String, u32, PathBuf)>>,
}

impl Deadline {
    pub fn after(secs: u64) -> Self {
        let start = Instant::now();
        Deadline {
            start,
            at: start + Duration::from_secs(secs),
            poll: Cell::new((None, POLL_FIRST)),
            watched: RefCell::new(Vec::new()),
        }
    }

    /// Watches `node`'s process (which has answered) from now on.
    fn watch(&self, record: &Record, node: &NodeRecord) {
        if let Some(pid) = node.pid {
            self.watched.borrow_mut().push((node.name.clone(), pid, record.log_file(&node.name)));
        }
    }

    /// `Err(NodeExited)` when a watched process is gone, `Err(NotReady)`
    /// once the deadline has passed; else sleeps before the next look. The
    /// pause backs off per wait: each polling loop is told apart by its call
    /// site, so the next wait starts quick again.
    #[track_caller]
    pub fn check(&self, waiting_for: impl FnOnce() -> String) -> Result<(), BackendError> {
        if let Some((node, _, log)) = self.watched.borrow().iter().find(|(_, pid, _)| !process::alive(*pid)) {
            return Err(BackendError::NodeExited {
                node: node.clone(),
                status: "it had answered, then its process ended".into(),
                log: log_excerpt(log),
            });
        }
        if Instant::now() >= self.at {
            return Err(BackendError::NotReady {
                seconds: (self.at - self.start).as_secs(),
                waiting_for: waiting_for(),
            });
        }
        let site = Location::caller();
        let (last, pause) = self.poll.get();
        let pause = if last == Some(site) { pause } else { POLL_FIRST };
        std::thread::sleep(pause.min(self.at.saturating_duration_since(Instant::now())));
        self.poll.set((Some(site), (pause * 2).min(POLL_MAX)));
        Ok(())
    }
}

/// The end of a node's log for an error message: control characters
/// escaped (a log holds what clients and peers sent) and its length capped.
pub fn log_excerpt(log: &Path) -> String {
    crate::text::clean_lines(&tail(log, LOG_LINES), LOG_BYTES)
}

/// The port Redis could not bind, from its log line `Could not create
/// server TCP listening socket 127.0.0.1:38260: bind: Address already in
/// use` (the cluster bus port as well as the client port).
fn port_in_use(log: &str) -> Option<u16> {
    let line = log.lines().rev().find(|l| l.contains("Address already in use"))?;
    let (address, _) = line.split_once(": bind")?;
    address.rsplit(':').next()?.trim().parse().ok()
}

/// Waits until each of `nodes` answers (`INFO server` from its own pid). A process that exits meanwhile
/// fails the wait with the end of its log (a taken port is told apart); one that answered is watched by
/// `deadline` from then on, so the waits that follow fail as soon as it dies.
pub fn wait_up(
    redis: &Redis,
    record: &Record,
    nodes: &[&NodeRecord],
    children: &mut BTreeMap<String, Child>,
    deadline: &Deadline,
) -> Result<(), BackendError> {
    let mut pending: Vec<&NodeRecord> = nodes.to_vec();
    loop {
        let mut still = Vec::new();
        for node in pending {
            // The answer must come from our process: another program may
            // have taken the port between the probe and the start.
            if redis.to(record, node).ready_pid().is_some_and(|pid| Some(pid) == node.pid) {
                deadline.watch(record, node);
                continue;
            }
            if let Some(child) = children.get_mut(&node.name)
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = log_excerpt(&record.log_file(&node.name));
                if log.contains("Address already in use") {
                    let port = port_in_use(&log).unwrap_or(node.port);
                    return Err(BackendError::PortTaken { node: node.name.clone(), port });
                }
                return Err(BackendError::NodeExited { node: node.name.clone(), status: status.to_string(), log });
            }
            still.push(node);
        }
        if still.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = still.iter().map(|n| n.name.clone()).collect();
        deadline.check(|| format!("no answer from {}", names.join(", ")))?;
        pending = still;
    }
}

/// The data node that is the master now: the sentinels' choice when one
/// answers, else the node that says it is a master.
pub fn current_master<'r>(redis: &Redis, record: &'r Record) -> Option<&'r NodeRecord> {
    sentinels_master(redis, record).or_else(|| {
        record
            .data_nodes()
            .find(|n| redis.to(record, n).info("replication").is_ok_and(|i| i.get("role") == Some("master")))
    })
}

/// The master the first answering sentinel names.
pub fn sentinels_master<'r>(redis: &Redis, record: &'r Record) -> Option<&'r NodeRecord> {
    let name = record.master_name.as_deref()?;
    record.sentinels().find_map(|s| {
        let (_, port) = sentinel_addr(redis, record, s, name).ok().flatten()?;
        record.data_nodes().find(|n| n.port == port)
    })
}

/// Where one sentinel says the master `name` is (`None`: it knows no such master).
pub fn sentinel_addr(
    redis: &Redis,
    record: &Record,
    sentinel: &NodeRecord,
    name: &str,
) -> Result<Option<(String, u16)>, BackendError> {
    redis.to(record, sentinel).query(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", name], Duration::from_secs(2))
}

/// Waits until the master has every other data node as an online replica.
pub fn wait_replicas(redis: &Redis, record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    wait_replicas_in(redis, record, deadline, "state=online")
}

/// Waits until the master lists every other data node as a replica, in
/// sync or not (what Sentinel's first look at the master needs).
pub fn wait_replicas_listed(redis: &Redis, record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    wait_replicas_in(redis, record, deadline, "state=")
}

fn wait_replicas_in(redis: &Redis, record: &Record, deadline: &Deadline, state: &str) -> Result<(), BackendError> {
    let expected = record.data_nodes().count().saturating_sub(1);
    loop {
        let mut online = 0;
        if let Some(master) = current_master(redis, record)
            && let Ok(info) = redis.to(record, master).info("replication")
            && info.get("role") == Some("master")
        {
            online = replicas(&info).filter(|r| r.contains(state)).count();
        }
        if online >= expected {
            return Ok(());
        }
        deadline.check(|| format!("{online} of {expected} replicas in sync with the master"))?;
    }
}

/// The `slaveN` fields of an `INFO replication` reply
/// (`ip=127.0.0.1,port=7011,state=online,…`).
pub fn replicas(info: &Info) -> impl Iterator<Item = &str> {
    info.0
        .iter()
        .filter(|(k, _)| k.strip_prefix("slave").is_some_and(|n| n.parse::<u32>().is_ok()))
        .map(|(_, v)| v.as_str())
}

/// The port of a replica in a `slaveN` field.
pub fn replica_port(field: &str) -> Option<u16> {
    field.split(',').find_map(|kv| kv.strip_prefix("port="))?.parse().ok()
}

/// `SENTINEL MASTER <name>`: the sentinel's view of the master, field by field.
pub fn sentinel_master(
    redis: &Redis,
    record: &Record,
    sentinel: &NodeRecord,
    name: &str,
) -> Result<BTreeMap<String, String>, BackendError> {
    redis.to(record, sentinel).query(&["SENTINEL", "MASTER", name], T)
}

/// Waits until every sentinel names the same master, sees it up, and knows
/// all its replicas and the other sentinels (what a failover needs).
pub fn wait_sentinels(redis: &Redis, record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
    let Some(name) = record.master_name.clone() else { return Ok(()) };
    let sentinels: Vec<&NodeRecord> = record.sentinels().collect();
    let replicas = record.data_nodes().count().saturating_sub(1).to_string();
    let others = sentinels.len().saturating_sub(1).to_string();
    loop {
        let mut masters = Vec::new();
        let mut complete = true;
        for s in &sentinels {
            match sentinel_master(redis, record, s, &name) {
                Ok(m) => {
                    masters.push(format!(
                        "{}:{}",
                        m.get("ip").cloned().unwrap_or_default(),
                        m.get("port").cloned().unwrap_or_default()
                    ));
                    complete &= m.get("flags").map(String::as_str) == Some("master")
                        && m.get("num-slaves") == Some(&replicas)
                        && m.get("num-other-sentinels") == Some(&others);
                }
                Err(_) => complete = false,
            }
        }
        masters.dedup();
        if complete && masters.len() == 1 {
            return Ok(());
        }
        deadline.check(|| {
            format!("sentinels to agree on the master and see {replicas} replicas and {others} other sentinels (they see {masters:?})")
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_redis_could_not_bind_is_read_from_its_log() {
        let log = "1:M 05 Dec 2026 09:00:00.000 # Warning: Could not create server TCP listening socket \
                   127.0.0.1:38260: bind: Address already in use\n1:M # Failed listening on port 38260 (cluster), aborting.";
        assert_eq!(port_in_use(log), Some(38260));
        assert_eq!(
            port_in_use("Could not create server TCP listening socket *:7000: bind: Address already in use"),
            Some(7000)
        );
        assert_eq!(port_in_use("no such line"), None);
    }

    #[test]
    fn a_log_excerpt_is_the_end_of_the_log_escaped_and_capped() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = tmp.path().join("node.log");
        let mut text: String = (0..40).map(|i| format!("line {i}\n")).collect();
        text.push_str("client sent \x1b]0;pwned\x07\r done\n");
        text.push_str(&"x".repeat(5000));
        std::fs::write(&log, text).expect("write");
        let excerpt = log_excerpt(&log);
        assert!(!excerpt.contains("line 29") && excerpt.contains("line 30"), "the last {LOG_LINES} lines: {excerpt}");
        assert!(excerpt.contains("\\u{1b}]0;pwned\\u{7}\\u{d} done"), "{excerpt}");
        assert!(excerpt.len() < LOG_BYTES + 64 && excerpt.ends_with("more bytes)"), "capped: {}", excerpt.len());
    }

    #[test]
    fn polling_backs_off_within_a_wait_and_starts_quick_in_the_next() {
        let deadline = Deadline::after(60);
        let look = |d: &Deadline| d.check(String::new).expect("not yet");
        for _ in 0..6 {
            look(&deadline);
        }
        assert_eq!(deadline.poll.get().1, POLL_MAX, "doubled up to the cap");
        deadline.check(String::new).expect("another wait");
        assert_eq!(deadline.poll.get().1, POLL_FIRST * 2, "a new call site starts again from the first pause");
    }
}

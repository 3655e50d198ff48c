//! Handing the master role over before a scale removes the node that has
//! it (after failovers, a replica at the end of the topology may be the
//! master): Sentinel's failover with the nodes that go out of the running,
//! or `FAILOVER TO` / `CLUSTER FAILOVER` to a replica that stays; and
//! replicas repointed off the nodes that go.

use super::LocalBackend;
use super::conn::{Redis, T};
use super::files;
use super::ready::{self, Deadline};
use crate::backend::BackendError;
use crate::registry::{NodeRecord, Record};
use redplate_config::model::Mode;
use std::time::{Duration, Instant};

/// How long a master about to be removed may wait for a replica that stays to be in sync.
const HAND_OVER_PATIENCE: Duration = Duration::from_secs(30);

impl LocalBackend {
    /// Moves the master role away from `name` (about to be removed) to a
    /// replica that stays, and waits until that replica is the master.
    pub(super) fn hand_over(
        &self,
        record: &Record,
        name: &str,
        removed: &[String],
        deadline: &Deadline,
    ) -> Result<(), BackendError> {
        let Some(node) = record.node(name) else {
            return Err(BackendError::UnknownNode { deployment: record.name.clone(), node: name.into() });
        };
        let conn = self.redis.to(record, node);
        // A replica in sync that stays (just after a failover, the replicas
        // may still be syncing with their new master: give them a moment).
        let patience = Deadline::after(HAND_OVER_PATIENCE.as_secs());
        let target = loop {
            let info = conn.info("replication")?;
            let found = ready::replicas(&info)
                .filter(|r| r.contains("state=online"))
                .filter_map(ready::replica_port)
                .filter_map(|port| record.data_nodes().find(|n| n.port == port))
                .find(|n| !removed.contains(&n.name));
            if let Some(t) = found {
                break t;
            }
            if patience.check(String::new).is_err() || deadline.check(String::new).is_err() {
                return Err(BackendError::CannotScale {
                    deployment: record.name.clone(),
                    reason: format!(
                        "`{name}` is a master now and no replica that stays is in sync with it; \
                         wait until one is (`redplate status {}`), then scale again",
                        record.name
                    ),
                });
            }
        };
        if record.mode == Mode::Sentinel
            && let Some(master) = &record.master_name
        {
            // The sentinels must not pick another node that goes.
            let going: Vec<&NodeRecord> = removed.iter().filter_map(|r| record.node(r)).collect();
            for r in &going {
                self.redis.to(record, r).run(&["CONFIG", "SET", "replica-priority", "0"], T)?;
            }
            let result = sentinel_failover(&self.redis, record, master, target, removed, deadline);
            if result.is_err() {
                for r in &going {
                    let usual = files::conf_value(&record.path(&r.conf), "replica-priority");
                    let usual = usual.unwrap_or_else(|| "100".into());
                    let _ = self.redis.to(record, r).run(&["CONFIG", "SET", "replica-priority", &usual], T);
                }
            }
            return result;
        }
        // A manual failover gives up after 5 s (the master may not know the
        // replica as its own yet, just after another failover): ask again.
        let mut asked: Option<Instant> = None;
        let mut refused = String::new();
        loop {
            let role = live_role(&self.redis, record, name);
            if role == "slave" && live_role(&self.redis, record, &target.name) == "master" {
                break;
            }
            if asked.is_none_or(|t| t.elapsed() >= Duration::from_secs(6)) {
                let port = target.port.to_string();
                let answer = match record.mode {
                    Mode::Cluster => self.redis.to(record, target).run(&["CLUSTER", "FAILOVER"], T),
                    _ => conn.run(&["FAILOVER", "TO", "127.0.0.1", &port, "TIMEOUT", "5000"], T),
                };
                refused = answer.err().map(|e| format!("; last answer: {e}")).unwrap_or_default();
                asked = Some(Instant::now());
            }
            deadline
                .check(|| format!("`{name}` to hand the master role to `{}` (it is `{role}`{refused})", target.name))?;
        }
        if record.mode == Mode::Replication {
            self.repoint_replicas(record, name)?;
        }
        Ok(())
    }
}

/// `SENTINEL FAILOVER`, until every sentinel has finished it with `target`
/// or another replica that stays as the master. Asked again when a
/// failover ends without one (a sentinel aborts when it finds no replica it
/// may promote: its view of the replicas is refreshed every 10 s).
fn sentinel_failover(
    redis: &Redis,
    record: &Record,
    master: &str,
    target: &NodeRecord,
    removed: &[String],
    deadline: &Deadline,
) -> Result<(), BackendError> {
    let sentinel = record.sentinels().next().ok_or_else(|| BackendError::Command {
        node: record.name.clone(),
        command: "SENTINEL FAILOVER".into(),
        message: "the deployment has no sentinel".into(),
    })?;
    let s = redis.to(record, sentinel);
    let mut asked: Option<Instant> = None;
    let mut answer = String::new();
    loop {
        let mut views = Vec::new();
        for s in record.sentinels() {
            let view = ready::sentinel_master(redis, record, s, master).unwrap_or_default();
            let port = view.get("port").and_then(|p| p.parse::<u16>().ok());
            let node = record.data_nodes().find(|n| Some(n.port) == port).map(|n| n.name.clone());
            views.push((node, view.get("flags").cloned().unwrap_or_default()));
        }
        // Every sentinel done (`SENTINEL RESET` would cancel a failover in
        // progress and put the old address back).
        let done = views.iter().all(|(node, flags)| {
            node.as_ref().is_some_and(|n| !removed.contains(n) && live_role(redis, record, n) == "master")
                && flags == "master"
        });
        if done {
            return Ok(());
        }
        let idle = views.first().is_some_and(|(node, flags)| {
            node.as_ref().is_some_and(|n| removed.contains(n)) && !flags.contains("failover")
        });
        if idle && asked.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
            // `NOGOODSLAVE` or `INPROG` while the sentinels settle: asked again later.
            answer = match s.run(&["SENTINEL", "FAILOVER", master], T) {
                Ok(_) => String::new(),
                Err(e) => format!("; `SENTINEL FAILOVER` answered: {e}"),
            };
            asked = Some(Instant::now());
        }
        deadline.check(|| {
            format!(
                "every sentinel to finish a failover to a replica that stays, such as `{}` (they see {views:?}{answer})",
                target.name
            )
        })?;
    }
}

/// Repoints replicas that stay but follow a node about to go (chained
/// replication, left by the `FAILOVER` command) to the current master.
pub(super) fn follow_the_master(redis: &Redis, record: &Record, removed: &[String]) -> Result<(), BackendError> {
    let Some(master) = ready::current_master(redis, record) else { return Ok(()) };
    let going: Vec<u16> = removed.iter().filter_map(|r| record.node(r)).map(|n| n.port).collect();
    for n in record.data_nodes().filter(|n| !removed.contains(&n.name) && n.name != master.name) {
        let conn = redis.to(record, n);
        let follows = conn.info("replication")?.uint("master_port").and_then(|p| u16::try_from(p).ok());
        if follows.is_some_and(|p| going.contains(&p)) {
            conn.run(&["REPLICAOF", "127.0.0.1", &master.port.to_string()], T)?;
            conn.run(&["CONFIG", "REWRITE"], T)?;
        }
    }
    Ok(())
}

/// What a node says its role is (`master`, `slave`), or empty.
pub(super) fn live_role(redis: &Redis, record: &Record, name: &str) -> String {
    record
        .node(name)
        .and_then(|n| redis.to(record, n).info("replication").ok())
        .and_then(|i| i.get("role").map(str::to_owned))
        .unwrap_or_default()
}

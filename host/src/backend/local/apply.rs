//! `apply` for a running local deployment: the newly rendered tree is
//! compared with the tree rendered last time (kept in `.rendered/`, since
//! Redis and Sentinel rewrite the live configs), and each difference is
//! applied the gentlest way Redis allows: `CONFIG SET` + `CONFIG REWRITE`,
//! `ACL LOAD`, `SENTINEL SET`; otherwise a rolling restart — replicas first,
//! then a failover, then the old master.

use super::conn::T;
use super::ready::{self, Deadline};
use super::{LocalBackend, STOP_GRACE, cluster, files, process};
use crate::artifact::ArtifactSet;
use crate::backend::{BackendError, Progress};
use crate::registry::{NodeRecord, Record};
use redplate_config::model::Mode;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// The pristine copy of the last render, relative to the state folder.
pub const RENDERED: &str = ".rendered";

/// Directive → its arguments (every occurrence, in order), quotes removed.
pub(crate) fn directives(path: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let key = key.to_lowercase();
        // `sentinel <option> <master> …`: the option is the key.
        let (key, rest) = if key == "sentinel" {
            let (opt, more) = rest.trim().split_once(char::is_whitespace).unwrap_or((rest.trim(), ""));
            (format!("sentinel {opt}"), more)
        } else {
            (key, rest)
        };
        out.entry(key).or_default().push(rest.trim().trim_matches('"').to_owned());
    }
    out
}

/// Sets `keys` on a running node with `CONFIG SET` to their values in
/// `new`, in order, until Redis refuses one: what was set (`key value`),
/// and why the refused one was (removed from the config, or Redis's answer).
pub(crate) fn config_set(
    conn: &super::conn::Conn,
    keys: &[String],
    new: &BTreeMap<String, Vec<String>>,
) -> (Vec<String>, Option<String>) {
    let mut set = Vec::new();
    for key in keys {
        let Some(values) = new.get(key) else { return (set, Some(format!("`{key}` removed"))) };
        let value = values.join(" ");
        match conn.run(&["CONFIG", "SET", key, &value], T) {
            Ok(_) => set.push(format!("{key} {value}")),
            Err(e) => return (set, Some(format!("`{key}`: {e}"))),
        }
    }
    (set, None)
}

/// The `SENTINEL SET <master>` option and value for the changed sentinel
/// setting `key` (as [`directives`] names it) in `new`; `None`: a running
/// sentinel cannot change it.
pub(crate) fn sentinel_set(key: &str, new: &BTreeMap<String, Vec<String>>) -> Option<(&'static str, String)> {
    let value = new.get(key).and_then(|v| v.first()).cloned().unwrap_or_default();
    let words: Vec<&str> = value.split_whitespace().collect();
    let (option, at) = match key.trim_start_matches("sentinel ") {
        "down-after-milliseconds" => ("down-after-milliseconds", 1),
        "failover-timeout" => ("failover-timeout", 1),
        "parallel-syncs" => ("parallel-syncs", 1),
        "monitor" => ("quorum", 3),
        _ => return None,
    };
    words.get(at).map(|v| (option, (*v).to_owned()))
}

/// Keys whose values differ between two configs.
pub(crate) fn changed(old: &BTreeMap<String, Vec<String>>, new: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter().filter(|k| old.get(*k) != new.get(*k)).cloned().collect()
}

fn copy(from: &Path, to: &Path) -> Result<(), BackendError> {
    let bytes = std::fs::read(from).map_err(BackendError::io("read", from))?;
    Ok(crate::registry::write_atomic(to, &bytes, true)?)
}

impl LocalBackend {
    /// Applies a new render to the running `record`: staged in a folder of
    /// its own inside the state folder, then compared and applied; returns
    /// one line per action taken.
    pub(super) fn update_to(
        &self,
        record: &mut Record,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, BackendError> {
        let staging = tempfile::Builder::new()
            .prefix(".apply-")
            .tempdir_in(&record.state_dir)
            .map_err(BackendError::io("create a staging folder in", &record.state_dir))?;
        files::write_tree(artifacts, staging.path())?;
        self.apply_changes(record, staging.path(), progress)
    }

    /// Applies the tree rendered into `staged` to the running `record`;
    /// returns one line per action taken.
    fn apply_changes(
        &self,
        record: &mut Record,
        staged: &Path,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, BackendError> {
        let pristine = record.path(RENDERED);
        let mut report = Vec::new();
        let deadline = Deadline::after(self.timeout_secs);

        // ACL users: one file for every node, reloaded in place.
        let acl = "redis/users.acl";
        if std::fs::read(pristine.join(acl)).ok() != std::fs::read(staged.join(acl)).ok() && staged.join(acl).exists() {
            progress.step("reloading the ACL users");
            copy(&staged.join(acl), &record.path(acl))?;
            files::add_admin_user(&record.state_dir)?;
            for node in record.data_nodes() {
                self.redis.to(record, node).run(&["ACL", "LOAD"], T)?;
            }
            report.push(format!("users.acl: reloaded (ACL LOAD) on {} nodes", record.data_nodes().count()));
        }

        // Data nodes: CONFIG SET what Redis changes at runtime, restart the rest.
        let mut restart: Vec<String> = Vec::new();
        for node in record.data_nodes() {
            let old = directives(&pristine.join(&node.conf));
            let new = directives(&staged.join(&node.conf));
            let keys: Vec<String> =
                changed(&old, &new).into_iter().filter(|k| !matches!(k.as_str(), "replicaof" | "slaveof")).collect();
            if keys.is_empty() {
                continue;
            }
            let conn = self.redis.to(record, node);
            let (set, refused) = config_set(&conn, &keys, &new);
            match refused {
                None => {
                    conn.run(&["CONFIG", "REWRITE"], T)?;
                    report.push(format!("{}: CONFIG SET {} (rewritten)", node.name, set.join(", ")));
                }
                Some(why) => {
                    report.push(format!("{}: restart needed ({why})", node.name));
                    restart.push(node.name.clone());
                }
            }
        }
        if !restart.is_empty() {
            report.extend(self.rolling_restart(record, &restart, staged, &deadline, progress)?);
        }

        // Sentinels: the timers and the quorum through SENTINEL SET.
        if let Some(name) = record.master_name.clone() {
            for s in record.sentinels() {
                let old = directives(&pristine.join(&s.conf));
                let new = directives(&staged.join(&s.conf));
                for key in changed(&old, &new) {
                    match sentinel_set(&key, &new) {
                        Some((option, v)) => {
                            self.redis.to(record, s).run(&["SENTINEL", "SET", &name, option, &v], T)?;
                            report.push(format!("{}: SENTINEL SET {name} {option} {v}", s.name));
                        }
                        None => report.push(format!("{}: `{key}` changed; not applied to a running sentinel", s.name)),
                    }
                }
            }
        }

        // Everything else (secrets, scripts) is written as rendered; the
        // pristine copy becomes this render.
        for entry in walk(staged) {
            let rel = entry.strip_prefix(staged).unwrap_or(&entry).to_path_buf();
            let live = record.state_dir.join(&rel);
            let text = rel.to_string_lossy();
            if !(text.ends_with(".conf") || text == acl) {
                copy(&entry, &live)?;
            }
            copy(&entry, &pristine.join(&rel))?;
        }
        if report.is_empty() {
            report.push("no change".into());
        }
        Ok(report)
    }

    /// Restarts the named data nodes with their new configs: replicas
    /// first, then the master after a failover (Sentinel's, the `FAILOVER`
    /// command, or `CLUSTER FAILOVER` from one of its replicas).
    fn rolling_restart(
        &self,
        record: &mut Record,
        names: &[String],
        staged: &Path,
        deadline: &Deadline,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, BackendError> {
        // One replica resyncs at a time: its master need not wait the whole
        // `repl-diskless-sync-delay` for others. Put back afterwards.
        self.set_all(record, "repl-diskless-sync-max-replicas", "1");
        let result = self.restart_in_order(record, names, staged, deadline, progress);
        let usual = process::replicas_per_master(record).to_string();
        self.set_all(record, "repl-diskless-sync-max-replicas", &usual);
        result
    }

    fn restart_in_order(
        &self,
        record: &mut Record,
        names: &[String],
        staged: &Path,
        deadline: &Deadline,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, BackendError> {
        let mut report = Vec::new();
        let role = |record: &Record, n: &NodeRecord| {
            let info = self.redis.to(record, n).info("replication").ok();
            info.and_then(|i| i.get("role").map(str::to_owned)).unwrap_or_default()
        };
        let (replicas, masters): (Vec<String>, Vec<String>) =
            names.iter().cloned().partition(|n| record.node(n).is_some_and(|node| role(record, node) == "slave"));
        for name in &replicas {
            progress.step(&format!("restarting replica {name}"));
            self.restart_one(record, name, staged, deadline)?;
            // A restarted node starts with the usual value again.
            self.set_all(record, "repl-diskless-sync-max-replicas", "1");
            report.push(format!("{name}: restarted (replica)"));
        }
        for name in &masters {
            progress.step(&format!("failing over from {name}"));
            self.fail_over_from(record, name, deadline)?;
            progress.step(&format!("restarting old master {name}"));
            self.restart_one(record, name, staged, deadline)?;
            self.set_all(record, "repl-diskless-sync-max-replicas", "1");
            report.push(format!("{name}: failed over, restarted as a replica"));
        }
        Ok(report)
    }

    fn restart_one(
        &self,
        record: &mut Record,
        name: &str,
        staged: &Path,
        deadline: &Deadline,
    ) -> Result<(), BackendError> {
        let Some(i) = record.nodes.iter().position(|n| n.name == name) else {
            return Err(BackendError::UnknownNode { deployment: record.name.clone(), node: name.into() });
        };
        if let Some(pid) = record.nodes[i].pid {
            process::stop(pid, &record.state_dir, STOP_GRACE);
        }
        record.nodes[i].pid = None;
        // The cluster's own state lives in `nodes.conf`, not in redis.conf.
        let conf = record.nodes[i].conf.clone();
        copy(&staged.join(&conf), &record.path(&conf))?;
        let follow = match record.mode {
            Mode::Cluster => None,
            _ => ready::current_master(&self.redis, record).filter(|m| m.name != name).map(|m| m.port),
        };
        let mut children = BTreeMap::new();
        let child = process::spawn(record, &record.nodes[i], follow)?;
        record.nodes[i].pid = Some(child.id());
        children.insert(name.to_owned(), child);
        let node = record.nodes[i].clone();
        ready::wait_up(&self.redis, record, &[&node], &mut children, deadline)?;
        // Keep the role it was started with (`--replicaof`) in its config.
        let _ = self.redis.to(record, &node).run(&["CONFIG", "REWRITE"], T);
        match record.mode {
            Mode::Cluster => cluster::form(&self.redis, record, deadline),
            _ => ready::wait_replicas(&self.redis, record, deadline),
        }
    }

    /// Makes another node the master in place of `name` and waits until
    /// `name` reports itself a replica.
    fn fail_over_from(&self, record: &Record, name: &str, deadline: &Deadline) -> Result<(), BackendError> {
        let Some(old) = record.node(name) else {
            return Err(BackendError::UnknownNode { deployment: record.name.clone(), node: name.into() });
        };
        let conn = self.redis.to(record, old);
        let t = Duration::from_secs(10);
        match (record.mode, &record.master_name) {
            (Mode::Sentinel, Some(master)) => {
                let s = record.sentinels().next().ok_or_else(|| BackendError::Command {
                    node: record.name.clone(),
                    command: "SENTINEL FAILOVER".into(),
                    message: "the deployment has no sentinel".into(),
                })?;
                self.redis.to(record, s).run(&["SENTINEL", "FAILOVER", master], t)?;
            }
            (Mode::Cluster, _) => {
                let info = conn.info("replication")?;
                let port = ready::replicas(&info).next().and_then(ready::replica_port);
                let replica = port.and_then(|p| record.data_nodes().find(|n| n.port == p)).ok_or_else(|| {
                    BackendError::Command {
                        node: name.into(),
                        command: "INFO replication".into(),
                        message: "the master has no replica to fail over to".into(),
                    }
                })?;
                self.redis.to(record, replica).run(&["CLUSTER", "FAILOVER"], t)?;
            }
            _ => {
                conn.run(&["FAILOVER", "TIMEOUT", "10000"], t)?;
            }
        }
        loop {
            // Sentinel converts the old master only at its next look (up to
            // 10 s); it is restarted as a replica right away instead.
            if record.mode == Mode::Sentinel
                && ready::sentinels_master(&self.redis, record).is_some_and(|m| m.name != name)
            {
                return Ok(());
            }
            let info = conn.info("replication").ok();
            let role = info.and_then(|i| i.get("role").map(str::to_owned)).unwrap_or_default();
            if role == "slave" {
                break;
            }
            deadline.check(|| format!("`{name}` to become a replica after the failover (it is `{role}`)"))?;
        }
        if record.mode == Mode::Replication {
            self.repoint_replicas(record, name)?;
        }
        Ok(())
    }

    /// After `FAILOVER` (which moves only the old master under the new one),
    /// the other replicas follow the new master directly.
    pub(super) fn repoint_replicas(&self, record: &Record, old: &str) -> Result<(), BackendError> {
        let Some(old_node) = record.node(old) else { return Ok(()) };
        let info = self.redis.to(record, old_node).info("replication")?;
        let Some(port) = info.uint("master_port").and_then(|p| u16::try_from(p).ok()) else { return Ok(()) };
        if let Some(new_master) = record.data_nodes().find(|n| n.port == port) {
            // FAILOVER does not write the promotion into the config.
            self.redis.to(record, new_master).run(&["CONFIG", "REWRITE"], T)?;
        }
        for n in record.data_nodes().filter(|n| n.name != old && n.port != port) {
            let conn = self.redis.to(record, n);
            let follows = conn.info("replication")?.uint("master_port");
            if follows != Some(u64::from(port)) {
                conn.run(&["REPLICAOF", "127.0.0.1", &port.to_string()], T)?;
                conn.run(&["CONFIG", "REWRITE"], T)?;
            }
        }
        Ok(())
    }
}

/// Every file under `dir`.
pub(crate) fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_directives_are_found_and_sentinel_options_keyed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = tmp.path().join("a.conf");
        let b = tmp.path().join("b.conf");
        std::fs::write(&a, "port 7000\nsave \"900 1\"\nsentinel down-after-milliseconds m 10000\n# x\n").expect("a");
        std::fs::write(&b, "port 7000\nsave \"60 5\"\nsentinel down-after-milliseconds m 2000\ndatabases 8\n")
            .expect("b");
        let (old, new) = (directives(&a), directives(&b));
        assert_eq!(changed(&old, &new), ["databases", "save", "sentinel down-after-milliseconds"]);
        assert_eq!(new["save"], ["60 5"]);
        assert_eq!(new["sentinel down-after-milliseconds"], ["m 2000"]);
    }

    #[test]
    fn sentinel_settings_map_to_sentinel_set_and_the_others_to_none() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = tmp.path().join("s.conf");
        std::fs::write(
            &f,
            "sentinel monitor m h 7000 2\nsentinel down-after-milliseconds m 2000\nsentinel parallel-syncs m 1\n\
             sentinel resolve-hostnames yes\n",
        )
        .expect("write");
        let new = directives(&f);
        assert_eq!(sentinel_set("sentinel monitor", &new), Some(("quorum", "2".to_owned())));
        assert_eq!(
            sentinel_set("sentinel down-after-milliseconds", &new),
            Some(("down-after-milliseconds", "2000".into()))
        );
        assert_eq!(sentinel_set("sentinel parallel-syncs", &new), Some(("parallel-syncs", "1".into())));
        assert_eq!(sentinel_set("sentinel resolve-hostnames", &new), None, "not changed at run time");
        assert_eq!(sentinel_set("sentinel failover-timeout", &new), None, "removed");
    }
}

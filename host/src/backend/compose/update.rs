//! `apply` (and `scale --memory`) for a running Compose project: the new
//! render is compared with the last one (`.rendered/`) and each difference
//! is applied the gentlest way the containers allow:
//!
//! - a data node's config: `CONFIG SET` + `CONFIG REWRITE` (into the copy
//!   the node runs from, on its volume); what Redis does not change at run
//!   time restarts the node with the new config in the role it has now;
//! - `users.acl`: written to every data node's copy, then `ACL LOAD`;
//! - a sentinel's timers and quorum: `SENTINEL SET`;
//! - a service's settings in the compose file (image, memory and CPU
//!   limits, health check, …): the container is made anew
//!   (`up --no-deps --force-recreate`); its volume keeps the data and the
//!   config it runs from.
//!
//! Restarts go replicas first, then each master after a failover (Sentinel's
//! or `CLUSTER FAILOVER`); without either, the master last. Refused before
//! anything changes: services added or removed, published ports or host
//! names changed, other top-level settings of the compose file, a sentinel
//! setting `SENTINEL SET` cannot change, a node that would restart holding
//! data it does not persist. Each node's copy is marked as seeded from the
//! new render, so a later restart keeps it; the state folder and
//! `.rendered/` take the new render last, so an interrupted `apply` run
//! again finds the same differences and finishes.

use super::engine::{Container, Engine};
use super::{ComposeBackend, plan, project, running};
use crate::artifact::ArtifactSet;
use crate::backend::local::apply::{RENDERED, changed, config_set, directives, sentinel_set, walk};
use crate::backend::local::conn::T;
use crate::backend::local::ready::{self, Deadline};
use crate::backend::local::{cluster, files};
use crate::backend::{BackendError, Progress};
use crate::registry::{NodeRecord, Record};
use redplate_config::Role;
use redplate_config::model::Mode;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;
use yaml_rust2::{Yaml, YamlLoader};

const ACL: &str = "redis/users.acl";

impl ComposeBackend {
    /// Applies `artifacts` (a new render, same nodes) to the running `record`.
    pub(super) fn update_to(
        &self,
        record: &mut Record,
        artifacts: &ArtifactSet,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, BackendError> {
        let refuse = |reason: String| BackendError::CannotApply { deployment: record.name.clone(), reason };
        if !running(record) {
            return Err(refuse(format!("it is {}; run `redplate start {}` first", record.state, record.name)));
        }
        let engine = self.engine()?;
        let staging = tempfile::Builder::new()
            .prefix(".apply-")
            .tempdir_in(&record.state_dir)
            .map_err(BackendError::io("create a staging folder in", &record.state_dir))?;
        let staged = staging.path();
        files::write_tree(artifacts, staged)?;
        let pristine = record.path(RENDERED);

        // What must change, decided before anything is touched.
        let recreate = services_to_recreate(&pristine.join(plan::COMPOSE_FILE), &staged.join(plan::COMPOSE_FILE))
            .map_err(&refuse)?;
        let sentinel_keys = self.sentinel_changes(record, &pristine, staged).map_err(&refuse)?;
        let rotated = services_with_changed_secrets(&pristine, staged).map_err(&refuse)?;
        let acl_changed =
            std::fs::read(pristine.join(ACL)).ok() != std::fs::read(staged.join(ACL)).ok() && staged.join(ACL).exists();
        // A password file changed: the containers it is a secret of need new ones.
        let mut renew: BTreeSet<String> = recreate.clone();
        renew.extend(rotated);
        let config_changes: Vec<(NodeRecord, Vec<String>)> = record
            .data_nodes()
            .map(|n| {
                let old = directives(&pristine.join(&n.conf));
                let new = directives(&staged.join(&n.conf));
                let keys = changed(&old, &new).into_iter().filter(|k| !matches!(k.as_str(), "replicaof" | "slaveof"));
                (n.clone(), keys.collect::<Vec<_>>())
            })
            .filter(|(_, keys)| !keys.is_empty())
            .collect();
        // Without Sentinel or a cluster to fail over to, a master restarts
        // as the master: what it does not persist would be gone.
        if matches!(record.mode, Mode::Standalone | Mode::Replication) {
            let lose = self.unpersisted_nodes(record);
            let mut restarting = renew.clone();
            for (node, keys) in &config_changes {
                if !self.settable(record, node, keys) {
                    restarting.insert(node.name.clone());
                }
            }
            let masters: Vec<String> = record
                .data_nodes()
                .filter(|n| restarting.contains(&n.name))
                .filter(|n| lose.contains(&n.name))
                .filter(|n| self.redis.to(record, n).info("replication").is_ok_and(|i| i.get("role") == Some("master")))
                .map(|n| n.name.clone())
                .collect();
            if !masters.is_empty() {
                return Err(refuse(format!(
                    "the change may restart {}, a master that persists nothing (no AOF, no `save`): its data \
                     would be lost; turn persistence on first (`persistence` in the template, applied on its \
                     own), or destroy and deploy",
                    masters.join(", ")
                )));
            }
        }

        // An image the new containers need that cannot be had stops it here.
        if !renew.is_empty() {
            for image in plan::images_in(&staged.join(plan::COMPOSE_FILE)) {
                engine.ensure_image(&image, Duration::from_secs(300))?;
            }
        }

        let mut report = Vec::new();
        let containers = engine.containers(&record.name)?;
        let container = |name: &str| -> Result<Container, BackendError> {
            containers.iter().find(|c| c.service == name).cloned().ok_or_else(|| BackendError::Engine {
                command: format!("{} ps", engine.cli),
                message: format!("`{name}` has no container"),
            })
        };

        // Data nodes' configs: set at run time where Redis allows it.
        let mut restart: BTreeSet<String> = BTreeSet::new();
        for (node, keys) in &config_changes {
            let new = directives(&staged.join(&node.conf));
            let conn = self.redis.to(record, node);
            let (set, refused) = config_set(&conn, keys, &new);
            if !set.is_empty() {
                conn.run(&["CONFIG", "REWRITE"], T)?;
                report.push(format!("{}: CONFIG SET {} (rewritten)", node.name, set.join(", ")));
            }
            if let Some(why) = refused {
                report.push(format!("{}: restart needed ({why})", node.name));
                restart.insert(node.name.clone());
            }
        }

        // Each node's copy marked as seeded from the new render: a restart
        // keeps what it runs from (Sentinel's `replicaof` included).
        // A node that restarts for a setting gets the new config written
        // just before its restart ([`Self::renew_in_order`]): a failover's
        // `CONFIG REWRITE` would write the old setting back over it.
        let mut new_configs = BTreeMap::new();
        for (node, _) in &config_changes {
            let c = container(&node.name)?;
            let dir = self.data_dir(record, node)?;
            let rendered = read(&staged.join(&node.conf))?;
            engine.write_file(&c, &format!("{dir}/redis.seed.conf"), rendered.as_bytes())?;
            if restart.contains(&node.name) {
                new_configs.insert(node.name.clone(), (format!("{dir}/redis.conf"), rendered));
            }
        }

        // ACL users: the new file (with redplate's own user) in every data
        // node's copy, then reloaded.
        if acl_changed {
            progress.step("reloading the ACL users");
            let text = with_admin_user(record, staged)?;
            for node in record.data_nodes() {
                let c = container(&node.name)?;
                let dir = self.data_dir(record, node)?;
                engine.write_file(&c, &format!("{dir}/users.acl"), text.as_bytes())?;
                engine.write_file(&c, &format!("{dir}/users.seed.acl"), text.as_bytes())?;
                self.redis.to(record, node).run(&["ACL", "LOAD"], T)?;
            }
            report.push(format!("users.acl: reloaded (ACL LOAD) on {} nodes", record.data_nodes().count()));
        }

        // Sentinels: timers and quorum.
        if let Some(name) = record.master_name.clone() {
            for (s, keys) in &sentinel_keys {
                let new = directives(&staged.join(&s.conf));
                for key in keys {
                    let Some((option, arg)) = sentinel_set(key, &new) else { continue };
                    self.redis.to(record, s).run(&["SENTINEL", "SET", &name, option, &arg], T)?;
                    report.push(format!("{}: SENTINEL SET {name} {option} {arg}", s.name));
                }
                let c = container(&s.name)?;
                let dir = sentinel_dir(&staged.join(plan::COMPOSE_FILE), &s.name)?;
                engine.write_file(&c, &format!("{dir}/sentinel.seed.conf"), read(&staged.join(&s.conf))?.as_bytes())?;
            }
        }

        // The new render becomes the state folder's (what the containers
        // mount), handed to the containers' user, before any restart.
        for entry in walk(staged) {
            let rel = entry.strip_prefix(staged).unwrap_or(&entry).to_path_buf();
            copy(&entry, &record.state_dir.join(&rel))?;
        }
        files::add_admin_user(&record.state_dir)?;
        plan::refresh(engine, record)?;

        // Restarts and new containers, gentlest order.
        restart.extend(renew);
        if !restart.is_empty() {
            report.extend(self.renew_in_order(engine, record, &restart, &new_configs, progress)?);
        }

        for entry in walk(staged) {
            let rel = entry.strip_prefix(staged).unwrap_or(&entry).to_path_buf();
            copy(&entry, &pristine.join(&rel))?;
        }
        if report.is_empty() {
            report.push("no change".into());
        }
        Ok(report)
    }

    /// Sentinels whose rendered settings changed, with the keys; `Err` names
    /// a setting `SENTINEL SET` cannot change.
    fn sentinel_changes(
        &self,
        record: &Record,
        pristine: &Path,
        staged: &Path,
    ) -> Result<Vec<(NodeRecord, Vec<String>)>, String> {
        let mut out = Vec::new();
        for s in record.sentinels() {
            let old = directives(&pristine.join(&s.conf));
            let new = directives(&staged.join(&s.conf));
            let keys = changed(&old, &new);
            if let Some(k) = keys.iter().find(|k| sentinel_set(k, &new).is_none()) {
                return Err(format!(
                    "`{k}` of `{}` changed, and a running sentinel changes only its timers and quorum \
                     (`SENTINEL SET`); destroy and deploy",
                    s.name
                ));
            }
            if let Some(old_monitor) = old.get("sentinel monitor").and_then(|v| v.first())
                && let Some(new_monitor) = new.get("sentinel monitor").and_then(|v| v.first())
            {
                let head = |m: &str| m.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
                if head(old_monitor) != head(new_monitor) {
                    return Err(format!(
                        "the master `{}` monitors changed; a running sentinel changes only its quorum; destroy and deploy",
                        s.name
                    ));
                }
            }
            if !keys.is_empty() {
                out.push((s.clone(), keys));
            }
        }
        Ok(out)
    }

    /// Whether `node` changes every one of `keys` at run time: each set to
    /// the value it has now (Redis refuses an immutable setting whatever
    /// the value, and a no-op changes nothing).
    fn settable(&self, record: &Record, node: &NodeRecord, keys: &[String]) -> bool {
        let conn = self.redis.to(record, node);
        keys.iter().all(|key| {
            let now: Vec<String> = conn.query(&["CONFIG", "GET", key], T).unwrap_or_default();
            match now.as_slice() {
                [_, value] => conn.run(&["CONFIG", "SET", key, value], T).is_ok(),
                _ => false,
            }
        })
    }

    /// The running data nodes that persist nothing.
    fn unpersisted_nodes(&self, record: &Record) -> Vec<String> {
        use super::super::Backend;
        self.unpersisted(record)
    }

    /// A data node's data folder in its container (`CONFIG GET dir`).
    fn data_dir(&self, record: &Record, node: &NodeRecord) -> Result<String, BackendError> {
        let (_, dir): (String, String) = self.redis.to(record, node).query(&["CONFIG", "GET", "dir"], T)?;
        Ok(dir)
    }

    /// `rendered` with the `replicaof` of the role `node` has now: Sentinel
    /// or a failover may have moved it since the render.
    fn in_current_role(&self, record: &Record, node: &NodeRecord, rendered: &str) -> Result<String, BackendError> {
        let mut text: String = rendered
            .lines()
            .filter(|l| {
                let first = l.split_whitespace().next().unwrap_or_default().to_ascii_lowercase();
                first != "replicaof" && first != "slaveof"
            })
            .map(|l| format!("{l}\n"))
            .collect();
        if record.mode != Mode::Cluster {
            let info = self.redis.to(record, node).info("replication")?;
            if info.get("role") == Some("slave")
                && let (Some(host), Some(port)) = (info.get("master_host"), info.get("master_port"))
            {
                // A reply goes into a config file: one word each, or no line at all.
                let word = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_graphic() && c != '"');
                if !(word(host) && port.chars().all(|c| c.is_ascii_digit())) {
                    return Err(BackendError::Command {
                        node: node.name.clone(),
                        command: "INFO replication".into(),
                        message: format!(
                            "its master is named `{}:{}`, which cannot go into a config file",
                            crate::text::clean(host, 100),
                            crate::text::clean(port, 20)
                        ),
                    });
                }
                text.push_str(&format!("replicaof {host} {port}\n"));
            }
        }
        Ok(text)
    }

    /// Makes the named nodes' containers anew (they start with the new
    /// render; a node in `new_configs` from that config, in its current
    /// role): sentinels, then replicas, then masters — after a failover
    /// where Sentinel or the cluster can make one.
    fn renew_in_order(
        &self,
        engine: &Engine,
        record: &Record,
        names: &BTreeSet<String>,
        new_configs: &BTreeMap<String, (String, String)>,
        progress: &dyn Progress,
    ) -> Result<Vec<String>, BackendError> {
        let mut report = Vec::new();
        let role_of = |n: &NodeRecord| {
            let info = self.redis.to(record, n).info("replication").ok();
            info.and_then(|i| i.get("role").map(str::to_owned)).unwrap_or_default()
        };
        let mut order: Vec<(&NodeRecord, u8)> = record
            .nodes
            .iter()
            .filter(|n| names.contains(&n.name))
            .map(|n| {
                let rank = match n.role {
                    Role::Sentinel => 0,
                    _ if role_of(n) == "slave" => 1,
                    _ => 2,
                };
                (n, rank)
            })
            .collect();
        order.sort_by_key(|(_, rank)| *rank);
        for (node, rank) in order {
            let deadline = Deadline::after(self.timeout_secs);
            let how = match rank {
                0 => "sentinel",
                1 => "replica",
                _ => match record.mode {
                    Mode::Sentinel | Mode::Cluster => {
                        progress.step(&format!("failing over from {}", node.name));
                        self.fail_over_from(record, node, &[], &deadline)?;
                        "failed over, now a replica"
                    }
                    _ => "master: writes wait while it starts",
                },
            };
            if let Some((path, rendered)) = new_configs.get(&node.name) {
                // The new config in the role the node has now.
                let live = self.in_current_role(record, node, rendered)?;
                let containers = engine.containers(&record.name)?;
                let c = containers.iter().find(|c| c.service == node.name).ok_or_else(|| BackendError::Engine {
                    command: format!("{} ps", engine.cli),
                    message: format!("`{}` has no container", node.name),
                })?;
                engine.write_file(c, path, live.as_bytes())?;
            }
            progress.step(&format!("making {} anew", node.name));
            self.make_anew(engine, record, &node.name)?;
            self.wait_up(engine, record, &deadline)?;
            self.wait_healthy_node(engine, record, node, &deadline)?;
            match record.mode {
                Mode::Cluster => cluster::wait_healthy(&self.redis, record, &deadline)?,
                Mode::Sentinel => {
                    self.wait_synced(record, &deadline)?;
                    ready::wait_sentinels(&self.redis, record, &deadline)?;
                }
                _ => self.wait_synced(record, &deadline)?,
            }
            report.push(format!("{}: new container ({how})", node.name));
        }
        // The exporters; not the one-shot cluster-init (the cluster is formed).
        let init = plan::init_service(record);
        for service in names.iter().filter(|s| record.node(s).is_none() && **s != init) {
            progress.step(&format!("making {service} anew"));
            self.make_anew(engine, record, service)?;
            report.push(format!("{service}: new container"));
        }
        Ok(report)
    }

    /// Stops `service`'s container (its server saves), removes it and has
    /// compose make it again from the compose file as it is now. Not `up
    /// --force-recreate`: podman-compose then also takes down the running
    /// services that depend on it — a replica's master may be one of them
    /// after a failover.
    fn make_anew(&self, engine: &Engine, record: &Record, service: &str) -> Result<(), BackendError> {
        let project = project(record);
        if let Some(c) = engine.containers(&record.name)?.into_iter().find(|c| c.service == service) {
            engine.compose(&project, &["stop", "-t", "30", service], Duration::from_secs(90))?;
            engine.cli_ok(&["rm", "-f", &c.id], Duration::from_secs(60))?;
        }
        engine.compose(&project, &["up", "-d", "--no-deps", service], Duration::from_secs(300)).map(|_| ())
    }

    /// Runs `node`'s rendered health check until it passes.
    fn wait_healthy_node(
        &self,
        engine: &Engine,
        record: &Record,
        node: &NodeRecord,
        deadline: &Deadline,
    ) -> Result<(), BackendError> {
        loop {
            let containers = engine.containers(&record.name)?;
            if let Some(c) = containers.iter().find(|c| c.service == node.name)
                && engine.healthy(c)?
            {
                return Ok(());
            }
            deadline.check(|| format!("the rendered health check of {} to pass", node.name))?;
        }
    }

    /// Moves the master role away from `old` (Sentinel's `FAILOVER`, or
    /// `CLUSTER FAILOVER` from one of its replicas not in `avoid`) and
    /// waits until it is a replica.
    pub(super) fn fail_over_from(
        &self,
        record: &Record,
        old: &NodeRecord,
        avoid: &[String],
        deadline: &Deadline,
    ) -> Result<(), BackendError> {
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
            _ => {
                let id = cluster::my_id(&self.redis, record, old)?;
                let replica = record.data_nodes().find(|n| {
                    n.name != old.name
                        && !avoid.contains(&n.name)
                        && self.redis.to(record, n).info("replication").is_ok_and(|i| i.get("role") == Some("slave"))
                        && self
                            .redis
                            .to(record, n)
                            .query::<String>(&["CLUSTER", "NODES"], T)
                            .is_ok_and(|nodes| nodes.lines().any(|l| l.contains("myself") && l.contains(&id)))
                });
                let replica = replica.ok_or_else(|| BackendError::Command {
                    node: old.name.clone(),
                    command: "CLUSTER NODES".into(),
                    message: "the master has no replica to fail over to".into(),
                })?;
                self.redis.to(record, replica).run(&["CLUSTER", "FAILOVER"], t)?;
            }
        }
        loop {
            let role = conn.info("replication").ok().and_then(|i| i.get("role").map(str::to_owned));
            if role.as_deref() == Some("slave") {
                return Ok(());
            }
            deadline.check(|| format!("`{}` to become a replica after the failover", old.name))?;
        }
    }
}

/// Services whose compose settings changed (they need new containers);
/// `Err` says why the change cannot be applied to the running project.
fn services_to_recreate(old: &Path, new: &Path) -> Result<BTreeSet<String>, String> {
    let (old, new) = (load_yaml(old)?, load_yaml(new)?);
    let services = |doc: &Yaml| -> BTreeMap<String, Yaml> {
        doc["services"]
            .as_hash()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
            .collect()
    };
    let (a, b) = (services(&old), services(&new));
    let (old_names, new_names): (BTreeSet<&String>, BTreeSet<&String>) = (a.keys().collect(), b.keys().collect());
    if old_names != new_names {
        let added: Vec<&str> = new_names.difference(&old_names).map(|s| s.as_str()).collect();
        let removed: Vec<&str> = old_names.difference(&new_names).map(|s| s.as_str()).collect();
        return Err(format!(
            "the compose file's services change (added: {}; removed: {}), which `apply` does not do; \
             `redplate scale` changes replicas, otherwise destroy and deploy",
            if added.is_empty() { "none".into() } else { added.join(", ") },
            if removed.is_empty() { "none".into() } else { removed.join(", ") },
        ));
    }
    for key in ["networks", "volumes", "secrets"] {
        if old[key] != new[key] {
            return Err(format!("the compose file's top-level `{key}` changes; destroy and deploy"));
        }
    }
    let mut out = BTreeSet::new();
    for (name, service) in &a {
        let other = &b[name];
        let keys: BTreeSet<String> = service
            .as_hash()
            .into_iter()
            .chain(other.as_hash())
            .flatten()
            .filter_map(|(k, _)| k.as_str().map(str::to_owned))
            .collect();
        for key in keys {
            if service[key.as_str()] == other[key.as_str()] {
                continue;
            }
            if matches!(key.as_str(), "ports" | "hostname") {
                return Err(format!(
                    "`{name}`'s `{key}` changes; redplate reaches the containers by them: destroy and deploy"
                ));
            }
            out.insert(name.clone());
        }
    }
    Ok(out)
}

/// Services that get a Compose secret whose file changed between the
/// last render (`pristine`) and the new one (`staged`): a secret is mounted
/// when the container is made.
fn services_with_changed_secrets(pristine: &Path, staged: &Path) -> Result<BTreeSet<String>, String> {
    let doc = load_yaml(&staged.join(plan::COMPOSE_FILE))?;
    let compose_dir = Path::new(plan::COMPOSE_FILE).parent().unwrap_or(Path::new(""));
    let mut changed_secrets = BTreeSet::new();
    for (name, secret) in doc["secrets"].as_hash().into_iter().flatten() {
        let (Some(name), Some(file)) = (name.as_str(), secret["file"].as_str()) else { continue };
        // `../secrets/x.password`, relative to the compose file's folder.
        let rel = compose_dir.join(file);
        let rel: std::path::PathBuf = rel.components().fold(std::path::PathBuf::new(), |mut acc, c| {
            match c {
                std::path::Component::ParentDir => {
                    acc.pop();
                }
                other => acc.push(other),
            }
            acc
        });
        if std::fs::read(pristine.join(&rel)).ok() != std::fs::read(staged.join(&rel)).ok() {
            changed_secrets.insert(name.to_owned());
        }
    }
    let mut out = BTreeSet::new();
    for (service, body) in doc["services"].as_hash().into_iter().flatten() {
        let uses = body["secrets"].as_vec().into_iter().flatten().any(|s| {
            let name = s.as_str().or_else(|| s["source"].as_str()).unwrap_or_default();
            changed_secrets.contains(name)
        });
        if uses && let Some(service) = service.as_str() {
            out.insert(service.to_owned());
        }
    }
    Ok(out)
}

fn load_yaml(path: &Path) -> Result<Yaml, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    YamlLoader::load_from_str(&text)
        .ok()
        .and_then(|mut docs| (!docs.is_empty()).then(|| docs.swap_remove(0)))
        .ok_or_else(|| format!("`{}` is not a YAML document", path.display()))
}

/// A sentinel's data folder in its container: where its start command runs
/// `redis-sentinel` from (`exec redis-sentinel <dir>/sentinel.conf`).
fn sentinel_dir(compose: &Path, service: &str) -> Result<String, BackendError> {
    let doc = load_yaml(compose).map_err(|message| BackendError::Engine { command: "apply".into(), message })?;
    let command = doc["services"][service]["command"].as_vec().and_then(|c| c.last()?.as_str().map(str::to_owned));
    command
        .as_deref()
        .and_then(|c| c.split("exec redis-sentinel ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|conf| conf.rsplit_once('/'))
        .map(|(dir, _)| dir.to_owned())
        .ok_or_else(|| BackendError::Engine {
            command: "apply".into(),
            message: format!("`{service}`'s start command in the compose file names no sentinel config"),
        })
}

/// The staged `users.acl` with redplate's own user, as `install` writes it.
fn with_admin_user(record: &Record, staged: &Path) -> Result<String, BackendError> {
    let tmp = tempfile::Builder::new()
        .prefix(".acl-")
        .tempdir_in(&record.state_dir)
        .map_err(BackendError::io("create a staging folder in", &record.state_dir))?;
    copy(&staged.join(ACL), &tmp.path().join(ACL))?;
    let pw = record.path(files::ADMIN_PASSWORD_FILE);
    if pw.is_file() {
        copy(&pw, &tmp.path().join(files::ADMIN_PASSWORD_FILE))?;
        files::add_admin_user(tmp.path())?;
    }
    read(&tmp.path().join(ACL))
}

fn read(path: &Path) -> Result<String, BackendError> {
    std::fs::read_to_string(path).map_err(BackendError::io("read", path))
}

/// Copies `from` to `to` atomically, with `from`'s mode (scripts stay executable).
fn copy(from: &Path, to: &Path) -> Result<(), BackendError> {
    let bytes = std::fs::read(from).map_err(BackendError::io("read", from))?;
    crate::registry::write_atomic(to, &bytes, true)?;
    let mode = std::fs::metadata(from).map_err(BackendError::io("read", from))?.permissions();
    std::fs::set_permissions(to, mode).map_err(BackendError::io("set the mode of", to))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn a_changed_limit_or_image_renews_the_service_and_a_changed_port_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = "services:\n  a-0:\n    image: r:7\n    mem_limit: 100\n    ports: [\"127.0.0.1:7000:7000\"]\n  a-1:\n    image: r:7\n";
        let old = write(tmp.path(), "old.yaml", base);
        let same = write(tmp.path(), "same.yaml", base);
        assert_eq!(services_to_recreate(&old, &same), Ok(BTreeSet::new()));
        let limit = write(tmp.path(), "limit.yaml", &base.replace("mem_limit: 100", "mem_limit: 200"));
        assert_eq!(services_to_recreate(&old, &limit), Ok(BTreeSet::from(["a-0".to_owned()])));
        let image = write(tmp.path(), "image.yaml", &base.replace("r:7", "r:8"));
        assert_eq!(services_to_recreate(&old, &image), Ok(BTreeSet::from(["a-0".to_owned(), "a-1".to_owned()])));
        let port = write(tmp.path(), "port.yaml", &base.replace("7000:7000", "7001:7000"));
        assert!(services_to_recreate(&old, &port).is_err_and(|e| e.contains("`a-0`'s `ports`")));
        let added = write(tmp.path(), "added.yaml", &format!("{base}  a-2:\n    image: r:7\n"));
        assert!(services_to_recreate(&old, &added).is_err_and(|e| e.contains("added: a-2")));
    }

    #[test]
    fn a_sentinels_dir_is_read_from_its_start_command() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = write(
            tmp.path(),
            "c.yaml",
            "services:\n  s-0:\n    command: [sh, -c, \"umask 077; exec redis-sentinel /data/sentinel.conf\"]\n",
        );
        assert_eq!(sentinel_dir(&f, "s-0").expect("dir"), "/data");
        assert!(sentinel_dir(&f, "s-1").is_err());
    }
}

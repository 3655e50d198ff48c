//! Bringing a Compose deployment up and waiting until it is ready, the way
//! the local backend waits (through the published ports, with the Redis
//! client): every node answers and has loaded its data, every rendered
//! health check passes, replicas are in sync, sentinels agree on the
//! master, and — cluster mode — the rendered `cluster-init` service formed
//! the cluster (it runs once the nodes answer: podman before 4.6 does not
//! wait for `service_healthy`), every node reports `cluster_state:ok` and
//! every replica's link to its master is up.

use super::engine::{Container, Engine};
use super::{ComposeBackend, plan};
use crate::backend::local::conn::T;
use crate::backend::local::ready::{self, Deadline};
use crate::backend::{BackendError, Progress};
use crate::registry::{NodeRecord, Record};
use redplate_config::model::Mode;
use std::time::Duration;

/// How long a compose command that creates or starts containers may take.
const UP: Duration = Duration::from_secs(300);

impl ComposeBackend {
    /// Creates (first start) or starts the project's containers and waits
    /// until the deployment is ready.
    pub(super) fn up(&self, engine: &Engine, record: &Record, progress: &dyn Progress) -> Result<(), BackendError> {
        let project = super::project(record);
        let existing = engine.containers(&record.name)?;
        let init = plan::init_service(record);
        let services: Vec<String> = plan::services(record).into_iter().filter(|s| *s != init).collect();
        if existing.is_empty() {
            for image in plan::images(record) {
                progress.step(&format!("checking that image `{image}` is here"));
                if engine.ensure_image(&image, UP)? {
                    progress.step(&format!("pulled `{image}`"));
                }
            }
            progress.step(&format!("creating {} containers ({} up)", services.len(), engine.name));
            // `--no-deps`: podman-compose would otherwise create each
            // container with `--requires` on those it depends on, and podman
            // then refuses to remove a master's container while its replicas
            // and sentinels exist (`apply` makes containers anew one at a
            // time). redplate waits for readiness itself.
            let mut args = vec!["up", "-d", "--no-deps"];
            args.extend(services.iter().map(String::as_str));
            engine.compose(&project, &args, UP)?;
        } else {
            progress.step(&format!("starting the containers ({} start)", engine.name));
            let mut args = vec!["start"];
            args.extend(services.iter().map(String::as_str));
            engine.compose(&project, &args, UP)?;
        }
        let deadline = Deadline::after(self.timeout_secs);
        progress.step("waiting for every node to answer");
        self.wait_up(engine, record, &deadline)?;
        progress.step("running the rendered health checks");
        self.wait_healthy(engine, record, &deadline)?;
        match record.mode {
            Mode::Cluster => {
                progress.step("forming the cluster (the rendered cluster-init service)");
                self.form_cluster(engine, record, &deadline)
            }
            Mode::Sentinel => {
                progress.step("waiting for the replicas to sync");
                self.wait_synced(record, &deadline)?;
                progress.step("waiting for the sentinels to agree on the master");
                ready::wait_sentinels(&self.redis, record, &deadline)?;
                self.wait_synced(record, &deadline)
            }
            _ => {
                progress.step("waiting for the replicas to sync");
                self.wait_synced(record, &deadline)
            }
        }
    }

    /// The container of each node, by service name.
    fn container<'c>(containers: &'c [Container], node: &str) -> Option<&'c Container> {
        containers.iter().find(|c| c.service == node)
    }

    /// Waits until every node answers `INFO` through its published port
    /// with its data loaded; a container that exits fails the wait with the
    /// end of its log.
    pub(super) fn wait_up(&self, engine: &Engine, record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
        let mut pending: Vec<&NodeRecord> = record.nodes.iter().collect();
        loop {
            pending.retain(|n| self.redis.to(record, n).ready_pid().is_none());
            if pending.is_empty() {
                return Ok(());
            }
            let containers = engine.containers(&record.name)?;
            for n in &pending {
                match Self::container(&containers, &n.name) {
                    Some(c) if !c.running && c.status != "created" && c.status != "configured" => {
                        return Err(BackendError::NodeExited {
                            node: n.name.clone(),
                            status: format!("its container is `{}`, exit code {}", c.status, c.exit_code),
                            log: engine.logs(c, 12),
                        });
                    }
                    _ => {}
                }
            }
            let names: Vec<&str> = pending.iter().map(|n| n.name.as_str()).collect();
            deadline.check(|| format!("no answer from {} through the published ports", names.join(", ")))?;
        }
    }

    /// Runs each node container's rendered health check until it passes.
    fn wait_healthy(&self, engine: &Engine, record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
        let containers = engine.containers(&record.name)?;
        let mut pending: Vec<&Container> =
            record.nodes.iter().filter_map(|n| Self::container(&containers, &n.name)).collect();
        loop {
            let mut still = Vec::new();
            for c in pending {
                if !engine.healthy(c)? {
                    still.push(c);
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            let names: Vec<&str> = still.iter().map(|c| c.service.as_str()).collect();
            deadline.check(|| format!("the rendered health check of {} to pass", names.join(", ")))?;
            pending = still;
        }
    }

    /// The data node that reports itself master with the most replicas.
    pub(super) fn master<'r>(&self, record: &'r Record) -> Option<(&'r NodeRecord, crate::client::Info)> {
        record
            .data_nodes()
            .filter_map(|n| {
                let info = self.redis.to(record, n).info("replication").ok()?;
                (info.get("role") == Some("master")).then_some((n, info))
            })
            .max_by_key(|(_, info)| info.uint("connected_slaves").unwrap_or(0))
    }

    /// Waits until the master has every other data node as an online replica.
    pub(super) fn wait_synced(&self, record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
        let expected = record.data_nodes().count().saturating_sub(1);
        loop {
            let online = self
                .master(record)
                .map(|(_, info)| ready::replicas(&info).filter(|r| r.contains("state=online")).count())
                .unwrap_or(0);
            if online >= expected {
                return Ok(());
            }
            deadline.check(|| format!("{online} of {expected} replicas in sync with the master"))?;
        }
    }

    /// Runs the rendered `cluster-init` service (it does nothing when the
    /// cluster is formed), waits for it to exit 0, then until every node
    /// reports `cluster_state:ok`. Without that service (no admin user in
    /// the template) redplate forms the cluster itself.
    fn form_cluster(&self, engine: &Engine, record: &Record, deadline: &Deadline) -> Result<(), BackendError> {
        let init = plan::init_service(record);
        if !plan::services(record).contains(&init) {
            // The template names no admin user for the rendered service to
            // run `redis-cli --cluster create` as: redplate forms it as its
            // own admin user, as on the local backend, the nodes meeting at
            // their pinned addresses.
            return crate::backend::local::cluster::form(&self.redis, record, deadline);
        }
        let project = super::project(record);
        let ran_before = engine.containers(&record.name)?.iter().any(|c| c.service == init);
        let verb = if ran_before { "start" } else { "up" };
        let mut args = vec![verb];
        if !ran_before {
            args.extend(["-d", "--no-deps"]);
        }
        args.push(&init);
        engine.compose(&project, &args, UP)?;
        loop {
            let containers = engine.containers(&record.name)?;
            match containers.iter().find(|c| c.service == init) {
                Some(c) if c.status == "exited" && c.exit_code == 0 => break,
                Some(c) if c.status == "exited" => {
                    return Err(BackendError::NodeExited {
                        node: init.clone(),
                        status: format!("exit code {}", c.exit_code),
                        log: engine.logs(c, 12),
                    });
                }
                _ => deadline.check(|| format!("`{init}` to form the cluster"))?,
            }
        }
        loop {
            let states: Vec<String> = record
                .data_nodes()
                .map(|n| {
                    let text = self.redis.to(record, n).query::<String>(&["CLUSTER", "INFO"], T).unwrap_or_default();
                    crate::client::parse_info(&text).get("cluster_state").unwrap_or("?").to_owned()
                })
                .collect();
            if states.iter().all(|s| s == "ok") {
                break;
            }
            deadline.check(|| format!("every node to report cluster_state:ok (they say {states:?})"))?;
        }
        // The replicas the init service attached must have synced.
        loop {
            let down: Vec<&str> = record
                .data_nodes()
                .filter(|n| {
                    let info = self.redis.to(record, n).info("replication").ok();
                    info.is_some_and(|i| i.get("role") == Some("slave") && i.get("master_link_status") != Some("up"))
                })
                .map(|n| n.name.as_str())
                .collect();
            if down.is_empty() {
                return Ok(());
            }
            deadline.check(|| format!("the replicas {} to sync with their masters", down.join(", ")))?;
        }
    }
}

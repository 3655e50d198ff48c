//! Deployment operations: deploy, list, status, logs, stop, start, destroy
//! and apply. They load and render templates (for the `local` target), keep
//! the registry, and hand the running to a backend (only `local` so far).
//!
//! A deploy that fails stops what it started and removes its state folder
//! and registry entry: nothing running, nothing half-registered.

use crate::artifact::ArtifactSet;
use crate::backend::local::apply::RENDERED;
use crate::backend::local::plan::{config_nodes, needs_local_certs, node_records, ports_for};
use crate::backend::local::{LocalBackend, files, ports, process, tls};
use crate::registry::{DeployState, RECORD_VERSION, Record, Registry, valid_name};
use crate::backend::{Backend, BackendError, Progress, Status};
use crate::exit::Failure;
use crate::ops;
use crate::plugin::PluginHost;
use crate::secrets::SecretStore;
use redplate_config::model::Environment;
use redplate_config::{Config, Diagnostic, Resolved, Target, Topology};
use std::path::{Path, PathBuf};

/// What `redplate deploy` was asked.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub template: PathBuf,
    /// Overrides `deployment.name`.
    pub name: Option<String>,
    pub preset: Option<Environment>,
    pub sets: Vec<String>,
}

/// What deploy and apply need besides the request.
pub struct Context<'a> {
    /// `$REDPLATE_HOME`.
    pub home: PathBuf,
    pub host: &'a PluginHost,
    pub plugin_dirs: &'a [PathBuf],
    pub progress: &'a dyn Progress,
}

/// A backend error as a failure: a name conflict or a scale the deployment
/// cannot take is the user's to fix (1); everything else means redplate
/// could not do its job (2).
pub fn failure(e: BackendError) -> Failure {
    let code = match &e {
        BackendError::MissingProgram { .. } => "deploy.missing-program",
        BackendError::Io { .. } => "deploy.io",
        BackendError::NoFreePorts { .. } | BackendError::PortTaken { .. } => "deploy.port-taken",
        BackendError::NodeExited { .. } => "deploy.node-exited",
        BackendError::NotReady { .. } => "deploy.not-ready",
        BackendError::Command { .. } => "deploy.command",
        BackendError::Unknown(_) => "deploy.unknown",
        BackendError::Exists(_) => "deploy.exists",
        BackendError::Corrupt { .. } => "deploy.registry",
        BackendError::Unsupported { .. } => "deploy.unsupported",
        BackendError::CannotScale { .. } => "scale.refused",
        BackendError::CannotMove { .. } => "start.cannot-move",
        BackendError::UnknownNode { .. } => "deploy.unknown-node",
    };
    let hint = match &e {
        BackendError::Exists(n) => {
            Some(format!("change it with `redplate apply {n} <template>`, or `redplate destroy {n}` first"))
        }
        BackendError::Unknown(_) => Some("`redplate list` shows the deployments".to_owned()),
        BackendError::MissingProgram { .. } => {
            Some("install Redis (`apt-get install redis-server redis-tools`)".to_owned())
        }
        _ => None,
    };
    let mut d = Diagnostic::error(code, "", e.to_string());
    if let Some(h) = hint {
        d = d.with_hint(h);
    }
    match e {
        BackendError::Exists(_)
        | BackendError::Unknown(_)
        | BackendError::UnknownNode { .. }
        | BackendError::CannotScale { .. }
        | BackendError::CannotMove { .. } => Failure::invalid(vec![d]),
        _ => Failure::could_not_run(d),
    }
}

/// Loads and renders for `local`.
pub(super) fn render_local(
    ctx: &Context,
    template: &Path,
    preset: Option<Environment>,
    sets: &[String],
) -> Result<(Resolved, ArtifactSet), Failure> {
    let resolved = ops::config::load(Some(template), preset, sets)?;
    let store = SecretStore::new(&ctx.home);
    let extra = ops::render::template_plugins(&resolved.config, Some(template));
    let set = ops::render::PluginSet::load(
        ctx.host,
        &[Target::Local],
        Some(&resolved.config.cache.strategy),
        &extra,
        ctx.plugin_dirs,
    )?;
    let rendered = ops::render::render(ctx.host, &set, &resolved, &[Target::Local], &store, true)?;
    Ok((resolved, rendered.artifacts))
}

/// Writes the rendered tree into the state folder and its pristine copy
/// (which `apply` compares the next render with).
fn write_rendered(set: &ArtifactSet, dir: &Path) -> Result<(), Failure> {
    files::write_tree(set, dir).map_err(failure)?;
    files::write_tree(set, &dir.join(RENDERED)).map_err(failure)
}

/// The deployment's generated passwords (`SecretStore`'s file).
fn secrets_file(home: &Path, name: &str) -> PathBuf {
    home.join("secrets").join(format!("{name}.json"))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `redplate deploy`: renders the template for `local` on free ports, starts
/// every node and waits until the deployment is ready.
pub fn deploy(ctx: &Context, req: &DeployRequest) -> Result<Record, Failure> {
    let template = std::path::absolute(&req.template).unwrap_or_else(|_| req.template.clone());
    let mut sets = req.sets.clone();
    if let Some(n) = &req.name {
        sets.push(format!("deployment.name={n}"));
    }
    let first = ops::config::load(Some(&template), req.preset, &sets)?;
    ops::render::host_rules(&first)?;
    let name = first.config.deployment.name.clone();
    if !valid_name(&name) {
        return Err(Failure::invalid(vec![Diagnostic::error(
            "deploy.bad-name",
            "/deployment/name",
            format!("`{name}` cannot name a deployment: use letters, digits, `-`, `_` and `.`"),
        )]));
    }
    let registry = Registry::new(&ctx.home);
    let _lock = registry.lock(&name).map_err(failure)?;
    if registry.exists(&name) {
        return Err(failure(BackendError::Exists(name)));
    }
    let dir = registry.dir(&name);
    if dir.exists() {
        return Err(Failure::invalid(vec![
            Diagnostic::error(
                "deploy.leftover",
                "",
                format!("the data of an earlier deployment `{name}` is still in `{}`", dir.display()),
            )
            .with_hint(format!("remove it with `redplate destroy {name} --purge`, or deploy with `--name`")),
        ]));
    }
    std::fs::create_dir_all(&dir).map_err(|e| failure(BackendError::io("create", &dir)(e)))?;
    // Configs hold passwords (masterauth, sentinel auth); the folder is the owner's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    let dir = dir.canonicalize().unwrap_or(dir);
    // Rendering creates it; one an earlier `render` of this name made stays.
    let secrets = secrets_file(&ctx.home, &name);
    let had_secrets = secrets.exists();
    let backend = LocalBackend::default();
    let mut record: Option<Record> = None;
    let result = deploy_in(ctx, req, &template, &sets, &first.config, &registry, &dir, &backend, &mut record);
    match result {
        Ok(()) => record.ok_or_else(|| failure(BackendError::Unknown(name))),
        Err(e) => {
            ctx.progress.step("deploy failed: stopping what was started");
            if let Some(r) = &record {
                let _ = backend.destroy(r, true, ctx.progress);
            } else {
                for pid in crate::backend::local::orphans(&dir) {
                    process::stop(pid, &dir, std::time::Duration::from_secs(10));
                }
            }
            let _ = registry.remove(&name);
            let _ = std::fs::remove_dir_all(&dir);
            if !had_secrets {
                let _ = std::fs::remove_file(&secrets);
            }
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn deploy_in(
    ctx: &Context,
    req: &DeployRequest,
    template: &Path,
    sets: &[String],
    config: &Config,
    registry: &Registry,
    dir: &Path,
    backend: &LocalBackend,
    out: &mut Option<Record>,
) -> Result<(), Failure> {
    let mut sets = sets.to_vec();
    let mut adjustments = Vec::new();
    if config.memory.active_defrag && !process::active_defrag_supported().map_err(failure)? {
        sets.push("memory.active_defrag=false".into());
        adjustments.push(
            "`memory.active_defrag` off: this machine's redis-server is built without active defragmentation".into(),
        );
    }
    let mut tls_files = None;
    if needs_local_certs(config) {
        ctx.progress.step("making a local certificate authority (openssl)");
        adjustments.push(format!(
            "`security.tls` certificates made by a local CA in `{}` (local use only)",
            dir.join("tls").display()
        ));
        let t = tls::ensure(&dir.join("tls")).map_err(failure)?;
        sets.push("security.tls.cert_source=files".into());
        sets.push(format!("security.tls.cert_file={}", t.cert_file.display()));
        sets.push(format!("security.tls.key_file={}", t.key_file.display()));
        sets.push(format!("security.tls.ca_file={}", t.ca_file.display()));
        tls_files = Some(t);
    } else if config.security.tls.enabled {
        let t = &config.security.tls;
        tls_files = Some(crate::registry::TlsFiles {
            cert_file: t.cert_file.clone().into(),
            key_file: t.key_file.clone().into(),
            ca_file: t.ca_file.clone().into(),
        });
    }
    let block = u16::try_from(10 * config_nodes(config)).unwrap_or(u16::MAX).max(10);
    let mut from = config.network.local_base_port;
    let _ports = registry.ports_lock().map_err(failure)?;
    // Stopped deployments keep their ports: they are not free to take.
    let reserved = registry.reserved_ports(&config.deployment.name);
    for attempt in 0..4 {
        ctx.progress.step("choosing free ports");
        let base = process::free_base(from, block, &reserved, |b| ports_for(config, b)).map_err(failure)?;
        let mut all_sets = sets.clone();
        all_sets.push(format!("network.local_base_port={base}"));
        ctx.progress.step("rendering for the local target");
        let (resolved, set) = render_local(ctx, template, req.preset, &all_sets)?;
        write_rendered(&set, dir)?;
        let admin = files::add_admin_user(dir).map_err(failure)?;
        let topology = Topology::derive(&resolved.config, Target::Local);
        let (admin_user, admin_password_file) = if admin {
            (Some(files::ADMIN_USER.to_owned()), Some(files::ADMIN_PASSWORD_FILE.to_owned()))
        } else if dir.join("secrets/default.password").is_file() {
            (None, Some("secrets/default.password".to_owned()))
        } else {
            (None, None)
        };
        let c = &resolved.config;
        let mut record = Record {
            version: RECORD_VERSION,
            name: c.deployment.name.clone(),
            backend: "local".into(),
            state: DeployState::Deploying,
            mode: c.deployment.mode,
            template: template.to_owned(),
            preset: req.preset,
            sets: all_sets,
            base_port: base,
            ports_moved_from: None,
            state_dir: dir.to_owned(),
            master_name: topology.master_name.clone(),
            cluster_replicas: c.cluster.replicas_per_shard,
            admin_user,
            admin_password_file,
            tls: tls_files.clone(),
            users: files::acl_users(dir),
            adjustments: adjustments.clone(),
            created_unix: unix_now(),
            nodes: node_records(&topology, dir).map_err(failure)?,
        };
        registry.save(&record).map_err(failure)?;
        *out = Some(record.clone());
        match backend.apply(&mut record, ctx.progress) {
            Ok(()) => {
                record.state = DeployState::Running;
                registry.save(&record).map_err(failure)?;
                *out = Some(record);
                return Ok(());
            }
            Err(BackendError::PortTaken { .. }) if attempt < 3 => {
                // Another program took a port between the probe and the start.
                ctx.progress.step("a port was taken meanwhile: trying the next block");
                backend.destroy(&record, false, ctx.progress).map_err(failure)?;
                for node in &record.nodes {
                    let _ = std::fs::remove_dir_all(dir.join("data").join(&node.name));
                }
                from = base.saturating_add(block);
            }
            Err(e) => {
                *out = Some(record);
                return Err(failure(e));
            }
        }
    }
    Err(failure(BackendError::NoFreePorts { from, count: 0 }))
}

/// `redplate list`: every readable record, and a warning for each
/// unreadable one (one broken entry does not hide the others).
pub fn list(home: &Path) -> (Vec<Record>, Vec<Diagnostic>) {
    let (records, problems) = Registry::new(home).list();
    let warnings = problems.into_iter().map(|e| Diagnostic::warning("deploy.registry", "", e.to_string())).collect();
    (records, warnings)
}

/// `redplate status`.
pub fn status(home: &Path, name: &str) -> Result<(Record, Status), Failure> {
    let record = Registry::new(home).load(name).map_err(failure)?;
    let status = LocalBackend::default().status(&record).map_err(failure)?;
    Ok((record, status))
}

/// `redplate logs`: the last `lines` lines of each node's log.
pub fn logs(home: &Path, name: &str, node: Option<&str>, lines: usize) -> Result<Vec<(String, String)>, Failure> {
    let record = Registry::new(home).load(name).map_err(failure)?;
    LocalBackend::default().logs(&record, node, lines).map_err(failure)
}

/// `redplate stop`: every process stopped. Returns the data nodes that
/// lost their data (no persistence); `warn` hears of them before anything
/// stops.
pub fn stop(
    home: &Path,
    name: &str,
    progress: &dyn Progress,
    warn: &dyn Fn(&Diagnostic),
) -> Result<(Record, Vec<String>), Failure> {
    let registry = Registry::new(home);
    let _lock = registry.lock(name).map_err(failure)?;
    let mut record = registry.load(name).map_err(failure)?;
    let backend = LocalBackend::default();
    let lost = backend.unpersisted(&record);
    if !lost.is_empty() {
        let message = if lost.len() == record.data_nodes().count() {
            format!("`{name}` persists nothing (`persistence.mode: none`): the data it holds is lost when it stops")
        } else {
            let nodes = lost.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            format!("{nodes} of `{name}` persist nothing: the data they hold is lost when they stop")
        };
        let hint =
            format!("to keep it, set `persistence.mode` to `rdb` or `aof` and `redplate apply {name} <template>`");
        warn(&Diagnostic::warning("stop.data-lost", "/persistence/mode", message).with_hint(hint));
    }
    backend.stop(&mut record, progress);
    record.state = DeployState::Stopped;
    registry.save(&record).map_err(failure)?;
    Ok((record, lost))
}

/// `redplate start`: starts the nodes that are not running (after `stop`,
/// or a crash) on the ports kept in the registry, and waits until ready.
/// With `new_ports`, the stopped deployment first moves to free ports (its
/// files rewritten, the ports recorded). All or nothing: a start that fails
/// stops what it started, and the record says what runs.
pub fn start(home: &Path, name: &str, new_ports: bool, progress: &dyn Progress) -> Result<Record, Failure> {
    let registry = Registry::new(home);
    let _lock = registry.lock(name).map_err(failure)?;
    let mut record = registry.load(name).map_err(failure)?;
    let save = |r: &Record| registry.save(r);
    if new_ports {
        let _ports = registry.ports_lock().map_err(failure)?;
        progress.step("choosing free ports");
        let base = ports::choose(&record, &registry.reserved_ports(name)).map_err(failure)?;
        progress.step("rewriting the node files for the new ports");
        ports::move_to(&mut record, base, &save).map_err(failure)?;
    } else {
        // A move that was interrupted.
        ports::finish(&mut record, &save).map_err(failure)?;
    }
    let result = LocalBackend::default().apply(&mut record, progress);
    match &result {
        Ok(()) => record.state = DeployState::Running,
        Err(_) if record.nodes.iter().all(|n| n.pid.is_none()) && record.state == DeployState::Running => {
            record.state = DeployState::Stopped;
        }
        Err(_) => {}
    }
    registry.save(&record).map_err(failure)?;
    result.map_err(|e| {
        let hint = match &e {
            BackendError::PortTaken { port, .. } => Some(format!(
                "another program listens on port {port}: stop it, or move `{name}` to free ports with \
                 `redplate start {name} --new-ports`"
            )),
            _ => None,
        };
        let mut f = failure(e);
        if let Some(h) = hint {
            f.diagnostics = f.diagnostics.into_iter().map(|d| d.with_hint(h.clone())).collect();
        }
        f
    })?;
    Ok(record)
}

/// `redplate destroy`: processes gone, ports free, the registry entry
/// removed; the data stays unless `purge`. A name with no entry but a
/// leftover state folder can still be purged.
pub fn destroy(home: &Path, name: &str, purge: bool, progress: &dyn Progress) -> Result<(), Failure> {
    let registry = Registry::new(home);
    if !valid_name(name) {
        return Err(failure(BackendError::Unknown(name.into())));
    }
    let _lock = registry.lock(name).map_err(failure)?;
    let backend = LocalBackend::default();
    match registry.load(name) {
        Ok(record) => {
            backend.destroy(&record, purge, progress).map_err(failure)?;
            if !purge {
                registry.remove(name).map_err(failure)?;
            }
        }
        // A leftover folder (purge only), or an entry that cannot be read:
        // the processes are found by their working directory instead.
        Err(e @ (BackendError::Unknown(_) | BackendError::Corrupt { .. }))
            if registry.dir(name).exists() && (purge || matches!(e, BackendError::Corrupt { .. })) =>
        {
            let dir = registry.dir(name);
            for pid in crate::backend::local::orphans(&dir) {
                process::stop(pid, &dir, std::time::Duration::from_secs(20));
            }
            if purge {
                std::fs::remove_dir_all(&dir).map_err(|e| failure(BackendError::io("remove", &dir)(e)))?;
            } else {
                registry.remove(name).map_err(failure)?;
            }
        }
        Err(e) => return Err(failure(e)),
    }
    let secrets = secrets_file(home, name);
    if purge {
        let _ = std::fs::remove_file(secrets);
    }
    Ok(())
}

/// `redplate apply`: re-renders `template` (with the deploy's settings and
/// `sets` on top) and applies the difference to the running deployment.
/// The nodes, their roles and ports must stay as they are.
pub fn apply(ctx: &Context, name: &str, template: &Path, sets: &[String]) -> Result<Vec<String>, Failure> {
    let registry = Registry::new(&ctx.home);
    let _lock = registry.lock(name).map_err(failure)?;
    let mut record = registry.load(name).map_err(failure)?;
    let template = std::path::absolute(template).unwrap_or_else(|_| template.to_owned());
    let mut all = record.sets.clone();
    all.extend(sets.iter().cloned());
    ctx.progress.step("rendering the changed template");
    let (resolved, set) = render_local(ctx, &template, record.preset, &all)?;
    if resolved.config.deployment.name != record.name {
        return Err(Failure::invalid(vec![Diagnostic::error(
            "apply.renamed",
            "/deployment/name",
            format!("the template names `{}`, not `{}`", resolved.config.deployment.name, record.name),
        )]));
    }
    let topology = Topology::derive(&resolved.config, Target::Local);
    let same = topology.nodes.len() == record.nodes.len()
        && topology.nodes.iter().zip(&record.nodes).all(|(t, r)| t.name == r.name && t.role == r.role);
    if !same || resolved.config.deployment.mode != record.mode {
        return Err(Failure::invalid(vec![
            Diagnostic::error(
                "apply.topology",
                "/deployment/mode",
                "the changed template has other nodes (mode, replicas, shards or sentinels); apply changes settings only",
            )
            .with_hint(format!("`redplate destroy {name}` and deploy the new template")),
        ]));
    }
    let staging = tempfile::Builder::new()
        .prefix(".apply-")
        .tempdir_in(&record.state_dir)
        .map_err(|e| failure(BackendError::io("create", &record.state_dir)(e)))?;
    files::write_tree(&set, staging.path()).map_err(failure)?;
    let result = LocalBackend::default().apply_changes(&mut record, staging.path(), ctx.progress);
    if result.is_ok() {
        record.template = template;
        record.sets = all;
    }
    registry.save(&record).map_err(failure)?;
    result.map_err(failure)
}

//! `redplate deploy`: the template rendered for its backend on a free
//! placement, started, and registered with the deployment's own copy of
//! the resolved template ([`super::stored`]); and what the operations that
//! render for a deployment share (the context, rendering, backend errors as
//! failures). Backends are reached only through [`crate::backend::Backend`].
//!
//! A deploy that fails stops what it started and removes its state folder and
//! registry entry: nothing running, nothing half-registered.

use crate::artifact::ArtifactSet;
use crate::backend::{self, Backend, BackendError, Progress};
use crate::exit::Failure;
use crate::ops;
use crate::plugin::PluginHost;
use crate::registry::{DeployState, RECORD_VERSION, Record, Registry, valid_name};
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
    /// The backend to run it with (`local`, `compose`); `None`: [`backend::DEFAULT`].
    pub backend: Option<String>,
}

/// What deploy and apply need besides the request.
pub struct Context<'a> {
    /// `$REDPLATE_HOME`.
    pub home: PathBuf,
    pub host: &'a PluginHost,
    pub plugin_dirs: &'a [PathBuf],
    pub progress: &'a dyn Progress,
}

/// A backend error as a failure. A deployment's input that cannot work —
/// a name taken, a scale or a move its mode or state refuses — is the
/// user's to fix (1); everything else, a mistyped deployment or node name
/// included, means redplate could not do what was asked (2).
pub fn failure(e: impl Into<BackendError>) -> Failure {
    let e = e.into();
    let code = match &e {
        BackendError::MissingProgram { .. } => "deploy.missing-program",
        BackendError::NoEngine { .. } => "deploy.no-engine",
        BackendError::Engine { .. } => "deploy.engine",
        BackendError::ImageUnavailable { .. } => "deploy.image-unavailable",
        BackendError::Io { .. } => "deploy.io",
        BackendError::Runtime { .. } => "deploy.runtime",
        BackendError::Redis(_) => "deploy.redis",
        BackendError::Certificate { .. } => "deploy.certificate",
        BackendError::NoFreePorts { .. } | BackendError::PortTaken { .. } => "deploy.port-taken",
        BackendError::NodeExited { .. } => "deploy.node-exited",
        BackendError::NotReady { .. } => "deploy.not-ready",
        BackendError::Command { .. } => "deploy.command",
        BackendError::Unknown(_) => "deploy.unknown",
        BackendError::Exists(_) => "deploy.exists",
        BackendError::Corrupt { .. } => "deploy.registry",
        BackendError::Unsupported { .. } | BackendError::Refused { .. } => "deploy.unsupported",
        BackendError::CannotScale { .. } => "scale.refused",
        BackendError::CannotMove { .. } => "start.cannot-move",
        BackendError::CannotApply { .. } => "apply.refused",
        BackendError::UnknownNode { .. } => "deploy.unknown-node",
    };
    let hint = match &e {
        BackendError::Exists(n) => {
            Some(format!("change it with `redplate apply {n} <template>`, or `redplate destroy {n}` first"))
        }
        BackendError::Unknown(_) => Some("`redplate list` shows the deployments".to_owned()),
        BackendError::UnknownNode { deployment, .. } => Some(format!("`redplate status {deployment}` shows its nodes")),
        BackendError::MissingProgram { .. } => {
            Some("install Redis (`apt-get install redis-server redis-sentinel`)".to_owned())
        }
        BackendError::NoEngine { .. } => Some(backend::compose::engine::INSTALL_HINT.to_owned()),
        BackendError::ImageUnavailable { .. } => Some(
            "load it into the engine (`podman load` / `docker load`), or name images this machine has or can pull: \
             `deployment.image`, `deployment.image_tag` and `compose.image_registry` for Redis, \
             `monitoring.exporter_image` (or `monitoring.exporter: false`) for the exporter; podman needs a \
             fully qualified name (`docker.io/…`) unless `/etc/containers/registries.conf` names a search registry"
                .to_owned(),
        ),
        BackendError::PortTaken { port, .. } => backend::local::process::ephemeral_hint(*port),
        _ => None,
    };
    let mut d = Diagnostic::error(code, "", e.to_string());
    if let Some(h) = hint {
        d = d.with_hint(h);
    }
    match e {
        BackendError::Exists(_)
        | BackendError::CannotScale { .. }
        | BackendError::CannotMove { .. }
        | BackendError::CannotApply { .. } => Failure::invalid(vec![d]),
        _ => Failure::could_not_run(d),
    }
}

/// Renders `resolved` (loaded from `template`, whose folder third-party
/// plugin paths are relative to) for `target`.
pub(super) fn render(
    ctx: &Context,
    target: Target,
    resolved: &Resolved,
    template: &Path,
) -> Result<ArtifactSet, Failure> {
    let store = SecretStore::new(&ctx.home);
    let extra = ops::render::template_plugins(&resolved.config, Some(template));
    let strategy = Some(resolved.config.cache.strategy.as_str());
    let set = ops::render::PluginSet::load(ctx.host, &[target], strategy, &extra, ctx.plugin_dirs)?;
    Ok(ops::render::render(ctx.host, &set, resolved, &[target], &store, true)?.artifacts)
}

/// Loads `template` with `preset` and `sets` and renders it for `target`.
pub(super) fn load_and_render(
    ctx: &Context,
    target: Target,
    template: &Path,
    preset: Option<Environment>,
    sets: &[String],
) -> Result<(Resolved, ArtifactSet), Failure> {
    let resolved = ops::config::load(Some(template), preset, sets)?;
    let artifacts = render(ctx, target, &resolved, template)?;
    Ok((resolved, artifacts))
}

/// The config to keep as the deployment's stored template: third-party
/// plugin paths made absolute (they were relative to the user's file, and
/// the copy lives in the state folder).
pub(super) fn to_store(config: &Config, template: &Path) -> Config {
    let mut config = config.clone();
    config.plugins = ops::render::template_plugins(&config, Some(template))
        .into_iter()
        .map(|p| std::path::absolute(&p).unwrap_or(p).display().to_string())
        .collect();
    config
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `redplate deploy`: renders the template on a free placement, starts
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
    let secrets = SecretStore::new(&ctx.home).file(&name);
    let had_secrets = secrets.exists();
    let backend = backend::named(req.backend.as_deref().unwrap_or(backend::DEFAULT)).map_err(failure)?;
    let mut record: Option<Record> = None;
    let job = Job { ctx, req, template: &template, sets: &sets, registry: &registry, dir: &dir };
    let deployed = job.run(&first.config, backend.as_ref(), &mut record).and_then(|()| {
        let r = record.clone().ok_or_else(|| failure(BackendError::Unknown(name.clone())))?;
        tenant_instances(ctx, &r)?;
        Ok(r)
    });
    match deployed {
        Ok(r) => Ok(r),
        Err(e) => {
            ctx.progress.step("deploy failed: stopping what was started");
            match &record {
                Some(r) => {
                    let _ = backend.destroy(r, true, ctx.progress);
                }
                None => backend.reap(&dir),
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

/// With `tenancy.isolation: instance`, every declared tenant's own
/// deployment; if one fails, those made before it are destroyed again.
fn tenant_instances(ctx: &Context, record: &Record) -> Result<(), Failure> {
    let config = ops::stored::load(record)?.config;
    if config.tenancy.isolation != redplate_config::model::Isolation::Instance {
        return Ok(());
    }
    let mut made: Vec<String> = Vec::new();
    for tenant in &config.tenancy.tenants {
        match ops::tenant::deploy_instance(ctx, record, &config, tenant) {
            Ok(r) => made.push(r.name),
            Err(e) => {
                for name in &made {
                    let _ = ops::lifecycle::destroy(&ctx.home, name, true, ctx.progress);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// One deploy's settings, for its steps.
struct Job<'a> {
    ctx: &'a Context<'a>,
    req: &'a DeployRequest,
    template: &'a Path,
    sets: &'a [String],
    registry: &'a Registry,
    dir: &'a Path,
}

impl Job<'_> {
    /// Prepares, places, renders, installs and starts; `out` holds the
    /// record as soon as there is one, for the cleanup of a failure.
    fn run(&self, config: &Config, backend: &dyn Backend, out: &mut Option<Record>) -> Result<(), Failure> {
        let progress = self.ctx.progress;
        let prep = backend.prepare(config, self.dir, progress).map_err(failure)?;
        let mut sets = self.sets.to_vec();
        sets.extend(prep.sets.iter().cloned());
        let _ports = self.registry.ports_lock().map_err(failure)?;
        // Stopped deployments keep their ports: they are not free to take.
        let reserved = self.registry.reserved_ports(&config.deployment.name);
        let save = |r: &Record| self.registry.save(r).map_err(BackendError::from);
        let mut failed: Option<Record> = None;
        for attempt in 0..4 {
            progress.step("choosing free ports");
            let placement = backend.place(config, &reserved, failed.as_ref()).map_err(failure)?;
            let mut all_sets = sets.clone();
            all_sets.extend(placement);
            progress.step(&format!("rendering for the {} target", ops::render::target_name(backend.target())));
            let (resolved, artifacts) =
                load_and_render(self.ctx, backend.target(), self.template, self.req.preset, &all_sets)?;
            let topology = Topology::derive(&resolved.config, backend.target());
            let mut record = self.record(&resolved.config, &topology, backend, all_sets, &prep);
            backend.install(&mut record, &artifacts, &topology).map_err(failure)?;
            ops::stored::save_in(self.dir, &to_store(&resolved.config, self.template))?;
            save(&record).map_err(failure)?;
            *out = Some(record.clone());
            match backend.start(&mut record, &save, progress) {
                Ok(()) => {
                    record.state = DeployState::Running;
                    save(&record).map_err(failure)?;
                    *out = Some(record);
                    return Ok(());
                }
                Err(e) if e.place_elsewhere() && attempt < 3 => {
                    // Another program took a port between the probe and the start.
                    progress.step("a port was taken meanwhile: trying the next block");
                    backend.discard(&record, progress).map_err(failure)?;
                    failed = Some(record);
                }
                Err(e) => {
                    *out = Some(record);
                    return Err(failure(e));
                }
            }
        }
        Err(failure(BackendError::NoFreePorts { from: config.network.local_base_port, count: 0 }))
    }

    /// A new record, before the backend fills in its nodes.
    fn record(
        &self,
        config: &Config,
        topology: &Topology,
        backend: &dyn Backend,
        sets: Vec<String>,
        prep: &backend::Preparation,
    ) -> Record {
        Record {
            version: RECORD_VERSION,
            name: config.deployment.name.clone(),
            backend: backend.kind().to_owned(),
            state: DeployState::Deploying,
            mode: config.deployment.mode,
            template: self.template.to_owned(),
            preset: self.req.preset,
            sets,
            base_port: config.network.local_base_port,
            ports_moved_from: None,
            state_dir: self.dir.to_owned(),
            master_name: topology.master_name.clone(),
            cluster_replicas: config.cluster.replicas_per_shard,
            admin_user: None,
            admin_password_file: None,
            tls: prep.tls.clone(),
            users: Vec::new(),
            adjustments: prep.adjustments.clone(),
            created_unix: unix_now(),
            nodes: Vec::new(),
            gateway: (config.tenancy.enabled && config.tenancy.gateway).then(crate::registry::GatewayRecord::default),
        }
    }
}

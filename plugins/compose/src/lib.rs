//! Built-in generator: `compose/compose.yaml`, a Docker Compose project with
//! one service per node of the topology (target `compose`), hardened
//! containers, health checks that never put a password on a command line,
//! secrets from the files the host writes, and `redis_exporter` next to
//! every data node when monitoring is on.
//!
//! The document is built as ordered data ([`yaml::Yaml`]) and written with
//! every string quoted, then passed through the host's `render` with the
//! overridable template `compose.yaml` (data: `project`, `body`, `document`).

mod cluster;
mod input;
mod services;
mod yaml;

use input::Input;
use redplate_plugin_sdk::{Artifact, Diagnostic, Generator, Host, Output, PluginInfo, parse_input};
use serde_json::{Value, json};
use services::{Cred, Ctx, TlsPaths, secret_name, shell_safe};
use yaml::{MapBuilder, Yaml};

const NAME: &str = "compose";
/// The path of the artifact, per wit/INPUT.md.
pub const OUTPUT: &str = "compose/compose.yaml";
/// The template a user may override (`--templates DIR/compose.yaml.hbs`).
const TEMPLATE: &str = include_str!("templates/compose.yaml.hbs");

pub struct Plugin;

impl Generator for Plugin {
    fn info() -> PluginInfo {
        PluginInfo::generator(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "Docker Compose project: one hardened service per node, exporters, secrets",
            &[OUTPUT],
        )
    }

    fn validate(input_json: &str) -> Vec<Diagnostic> {
        match parse_input::<Input>(NAME, input_json) {
            Err(ds) => ds,
            Ok(input) => match plan(&input) {
                Ok(ctx) => ctx.errors,
                Err(ds) => ds,
            },
        }
    }

    fn generate(input_json: &str, host: &dyn Host) -> Result<Output, Vec<Diagnostic>> {
        let input: Input = parse_input(NAME, input_json)?;
        if !input.target.is_empty() && input.target != "compose" {
            let note = Diagnostic::info(
                "compose.other-target",
                "/target",
                format!("no compose file for target `{}`", input.target),
            )
            .with_hint("render with `--target compose` to get `compose/compose.yaml`");
            return Ok(Output { artifacts: Vec::new(), diagnostics: vec![note] });
        }
        let ctx = plan(&input)?;
        if !ctx.errors.is_empty() {
            return Err(ctx.errors);
        }
        let doc = document(&ctx);
        let body = yaml::to_string(&doc);
        let body = body.trim_end();
        let data = || Ok(json!({ "project": ctx.project, "body": body, "document": to_json(&doc) }).to_string());
        let native = || {
            format!(
                "# Docker Compose project `{}`, rendered by redplate: change the template, not this file.\n\
                 # Config files are mounted read-only from ../redis and ../sentinel; passwords are\n\
                 # Compose secrets read from ../secrets/<user>.password (written by redplate, mode 0600).\n\
                 {body}\n",
                ctx.project
            )
        };
        let text = input.template_overrides.render(host, "compose.yaml", TEMPLATE, data, native).map_err(|e| {
            vec![Diagnostic::error("compose.render", "", e).with_hint("check the `compose.yaml` template override")]
        })?;
        redplate_plugin_sdk::discard(doc);
        Ok(Output { artifacts: vec![Artifact::new(OUTPUT, text, "application/yaml")], diagnostics: ctx.diagnostics })
    }
}

/// Resolves names, credentials and TLS paths, collecting what is wrong.
fn plan(input: &Input) -> Result<Ctx<'_>, Vec<Diagnostic>> {
    let c = &input.config;
    let mut errors = Vec::new();
    let mut diagnostics = Vec::new();
    if !input.topology.nodes.iter().any(|n| n.is_data()) {
        return Err(vec![
            Diagnostic::error("compose.no-data-nodes", "/topology/nodes", "the topology has no master or replica")
                .with_hint("set `deployment.mode` to a mode with at least one Redis node"),
        ]);
    }
    let project = if c.compose.project_name.is_empty() {
        if input.name.is_empty() { c.deployment.name.clone() } else { input.name.clone() }
    } else {
        c.compose.project_name.clone()
    };
    let project_ok = project.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
        && project.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_');
    if !project_ok {
        errors.push(
            Diagnostic::error(
                "compose.bad-project-name",
                "/config/compose/project_name",
                format!("`{project}` is not a valid compose project name"),
            )
            .with_hint("use lowercase letters, digits, `-` and `_`, starting with a letter or digit"),
        );
    }
    for (i, n) in input.topology.nodes.iter().enumerate() {
        let ok = n.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') && !n.name.is_empty();
        if !ok || !shell_safe(&n.hostname) {
            errors.push(
                Diagnostic::error(
                    "compose.bad-node-name",
                    format!("/topology/nodes/{i}/name"),
                    format!("node `{}` cannot be a compose service name", n.name),
                )
                .with_hint("use a `deployment.name` made of lowercase letters, digits and `-`"),
            );
        }
    }
    let (probe, exporter) = if c.security.auth_enabled {
        let probe = credential(input, "probe");
        let exporter = if c.monitoring.exporter { credential(input, "exporter") } else { None };
        if probe.is_none() {
            diagnostics.push(
                Diagnostic::warning("compose.no-probe-password", "/secrets/users", "auth is on but no probe, or `default`, password is known: health checks run without a password and will fail")
                    .with_hint("add a user with `role: probe` and `password: { generate: true }`"),
            );
        }
        if c.monitoring.exporter && exporter.is_none() {
            diagnostics.push(
                Diagnostic::warning(
                    "compose.no-exporter-password",
                    "/secrets/users",
                    "auth is on but no exporter, or `default`, password is known: the exporter cannot log in",
                )
                .with_hint("add a user with `role: exporter` and `password: { generate: true }`"),
            );
        }
        (probe, exporter)
    } else {
        (None, None)
    };
    let admin = if input.topology.mode == "cluster" {
        let admin = c.security.auth_enabled.then(|| credential(input, "admin")).flatten();
        if c.security.auth_enabled && admin.is_none() {
            diagnostics.push(
                Diagnostic::warning("compose.no-cluster-admin", "/config/security/users", "auth is on but no admin, or `default`, password is known: the cluster is not formed automatically")
                    .with_hint("add a user with `role: admin` and a password, then re-render; or run `redis-cli --cluster create` by hand"),
            );
        }
        admin
    } else {
        None
    };
    for cred in probe.iter().chain(exporter.iter()).chain(admin.iter()) {
        if !shell_safe(&cred.user) {
            errors.push(
                Diagnostic::error(
                    "compose.bad-user-name",
                    "/config/security/users",
                    format!("user name `{}` is not usable in a health check", cred.user),
                )
                .with_hint("use letters, digits, `_`, `-` and `.` in user names"),
            );
        }
    }
    let sentinel_auth = (c.security.auth_enabled && input.topology.mode == "sentinel")
        .then(|| credential(input, "sentinel").filter(|c| c.user != "default"))
        .flatten();
    let tls = tls_paths(input, &mut errors);
    Ok(Ctx { input, project, probe, exporter, admin, sentinel_auth, tls, diagnostics, errors })
}

/// The user a container of `role` authenticates as: a config user with that
/// role and a known password, else a user named like the role, else `default`.
fn credential(input: &Input, role: &str) -> Option<Cred> {
    let known = &input.secrets.users;
    let user = input
        .config
        .security
        .users
        .iter()
        .find(|u| u.role == role && known.contains_key(&u.name))
        .map(|u| u.name.clone())
        .or_else(|| known.contains_key(role).then(|| role.to_owned()))
        .or_else(|| known.contains_key("default").then(|| "default".to_owned()))?;
    Some(Cred { secret: secret_name(&user), user })
}

fn tls_paths(input: &Input, errors: &mut Vec<Diagnostic>) -> Option<TlsPaths> {
    let t = &input.config.security.tls;
    if !t.enabled {
        return None;
    }
    let from_secrets = input.secrets.tls.as_ref();
    let pick = |s: Option<&String>, conf: &String, default: &str| -> String {
        s.filter(|v| !v.is_empty())
            .or(Some(conf).filter(|v| !v.is_empty()))
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let data_dir = input.config.persistence.data_dir.trim_end_matches('/');
    let mut sources = Vec::new();
    let mut resolve = |field: &str, chosen: String| -> String {
        let bad =
            chosen.is_empty() || !shell_safe(&chosen) || chosen.ends_with('/') || chosen.split('/').any(|c| c == "..");
        if bad {
            errors.push(
                Diagnostic::error(
                    "compose.bad-tls-path",
                    format!("/config/security/tls/{field}"),
                    format!("`{chosen}` cannot be mounted into a container"),
                )
                .with_hint("use a path made of letters, digits, `_`, `-`, `.` and `/`, without `..`"),
            );
        }
        if chosen.starts_with('/') {
            return chosen;
        }
        // A relative path (the host's own CA: `tls/tls.crt`) is a file of the
        // rendered tree; Redis reads it relative to its `dir`.
        let rel = chosen.trim_start_matches("./").to_owned();
        let container = format!("{data_dir}/{rel}");
        sources.push((container.clone(), format!("../{rel}")));
        container
    };
    let cert = resolve("cert_file", pick(from_secrets.map(|s| &s.cert_file), &t.cert_file, "tls/tls.crt"));
    let key = resolve("key_file", pick(from_secrets.map(|s| &s.key_file), &t.key_file, "tls/tls.key"));
    let ca = resolve("ca_file", pick(from_secrets.map(|s| &s.ca_file), &t.ca_file, "tls/ca.crt"));
    let paths = TlsPaths { cert, key, ca, client_cert: t.client_auth == "required", sources };
    Some(paths)
}

/// The whole compose document.
fn document(ctx: &Ctx<'_>) -> Yaml {
    let input = ctx.input;
    let nodes = &input.topology.nodes;
    let masters: Vec<String> = nodes.iter().filter(|n| n.role == "master").map(|n| n.name.clone()).collect();
    let data_nodes: Vec<_> = nodes.iter().filter(|n| n.is_data()).collect();
    let monitoring = input.config.monitoring.exporter;
    let mut services = MapBuilder::new();
    for n in nodes {
        match n.role.as_str() {
            "master" | "replica" => services.push(n.name.clone(), ctx.data_service(n, &masters)),
            "sentinel" => services.push(n.name.clone(), ctx.sentinel_service(n, &masters)),
            _ => {}
        }
    }
    let cluster_init = input.topology.mode == "cluster" && (ctx.admin.is_some() || !input.config.security.auth_enabled);
    if cluster_init {
        services.push(format!("{}-cluster-init", ctx.project), ctx.cluster_init_service(&data_nodes));
    }
    if monitoring {
        if let Some(cred) = &ctx.exporter {
            services.push(format!("{}-exporter-auth", ctx.project), ctx.exporter_auth_service(cred, &data_nodes));
        }
        for n in &data_nodes {
            services.push(format!("{}-exporter", n.name), ctx.exporter_service(n));
        }
    }
    let mut volumes = MapBuilder::new();
    if input.config.compose.named_volumes {
        for n in nodes.iter().filter(|n| matches!(n.role.as_str(), "master" | "replica" | "sentinel")) {
            volumes.push(format!("{}-data", n.name), Yaml::Map(Vec::new()));
        }
    }
    if monitoring && ctx.exporter.is_some() {
        volumes.push(ctx.exporter_auth_volume(), Yaml::Map(Vec::new()));
    }
    let mut secrets = MapBuilder::new();
    let mut seen = Vec::new();
    let admin = ctx.admin.iter().filter(|_| cluster_init);
    let used = ctx.probe.iter().chain(ctx.exporter.iter().filter(|_| monitoring)).chain(admin);
    for c in used.chain(ctx.sentinel_auth.iter()) {
        if !seen.contains(&c.secret) {
            seen.push(c.secret.clone());
            secrets.push(
                c.secret.clone(),
                MapBuilder::new().put("file", Yaml::s(format!("../secrets/{}.password", c.user))).build(),
            );
        }
    }
    let network = &input.config.compose.network;
    let networks = (!network.is_empty()).then(|| {
        MapBuilder::new().put(network.clone(), MapBuilder::new().put("name", Yaml::s(network)).build()).build()
    });
    MapBuilder::new()
        .put("services", services.build())
        .put_nonempty("volumes", volumes.build())
        .put_nonempty("secrets", secrets.build())
        .put_opt("networks", networks)
        .build()
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Str(s) => Value::String(s.clone()),
        Yaml::Int(i) => json!(i),
        Yaml::Float(f) => json!(f),
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::List(l) => Value::Array(l.iter().map(to_json).collect()),
        Yaml::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

redplate_plugin_sdk::export_generator!(Plugin);
redplate_plugin_sdk::bump_allocator!();

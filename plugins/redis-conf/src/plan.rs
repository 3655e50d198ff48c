//! Everything this generator decides, before any template runs: the
//! sections of every file and the diagnostics. `validate` returns the
//! diagnostics; `generate` renders the sections through the templates.

use crate::acl::{self, Accounts};
use crate::cfg::Cfg;
use crate::conf::{Directive, Section, apply_overrides};
use crate::input::{Input, Node};
use crate::{redis, sentinel};
use redplate_plugin_sdk::Diagnostic;

/// The decided content of every file.
pub struct Plan {
    pub redis: Vec<(Node, Vec<Section>)>,
    pub accounts: Accounts,
    pub sentinels: Vec<(Node, Vec<Section>)>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Plan {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == redplate_plugin_sdk::Severity::Error)
    }
}

pub fn plan(input: &Input) -> Plan {
    let cfg = Cfg::new(&input.config);
    let mut out = Vec::new();
    if input.topology.data_nodes().next().is_none() {
        out.push(
            Diagnostic::error("redis-conf.no-data-nodes", "/topology/nodes", "the topology has no master or replica")
                .with_hint("set `deployment.mode` to a mode with at least one Redis node"),
        );
    }
    check_tls(input, &cfg, &mut out);
    let overrides = strategy_directives(input, &mut out);
    let accounts = acl::build(input, &cfg, &mut out);
    check_accounts(input, &cfg, &accounts, &mut out);
    // Containers run the upstream image, built with Redis's own jemalloc:
    // nothing to say there. Local processes run this machine's redis-server,
    // which `redplate deploy` asks first (host/src/ops/deploy.rs): it turns
    // `activedefrag` off, and says so, where the build refuses it (Debian's
    // does). So this is a notice, said once per render, not per node.
    if input.target == "local" && cfg.bool("/memory/active_defrag") == Some(true) {
        out.push(
            Diagnostic::info(
                "redis-conf.activedefrag-local",
                "/config/memory/active_defrag",
                "`activedefrag yes` needs redis's own jemalloc: `redplate deploy` turns it off where this machine's `redis-server` refuses it (distribution builds, e.g. debian's)",
            )
            .with_hint("to run these files by hand with a distribution redis, set `memory.active_defrag: false`"),
        );
    }
    if !input.clear_secrets() && cfg.bool("/security/auth_enabled") == Some(true) {
        out.push(
            Diagnostic::info(
                "redis-conf.secrets-injected-later",
                "/secrets/users",
                "for kubernetes, users.acl has no password hashes and redis.conf/sentinel.conf no `masterauth`/`auth-pass`",
            )
            .with_hint("the kubernetes generator adds them at start from each user's `secret_name`/`secret_key`"),
        );
    }
    let mut redis_files = Vec::new();
    let shared = redis::Shared::new(input, &cfg);
    for (_, node) in input.topology.data_nodes() {
        let mut sections = redis::sections(input, &cfg, node, &accounts, &shared, &mut out);
        apply_overrides(&mut sections, &overrides, "cache strategy");
        redis_files.push((node.clone(), sections));
    }
    let mut sentinel_files = Vec::new();
    for (_, node) in input.topology.sentinels() {
        sentinel_files.push((node.clone(), sentinel::sections(input, &cfg, node, &accounts, &mut out)));
    }
    out.extend(cfg.take_errors());
    dedup(&mut out);
    Plan { redis: redis_files, accounts, sentinels: sentinel_files, diagnostics: out }
}

/// Diagnostics raised once per node are reported once.
fn dedup(out: &mut Vec<Diagnostic>) {
    let mut seen: Vec<Diagnostic> = Vec::new();
    out.retain(|d| {
        if seen.contains(d) {
            false
        } else {
            seen.push(d.clone());
            true
        }
    });
}

fn check_tls(input: &Input, cfg: &Cfg, out: &mut Vec<Diagnostic>) {
    if !cfg.bool("/security/tls/enabled").unwrap_or(false) {
        return;
    }
    if !input.secrets.tls.as_ref().is_some_and(|t| t.complete()) {
        out.push(
            Diagnostic::error(
                "redis-conf.tls-without-certificates",
                "/secrets/tls",
                "tls is on but `secrets.tls` does not name the certificate, key and ca files for this target",
            )
            .with_hint(
                "set `security.tls.cert_source` so the host can provide the files, or turn `security.tls.enabled` off",
            ),
        );
    }
}

fn check_accounts(input: &Input, cfg: &Cfg, acc: &Accounts, out: &mut Vec<Diagnostic>) {
    let auth = cfg.bool("/security/auth_enabled").unwrap_or(false);
    let replicated = input.topology.nodes.iter().any(|n| n.role == "replica");
    if auth && replicated && acc.replication.is_none() {
        out.push(
            Diagnostic::error(
                "redis-conf.no-replication-user",
                "/config/security/users",
                "authentication is on but no acl user has `role: replication`: replicas cannot sync",
            )
            .with_hint("set `security.system_users: true` or add a user with `role: replication`"),
        );
    }
    if input.clear_secrets() {
        for (who, account) in [("replication", &acc.replication), ("sentinel", &acc.sentinel)] {
            let needed = auth
                && (who == "replication" && replicated
                    || who == "sentinel" && input.topology.sentinels().next().is_some());
            if let (true, Some((name, None))) = (needed, account) {
                out.push(
                    Diagnostic::error(
                        "redis-conf.missing-secret",
                        format!("/secrets/users/{name}/password"),
                        format!(
                            "the {who} user `{name}` has no clear-text password in `secrets.users` for this target"
                        ),
                    )
                    .with_hint("the host resolves every user's `password` source into `secrets.users`"),
                );
            }
        }
    }
}

/// The strategy's directives, checked: a name is a Redis directive name and
/// a value is one line.
fn strategy_directives(input: &Input, out: &mut Vec<Diagnostic>) -> Vec<Directive> {
    let Some(strategy) = &input.strategy else { return Vec::new() };
    let mut list = Vec::new();
    for (i, d) in strategy.directives.iter().enumerate() {
        let name_ok =
            !d.name.is_empty() && d.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let value_ok = !d.value.chars().any(char::is_control);
        if !name_ok || !value_ok {
            let (field, what) =
                if name_ok { ("value", "holds control characters") } else { ("name", "is not a redis directive name") };
            out.push(
                Diagnostic::error(
                    "redis-conf.bad-strategy-directive",
                    format!("/strategy/directives/{i}/{field}"),
                    format!("the `{}` strategy's directive `{}` {what}", strategy.name, d.name),
                )
                .with_hint("this is a bug in the strategy plugin"),
            );
            continue;
        }
        if !crate::commands::known_directive(&d.name) {
            let newer_image = input.target != "local";
            let diag = if newer_image { Diagnostic::warning } else { Diagnostic::error };
            out.push(
                diag(
                    "redis-conf.unknown-directive",
                    format!("/strategy/directives/{i}/name"),
                    format!(
                        "the `{}` strategy asks for `{}`, which redis 7.0 does not know: it would refuse to start",
                        strategy.name, d.name
                    ),
                )
                .with_hint("use a redis image that knows the directive, or a strategy that does not need it"),
            );
            if !newer_image {
                continue;
            }
        }
        list.push(Directive::new(d.name.clone(), [&d.value]));
    }
    list
}

//! Rules about authentication, ACL users, secrets, TLS and allowed networks.

use super::{err, prod_err, warn};
use crate::diagnostic::Diagnostic;
use crate::model::{CertSource, Config, Environment, Mode, SecretSource, UserRole};

/// ACL categories Redis knows (7.x).
pub const ACL_CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

pub(super) fn check(c: &Config, out: &mut Vec<Diagnostic>) {
    production(c, out);
    secrets(c, out);
    users(c, out);
    categories(c, out);
    tls(c, out);
    networks(c, out);
}

fn production(c: &Config, out: &mut Vec<Diagnostic>) {
    let s = &c.security;
    let prod = c.deployment.environment == Environment::Production;
    if prod && !s.allow_insecure_production {
        if !s.auth_enabled {
            out.push(err(
                "security.production-without-auth",
                "/security/auth_enabled",
                "production without authentication: anyone who reaches the port owns the data".to_string(),
                "set `security.auth_enabled: true` with ACL users, or waive with `allow_insecure_production` and a reason",
            ));
        }
        if !s.tls.enabled {
            out.push(err(
                "security.production-without-tls",
                "/security/tls/enabled",
                "production without TLS: passwords and data cross the network in clear".to_string(),
                "set `security.tls.enabled: true` with a certificate source, or waive with `allow_insecure_production` and a reason",
            ));
        }
    }
    if s.allow_insecure_production && s.insecure_waiver_reason.trim().is_empty() {
        out.push(err(
            "security.waiver-without-reason",
            "/security/insecure_waiver_reason",
            "`security.allow_insecure_production` is set without `insecure_waiver_reason`".to_string(),
            "say why this deployment may run without auth or TLS",
        ));
    }
    if prod && s.auth_enabled && s.default_user_enabled && !s.users.is_empty() {
        out.push(warn(
            "security.default-user-on",
            "/security/default_user_enabled",
            "production keeps the `default` user enabled next to ACL users".to_string(),
            "set `security.default_user_enabled: false`",
        ));
    }
    if prod && !s.disabled_categories.iter().any(|x| x.trim_start_matches('@') == "dangerous") {
        out.push(warn(
            "security.dangerous-enabled",
            "/security/disabled_categories",
            "production users keep `@dangerous` commands (`FLUSHALL`, `CONFIG`, `DEBUG`…)".to_string(),
            "add `dangerous` to `security.disabled_categories`",
        ));
    }
    if !s.auth_enabled && !s.protected_mode {
        out.push(warn(
            "security.protected-mode-off",
            "/security/protected_mode",
            "`protected_mode` is off without authentication: redis accepts anyone on every interface".to_string(),
            "turn `protected_mode` on or enable authentication",
        ));
    }
}

fn secrets(c: &Config, out: &mut Vec<Diagnostic>) {
    let env = c.deployment.environment;
    if env == Environment::Development {
        return;
    }
    let mut inline = |ptr: String, src: &Option<SecretSource>| {
        if src.as_ref().is_some_and(SecretSource::is_inline) {
            out.push(prod_err(
                env,
                "security.inline-secret",
                &ptr,
                format!("a secret is written in clear text in the template ({env})"),
                "reference it instead: `{ file: ... }`, `{ env: ... }`, `{ secret: { name, key } }` or `{ generate: true }`",
            ));
        }
    };
    inline("/security/password/value".into(), &c.security.password);
    for (i, u) in c.security.users.iter().enumerate() {
        inline(format!("/security/users/{i}/password/value"), &u.password);
    }
    for (i, t) in c.tenancy.tenants.iter().enumerate() {
        inline(format!("/tenancy/tenants/{i}/password/value"), &t.password);
    }
    inline("/backup/encryption/key/value".into(), &c.backup.encryption.key);
}

fn users(c: &Config, out: &mut Vec<Diagnostic>) {
    let s = &c.security;
    if s.auth_enabled && s.password.is_none() && s.users.is_empty() && !s.system_users {
        out.push(err(
            "security.auth-without-credentials",
            "/security/auth_enabled",
            "authentication is on but there is no `security.password` and no `security.users`".to_string(),
            "add ACL users with password sources, or `password: { generate: true }`",
        ));
    }
    for (i, u) in s.users.iter().enumerate() {
        if s.auth_enabled && u.enabled && u.password.is_none() {
            out.push(err(
                "security.user-without-password",
                &format!("/security/users/{i}"),
                format!("acl user `{}` is enabled but has no `password`", u.name),
                "give it `password: { generate: true }` or a file, env or secret reference",
            ));
        }
        if s.users[..i].iter().any(|o| o.name == u.name) {
            out.push(err(
                "security.duplicate-user",
                &format!("/security/users/{i}/name"),
                format!("acl user `{}` is declared twice", u.name),
                "give every user a unique name",
            ));
        }
        if u.name == "default" {
            out.push(err(
                "security.reserved-user",
                &format!("/security/users/{i}/name"),
                "the `default` user cannot be declared in `security.users`".to_string(),
                "use `security.default_user_enabled` and `security.password` for it",
            ));
        }
    }
    let replicated = match c.deployment.mode {
        Mode::Standalone => false,
        Mode::Cluster => c.cluster.replicas_per_shard > 0,
        Mode::Replication | Mode::Sentinel => c.replication.replicas > 0,
    };
    let has_repl_user = s.system_users || s.users.iter().any(|u| u.role == UserRole::Replication);
    if s.auth_enabled && !s.default_user_enabled && replicated && !has_repl_user {
        out.push(warn(
            "security.missing-system-user",
            "/security/users",
            "replicas must authenticate but no user has `role: replication`".to_string(),
            "set `security.system_users: true` or add a user with `role: replication`",
        ));
    }
}

fn categories(c: &Config, out: &mut Vec<Diagnostic>) {
    for (i, cat) in c.security.disabled_categories.iter().enumerate() {
        let name = cat.trim_start_matches(['-', '@']);
        if !ACL_CATEGORIES.contains(&name) {
            let hint = match crate::strict::did_you_mean(name, ACL_CATEGORIES) {
                Some(m) => format!("did you mean `{m}`?"),
                None => "see `ACL CAT` for the categories redis knows".to_string(),
            };
            out.push(err(
                "security.unknown-category",
                &format!("/security/disabled_categories/{i}"),
                format!("unknown acl category `{cat}`: redis refuses to start with it"),
                hint,
            ));
        }
    }
}

fn tls(c: &Config, out: &mut Vec<Diagnostic>) {
    let t = &c.security.tls;
    if !t.enabled {
        return;
    }
    let missing: Vec<&str> = match t.cert_source {
        CertSource::Files => [("cert_file", &t.cert_file), ("key_file", &t.key_file), ("ca_file", &t.ca_file)]
            .iter()
            .filter(|(_, v)| v.trim().is_empty())
            .map(|(k, _)| *k)
            .collect(),
        CertSource::Secret if t.secret_name.trim().is_empty() => vec!["secret_name"],
        CertSource::CertManager if t.issuer.trim().is_empty() => vec!["issuer"],
        _ => Vec::new(),
    };
    if let Some(first) = missing.first() {
        let list: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
        out.push(err(
            "tls.missing-certificates",
            &format!("/security/tls/{first}"),
            format!("tls is on but {} {} not set", list.join(", "), if missing.len() == 1 { "is" } else { "are" }),
            "point at the PEM files, or use `cert_source: secret`, `cert_manager` or `self_signed`",
        ));
    }
    if t.cert_source == CertSource::SelfSigned && c.deployment.environment == Environment::Production {
        out.push(warn(
            "tls.self-signed-production",
            "/security/tls/cert_source",
            "production uses a self-signed certificate authority".to_string(),
            "use `cert_source: cert_manager` or certificates from your CA",
        ));
    }
    if t.protocols.is_empty() {
        out.push(err(
            "tls.no-protocols",
            "/security/tls/protocols",
            "`security.tls.protocols` is empty".to_string(),
            "enable `TLSv1.2` and `TLSv1.3`",
        ));
    }
    if t.disable_plain_port {
        let replicated = c.deployment.mode != Mode::Standalone;
        if replicated && !t.replication {
            out.push(err(
                "tls.plaintext-needed",
                "/security/tls/replication",
                "`port 0` disables plain text but `security.tls.replication` is false: replicas cannot connect"
                    .to_string(),
                "set `security.tls.replication: true`",
            ));
        }
        if c.deployment.mode == Mode::Cluster && !t.cluster {
            out.push(err(
                "tls.plaintext-needed",
                "/security/tls/cluster",
                "`port 0` disables plain text but `security.tls.cluster` is false: the cluster bus cannot connect"
                    .to_string(),
                "set `security.tls.cluster: true`",
            ));
        }
        if c.deployment.mode == Mode::Sentinel && !t.sentinel {
            out.push(err(
                "tls.plaintext-needed",
                "/security/tls/sentinel",
                "`port 0` disables plain text but `security.tls.sentinel` is false: sentinels cannot reach redis"
                    .to_string(),
                "set `security.tls.sentinel: true`",
            ));
        }
    }
}

/// Whether `s` is an IPv4/IPv6 CIDR (`10.0.0.0/8`, `::1/128`) or a bare address.
pub(crate) fn valid_cidr(s: &str) -> bool {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(ip) => {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|n| n <= max))
        }
        Err(_) => false,
    }
}

fn networks(c: &Config, out: &mut Vec<Diagnostic>) {
    let lists = [
        ("/network/allowed_cidrs", &c.network.allowed_cidrs),
        ("/security/allowed_networks", &c.security.allowed_networks),
    ];
    for (base, list) in lists {
        for (i, cidr) in list.iter().enumerate() {
            if !valid_cidr(cidr) {
                out.push(err(
                    "security.invalid-cidr",
                    &format!("{base}/{i}"),
                    format!("`{cidr}` is not a CIDR"),
                    "write an address and prefix length, e.g. `10.0.0.0/8`",
                ));
            }
        }
    }
}

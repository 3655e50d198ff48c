//! `users.acl`: the `default` user, the declared ACL users, the system users
//! (replication, sentinel, exporter, probe) with least privilege, and one user
//! per tenant bound to its key prefix and channels (docs/defaults.md, "Tenants").

use crate::cfg::Cfg;
use crate::commands::check_rule;
use crate::input::Input;
use crate::rules::system_rules;
use redplate_plugin_sdk::Diagnostic;

/// Roles the `system_users` switch creates, named after their role.
pub const SYSTEM_ROLES: [&str; 4] = ["replication", "sentinel", "exporter", "probe"];

/// One line of `users.acl`.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub rules: Vec<String>,
}

/// The users, and who replicas and sentinels authenticate as.
#[derive(Debug, Default)]
pub struct Accounts {
    pub users: Vec<User>,
    /// Whether `redis.conf` loads `users.acl` (auth on, or any user declared).
    pub enabled: bool,
    /// The replication user and its clear password (when this target has it).
    pub replication: Option<(String, Option<String>)>,
    /// The sentinel user and its clear password.
    pub sentinel: Option<(String, Option<String>)>,
}

/// What every user's rules depend on.
pub struct Ctx<'a> {
    pub input: &'a Input,
    pub auth: bool,
    /// `-@category` and `-command` rules removed from every non-admin user.
    pub disabled: Vec<String>,
}

impl Ctx<'_> {
    /// `#<sha256>`, `nopass` without auth, or nothing (kubernetes: injected later).
    pub fn password(&self, name: &str, out: &mut Vec<Diagnostic>) -> Vec<String> {
        // Kubernetes: no hash either, even when one is given; the generator
        // adds it at pod start from the user's Secret.
        let secret = self.input.secrets.users.get(name).filter(|_| self.input.clear_secrets());
        match secret.and_then(|s| s.sha256.as_deref()) {
            Some(h) if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) => {
                vec![format!("#{}", h.to_ascii_lowercase())]
            }
            Some(_) => {
                out.push(
                    Diagnostic::error(
                        "redis-conf.bad-secret",
                        format!("/secrets/users/{name}/sha256"),
                        format!("the password hash of acl user `{name}` is not 64 hex digits"),
                    )
                    .with_hint("the host writes the hex sha256 of the password here"),
                );
                Vec::new()
            }
            None if !self.auth => vec!["nopass".into()],
            None if self.input.clear_secrets() => {
                out.push(
                    Diagnostic::error(
                        "redis-conf.missing-secret",
                        format!("/secrets/users/{name}"),
                        format!("acl user `{name}` has no password in `secrets.users`"),
                    )
                    .with_hint("give the user a `password` source; the host resolves it into `secrets.users`"),
                );
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    fn clear(&self, name: &str) -> Option<String> {
        if !self.input.clear_secrets() {
            return None;
        }
        self.input.secrets.users.get(name).and_then(|s| s.password.clone())
    }
}

pub(crate) fn own(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Builds the accounts; problems go to `out`.
pub fn build(input: &Input, cfg: &Cfg, out: &mut Vec<Diagnostic>) -> Accounts {
    let auth = cfg.bool("/security/auth_enabled").unwrap_or(false);
    let strict = strict_names(input, cfg);
    let mut disabled = Vec::new();
    for (i, c) in cfg.strings("/security/disabled_categories").iter().enumerate() {
        push_checked(
            &mut disabled,
            format!("-@{}", c.trim_start_matches(['-', '@'])),
            &format!("/config/security/disabled_categories/{i}"),
            strict,
            out,
        );
    }
    for (i, c) in cfg.strings("/security/disabled_commands").iter().enumerate() {
        push_checked(
            &mut disabled,
            format!("-{}", c.trim_start_matches('-').to_ascii_lowercase()),
            &format!("/config/security/disabled_commands/{i}"),
            strict,
            out,
        );
    }
    let ctx = Ctx { input, auth, disabled };
    let mut acc = Accounts::default();
    let declared = cfg.get("/security/users").and_then(|v| v.as_array()).map_or(0, Vec::len);
    let mut roles_seen: Vec<String> = Vec::new();
    let mut users = vec![default_user(&ctx, cfg, out)];
    for i in 0..declared {
        let ptr = format!("/security/users/{i}");
        let (Some(name), role) = (cfg.str(&format!("{ptr}/name")), cfg.str(&format!("{ptr}/role")).unwrap_or("app"))
        else {
            continue;
        };
        roles_seen.push(role.to_owned());
        let enabled = cfg.bool(&format!("{ptr}/enabled")).unwrap_or(true);
        let mut rules = vec![if enabled { "on".to_owned() } else { "off".to_owned() }];
        // A user that is off needs no password (the host may have none for it).
        if enabled || input.secrets.users.contains_key(name) {
            rules.extend(ctx.password(name, out));
        }
        rules.extend(["resetkeys".to_owned(), "resetchannels".to_owned()]);
        match role {
            "admin" => rules.extend(own(&["~*", "&*", "+@all"])),
            "app" => {
                for (j, k) in cfg.strings(&format!("{ptr}/keys")).iter().enumerate() {
                    push_pattern(&mut rules, '~', k, &format!("/config{ptr}/keys/{j}"), out);
                }
                for (j, c) in cfg.strings(&format!("{ptr}/channels")).iter().enumerate() {
                    push_pattern(&mut rules, '&', c, &format!("/config{ptr}/channels/{j}"), out);
                }
                rules.push("-@all".into());
                for (j, r) in cfg.strings(&format!("{ptr}/commands")).iter().enumerate() {
                    push_checked(&mut rules, (*r).to_owned(), &format!("/config{ptr}/commands/{j}"), strict, out);
                }
                rules.extend(ctx.disabled.iter().cloned());
            }
            system => rules.extend(system_rules(system)),
        }
        if enabled && role == "replication" && acc.replication.is_none() {
            acc.replication = Some((name.to_owned(), ctx.clear(name)));
        }
        if enabled && role == "sentinel" && acc.sentinel.is_none() {
            acc.sentinel = Some((name.to_owned(), ctx.clear(name)));
        }
        users.push(User { name: name.to_owned(), rules });
    }
    if cfg.bool("/security/system_users").unwrap_or(false) {
        for role in SYSTEM_ROLES {
            if roles_seen.iter().any(|r| r == role) {
                continue;
            }
            if let Some(i) = users.iter().position(|u| u.name == role) {
                out.push(
                    Diagnostic::error(
                        "redis-conf.system-user-clash",
                        format!("/config/security/users/{}/name", i.saturating_sub(1)),
                        format!("acl user `{role}` is declared with another role, so the system user `{role}` cannot be created"),
                    )
                    .with_hint(format!("give the user `role: {role}`, or rename it")),
                );
                continue;
            }
            let mut rules = vec!["on".to_owned()];
            rules.extend(ctx.password(role, out));
            rules.extend(["resetkeys".to_owned(), "resetchannels".to_owned()]);
            rules.extend(system_rules(role));
            match role {
                "replication" => acc.replication = Some((role.to_owned(), ctx.clear(role))),
                "sentinel" => acc.sentinel = Some((role.to_owned(), ctx.clear(role))),
                _ => {}
            }
            users.push(User { name: role.to_owned(), rules });
        }
    }
    users.extend(crate::tenants::users(&ctx, cfg, out));
    for (i, u) in users.iter().enumerate() {
        if users[..i].iter().any(|o| o.name == u.name) {
            out.push(
                Diagnostic::error(
                    "redis-conf.duplicate-user",
                    "/config/security/users",
                    format!(
                        "acl user `{}` would be written twice (a declared user, a system user or a tenant's)",
                        u.name
                    ),
                )
                .with_hint("rename the declared user: `tenant-<id>` and the role names are taken"),
            );
        }
    }
    acc.enabled = auth || users.len() > 1;
    acc.users = users;
    acc
}

fn default_user(ctx: &Ctx, cfg: &Cfg, out: &mut Vec<Diagnostic>) -> User {
    let enabled = cfg.bool("/security/default_user_enabled").unwrap_or(true);
    let rules = if !enabled {
        own(&["off", "resetpass", "resetkeys", "resetchannels", "-@all"])
    } else if !ctx.auth {
        own(&["on", "nopass", "~*", "&*", "+@all"])
    } else {
        let mut r = vec!["on".to_owned()];
        r.extend(ctx.password("default", out));
        r.extend(own(&["~*", "&*", "+@all"]));
        r.extend(ctx.disabled.iter().cloned());
        r
    };
    User { name: "default".into(), rules }
}

/// Checks a rule against Redis 7.0. On the local target (this machine's
/// redis) or a declared version before 7.2 an unknown name is an error; for an
/// image of 7.2 or later it may be a newer command, so it is kept with a warning.
pub fn push_checked(rules: &mut Vec<String>, rule: String, pointer: &str, strict: bool, out: &mut Vec<Diagnostic>) {
    let Err(e) = check_rule(&rule) else {
        rules.push(rule);
        return;
    };
    let newer = rule.trim_start_matches(['+', '-']).chars().all(|c| c.is_ascii_alphanumeric() || c == '|' || c == '_');
    if strict || !newer {
        out.push(
            Diagnostic::error("redis-conf.unknown-acl-rule", pointer, format!("{e}: redis 7.0 would refuse to start"))
                .with_hint("see `ACL CAT` and `COMMAND LIST` on redis 7.0 for the names it knows"),
        );
    } else {
        out.push(
            Diagnostic::warning(
                "redis-conf.newer-acl-rule",
                pointer,
                format!("{e}: only a newer redis accepts `{rule}`"),
            )
            .with_hint("redis refuses to start with a command name it does not know: keep the image at 7.2 or later"),
        );
        rules.push(rule);
    }
}

/// Whether ACL names must be known to Redis 7.0 (see [`push_checked`]).
fn strict_names(input: &Input, cfg: &Cfg) -> bool {
    let version = cfg.str("/deployment/redis_version").unwrap_or("7.0");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    input.target == "local" || (major, minor) < (7, 2)
}

pub fn push_pattern(rules: &mut Vec<String>, sigil: char, pattern: &str, pointer: &str, out: &mut Vec<Diagnostic>) {
    if pattern.is_empty() || pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        out.push(
            Diagnostic::error(
                "redis-conf.bad-pattern",
                pointer,
                format!("acl pattern `{pattern}` is empty or holds whitespace"),
            )
            .with_hint("acl files split rules on spaces: use a glob without spaces"),
        );
    } else {
        rules.push(format!("{sigil}{pattern}"));
    }
}

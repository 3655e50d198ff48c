//! One ACL user per tenant with `key_prefix` isolation: `tenant-<id>`, bound
//! to `~<prefix>*` and its channels, data commands only (docs/defaults.md, "Tenants").

use crate::acl::{Ctx, User, push_pattern};
use crate::cfg::Cfg;
use crate::rules::tenant_rules;
use redplate_plugin_sdk::Diagnostic;

/// The ACL user name of a tenant (its key in `secrets.users`).
pub fn user_name(id: &str) -> String {
    format!("tenant-{id}")
}

/// The tenant users, or none when tenancy is off or not by key prefix.
pub fn users(ctx: &Ctx, cfg: &Cfg, out: &mut Vec<Diagnostic>) -> Vec<User> {
    if !cfg.bool("/tenancy/enabled").unwrap_or(false) {
        return Vec::new();
    }
    let isolation = cfg.str("/tenancy/isolation").unwrap_or("key_prefix");
    let tenants = cfg.get("/tenancy/tenants").and_then(|v| v.as_array()).map_or(0, Vec::len);
    if isolation != "key_prefix" {
        if tenants > 0 {
            out.push(
                Diagnostic::info(
                    "redis-conf.tenants-not-by-prefix",
                    "/config/tenancy/isolation",
                    format!("tenants use `{isolation}` isolation: users.acl gets no per-tenant users"),
                )
                .with_hint("acl users can only be bound to keys with `isolation: key_prefix`"),
            );
        }
        return Vec::new();
    }
    let prefix_pattern = cfg.str("/tenancy/prefix_pattern").unwrap_or("tenant:{tenantId}:");
    let channel_pattern = cfg.str("/tenancy/channel_pattern").unwrap_or("");
    if !check_prefix(prefix_pattern, out) {
        return Vec::new();
    }
    if !channel_pattern.is_empty() && !channel_pattern.contains("{tenantId}") {
        out.push(
            Diagnostic::error(
                "redis-conf.shared-tenant-channels",
                "/config/tenancy/channel_pattern",
                format!("the tenant channel pattern `{channel_pattern}` has no `{{tenantId}}`: every tenant would share its channels"),
            )
            .with_hint("use a pattern such as `tenant:{tenantId}:*`, or leave it empty for no channels"),
        );
        return Vec::new();
    }
    let scripts = cfg.bool("/tenancy/allow_scripts").unwrap_or(false);
    let mut users = Vec::new();
    for i in 0..tenants {
        let ptr = format!("/tenancy/tenants/{i}/id");
        let Some(id) = cfg.str(&ptr) else { continue };
        let valid = id.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            out.push(
                Diagnostic::error(
                    "redis-conf.bad-tenant-id",
                    format!("/config{ptr}"),
                    format!("tenant id `{id}` is not lowercase letters, digits, `-` and `_`"),
                )
                .with_hint("tenant ids end up in key globs; keep them plain"),
            );
            continue;
        }
        let name = user_name(id);
        let mut rules = vec!["on".to_owned()];
        rules.extend(ctx.password(&name, out));
        rules.push("resetkeys".into());
        push_pattern(
            &mut rules,
            '~',
            &format!("{}*", prefix_pattern.replace("{tenantId}", id)),
            &format!("/config{ptr}"),
            out,
        );
        rules.push("resetchannels".into());
        if !channel_pattern.is_empty() {
            let chan = channel_pattern.replace("{tenantId}", id);
            push_pattern(&mut rules, '&', &chan, "/config/tenancy/channel_pattern", out);
        }
        rules.extend(tenant_rules(scripts, ctx.input.topology.is_cluster(), &ctx.disabled));
        users.push(User { name, rules });
    }
    users
}

/// A prefix must hold `{tenantId}`, end with a terminator (`tenant:a:`, so
/// that `a` never covers `ab`) and hold no glob characters.
fn check_prefix(pattern: &str, out: &mut Vec<Diagnostic>) -> bool {
    const PTR: &str = "/config/tenancy/prefix_pattern";
    let problem = if !pattern.contains("{tenantId}") {
        Some("does not contain `{tenantId}`")
    } else if pattern.ends_with("{tenantId}") || pattern.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        Some("does not end with a terminator such as `:`, so tenant `a` would cover tenant `ab`")
    } else if pattern.contains(['*', '?', '[', ']', '\\']) || pattern.chars().any(char::is_whitespace) {
        Some("holds glob characters or whitespace")
    } else {
        None
    };
    match problem {
        Some(p) => {
            out.push(
                Diagnostic::error("redis-conf.bad-tenant-prefix", PTR, format!("the tenant prefix `{pattern}` {p}"))
                    .with_hint("use a pattern such as `tenant:{tenantId}:`"),
            );
            false
        }
        None => true,
    }
}

//! Built-in generator: `redis/<node>/redis.conf` for every data node,
//! `redis/users.acl`, and `sentinel/<node>/sentinel.conf` for every sentinel.
//!
//! [`plan`] decides every directive and ACL rule as plain data (and every
//! diagnostic); the templates in `templates/` only lay the lines out, so a
//! user can override them by name (`redis.conf`, `users.acl`,
//! `sentinel.conf`). The WIT adapter is the `export_generator!` line.
//!
//! Data the templates get (for writing an override):
//! - `redis.conf`, `sentinel.conf`: `{node, sections}` — `node` is the
//!   topology node (`name`, `role`, `hostname`, `ports`, `data_dir`…),
//!   `sections` a list of `{title, directives: [{name, value, line}]}` where
//!   `value` is the quoted arguments and `line` the whole directive.
//! - `users.acl`: `{users: [{name, rules}]}` (Redis 7.0 `users.acl` has no
//!   comments: every line must be a `user` line).
//!
//! Conventions the other generators and the host rely on:
//! - system users are named after their role (`replication`, `sentinel`,
//!   `exporter`, `probe`); tenant users are `tenant-<id>`; their passwords
//!   are looked up in `secrets.users` under those names;
//! - on the `local` target `aclfile` is relative to the node's data dir
//!   (`../../redis/users.acl`: `dir` changes Redis's working directory), so
//!   Redis is started from the deployment folder; in containers `users.acl`
//!   is expected at `/etc/redis/users.acl`;
//! - with auth on, a Sentinel's own port takes the `sentinel` user's password
//!   (`requirepass`, and `sentinel sentinel-pass` between sentinels).

pub mod acl;
pub mod cfg;
pub mod commands;
pub mod conf;
pub mod input;
pub mod plan;
pub mod redis;
pub mod rules;
pub mod sentinel;
pub mod tenants;

use conf::sections_view;
use input::Input;
use redplate_plugin_sdk::{Artifact, Diagnostic, Generator, Host, Output, PluginInfo, parse_input};
use serde_json::json;

const NAME: &str = "redis-conf";

/// The templates a user may override by name.
pub const REDIS_CONF: &str = include_str!("templates/redis.conf.hbs");
pub const USERS_ACL: &str = include_str!("templates/users.acl.hbs");
pub const SENTINEL_CONF: &str = include_str!("templates/sentinel.conf.hbs");

/// What the `redis.conf` and `sentinel.conf` templates receive.
#[derive(serde::Serialize)]
struct NodeData<'a> {
    node: &'a input::Node,
    sections: Vec<conf::SectionView<'a>>,
}

pub struct RedisConf;

impl Generator for RedisConf {
    fn info() -> PluginInfo {
        PluginInfo::generator(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "redis.conf for every data node, users.acl, sentinel.conf for every sentinel",
            &["redis/*/redis.conf", "redis/users.acl", "sentinel/*/sentinel.conf"],
        )
    }

    fn validate(input_json: &str) -> Vec<Diagnostic> {
        match parse_input::<Input>(NAME, input_json) {
            Err(ds) => ds,
            Ok(input) => plan::plan(&input).diagnostics,
        }
    }

    fn generate(input_json: &str, host: &dyn Host) -> Result<Output, Vec<Diagnostic>> {
        let input: Input = parse_input(NAME, input_json)?;
        let plan = plan::plan(&input);
        if plan.has_errors() {
            return Err(plan.diagnostics);
        }
        let templates = &input.template_overrides;
        let render = |name: &str, template: &str, data: &dyn Fn() -> serde_json::Result<String>, native: String| {
            templates.render(host, name, template, || data().map_err(|e| e.to_string()), || native).map_err(|e| {
                vec![Diagnostic::error("redis-conf.render", "", e).with_hint(format!(
                    "check your override of the `{name}` template; the data it gets is described in plugins/redis-conf"
                ))]
            })
        };
        let mut artifacts = Vec::new();
        for (node, sections) in &plan.redis {
            let data = || serde_json::to_string(&NodeData { node, sections: sections_view(sections) });
            let header = format!(
                "# redis.conf for `{}` ({}), rendered by redplate `redis-conf`.\n\
                 # Override this template by name (`redis.conf`) with `redplate render --templates DIR`.\n",
                node.name, node.role
            );
            let text = render("redis.conf", REDIS_CONF, &data, conf::layout(header, sections))?;
            artifacts.push(Artifact::text(format!("redis/{}/redis.conf", node.name), text));
        }
        if plan.accounts.enabled {
            let users = &plan.accounts.users;
            let data = || {
                let users: Vec<_> = users.iter().map(|u| json!({"name": u.name, "rules": u.rules.join(" ")})).collect();
                serde_json::to_string(&json!({ "users": users }))
            };
            let mut native = String::new();
            for u in users {
                // As the template writes it: `user {{name}} {{rules}}`.
                native.push_str("user ");
                native.push_str(&u.name);
                native.push(' ');
                for (i, rule) in u.rules.iter().enumerate() {
                    if i > 0 {
                        native.push(' ');
                    }
                    native.push_str(rule);
                }
                native.push('\n');
            }
            let text = render("users.acl", USERS_ACL, &data, native)?;
            artifacts.push(Artifact::text("redis/users.acl", text));
        }
        for (node, sections) in &plan.sentinels {
            let data = || serde_json::to_string(&NodeData { node, sections: sections_view(sections) });
            let header = format!(
                "# sentinel.conf for `{}`, rendered by redplate `redis-conf`.\n\
                 # Sentinel rewrites this file at run time (its id, the replicas and sentinels it found).\n",
                node.name
            );
            let text = render("sentinel.conf", SENTINEL_CONF, &data, conf::layout(header, sections))?;
            artifacts.push(Artifact::text(format!("sentinel/{}/sentinel.conf", node.name), text));
        }
        let mut plan = plan;
        let diagnostics = std::mem::take(&mut plan.diagnostics);
        redplate_plugin_sdk::discard((plan, input));
        Ok(Output { artifacts, diagnostics })
    }
}

redplate_plugin_sdk::export_generator!(RedisConf);
redplate_plugin_sdk::bump_allocator!();

#[cfg(test)]
mod tests;

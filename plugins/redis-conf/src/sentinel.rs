//! The directives of one Sentinel's `sentinel.conf`: its own port (TLS-only
//! when Sentinel speaks TLS), the monitored master with quorum and timers,
//! the ACL user it authenticates as, and host-name handling.

use crate::acl::Accounts;
use crate::cfg::Cfg;
use crate::conf::{Section, yes_no};
use crate::input::{Input, Node};
use crate::redis::service_port;
use redplate_plugin_sdk::Diagnostic;

pub fn sections(input: &Input, cfg: &Cfg, node: &Node, acc: &Accounts, out: &mut Vec<Diagnostic>) -> Vec<Section> {
    let tls_on =
        cfg.bool("/security/tls/enabled").unwrap_or(false) && cfg.bool("/security/tls/sentinel").unwrap_or(true);
    let auth = cfg.bool("/security/auth_enabled").unwrap_or(false);
    let mut process = Section::new("sentinel process");
    // As the data nodes (see `redis::listen`).
    let (bind, protected) = crate::redis::listen(input, cfg, node);
    process.args("bind", bind);
    process.flag("protected-mode", protected);
    let port = node.ports.sentinel.unwrap_or(26379);
    if tls_on {
        process.set("port", 0).set("tls-port", port);
    } else {
        process.set("port", port);
    }
    process.set("daemonize", "no").set("dir", &node.data_dir);
    let announce = cfg.bool("/sentinel/announce_hostnames");
    process.set("sentinel resolve-hostnames", yes_no(cfg.bool("/sentinel/resolve_hostnames").unwrap_or(true)));
    process.set("sentinel announce-hostnames", yes_no(announce.unwrap_or(false)));
    if announce == Some(true) && cfg.bool("/network/announce_hostname").unwrap_or(false) && !node.hostname.is_empty() {
        process.set("sentinel announce-ip", &node.hostname);
    }
    process.flag("sentinel deny-scripts-reconfig", cfg.bool("/sentinel/deny_scripts_reconfig"));
    let mut sections = vec![process];
    if tls_on {
        let mut tls = Section::new("tls");
        if let Some(files) = &input.secrets.tls {
            tls.set("tls-cert-file", &files.cert_file)
                .set("tls-key-file", &files.key_file)
                .set("tls-ca-cert-file", &files.ca_file);
        }
        let client_auth = match cfg.str("/security/tls/client_auth") {
            Some("required") => "yes",
            Some("optional") => "optional",
            _ => "no",
        };
        tls.set("tls-auth-clients", client_auth).set("tls-replication", "yes");
        sections.push(tls);
    }
    let mut auth_s = Section::new("authentication");
    if auth {
        // Clients and the other sentinels authenticate with the sentinel user's password.
        if let Some((_, Some(password))) = &acc.sentinel {
            auth_s.set("requirepass", password);
            auth_s.args("sentinel sentinel-pass", [password.clone()]);
        }
    }
    sections.push(auth_s);
    sections.push(monitor(input, cfg, acc, auth, out));
    sections
}

fn monitor(input: &Input, cfg: &Cfg, acc: &Accounts, auth: bool, out: &mut Vec<Diagnostic>) -> Section {
    let mut s = Section::new("monitored master");
    let name = input
        .topology
        .master_name
        .clone()
        .or_else(|| cfg.str("/sentinel/master_name").map(str::to_owned))
        .unwrap_or_else(|| "mymaster".into());
    let tls_for_sentinel = cfg.bool("/security/tls/sentinel").unwrap_or(true);
    let master = input.topology.nodes.iter().find(|n| n.role == "master");
    let Some((m, port)) = master.and_then(|m| service_port(cfg, m, tls_for_sentinel).map(|p| (m, p))) else {
        out.push(
            Diagnostic::error("redis-conf.no-master", "/topology/nodes", "sentinel mode without a master to monitor")
                .with_hint("this is a host bug: the topology should list the master"),
        );
        return s;
    };
    let quorum = cfg.uint("/sentinel/quorum").unwrap_or(2);
    s.args("sentinel monitor", [name.clone(), m.hostname.clone(), port.to_string(), quorum.to_string()]);
    if auth {
        match &acc.sentinel {
            Some((user, password)) => {
                s.args("sentinel auth-user", [name.clone(), user.clone()]);
                if let Some(p) = password {
                    s.args("sentinel auth-pass", [name.clone(), p.clone()]);
                }
            }
            None => out.push(
                Diagnostic::error(
                    "redis-conf.no-sentinel-user",
                    "/config/security/users",
                    "authentication is on but no acl user has `role: sentinel`: sentinels cannot watch the master",
                )
                .with_hint("set `security.system_users: true` or add a user with `role: sentinel`"),
            ),
        }
    }
    for (directive, value) in [
        ("down-after-milliseconds", cfg.millis("/sentinel/down_after")),
        ("failover-timeout", cfg.millis("/sentinel/failover_timeout")),
        ("parallel-syncs", cfg.uint("/sentinel/parallel_syncs")),
    ] {
        if let Some(v) = value {
            s.args(format!("sentinel {directive}"), [name.clone(), v.to_string()]);
        }
    }
    s
}

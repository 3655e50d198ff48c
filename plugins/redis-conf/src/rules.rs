//! The permissions each kind of user gets: least privilege for the system
//! users, and the tenant recipe of docs/defaults.md ("Tenants") (categories for the data
//! types, then explicit denials of everything server-wide or cross-tenant).
//! Every name here is a Redis 7.0 command or category (tested).

use crate::acl::own;

/// What a replica needs to sync from its master.
const REPLICATION: &[&str] = &["+psync", "+replconf", "+ping"];
/// What Sentinel sends to the nodes it watches (Redis Sentinel docs, "ACL").
const SENTINEL: &[&str] = &[
    "+multi",
    "+slaveof",
    "+ping",
    "+exec",
    "+subscribe",
    "+config|rewrite",
    "+role",
    "+publish",
    "+info",
    "+client|setname",
    "+client|kill",
    "+script|kill",
];
/// Read-only server metrics for the Prometheus exporter; no keys.
const EXPORTER: &[&str] = &[
    "+ping",
    "+info",
    "+config|get",
    "+slowlog|get",
    "+slowlog|len",
    "+latency|latest",
    "+cluster|info",
    "+memory|stats",
];
/// What `backup.sh` and `restore.sh` (plugins/backup) send, and nothing
/// else: no keys, no channels. `redis-cli --rdb` is `REPLCONF` then `SYNC`;
/// restore stops the server with `SHUTDOWN NOSAVE` unless given a stop command.
/// (`plugins/backup/tests/round_trip.rs` runs both scripts as this user.)
const BACKUP: &[&str] =
    &["+ping", "+info", "+time", "+lastsave", "+bgsave", "+config|get", "+replconf", "+sync", "+dbsize", "+shutdown"];
/// Data commands a tenant may use on its own keys and channels.
const TENANT_GRANTS: &[&str] = &[
    "+@read",
    "+@write",
    "+@string",
    "+@hash",
    "+@list",
    "+@set",
    "+@sortedset",
    "+@stream",
    "+@bitmap",
    "+@hyperloglog",
    "+@geo",
    "+@keyspace",
    "+@transaction",
    "+@pubsub",
    "+@connection",
];
const TENANT_SCRIPTS: &[&str] =
    &["+eval", "+evalsha", "+eval_ro", "+evalsha_ro", "+fcall", "+fcall_ro", "+script|load", "+script|exists"];
/// What a cluster client needs to find the slots (never the key counts or names).
const TENANT_CLUSTER: &[&str] =
    &["+cluster|slots", "+cluster|shards", "+cluster|nodes", "+cluster|info", "+cluster|myid", "+cluster|keyslot"];
/// Explicit denials after the categories: other tenants' key names and counts,
/// server-wide information, global state (docs/defaults.md, "Tenants").
const TENANT_DENIALS: &[&str] = &[
    "-@admin",
    "-@dangerous",
    "-keys",
    "-scan",
    "-randomkey",
    "-dbsize",
    "-info",
    "-slowlog",
    "-latency",
    "-config",
    "-monitor",
    "-acl",
    "-memory|stats",
    "-memory|doctor",
    "-memory|malloc-stats",
    "-memory|purge",
    "-client|list",
    "-client|kill",
    "-client|pause",
    "-client|tracking",
    "-pubsub",
    "-function",
    "-script|flush",
    "-script|kill",
    "-script|debug",
    "-flushall",
    "-flushdb",
    "-select",
    "-swapdb",
    "-move",
    "-migrate",
    "-replicaof",
    "-slaveof",
    "-shutdown",
    "-bgsave",
    "-bgrewriteaof",
    "-save",
    "-debug",
    "-module",
    "-cluster|getkeysinslot",
    "-cluster|countkeysinslot",
];

/// The rules of a tenant user after its key and channel patterns.
pub fn tenant_rules(scripts: bool, cluster: bool, disabled: &[String]) -> Vec<String> {
    let mut rules = vec!["-@all".to_owned()];
    rules.extend(own(TENANT_GRANTS));
    if scripts {
        rules.extend(own(TENANT_SCRIPTS));
    }
    if cluster {
        rules.extend(own(TENANT_CLUSTER));
    }
    rules.extend(own(TENANT_DENIALS));
    for d in disabled {
        if !rules.contains(d) {
            rules.push(d.clone());
        }
    }
    rules
}

pub fn system_rules(role: &str) -> Vec<String> {
    let mut rules = Vec::new();
    if role == "sentinel" {
        rules.push("&__sentinel__:hello".to_owned());
    }
    rules.push("-@all".to_owned());
    rules.extend(own(match role {
        "replication" => REPLICATION,
        "sentinel" => SENTINEL,
        "exporter" => EXPORTER,
        "backup" => BACKUP,
        _ => &["+ping"],
    }));
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::check_rule;

    #[test]
    fn every_built_in_rule_names_a_redis_7_0_command() {
        for list in
            [REPLICATION, SENTINEL, EXPORTER, BACKUP, TENANT_GRANTS, TENANT_SCRIPTS, TENANT_CLUSTER, TENANT_DENIALS]
        {
            for rule in list {
                assert_eq!(check_rule(rule), Ok(()), "{rule}");
            }
        }
    }
}

//! Mode `cluster`: a one-shot service that forms the Redis Cluster once every
//! node is healthy — CLUSTER MEET by IP (MEET takes no host names), slots
//! split evenly over the masters, each replica attached to the master the
//! topology names. Does nothing when the cluster is already formed.

use crate::input::Node;
use crate::services::{Ctx, REDIS_USER};
use crate::yaml::{MapBuilder, Yaml};

/// Redis Cluster's slot count.
const SLOTS: u32 = 16384;

impl Ctx<'_> {
    fn port_of(node: &Node) -> u16 {
        node.ports.client.or(node.ports.tls).unwrap_or(6379)
    }

    /// The init script, written with plain `$` and escaped for Compose at the end.
    fn cluster_script(&self, data_nodes: &[&Node]) -> String {
        let masters: Vec<&&Node> = data_nodes.iter().filter(|n| n.role == "master").collect();
        let mut s = String::from("set -eu\n");
        if let Some(c) = &self.admin {
            s.push_str(&format!("REDISCLI_AUTH=\"$(cat /run/secrets/{})\"\nexport REDISCLI_AUTH\n", c.secret));
        }
        let user = self.admin.as_ref().map(|c| format!(" --user {}", c.user)).unwrap_or_default();
        let tls = match (&self.tls, data_nodes.first().and_then(|n| n.ports.client)) {
            (Some(t), None) => t.cli_args(),
            _ => String::new(),
        };
        s.push_str(&format!(
            "c() {{ h=\"$1\"; p=\"$2\"; shift 2; redis-cli{user} -h \"$h\" -p \"$p\"{tls} \"$@\"; }}\n"
        ));
        s.push_str("ip() { getent hosts \"$1\" | awk '{print $1; exit}'; }\n");
        s.push_str("wait_for() { i=0; until eval \"$1\"; do i=$((i + 1)); if [ \"$i\" -ge 120 ]; then echo \"cluster-init: timed out: $2\" >&2; exit 1; fi; sleep 1; done; }\n");
        let Some(first) = masters.first() else { return s };
        let (h0, p0) = (&first.hostname, Self::port_of(first));
        s.push_str(&format!(
            "if c {h0} {p0} CLUSTER INFO | grep -q '^cluster_state:ok'; then echo 'cluster-init: already formed'; exit 0; fi\n"
        ));
        for n in data_nodes.iter().skip(1) {
            let bus = n.ports.cluster_bus.map(|b| format!(" {b}")).unwrap_or_default();
            s.push_str(&format!("c {h0} {p0} CLUSTER MEET \"$(ip {})\" {}{bus}\n", n.hostname, Self::port_of(n)));
        }
        let count = masters.len() as u32;
        for (i, m) in masters.iter().enumerate() {
            let i = i as u32;
            let (from, to) = (i * SLOTS / count, (i + 1) * SLOTS / count - 1);
            s.push_str(&format!(
                "c {} {} CLUSTER ADDSLOTS $(seq {from} {to}) >/dev/null\n",
                m.hostname,
                Self::port_of(m)
            ));
        }
        let total = data_nodes.len();
        s.push_str(&format!(
            "wait_for \"[ \\\"\\$(c {h0} {p0} CLUSTER NODES | grep -c -v handshake)\\\" -ge {total} ]\" 'nodes meeting'\n"
        ));
        for r in data_nodes.iter().filter(|n| n.role == "replica") {
            let Some(m) = r.replica_of.as_ref().and_then(|m| masters.iter().find(|x| &x.name == m)) else { continue };
            // Retried: the replica must have learned the master's ID by gossip first.
            s.push_str(&format!(
                "wait_for \"c {} {} CLUSTER REPLICATE \\\"\\$(c {} {} CLUSTER MYID)\\\" | grep -q OK\" 'replica {}'\n",
                r.hostname,
                Self::port_of(r),
                m.hostname,
                Self::port_of(m),
                r.name
            ));
        }
        s.push_str(&format!(
            "wait_for \"c {h0} {p0} CLUSTER INFO | grep -q '^cluster_state:ok'\" 'cluster_state:ok'\n"
        ));
        s.push_str("echo 'cluster-init: formed'\n");
        s.replace('$', "$$")
    }

    /// The one-shot service forming the cluster.
    pub fn cluster_init_service(&self, data_nodes: &[&Node]) -> Yaml {
        let depends = Self::healthy(data_nodes.iter().map(|n| n.name.clone()));
        let mut volumes = Vec::new();
        if let Some(t) = &self.tls {
            volumes.push(t.mount(&t.ca));
            if t.client_cert {
                volumes.push(t.mount(&t.cert));
                volumes.push(t.mount(&t.key));
            }
        }
        let m = MapBuilder::new()
            .put("image", Yaml::s(self.redis_image()))
            .put("command", Yaml::strs(["sh", "-c", &self.cluster_script(data_nodes)]));
        self.harden(m, REDIS_USER)
            .put("restart", Yaml::s("no"))
            .put_nonempty("volumes", Yaml::strs(volumes))
            .put_opt("secrets", self.admin.as_ref().map(|c| Yaml::strs([c.secret.clone()])))
            .put("depends_on", depends)
            .put_opt("networks", self.networks())
            .put("labels", self.labels(&format!("{}-cluster-init", self.project), "init"))
            .build()
    }
}

//! Topology derivation (DESIGN.md step 5): the list of nodes a config and a
//! target produce — role, shard, host name, ports and data directory. Sent to
//! plugins as JSON; the local backend starts exactly these nodes.

use crate::model::{Config, Mode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Processes on this machine, on loopback ports allocated from `network.local_base_port`.
    Local,
    /// A Docker Compose project: one service per node.
    Compose,
    /// Kubernetes StatefulSets behind headless Services.
    Kubernetes,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Target::Local),
            "compose" => Ok(Target::Compose),
            "kubernetes" | "k8s" => Ok(Target::Kubernetes),
            other => Err(format!("unknown target `{other}`: expected `local`, `compose` or `kubernetes`")),
        }
    }
}

/// A node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A Redis master (a cluster shard's master, or the single server).
    Master,
    /// A Redis replica.
    Replica,
    /// A Redis Sentinel process.
    Sentinel,
}

/// A node's ports; `None` means the node does not listen on that port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
pub struct Ports {
    /// Plain-text client port; `None` with TLS-only (`port 0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<u16>,
    /// TLS client port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<u16>,
    /// Cluster bus port (cluster mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_bus: Option<u16>,
    /// Sentinel port (sentinel nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<u16>,
    /// Prometheus exporter port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<u16>,
}

/// One process of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Node {
    /// Unique name (`orders-0`, `orders-sentinel-1`): also the Compose service name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Cluster shard index (cluster mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<u16>,
    /// Ordinal within its StatefulSet.
    pub ordinal: u16,
    /// The name other nodes and clients reach it by.
    pub hostname: String,
    /// Ports.
    pub ports: Ports,
    /// Data directory.
    pub data_dir: String,
    /// The master's node name, for replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_of: Option<String>,
}

/// The derived node list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Topology {
    /// The target it was derived for.
    pub target: Target,
    /// The deployment mode.
    pub mode: Mode,
    /// Sentinel's master name (sentinel mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_name: Option<String>,
    /// Number of shards (1 outside cluster mode).
    pub shards: u16,
    /// Every node: data nodes first (masters, then replicas), then sentinels.
    pub nodes: Vec<Node>,
}

/// Ports reserved per local slot: data node `k` uses slot `k` (offset 0
/// client, 1 TLS, 3 metrics), sentinel `i` uses slot `i` (offset 2), so no
/// node's ports depend on how many nodes of the other kind there are.
const LOCAL_BLOCK: u32 = 10;

impl Topology {
    /// Redis data nodes (masters and replicas) the config asks for.
    pub fn data_node_count(c: &Config) -> usize {
        match c.deployment.mode {
            Mode::Standalone => 1,
            Mode::Replication | Mode::Sentinel => 1 + usize::from(c.replication.replicas),
            Mode::Cluster => usize::from(c.cluster.shards) * (1 + usize::from(c.cluster.replicas_per_shard)),
        }
    }

    fn sentinel_count(c: &Config) -> usize {
        if c.deployment.mode == Mode::Sentinel { usize::from(c.sentinel.sentinels) } else { 0 }
    }

    /// The highest port the local allocation uses (may exceed 65535: a rule reports it).
    pub fn last_local_port(c: &Config) -> u32 {
        let slots = Self::data_node_count(c).max(Self::sentinel_count(c)) as u32;
        let top = u32::from(c.network.local_base_port) + LOCAL_BLOCK * slots;
        if c.deployment.mode == Mode::Cluster { top + u32::from(c.network.cluster_bus_port_offset) } else { top }
    }

    /// The name of data node `ordinal` of deployment `name`.
    pub fn data_node_name(name: &str, ordinal: u16) -> String {
        format!("{name}-{ordinal}")
    }

    /// The shard of data node `ordinal`: masters are ordinals `0..shards`,
    /// then come the first replica of every shard, the second of every
    /// shard, and so on. Changing the number of replicas therefore only adds
    /// or removes nodes at the end; no node changes ordinal, shard or ports.
    pub fn shard_of(shards: u16, ordinal: u16) -> u16 {
        ordinal % shards.max(1)
    }

    /// Derives the nodes for `target`. Never panics: ports past 65535 (which a
    /// validation rule reports) saturate. Ordinals and local ports are stable
    /// under scaling (see [`Topology::shard_of`]).
    pub fn derive(c: &Config, target: Target) -> Topology {
        let name = &c.deployment.name;
        let mode = c.deployment.mode;
        let shards: u16 = if mode == Mode::Cluster { u16::from(c.cluster.shards) } else { 1 };
        let mut nodes = Vec::new();
        // Data nodes: masters first, then replicas round by round (the first
        // replica of every shard, then the second…), so scaling appends.
        let replicas_each: u16 = match mode {
            Mode::Standalone => 0,
            Mode::Replication | Mode::Sentinel => u16::from(c.replication.replicas),
            Mode::Cluster => u16::from(c.cluster.replicas_per_shard),
        };
        let total = shards.saturating_mul(replicas_each.saturating_add(1));
        for ordinal in 0..total {
            let shard = Self::shard_of(shards, ordinal);
            let (role, master) = if ordinal < shards {
                (Role::Master, None)
            } else {
                (Role::Replica, Some(Self::data_node_name(name, shard)))
            };
            nodes.push(Self::data_node(c, target, ordinal, role, shard, master));
        }
        for i in 0..Self::sentinel_count(c) {
            nodes.push(Self::sentinel_node(c, target, i as u16));
        }
        if mode != Mode::Cluster {
            for n in &mut nodes {
                n.shard = None;
            }
        }
        Topology {
            target,
            mode,
            master_name: (mode == Mode::Sentinel).then(|| c.sentinel.master_name.clone()),
            shards,
            nodes,
        }
    }

    fn local_port(c: &Config, slot: usize, offset: u32) -> u16 {
        let p = u32::from(c.network.local_base_port) + LOCAL_BLOCK * slot as u32 + offset;
        u16::try_from(p).unwrap_or(u16::MAX)
    }

    fn hostname(c: &Config, target: Target, sts: &str, ordinal: u16) -> String {
        match target {
            Target::Local => "127.0.0.1".into(),
            Target::Compose => format!("{sts}-{ordinal}"),
            Target::Kubernetes => {
                format!("{sts}-{ordinal}.{sts}-headless.{}.svc.{}", c.kubernetes.namespace, c.kubernetes.cluster_domain)
            }
        }
    }

    fn data_node(c: &Config, target: Target, ordinal: u16, role: Role, shard: u16, replica_of: Option<String>) -> Node {
        let sts = &c.deployment.name;
        let tls = &c.security.tls;
        let plain = !(tls.enabled && tls.disable_plain_port);
        let slot = usize::from(ordinal);
        let (client, tls_port, metrics) = match target {
            Target::Local => (Self::local_port(c, slot, 0), Self::local_port(c, slot, 1), Self::local_port(c, slot, 3)),
            _ => (c.network.port, c.network.tls_port, c.monitoring.exporter_port),
        };
        let bus_base = if plain { client } else { tls_port };
        let bus = u16::try_from(u32::from(bus_base) + u32::from(c.network.cluster_bus_port_offset)).unwrap_or(u16::MAX);
        let name = Self::data_node_name(sts, ordinal);
        Node {
            hostname: Self::hostname(c, target, sts, ordinal),
            data_dir: Self::data_dir(c, target, &name),
            name,
            role,
            shard: Some(shard),
            ordinal,
            ports: Ports {
                client: plain.then_some(client),
                tls: tls.enabled.then_some(tls_port),
                cluster_bus: (c.deployment.mode == Mode::Cluster).then_some(bus),
                sentinel: None,
                metrics: c.monitoring.exporter.then_some(metrics),
            },
            replica_of,
        }
    }

    fn sentinel_node(c: &Config, target: Target, ordinal: u16) -> Node {
        let sts = format!("{}-sentinel", c.deployment.name);
        let port = match target {
            Target::Local => Self::local_port(c, usize::from(ordinal), 2),
            _ => c.network.sentinel_port,
        };
        let name = format!("{sts}-{ordinal}");
        Node {
            hostname: Self::hostname(c, target, &sts, ordinal),
            data_dir: Self::data_dir(c, target, &name),
            name,
            role: Role::Sentinel,
            shard: None,
            ordinal,
            ports: Ports { sentinel: Some(port), ..Ports::default() },
            replica_of: None,
        }
    }

    fn data_dir(c: &Config, target: Target, node: &str) -> String {
        match target {
            Target::Local => format!("data/{node}"),
            _ => c.persistence.data_dir.clone(),
        }
    }

    /// Nodes with a role.
    pub fn with_role(&self, role: Role) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.role == role)
    }
}

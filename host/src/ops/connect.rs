//! From a registered deployment to connections: each node's [`Endpoint`]
//! (its port, TLS files, redplate's admin user), and the current masters —
//! asked of Sentinel in sentinel mode, of the cluster in cluster mode, of
//! the nodes themselves otherwise. The client below knows nothing of the
//! registry; this is where the two meet.

use crate::client::{ClientError, Endpoint, Node};
use crate::exit::Failure;
use crate::registry::{NodeRecord, Record};
use redplate_config::Diagnostic;
use redplate_config::model::Mode;

/// The endpoint of one node, as redplate's admin user (sentinels with
/// their own password), as the deployment's backend reaches it.
pub fn endpoint(record: &Record, node: &NodeRecord) -> Endpoint {
    crate::backend::endpoint(record, node)
}

/// Every data node (masters and replicas) with its endpoint.
pub fn data_endpoints(record: &Record) -> Vec<(&NodeRecord, Endpoint)> {
    record.data_nodes().map(|n| (n, endpoint(record, n))).collect()
}

/// A failure to reach a deployment's nodes, as the user sees it.
pub fn unreachable(e: ClientError) -> Failure {
    Failure::could_not_run(
        Diagnostic::error("redis.unreachable", "", e.to_string())
            .with_hint("check the deployment with `redplate status <name>`, or start it with `redplate start <name>`"),
    )
}

/// The node names of the current masters, found the way clients find them:
/// Sentinel's answer in sentinel mode, the nodes serving slots in cluster
/// mode, the node whose `INFO replication` says `role:master` otherwise.
pub async fn masters(record: &Record) -> Result<Vec<(&NodeRecord, Node)>, Failure> {
    let data = data_endpoints(record);
    let mut out = Vec::new();
    match record.mode {
        Mode::Sentinel => {
            let sentinels: Vec<Endpoint> = record.sentinels().map(|n| endpoint(record, n)).collect();
            let name = record.master_name.clone().unwrap_or_else(|| "mymaster".into());
            let found = crate::client::sentinel_master(&sentinels, &name).await.map_err(unreachable)?;
            let at = found.and_then(|(host, port)| crate::backend::node_at(record, &host, port));
            let Some((node, ep)) = at.and_then(|n| data.iter().find(|(d, _)| d.name == n.name)) else {
                return Err(Failure::could_not_run(Diagnostic::error(
                    "redis.no-master",
                    "",
                    format!("no sentinel of `{}` knows a master named `{name}` among its nodes", record.name),
                )));
            };
            out.push((*node, Node::connect(ep).await.map_err(unreachable)?));
        }
        Mode::Cluster => {
            let mut seen = None;
            for (_, ep) in &data {
                if let Ok(node) = Node::connect(ep).await
                    && let Ok(masters) = crate::client::cluster_masters(&node).await
                {
                    seen = Some(masters);
                    break;
                }
            }
            let Some(masters) = seen else {
                return Err(Failure::could_not_run(Diagnostic::error(
                    "redis.unreachable",
                    "",
                    format!("no node of the cluster `{}` answers `CLUSTER NODES`", record.name),
                )));
            };
            for m in masters {
                let at = crate::backend::node_at(record, m.hostname.as_deref().unwrap_or(&m.host), m.port);
                if let Some((node, ep)) = at.and_then(|n| data.iter().find(|(d, _)| d.name == n.name)) {
                    out.push((*node, Node::connect(ep).await.map_err(unreachable)?));
                }
            }
        }
        Mode::Standalone | Mode::Replication => {
            for (node, ep) in &data {
                let Ok(conn) = Node::connect(ep).await else { continue };
                if conn.info("replication").await.is_ok_and(|i| i.get("role") == Some("master")) {
                    out.push((*node, conn));
                }
            }
            if out.is_empty() {
                return Err(Failure::could_not_run(Diagnostic::error(
                    "redis.no-master",
                    "",
                    format!("no node of `{}` answers as a master", record.name),
                )));
            }
        }
    }
    Ok(out)
}

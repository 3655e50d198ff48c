//! `tenant stats`: a tenant's keys (a paced `SCAN MATCH` over every
//! master), their memory (`MEMORY USAGE` of up to 1,000 of them, scaled up
//! to the key count when there are more), and its connections (`CLIENT
//! LIST` of every data node), beside its quotas. Redis keeps no per-user
//! command counts, so ops/s is left to the tenant gateway.

use super::scan::{Pace, Scanner};
use super::{Quotas, check_id, find, info, match_pattern, open};
use crate::client::{ClientError, Node};
use crate::exit::Failure;
use crate::ops::connect::{data_endpoints, masters, unreachable};
use redis::Value;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Keys whose `MEMORY USAGE` is asked at most.
const SAMPLE: usize = 1000;

/// A tenant's usage.
#[derive(Debug, Clone, Serialize)]
pub struct TenantStats {
    pub deployment: String,
    pub tenant: String,
    pub user: String,
    pub prefix: String,
    pub keys: u64,
    pub memory_bytes: u64,
    /// When `memory_bytes` is scaled up from a sample: how many keys were measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_sampled_keys: Option<u64>,
    /// Its clients' connections on every data node.
    pub connections: u64,
    /// Not measurable in Redis (no per-user command counts).
    pub ops_per_second: Option<f64>,
    pub quotas: Quotas,
    pub nodes: Vec<NodeUsage>,
}

/// One data node's share.
#[derive(Debug, Clone, Serialize)]
pub struct NodeUsage {
    pub node: String,
    /// The tenant's keys, on masters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
    pub connections: u64,
}

/// Measures tenant `id` of `deployment`.
pub async fn stats(home: &Path, deployment: &str, id: &str) -> Result<TenantStats, Failure> {
    check_id(id)?;
    let deployment = &super::holder(home, deployment, id)?;
    let opened = open(home, deployment)?;
    let config = &opened.resolved.config;
    let tenant = info(config, &opened.record, find(config, deployment, id)?);
    let pattern = match_pattern(&tenant.prefix);
    let pace = Pace::gentle(config.tenancy.removal_batch_size);
    let found = masters(&opened.record).await?;
    let per_master = SAMPLE / found.len().max(1);
    let mut keys_on = Vec::new();
    let mut all = Measured::default();
    for (node, conn) in &found {
        let m = measure_paced(conn, pattern.clone(), per_master, pace).await.map_err(unreachable)?;
        keys_on.push((node.name.clone(), m.keys));
        all.keys += m.keys;
        all.measured += m.measured;
        all.sampled += m.sampled;
    }
    let memory_bytes = all.bytes();
    let memory_sampled_keys = (all.sampled < all.keys && all.sampled > 0).then_some(all.sampled);
    let keys = all.keys;
    let mut nodes = Vec::new();
    for (n, ep) in data_endpoints(&opened.record) {
        let conn = Node::connect(&ep).await.map_err(unreachable)?;
        let list: String = conn.query(&["CLIENT", "LIST"]).await.map_err(unreachable)?;
        nodes.push(NodeUsage {
            node: n.name.clone(),
            keys: keys_on.iter().find(|(m, _)| *m == n.name).map(|(_, k)| *k),
            connections: clients_of(&list, &tenant.user),
        });
    }
    Ok(TenantStats {
        deployment: deployment.to_owned(),
        tenant: tenant.id,
        prefix: tenant.prefix,
        keys,
        memory_bytes,
        memory_sampled_keys,
        connections: nodes.iter().map(|n| n.connections).sum(),
        ops_per_second: None,
        quotas: tenant.quotas,
        nodes,
        user: tenant.user,
    })
}

/// A tenant's keys on one node, and the memory of a sample of them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measured {
    pub keys: u64,
    /// `MEMORY USAGE` summed over the sample.
    pub measured: u64,
    pub sampled: u64,
}

impl Measured {
    /// The memory of all the keys: the sample's, scaled up to the key count.
    pub fn bytes(&self) -> u64 {
        if self.sampled < self.keys && self.sampled > 0 {
            (self.measured as f64 / self.sampled as f64 * self.keys as f64).round() as u64
        } else {
            self.measured
        }
    }
}

/// Counts the keys matching `pattern` on `node` (a gently paced `SCAN`)
/// and measures up to `sample` of them.
pub async fn measure(node: &Node, pattern: String, sample: usize) -> Result<Measured, ClientError> {
    measure_paced(node, pattern, sample, Pace::gentle(500)).await
}

async fn measure_paced(node: &Node, pattern: String, sample: usize, pace: Pace) -> Result<Measured, ClientError> {
    let mut scan = Scanner::new(node, pattern, pace);
    let (mut n, mut picked) = (0u64, Vec::new());
    while let Some(batch) = scan.next().await? {
        n += batch.len() as u64;
        let room = sample.saturating_sub(picked.len());
        picked.extend(batch.into_iter().take(room));
    }
    let measured = memory(node, &picked).await?;
    Ok(Measured { keys: n, measured, sampled: picked.len() as u64 })
}

/// The sum of `MEMORY USAGE` of `keys` (pipelined; a key gone since is 0).
async fn memory(node: &Node, keys: &[Vec<u8>]) -> Result<u64, ClientError> {
    let mut total = 0;
    for chunk in keys.chunks(200) {
        let commands: Vec<Vec<Vec<u8>>> =
            chunk.iter().map(|k| vec![b"MEMORY".to_vec(), b"USAGE".to_vec(), k.clone()]).collect();
        for reply in node.pipeline(&commands, Duration::from_secs(10)).await? {
            if let Value::Int(n) = reply {
                total += n.max(0) as u64;
            }
        }
    }
    Ok(total)
}

/// How many clients in a `CLIENT LIST` reply are `user`'s.
fn clients_of(list: &str, user: &str) -> u64 {
    let field = format!("user={user}");
    list.lines().filter(|l| l.split_whitespace().any(|f| f == field)).count() as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn clients_are_counted_by_their_exact_user() {
        let list = "id=3 addr=127.0.0.1:1 user=tenant-a cmd=get\nid=4 addr=127.0.0.1:2 user=tenant-ab cmd=get\n\
                    id=5 addr=127.0.0.1:3 user=tenant-a cmd=client|list\n";
        assert_eq!(super::clients_of(list, "tenant-a"), 2);
        assert_eq!(super::clients_of(list, "tenant-b"), 0);
    }
}

//! The project network's addresses, pinned: a /24 subnet of its own, a
//! fixed address per service, and every node's and sentinel's service name
//! in every container's `/etc/hosts`.
//!
//! Why: the engines' DNS forgets a container's name the moment it stops.
//! When the master's container is killed, Sentinel 7.0 (with
//! `resolve-hostnames yes`, which naming nodes by service needs) then keeps
//! logging `Failed to resolve hostname` and — intermittently, under load —
//! never fails over (seen in 2 of 6 CI runs here; the same is reported for
//! Docker in redis/redis#11241 and #12753). With the names in `/etc/hosts`
//! and the addresses fixed, a stopped node's name still resolves, to an
//! address nobody answers on, which is what Sentinel's down detection
//! expects; a restarted container gets its old address back.

use super::engine::{Engine, SHORT};
use crate::backend::BackendError;
use crate::registry::Record;
use serde_json::{Value, json};
use std::net::Ipv4Addr;

/// The /24 subnets tried: `172.30.N.0/24`.
const POOL: [u8; 2] = [172, 30];

/// The project's subnet: the one the override already names (kept across
/// rewrites: the containers keep their addresses), or the first `/24` of
/// the pool no network of the engine overlaps, starting at a slot derived
/// from the project's name (so concurrent deploys rarely try the same).
pub fn subnet(engine: &Engine, record: &Record, existing: Option<&Value>) -> Result<[u8; 3], BackendError> {
    if let Some(s) = existing.and_then(|o| o.pointer("/networks/default/ipam/config/0/subnet")).and_then(Value::as_str)
        && let Some(prefix) = parse_24(s)
    {
        return Ok(prefix);
    }
    let taken = taken_subnets(engine)?;
    let start = record.name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) as usize;
    (0..256)
        .map(|i| [POOL[0], POOL[1], ((start + i) % 256) as u8])
        .find(|p| !taken.iter().any(|t| overlaps(*t, *p)))
        .ok_or_else(|| BackendError::Engine {
            command: format!("{} network ls", engine.cli),
            message: format!(
                "every /24 of {}.{}.0.0/16 is taken by another network; remove unused ones (`{} network prune`)",
                POOL[0], POOL[1], engine.cli
            ),
        })
}

/// A service's fixed address, from its name: data node `<d>-<i>` gets
/// `.10+i`, sentinel `<d>-sentinel-<i>` gets `.170+i`, any other service
/// (cluster-init, exporters) `.200+j` by its place among them.
pub fn address(deployment: &str, service: &str, others: &[String]) -> Option<u8> {
    let rest = service.strip_prefix(deployment)?.strip_prefix('-')?;
    let ordinal = |s: &str| s.parse::<u8>().ok();
    if let Some(i) = rest.strip_prefix("sentinel-").and_then(ordinal) {
        return (i < 30).then(|| 170 + i);
    }
    if let Some(i) = ordinal(rest) {
        return (i < 160).then(|| 10 + i);
    }
    let j = others.iter().position(|o| o == service)?;
    u8::try_from(j).ok().filter(|j| *j < 50).map(|j| 200 + j)
}

/// The override's network part: the subnet, each service's address, and the
/// name → address lines every container gets.
pub fn pin(
    record: &Record,
    prefix: [u8; 3],
    services: &[String],
    each: &mut serde_json::Map<String, Value>,
) -> Result<Value, BackendError> {
    let others: Vec<String> = services.iter().filter(|s| !is_node(record, s)).cloned().collect();
    let ip = |last: u8| Ipv4Addr::new(prefix[0], prefix[1], prefix[2], last);
    let mut hosts = Vec::new();
    let mut addresses = Vec::new();
    for s in services {
        let last = address(&record.name, s, &others).ok_or_else(|| BackendError::Engine {
            command: "compose".into(),
            message: format!("service `{s}` gets no fixed address: at most 160 data nodes, 30 sentinels"),
        })?;
        addresses.push((s.clone(), ip(last)));
        if is_node(record, s) {
            hosts.push(format!("{s}:{}", ip(last)));
        }
    }
    for (s, addr) in addresses {
        let entry = each.entry(s).or_insert_with(|| json!({}));
        if let Some(o) = entry.as_object_mut() {
            o.insert("networks".into(), json!({ "default": { "ipv4_address": addr.to_string() } }));
            o.insert("extra_hosts".into(), json!(hosts));
        }
    }
    Ok(json!({
        "default": {
            "ipam": { "config": [ { "subnet": format!("{}/24", ip(0)), "gateway": ip(1).to_string() } ] }
        }
    }))
}

fn is_node(record: &Record, service: &str) -> bool {
    record.nodes.iter().any(|n| n.name == service)
}

/// `a.b.c.0/24` → `[a, b, c]`.
fn parse_24(s: &str) -> Option<[u8; 3]> {
    let (ip, bits) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    (bits == "24").then(|| {
        let o = ip.octets();
        [o[0], o[1], o[2]]
    })
}

/// Whether the network `(address, prefix length)` overlaps `p.0/24`.
fn overlaps((net, len): (Ipv4Addr, u8), p: [u8; 3]) -> bool {
    let ours = u32::from(Ipv4Addr::new(p[0], p[1], p[2], 0));
    let len = u32::from(len.min(32));
    let mask = |l: u32| if l == 0 { 0 } else { u32::MAX << (32 - l) };
    let common = mask(len.min(24));
    (u32::from(net) & common) == (ours & common)
}

/// Every IPv4 subnet of the engine's networks.
fn taken_subnets(engine: &Engine) -> Result<Vec<(Ipv4Addr, u8)>, BackendError> {
    let names = engine.cli_ok(&["network", "ls", "--format", "{{.Name}}"], SHORT)?;
    let names: Vec<&str> = names.lines().map(str::trim).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["network", "inspect"];
    args.extend(names);
    let text = engine.cli_ok(&args, SHORT)?;
    let doc: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let mut out = Vec::new();
    collect(&doc, &mut out);
    Ok(out)
}

/// Values of keys named `subnet` (podman) or `Subnet` (Docker), anywhere.
fn collect(v: &Value, out: &mut Vec<(Ipv4Addr, u8)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k.eq_ignore_ascii_case("subnet")
                    && let Some((ip, len)) = v.as_str().and_then(|s| s.split_once('/'))
                    && let (Ok(ip), Ok(len)) = (ip.parse::<Ipv4Addr>(), len.parse::<u8>())
                {
                    out.push((ip, len));
                }
                collect(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_service_names() {
        let others = vec!["shop-cluster-init".to_owned(), "shop-0-exporter".to_owned()];
        assert_eq!(address("shop", "shop-0", &others), Some(10));
        assert_eq!(address("shop", "shop-12", &others), Some(22));
        assert_eq!(address("shop", "shop-sentinel-2", &others), Some(172));
        assert_eq!(address("shop", "shop-cluster-init", &others), Some(200));
        assert_eq!(address("shop", "shop-0-exporter", &others), Some(201));
        assert_eq!(address("shop", "other-0", &others), None);
    }

    #[test]
    fn overlapping_networks_are_found() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().expect("ip");
        assert!(overlaps((ip("172.30.5.0"), 24), [172, 30, 5]));
        assert!(!overlaps((ip("172.30.6.0"), 24), [172, 30, 5]));
        assert!(overlaps((ip("172.16.0.0"), 12), [172, 30, 5]), "a /12 holds it");
        assert!(overlaps((ip("172.30.5.128"), 25), [172, 30, 5]), "a /25 inside it");
        assert!(!overlaps((ip("10.89.0.0"), 24), [172, 30, 5]));
        assert_eq!(parse_24("172.30.7.0/24"), Some([172, 30, 7]));
        assert_eq!(parse_24("172.30.7.0/16"), None);
    }
}

//! Built-in generator: one `redis.conf` per data node of the topology.
//!
//! Logic is plain functions over the input document; the adapter is the
//! `export_generator!` line at the bottom.

use redplate_plugin_sdk::{Artifact, Diagnostic, Generator, Host, Output, PluginInfo, parse_input};
use serde::Deserialize;
use serde_json::{Value, json};

const NAME: &str = "redis-conf";

/// The template the user may override with `--templates DIR/redis.conf.hbs`.
const REDIS_CONF: &str = include_str!("redis.conf.hbs");

#[derive(Deserialize)]
struct Input {
    #[serde(default)]
    config: Value,
    topology: Topology,
}

#[derive(Deserialize)]
struct Topology {
    nodes: Vec<Node>,
}

#[derive(Deserialize, serde::Serialize)]
struct Node {
    name: String,
    role: String,
    #[serde(default)]
    host: Option<String>,
    port: u16,
    #[serde(default)]
    data_dir: Option<String>,
}

pub struct RedisConf;

impl Generator for RedisConf {
    fn info() -> PluginInfo {
        PluginInfo::generator(
            NAME,
            env!("CARGO_PKG_VERSION"),
            "redis.conf for every data node",
            &["redis/*/redis.conf"],
        )
    }

    fn validate(input_json: &str) -> Vec<Diagnostic> {
        match parse_input::<Input>(NAME, input_json) {
            Err(ds) => ds,
            Ok(input) if !input.topology.nodes.iter().any(is_data_node) => vec![
                Diagnostic::error(
                    "redis-conf.no-data-nodes",
                    "/topology/nodes",
                    "the topology has no master or replica",
                )
                .with_hint("set `deployment.mode` to a mode with at least one Redis node"),
            ],
            Ok(_) => Vec::new(),
        }
    }

    fn generate(input_json: &str, host: &dyn Host) -> Result<Output, Vec<Diagnostic>> {
        let input: Input = parse_input(NAME, input_json)?;
        let mut artifacts = Vec::new();
        for node in input.topology.nodes.iter().filter(|n| is_data_node(n)) {
            let data = json!({ "node": node, "config": input.config });
            let text = host
                .render("redis.conf", REDIS_CONF, &data.to_string())
                .map_err(|e| vec![Diagnostic::error("redis-conf.render", "", e)])?;
            artifacts.push(Artifact::text(format!("redis/{}/redis.conf", node.name), text));
        }
        Ok(Output::new(artifacts))
    }
}

fn is_data_node(node: &Node) -> bool {
    matches!(node.role.as_str(), "master" | "replica")
}

redplate_plugin_sdk::export_generator!(RedisConf);

#[cfg(test)]
mod tests {
    use super::*;
    use redplate_plugin_sdk::NativeHost;

    #[test]
    fn renders_one_file_per_data_node() {
        let input = json!({
            "config": {},
            "topology": {"nodes": [
                {"name": "redis-0", "role": "master", "port": 7000},
                {"name": "redis-1", "role": "replica", "port": 7001},
                {"name": "sentinel-0", "role": "sentinel", "port": 27000}
            ]}
        });
        let out = RedisConf::generate(&input.to_string(), &NativeHost::default()).expect("renders");
        let paths: Vec<_> = out.artifacts.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["redis/redis-0/redis.conf", "redis/redis-1/redis.conf"]);
        let conf = String::from_utf8_lossy(&out.artifacts[1].content);
        assert!(conf.contains("port 7001\n"), "{conf}");
    }

    #[test]
    fn a_topology_without_data_nodes_is_refused() {
        let input = json!({"topology": {"nodes": [{"name": "s", "role": "sentinel", "port": 1}]}});
        let ds = RedisConf::validate(&input.to_string());
        assert_eq!(ds[0].code, "redis-conf.no-data-nodes");
    }

    #[test]
    fn malformed_input_is_a_diagnostic() {
        let ds = RedisConf::validate("{not json");
        assert_eq!(ds[0].code, "redis-conf.bad-input");
    }
}

//! Built-in cache strategy: write-through. (Skeleton; being filled in.)

use redplate_plugin_sdk::{CacheStrategy, Decision, Diagnostic, Host, Plan, PluginInfo, WriteMode};

const NAME: &str = "write-through";

pub struct Strategy;

impl CacheStrategy for Strategy {
    fn info() -> PluginInfo {
        PluginInfo::cache_strategy(NAME, env!("CARGO_PKG_VERSION"), "write-through", &[NAME])
    }

    fn plan(_input_json: &str, _host: &dyn Host) -> Result<Plan, Vec<Diagnostic>> {
        Ok(Plan::default())
    }

    fn decide(_key: &str, _tenant: Option<&str>, base_ttl_ms: u64, _seed: u64) -> Decision {
        Decision { ttl_ms: Some(base_ttl_ms), sliding: false, refresh_below_ms: None, write_mode: WriteMode::Invalidate }
    }
}

redplate_plugin_sdk::export_cache_strategy!(Strategy);

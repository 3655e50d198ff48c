//! Built-in generator: kubernetes artifacts. (Skeleton; being filled in.)

use redplate_plugin_sdk::{Diagnostic, Generator, Host, Output, PluginInfo};

const NAME: &str = "kubernetes";

pub struct Plugin;

impl Generator for Plugin {
    fn info() -> PluginInfo {
        PluginInfo::generator(NAME, env!("CARGO_PKG_VERSION"), "kubernetes artifacts", &[])
    }

    fn generate(_input_json: &str, _host: &dyn Host) -> Result<Output, Vec<Diagnostic>> {
        Ok(Output::default())
    }
}

redplate_plugin_sdk::export_generator!(Plugin);

//! Built-in generator: compose artifacts. (Skeleton; being filled in.)

use redplate_plugin_sdk::{Diagnostic, Generator, Host, Output, PluginInfo};

const NAME: &str = "compose";

pub struct Plugin;

impl Generator for Plugin {
    fn info() -> PluginInfo {
        PluginInfo::generator(NAME, env!("CARGO_PKG_VERSION"), "compose artifacts", &[])
    }

    fn generate(_input_json: &str, _host: &dyn Host) -> Result<Output, Vec<Diagnostic>> {
        Ok(Output::default())
    }
}

redplate_plugin_sdk::export_generator!(Plugin);

//! Which world a component implements and which contract version it was
//! built against, read from its export names before any of its code runs.

use super::{PluginError, PluginKind};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The contract version this host speaks (the WIT package version).
pub const HOST_CONTRACT: &str = "0.1.0";

const PACKAGE: &str = "redplate:plugin/";

/// What a component's type says about it.
pub(super) struct Contract {
    pub kind: PluginKind,
    pub version: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Reads the world and contract version from the component's exports and
/// refuses an incompatible version by name.
pub(super) fn inspect(engine: &Engine, component: &Component, label: &str) -> Result<Contract, PluginError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(name, _)| name.to_owned()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    let found = exports.iter().find_map(|name| {
        let rest = name.strip_prefix(PACKAGE)?;
        let (iface, version) = rest.split_once('@')?;
        let kind = match iface {
            "generator-api" => PluginKind::Generator,
            "cache-strategy-api" => PluginKind::CacheStrategy,
            _ => return None,
        };
        Some((kind, version.to_owned()))
    });
    let Some((kind, version)) = found else {
        let listed = if exports.is_empty() {
            "nothing".to_owned()
        } else {
            exports.iter().map(|e| format!("`{e}`")).collect::<Vec<_>>().join(", ")
        };
        return Err(PluginError::NotAPlugin { plugin: label.to_owned(), exports: listed });
    };
    if !compatible(&version, HOST_CONTRACT) {
        return Err(PluginError::IncompatibleContract {
            plugin: label.to_owned(),
            targets: version,
            host: HOST_CONTRACT.to_owned(),
        });
    }
    Ok(Contract { kind, version, imports, exports })
}

/// Semver compatibility as Cargo reads it: same major; for 0.x, same minor.
pub fn compatible(plugin: &str, host: &str) -> bool {
    fn parse(v: &str) -> Option<(u64, u64)> {
        let core = v.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some((major, minor))
    }
    match (parse(plugin), parse(host)) {
        (Some((pm, pn)), Some((hm, hn))) => pm == hm && (pm > 0 || pn == hn),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_compatibility() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.0.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
        assert!(!compatible("garbage", "0.1.0"));
    }

    #[test]
    fn the_host_speaks_the_version_in_the_wit_file() {
        let wit = include_str!("../../../wit/plugin.wit");
        assert!(wit.contains(&format!("package redplate:plugin@{HOST_CONTRACT};")));
    }
}

//! Fuzzes the loader: any bytes, as YAML, JSON or TOML, over any preset, with
//! `--set` assignments taken from the input, then validation, topology,
//! export/import and adapt. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redplate_config::model::Environment;
use redplate_config::{Format, Target, Topology, adapt, export, import, load_str, validate};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let format = match selector % 3 {
        0 => Format::Yaml,
        1 => Format::Json,
        _ => Format::Toml,
    };
    let preset = match (selector / 3) % 4 {
        0 => None,
        1 => Some(Environment::Development),
        2 => Some(Environment::Staging),
        _ => Some(Environment::Production),
    };
    // Lines starting with `--set ` become assignments too.
    let sets: Vec<String> = text.lines().filter_map(|l| l.strip_prefix("--set ")).map(str::to_string).collect();
    let Ok(resolved) = load_str(text, format, "fuzz", preset, &sets) else { return };
    let _ = validate(&resolved);
    for target in [Target::Local, Target::Compose, Target::Kubernetes] {
        let _ = Topology::derive(&resolved.config, target);
    }
    let json = export(&resolved.config);
    match import(&json) {
        Ok(back) => assert_eq!(back, resolved.config, "import(export(c)) != c"),
        Err(e) => panic!("export produced JSON that import rejects: {e}\n{json}"),
    }
    if selector & 0x80 != 0 {
        let _ = adapt(&resolved, Environment::Production);
    }
});

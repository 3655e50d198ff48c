//! What the fuzz target (`config/fuzz/fuzz_targets/load.rs`) does with each
//! input, kept here so that `cargo test` replays its seeds through exactly
//! the same steps (`config/tests/fuzz_seeds.rs`). Not part of the API.

use crate::model::Environment;
use crate::{Format, Target, Topology, adapt, export, import, load_str, validate};

/// Any bytes: the first picks the format (YAML, JSON, TOML), the preset and
/// whether to adapt; the rest is the template, whose lines starting with
/// `--set ` are assignments too. Then validation, topology for every target,
/// export/import and adapt. Nothing may panic, and `import(export(c))` must
/// give `c` back (a panic says which). Returns whether the template loaded.
pub fn load_any(data: &[u8]) -> bool {
    let Some((&selector, rest)) = data.split_first() else { return false };
    let Ok(text) = std::str::from_utf8(rest) else { return false };
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
    let sets: Vec<String> = text.lines().filter_map(|l| l.strip_prefix("--set ")).map(str::to_string).collect();
    let Ok(resolved) = load_str(text, format, "fuzz", preset, &sets) else { return false };
    let _ = validate(&resolved);
    for target in [Target::Local, Target::Compose, Target::Kubernetes] {
        let _ = Topology::derive(&resolved.config, target);
    }
    let json = export(&resolved.config);
    match import(&json) {
        Ok(back) => assert!(back == resolved.config, "import(export(c)) != c\n{json}"),
        Err(e) => panic!("export produced JSON that import rejects: {e}\n{json}"),
    }
    if selector & 0x80 != 0 {
        let _ = adapt(&resolved, Environment::Production);
    }
    true
}

//! Fuzzes the loader: any bytes, as YAML, JSON or TOML, over any preset, with
//! `--set` assignments taken from the input, then validation, topology,
//! export/import and adapt. Nothing may panic. The steps live in
//! `redplate_config::fuzzing`, so `cargo test` replays `seeds/` through the
//! same code (config/tests/fuzz_seeds.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    redplate_config::fuzzing::load_any(data);
});

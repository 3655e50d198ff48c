//! The fuzz target's seeds (`config/fuzz/seeds`), replayed by the test
//! command through the same steps the fuzz target runs
//! (`redplate_config::fuzzing::load_any`): none may panic.

use std::path::PathBuf;

#[test]
fn every_fuzz_seed_loads_without_a_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 10, "only {} seeds in {}", seeds.len(), dir.display());
    let mut panics = Vec::new();
    let mut loaded = 0;
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap_or_else(|e| panic!("cannot read {}: {e}", seed.display()));
        match std::panic::catch_unwind(|| redplate_config::fuzzing::load_any(&data)) {
            Ok(true) => loaded += 1,
            Ok(false) => {}
            Err(_) => panics.push(seed.display().to_string()),
        }
    }
    assert!(panics.is_empty(), "these seeds panic (see the messages above): {panics:?}");
    // Most seeds are templates that load: the replay gets past the parser to
    // validation, topology, export/import and adapt.
    assert!(loaded * 2 > seeds.len(), "only {loaded} of {} seeds loaded", seeds.len());
    eprintln!("{} fuzz seeds replayed, {loaded} loaded", seeds.len());
}

//! `redplate scale <deployment> --memory SIZE`: vertical scaling. The
//! template's memory size (`resources.memory`) becomes SIZE and `maxmemory`
//! follows the template's rule for it (a percentage stays a percentage of
//! the new size; an absolute limit keeps its share of the old size); the
//! render goes through the same rules as `validate`, the new limit must
//! stay above what every data node uses now, and the backend applies the
//! difference the gentlest way it can (`CONFIG SET maxmemory` +
//! `CONFIG REWRITE` on every data node: no restart). The stored template
//! and the record's `--set`s then carry it, so `apply`, restarts and later
//! renders keep it.

use super::deploy::{Context, failure, load_and_render};
use crate::backend;
use crate::client::Node;
use crate::exit::Failure;
use crate::ops;
use crate::ops::connect::{data_endpoints, unreachable};
use crate::registry::{DeployState, Registry};
use redplate_config::Diagnostic;
use redplate_config::units::{ByteSize, MemoryLimit};
use serde::Serialize;
use std::collections::BTreeMap;

/// What `scale --memory` did.
#[derive(Debug, Clone, Serialize)]
pub struct Resized {
    pub deployment: String,
    /// `resources.memory` before and after.
    pub memory_before: String,
    pub memory: String,
    /// `memory.maxmemory` as the template now says it (`80%`, `2gb`, `0`).
    pub maxmemory_setting: String,
    /// The limit in bytes on every data node (`None`: no limit).
    pub maxmemory: Option<u64>,
    /// Each data node's `used_memory` when checked.
    pub used_memory: BTreeMap<String, u64>,
    /// What the backend did, one line per action.
    pub actions: Vec<String>,
}

fn invalid(code: &'static str, pointer: &str, message: String, hint: String) -> Failure {
    Failure::invalid(vec![Diagnostic::error(code, pointer, message).with_hint(hint)])
}

/// The `--set`s that give a template whose memory size was `old` and
/// limit `limit` the size `new`.
fn memory_sets(old: ByteSize, limit: MemoryLimit, new: ByteSize) -> Vec<String> {
    let mut sets = vec![format!("resources.memory={new}")];
    if let MemoryLimit::Size(s) = limit {
        // Keeps its share of the old size (no share without an old size: the new size whole).
        let scaled = match old.0 {
            0 => new.0,
            o => u64::try_from(u128::from(s.0) * u128::from(new.0) / u128::from(o)).unwrap_or(u64::MAX),
        };
        sets.push(format!("memory.maxmemory={}", ByteSize(scaled.max(1))));
    }
    sets
}

/// Gives every data node of deployment `name` the memory size `size` (see the module comment).
pub fn scale_memory(ctx: &Context, name: &str, size: &str) -> Result<Resized, Failure> {
    let new = ByteSize::parse(size)
        .map_err(|e| invalid("scale.memory", "/resources/memory", e, "give a size such as `512mb` or `2gb`".into()))?;
    if new.0 == 0 {
        return Err(invalid(
            "scale.memory",
            "/resources/memory",
            "a memory size of 0 leaves the nodes nothing".into(),
            "give a size such as `512mb` or `2gb`".into(),
        ));
    }
    let registry = Registry::new(&ctx.home);
    let _lock = registry.lock(name).map_err(failure)?;
    let mut record = registry.load(name).map_err(failure)?;
    if record.state != DeployState::Running {
        return Err(invalid(
            "scale.not-running",
            "",
            format!("`{name}` is {}", record.state),
            format!("run `redplate start {name}` first"),
        ));
    }
    let backend = backend::of(&record).map_err(failure)?;
    let before = ops::stored::load(&record)?.config;
    let added = memory_sets(before.resources.memory, before.memory.maxmemory, new);
    let replaced = |s: &String| s.starts_with("resources.memory=") || s.starts_with("memory.maxmemory=");
    let mut sets: Vec<String> = record.sets.iter().filter(|s| !replaced(s)).cloned().collect();
    sets.extend(added);
    ctx.progress.step(&format!("rendering `{name}` with {new} of memory per node"));
    let stored = ops::stored::path(&record);
    let (resolved, artifacts) = load_and_render(ctx, backend.target(), &stored, None, &sets)?;
    let c = &resolved.config;
    let limit = c.memory.maxmemory.resolve(c.resources.memory);

    ctx.progress.step("checking what every data node uses now");
    let runtime = crate::client::runtime().map_err(|e| {
        Failure::could_not_run(Diagnostic::error("runtime.start", "", format!("cannot start the async runtime: {e}")))
    })?;
    let used = runtime.block_on(used_memory(&record))?;
    drop(runtime);
    if let Some(max) = limit
        && let Some((node, bytes)) = used.iter().filter(|(_, u)| **u >= max).max_by_key(|(_, u)| **u)
    {
        return Err(invalid(
            "scale.memory-below-use",
            "/resources/memory",
            format!(
                "`maxmemory` would be {} ({} of {new}), but `{node}` uses {} now (`used_memory`); \
                 Redis would start evicting or refusing writes at once",
                ByteSize(max),
                c.memory.maxmemory,
                ByteSize(*bytes)
            ),
            format!(
                "give at least a size whose `maxmemory` is above {} bytes, or delete keys first \
                 (`redplate stats {name}` shows the use)",
                bytes
            ),
        ));
    }
    let result = backend.update(&mut record, &artifacts, ctx.progress);
    if result.is_ok() {
        ops::stored::save(&record, c)?;
        record.sets = sets;
    }
    registry.save(&record).map_err(failure)?;
    let actions = result.map_err(failure)?;
    Ok(Resized {
        deployment: name.to_owned(),
        memory_before: before.resources.memory.to_string(),
        memory: c.resources.memory.to_string(),
        maxmemory_setting: c.memory.maxmemory.to_string(),
        maxmemory: limit,
        used_memory: used,
        actions,
    })
}

/// `used_memory` of every data node, by name.
async fn used_memory(record: &crate::registry::Record) -> Result<BTreeMap<String, u64>, Failure> {
    let mut out = BTreeMap::new();
    for (n, ep) in data_endpoints(record) {
        let node = Node::connect(&ep).await.map_err(unreachable)?;
        let info = node.info("memory").await.map_err(unreachable)?;
        out.insert(n.name.clone(), info.uint("used_memory").unwrap_or(0));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_percentage_follows_the_size_and_an_absolute_limit_keeps_its_share() {
        let gib = ByteSize::gib(1);
        assert_eq!(memory_sets(gib, MemoryLimit::Percent(80), ByteSize::gib(2)), ["resources.memory=2gb"]);
        assert_eq!(
            memory_sets(gib, MemoryLimit::Size(ByteSize::mib(512)), ByteSize::gib(2)),
            ["resources.memory=2gb", "memory.maxmemory=1gb"]
        );
        assert_eq!(memory_sets(gib, MemoryLimit::Unlimited, ByteSize::mib(256)), ["resources.memory=256mb"]);
    }
}

//! The on-disk cache of compiled plugin code.
//!
//! Entries are keyed by the component's sha256 and a hash of the engine's
//! compilation settings, so a different wasmtime or configuration never
//! reads another's code. An entry is two files: `<key>.cwasm`, wasmtime's
//! own serialization, which is memory-mapped rather than read and copied
//! (copying it twice was three quarters of a render's page faults), and
//! `<key>.cwasm.check`: the component's sha256 and the payload's length
//! and BLAKE3 hash. Deserializing compiled code trusts it to be what this
//! host wrote, so the hash is checked on the mapped bytes before wasmtime
//! sees them: a corrupt or foreign entry is recompiled and replaced, never
//! loaded and never a crash. Writes are atomic (temp file + rename), the
//! payload before its check file.

use super::PluginError;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8; 8] = b"RPCWASM4";
/// The check file: magic, the component's sha256, the payload's length
/// (u64, little-endian) and BLAKE3 hash.
const CHECK_LEN: usize = MAGIC.len() + 32 + 8 + 32;

/// The check file beside an entry.
fn check_path(entry: &Path) -> PathBuf {
    let mut name = entry.as_os_str().to_owned();
    name.push(".check");
    PathBuf::from(name)
}

/// What the cache did for one load.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "kebab-case")]
pub enum CacheOutcome {
    /// The cache is turned off: compiled in memory.
    Disabled,
    /// Loaded compiled code from the cache.
    Hit,
    /// Not cached yet: compiled and stored.
    Miss,
    /// The entry was unusable (the reason says why): recompiled and replaced.
    Recovered(String),
    /// Compiled, but the entry could not be written (the reason says why).
    StoreFailed(String),
}

/// The compiled-code cache; `dir: None` disables it.
pub(super) struct CodeCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl CodeCache {
    pub(super) fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        CodeCache { dir, engine_key: format!("{:016x}", h.finish()) }
    }

    /// Where the entry for a component with this sha256 lives.
    pub(super) fn entry_path(&self, sha256: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{sha256}-{}.cwasm", self.engine_key)))
    }

    /// Loads compiled code for `wasm` from the cache, or compiles it.
    pub(super) fn load(
        &self,
        engine: &Engine,
        label: &str,
        wasm: &[u8],
        sha256: &str,
    ) -> Result<(Component, CacheOutcome), PluginError> {
        let Some(path) = self.entry_path(sha256) else {
            return Ok((compile(engine, label, wasm)?, CacheOutcome::Disabled));
        };
        let recovered = match read_entry(engine, &path, sha256) {
            Ok(Some(component)) => return Ok((component, CacheOutcome::Hit)),
            Ok(None) => None,
            Err(reason) => Some(reason),
        };
        let component = compile(engine, label, wasm)?;
        let outcome = match store_entry(&component, &path, sha256) {
            Err(e) => CacheOutcome::StoreFailed(format!("{}: {e}", path.display())),
            Ok(()) => match recovered {
                Some(reason) => CacheOutcome::Recovered(reason),
                None => CacheOutcome::Miss,
            },
        };
        Ok((component, outcome))
    }
}

/// `Ok(None)`: no entry. `Err`: an entry that must not be used.
fn read_entry(engine: &Engine, path: &Path, sha256: &str) -> Result<Option<Component>, String> {
    let check = match std::fs::read(check_path(path)) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !path.exists() => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("the cache entry has no redplate header (check file)".into());
        }
        Err(e) => return Err(format!("unreadable cache entry: {e}")),
    };
    if check.len() != CHECK_LEN || &check[..MAGIC.len()] != MAGIC {
        return Err("the cache entry has no redplate header (check file)".into());
    }
    let (component_sha, rest) = check[MAGIC.len()..].split_at(32);
    if hex::encode(component_sha) != sha256 {
        return Err("the cache entry belongs to another component".into());
    }
    let (length, checksum) = rest.split_at(8);
    let length = u64::from_le_bytes(length.try_into().map_err(|_| "the cache entry has no redplate header")?);
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("the cache entry has a check file but no compiled code beside it".into());
        }
        Err(e) => return Err(format!("unreadable cache entry: {e}")),
    };
    let size = file.metadata().map_err(|e| format!("unreadable cache entry: {e}"))?.len();
    if size != length || size == 0 {
        return Err(format!("the cache entry is {size} bytes long, its check file says {length} (truncated or torn)"));
    }
    // SAFETY: the mapping is read-only and the file is never written in
    // place: entries are only ever replaced whole, by rename, so the bytes
    // mapped here do not change under us.
    #[allow(unsafe_code)]
    let mapped = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| format!("unreadable cache entry: {e}"))?;
    if blake3::hash(&mapped).as_bytes().as_slice() != checksum {
        return Err("the cache entry's checksum does not match its content".into());
    }
    drop(mapped);
    // SAFETY: `Component::deserialize_file` trusts the file to be code this
    // engine configuration produced. Its length and BLAKE3 hash are what
    // `store_entry` recorded for this component, under a key that includes
    // the engine's compatibility hash; wasmtime also checks its own header.
    // The path is only ever replaced (atomically) by an entry for the same key.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize_file(engine, path) };
    component.map(Some).map_err(|e| format!("the cache entry does not load: {e}"))
}

fn store_entry(component: &Component, path: &Path, sha256: &str) -> std::io::Result<()> {
    let component_sha = hex::decode(sha256).map_err(std::io::Error::other)?;
    let payload = component.serialize().map_err(|e| std::io::Error::other(e.to_string()))?;
    let dir = path.parent().ok_or_else(|| std::io::Error::other("cache entry has no folder"))?;
    create_private_dir(dir)?;
    let write = |target: &Path, parts: &[&[u8]]| -> std::io::Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        for part in parts {
            tmp.write_all(part)?;
        }
        // No fsync: a torn entry after a power cut fails its length or hash
        // check and is recompiled, so durability would only cost time.
        tmp.persist(target).map_err(|e| e.error)?;
        Ok(())
    };
    write(path, &[&payload])?;
    let length = (payload.len() as u64).to_le_bytes();
    write(&check_path(path), &[MAGIC, &component_sha, &length, blake3::hash(&payload).as_bytes()])
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Compiles after telling apart the common kinds of wrong file.
pub(super) fn compile(engine: &Engine, label: &str, wasm: &[u8]) -> Result<Component, PluginError> {
    const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(PluginError::NotWasm { plugin: label.to_owned() });
    }
    if wasm[4..8] == CORE_VERSION {
        return Err(PluginError::CoreModule { plugin: label.to_owned() });
    }
    Component::new(engine, wasm)
        .map_err(|e| PluginError::Invalid { plugin: label.to_owned(), reason: format!("{e:#}") })
}

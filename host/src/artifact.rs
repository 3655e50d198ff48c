//! Artifacts and the artifact set: every path checked (relative, `/`
//! separated, no `.`/`..`/empty components, unique), sizes capped, and
//! written to a folder atomically — a failed write leaves the folder as it
//! was. Knows nothing of wasm: plugins' output is checked here after the
//! runtime has turned it into these types.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// A safe relative path (see [`check_path`]).
    pub path: String,
    /// The bytes.
    pub content: Vec<u8>,
    /// The media type, e.g. `text/plain`.
    pub media_type: String,
    /// Written with the executable bit.
    pub executable: bool,
    /// The plugin that produced it.
    pub plugin: String,
}

/// Why a path is not safe to write.
pub fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.len() > 1024 {
        return Err("the path is longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    if path.contains('\\') {
        return Err("backslashes are not allowed; use `/`");
    }
    if path.chars().any(|c| c.is_control()) {
        return Err("control characters (NUL, newline, …) are not allowed");
    }
    if path.len() >= 2 && path.as_bytes()[1] == b':' {
        return Err("drive letters are not allowed");
    }
    for component in path.split('/') {
        match component {
            "" => return Err("empty path components (`//` or a trailing `/`) are not allowed"),
            "." => return Err("`.` components are not allowed"),
            ".." => return Err("`..` components are not allowed"),
            _ => {}
        }
    }
    Ok(())
}

/// An artifact rejected by [`ArtifactSet::insert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejected {
    /// The path is not safe; the reason says why.
    UnsafePath(&'static str),
    /// The path was already taken (by the named plugin).
    Duplicate { first_plugin: String },
}

/// A set of artifacts with unique, safe paths, kept sorted by path.
#[derive(Debug, Default, Clone)]
pub struct ArtifactSet {
    artifacts: Vec<Artifact>,
    paths: BTreeSet<String>,
    total_bytes: usize,
}

impl ArtifactSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one artifact if its path is safe and new.
    pub fn insert(&mut self, artifact: Artifact) -> Result<(), Rejected> {
        check_path(&artifact.path).map_err(Rejected::UnsafePath)?;
        if !self.paths.insert(artifact.path.clone()) {
            let first_plugin =
                self.artifacts.iter().find(|a| a.path == artifact.path).map(|a| a.plugin.clone()).unwrap_or_default();
            return Err(Rejected::Duplicate { first_plugin });
        }
        self.total_bytes += artifact.content.len();
        let at = self.artifacts.partition_point(|a| a.path < artifact.path);
        self.artifacts.insert(at, artifact);
        Ok(())
    }

    /// The artifacts, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = &Artifact> {
        self.artifacts.iter()
    }

    /// How many artifacts.
    pub fn len(&self) -> usize {
        self.artifacts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.artifacts.is_empty()
    }

    /// The sum of all contents' sizes.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Writes every artifact under `dir` atomically: the files are written
    /// into a fresh folder beside `dir`, which then replaces `dir` by rename.
    /// If anything fails, `dir` is left exactly as it was.
    pub fn write_atomically(&self, dir: &Path) -> std::io::Result<()> {
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)?;
        let staging = tempfile::Builder::new().prefix(".redplate-staging-").tempdir_in(&parent)?;
        // Each folder is made once (not once per file): `--batch` writes
        // tens of thousands of files and spends most of its time in the kernel.
        let mut made: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
        for artifact in &self.artifacts {
            let path = staging.path().join(&artifact.path);
            if let Some(p) = path.parent()
                && !made.contains(p)
            {
                std::fs::create_dir_all(p)?;
                made.insert(p.to_path_buf());
            }
            // Atomicity comes from the final rename; rendered files can be
            // re-rendered, so they are not fsynced one by one (that made
            // `--batch` of 1,000 templates disk-bound).
            let mut file = create_with_mode(&path, artifact)?;
            file.write_all(&artifact.content)?;
        }
        // Swap: move the old folder aside, move the new one in, drop the old.
        let backup = if dir.exists() {
            let backup = tempfile::Builder::new().prefix(".redplate-previous-").tempdir_in(&parent)?.keep();
            std::fs::remove_dir(&backup)?;
            std::fs::rename(dir, &backup)?;
            Some(backup)
        } else {
            None
        };
        let staged = staging.keep();
        if let Err(e) = std::fs::rename(&staged, dir) {
            if let Some(backup) = &backup {
                let _ = std::fs::rename(backup, dir);
            }
            let _ = std::fs::remove_dir_all(&staged);
            return Err(e);
        }
        if let Some(backup) = backup {
            std::fs::remove_dir_all(backup)?;
        }
        Ok(())
    }
}

/// The file's mode: secrets (by name) 0600, scripts 0755, the rest 0644;
/// given at creation, so the umask can only narrow it.
fn mode(artifact: &Artifact) -> u32 {
    let secret = artifact.path.ends_with(".acl") || artifact.path.contains("secret") || artifact.path.ends_with(".key");
    match (artifact.executable, secret) {
        (true, _) => 0o755,
        (false, true) => 0o600,
        (false, false) => 0o644,
    }
}

#[cfg(unix)]
fn create_with_mode(path: &Path, artifact: &Artifact) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(mode(artifact)).open(path)
}

#[cfg(not(unix))]
fn create_with_mode(path: &Path, artifact: &Artifact) -> std::io::Result<std::fs::File> {
    let _ = mode(artifact);
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(path: &str) -> Artifact {
        Artifact {
            path: path.into(),
            content: b"x".to_vec(),
            media_type: "text/plain".into(),
            executable: false,
            plugin: "p".into(),
        }
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in
            ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "./a", "a/", "a\\b", "nul\0", "C:/x", "a\nb"]
        {
            assert!(check_path(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["redis.conf", "redis/node-0/redis.conf", "k8s/a.b.yaml", "..hidden", "a..b"] {
            assert_eq!(check_path(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn duplicates_name_the_first_plugin_and_order_is_by_path() {
        let mut set = ArtifactSet::new();
        set.insert(art("b")).expect("b");
        set.insert(art("a")).expect("a");
        assert_eq!(set.insert(art("a")), Err(Rejected::Duplicate { first_plugin: "p".into() }));
        assert_eq!(set.iter().map(|a| a.path.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(set.total_bytes(), 2);
    }

    #[test]
    fn writing_replaces_the_folder_whole() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(out.join("stale")).expect("mkdir");
        let mut set = ArtifactSet::new();
        set.insert(art("redis/a.conf")).expect("insert");
        set.write_atomically(&out).expect("write");
        assert!(out.join("redis/a.conf").exists());
        assert!(!out.join("stale").exists(), "the old content is replaced, not merged");
        let leftovers: Vec<_> =
            std::fs::read_dir(tmp.path()).expect("ls").filter_map(Result::ok).map(|e| e.file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from("out")], "no staging folders left behind");
    }
}

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
    /// Holds a secret (a password): written mode 0600, whatever its name.
    /// Set by the host, which knows the passwords, not by the plugin.
    pub secret: bool,
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

    /// Marks every artifact whose content contains one of `secrets` (empty
    /// strings ignored) as a secret, so it is written 0600: a password must
    /// not be readable by group or others in any file, whichever plugin
    /// wrote it and whatever the file is called.
    pub fn mark_secret_holders(&mut self, secrets: &[String]) {
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        for a in &mut self.artifacts {
            if !a.secret {
                let text = String::from_utf8_lossy(&a.content);
                a.secret = secrets.iter().any(|s| text.contains(s));
            }
        }
    }

    /// The sum of all contents' sizes.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Writes every artifact under `dir` atomically: the files are written
    /// into a fresh folder beside `dir`, which then replaces `dir` by rename.
    /// If anything fails, `dir` is left exactly as it was.
    ///
    /// Only a folder redplate wrote is replaced: `dir` must not exist, be
    /// empty, or hold a [`MARKER`] listing every file in it. Anything else
    /// (a user's folder, a user's file added to an output folder) is
    /// refused unless `replace_anything`; the folder the process runs in
    /// (or one above it) is refused always.
    pub fn write_atomically(&self, dir: &Path, replace_anything: bool) -> Result<(), OutputError> {
        check_replaceable(dir, replace_anything)?;
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
            let mut file = create_with_mode(&path, mode(artifact))?;
            file.write_all(&artifact.content)?;
        }
        let mut marker = create_with_mode(&staging.path().join(MARKER), 0o644)?;
        marker.write_all(self.marker().as_bytes())?;
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
            return Err(e.into());
        }
        if let Some(backup) = backup {
            std::fs::remove_dir_all(backup)?;
        }
        Ok(())
    }

    /// The [`MARKER`] file's text: what it is, then one written path a line
    /// (paths are checked: no line breaks). Deterministic, like the render.
    fn marker(&self) -> String {
        let mut text = String::from(
            "# Written by redplate. The next `redplate render --out` into this folder replaces it whole;\n\
             # it refuses to while the folder holds a file not listed here (yours are never deleted).\n",
        );
        for a in &self.artifacts {
            text.push_str(&a.path);
            text.push('\n');
        }
        text
    }
}

/// The file that marks a folder as written by redplate, listing its files.
pub const MARKER: &str = ".redplate-output";

/// Why an output folder was not written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The folder holds files and redplate did not write it.
    #[error("the folder is not empty and redplate did not write it (it has no `{MARKER}`)")]
    NotOurs,
    /// A folder redplate wrote now also holds files it did not write.
    #[error("the folder holds files redplate did not write: {}", quoted(.0))]
    ForeignFiles(Vec<String>),
    /// The folder is the one redplate runs in, or one above it.
    #[error("it is the current folder or one above it, which cannot be replaced")]
    CurrentFolder,
    /// The path is a file or a symbolic link, not a folder.
    #[error("it is not a folder (a file or a symbolic link is there)")]
    NotAFolder,
}

impl OutputError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            OutputError::Io(_) => None,
            OutputError::NotOurs | OutputError::ForeignFiles(_) => Some(
                "give a new or empty folder, move those files away, or pass `--replace` to replace the folder \
                 and everything in it",
            ),
            OutputError::CurrentFolder => Some(
                "redplate replaces its output folder whole (atomically): give it a folder of its own, e.g. `--out out/`",
            ),
            OutputError::NotAFolder => Some("give the path of a folder, or a path that does not exist yet"),
        }
    }
}

fn quoted(files: &[String]) -> String {
    let shown: Vec<String> = files.iter().take(5).map(|f| format!("`{}`", crate::text::clean(f, 256))).collect();
    match files.len() {
        n if n > 5 => format!("{} and {} more", shown.join(", "), n - 5),
        _ => shown.join(", "),
    }
}

/// Whether `dir` may be replaced whole (see [`ArtifactSet::write_atomically`]).
fn check_replaceable(dir: &Path, replace_anything: bool) -> Result<(), OutputError> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if !meta.is_dir() {
        return Err(OutputError::NotAFolder);
    }
    let canonical = std::fs::canonicalize(dir)?;
    if std::env::current_dir().is_ok_and(|cwd| cwd.starts_with(&canonical)) {
        return Err(OutputError::CurrentFolder);
    }
    if replace_anything || std::fs::read_dir(dir)?.next().is_none() {
        return Ok(());
    }
    let listed = match std::fs::read_to_string(dir.join(MARKER)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(OutputError::NotOurs),
        Err(e) => return Err(e.into()),
    };
    let listed: BTreeSet<&str> = listed.lines().filter(|l| !l.starts_with('#')).collect();
    let mut foreign = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            if rel != MARKER && !listed.contains(rel.as_str()) {
                foreign.push(rel);
            }
        }
    }
    if foreign.is_empty() {
        Ok(())
    } else {
        foreign.sort();
        Err(OutputError::ForeignFiles(foreign))
    }
}

/// The file's mode: secrets (marked, or by name) 0600 — 0700 for a script
/// holding one — other scripts 0755, the rest 0644; given at creation, so
/// the umask can only narrow it.
fn mode(artifact: &Artifact) -> u32 {
    let secret = artifact.secret
        || artifact.path.ends_with(".acl")
        || artifact.path.contains("secret")
        || artifact.path.ends_with(".key");
    match (artifact.executable, secret) {
        (true, true) => 0o700,
        (true, false) => 0o755,
        (false, true) => 0o600,
        (false, false) => 0o644,
    }
}

#[cfg(unix)]
fn create_with_mode(path: &Path, mode: u32) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path)
}

#[cfg(not(unix))]
fn create_with_mode(path: &Path, _mode: u32) -> std::io::Result<std::fs::File> {
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
            secret: false,
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

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("ls")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into())
            .collect();
        v.sort();
        v
    }

    fn set_of(paths: &[&str]) -> ArtifactSet {
        let mut set = ArtifactSet::new();
        for p in paths {
            set.insert(art(p)).expect("insert");
        }
        set
    }

    #[test]
    fn a_folder_redplate_wrote_is_replaced_whole_and_leaves_nothing_beside_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        set_of(&["redis/a.conf", "old.txt"]).write_atomically(&out, false).expect("first write");
        set_of(&["redis/a.conf"]).write_atomically(&out, false).expect("second write");
        assert!(out.join("redis/a.conf").exists());
        assert!(!out.join("old.txt").exists(), "what the last render wrote is replaced, not merged");
        let marker = std::fs::read_to_string(out.join(MARKER)).expect("marker");
        assert!(marker.lines().any(|l| l == "redis/a.conf") && !marker.contains("old.txt"), "{marker}");
        assert_eq!(names(tmp.path()), ["out"], "no staging folders left behind");
    }

    #[test]
    fn a_users_folder_is_refused_and_kept_unless_replace_is_asked_for() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("mine");
        std::fs::create_dir_all(&out).expect("mkdir");
        std::fs::write(out.join("mine.txt"), "keep").expect("write");
        let e = set_of(&["a"]).write_atomically(&out, false).expect_err("refused");
        assert!(matches!(e, OutputError::NotOurs), "{e}");
        assert_eq!(std::fs::read_to_string(out.join("mine.txt")).expect("kept"), "keep");
        assert_eq!(names(tmp.path()), ["mine"], "nothing staged is left behind");
        set_of(&["a"]).write_atomically(&out, true).expect("--replace");
        assert_eq!(names(&out), [MARKER, "a"]);
    }

    #[test]
    fn a_file_added_to_an_output_folder_is_never_deleted() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        set_of(&["redis/a.conf"]).write_atomically(&out, false).expect("first write");
        std::fs::write(out.join("redis/notes.md"), "mine").expect("write");
        let e = set_of(&["redis/a.conf"]).write_atomically(&out, false).expect_err("refused");
        match e {
            OutputError::ForeignFiles(files) => assert_eq!(files, ["redis/notes.md"]),
            other => panic!("wrong refusal: {other}"),
        }
        assert!(out.join("redis/notes.md").exists());
    }

    #[test]
    fn an_empty_folder_is_used_and_a_file_is_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("empty");
        std::fs::create_dir(&out).expect("mkdir");
        set_of(&["a"]).write_atomically(&out, false).expect("empty folder");
        assert!(out.join("a").exists());
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert!(matches!(set_of(&["a"]).write_atomically(&file, true), Err(OutputError::NotAFolder)));
        assert_eq!(std::fs::read_to_string(&file).expect("kept"), "x");
    }

    #[test]
    fn files_holding_a_secret_are_private_whatever_their_name() {
        let mut set = set_of(&["redis.conf", "compose.yaml"]);
        let mut holder = art("sentinel.conf");
        holder.content = b"sentinel auth-pass m s3cr3t-value".to_vec();
        set.insert(holder).expect("insert");
        set.mark_secret_holders(&["s3cr3t-value".into(), String::new()]);
        let modes: Vec<(&str, u32)> = set.iter().map(|a| (a.path.as_str(), mode(a))).collect();
        assert_eq!(modes, [("compose.yaml", 0o644), ("redis.conf", 0o644), ("sentinel.conf", 0o600)]);
    }
}

//! What redplate writes and prints can be trusted: it never deletes a file
//! it did not write, never loses output silently, never leaves a password
//! readable by group or others, runs every generator's `validate` before
//! rendering, and never lets a plugin's text drive the terminal. Drives the
//! real binary.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env { tmp: tempfile::Builder::new().prefix("redplate-safety-").tempdir().expect("tmp") }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Runs redplate in `cwd` with its own home and a shared code cache.
    fn run_in(&self, cwd: &Path, args: &[&str]) -> Output {
        let cache = std::env::temp_dir().join(format!("redplate-safety-cache-{}", std::process::id()));
        Command::new(env!("CARGO_BIN_EXE_redplate"))
            .args(args)
            .current_dir(cwd)
            .env("REDPLATE_CACHE_DIR", cache)
            .env("REDPLATE_HOME", self.path("home"))
            .output()
            .expect("redplate runs")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_in(&root(), args)
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").filter_map(Result::ok) {
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn dev_render(out: &str) -> Vec<&str> {
    vec!["render", "presets/development.yaml", "--target", "local", "--out", out]
}

#[test]
fn render_never_deletes_a_users_files_and_replace_is_explicit() {
    let env = Env::new();
    let out = env.path("o2");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("mine.txt"), "keep").expect("write");
    let o = env.run(&dev_render(out.to_str().expect("utf-8")));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("redplate did not write it") && stderr(&o).contains("--replace"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("mine.txt")).expect("kept"), "keep");

    // A folder redplate wrote is replaced on the next render…
    let ours = env.path("ours");
    let ours_s = ours.to_str().expect("utf-8");
    assert!(env.run(&dev_render(ours_s)).status.success());
    assert!(env.run(&dev_render(ours_s)).status.success(), "a second render into its own folder works");
    // …but not once a user's file is in it.
    std::fs::write(ours.join("notes.md"), "mine").expect("write");
    let o = env.run(&dev_render(ours_s));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("`notes.md`"), "the refusal names the file: {}", stderr(&o));
    assert!(ours.join("notes.md").exists());

    let mut args = dev_render(out.to_str().expect("utf-8"));
    args.push("--replace");
    let o = env.run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join("mine.txt").exists(), "--replace replaces the folder whole");
}

#[test]
fn render_into_the_current_folder_says_why_it_cannot() {
    let env = Env::new();
    let here = env.path("here");
    std::fs::create_dir_all(&here).expect("mkdir");
    std::fs::write(here.join("mine.txt"), "keep").expect("write");
    let template = root().join("presets/development.yaml");
    let args = ["render", template.to_str().expect("utf-8"), "--target", "local", "--out", ".", "--replace"];
    let o = env.run_in(&here, &args);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("current folder") && err.contains("--out out/"), "{err}");
    assert!(!err.contains("os error"), "a reason, not an errno: {err}");
    assert!(here.join("mine.txt").exists());
}

#[test]
fn batch_refuses_two_templates_with_one_output_folder_and_counts_only_what_it_wrote() {
    let env = Env::new();
    let tb = env.path("tb");
    std::fs::create_dir_all(&tb).expect("mkdir");
    let template = std::fs::read(root().join("examples/standalone-development.yaml")).expect("example");
    std::fs::write(tb.join("a.yaml"), &template).expect("a.yaml");
    std::fs::write(tb.join("a.json"), "{}").expect("a.json");
    std::fs::write(tb.join("b.yaml"), &template).expect("b.yaml");
    let out = env.path("ob");
    let o = env.run(&["render", tb.to_str().expect("utf-8"), "--batch", "--out", out.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("batch.same-output") && err.contains("a.json") && err.contains("a.yaml"), "{err}");
    assert!(!out.join("a").exists(), "neither colliding template is written");
    let written = all_files(&out.join("b")).into_iter().filter(|p| !p.ends_with(".redplate-output")).count();
    assert!(err.contains(&format!("rendered 1 of 3 templates ({written} files)")), "{err}");
}

/// Every preset × mode and every example, all targets: no password string
/// in any file that group or others can read.
#[test]
fn no_password_is_readable_by_group_or_others_in_any_render() {
    let env = Env::new();
    let cases = support::render_cases();
    let mut checked_files = 0;
    let mut secret_holders = 0;
    for (i, (template, sets)) in cases.iter().enumerate() {
        let out = env.path(&format!("out-{i}"));
        let mut args = vec!["render", template.as_str(), "--target", "all", "--out", out.to_str().expect("utf-8")];
        for s in sets {
            args.extend(["--set", s.as_str()]);
        }
        let o = env.run(&args);
        assert!(o.status.success(), "{template} {sets:?}: {}", stderr(&o));
        let files = all_files(&out);
        let passwords: Vec<Vec<u8>> = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "password"))
            .map(|p| std::fs::read(p).expect("read"))
            .filter(|p| p.len() >= 8)
            .collect();
        for file in &files {
            let content = std::fs::read(file).expect("read");
            let holds = passwords.iter().any(|p| content.windows(p.len()).any(|w| w == p.as_slice()));
            let mode = std::fs::metadata(file).expect("stat").permissions().mode();
            checked_files += 1;
            if holds {
                secret_holders += 1;
                assert_eq!(mode & 0o077, 0, "{template} {sets:?}: {} holds a password and is {mode:o}", file.display());
            }
        }
    }
    eprintln!("checked {checked_files} files of {} renders; {secret_holders} hold a password", cases.len());
    assert!(secret_holders > 0, "the check saw no password at all: it would pass vacuously");
}

fn hostile_plugin_dir(env: &Env) -> PathBuf {
    let dir = env.path("plugins");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let wasm = Path::new(env!("REDPLATE_WASM_DIR")).join("fixture_hostile_text.wasm");
    std::fs::copy(&wasm, dir.join("hostile.wasm")).expect("copy the fixture");
    dir
}

fn assert_no_control_characters(what: &str, text: &[u8]) {
    let text = String::from_utf8_lossy(text);
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| (c.is_control() && c != '\n' && c != '\t') || ('\u{202a}'..='\u{202e}').contains(&c))
        .collect();
    assert!(bad.is_empty(), "{what} let {bad:?} through:\n{text}");
}

#[test]
fn render_runs_every_generators_validate_first_and_writes_nothing_when_one_refuses() {
    let env = Env::new();
    let plugins = hostile_plugin_dir(&env);
    let out = env.path("refused");
    let args = [
        "render",
        "presets/development.yaml",
        "--set",
        "deployment.name=refuse-in-validate",
        "--plugin-dir",
        plugins.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ];
    let o = env.run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("refused"), "{}", stderr(&o));
    assert!(!out.exists(), "a refused render writes nothing");
    assert_no_control_characters("render's diagnostics", &o.stderr);
    // `validate` says the same with the same exit code.
    let v = env.run(&[
        "validate",
        "presets/development.yaml",
        "--set",
        "deployment.name=refuse-in-validate",
        "--plugin-dir",
        plugins.to_str().expect("utf-8"),
    ]);
    assert_eq!(v.status.code(), Some(1), "{}", stderr(&v));
    assert_no_control_characters("validate's diagnostics", &v.stderr);

    // A `validate` that never returns is stopped by the sandbox, not waited on.
    let looping = env.path("looping");
    let o = env.run(&[
        "render",
        "presets/development.yaml",
        "--set",
        "deployment.name=loop-in-validate",
        "--plugin-dir",
        plugins.to_str().expect("utf-8"),
        "--out",
        looping.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("plugin.fuel-exhausted") || err.contains("plugin.deadline-exceeded"), "{err}");
    assert!(!looping.exists());
}

#[test]
fn a_plugins_escape_sequences_never_reach_the_terminal() {
    let env = Env::new();
    let plugins = hostile_plugin_dir(&env);
    let out = env.path("accepted");
    let o = env.run(&[
        "render",
        "presets/development.yaml",
        "--plugin-dir",
        plugins.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("a warning") && err.contains("generated"), "the warnings are shown: {err}");
    assert!(err.contains("\\u{1b}[2J"), "escapes are shown escaped: {err}");
    assert_no_control_characters("render's warnings", &o.stderr);

    let input = env.path("input.json");
    std::fs::write(&input, r#"{"name":"x"}"#).expect("input");
    for format in ["human", "json"] {
        let t = env.run(&[
            "plugins",
            "test",
            plugins.join("hostile.wasm").to_str().expect("utf-8"),
            "--input",
            input.to_str().expect("utf-8"),
            "--format",
            format,
        ]);
        assert!(t.status.success(), "{}", stderr(&t));
        assert_no_control_characters(&format!("plugins test --format {format}"), &t.stdout);
        assert_no_control_characters(&format!("plugins test --format {format} (stderr)"), &t.stderr);
    }
    let list = env.run(&["plugins", "list", "--plugin-dir", plugins.to_str().expect("utf-8")]);
    assert_no_control_characters("plugins list", &list.stdout);
}

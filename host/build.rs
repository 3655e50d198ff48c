//! Builds the plugins under `plugins/` for `wasm32-wasip2` and embeds the
//! built-in ones in the binary (like wasmtime's test-programs artifacts).
//!
//! The nested cargo uses its own target folder (`target/wasm-plugins`) so it
//! never waits on the lock of the outer build. Each world is built in its own
//! cargo invocation: the SDK selects its world by feature, and features unify
//! within one invocation.

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Built-in plugins: (package, world feature). Embedded in the binary.
const BUILTINS: &[(&str, &str)] = &[
    ("plugin-redis-conf", "generator"),
    ("plugin-compose", "generator"),
    ("plugin-kubernetes", "generator"),
    ("plugin-backup", "generator"),
    ("plugin-cache-aside", "cache-strategy"),
    ("plugin-write-through", "cache-strategy"),
    ("plugin-write-behind", "cache-strategy"),
    ("plugin-refresh-ahead", "cache-strategy"),
];

/// Ends the build with one line saying what to do — never a panic and a
/// backtrace, which is what a newcomer would otherwise meet first.
fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}

fn env_path(var: &str) -> PathBuf {
    std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| fail(&format!("cargo did not set `{var}`")))
}

/// The plugins are built for `wasm32-wasip2`. rustup installs a toolchain
/// file's `targets` only with the toolchain itself, so on a machine whose
/// toolchain was already there the target is missing: add it (what the
/// toolchain file asks for anyway), unless `REDPLATE_NO_RUSTUP` is set.
fn ensure_wasm_target() {
    println!("cargo:rerun-if-env-changed=REDPLATE_NO_RUSTUP");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.as_deref().is_some_and(Path::is_dir) {
        return;
    }
    let how = "run `rustup target add wasm32-wasip2`, then build again";
    if std::env::var_os("REDPLATE_NO_RUSTUP").is_some() {
        fail(&format!("the Rust target `wasm32-wasip2` (for the plugins) is not installed: {how}"));
    }
    println!("cargo:warning=adding the Rust target wasm32-wasip2 (the plugins are built for it) with rustup");
    let added = Command::new("rustup").args(["target", "add", "wasm32-wasip2"]).status();
    if !added.is_ok_and(|s| s.success()) {
        fail(&format!(
            "the Rust target `wasm32-wasip2` (for the plugins) is not installed and rustup could not add it: {how}"
        ));
    }
}

fn main() {
    let manifest_dir = env_path("CARGO_MANIFEST_DIR");
    let Some(root) = manifest_dir.parent().map(Path::to_path_buf) else { fail("host/ has no parent folder") };
    let out_dir = env_path("OUT_DIR");
    let wasm_target_dir = root.join("target").join("wasm-plugins");
    println!("cargo:rerun-if-changed={}", root.join("plugins").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-changed={}", root.join("Cargo.toml").display());

    // Test fixtures (adversarial plugins) are built too, but not embedded.
    let fixtures: Vec<String> = std::fs::read_dir(root.join("plugins").join("fixtures"))
        .map(|rd| {
            let mut v: Vec<String> = rd
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("Cargo.toml").exists())
                .map(|e| format!("fixture-{}", e.file_name().to_string_lossy()))
                .collect();
            v.sort();
            v
        })
        .unwrap_or_default();

    let mut groups: Vec<Vec<String>> = Vec::new();
    for world in ["generator", "cache-strategy"] {
        let mut group: Vec<String> =
            BUILTINS.iter().filter(|(_, w)| *w == world).map(|(p, _)| (*p).to_string()).collect();
        if world == "generator" {
            group.extend(fixtures.iter().cloned());
        }
        groups.push(group);
    }
    // For iterating on the host alone: reuse the plugins already built.
    println!("cargo:rerun-if-env-changed=REDPLATE_REUSE_PLUGINS");
    if std::env::var_os("REDPLATE_REUSE_PLUGINS").is_none() {
        ensure_wasm_target();
        for group in &groups {
            build(&root, &wasm_target_dir, group);
        }
    }
    let wasm_dir = wasm_target_dir.join("wasm32-wasip2").join("plugin");
    for (package, _) in BUILTINS {
        // Embed again whenever a plugin is rebuilt (also when reusing them).
        println!("cargo:rerun-if-changed={}", wasm_dir.join(format!("{}.wasm", package.replace('-', "_"))).display());
    }

    let mut table = String::from(
        "/// Built-in plugins: (file name, component bytes, sha256 hex).\npub static BUILTINS: &[(&str, &[u8], &str)] = &[\n",
    );
    for (package, _) in BUILTINS {
        let file = format!("{}.wasm", package.replace('-', "_"));
        let src = wasm_dir.join(&file);
        let bytes =
            std::fs::read(&src).unwrap_or_else(|e| fail(&format!("cannot read the plugin {}: {e}", src.display())));
        let dst = out_dir.join(&file);
        std::fs::write(&dst, &bytes).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", dst.display())));
        let sha = hex(&Sha256::digest(&bytes));
        let name = package.trim_start_matches("plugin-");
        let _ = writeln!(table, "    ({name:?}, include_bytes!({:?}), {sha:?}),", dst.display().to_string());
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("builtin_plugins.rs"), table)
        .unwrap_or_else(|e| fail(&format!("cannot write builtin_plugins.rs: {e}")));
    // Tests and benches find the fixtures here.
    println!("cargo:rustc-env=REDPLATE_WASM_DIR={}", wasm_dir.display());
}

fn build(root: &Path, target_dir: &Path, packages: &[String]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin", "--target-dir"])
        .arg(target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // Flags meant for the host build must not leak into the wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_PKG_NAME",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().unwrap_or_else(|e| fail(&format!("cannot run cargo for the wasm plugins: {e}")));
    if !status.success() {
        fail(&format!(
            "building the wasm plugins failed ({status}); the lines above say why (`cargo build --target wasm32-wasip2 --profile plugin -p {}` repeats it)",
            packages.join(" -p ")
        ));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

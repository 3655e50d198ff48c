//! The container engine under the Compose backend: which one this machine
//! has (`docker compose`, `podman-compose`, `podman compose`, asked in that
//! order), its compose commands run on a deployment's project, and its own
//! CLI (`docker` / `podman`) asked about the project's containers (state,
//! pid, health, logs). Everything an engine prints is untrusted text: it
//! reaches an error or a terminal only through [`crate::text`].

use crate::backend::BackendError;
use serde_json::Value;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The engines tried, in order: what a user types, the compose command, the engine's CLI.
const CANDIDATES: [(&str, &[&str], &str); 3] = [
    ("docker compose", &["docker", "compose"], "docker"),
    ("podman-compose", &["podman-compose"], "podman"),
    ("podman compose", &["podman", "compose"], "podman"),
];

/// Chooses the engine by name (`docker compose`, `podman-compose`, `podman compose`) instead of detecting it.
pub const ENGINE_ENV: &str = "REDPLATE_COMPOSE_ENGINE";

/// How long a short engine command (version, inspect, kill) may take.
pub const SHORT: Duration = Duration::from_secs(30);

/// What to install when no engine is found.
pub const INSTALL_HINT: &str = "install Docker with its compose plugin (`docker compose`), or podman and \
    podman-compose (`apt-get install podman runc`, `pip install podman-compose`); \
    `redplate render --target compose` works without one";

/// A container engine with a compose front end.
#[derive(Debug, Clone)]
pub struct Engine {
    /// What a user would type: `docker compose`, `podman-compose`.
    pub name: &'static str,
    compose: &'static [&'static str],
    /// The engine's own CLI: `docker` or `podman`.
    pub cli: &'static str,
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// The end of what it printed (stderr, else stdout), cleaned for a message.
    pub fn tail(&self) -> String {
        let text = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(8)..].join("\n");
        crate::text::clean_lines(&tail, 2048)
    }
}

/// Runs `program args` with its output captured, killing it after `timeout`.
/// `Err(MissingProgram)` when it cannot be started at all.
pub fn run(program: &str, args: &[&str], dir: Option<&Path>, timeout: Duration) -> Result<Ran, BackendError> {
    run_with_input(program, args, dir, None, timeout)
}

/// [`run`], with `input` written to the command's standard input.
fn run_with_input(
    program: &str,
    args: &[&str],
    dir: Option<&Path>,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Result<Ran, BackendError> {
    let mut cmd = Command::new(program);
    let stdin = if input.is_some() { Stdio::piped() } else { Stdio::null() };
    cmd.args(args).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().map_err(|source| BackendError::MissingProgram { program: program.into(), source })?;
    let writer = child.stdin.take().zip(input.map(<[u8]>::to_vec)).map(|(mut pipe, bytes)| {
        std::thread::spawn(move || {
            use std::io::Write;
            // Dropping the pipe afterwards closes it: the command sees the end.
            let _ = pipe.write_all(&bytes);
        })
    });
    // Read both pipes while waiting: a command that prints much would block on a full pipe.
    let readers: Vec<_> = [child.stdout.take().map(|o| Box::new(o) as Box<dyn std::io::Read + Send>)]
        .into_iter()
        .chain([child.stderr.take().map(|e| Box::new(e) as Box<dyn std::io::Read + Send>)])
        .map(|pipe| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut bytes);
                }
                String::from_utf8_lossy(&bytes).into_owned()
            })
        })
        .collect();
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(BackendError::Io { action: "wait for", path: program.into(), source: e }),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    let mut out = readers.into_iter().map(|r| r.join().unwrap_or_default());
    let (stdout, stderr) = (out.next().unwrap_or_default(), out.next().unwrap_or_default());
    match status {
        Some(s) => Ok(Ran { ok: s.success(), stdout, stderr }),
        None => Err(BackendError::Engine {
            command: format!("{program} {}", args.join(" ")),
            message: format!("no answer within {} s", timeout.as_secs()),
        }),
    }
}

/// The first engine that answers, or the one [`ENGINE_ENV`] names.
pub fn detect() -> Result<Engine, BackendError> {
    let chosen = std::env::var(ENGINE_ENV).ok().filter(|v| !v.trim().is_empty());
    let mut tried = Vec::new();
    for (name, compose, cli) in CANDIDATES {
        if chosen.as_deref().is_some_and(|c| c.trim() != name) {
            continue;
        }
        tried.push(format!("`{name}`"));
        let mut args: Vec<&str> = compose[1..].to_vec();
        args.push("version");
        let answers = run(compose[0], &args, None, SHORT).is_ok_and(|r| r.ok)
            && run(cli, &["--version"], None, SHORT).is_ok_and(|r| r.ok);
        if answers {
            return Ok(Engine { name, compose, cli });
        }
    }
    if let Some(c) = chosen
        && tried.is_empty()
    {
        return Err(BackendError::NoEngine {
            tried: format!(
                "`{ENGINE_ENV}={}` names none of `docker compose`, `podman-compose`, `podman compose`",
                crate::text::clean(&c, 64)
            ),
        });
    }
    Err(BackendError::NoEngine { tried: format!("{} answered", tried.join(", ")) })
}

/// One container of a project, from the engine's `inspect`.
#[derive(Debug, Clone)]
pub struct Container {
    pub id: String,
    /// The compose service it runs (a node's name, or `<project>-cluster-init`).
    pub service: String,
    pub running: bool,
    /// `running`, `exited`, `created`…
    pub status: String,
    pub exit_code: i64,
    /// The container's main process on this machine, while it runs.
    pub pid: Option<u32>,
}

impl Container {
    fn from_inspect(v: &Value) -> Option<Container> {
        let labels = &v["Config"]["Labels"];
        let service = labels["com.docker.compose.service"].as_str()?.to_owned();
        let state = &v["State"];
        let running = state["Running"].as_bool().unwrap_or(false);
        Some(Container {
            id: v["Id"].as_str()?.to_owned(),
            service,
            running,
            status: state["Status"].as_str().unwrap_or_default().to_owned(),
            exit_code: state["ExitCode"].as_i64().unwrap_or(0),
            pid: state["Pid"].as_u64().and_then(|p| u32::try_from(p).ok()).filter(|p| running && *p > 0),
        })
    }
}

/// A deployment's compose project: its name and files.
#[derive(Debug, Clone)]
pub struct Project {
    pub name: String,
    /// The folder of the rendered `compose.yaml`.
    pub dir: PathBuf,
    /// The files given with `-f`, in order.
    pub files: Vec<PathBuf>,
}

impl Engine {
    /// Runs `<compose> -p <project> -f … <args>` in the project's folder; a
    /// failure is [`BackendError::Engine`] with the end of what it printed.
    pub fn compose(&self, project: &Project, args: &[&str], timeout: Duration) -> Result<String, BackendError> {
        let files: Vec<String> = project.files.iter().map(|f| f.display().to_string()).collect();
        let mut all: Vec<&str> = self.compose[1..].to_vec();
        all.extend(["-p", project.name.as_str()]);
        for f in &files {
            all.extend(["-f", f.as_str()]);
        }
        all.extend_from_slice(args);
        let ran = run(self.compose[0], &all, Some(&project.dir), timeout)?;
        if !ran.ok {
            return Err(BackendError::Engine {
                command: format!("{} {}", self.name, args.join(" ")),
                message: ran.tail(),
            });
        }
        Ok(ran.stdout)
    }

    /// Runs the engine's own CLI; a failure is [`BackendError::Engine`].
    pub fn cli(&self, args: &[&str], timeout: Duration) -> Result<Ran, BackendError> {
        run(self.cli, args, None, timeout)
    }

    /// Like [`Engine::cli`], but a failure is an error naming the command.
    pub fn cli_ok(&self, args: &[&str], timeout: Duration) -> Result<String, BackendError> {
        let ran = self.cli(args, timeout)?;
        if !ran.ok {
            return Err(BackendError::Engine {
                command: format!("{} {}", self.cli, args.join(" ")),
                message: ran.tail(),
            });
        }
        Ok(ran.stdout)
    }

    /// Makes sure `image` is on this machine: pulled when it is not, and an
    /// [`BackendError::ImageUnavailable`] naming it when the pull fails (a
    /// compose `up` would fail on it halfway, with the other services made).
    pub fn ensure_image(&self, image: &str, timeout: Duration) -> Result<bool, BackendError> {
        // `podman image exists` / `docker image inspect`: exit 0 when it is here.
        let probe: [&str; 3] =
            if self.cli == "podman" { ["image", "exists", image] } else { ["image", "inspect", image] };
        if self.cli(&probe, SHORT)?.ok {
            return Ok(false);
        }
        let pulled = self.cli(&["pull", image], timeout)?;
        if !pulled.ok {
            return Err(BackendError::ImageUnavailable {
                image: image.to_owned(),
                command: format!("{} pull {image}", self.cli),
                message: pulled.tail(),
            });
        }
        Ok(true)
    }

    /// Every container of `project` (running or not), by compose's own label.
    pub fn containers(&self, project: &str) -> Result<Vec<Container>, BackendError> {
        let filter = format!("label=com.docker.compose.project={project}");
        let ids = self.cli_ok(&["ps", "-a", "-q", "--filter", &filter], SHORT)?;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec!["inspect"];
        args.extend(&ids);
        let ran = self.cli(&args, SHORT)?;
        // A container removed between `ps` and `inspect` fails the command
        // but leaves the others in the output.
        let parsed: Value = serde_json::from_str(&ran.stdout).map_err(|e| BackendError::Engine {
            command: format!("{} inspect", self.cli),
            message: format!("unreadable output ({}): {}", crate::text::clean(&e.to_string(), 200), ran.tail()),
        })?;
        Ok(parsed.as_array().into_iter().flatten().filter_map(Container::from_inspect).collect())
    }

    /// Runs a container's own health check once and says whether it passed:
    /// podman schedules health checks with systemd timers, which a machine
    /// without systemd does not have, so each is run on demand; Docker runs
    /// them itself, and its last result is read.
    pub fn healthy(&self, container: &Container) -> Result<bool, BackendError> {
        if self.cli == "podman" {
            return Ok(self.cli(&["healthcheck", "run", &container.id], SHORT)?.ok);
        }
        let out = self.cli_ok(&["inspect", "--format", "{{.State.Health.Status}}", &container.id], SHORT)?;
        Ok(out.trim() == "healthy")
    }

    /// Writes `bytes` to `path` inside the running `container`, as its user
    /// and mode 0600, atomically (a file beside it, then renamed).
    pub fn write_file(&self, container: &Container, path: &str, bytes: &[u8]) -> Result<(), BackendError> {
        let script = "umask 077; cat > \"$1.redplate-new\" && mv -f \"$1.redplate-new\" \"$1\"";
        let args = ["exec", "-i", container.id.as_str(), "sh", "-c", script, "sh", path];
        let ran = run_with_input(self.cli, &args, None, Some(bytes), SHORT)?;
        if !ran.ok {
            return Err(BackendError::Engine {
                command: format!("{} exec {} (writing {path})", self.cli, container.service),
                message: ran.tail(),
            });
        }
        Ok(())
    }

    /// The last `lines` lines a container printed (Redis logs to stdout in containers), cleaned.
    pub fn logs(&self, container: &Container, lines: usize) -> String {
        let n = lines.to_string();
        match self.cli(&["logs", "--tail", &n, &container.id], SHORT) {
            Ok(r) => {
                let text = format!("{}{}", r.stdout, r.stderr);
                crate::text::clean_lines(text.trim_end(), 64 * 1024)
            }
            Err(e) => crate::text::clean(&format!("(no logs: {e})"), 512),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_and_a_slow_one_is_cut_off() {
        let e = run("redplate-no-such-engine", &["version"], None, SHORT).expect_err("not installed");
        assert!(e.to_string().contains("redplate-no-such-engine"), "{e}");
        let started = Instant::now();
        let e = run("sleep", &["5"], None, Duration::from_millis(200)).expect_err("cut off");
        assert!(started.elapsed() < Duration::from_secs(3), "killed at the deadline");
        assert!(e.to_string().contains("no answer"), "{e}");
        let ran = run("sh", &["-c", "printf 'a\\033]0;x\\007\\n' >&2; exit 3"], None, SHORT).expect("ran");
        assert!(!ran.ok && ran.tail().contains("\\u{1b}"), "control characters escaped: {}", ran.tail());
    }

    #[test]
    fn a_container_is_read_from_inspect_output() {
        let v: Value = serde_json::from_str(
            r#"{"Id":"abc","Config":{"Labels":{"com.docker.compose.service":"shop-0"}},
                "State":{"Running":true,"Status":"running","ExitCode":0,"Pid":4242}}"#,
        )
        .expect("json");
        let c = Container::from_inspect(&v).expect("a container");
        assert_eq!((c.service.as_str(), c.running, c.pid), ("shop-0", true, Some(4242)));
        let no_service: Value = serde_json::from_str(r#"{"Id":"x","Config":{"Labels":{}},"State":{}}"#).expect("json");
        assert!(Container::from_inspect(&no_service).is_none(), "not a compose container");
    }
}

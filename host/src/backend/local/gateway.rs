//! The tenant gateway's process (`redplate gateway <name>`), started after
//! the nodes are ready and stopped before them, with the state folder as
//! its working directory and `logs/gateway.log` as its output.

use super::files;
use super::process::{self, Sig};
use crate::backend::BackendError;
use crate::registry::Record;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the gateway gets to listen.
const READY: Duration = Duration::from_secs(20);

/// Whether `pid` is this deployment's gateway.
pub fn ours(pid: u32, state_dir: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z" | "X") | None) {
        return false;
    }
    let gateway = std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|b| *b == 0).nth(1).is_some_and(|arg| arg == b"gateway"));
    gateway
        && std::fs::read_link(format!("/proc/{pid}/cwd"))
            .is_ok_and(|cwd| cwd.starts_with(state_dir.canonicalize().unwrap_or_else(|_| state_dir.to_owned())))
}

/// Whether the gateway of `record` runs.
pub fn running(record: &Record) -> Option<u32> {
    record.gateway.as_ref()?.pid.filter(|p| ours(*p, &record.state_dir))
}

/// Starts the gateway when the deployment has one and it is not running,
/// and waits until it listens.
pub fn start(record: &mut Record) -> Result<(), BackendError> {
    let Some(port) = record.gateway_port() else { return Ok(()) };
    if running(record).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(BackendError::io("find", "the redplate executable"))?;
    let log = record.log_file("gateway");
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(BackendError::io("create", dir))?;
    }
    let out =
        std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(BackendError::io("open", &log))?;
    let err = out.try_clone().map_err(BackendError::io("open", &log))?;
    // The registry's home: `<home>/deployments/<name>`.
    let home = record.state_dir.parent().and_then(Path::parent).unwrap_or(&record.state_dir).to_owned();
    let mut cmd = Command::new(&exe);
    cmd.args(["gateway", &record.name, "--listen", &format!("127.0.0.1:{port}")])
        .env("REDPLATE_HOME", &home)
        .current_dir(&record.state_dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child =
        cmd.spawn().map_err(|source| BackendError::MissingProgram { program: exe.display().to_string(), source })?;
    let deadline = Instant::now() + READY;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(BackendError::NodeExited {
                node: "gateway".into(),
                status: status.to_string(),
                log: crate::text::clean(&files::tail(&log, 10), 4096),
            });
        }
        if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(BackendError::NotReady {
                seconds: READY.as_secs(),
                waiting_for: format!("the tenant gateway to listen on port {port}"),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(g) = record.gateway.as_mut() {
        g.pid = Some(child.id());
    }
    Ok(())
}

/// Stops the gateway (SIGTERM, then SIGKILL after 5 s).
pub fn stop(record: &mut Record) {
    if let Some(pid) = running(record) {
        process::signal(pid, Sig::Term);
        let deadline = Instant::now() + Duration::from_secs(5);
        while ours(pid, &record.state_dir) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if ours(pid, &record.state_dir) {
            process::signal(pid, Sig::Kill);
        }
    }
    if let Some(g) = record.gateway.as_mut() {
        g.pid = None;
    }
}

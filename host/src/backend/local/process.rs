//! Processes and ports: starting `redis-server` / `redis-sentinel` from the
//! state folder, telling whether a recorded pid is still that node, stopping
//! it (signals through `rustix`, no `kill` processes), and finding a free
//! block of ports. Linux: liveness reads `/proc`.

use crate::backend::BackendError;
use crate::registry::{NodeRecord, Record};
use redplate_config::Role;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts one node with the state folder as its working directory (the
/// rendered configs use paths relative to it), logging to
/// `logs/<node>.log` (`--logfile` overrides the rendered value).
/// `replica_of` (a port) starts a data node as a replica of that master
/// whatever its config says: a restarted old master must not take writes
/// while the sentinels have promoted another node.
pub fn spawn(record: &Record, node: &NodeRecord, replica_of: Option<u16>) -> Result<Child, BackendError> {
    let program = if node.role == Role::Sentinel { "redis-sentinel" } else { "redis-server" };
    let conf = record.path(&node.conf);
    let data = record.path(&format!("data/{}", node.name));
    std::fs::create_dir_all(&data).map_err(BackendError::io("create", &data))?;
    let log = record.log_file(&node.name);
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(BackendError::io("create", dir))?;
    }
    // Errors Redis prints before it opens its log file go to the same file.
    let out =
        std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(BackendError::io("open", &log))?;
    let err = out.try_clone().map_err(BackendError::io("open", &log))?;
    let mut cmd = Command::new(program);
    cmd.arg(&conf)
        .arg("--logfile")
        .arg(&log)
        .args(extra_args(record, node))
        .args(
            replica_of
                .map(|p| vec!["--replicaof".to_owned(), "127.0.0.1".to_owned(), p.to_string()])
                .unwrap_or_default(),
        )
        .current_dir(&record.state_dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .env_remove("REDISCLI_AUTH");
    #[cfg(unix)]
    {
        // Its own process group: a Ctrl-C meant for redplate does not reach Redis.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    cmd.spawn().map_err(|source| BackendError::MissingProgram { program: program.into(), source })
}

/// Command-line settings the local backend adds. A master starts the
/// diskless sync as soon as all of its replicas wait for it, instead of
/// after the whole `repl-diskless-sync-delay` (replicas of one local
/// deployment all start together).
fn extra_args(record: &Record, node: &NodeRecord) -> Vec<String> {
    let replicas = replicas_per_master(record);
    if node.role == Role::Sentinel || replicas == 0 {
        return Vec::new();
    }
    vec!["--repl-diskless-sync-max-replicas".into(), replicas.to_string()]
}

/// How many replicas each master has.
pub fn replicas_per_master(record: &Record) -> usize {
    match record.mode {
        redplate_config::model::Mode::Cluster => usize::from(record.cluster_replicas),
        _ => record.data_nodes().count().saturating_sub(1),
    }
}

/// Whether this machine's `redis-server` accepts `activedefrag yes` (Debian's
/// build, without Redis's own jemalloc, refuses to start with it). Asked
/// without starting a server: an unknown option after it stops the parse.
pub fn active_defrag_supported() -> Result<bool, BackendError> {
    let mut cmd = Command::new("redis-server");
    cmd.args(["--activedefrag", "yes", "--port", "0", "--redplate-probe", "x"]);
    let out = run_with_deadline(cmd, Duration::from_secs(10))?;
    Ok(!out.contains("Active defragmentation cannot be enabled"))
}

/// Runs `cmd` with its output (stdout and stderr) captured, killing it after `timeout`.
fn run_with_deadline(mut cmd: Command, timeout: Duration) -> Result<String, BackendError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| BackendError::MissingProgram { program: program.clone(), source })?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BackendError::Command {
                    node: String::new(),
                    command: program,
                    message: format!("no answer within {} ms", timeout.as_millis()),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(BackendError::Io { action: "wait for", path: program.into(), source: e }),
        }
    }
    // It has exited: its pipes hold the little it printed.
    let out = child.wait_with_output().map_err(BackendError::io("read the output of", &program))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// Whether `pid` is a live Redis process (not a zombie, not a recycled pid).
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The state letter follows the `(comm)` field.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z" | "X") | None) {
        return false;
    }
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("redis"))
        .unwrap_or(false)
}

/// A signal the backend sends its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    /// Save and exit.
    Term,
    /// Exit now.
    Kill,
}

/// Sends `sig` to `pid` (best effort: a process that is gone already is no error).
pub fn signal(pid: u32, sig: Sig) {
    let sig = match sig {
        Sig::Term => rustix::process::Signal::TERM,
        Sig::Kill => rustix::process::Signal::KILL,
    };
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Whether `pid` is a live process of the deployment in `state_dir`: pids
/// are reused quickly (`pid_max` may be 32768), so a recorded pid counts
/// only while its working directory is inside the state folder (Redis
/// moves into its `data/<node>` there).
pub fn ours(pid: u32, state_dir: &Path) -> bool {
    alive(pid)
        && std::fs::read_link(format!("/proc/{pid}/cwd"))
            .is_ok_and(|cwd| cwd.starts_with(state_dir.canonicalize().unwrap_or_else(|_| state_dir.to_owned())))
}

/// Stops `pid` if it is ours: SIGTERM (Redis saves and exits), then
/// SIGKILL after `grace`.
pub fn stop(pid: u32, state_dir: &Path, grace: Duration) {
    if !ours(pid, state_dir) {
        return;
    }
    signal(pid, Sig::Term);
    if !wait_gone(pid, grace) && ours(pid, state_dir) {
        signal(pid, Sig::Kill);
        wait_gone(pid, Duration::from_secs(5));
    }
}

/// Waits until `pid` is gone; false on timeout.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Whether nothing listens on `port` (on any address).
pub fn port_free(port: u16) -> bool {
    TcpListener::bind(("0.0.0.0", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// This machine's ephemeral port range (`net.ipv4.ip_local_port_range`),
/// from which the kernel picks the local port of every outgoing
/// connection: a node whose port lies in it can find it held for a moment
/// by any client's connection.
pub fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

/// Advice for a taken `port` that lies in the ephemeral range, else `None`.
pub fn ephemeral_hint(port: u16) -> Option<String> {
    let (low, high) = ephemeral_range().filter(|(low, high)| (*low..=*high).contains(&port))?;
    Some(format!(
        "port {port} is in this machine's ephemeral port range {low}-{high}, where the kernel gives outgoing \
         connections their ports, so it can be taken for a moment by any client: keep every port below {low} \
         (`network.local_base_port`; for a cluster's bus ports, `network.cluster_bus_port_offset` as well)"
    ))
}

/// The first base port from `from` (stepping by `step`) for which every
/// port `ports(base)` returns is free and not `reserved` (the ports other
/// deployments keep while stopped).
pub fn free_base(
    from: u16,
    step: u16,
    reserved: &BTreeMap<u16, String>,
    ports: impl Fn(u16) -> Option<Vec<u16>>,
) -> Result<u16, BackendError> {
    let mut base = from;
    let mut count = 0;
    for _ in 0..400 {
        let Some(list) = ports(base) else { break };
        count = list.len();
        if list.iter().all(|p| !reserved.contains_key(p) && port_free(*p)) {
            return Ok(base);
        }
        let Some(next) = base.checked_add(step) else { break };
        base = next;
    }
    Err(BackendError::NoFreePorts { from, count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_port_is_not_free_and_is_skipped() {
        let l = TcpListener::bind(("127.0.0.1", 0)).expect("bind");
        let taken = l.local_addr().expect("addr").port();
        assert!(!port_free(taken));
        let base = free_base(taken, 1, &BTreeMap::new(), |b| Some(vec![b])).expect("a free port");
        assert!(base > taken);
        let kept = BTreeMap::from([(base, "stopped".to_owned())]);
        let next = free_base(taken, 1, &kept, |b| Some(vec![b])).expect("a free port");
        assert!(next > base, "a port another deployment keeps is skipped too");
    }

    #[test]
    fn this_process_is_not_a_redis_node() {
        assert!(!alive(std::process::id()) || std::env::args().any(|a| a.contains("redis")));
        assert!(!alive(u32::MAX));
    }
}

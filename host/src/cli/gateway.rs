//! `redplate gateway <deployment>`: runs the tenant gateway in the
//! foreground (the local backend starts the same command with the
//! deployment when `tenancy.gateway` is on).

use crate::exit::{ExitStatus, Failure};
use crate::gateway::Options;
use crate::plugin::PluginHost;
use clap::Args;
use redplate_config::Diagnostic;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The deployment whose tenants connect through it.
    pub deployment: String,
    /// Where to listen [default: the port the deployment reserved for its
    /// gateway, on 127.0.0.1].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Connections open at once, all tenants together; the next is refused.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_connections: usize,
    /// Close a connection that has not authenticated within this many seconds.
    #[arg(long, default_value_t = 10, value_name = "S")]
    pub auth_timeout_s: u64,
    /// Close an authenticated connection idle for this many seconds (0: never).
    #[arg(long, default_value_t = 300, value_name = "S")]
    pub idle_timeout_s: u64,
    /// A command over its tenant's ops/s quota waits at most this long, then is refused.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    pub max_delay_ms: u64,
    /// Cut off a client that takes no reply for this many seconds.
    #[arg(long, default_value_t = 30, value_name = "S")]
    pub write_timeout_s: u64,
    /// The largest argument a command may carry, in MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub max_bulk_mib: usize,
    /// Measure each tenant's keys this often, in milliseconds (sooner after deletes).
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub sample_interval_ms: u64,
    /// How long a command waits for the master during a failover, in seconds.
    #[arg(long, default_value_t = 30, value_name = "S")]
    pub failover_wait_s: u64,
    /// Upstream connections each tenant's sessions share, per protocol;
    /// a session that needs connection state (`MULTI`, `WATCH`, `SELECT`,
    /// blocking commands, `SUBSCRIBE`, `CLIENT`…) gets one of its own.
    /// 0: every session has one of its own.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub shared_upstreams: usize,
    /// Worker threads [default: one per core, less one for Redis; with
    /// one, every connection is served on that thread alone].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

pub fn run(args: &GatewayArgs, host: impl FnOnce() -> Result<PluginHost, Failure>) -> Result<ExitStatus, Failure> {
    let home = crate::secrets::redplate_home();
    let record = super::record(&args.deployment)?;
    let listen = match args.listen {
        Some(l) => l,
        None => match &record.gateway {
            Some(_) => SocketAddr::from(([127, 0, 0, 1], record.gateway_port().unwrap_or(0))),
            None => {
                return Err(Failure::invalid(vec![
                    Diagnostic::error(
                        "gateway.no-port",
                        "/tenancy/gateway",
                        format!("`{}` has no gateway port: its template has `tenancy.gateway` off", args.deployment),
                    )
                    .with_hint("say where to listen with `--listen 127.0.0.1:PORT`, or turn `tenancy.gateway` on and `redplate apply`"),
                ]));
            }
        },
    };
    let mut options = Options::new(listen);
    options.max_connections = args.max_connections.max(1);
    options.auth_timeout = Duration::from_secs(args.auth_timeout_s.max(1));
    options.idle_timeout = Duration::from_secs(args.idle_timeout_s);
    options.max_delay = Duration::from_millis(args.max_delay_ms);
    options.write_timeout = Duration::from_secs(args.write_timeout_s.max(1));
    options.max_bulk = args.max_bulk_mib.clamp(1, 512) << 20;
    options.sample_interval = Duration::from_millis(args.sample_interval_ms.max(100));
    options.failover_wait = Duration::from_secs(args.failover_wait_s);
    options.shared_upstreams = args.shared_upstreams.min(64);
    let host = host()?;
    let _ = tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).with_ansi(false).try_init();
    let threads = args.threads.unwrap_or_else(default_threads).max(1);
    // One thread: every task on it, none handed between threads (no
    // cross-thread wake-ups, no work stealing).
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    if threads > 1 {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build().map_err(|e| {
        Failure::could_not_run(Diagnostic::error("runtime.start", "", format!("cannot start the async runtime: {e}")))
    })?;
    runtime.block_on(crate::gateway::run(&home, &args.deployment, options, Some(host)))?;
    Ok(ExitStatus::Ok)
}

/// One worker thread per core, less one for the `redis-server` beside the
/// gateway (Redis runs its commands on one thread): on 2 cores, one thread.
fn default_threads() -> usize {
    crate::ops::batch::default_threads().saturating_sub(1).max(1)
}

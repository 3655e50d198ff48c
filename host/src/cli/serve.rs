//! `redplate serve` and `redplate token`: clap structs and printing; the
//! server is `api::serve`, the tokens `ops::tokens`.

use super::Format;
use super::print::outln;
use crate::exit::{ExitStatus, Failure};
use crate::ops::tokens::{self, Scope};
use crate::plugin::PluginHost;
use clap::{Args, Subcommand};
use redplate_config::Diagnostic;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen (8083: the admin port).
    #[arg(long, default_value = "127.0.0.1:8083", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// The largest request body, in KiB.
    #[arg(long, default_value_t = 1024, value_name = "KIB")]
    pub body_limit_kib: usize,
    /// The longest a request may take, in seconds (jobs run on after their 202).
    #[arg(long, default_value_t = 60, value_name = "S")]
    pub request_timeout_s: u64,
    /// Requests answered at once; the others wait.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub concurrency: usize,
    /// Connections open at once; the next waits until one closes.
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// Close a connection on which nothing moved for this long, in seconds
    /// (slow or stalled clients); at least the request timeout.
    #[arg(long, default_value_t = 75, value_name = "S")]
    pub idle_timeout_s: u64,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make an API token (printed once; only its hash is kept).
    Create {
        /// A token for every endpoint.
        #[arg(long, conflicts_with_all = ["deployment", "tenant"], required_unless_present = "tenant")]
        admin: bool,
        /// With `--tenant`: the deployment whose tenant the token is for.
        #[arg(long, requires = "tenant", value_name = "NAME")]
        deployment: Option<String>,
        /// A token for this tenant's endpoints only.
        #[arg(long, requires = "deployment", value_name = "ID")]
        tenant: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// List the tokens (ids, scopes, revoked or not; never the tokens).
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token's id (`redplate token list`).
        id: String,
    },
}

pub fn serve(args: &ServeArgs, host: PluginHost, plugin_dirs: &[PathBuf]) -> Result<ExitStatus, Failure> {
    let opts = crate::api::ServeOptions {
        listen: args.listen,
        home: crate::secrets::redplate_home(),
        plugin_dirs: plugin_dirs.to_vec(),
        body_limit: args.body_limit_kib.saturating_mul(1024).max(1024),
        request_timeout: Duration::from_secs(args.request_timeout_s.max(1)),
        concurrency: args.concurrency.max(1),
        max_connections: args.max_connections.max(1),
        idle_timeout: Duration::from_secs(args.idle_timeout_s.max(1)),
        shutdown_grace: Duration::from_secs(10),
    };
    crate::api::serve(opts, host)?;
    Ok(ExitStatus::Ok)
}

pub fn token(command: &TokenCommand) -> Result<ExitStatus, Failure> {
    let home = crate::secrets::redplate_home();
    let json = |v: &dyn erased::Json| outln!("{}", v.pretty());
    match command {
        TokenCommand::Create { admin, deployment, tenant, format } => {
            let scope = match (admin, deployment, tenant) {
                (true, _, _) => Scope::Admin,
                (false, Some(d), Some(t)) => Scope::Tenant { deployment: d.clone(), tenant: t.clone() },
                _ => {
                    return Err(Failure::invalid(vec![
                        Diagnostic::error("token.scope", "", "say what the token is for")
                            .with_hint("`--admin`, or `--deployment NAME --tenant ID`"),
                    ]));
                }
            };
            let issued = tokens::create(&home, scope)?;
            match format {
                Format::Json => json(&issued),
                Format::Human => {
                    eprintln!("token {} for {} (shown once; keep it secret):", issued.id, issued.scope);
                    outln!("{}", issued.token);
                }
            }
        }
        TokenCommand::List { format } => {
            let list = tokens::list(&home)?;
            match format {
                Format::Json => json(&list),
                Format::Human => {
                    outln!("{:10} {:8} SCOPE", "ID", "STATE");
                    for t in &list {
                        outln!("{:10} {:8} {}", t.id, if t.revoked { "revoked" } else { "active" }, t.scope);
                    }
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let t = tokens::revoke(&home, id)?;
            eprintln!("revoked token {} ({})", t.id, t.scope);
        }
    }
    Ok(ExitStatus::Ok)
}

mod erased {
    /// Anything printable as pretty JSON.
    pub trait Json {
        fn pretty(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn pretty(&self) -> String {
            serde_json::to_string_pretty(self).unwrap_or_default()
        }
    }
}

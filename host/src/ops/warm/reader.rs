//! The reader side of a load: where the keys come from ([`Origin`]), and a
//! thread that parses them (or scans the source Redis), decides their TTLs
//! — the plugin runs here, off the async side — and hands batches over a
//! bounded channel, so parsing overlaps the writes of the batch before.

use super::checkpoint::{self, Checkpoint};
use super::source::{self, Bad, Format};
use super::ttl::Ttls;
use super::write::{self, Entry};
use super::{Progress, refuse, remote};
use crate::client::ClientError;
use crate::exit::Failure;
use redplate_config::Diagnostic;
use std::path::PathBuf;

/// Where the keys come from.
pub(super) enum Origin {
    File { path: PathBuf, format: Format },
    Redis(remote::Address),
}

/// One batch from the reader: keys ready to send, bad records, and where
/// the source stands after it.
pub(super) struct Prepared {
    pub entries: Vec<Entry>,
    pub bad: Vec<Bad>,
    pub gone: u64,
    pub line: u64,
    pub offset: u64,
    pub cursor: Option<String>,
}

/// What the reader thread needs.
pub(super) struct Setup {
    pub origin: Origin,
    pub resume: Checkpoint,
    /// The tenant's prefix, put before every key.
    pub prefix: Option<Vec<u8>>,
    pub ttls: Ttls,
    /// Keys per batch.
    pub batch: usize,
    /// Keys in the source Redis (for the progress bar).
    pub source_size: u64,
}

/// The source Redis could not be read.
pub(super) fn source_unreachable(e: ClientError) -> Failure {
    Failure::could_not_run(
        Diagnostic::error("warm.source-unreachable", "", e.to_string())
            .with_hint("check the `redis://` address, its user and password, and that the source Redis is running"),
    )
}

/// The source named by `from` and what identifies it in a checkpoint.
pub(super) fn origin(from: &str) -> Result<(Origin, String), Failure> {
    if from.starts_with("redis://") || from.starts_with("rediss://") {
        let address = remote::Address::parse(from).map_err(|reason| {
            refuse(
                "warm.bad-source",
                format!(
                    "cannot use `{}` as a source: {reason}",
                    crate::text::clean(from.split('@').next_back().unwrap_or(""), 200)
                ),
                "give `redis://[user:password@]host:port[/db]`",
            )
        })?;
        let identity = address.shown();
        return Ok((Origin::Redis(address), identity));
    }
    let path = PathBuf::from(from);
    let shown = crate::text::clean(from, 500);
    let Some(format) = Format::of(&path) else {
        return Err(refuse(
            "warm.unknown-format",
            format!("cannot tell the format of `{shown}` from its name"),
            "name the file `*.jsonl` (one JSON object per line) or `*.csv` (`key,value[,ttl_ms]`), or give `redis://host:port`",
        ));
    };
    let identity = checkpoint::file_identity(&path).map_err(|e| {
        Failure::could_not_run(
            Diagnostic::error("warm.read", "", format!("cannot read `{shown}`: {e}"))
                .with_hint("check the path (relative paths start from the current folder)"),
        )
    })?;
    Ok((Origin::File { path, format }, identity))
}

/// Starts the reader thread: parses (or scans the source Redis), decides
/// TTLs and sends batches until the source ends or the channel closes.
pub(super) fn spawn(
    setup: Setup,
    tx: tokio::sync::mpsc::Sender<Result<Prepared, Failure>>,
    progress: &dyn Progress,
) -> Result<std::thread::JoinHandle<()>, Failure> {
    let Setup { origin, resume, prefix, mut ttls, batch, source_size } = setup;
    let prepare = move |item: source::Item, ttls: &mut Ttls| -> Result<Entry, Failure> {
        let key = match &prefix {
            Some(p) => [p.as_slice(), &item.key].concat(),
            None => item.key,
        };
        let (ttl, from) = ttls.ttl(&key, item.ttl_ms)?;
        Ok(Entry { position: item.position, commands: write::commands(key.clone(), item.data, ttl), key, ttl: from })
    };
    let spawn = |f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new().name("redplate-warm-reader".into()).spawn(f).map_err(|e| {
            Failure::could_not_run(Diagnostic::error("warm.thread", "", format!("cannot start the reader thread: {e}")))
        })
    };
    match origin {
        Origin::File { path, format } => {
            let shown = crate::text::clean(&path.display().to_string(), 500);
            let read_error = move |e: std::io::Error| {
                Failure::could_not_run(Diagnostic::error("warm.read", "", format!("cannot read `{shown}`: {e}")))
            };
            let mut reader =
                source::FileReader::open(&path, format, resume.line, resume.offset).map_err(&read_error)?;
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            progress.start(size, resume.offset, "bytes");
            spawn(Box::new(move || {
                loop {
                    let mut p =
                        Prepared { entries: Vec::new(), bad: Vec::new(), gone: 0, line: 0, offset: 0, cursor: None };
                    let mut end = false;
                    while p.entries.len() < batch && p.bad.len() < batch {
                        match reader.next_record() {
                            Err(e) => {
                                let _ = tx.blocking_send(Err(read_error(e)));
                                return;
                            }
                            Ok(None) => {
                                end = true;
                                break;
                            }
                            Ok(Some(source::Record::Nothing)) => {}
                            Ok(Some(source::Record::Bad(b))) => p.bad.push(b),
                            Ok(Some(source::Record::Item(item))) => match prepare(item, &mut ttls) {
                                Ok(e) => p.entries.push(e),
                                Err(f) => {
                                    let _ = tx.blocking_send(Err(f));
                                    return;
                                }
                            },
                        }
                    }
                    (p.line, p.offset) = (reader.line, reader.offset);
                    let empty = p.entries.is_empty() && p.bad.is_empty();
                    if (!empty || !end) && tx.blocking_send(Ok(p)).is_err() {
                        return;
                    }
                    if end {
                        return;
                    }
                }
            }))
        }
        Origin::Redis(address) => {
            // The reader thread opens its own connection on its own runtime;
            // this one only tells the progress bar how much there is.
            let cursor = resume.cursor.clone().filter(|_| resume.line > 0);
            progress.start(source_size, resume.line, "keys");
            let runtime = |e: std::io::Error| {
                Failure::could_not_run(Diagnostic::error(
                    "runtime.start",
                    "",
                    format!("cannot start the async runtime: {e}"),
                ))
            };
            spawn(Box::new(move || {
                let opened = crate::client::runtime().map_err(runtime).and_then(|rt| {
                    let source =
                        rt.block_on(remote::Remote::open(&address, cursor, resume.line)).map_err(source_unreachable)?;
                    Ok((rt, source))
                });
                let (rt, mut source) = match opened {
                    Ok(o) => o,
                    Err(f) => {
                        let _ = tx.blocking_send(Err(f));
                        return;
                    }
                };
                loop {
                    let next = rt.block_on(source.next(batch));
                    let (items, bad, gone) = match next {
                        Err(e) => {
                            let _ = tx.blocking_send(Err(source_unreachable(e)));
                            return;
                        }
                        Ok(None) => return,
                        Ok(Some(found)) => found,
                    };
                    let mut p = Prepared {
                        entries: Vec::with_capacity(items.len()),
                        bad,
                        gone,
                        line: source.read,
                        offset: 0,
                        cursor: Some(source.cursor.clone()),
                    };
                    for item in items {
                        match prepare(item, &mut ttls) {
                            Ok(e) => p.entries.push(e),
                            Err(f) => {
                                let _ = tx.blocking_send(Err(f));
                                return;
                            }
                        }
                    }
                    if tx.blocking_send(Ok(p)).is_err() {
                        return;
                    }
                }
            }))
        }
    }
}

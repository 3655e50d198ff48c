//! Long operations as jobs: the request answers `202` with an operation id
//! and a `Location`; the work runs on a blocking thread (the `ops`
//! functions it calls are the CLI's) and reports its steps; the job keeps
//! its state (`queued`, `running`, `succeeded`, `failed`, `cancelled`), its
//! progress and its result or problem. Every change is written to
//! `$REDPLATE_HOME/operations/<id>.json`, so after a restart of the server
//! a job that was running is a `failed` record (`operation.interrupted`),
//! never a lost one. One job at a time per deployment: a second one is a
//! `409` naming the first. Cancelling sets a flag the operation checks
//! between its steps (tenant removal between two batches); an operation
//! without such points finishes its current step and reports it.

use super::problem::{ApiError, Problem};
use crate::exit::Failure;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    fn finished(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Operation {
    pub id: String,
    /// What it does: `deploy`, `apply`, `destroy`, `tenant-remove`, …
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    pub state: JobState,
    /// The step it is at (or ended at).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    pub cancel_requested: bool,
    /// Unix milliseconds.
    pub created_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<u64>,
    /// The id of the token that started it.
    pub token_id: String,
    /// What the operation returned (the CLI's `--format json` output).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// What a running job sees: its progress sink and its cancel flag.
#[derive(Clone)]
pub struct JobHandle {
    jobs: Arc<Jobs>,
    id: String,
    pub cancel: Arc<AtomicBool>,
}

impl JobHandle {
    fn set_progress(&self, message: &str) {
        self.jobs.update(&self.id, |op| op.progress = Some(crate::text::clean(message, 300)));
    }
}

impl crate::backend::Progress for JobHandle {
    fn step(&self, message: &str) {
        self.set_progress(message);
    }
}

impl crate::ops::shards::Progress for JobHandle {}

impl crate::ops::tenant::Progress for JobHandle {
    fn step(&self, message: &str) {
        self.set_progress(message);
    }
}

struct Entry {
    op: Operation,
    cancel: Arc<AtomicBool>,
}

/// Every job of this server (and the records of earlier ones).
pub struct Jobs {
    dir: PathBuf,
    entries: Mutex<BTreeMap<String, Entry>>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// At most this many finished jobs are kept (the oldest go first).
const KEEP_FINISHED: usize = 1000;

impl Jobs {
    /// Loads the records in `home/operations`; a job that was queued or
    /// running when the last server stopped is marked failed: interrupted.
    pub fn open(home: &Path) -> Jobs {
        let dir = home.join("operations");
        let mut entries = BTreeMap::new();
        if let Ok(list) = std::fs::read_dir(&dir) {
            for file in list.flatten() {
                let Ok(bytes) = std::fs::read(file.path()) else { continue };
                let Ok(mut op) = serde_json::from_slice::<Operation>(&bytes) else { continue };
                if !op.state.finished() {
                    op.state = JobState::Failed;
                    op.finished_ms = Some(now_ms());
                    op.error = Some(interrupted());
                    let _ = write(&dir, &op);
                }
                entries.insert(op.id.clone(), Entry { op, cancel: Arc::new(AtomicBool::new(false)) });
            }
        }
        Jobs { dir, entries: Mutex::new(entries) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Operation)) {
        let mut entries = self.lock();
        if let Some(e) = entries.get_mut(id) {
            f(&mut e.op);
            let _ = write(&self.dir, &e.op);
        }
    }

    /// Every job, newest first.
    pub fn list(&self) -> Vec<Operation> {
        let mut all: Vec<Operation> = self.lock().values().map(|e| e.op.clone()).collect();
        all.sort_by_key(|op| std::cmp::Reverse(op.created_ms));
        all
    }

    pub fn get(&self, id: &str) -> Option<Operation> {
        self.lock().get(id).map(|e| e.op.clone())
    }

    /// How many jobs are in each state.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for e in self.lock().values() {
            let name = match e.op.state {
                JobState::Queued => "queued",
                JobState::Running => "running",
                JobState::Succeeded => "succeeded",
                JobState::Failed => "failed",
                JobState::Cancelled => "cancelled",
            };
            *out.entry(name).or_insert(0) += 1;
        }
        out
    }

    /// At shutdown: every job still running becomes failed: interrupted
    /// (its operation can be run again to finish).
    pub fn interrupt_running(&self) {
        let mut entries = self.lock();
        for e in entries.values_mut().filter(|e| !e.op.state.finished()) {
            e.cancel.store(true, Ordering::Relaxed);
            e.op.state = JobState::Failed;
            e.op.finished_ms = Some(now_ms());
            e.op.error = Some(interrupted());
            let _ = write(&self.dir, &e.op);
        }
    }

    /// Asks job `id` to stop; a queued job is cancelled at once.
    pub fn cancel(&self, id: &str) -> Option<Operation> {
        let mut entries = self.lock();
        let e = entries.get_mut(id)?;
        if !e.op.state.finished() {
            e.cancel.store(true, Ordering::Relaxed);
            e.op.cancel_requested = true;
            if e.op.state == JobState::Queued {
                e.op.state = JobState::Cancelled;
                e.op.finished_ms = Some(now_ms());
            }
            let _ = write(&self.dir, &e.op);
        }
        Some(e.op.clone())
    }

    /// Starts `work` as a job of `kind` on `deployment`; `409` if another
    /// job runs on that deployment.
    pub fn start(
        self: &Arc<Self>,
        kind: &str,
        deployment: Option<&str>,
        token_id: &str,
        work: impl FnOnce(&JobHandle) -> Result<serde_json::Value, Failure> + Send + 'static,
    ) -> Result<Operation, ApiError> {
        let id = {
            let mut entries = self.lock();
            if let Some(d) = deployment
                && let Some(busy) =
                    entries.values().find(|e| !e.op.state.finished() && e.op.deployment.as_deref() == Some(d))
            {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "operation.conflict",
                    format!(
                        "`{d}` is busy with operation {} ({}, {}); wait for it or cancel it first",
                        busy.op.id,
                        busy.op.kind,
                        busy.op.progress.as_deref().unwrap_or("starting")
                    ),
                ));
            }
            let finished: Vec<String> =
                entries.values().filter(|e| e.op.state.finished()).map(|e| e.op.id.clone()).collect();
            for old in finished.iter().take(finished.len().saturating_sub(KEEP_FINISHED)) {
                entries.remove(old);
                let _ = std::fs::remove_file(self.dir.join(format!("{old}.json")));
            }
            let id = new_id();
            let op = Operation {
                id: id.clone(),
                kind: kind.to_owned(),
                deployment: deployment.map(str::to_owned),
                state: JobState::Running,
                progress: None,
                cancel_requested: false,
                created_ms: now_ms(),
                finished_ms: None,
                token_id: token_id.to_owned(),
                result: None,
                error: None,
            };
            write(&self.dir, &op).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "operation.store",
                    format!("cannot record the operation in `{}`: {e}", self.dir.display()),
                )
            })?;
            entries.insert(id.clone(), Entry { op, cancel: Arc::new(AtomicBool::new(false)) });
            id
        };
        let cancel = self.lock().get(&id).map(|e| e.cancel.clone()).unwrap_or_default();
        let handle = JobHandle { jobs: self.clone(), id: id.clone(), cancel };
        let started = self.get(&id);
        tokio::task::spawn_blocking(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&handle)))
                .unwrap_or_else(|payload| Err(Failure::panicked("the operation", payload.as_ref())));
            let cancelled = handle.cancel.load(Ordering::Relaxed);
            handle.jobs.update(&handle.id, |op| {
                // Marked interrupted at shutdown: that record stands.
                if op.state.finished() {
                    return;
                }
                op.finished_ms = Some(now_ms());
                match outcome {
                    Ok(value) => {
                        op.state = JobState::Succeeded;
                        op.result = Some(value);
                    }
                    Err(f) => {
                        op.state = if cancelled { JobState::Cancelled } else { JobState::Failed };
                        op.error = Some(ApiError::from(f).0);
                    }
                }
            });
        });
        started.ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "operation.lost", "the job vanished"))
    }
}

fn interrupted() -> Problem {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "operation.interrupted",
        "the server stopped while this operation ran; run it again to finish it (every operation can be run \
         again after an interruption)",
    )
    .0
}

fn new_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        b = now_ms().to_le_bytes();
    }
    format!("op-{}", hex::encode(b))
}

fn write(dir: &Path, op: &Operation) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let text = serde_json::to_vec_pretty(op).unwrap_or_default();
    let tmp = dir.join(format!(".{}.tmp", op.id));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, dir.join(format!("{}.json", op.id)))
}

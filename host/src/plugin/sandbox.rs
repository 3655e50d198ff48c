//! One plugin call's world: the store data (WASI context granting nothing,
//! captured stdio, log lines, the renderer), the resource limiter, and the
//! fixed clocks and random seed that make outputs byte-identical.

use super::Limits;
use crate::templates::{RenderError, Renderer};
use redplate_config::Severity;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

/// The wall clock every plugin sees: 2000-01-01T00:00:00Z, always.
const FIXED_WALL_CLOCK: Duration = Duration::from_secs(946_684_800);
/// The seed of every random source a plugin sees.
const FIXED_SEED: u64 = 0x7265_6470_6c61_7465; // "redplate"

/// A line a plugin logged, through `log` or by printing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// Severity (`info` for stdout, `warning` for stderr).
    pub level: Severity,
    /// The text.
    pub message: String,
}

/// The store's data for one call.
pub(super) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limiter: Limiter,
    pub(super) renderer: Arc<Renderer>,
    pub(super) logs: Vec<LogLine>,
    pub(super) log_bytes: usize,
    pub(super) logs_dropped: usize,
    pub(super) max_log_bytes: usize,
    pub(super) render_overflow: bool,
    pub(super) stdout: MemoryOutputPipe,
    pub(super) stderr: MemoryOutputPipe,
}

impl State {
    pub(super) fn new(limits: &Limits, renderer: Arc<Renderer>) -> Self {
        use rand::SeedableRng;
        let stdout = MemoryOutputPipe::new(limits.max_stdio_bytes);
        let stderr = MemoryOutputPipe::new(limits.max_stdio_bytes);
        // The builder's defaults grant nothing: no preopens, no env, no args,
        // no sockets. Clocks and randomness are replaced by fixed ones.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FixedWallClock)
            .monotonic_clock(FixedMonotonicClock)
            .secure_random(rand::rngs::StdRng::seed_from_u64(FIXED_SEED))
            .insecure_random(rand::rngs::StdRng::seed_from_u64(FIXED_SEED ^ 1))
            .insecure_random_seed(u128::from(FIXED_SEED))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        State {
            wasi,
            table: ResourceTable::new(),
            limiter: Limiter::new(limits.memory_bytes),
            renderer,
            logs: Vec::new(),
            log_bytes: 0,
            logs_dropped: 0,
            max_log_bytes: limits.max_log_bytes,
            render_overflow: false,
            stdout,
            stderr,
        }
    }

    /// Keeps a log line unless the log cap is reached (then counts it).
    pub(super) fn push_log(&mut self, level: Severity, message: String) {
        let message = crate::text::clean(&message, crate::text::MAX_MESSAGE_BYTES);
        if self.log_bytes + message.len() > self.max_log_bytes {
            self.logs_dropped += 1;
            return;
        }
        self.log_bytes += message.len();
        self.logs.push(LogLine { level, message });
    }

    /// The host's `render` import.
    pub(super) fn render(&mut self, name: &str, template: &str, data_json: &str) -> Result<String, String> {
        match self.renderer.render(name, template, data_json) {
            Ok(text) => Ok(text),
            Err(e) => {
                if matches!(e, RenderError::TooLarge { .. }) {
                    // Remembered so the call fails however the plugin reacts.
                    self.render_overflow = true;
                }
                Err(e.to_string())
            }
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// [`StoreLimits`] plus what the report needs: the peak linear memory and
/// whether the cap was hit (so the failure is named, not a generic trap).
pub(super) struct Limiter {
    inner: StoreLimits,
    pub(super) peak_memory: usize,
    pub(super) cap_hit: bool,
}

impl Limiter {
    fn new(memory_bytes: usize) -> Self {
        let inner = StoreLimitsBuilder::new()
            .memory_size(memory_bytes)
            .table_elements(1_000_000)
            .instances(64)
            .memories(16)
            .tables(64)
            .trap_on_grow_failure(true)
            .build();
        Limiter { inner, peak_memory: 0, cap_hit: false }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        match self.inner.memory_growing(current, desired, maximum) {
            Ok(true) => {
                self.peak_memory = self.peak_memory.max(desired);
                Ok(true)
            }
            other => {
                self.cap_hit = true;
                other
            }
        }
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

struct FixedWallClock;
impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        FIXED_WALL_CLOCK
    }
}

struct FixedMonotonicClock;
impl HostMonotonicClock for FixedMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

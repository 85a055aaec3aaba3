//! Where the commands' log lines go: stderr, written in batches by a background thread.
//!
//! Each event is still formatted on the thread that logs it (so fields are read while they are
//! current), but the write to stderr happens off the request path: a per-exchange access line
//! costs an append to a buffer instead of a `write(2)` that may wake the reader of a pipe on
//! another CPU. The background thread writes what is pending every [`FLUSH_EVERY`] (or every
//! `MCP_PII_LOG_FLUSH_MS` milliseconds; `0` writes each line at once, on the thread that logs
//! it), or sooner when [`WAKE_AT`] bytes are waiting.
//!
//! Nothing is dropped and order is kept:
//! - `WARN` and `ERROR` events are written at once, after everything logged before them.
//! - When more than [`MAX_PENDING`] bytes are waiting (stderr slower than the traffic), the
//!   logging thread writes them itself, as an unbuffered writer would.
//! - Dropping the [`FlushGuard`] writes what is pending and stops the thread; afterwards every
//!   event is written at once.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// The environment variable that overrides [`FLUSH_EVERY`], in milliseconds.
pub const FLUSH_ENV: &str = "MCP_PII_LOG_FLUSH_MS";
/// The longest an `INFO` line waits before it is written, by default.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Pending bytes that wake the background thread before [`FLUSH_EVERY`].
pub const WAKE_AT: usize = 64 * 1024;
/// Pending bytes beyond which the logging thread writes them itself.
pub const MAX_PENDING: usize = 1024 * 1024;

type Sink = Box<dyn Write + Send>;

struct Shared {
    every: Duration,
    pending: Mutex<Vec<u8>>,
    wake: Condvar,
    closed: AtomicBool,
    /// The output; holding it while taking `pending` keeps batches in order.
    out: Mutex<Sink>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Writes everything pending, now, on the calling thread.
    fn write_pending(&self) {
        let mut out = lock(&self.out);
        let data = std::mem::take(&mut *lock(&self.pending));
        if !data.is_empty() {
            // As with an unbuffered stderr, a failed log write is not the request's failure.
            let _ = out.write_all(&data);
            let _ = out.flush();
        }
    }
}

/// The `MakeWriter` for a `tracing_subscriber::fmt` subscriber; see the [module docs](self).
#[derive(Clone)]
pub struct BatchedLog {
    shared: Arc<Shared>,
}

/// Writes what is pending and stops the background thread when dropped.
pub struct FlushGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchedLog {
    /// A batched log to stderr, written every [`FLUSH_EVERY`] or as `MCP_PII_LOG_FLUSH_MS` says.
    /// Returns an error message for a value that is not a number of milliseconds.
    pub fn stderr() -> Result<(BatchedLog, FlushGuard), String> {
        let every = match std::env::var(FLUSH_ENV) {
            Ok(v) => Duration::from_millis(
                v.trim()
                    .parse()
                    .map_err(|_| format!("{FLUSH_ENV}={v:?}: expected a number of milliseconds"))?,
            ),
            Err(_) => FLUSH_EVERY,
        };
        Ok(BatchedLog::to(Box::new(std::io::stderr()), every))
    }

    /// A log to `sink`, written every `every` (`ZERO`: each event at once).
    pub fn to(sink: Sink, every: Duration) -> (BatchedLog, FlushGuard) {
        let shared = Arc::new(Shared {
            every,
            pending: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            closed: AtomicBool::new(false),
            out: Mutex::new(sink),
        });
        let s = shared.clone();
        let thread = if every.is_zero() {
            None
        } else {
            std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || run(&s))
                .ok()
        };
        if thread.is_none() {
            // No thread: write every event at once.
            shared.closed.store(true, Ordering::SeqCst);
        }
        let guard = FlushGuard {
            shared: shared.clone(),
            thread,
        };
        (BatchedLog { shared }, guard)
    }
}

fn run(shared: &Shared) {
    loop {
        let closed = {
            let pending = lock(&shared.pending);
            let closed = shared.closed.load(Ordering::SeqCst);
            if !closed && pending.len() < WAKE_AT {
                let _ = shared.wake.wait_timeout(pending, shared.every);
            }
            shared.closed.load(Ordering::SeqCst)
        };
        shared.write_pending();
        if closed {
            return;
        }
    }
}

impl FlushGuard {
    /// Writes what is pending now (say, the start-up lines, before serving).
    pub fn flush(&self) {
        self.shared.write_pending();
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        {
            let _pending = lock(&self.shared.pending);
            self.shared.closed.store(true, Ordering::SeqCst);
            self.shared.wake.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.write_pending();
    }
}

/// The writer for one event.
pub struct EventWriter {
    shared: Arc<Shared>,
    urgent: bool,
}

impl Write for EventWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let now = {
            let mut pending = lock(&self.shared.pending);
            pending.extend_from_slice(buf);
            let now = self.urgent || pending.len() > MAX_PENDING || self.shared.closed.load(Ordering::SeqCst);
            if !now && pending.len() >= WAKE_AT {
                self.shared.wake.notify_one();
            }
            now
        };
        if now {
            self.shared.write_pending();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedLog {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter {
            shared: self.shared.clone(),
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> EventWriter {
        EventWriter {
            shared: self.shared.clone(),
            urgent: *meta.level() <= tracing::Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Capture {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn subscriber(log: BatchedLog) -> impl tracing::Subscriber + Send + Sync {
        tracing_subscriber::fmt()
            .with_writer(log)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish()
    }

    #[test]
    fn the_guard_writes_what_is_pending_in_order() {
        let cap = Capture::default();
        let (log, guard) = BatchedLog::to(Box::new(cap.clone()), FLUSH_EVERY);
        tracing::subscriber::with_default(subscriber(log), || {
            tracing::info!("first");
            tracing::info!("second");
        });
        drop(guard);
        let text = cap.text();
        let (a, b) = (text.find("first").unwrap(), text.find("second").unwrap());
        assert!(a < b, "{text}");
    }

    #[test]
    fn a_warning_is_written_at_once_after_what_came_before() {
        let cap = Capture::default();
        let (log, guard) = BatchedLog::to(Box::new(cap.clone()), FLUSH_EVERY);
        tracing::subscriber::with_default(subscriber(log), || {
            tracing::info!("before");
            tracing::warn!("careful");
            // Written by the warning's own thread, not the background one.
            let text = cap.text();
            assert!(text.contains("careful"), "{text:?}");
            assert!(
                text.find("before").unwrap() < text.find("careful").unwrap(),
                "{text}"
            );
        });
        drop(guard);
    }

    #[test]
    fn the_background_thread_writes_info_lines_within_the_interval() {
        let cap = Capture::default();
        let (log, guard) = BatchedLog::to(Box::new(cap.clone()), FLUSH_EVERY);
        tracing::subscriber::with_default(subscriber(log), || tracing::info!("soon"));
        let deadline = std::time::Instant::now() + FLUSH_EVERY * 40;
        while !cap.text().contains("soon") {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(guard);
    }

    #[test]
    fn over_the_limit_the_logging_thread_writes_itself() {
        let cap = Capture::default();
        let (log, guard) = BatchedLog::to(Box::new(cap.clone()), FLUSH_EVERY);
        let mut w = log.make_writer();
        let chunk = vec![b'x'; MAX_PENDING + 1];
        w.write_all(&chunk).unwrap();
        assert_eq!(cap.0.lock().unwrap().len(), MAX_PENDING + 1);
        drop(guard);
    }

    #[test]
    fn zero_writes_each_event_at_once() {
        let cap = Capture::default();
        let (log, guard) = BatchedLog::to(Box::new(cap.clone()), Duration::ZERO);
        tracing::subscriber::with_default(subscriber(log), || tracing::info!("now"));
        assert!(cap.text().contains("now"));
        drop(guard);
    }

    #[test]
    fn after_the_guard_every_event_is_written_at_once() {
        let cap = Capture::default();
        let (log, guard) = BatchedLog::to(Box::new(cap.clone()), FLUSH_EVERY);
        drop(guard);
        tracing::subscriber::with_default(subscriber(log), || tracing::info!("late"));
        assert!(cap.text().contains("late"));
    }
}

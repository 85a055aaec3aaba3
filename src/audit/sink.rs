//! Where records go: the [`AuditSink`] trait, the JSON Lines [`FileSink`] and the in-memory
//! [`MemorySink`].

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::log::{self, Line};
use super::{canonical_hash, Chain, Record, RecordType};
use crate::error::{Error, Result};

/// A destination for audit records. It assigns `seq`, `time`, `prev_hash` and `hash` (so the
/// chain stays in one place) and returns the sealed record.
///
/// `append` must return only once the record is written as durably as the sink promises: the
/// caller releases the response the record describes only after it returns `Ok`. On `Err` the
/// caller must fail closed (reject the request; never forward unaudited).
///
/// Implementations do blocking I/O at most as small as one line; async callers with slow
/// sinks should wrap calls in `spawn_blocking`.
pub trait AuditSink: Send + Sync + 'static {
    /// Seals and writes one record.
    fn append(&self, record: Record) -> Result<Record>;

    /// A number that changes whenever the sink starts a new file (rotation), so that writers
    /// keeping per-file state (the [`Auditor`](super::Auditor)'s policy records) can write it
    /// again into the new file. Default: never changes.
    fn generation(&self) -> u64 {
        0
    }
}

impl<S: AuditSink + ?Sized> AuditSink for std::sync::Arc<S> {
    fn append(&self, record: Record) -> Result<Record> {
        (**self).append(record)
    }
    fn generation(&self) -> u64 {
        (**self).generation()
    }
}

/// When the file sink calls `fsync` (`sync_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// After every record: survives power loss, slowest.
    Always,
    /// At most once per interval, on the write path (default): a power loss may lose the last
    /// interval's records; a process crash loses nothing (every record is written to the OS
    /// before `append` returns).
    #[default]
    Interval,
    /// Never explicitly (the OS decides).
    Never,
}

/// How a [`FileSink`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSinkOptions {
    /// When to fsync. Default: [`FsyncPolicy::Interval`].
    pub fsync: FsyncPolicy,
    /// The interval for [`FsyncPolicy::Interval`]. Default: 1 s.
    pub fsync_interval: Duration,
    /// Rotate the active file before a record would take it past this size; 0 never rotates.
    /// Default: 100 MiB.
    pub rotate_bytes: u64,
}

impl Default for FileSinkOptions {
    fn default() -> Self {
        FileSinkOptions {
            fsync: FsyncPolicy::Interval,
            fsync_interval: Duration::from_secs(1),
            rotate_bytes: DEFAULT_ROTATE_BYTES,
        }
    }
}

const DEFAULT_ROTATE_BYTES: u64 = 100 * 1024 * 1024;

fn default_rotate_bytes() -> u64 {
    DEFAULT_ROTATE_BYTES
}
fn default_fsync_interval_ms() -> u64 {
    1000
}
fn default_key_env() -> String {
    "MCP_PII_AUDIT_KEY".to_owned()
}

/// The `[audit]` table of `gateway.toml`.
///
/// ```
/// use mcp_pii_gateway::audit::{AuditConfig, FsyncPolicy};
/// let c: AuditConfig = toml::from_str(r#"
///     path = "audit/gateway.jsonl"
///     fsync = "always"
/// "#).unwrap();
/// assert_eq!(c.fsync, FsyncPolicy::Always);
/// assert_eq!(c.key_env, "MCP_PII_AUDIT_KEY");
/// assert!(c.validate().is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The active log file; rotated files sit beside it as `<name>.<first seq, 12 digits>`.
    pub path: PathBuf,
    /// `always` | `interval` | `never`. Default: `interval`.
    #[serde(default)]
    pub fsync: FsyncPolicy,
    /// Interval for `fsync = "interval"`, in milliseconds. Default: 1000.
    #[serde(default = "default_fsync_interval_ms")]
    pub fsync_interval_ms: u64,
    /// Rotation size in bytes; 0 disables rotation. Default: 104857600 (100 MiB).
    #[serde(default = "default_rotate_bytes")]
    pub rotate_bytes: u64,
    /// Environment variable holding the fingerprint key (hex or text, at least 16 bytes).
    /// Default: `MCP_PII_AUDIT_KEY`.
    #[serde(default = "default_key_env")]
    pub key_env: String,
}

impl AuditConfig {
    /// Every problem with this configuration (empty when valid), prefixed `audit.`.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.path.as_os_str().is_empty() {
            problems.push("audit.path: must not be empty".to_owned());
        } else if self.path.file_name().is_none() {
            problems.push(format!(
                "audit.path: `{}` does not name a file",
                self.path.display()
            ));
        }
        if self.fsync == FsyncPolicy::Interval && self.fsync_interval_ms == 0 {
            problems.push("audit.fsync_interval_ms: must be positive (or use fsync = \"always\")".to_owned());
        }
        if self.rotate_bytes != 0 && self.rotate_bytes < 4096 {
            problems.push("audit.rotate_bytes: must be 0 (no rotation) or at least 4096".to_owned());
        }
        if self.key_env.is_empty() {
            problems.push("audit.key_env: must name an environment variable".to_owned());
        }
        problems
    }
    /// The sink options.
    pub fn sink_options(&self) -> FileSinkOptions {
        FileSinkOptions {
            fsync: self.fsync,
            fsync_interval: Duration::from_millis(self.fsync_interval_ms),
            rotate_bytes: self.rotate_bytes,
        }
    }
    /// Opens the file sink at `path` (relative paths against `base_dir`).
    pub fn open_sink(&self, base_dir: &Path) -> Result<FileSink> {
        FileSink::open(base_dir.join(&self.path), self.sink_options())
    }
    /// The fingerprinter keyed from `key_env`.
    pub fn fingerprinter(&self) -> Result<super::Fingerprinter> {
        super::Fingerprinter::from_env(&self.key_env)
    }
}

/// Records in memory, chained like the file. For tests and for embedding where the records are
/// shipped elsewhere.
#[derive(Debug)]
pub struct MemorySink {
    inner: Mutex<(Chain, Vec<Record>)>,
}

impl Default for MemorySink {
    fn default() -> Self {
        MemorySink::new()
    }
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> MemorySink {
        MemorySink {
            inner: Mutex::new((Chain::genesis(), Vec::new())),
        }
    }
    /// The records so far.
    pub fn records(&self) -> Vec<Record> {
        self.inner.lock().map(|g| g.1.clone()).unwrap_or_default()
    }
    /// The records so far as JSON lines.
    pub fn lines(&self) -> Vec<String> {
        self.records().iter().map(Record::to_line).collect()
    }
}

impl AuditSink for MemorySink {
    fn append(&self, mut record: Record) -> Result<Record> {
        let mut g = self
            .inner
            .lock()
            .map_err(|_| Error::audit("memory sink lock poisoned"))?;
        g.0.seal(&mut record);
        g.0.advance(&record);
        g.1.push(record.clone());
        Ok(record)
    }
}

/// The append-only JSON Lines file sink.
///
/// - Each record is one `write` of one line, made before [`append`](AuditSink::append) returns;
///   fsync follows [`FsyncPolicy`].
/// - Rotation by size: the active file is renamed to `<name>.<first seq as 12 digits>` and a
///   new one started; the chain continues (the new file's first record links to the old file's
///   last).
/// - On open, the chain's tail is recovered from the existing files. A torn last line (crash
///   mid-write) is left in place, terminated, and sealed by a `recovery` record holding its
///   SHA-256, so `audit verify` accepts it knowingly; any other damage to the active file
///   refuses to open (fail closed).
/// - A failed write is rolled back (truncated); if that fails too the sink refuses every later
///   record.
#[derive(Debug)]
pub struct FileSink {
    path: PathBuf,
    opts: FileSinkOptions,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    file: File,
    size: u64,
    first_seq: Option<u64>,
    chain: Chain,
    last_sync: Instant,
    dirty: bool,
    failed: Option<String>,
    generation: u64,
}

/// What the active file's scan found.
struct Tail {
    chain: Option<Chain>,
    first_seq: Option<u64>,
    torn: Option<Line>,
}

fn sink_err(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::audit(format!("{} {}: {e}", what, path.display()))
}

/// Checks the lines of one file: internal links, sequence and hashes; returns its tail.
fn scan_file(path: &Path) -> Result<Tail> {
    let mut tail = Tail {
        chain: None,
        first_seq: None,
        torn: None,
    };
    if !path.exists() {
        return Ok(tail);
    }
    let mut lines = log::open(&[path.to_path_buf()])?.peekable();
    while let Some(line) = lines.next() {
        let line = line?;
        let last = lines.peek().is_none();
        let rec = line.json();
        let Some(v) = rec else {
            if last {
                tail.torn = Some(line.clone());
                break;
            }
            // A sealed torn line is fine: the next line is its recovery record (checked below).
            let next = lines.peek().and_then(|l| l.as_ref().ok()).and_then(Line::record);
            let sealed = next.is_some_and(|r| {
                r.record_type == RecordType::Recovery
                    && r.torn_len == Some(line.bytes.len() as u64)
                    && r.torn_sha256.as_deref()
                        == Some(
                            hex::encode(ring::digest::digest(&ring::digest::SHA256, &line.bytes)).as_str(),
                        )
            });
            if sealed {
                continue;
            }
            return Err(Error::audit(format!(
                "{}: is not a record; refusing to append to a damaged log (run `mcp-pii-gateway audit verify`)",
                line.location()
            )));
        };
        let seq = v.get("seq").and_then(|s| s.as_u64());
        let prev = v.get("prev_hash").and_then(|s| s.as_str());
        let hash = v.get("hash").and_then(|s| s.as_str());
        let ok_hash = hash == Some(canonical_hash(&v).as_str());
        let ok_link = match &tail.chain {
            None => seq.is_some() && prev.is_some(),
            Some(c) => seq == Some(c.next_seq) && prev == Some(c.prev_hash.as_str()),
        };
        let (Some(seq), Some(hash), true) = (seq, hash, ok_hash && ok_link) else {
            if last && !line.terminated {
                tail.torn = Some(line.clone());
                break;
            }
            return Err(Error::audit(format!(
                "{}: the hash chain is broken; refusing to append to a damaged log (run `mcp-pii-gateway audit verify {}`)",
                line.location(),
                path.display()
            )));
        };
        if tail.first_seq.is_none() {
            tail.first_seq = Some(seq);
        }
        tail.chain = Some(Chain {
            next_seq: seq + 1,
            prev_hash: hash.to_owned(),
        });
        if last && !line.terminated {
            // A complete record whose newline never made it: keep it, add the newline.
            tail.torn = Some(Line {
                bytes: Vec::new(),
                ..line.clone()
            });
        }
    }
    Ok(tail)
}

fn rotated_name(path: &Path, first_seq: u64) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::audit(format!("{} does not name a file", path.display())))?;
    Ok(path.with_file_name(format!("{}.{first_seq:012}", name.to_string_lossy())))
}

/// The rotated files beside `path`, ordered by first seq.
pub(crate) fn rotated_files(path: &Path) -> Result<Vec<PathBuf>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(sink_err(&dir, "cannot list", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| sink_err(&dir, "cannot list", e))?;
        let fname = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = fname.strip_prefix(&name).and_then(|r| r.strip_prefix('.')) {
            if rest.len() == 12 && rest.bytes().all(|b| b.is_ascii_digit()) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn sync_dir(path: &Path) {
    // Best effort: makes a rename durable on Unix; not supported everywhere.
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

impl FileSink {
    /// Opens (or creates) the log at `path`, recovering the chain's tail from the active file
    /// or, when it is empty, from the newest rotated file.
    pub fn open(path: impl Into<PathBuf>, opts: FileSinkOptions) -> Result<FileSink> {
        let path = path.into();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| sink_err(dir, "cannot create directory", e))?;
            }
        }
        let tail = scan_file(&path)?;
        let chain = match tail.chain.clone() {
            Some(c) => c,
            None => match rotated_files(&path)?.last() {
                Some(prev) => {
                    let ptail = scan_file(prev)?;
                    if ptail.torn.is_some() {
                        return Err(Error::audit(format!(
                            "{} (a rotated file) ends in a torn line; run `mcp-pii-gateway audit verify`",
                            prev.display()
                        )));
                    }
                    ptail.chain.unwrap_or_else(Chain::genesis)
                }
                None => Chain::genesis(),
            },
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| sink_err(&path, "cannot open", e))?;
        let size = file
            .metadata()
            .map_err(|e| sink_err(&path, "cannot stat", e))?
            .len();
        let sink = FileSink {
            path: path.clone(),
            opts,
            state: Mutex::new(State {
                file,
                size,
                first_seq: tail.first_seq,
                chain,
                last_sync: Instant::now(),
                dirty: false,
                failed: None,
                generation: 0,
            }),
        };
        if let Some(torn) = tail.torn {
            let mut st = sink.lock()?;
            if !torn.terminated || torn.bytes.is_empty() {
                st.file
                    .write_all(b"\n")
                    .and_then(|_| st.file.sync_data())
                    .map_err(|e| sink_err(&path, "cannot repair", e))?;
                st.size += 1;
            }
            if !torn.bytes.is_empty() {
                let mut r = Record::new(RecordType::Recovery);
                r.torn_sha256 = Some(hex::encode(ring::digest::digest(
                    &ring::digest::SHA256,
                    &torn.bytes,
                )));
                r.torn_len = Some(torn.bytes.len() as u64);
                sink.write(&mut st, r, true)?;
            }
        }
        Ok(sink)
    }

    /// The active file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every file of this log, oldest first (rotated files, then the active one).
    pub fn files(&self) -> Result<Vec<PathBuf>> {
        let mut f = rotated_files(&self.path)?;
        f.push(self.path.clone());
        Ok(f)
    }

    /// Forces an fsync of everything written so far.
    pub fn sync(&self) -> Result<()> {
        let mut st = self.lock()?;
        st.file
            .sync_data()
            .map_err(|e| sink_err(&self.path, "cannot sync", e))?;
        st.dirty = false;
        st.last_sync = Instant::now();
        Ok(())
    }

    /// Syncs when `fsync = "interval"` and records written since the last sync are older than
    /// the interval. Call it from a periodic task so a quiet log does not keep unsynced records.
    pub fn sync_if_due(&self) -> Result<()> {
        let mut st = self.lock()?;
        if st.dirty
            && self.opts.fsync == FsyncPolicy::Interval
            && st.last_sync.elapsed() >= self.opts.fsync_interval
        {
            st.file
                .sync_data()
                .map_err(|e| sink_err(&self.path, "cannot sync", e))?;
            st.dirty = false;
            st.last_sync = Instant::now();
        }
        Ok(())
    }

    /// The last record written (its seq and hash), `None` for an empty log. Export it
    /// (metrics, another system's log) to anchor the log against truncation.
    pub fn head(&self) -> Result<Option<super::Anchor>> {
        let st = self.lock()?;
        Ok((st.chain.next_seq > 1).then(|| super::Anchor {
            seq: st.chain.next_seq - 1,
            hash: st.chain.prev_hash.clone(),
        }))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::audit("audit sink lock poisoned"))
    }

    fn rotate(&self, st: &mut State) -> Result<()> {
        let Some(first) = st.first_seq else {
            return Ok(());
        };
        if self.opts.fsync != FsyncPolicy::Never {
            st.file
                .sync_all()
                .map_err(|e| sink_err(&self.path, "cannot sync", e))?;
        }
        let target = rotated_name(&self.path, first)?;
        if target.exists() {
            return Err(Error::audit(format!(
                "cannot rotate: {} already exists",
                target.display()
            )));
        }
        std::fs::rename(&self.path, &target).map_err(|e| sink_err(&self.path, "cannot rotate", e))?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| sink_err(&self.path, "cannot open", e))?;
        if self.opts.fsync != FsyncPolicy::Never {
            sync_dir(&self.path);
        }
        st.file = file;
        st.size = 0;
        st.first_seq = None;
        st.dirty = false;
        st.generation += 1;
        Ok(())
    }

    fn write(&self, st: &mut State, mut record: Record, force_sync: bool) -> Result<Record> {
        if let Some(why) = &st.failed {
            return Err(Error::audit(format!(
                "the audit log is unusable after an earlier failure: {why}"
            )));
        }
        st.chain.seal(&mut record);
        let mut line = record.to_line();
        line.push('\n');
        let len = line.len() as u64;
        if self.opts.rotate_bytes > 0 && st.size > 0 && st.size + len > self.opts.rotate_bytes {
            self.rotate(st)?;
        }
        if let Err(e) = st.file.write_all(line.as_bytes()) {
            // Roll back a partial line so the next record starts on a clean line.
            if let Err(e2) = st.file.set_len(st.size) {
                st.failed = Some(format!("write failed ({e}) and could not be rolled back ({e2})"));
            }
            return Err(sink_err(&self.path, "cannot write", e));
        }
        st.size += len;
        if st.first_seq.is_none() {
            st.first_seq = Some(record.seq);
        }
        st.chain.advance(&record);
        st.dirty = true;
        let sync = force_sync
            || match self.opts.fsync {
                FsyncPolicy::Always => true,
                FsyncPolicy::Interval => st.last_sync.elapsed() >= self.opts.fsync_interval,
                FsyncPolicy::Never => false,
            };
        if sync {
            st.file
                .sync_data()
                .map_err(|e| sink_err(&self.path, "cannot sync", e))?;
            st.last_sync = Instant::now();
            st.dirty = false;
        }
        Ok(record)
    }
}

impl AuditSink for FileSink {
    fn append(&self, record: Record) -> Result<Record> {
        let mut st = self.lock()?;
        self.write(&mut st, record, false)
    }
    fn generation(&self) -> u64 {
        self.lock().map(|st| st.generation).unwrap_or(u64::MAX)
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if let Ok(st) = self.state.get_mut() {
            if st.dirty && self.opts.fsync != FsyncPolicy::Never {
                let _ = st.file.sync_data();
            }
        }
    }
}

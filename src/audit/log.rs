//! Reading audit files: lines with their location, files ordered by their first record.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

use super::Record;

/// One physical line of an audit file.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// The file it came from (`None` for in-memory lines).
    pub(crate) file: Option<PathBuf>,
    /// 1-based line number in that file.
    pub(crate) number: usize,
    /// The bytes, without the newline.
    pub(crate) bytes: Vec<u8>,
    /// False for a last line with no newline after it.
    pub(crate) terminated: bool,
}

impl Line {
    /// The line as a JSON object, if it is one.
    pub(crate) fn json(&self) -> Option<Value> {
        let v: Value = serde_json::from_slice(&self.bytes).ok()?;
        v.is_object().then_some(v)
    }
    /// The line as a [`Record`], if it is one.
    pub(crate) fn record(&self) -> Option<Record> {
        serde_json::from_slice(&self.bytes).ok()
    }
    /// Where it is, for messages: `file:line` or `line N`.
    pub(crate) fn location(&self) -> String {
        match &self.file {
            Some(f) => format!("{}:{}", f.display(), self.number),
            None => format!("line {}", self.number),
        }
    }
}

/// Streams the lines of one or more files, one line in memory at a time.
pub(crate) struct Lines {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(PathBuf, BufReader<File>, usize)>,
}

impl Iterator for Lines {
    type Item = Result<Line>;
    fn next(&mut self) -> Option<Result<Line>> {
        loop {
            if self.current.is_none() {
                let path = self.files.next()?;
                match File::open(&path) {
                    Ok(f) => self.current = Some((path, BufReader::new(f), 0)),
                    Err(e) => return Some(Err(Error::audit(format!("cannot read {}: {e}", path.display())))),
                }
            }
            let (path, reader, number) = self.current.as_mut().expect("set just above");
            let mut bytes = Vec::new();
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => self.current = None,
                Ok(_) => {
                    *number += 1;
                    let terminated = bytes.last() == Some(&b'\n');
                    if terminated {
                        bytes.pop();
                    }
                    return Some(Ok(Line {
                        file: Some(path.clone()),
                        number: *number,
                        bytes,
                        terminated,
                    }));
                }
                Err(e) => {
                    let msg = format!("cannot read {}: {e}", path.display());
                    self.current = None;
                    return Some(Err(Error::audit(msg)));
                }
            }
        }
    }
}

/// The `seq` of a file's first record: its first line, or (after a torn line sealed at
/// start-up) one of the next few.
fn first_seq(path: &Path) -> Result<Option<u64>> {
    let f = File::open(path).map_err(|e| Error::audit(format!("cannot read {}: {e}", path.display())))?;
    let mut reader = BufReader::new(f);
    for _ in 0..4 {
        let mut line = Vec::new();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::audit(format!("cannot read {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        if let Some(seq) = serde_json::from_slice::<Value>(&line)
            .ok()
            .and_then(|v| v.get("seq").and_then(Value::as_u64))
        {
            return Ok(Some(seq));
        }
    }
    Ok(None)
}

/// Streams the lines of `files`, files ordered by the `seq` of their first record (so a shell
/// glob that lists the active file before its rotated predecessors still reads in order).
/// Files whose first line is not a record keep their relative place at the end.
pub(crate) fn open(files: &[PathBuf]) -> Result<Lines> {
    let mut keyed = Vec::with_capacity(files.len());
    for f in files {
        keyed.push((first_seq(f)?.unwrap_or(u64::MAX), f.clone()));
    }
    keyed.sort_by_key(|(k, _)| *k);
    Ok(Lines {
        files: keyed.into_iter().map(|(_, f)| f).collect::<Vec<_>>().into_iter(),
        current: None,
    })
}

/// The chain a file belongs to: its path without a rotation suffix (`.<12 digits>`, see
/// `FileSink`). Replicas write one chain each (`audit.gw-1.jsonl`, `audit.gw-2.jsonl`).
pub(crate) fn chain_of(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The gateway's lock file (`audit.jsonl.lock`, empty) goes with its log.
    if let Some(base) = name.strip_suffix(".lock") {
        return path.with_file_name(base);
    }
    match name.rsplit_once('.') {
        Some((base, digits)) if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            path.with_file_name(base)
        }
        _ => path.to_path_buf(),
    }
}

/// `files` grouped by chain ([`chain_of`]), chains in the order first named.
pub(crate) fn chains(files: &[PathBuf]) -> Vec<(PathBuf, Vec<PathBuf>)> {
    let mut out: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    for f in files {
        let c = chain_of(f);
        match out.iter_mut().find(|(name, _)| *name == c) {
            Some((_, v)) => v.push(f.clone()),
            None => out.push((c, vec![f.clone()])),
        }
    }
    out
}

/// The lines of several chains merged by time: each chain read in order ([`open`]), the
/// record with the earliest `time` next (lines that are not records follow their chain's order).
pub(crate) fn open_merged(files: &[PathBuf]) -> Result<Merged> {
    let mut streams = Vec::new();
    for (_, chain) in chains(files) {
        streams.push((open(&chain)?, None));
    }
    Ok(Merged { streams })
}

/// See [`open_merged`].
pub(crate) struct Merged {
    streams: Vec<(Lines, Option<Result<Line>>)>,
}

fn ts_of(line: &Result<Line>) -> Option<String> {
    let v = line.as_ref().ok()?.json()?;
    v.get("time").and_then(Value::as_str).map(str::to_owned)
}

impl Iterator for Merged {
    type Item = Result<Line>;
    fn next(&mut self) -> Option<Result<Line>> {
        for (lines, head) in &mut self.streams {
            if head.is_none() {
                *head = lines.next();
            }
        }
        // RFC 3339 UTC timestamps (`time`) of one format sort as strings; a line without one goes
        // first.
        let mut best: Option<(usize, Option<String>)> = None;
        for (i, (_, head)) in self.streams.iter().enumerate() {
            let Some(line) = head else { continue };
            let ts = ts_of(line);
            let better = match &best {
                None => true,
                Some((_, b)) => match (&ts, b) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(t), Some(b)) => t < b,
                },
            };
            if better {
                let first_untimed = ts.is_none();
                best = Some((i, ts));
                if first_untimed {
                    break;
                }
            }
        }
        let (i, _) = best?;
        self.streams[i].1.take()
    }
}

/// In-memory lines (each one terminated), as a stream.
pub(crate) fn from_strings(lines: &[String]) -> impl Iterator<Item = Result<Line>> + '_ {
    lines.iter().enumerate().map(|(i, l)| {
        Ok(Line {
            file: None,
            number: i + 1,
            bytes: l.as_bytes().to_vec(),
            terminated: true,
        })
    })
}

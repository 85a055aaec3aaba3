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

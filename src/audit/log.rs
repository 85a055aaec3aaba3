//! Reading audit files: lines with their location, files ordered by their first record.

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

/// Splits file contents into lines; a last line without newline is marked unterminated.
pub(crate) fn split(file: Option<&Path>, bytes: &[u8]) -> Vec<Line> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut number = 1;
    while start < bytes.len() {
        match bytes[start..].iter().position(|b| *b == b'\n') {
            Some(n) => {
                out.push(Line {
                    file: file.map(Path::to_path_buf),
                    number,
                    bytes: bytes[start..start + n].to_vec(),
                    terminated: true,
                });
                start += n + 1;
            }
            None => {
                out.push(Line {
                    file: file.map(Path::to_path_buf),
                    number,
                    bytes: bytes[start..].to_vec(),
                    terminated: false,
                });
                start = bytes.len();
            }
        }
        number += 1;
    }
    out
}

fn first_seq(lines: &[Line]) -> Option<u64> {
    lines.first()?.json()?.get("seq")?.as_u64()
}

/// Reads `files` and returns their lines, files ordered by the `seq` of their first record (so
/// a shell glob that lists the active file before its rotated predecessors still reads in
/// order). Files whose first line is not a record keep their relative place at the end.
pub(crate) fn read(files: &[PathBuf]) -> Result<Vec<Line>> {
    let mut per_file = Vec::with_capacity(files.len());
    for f in files {
        let bytes =
            std::fs::read(f).map_err(|e| Error::audit(format!("cannot read {}: {e}", f.display())))?;
        per_file.push(split(Some(f), &bytes));
    }
    per_file.sort_by_key(|lines| first_seq(lines).unwrap_or(u64::MAX));
    Ok(per_file.into_iter().flatten().collect())
}

/// In-memory lines (each one terminated).
pub(crate) fn from_strings(lines: &[String]) -> Vec<Line> {
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| Line {
            file: None,
            number: i + 1,
            bytes: l.as_bytes().to_vec(),
            terminated: true,
        })
        .collect()
}

//! `audit verify`: checks the hash chain.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::log::{self, Line};
use super::{canonical_hash, GENESIS_HASH};
use crate::error::Result;

/// What is wrong at the first bad record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The record's content does not match its hash: it was edited.
    Edited,
    /// The record does not link to the previous record's hash.
    BrokenLink,
    /// The sequence number is not the next one: records were deleted, reordered or inserted
    /// (or the first file of the log is missing).
    Sequence,
    /// A complete line that is not a record.
    Unparsable,
    /// The log ends in a partly written line (no newline, or not a record): a crash mid-write or
    /// a truncation. Everything before it verified.
    TornTail,
    /// The log ends before an anchor (a `seq` and hash kept elsewhere): records were cut off its
    /// end, or the anchored record was replaced.
    Truncated,
}

/// A record known to be in the log: its `seq` and `hash`, as printed by an earlier `verify`
/// (`head`) and kept somewhere the log's writer cannot change. Whole records cut off the end of
/// the log leave no trace in the chain itself; an anchor catches that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    /// The anchored record's sequence number.
    pub seq: u64,
    /// Its hash.
    pub hash: String,
}

impl std::str::FromStr for Anchor {
    type Err = crate::Error;
    /// Parses `SEQ:HASH`.
    fn from_str(s: &str) -> Result<Anchor> {
        let bad = || crate::Error::bad_input("an anchor is SEQ:HASH (a decimal seq, 64 hex digits)");
        let (seq, hash) = s.split_once(':').ok_or_else(bad)?;
        let seq: u64 = seq.trim().parse().map_err(|_| bad())?;
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Anchor { seq, hash })
    }
}

/// The first bad record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The sequence number the bad record should have had (the first one not verified).
    pub seq: u64,
    /// What is wrong.
    pub kind: ProblemKind,
    /// Where: `file:line`.
    pub location: String,
    /// One sentence for people.
    pub message: String,
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records verified (the intact prefix when there is a problem).
    pub records: u64,
    /// Sequence number of the last verified record.
    pub last_seq: Option<u64>,
    /// Hash of the last verified record: keep it elsewhere to detect a later truncation.
    pub head_hash: Option<String>,
    /// Sequence numbers of recovery records that sealed off a torn write after a crash.
    pub recovered: Vec<u64>,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// True when the whole log verified.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            None => {
                write!(f, "intact: {} record(s)", self.records)?;
                if let (Some(seq), Some(h)) = (self.last_seq, &self.head_hash) {
                    write!(
                        f,
                        "; head {seq}:{h} (keep it elsewhere; pass it back with --anchor)"
                    )?;
                }
                if !self.recovered.is_empty() {
                    let seqs: Vec<String> = self.recovered.iter().map(u64::to_string).collect();
                    write!(
                        f,
                        "; torn write(s) after a crash sealed by recovery record(s) at seq {}",
                        seqs.join(", ")
                    )?;
                }
                Ok(())
            }
            Some(p) => {
                write!(
                    f,
                    "NOT intact: first bad record at seq {} ({}): {}",
                    p.seq, p.location, p.message
                )?;
                write!(f, "\n{} record(s) before it verified", self.records)?;
                if let Some(seq) = self.last_seq {
                    write!(f, " (last good seq {seq})")?;
                }
                Ok(())
            }
        }
    }
}

/// Verifies the chain across `files` (ordered by their first record; pass every file of the log,
/// rotated ones included).
pub fn verify(files: &[PathBuf]) -> Result<VerifyReport> {
    verify_all(log::open(files)?, &[])
}

/// Verifies each chain in `files` on its own (replicas write one chain each; files are grouped
/// by name, rotated files with their chain). One report per chain, named by its active file.
pub fn verify_chains(files: &[PathBuf]) -> Result<Vec<(PathBuf, VerifyReport)>> {
    log::chains(files)
        .into_iter()
        .map(|(name, chain)| Ok((name, verify_all(log::open(&chain)?, &[])?)))
        .collect()
}

/// [`verify`], and also checks that each anchor's record is in the log with that hash.
pub fn verify_anchored(files: &[PathBuf], anchors: &[Anchor]) -> Result<VerifyReport> {
    verify_all(log::open(files)?, anchors)
}

/// Verifies in-memory lines (for example [`MemorySink::lines`](super::MemorySink::lines)).
pub fn verify_lines(lines: &[String]) -> VerifyReport {
    verify_all(log::from_strings(lines), &[]).expect("reading in-memory lines cannot fail")
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b))
}

/// True when `next` is a recovery record sealing off exactly `torn`.
fn seals(next: Option<&Line>, torn: &Line) -> bool {
    let Some(v) = next.and_then(Line::json) else {
        return false;
    };
    v.get("type").and_then(|t| t.as_str()) == Some("recovery")
        && v.get("torn_sha256").and_then(|h| h.as_str()) == Some(sha256_hex(&torn.bytes).as_str())
        && v.get("torn_len").and_then(|n| n.as_u64()) == Some(torn.bytes.len() as u64)
}

pub(crate) fn verify_all(
    lines: impl Iterator<Item = Result<Line>>,
    anchors: &[Anchor],
) -> Result<VerifyReport> {
    let mut lines = lines.peekable();
    let mut end_location = "end of log".to_owned();
    let mut report = VerifyReport {
        records: 0,
        last_seq: None,
        head_hash: None,
        recovered: Vec::new(),
        problem: None,
    };
    let mut expected = 1u64;
    let mut prev = GENESIS_HASH.to_owned();
    while let Some(line) = lines.next() {
        let line = line?;
        let last = lines.peek().is_none();
        end_location = line.location();
        let fail = |kind, message: String| Problem {
            seq: expected,
            kind,
            location: line.location(),
            message,
        };
        if !line.terminated {
            report.problem = Some(if last {
                fail(
                    ProblemKind::TornTail,
                    "the log ends in a partly written line (no newline): crash mid-write or truncation"
                        .into(),
                )
            } else {
                fail(
                    ProblemKind::Unparsable,
                    "a file ends in a partly written line but is not the last file".into(),
                )
            });
            break;
        }
        let Some(v) = line.json() else {
            if seals(lines.peek().and_then(|l| l.as_ref().ok()), &line) {
                continue;
            }
            report.problem = Some(fail(
                if last {
                    ProblemKind::TornTail
                } else {
                    ProblemKind::Unparsable
                },
                if last {
                    "the last line is not a complete record: crash mid-write or truncation".into()
                } else {
                    "the line is not a JSON record".into()
                },
            ));
            break;
        };
        let Some(seq) = v.get("seq").and_then(|s| s.as_u64()) else {
            report.problem = Some(fail(
                ProblemKind::Unparsable,
                "the record has no numeric seq".into(),
            ));
            break;
        };
        if seq != expected {
            let message = if expected == 1 && report.records == 0 {
                format!("the log starts at seq {seq}, not 1: its first file(s) are missing")
            } else {
                format!(
                    "expected seq {expected}, found seq {seq}: records were deleted, reordered or inserted"
                )
            };
            report.problem = Some(fail(ProblemKind::Sequence, message));
            break;
        }
        if v.get("prev_hash").and_then(|h| h.as_str()) != Some(prev.as_str()) {
            report.problem = Some(fail(
                ProblemKind::BrokenLink,
                "prev_hash does not match the previous record's hash: a record before it was changed, or records were removed".into(),
            ));
            break;
        }
        let hash = canonical_hash(&v);
        if v.get("hash").and_then(|h| h.as_str()) != Some(hash.as_str()) {
            report.problem = Some(fail(
                ProblemKind::Edited,
                "the record's content does not match its hash: it was edited".into(),
            ));
            break;
        }
        if let Some(a) = anchors.iter().find(|a| a.seq == seq && a.hash != hash) {
            report.problem = Some(fail(
                ProblemKind::Truncated,
                format!(
                    "the anchor for seq {} names hash {}, the log holds another record there",
                    a.seq, a.hash
                ),
            ));
            break;
        }
        if v.get("type").and_then(|t| t.as_str()) == Some("recovery") {
            report.recovered.push(seq);
        }
        report.records += 1;
        report.last_seq = Some(seq);
        report.head_hash = Some(hash.clone());
        prev = hash;
        expected += 1;
    }
    if report.problem.is_none() {
        let end = report.last_seq.unwrap_or(0);
        if let Some(a) = anchors.iter().filter(|a| a.seq > end).min_by_key(|a| a.seq) {
            report.problem = Some(Problem {
                seq: end + 1,
                kind: ProblemKind::Truncated,
                location: end_location,
                message: format!(
                    "the log ends at seq {end} but an anchor names seq {}: records were cut off its end",
                    a.seq
                ),
            });
        }
    }
    Ok(report)
}

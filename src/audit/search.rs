//! `audit search`: the records of one value, found by its keyed fingerprint.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::log::{self, Line};
use super::{Fingerprinter, PlaceholderRecord, RecordType, Verdict};
use crate::error::Result;

/// One record that involves the searched value, reduced to what concerns that value: the
/// placeholder entries of other values, the scope fingerprint and untracked kinds are dropped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// Sequence number.
    pub seq: u64,
    /// Time.
    pub time: String,
    /// Record type.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// Client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Verdict>,
    /// Rule id. For a decision, the rule that decided this value's placeholder is in `restored`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// This value's entries among the minted placeholders.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub minted: Vec<PlaceholderRecord>,
    /// This value's entries among the restored placeholders.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<PlaceholderRecord>,
}

/// The result of [`search`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchReport {
    /// The matching records, in log order.
    pub hits: Vec<SearchHit>,
    /// Whether some `policy` record names the key used (`None` when the log records no key id).
    pub key_matches_log: Option<bool>,
    /// Lines that are not records.
    pub skipped_lines: u64,
}

impl fmt::Display for SearchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key_matches_log == Some(false) {
            writeln!(
                f,
                "warning: the log was written with a different fingerprint key; nothing can match"
            )?;
        }
        write!(f, "{} record(s) involve the value", self.hits.len())?;
        for h in &self.hits {
            let target = match &h.tool {
                Some(t) => format!("{}/{t}", h.server.as_deref().unwrap_or("-")),
                None => h.server.as_deref().unwrap_or("-").to_owned(),
            };
            let who = h.client.as_deref().unwrap_or("-");
            let mut parts: Vec<String> = Vec::new();
            for p in &h.minted {
                parts.push(format!(
                    "minted {} {} from {}",
                    p.placeholder,
                    p.kind,
                    p.origins.join(",")
                ));
            }
            for p in &h.restored {
                let verdict = match (h.record_type, p.allowed, &p.rule_id) {
                    (RecordType::Decision, Some(true), Some(r)) => format!("allowed ({r})"),
                    (RecordType::Decision, Some(false), Some(r)) => format!("denied ({r})"),
                    (RecordType::Decision, _, Some(r)) => format!("rule {r}"),
                    (RecordType::Disclosure, _, _) => "described".to_owned(),
                    _ => "restored".to_owned(),
                };
                parts.push(format!(
                    "{} {} from {}: {verdict}",
                    p.placeholder,
                    p.kind,
                    p.origins.join(",")
                ));
            }
            let tail = match (h.decision, &h.outcome) {
                (Some(d), _) => format!(
                    "; request {}",
                    if d == Verdict::Allow { "allowed" } else { "denied" }
                ),
                (None, Some(o)) => format!("; {o}"),
                (None, None) => String::new(),
            };
            let arrow = if h.minted.is_empty() { "->" } else { "<-" };
            write!(
                f,
                "\n  seq {} {} {} {who} {arrow} {target}: {}{tail}",
                h.seq,
                h.time,
                h.record_type.as_str(),
                parts.join("; ")
            )?;
        }
        Ok(())
    }
}

/// Finds the records of `value` in `files`, fingerprinting it with `fp` (the log's key).
pub fn search(files: &[PathBuf], value: &str, fp: &Fingerprinter) -> Result<SearchReport> {
    search_all(log::open_merged(files)?, value, fp)
}

/// [`search`] over in-memory lines.
pub fn search_lines(lines: &[String], value: &str, fp: &Fingerprinter) -> SearchReport {
    search_all(log::from_strings(lines), value, fp).expect("reading in-memory lines cannot fail")
}

fn search_all(
    lines: impl Iterator<Item = Result<Line>>,
    value: &str,
    fp: &Fingerprinter,
) -> Result<SearchReport> {
    let needle = fp.fingerprint(value);
    let key_id = fp.key_id();
    let mut report = SearchReport {
        hits: Vec::new(),
        key_matches_log: None,
        skipped_lines: 0,
    };
    for line in lines {
        let Some(rec) = line?.record() else {
            report.skipped_lines += 1;
            continue;
        };
        if let Some(k) = &rec.key_id {
            let m = *k == key_id;
            report.key_matches_log = Some(report.key_matches_log.unwrap_or(false) || m);
        }
        let mine = |ps: &[PlaceholderRecord]| -> Vec<PlaceholderRecord> {
            ps.iter()
                .filter(|p| p.fingerprint.as_deref() == Some(needle.as_str()))
                .cloned()
                .collect()
        };
        let minted = mine(&rec.minted);
        let restored = mine(&rec.restored);
        if minted.is_empty() && restored.is_empty() {
            continue;
        }
        report.hits.push(SearchHit {
            seq: rec.seq,
            time: rec.time,
            record_type: rec.record_type,
            client: rec.client,
            server: rec.server,
            method: rec.method,
            tool: rec.tool,
            decision: rec.decision,
            rule_id: rec.rule_id,
            outcome: rec.outcome,
            minted,
            restored,
        });
    }
    Ok(report)
}

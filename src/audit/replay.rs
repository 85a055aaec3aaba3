//! `audit replay`: re-evaluates every recorded decision.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::log::{self, Line};
use super::{Record, RecordType, Verdict};
use crate::detect::Kind;
use crate::error::Result;
use crate::policy::{FlowItem, FlowRequest, Policy};

/// One placeholder whose verdict or rule changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemChange {
    /// The placeholder.
    pub placeholder: String,
    /// Its kind.
    pub kind: String,
    /// Its origins.
    pub origins: Vec<String>,
    /// The recorded rule.
    pub old_rule: Option<String>,
    /// Whether the recorded rule let it go.
    pub old_allowed: Option<bool>,
    /// The rule under the replayed policy.
    pub new_rule: String,
    /// Whether the replayed policy allows it.
    pub new_allowed: bool,
}

/// A decision that comes out differently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// The decision record's sequence number.
    pub seq: u64,
    /// The target server.
    pub server: String,
    /// The tool.
    pub tool: Option<String>,
    /// The kinds of the placeholders in the request (distinct, sorted).
    pub kinds: Vec<String>,
    /// The origins of the placeholders in the request (distinct, sorted).
    pub origins: Vec<String>,
    /// Kinds of untracked PII in the request.
    pub untracked: Vec<String>,
    /// The recorded verdict.
    pub old_decision: Verdict,
    /// The recorded rule id.
    pub old_rule: String,
    /// The verdict now.
    pub new_decision: Verdict,
    /// The rule id now.
    pub new_rule: String,
    /// The placeholders whose verdict or rule changed.
    pub items: Vec<ItemChange>,
}

/// A decision record that could not be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreplayable {
    /// Its sequence number (0 when the line is not a record).
    pub seq: u64,
    /// Why.
    pub reason: String,
}

/// The result of [`replay`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Hash of the policy given instead of the recorded ones, if any.
    pub policy_override: Option<String>,
    /// Decision records replayed.
    pub decisions: u64,
    /// Those that came out the same.
    pub reproduced: u64,
    /// Those that did not.
    pub differences: Vec<Difference>,
    /// Decision records that could not be replayed (missing policy, bad record).
    pub unreplayable: Vec<Unreplayable>,
    /// Lines that are not records (a torn tail, for instance); `audit verify` says more.
    pub skipped_lines: u64,
}

impl ReplayReport {
    /// True when every decision was replayed and came out the same.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty() && self.unreplayable.is_empty()
    }
}

impl fmt::Display for ReplayReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let under = match &self.policy_override {
            Some(h) => format!("policy {}", &h[..h.len().min(12)]),
            None => "the recorded policies".to_owned(),
        };
        write!(
            f,
            "replayed {} decision(s) under {under}: {} reproduced, {} differ, {} not replayable",
            self.decisions,
            self.reproduced,
            self.differences.len(),
            self.unreplayable.len()
        )?;
        for d in &self.differences {
            let target = match &d.tool {
                Some(t) => format!("{}/{t}", d.server),
                None => d.server.clone(),
            };
            let mut what = if d.kinds.is_empty() {
                String::new()
            } else {
                let origins = if d.origins.is_empty() {
                    "-".to_owned()
                } else {
                    d.origins.join(",")
                };
                format!("{} from {origins}", d.kinds.join(","))
            };
            if !d.untracked.is_empty() {
                if !what.is_empty() {
                    what.push_str(", ");
                }
                what.push_str(&format!("untracked {}", d.untracked.join(",")));
            }
            write!(
                f,
                "\n  seq {} to {target} ({what}): {} ({}) -> {} ({})",
                d.seq,
                d.old_decision.as_str(),
                d.old_rule,
                d.new_decision.as_str(),
                d.new_rule
            )?;
            for c in &d.items {
                write!(
                    f,
                    "\n      {} {} from {}: {} -> {}{}",
                    c.placeholder,
                    c.kind,
                    if c.origins.is_empty() {
                        "-".to_owned()
                    } else {
                        c.origins.join(",")
                    },
                    c.old_rule.as_deref().unwrap_or("?"),
                    c.new_rule,
                    if c.new_allowed { "" } else { " (denied)" }
                )?;
            }
        }
        for u in &self.unreplayable {
            write!(f, "\n  seq {}: not replayable: {}", u.seq, u.reason)?;
        }
        if self.skipped_lines > 0 {
            write!(
                f,
                "\n  {} line(s) are not records; run `audit verify`",
                self.skipped_lines
            )?;
        }
        Ok(())
    }
}

/// Re-evaluates every decision in `files` under the policy each recorded (from the log's
/// `policy` records), or under `policy` when given.
pub fn replay(files: &[PathBuf], policy: Option<&Policy>) -> Result<ReplayReport> {
    replay_all(|| log::open_merged(files), policy)
}

/// [`replay`] over in-memory lines.
pub fn replay_lines(lines: &[String], policy: Option<&Policy>) -> ReplayReport {
    replay_all(|| Ok(log::from_strings(lines)), policy).expect("reading in-memory lines cannot fail")
}

fn sorted_distinct<'a>(it: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = it.map(str::to_owned).collect();
    v.sort();
    v.dedup();
    v
}

fn replay_all<I, F>(lines: F, policy: Option<&Policy>) -> Result<ReplayReport>
where
    I: Iterator<Item = Result<Line>>,
    F: Fn() -> Result<I>,
{
    let mut report = ReplayReport {
        policy_override: policy.map(|p| p.hash().to_owned()),
        decisions: 0,
        reproduced: 0,
        differences: Vec::new(),
        unreplayable: Vec::new(),
        skipped_lines: 0,
    };
    // First pass: every policy recorded anywhere in the given files (a decision's policy record
    // may sit in an earlier file than the decision).
    let mut recorded: HashMap<String, Result<Policy, String>> = HashMap::new();
    for line in lines()? {
        let Some(rec) = line?.record() else {
            continue;
        };
        if let (RecordType::Policy, Some(h), Some(text)) = (rec.record_type, &rec.policy_hash, &rec.policy) {
            if matches!(recorded.get(h), Some(Ok(_))) {
                continue;
            }
            let p = Policy::from_canonical(text)
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    if p.hash() == h {
                        Ok(p)
                    } else {
                        Err("the stored policy text does not match its hash".to_owned())
                    }
                });
            recorded.insert(h.clone(), p);
        }
    }
    for line in lines()? {
        let Some(rec) = line?.record() else {
            report.skipped_lines += 1;
            continue;
        };
        match rec.record_type {
            RecordType::Policy => {}
            RecordType::Decision => {
                report.decisions += 1;
                let seq = rec.seq;
                let pol = match policy {
                    Some(p) => Ok(p),
                    None => match rec.policy_hash.as_deref().map(|h| (h, recorded.get(h))) {
                        Some((_, Some(Ok(p)))) => Ok(p),
                        Some((_, Some(Err(e)))) => Err(format!("its policy record is unusable: {e}")),
                        Some((h, None)) => Err(format!(
                            "no policy record for hash {h} in the given files (pass the older files too, or --policy)"
                        )),
                        None => Err("it names no policy hash".to_owned()),
                    },
                };
                match pol.and_then(|p| replay_one(&rec, p)) {
                    Ok(None) => report.reproduced += 1,
                    Ok(Some(d)) => report.differences.push(d),
                    Err(reason) => report.unreplayable.push(Unreplayable { seq, reason }),
                }
            }
            RecordType::Exchange | RecordType::Recovery | RecordType::Disclosure => {}
        }
    }
    Ok(report)
}

fn replay_one(rec: &Record, policy: &Policy) -> Result<Option<Difference>, String> {
    let server = rec.server.as_deref().ok_or("it names no server")?;
    let old_decision = rec.decision.ok_or("it holds no decision")?;
    let old_rule = rec.rule_id.clone().ok_or("it holds no rule id")?;
    let mut items = Vec::with_capacity(rec.restored.len());
    for p in &rec.restored {
        let kind = Kind::new(&p.kind).map_err(|_| format!("{} has an invalid kind", p.placeholder))?;
        items.push(FlowItem::new(&p.placeholder, kind, &p.origins));
    }
    let mut untracked = Vec::with_capacity(rec.untracked.len());
    for k in &rec.untracked {
        untracked.push(Kind::new(k).map_err(|_| "an untracked kind is invalid".to_owned())?);
    }
    let req = FlowRequest::new(server, rec.tool.as_deref(), &items).with_untracked(&untracked);
    let d = policy.evaluate(&req);
    let new_decision = if d.allowed { Verdict::Allow } else { Verdict::Deny };
    let changes: Vec<ItemChange> = rec
        .restored
        .iter()
        .zip(&d.items)
        .filter(|(old, new)| {
            old.rule_id.as_deref() != Some(new.rule_id.as_str())
                || old.allowed.is_some_and(|a| a != new.allowed)
        })
        .map(|(old, new)| ItemChange {
            placeholder: old.placeholder.clone(),
            kind: old.kind.clone(),
            origins: old.origins.clone(),
            old_rule: old.rule_id.clone(),
            old_allowed: old.allowed,
            new_rule: new.rule_id.clone(),
            new_allowed: new.allowed,
        })
        .collect();
    if new_decision == old_decision && d.rule_id == old_rule && changes.is_empty() {
        return Ok(None);
    }
    Ok(Some(Difference {
        seq: rec.seq,
        server: server.to_owned(),
        tool: rec.tool.clone(),
        kinds: sorted_distinct(rec.restored.iter().map(|p| p.kind.as_str())),
        origins: sorted_distinct(
            rec.restored
                .iter()
                .flat_map(|p| p.origins.iter().map(String::as_str)),
        ),
        untracked: rec.untracked.clone(),
        old_decision,
        old_rule,
        new_decision,
        new_rule: d.rule_id,
        items: changes,
    }))
}

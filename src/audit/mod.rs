//! The tamper-evident audit log: records, the hash chain, sinks, and the compliance tools
//! ([`verify`], [`replay`], [`search`]).
//!
//! One JSON object per line ([`Record`]). Every record carries its sequence number, the previous
//! record's hash and its own hash: SHA-256 over the canonical encoding of the record without
//! `hash` (compact JSON, object keys sorted), so any edit, deletion or reordering breaks the
//! chain. Records hold placeholders, kinds, origins, servers, rule ids, the policy hash and
//! keyed fingerprints (HMAC-SHA256, [`Fingerprinter`]) of values, never the values themselves.
//! The policy itself is stored (canonical text) in a `policy` record, so replay can rebuild it.
//!
//! ```
//! use std::sync::Arc;
//! use mcp_pii_gateway::audit::{Auditor, Context, Fingerprinter, MemorySink, PlaceholderRecord, verify_lines};
//! use mcp_pii_gateway::detect::Kind;
//! use mcp_pii_gateway::policy::{FlowItem, FlowRequest, Policy};
//! use mcp_pii_gateway::vault::{ScopeId, Secret};
//!
//! let sink = Arc::new(MemorySink::new());
//! let fp = Fingerprinter::new(b"0123456789abcdef0123456789abcdef").unwrap();
//! let auditor = Auditor::new(sink.clone(), fp);
//! let policy = Policy::default();
//! let ctx = auditor.context("anonymous", &ScopeId::new("anonymous", "run-1"), "crm", "tools/call", Some("lookup"));
//! let items = [FlowItem::new("[EMAIL_1]", Kind::email(), ["crm"])];
//! let req = FlowRequest::new("crm", Some("lookup"), &items);
//! let decision = policy.evaluate(&req);
//! let value = Secret::new("ana.lima@example.org");
//! let restored = vec![auditor.placeholder(&items[0], Some(&value))];
//! auditor.decision(&policy, &ctx, &req, &decision, restored).unwrap();
//! let lines = sink.lines();
//! assert_eq!(lines.len(), 2); // the policy record, then the decision
//! assert!(!lines.concat().contains("ana.lima"));
//! assert!(verify_lines(&lines).is_intact());
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::policy::{Decision, FlowItem, FlowRequest, Policy};
use crate::vault::{Entry, Placeholder, ScopeId, Secret};

mod fingerprint;
mod log;
mod replay;
mod search;
mod sink;
mod verify;

pub use fingerprint::Fingerprinter;
pub use replay::{replay, replay_lines, Difference, ItemChange, ReplayReport, Unreplayable};
pub use search::{search, search_lines, SearchHit, SearchReport};
pub use sink::{AuditConfig, AuditSink, FileSink, FileSinkOptions, FsyncPolicy, MemorySink};
pub use verify::{
    verify, verify_anchored, verify_chains, verify_lines, Anchor, Problem, ProblemKind, VerifyReport,
};

/// The `prev_hash` of the first record of a log: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordType {
    /// A policy came into force (at start or on change): holds its canonical text and hash.
    Policy,
    /// A flow-policy decision (allow or deny) on one outgoing request.
    Decision,
    /// One exchange (request and its response) through the gateway.
    Exchange,
    /// The writer found a torn (partly written) last line at start-up and sealed it off.
    Recovery,
    /// The gateway told the model facts about placeholders' values (`describe_placeholders`):
    /// which placeholders, and which facts (`revealed`), under which policy.
    Disclosure,
}

impl RecordType {
    /// The name used in the log: `policy`, `decision`, `exchange`, `recovery`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::Policy => "policy",
            RecordType::Decision => "decision",
            RecordType::Exchange => "exchange",
            RecordType::Recovery => "recovery",
            RecordType::Disclosure => "disclosure",
        }
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Forwarded.
    Allow,
    /// Rejected; nothing forwarded.
    Deny,
}

impl Verdict {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
    fn from_allowed(allowed: bool) -> Verdict {
        if allowed {
            Verdict::Allow
        } else {
            Verdict::Deny
        }
    }
}

/// One placeholder in a record: never the value, only its keyed fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceholderRecord {
    /// The placeholder, e.g. `[EMAIL_1]`.
    pub placeholder: String,
    /// Its kind.
    pub kind: String,
    /// The servers its value came from.
    pub origins: Vec<String>,
    /// HMAC-SHA256 of the value ([`Fingerprinter::fingerprint`]), when the value was at hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// In a decision: the rule that decided this placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// In a decision: whether that rule let this placeholder go (the request as a whole may
    /// still be denied because of another one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<bool>,
}

/// One line of the audit log.
///
/// `seq`, `time`, `prev_hash` and `hash` are assigned by the sink ([`AuditSink::append`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Sequence number, from 1, continuous across rotated files.
    pub seq: u64,
    /// When it was written, RFC 3339 UTC.
    pub time: String,
    /// What the record is about.
    #[serde(rename = "type")]
    pub record_type: RecordType,
    /// The client (authenticated name or `anonymous`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Keyed fingerprint of the scope ([`Fingerprinter::scope`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The server the exchange or decision concerns (the target of an outgoing request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The JSON-RPC method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The tool, for `tools/call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Placeholders minted (new to the scope) by this exchange.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub minted: Vec<PlaceholderRecord>,
    /// Placeholders restored (or, when denied, that would have been) toward the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restored: Vec<PlaceholderRecord>,
    /// Kinds of untracked PII (never issued by the vault) found in outgoing data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untracked: Vec<String>,
    /// Allow or deny (decision records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Verdict>,
    /// The deciding rule (see [`Decision::rule_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Hash of the policy in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
    /// Policy records: the policy's canonical text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Policy records: an identifier of the fingerprint key (not the key), so `search` can tell
    /// whether it was given the right one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Exchange records: `ok`, `error`, `denied`, `upstream_error`, ... .
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Exchange records: wall time in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Disclosure records: the facts told (`email.domain`, `phone.country`, `same_person`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revealed: Vec<String>,
    /// Recovery records: SHA-256 of the torn line that this record seals off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_sha256: Option<String>,
    /// Recovery records: length in bytes of the torn line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_len: Option<u64>,
    /// Hash of the previous record ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 of this record's canonical encoding without `hash`.
    pub hash: String,
}

impl Record {
    /// An empty record of `record_type`; the sink fills `seq`, `time` and the hashes.
    pub fn new(record_type: RecordType) -> Record {
        Record {
            seq: 0,
            time: String::new(),
            record_type,
            client: None,
            scope: None,
            server: None,
            method: None,
            tool: None,
            minted: Vec::new(),
            restored: Vec::new(),
            untracked: Vec::new(),
            decision: None,
            rule_id: None,
            policy_hash: None,
            policy: None,
            key_id: None,
            outcome: None,
            duration_ms: None,
            revealed: Vec::new(),
            torn_sha256: None,
            torn_len: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// A `policy` record for `policy`.
    pub fn policy(policy: &Policy) -> Record {
        let mut r = Record::new(RecordType::Policy);
        r.policy_hash = Some(policy.hash().to_owned());
        r.policy = Some(policy.canonical().to_owned());
        r
    }

    /// A `decision` record: `restored` holds one entry per placeholder of `req` (build them with
    /// [`PlaceholderRecord::new`]); each gets the rule that decided it.
    pub fn decision(
        ctx: &Context,
        req: &FlowRequest<'_>,
        decision: &Decision,
        restored: Vec<PlaceholderRecord>,
    ) -> Record {
        let mut r = ctx.record(RecordType::Decision);
        r.server = Some(req.target_server.to_owned());
        r.tool = req.tool.map(str::to_owned);
        r.restored = restored;
        for p in &mut r.restored {
            if let Some(item) = decision.items.iter().find(|i| i.placeholder == p.placeholder) {
                p.rule_id = Some(item.rule_id.clone());
                p.allowed = Some(item.allowed);
            }
        }
        let mut kinds: Vec<String> = req.untracked.iter().map(|k| k.as_str().to_owned()).collect();
        kinds.sort();
        kinds.dedup();
        r.untracked = kinds;
        r.decision = Some(Verdict::from_allowed(decision.allowed));
        r.rule_id = Some(decision.rule_id.clone());
        r.policy_hash = Some(decision.policy_hash.clone());
        r
    }

    /// An `exchange` record.
    pub fn exchange(
        ctx: &Context,
        minted: Vec<PlaceholderRecord>,
        restored: Vec<PlaceholderRecord>,
        outcome: &str,
        duration: Duration,
        policy_hash: Option<&str>,
    ) -> Record {
        let mut r = ctx.record(RecordType::Exchange);
        r.minted = minted;
        r.restored = restored;
        r.outcome = Some(outcome.to_owned());
        // Microsecond precision is plenty; rounding keeps the number short and stable.
        r.duration_ms = Some((duration.as_secs_f64() * 1_000_000.0).round() / 1000.0);
        r.policy_hash = policy_hash.map(str::to_owned);
        r
    }

    /// A `disclosure` record: facts `revealed` about the placeholders in `placeholders` were
    /// told to the client.
    pub fn disclosure(
        ctx: &Context,
        placeholders: Vec<PlaceholderRecord>,
        revealed: Vec<String>,
        policy_hash: &str,
    ) -> Record {
        let mut r = ctx.record(RecordType::Disclosure);
        r.restored = placeholders;
        r.revealed = revealed;
        r.outcome = Some("ok".to_owned());
        r.policy_hash = Some(policy_hash.to_owned());
        r
    }

    /// SHA-256 (hex) of this record's canonical encoding without `hash`.
    pub fn compute_hash(&self) -> String {
        let v = serde_json::to_value(self).expect("a record always serializes");
        canonical_hash(&v)
    }

    /// The record as one JSON line (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a record always serializes")
    }
}

impl PlaceholderRecord {
    /// An entry for a placeholder and its vault entry (for minted placeholders): kind and
    /// origins from the entry, the value fingerprinted (never stored).
    pub fn from_entry(placeholder: &Placeholder, entry: &Entry, fp: &Fingerprinter) -> PlaceholderRecord {
        PlaceholderRecord {
            placeholder: placeholder.to_string(),
            kind: entry.kind.as_str().to_owned(),
            origins: entry.origins.iter().map(|o| o.to_string()).collect(),
            fingerprint: Some(fp.fingerprint(entry.value.expose())),
            rule_id: None,
            allowed: None,
        }
    }
    /// An entry for one placeholder; `value`, when given, is fingerprinted (never stored).
    pub fn new(item: &FlowItem, value: Option<&Secret>, fp: &Fingerprinter) -> PlaceholderRecord {
        PlaceholderRecord {
            placeholder: item.placeholder.clone(),
            kind: item.kind.as_str().to_owned(),
            origins: item.origins.iter().map(|o| o.to_string()).collect(),
            fingerprint: value.map(|v| fp.fingerprint(v.expose())),
            rule_id: None,
            allowed: None,
        }
    }
}

/// Who and what an exchange is about; build with [`Auditor::context`] or [`Context::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The client.
    pub client: String,
    /// Keyed fingerprint of the scope.
    pub scope: String,
    /// The server.
    pub server: String,
    /// The JSON-RPC method.
    pub method: String,
    /// The tool, for `tools/call`.
    pub tool: Option<String>,
}

impl Context {
    /// A context; the scope is fingerprinted with `fp`.
    pub fn new(
        fp: &Fingerprinter,
        client: &str,
        scope: &ScopeId,
        server: &str,
        method: &str,
        tool: Option<&str>,
    ) -> Context {
        Context {
            client: client.to_owned(),
            scope: fp.scope(scope),
            server: server.to_owned(),
            method: method.to_owned(),
            tool: tool.map(str::to_owned),
        }
    }
    fn record(&self, record_type: RecordType) -> Record {
        let mut r = Record::new(record_type);
        r.client = Some(self.client.clone());
        r.scope = Some(self.scope.clone());
        r.server = Some(self.server.clone());
        r.method = Some(self.method.clone());
        r.tool = self.tool.clone();
        r
    }
}

/// What a layer holds to write the audit log: a sink, the fingerprint key, and which policies
/// it has already recorded. Cheap to share (`Arc`).
pub struct Auditor {
    sink: Arc<dyn AuditSink>,
    fp: Fingerprinter,
    /// The sink generation these policy hashes were written in, and the hashes.
    policies: Mutex<(u64, HashSet<String>)>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("fingerprinter", &self.fp)
            .finish_non_exhaustive()
    }
}

impl Auditor {
    /// An auditor writing to `sink`, fingerprinting with `fp`.
    pub fn new(sink: Arc<dyn AuditSink>, fp: Fingerprinter) -> Auditor {
        Auditor {
            sink,
            fp,
            policies: Mutex::new((0, HashSet::new())),
        }
    }
    /// The fingerprinter.
    pub fn fingerprinter(&self) -> &Fingerprinter {
        &self.fp
    }
    /// The sink.
    pub fn sink(&self) -> &Arc<dyn AuditSink> {
        &self.sink
    }
    /// A [`Context`] for one exchange.
    pub fn context(
        &self,
        client: &str,
        scope: &ScopeId,
        server: &str,
        method: &str,
        tool: Option<&str>,
    ) -> Context {
        Context::new(&self.fp, client, scope, server, method, tool)
    }
    /// A [`PlaceholderRecord`] for one placeholder, fingerprinting `value` when given.
    pub fn placeholder(&self, item: &FlowItem, value: Option<&Secret>) -> PlaceholderRecord {
        PlaceholderRecord::new(item, value, &self.fp)
    }
    /// Records `policy` once per hash and per log file: call it at start and whenever the
    /// policy changes; [`decision`](Self::decision) calls it too, so a rotated file holds the
    /// policy records its decisions need (unless a rotation races a decision; replay then finds
    /// the policy in the previous file, or takes `--policy`).
    pub fn policy(&self, policy: &Policy) -> Result<()> {
        let mut seen = self
            .policies
            .lock()
            .map_err(|_| Error::audit("auditor lock poisoned"))?;
        // Read before appending: if the append itself rotates, we write the policy again next
        // time (a harmless duplicate) rather than miss it.
        let generation = self.sink.generation();
        if seen.0 != generation {
            seen.0 = generation;
            seen.1.clear();
        }
        if seen.1.contains(policy.hash()) {
            return Ok(());
        }
        let mut r = Record::policy(policy);
        r.key_id = Some(self.fp.key_id());
        self.sink.append(r)?;
        seen.1.insert(policy.hash().to_owned());
        Ok(())
    }
    /// Records a decision (after recording `policy` if this auditor has not yet). Returns once
    /// the record is written as the sink's durability setting requires: only then may the
    /// request be forwarded or the denial be sent.
    pub fn decision(
        &self,
        policy: &Policy,
        ctx: &Context,
        req: &FlowRequest<'_>,
        decision: &Decision,
        restored: Vec<PlaceholderRecord>,
    ) -> Result<Record> {
        self.policy(policy)?;
        self.sink.append(Record::decision(ctx, req, decision, restored))
    }
    /// The whole outgoing check in one call: evaluates `req` under `policy`, records the
    /// decision (fingerprinting `values[i]`, the value of `req.items[i]`, when given), and
    /// returns the decision when the request may be forwarded. A denial is recorded, then
    /// returned as [`Error::policy_denied`]; a failure to record is returned as an audit error.
    /// Either way: forward nothing on `Err`.
    pub fn enforce(
        &self,
        policy: &Policy,
        ctx: &Context,
        req: &FlowRequest<'_>,
        values: &[Option<&Secret>],
    ) -> Result<Decision> {
        let decision = policy.evaluate(req);
        let restored = req
            .items
            .iter()
            .enumerate()
            .map(|(i, item)| self.placeholder(item, values.get(i).copied().flatten()))
            .collect();
        self.decision(policy, ctx, req, &decision, restored)?;
        decision.check()?;
        Ok(decision)
    }

    /// A [`PlaceholderRecord`] for a placeholder and its vault entry (minted placeholders).
    pub fn entry(&self, placeholder: &Placeholder, entry: &Entry) -> PlaceholderRecord {
        PlaceholderRecord::from_entry(placeholder, entry, &self.fp)
    }
    /// Records an exchange (build it with [`Record::exchange`]).
    pub fn exchange(&self, record: Record) -> Result<Record> {
        self.sink.append(record)
    }
}

/// The current time, RFC 3339 UTC with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// SHA-256 (hex) of the canonical encoding of `v` without its top-level `hash` member.
pub(crate) fn canonical_hash(v: &Value) -> String {
    let mut out = String::with_capacity(512);
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().filter(|k| k.as_str() != "hash").collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(&Value::String(k.clone()), &mut out);
                out.push(':');
                write_canonical(&m[k], &mut out);
            }
            out.push('}');
        }
        other => write_canonical(other, &mut out),
    }
    hex::encode(ring::digest::digest(&ring::digest::SHA256, out.as_bytes()))
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("a string serializes"));
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&serde_json::to_string(scalar).expect("a scalar serializes")),
    }
}

/// The running end of a hash chain: the next sequence number and the last hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chain {
    pub(crate) next_seq: u64,
    pub(crate) prev_hash: String,
}

impl Chain {
    pub(crate) fn genesis() -> Chain {
        Chain {
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
        }
    }
    /// Fills `seq`, `time` (if empty), `prev_hash` and `hash` of `r`, without advancing.
    pub(crate) fn seal(&self, r: &mut Record) {
        r.seq = self.next_seq;
        if r.time.is_empty() {
            r.time = now_rfc3339();
        }
        r.prev_hash = self.prev_hash.clone();
        r.hash = r.compute_hash();
    }
    /// Advances past a record sealed by [`seal`](Self::seal) and written.
    pub(crate) fn advance(&mut self, r: &Record) {
        self.next_seq = r.seq + 1;
        self.prev_hash = r.hash.clone();
    }
}

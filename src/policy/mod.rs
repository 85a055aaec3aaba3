//! Flow policy: which servers may receive placeholders (and so the values behind them) that came
//! from which servers.
//!
//! A request to server T (tool t) that carries placeholders is allowed only if, for every
//! placeholder, T is one of its origins, or a flow rule allows one of its origins to send that
//! KIND to T (or to T/t). Otherwise the default `cross_server` decides (`deny` unless configured).
//! PII in outgoing data that the vault never issued ("untracked", typed by the model) is handled
//! by `untracked_pii = allow | audit | deny`.
//!
//! Evaluation ([`Policy::evaluate`]) is a pure function of the placeholders' kinds and origins,
//! the target server and tool, and the policy: same inputs, same [`Decision`] and rule id.
//! A policy is versioned by [`Policy::hash`], the SHA-256 of its canonical form
//! ([`Policy::canonical`]), so every audit record can name the exact policy it used and replay
//! can rebuild it ([`Policy::from_canonical`]).
//!
//! ```
//! use std::str::FromStr;
//! use std::sync::Arc;
//! use mcp_pii_gateway::detect::Kind;
//! use mcp_pii_gateway::policy::{FlowItem, FlowRequest, Policy};
//! let policy = Policy::from_str(r#"
//!     cross_server = "deny"
//!     [[flows]]
//!     id = "crm-to-mail"
//!     from = "crm"
//!     to = "mail/send_email"
//!     kinds = ["EMAIL"]
//! "#).unwrap();
//! let items = [FlowItem::new("[EMAIL_1]", Kind::email(), ["crm"])];
//! let ok = policy.evaluate(&FlowRequest::new("mail", Some("send_email"), &items));
//! assert!(ok.allowed);
//! assert_eq!(ok.rule_id, "crm-to-mail");
//! let no = policy.evaluate(&FlowRequest::new("search", Some("query"), &items));
//! assert!(!no.allowed);
//! assert_eq!(no.rule_id, "default:cross_server=deny");
//! let err = no.denial.unwrap().to_error();
//! assert!(err.is_policy_denied());
//! assert!(err.to_string().contains("[EMAIL_1]"));
//! ```

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::detect::Kind;
use crate::error::{Error, Result};

/// Rule id of a placeholder going back to a server it came from.
pub const RULE_SAME_ORIGIN: &str = "same-origin";
/// Rule id of a request that carries neither placeholders nor untracked PII.
pub const RULE_NOTHING: &str = "no-pii";

/// What happens to a placeholder sent to a server it did not come from, when no flow allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum CrossServer {
    /// Reject the request (the default: fail closed).
    Deny,
    /// Let it through.
    Allow,
}

impl CrossServer {
    fn as_str(self) -> &'static str {
        match self {
            CrossServer::Deny => "deny",
            CrossServer::Allow => "allow",
        }
    }
    /// The built-in rule id of this default (`default:cross_server=deny|allow`).
    pub fn rule_id(self) -> &'static str {
        match self {
            CrossServer::Deny => "default:cross_server=deny",
            CrossServer::Allow => "default:cross_server=allow",
        }
    }
}

/// What happens to PII in outgoing data that the vault never issued (the model typed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum UntrackedPii {
    /// Let it through without a note.
    Allow,
    /// Let it through and mark the decision for the audit log (the default).
    Audit,
    /// Reject the request.
    Deny,
}

impl UntrackedPii {
    fn as_str(self) -> &'static str {
        match self {
            UntrackedPii::Allow => "allow",
            UntrackedPii::Audit => "audit",
            UntrackedPii::Deny => "deny",
        }
    }
    /// The built-in rule id of this setting (`untracked_pii=allow|audit|deny`).
    pub fn rule_id(self) -> &'static str {
        match self {
            UntrackedPii::Allow => "untracked_pii=allow",
            UntrackedPii::Audit => "untracked_pii=audit",
            UntrackedPii::Deny => "untracked_pii=deny",
        }
    }
}

/// One `[[policy.flows]]` entry: origin `from` may send `kinds` (all when `None`) to `to_server`
/// (only its tool `to_tool` when set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// The rule id, unique in the policy.
    pub id: String,
    /// The origin server.
    pub from: String,
    /// The target server.
    pub to_server: String,
    /// The one tool of the target this flow is limited to, if any.
    pub to_tool: Option<String>,
    /// The kinds allowed (sorted, distinct); `None` for every kind.
    pub kinds: Option<Vec<String>>,
}

impl Flow {
    fn matches(&self, origins: &[Arc<str>], kind: &Kind, target: &str, tool: Option<&str>) -> bool {
        self.to_server == target
            && match &self.to_tool {
                None => true,
                Some(t) => tool == Some(t.as_str()),
            }
            && match &self.kinds {
                None => true,
                Some(ks) => ks.iter().any(|k| k == kind.as_str()),
            }
            && origins.iter().any(|o| **o == *self.from)
    }
}

/// A validated flow policy. Share it with an `Arc`; swap the `Arc` to change policy.
#[derive(Clone, PartialEq, Eq)]
pub struct Policy {
    cross_server: CrossServer,
    untracked_pii: UntrackedPii,
    flows: Vec<Flow>,
    reveal: Vec<Reveal>,
    canonical: String,
    hash: String,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("hash", &self.hash)
            .field("cross_server", &self.cross_server)
            .field("untracked_pii", &self.untracked_pii)
            .field("flows", &self.flows.len())
            .finish()
    }
}

impl Default for Policy {
    /// `cross_server = "deny"`, `untracked_pii = "audit"`, no flows.
    fn default() -> Self {
        Policy::build(CrossServer::Deny, UntrackedPii::Audit, Vec::new(), Vec::new())
    }
}

impl std::str::FromStr for Policy {
    type Err = Error;
    /// Parses a policy table given as TOML text (the body of `[policy]`, i.e. top-level
    /// `cross_server`, `untracked_pii`, `[[flows]]`).
    fn from_str(text: &str) -> Result<Policy> {
        let value: toml::Table = toml::from_str(text)
            .map_err(|e| Error::config(vec![format!("policy: not valid TOML: {}", e.message())]))?;
        Policy::from_toml_value(&toml::Value::Table(value))
    }
}

/// The canonical form: fixed field order, flows in file order (the first matching flow names the
/// decision), kinds sorted. Its compact JSON is what [`Policy::hash`] covers.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Canonical {
    version: u32,
    cross_server: CrossServer,
    untracked_pii: UntrackedPii,
    flows: Vec<CanonicalFlow>,
    /// Absent when empty, so that policies without `reveal` keep their hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    reveal: Vec<Reveal>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CanonicalFlow {
    id: String,
    from: String,
    to: String,
    kinds: Option<Vec<String>>,
}

const CANONICAL_VERSION: u32 = 1;

const POLICY_KEYS: &[&str] = &["cross_server", "untracked_pii", "flows", "reveal"];

/// A fact about a value that the gateway's `describe_placeholders` tool may tell the model
/// (`[policy] reveal = [...]`); nothing is revealed unless listed. The value itself never is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Reveal {
    /// `email.domain`: the domain of an email address, lower case (`example.org`).
    #[serde(rename = "email.domain")]
    EmailDomain,
    /// `phone.country`: the ISO 3166 region of a phone number's country calling code (`BR`),
    /// or `+<code>` when the code is shared by several regions.
    #[serde(rename = "phone.country")]
    PhoneCountry,
    /// `same_person`: which of the given placeholders hold the same value after normalisation
    /// (email case-insensitive, phone numbers as E.164 digits).
    #[serde(rename = "same_person")]
    SamePerson,
}

impl Reveal {
    /// Every fact, in canonical order.
    pub const ALL: [Reveal; 3] = [Reveal::EmailDomain, Reveal::PhoneCountry, Reveal::SamePerson];
    /// Its name in the policy: `email.domain`, `phone.country`, `same_person`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reveal::EmailDomain => "email.domain",
            Reveal::PhoneCountry => "phone.country",
            Reveal::SamePerson => "same_person",
        }
    }
}
const FLOW_KEYS: &[&str] = &["id", "from", "to", "kinds"];

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl Policy {
    fn build(
        cross_server: CrossServer,
        untracked_pii: UntrackedPii,
        flows: Vec<Flow>,
        mut reveal: Vec<Reveal>,
    ) -> Policy {
        reveal.sort();
        reveal.dedup();
        let canonical = Canonical {
            version: CANONICAL_VERSION,
            cross_server,
            untracked_pii,
            flows: flows
                .iter()
                .map(|f| CanonicalFlow {
                    id: f.id.clone(),
                    from: f.from.clone(),
                    to: match &f.to_tool {
                        Some(t) => format!("{}/{}", f.to_server, t),
                        None => f.to_server.clone(),
                    },
                    kinds: f.kinds.clone(),
                })
                .collect(),
            reveal: reveal.clone(),
        };
        let canonical = serde_json::to_string(&canonical).expect("a struct of strings always serializes");
        let hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()));
        Policy {
            cross_server,
            untracked_pii,
            flows,
            reveal,
            canonical,
            hash,
        }
    }

    /// Validates the `[policy]` table of a configuration. Every problem is listed in one
    /// [`Error::config`].
    pub fn from_toml_value(value: &toml::Value) -> Result<Policy> {
        let mut problems = Vec::new();
        let Some(table) = value.as_table() else {
            return Err(Error::config(vec!["policy: must be a table".into()]));
        };
        for key in table.keys() {
            if !POLICY_KEYS.contains(&key.as_str()) {
                problems.push(format!(
                    "policy: unknown key `{key}` (expected one of: {})",
                    POLICY_KEYS.join(", ")
                ));
            }
        }
        let cross_server = match table.get("cross_server") {
            None => CrossServer::Deny,
            Some(toml::Value::String(s)) if s == "deny" => CrossServer::Deny,
            Some(toml::Value::String(s)) if s == "allow" => CrossServer::Allow,
            Some(_) => {
                problems.push("policy.cross_server: must be \"deny\" or \"allow\"".into());
                CrossServer::Deny
            }
        };
        let untracked_pii = match table.get("untracked_pii") {
            None => UntrackedPii::Audit,
            Some(toml::Value::String(s)) if s == "allow" => UntrackedPii::Allow,
            Some(toml::Value::String(s)) if s == "audit" => UntrackedPii::Audit,
            Some(toml::Value::String(s)) if s == "deny" => UntrackedPii::Deny,
            Some(_) => {
                problems.push("policy.untracked_pii: must be \"allow\", \"audit\" or \"deny\"".into());
                UntrackedPii::Audit
            }
        };
        let mut flows = Vec::new();
        match table.get("flows") {
            None => {}
            Some(toml::Value::Array(items)) => {
                let mut ids = HashSet::new();
                for (i, item) in items.iter().enumerate() {
                    if let Some(flow) = parse_flow(i, item, &mut problems) {
                        if !ids.insert(flow.id.clone()) {
                            problems.push(format!("policy.flows[{i}].id: duplicate id `{}`", flow.id));
                        }
                        flows.push(flow);
                    }
                }
            }
            Some(_) => problems.push("policy.flows: must be an array of tables ([[policy.flows]])".into()),
        }
        let mut reveal = Vec::new();
        match table.get("reveal") {
            None => {}
            Some(toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match Reveal::ALL.iter().find(|r| item.as_str() == Some(r.as_str())) {
                        Some(r) => reveal.push(*r),
                        None => problems.push(format!(
                            "policy.reveal[{i}]: must be one of {}",
                            Reveal::ALL.map(|r| format!("\"{}\"", r.as_str())).join(", ")
                        )),
                    }
                }
            }
            Some(_) => problems.push("policy.reveal: must be an array of strings".into()),
        }
        if problems.is_empty() {
            Ok(Policy::build(cross_server, untracked_pii, flows, reveal))
        } else {
            Err(Error::config(problems))
        }
    }

    /// Loads a policy from a file. The file may be a gateway configuration with a `[policy]`
    /// table, one naming a separate file with `policy_file = "..."` (relative to the naming
    /// file's directory), or a bare policy (top-level `cross_server`, `untracked_pii`,
    /// `[[flows]]`). A configuration with none of these gets the default policy.
    pub fn from_file(path: &Path) -> Result<Policy> {
        Policy::from_file_depth(path, 0)
    }

    fn from_file_depth(path: &Path, depth: u8) -> Result<Policy> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::config(vec![format!("policy file {}: {e}", path.display())]))?;
        let root: toml::Table = toml::from_str(&text).map_err(|e| {
            Error::config(vec![format!(
                "policy file {}: not valid TOML: {}",
                path.display(),
                e.message()
            )])
        })?;
        Policy::from_config_table(&root, path.parent().unwrap_or(Path::new(".")), depth)
    }

    /// Finds the policy in a parsed gateway configuration: its `[policy]` table, or the file
    /// named by its top-level `policy_file` (resolved against `base_dir`), else the default.
    pub fn from_config(root: &toml::Table, base_dir: &Path) -> Result<Policy> {
        Policy::from_config_table(root, base_dir, 0)
    }

    fn from_config_table(root: &toml::Table, base_dir: &Path, depth: u8) -> Result<Policy> {
        let bare = POLICY_KEYS.iter().any(|k| root.contains_key(*k));
        match (root.get("policy"), root.get("policy_file"), bare) {
            (Some(_), Some(_), _) => Err(Error::config(vec![
                "policy: give either a [policy] table or policy_file, not both".into(),
            ])),
            (Some(_), None, true) => Err(Error::config(vec![
                "policy: policy keys found both at top level and in [policy]".into(),
            ])),
            (Some(p), None, false) => Policy::from_toml_value(p),
            (None, Some(toml::Value::String(f)), _) => {
                if depth > 0 {
                    return Err(Error::config(vec![format!(
                        "policy_file {f}: a policy file may not name another policy file"
                    )]));
                }
                Policy::from_file_depth(&base_dir.join(f), depth + 1)
            }
            (None, Some(_), _) => Err(Error::config(vec!["policy_file: must be a string path".into()])),
            (None, None, true) => Policy::from_toml_value(&toml::Value::Table(root.clone())),
            (None, None, false) => Ok(Policy::default()),
        }
    }

    /// Rebuilds a policy from its canonical text (as stored in an audit `policy` record).
    pub fn from_canonical(text: &str) -> Result<Policy> {
        let c: Canonical =
            serde_json::from_str(text).map_err(|e| Error::config(vec![format!("canonical policy: {e}")]))?;
        if c.version != CANONICAL_VERSION {
            return Err(Error::config(vec![format!(
                "canonical policy: unsupported version {}",
                c.version
            )]));
        }
        // Re-validate through the TOML path so a canonical text can never hold what a file can't.
        let mut t = toml::Table::new();
        t.insert("cross_server".into(), c.cross_server.as_str().into());
        t.insert("untracked_pii".into(), c.untracked_pii.as_str().into());
        let flows: Vec<toml::Value> = c
            .flows
            .into_iter()
            .map(|f| {
                let mut ft = toml::Table::new();
                ft.insert("id".into(), f.id.into());
                ft.insert("from".into(), f.from.into());
                ft.insert("to".into(), f.to.into());
                if let Some(ks) = f.kinds {
                    ft.insert(
                        "kinds".into(),
                        toml::Value::Array(ks.into_iter().map(Into::into).collect()),
                    );
                }
                toml::Value::Table(ft)
            })
            .collect();
        t.insert("flows".into(), toml::Value::Array(flows));
        if !c.reveal.is_empty() {
            t.insert(
                "reveal".into(),
                toml::Value::Array(c.reveal.iter().map(|r| r.as_str().into()).collect()),
            );
        }
        let p = Policy::from_toml_value(&toml::Value::Table(t))?;
        if p.canonical != text {
            return Err(Error::config(vec![
                "canonical policy: text is not in canonical form".into(),
            ]));
        }
        Ok(p)
    }

    /// The canonical text (compact JSON, fixed order) that [`hash`](Self::hash) covers.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
    /// SHA-256 of the canonical text, lower-case hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }
    /// The `cross_server` default.
    pub fn cross_server(&self) -> CrossServer {
        self.cross_server
    }
    /// The `untracked_pii` setting.
    pub fn untracked_pii(&self) -> UntrackedPii {
        self.untracked_pii
    }
    /// The flows, in file order.
    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }
    /// The facts `describe_placeholders` may tell (empty: the tool is off).
    pub fn reveal(&self) -> &[Reveal] {
        &self.reveal
    }
    /// A copy of this policy with one more flow at the end (validated like a file entry).
    pub fn with_flow(&self, id: &str, from: &str, to: &str, kinds: Option<&[&str]>) -> Result<Policy> {
        let mut t: toml::Table =
            toml::from_str(&self.to_toml()).map_err(|e| Error::internal(e.to_string()))?;
        let mut ft = toml::Table::new();
        ft.insert("id".into(), id.into());
        ft.insert("from".into(), from.into());
        ft.insert("to".into(), to.into());
        if let Some(ks) = kinds {
            ft.insert(
                "kinds".into(),
                toml::Value::Array(ks.iter().map(|k| (*k).into()).collect()),
            );
        }
        match t.entry("flows").or_insert_with(|| toml::Value::Array(Vec::new())) {
            toml::Value::Array(a) => a.push(toml::Value::Table(ft)),
            _ => return Err(Error::internal("flows is not an array")),
        }
        Policy::from_toml_value(&toml::Value::Table(t))
    }

    /// This policy as a bare policy TOML text (accepted by [`str::parse`]).
    pub fn to_toml(&self) -> String {
        let mut s = format!(
            "cross_server = \"{}\"\nuntracked_pii = \"{}\"\n",
            self.cross_server.as_str(),
            self.untracked_pii.as_str()
        );
        if !self.reveal.is_empty() {
            let names: Vec<String> = self
                .reveal
                .iter()
                .map(|r| format!("\"{}\"", r.as_str()))
                .collect();
            s.push_str(&format!("reveal = [{}]\n", names.join(", ")));
        }
        for f in &self.flows {
            let mut t = toml::Table::new();
            t.insert("id".into(), f.id.clone().into());
            t.insert("from".into(), f.from.clone().into());
            let to = match &f.to_tool {
                Some(tool) => format!("{}/{tool}", f.to_server),
                None => f.to_server.clone(),
            };
            t.insert("to".into(), to.into());
            if let Some(ks) = &f.kinds {
                t.insert(
                    "kinds".into(),
                    toml::Value::Array(ks.iter().map(|k| k.clone().into()).collect()),
                );
            }
            s.push_str("\n[[flows]]\n");
            s.push_str(&toml::to_string(&t).expect("a table of strings serializes"));
        }
        s
    }

    /// Decides one request. Pure: the same request and policy always give the same decision.
    ///
    /// Each placeholder is allowed by `same-origin` (the target is among its origins), else by
    /// the first flow (in file order) whose `from` is among its origins and whose `to` and
    /// `kinds` match, else by the `cross_server` default. Then untracked PII kinds, if any, are
    /// judged by `untracked_pii`. The request is allowed when every part is.
    pub fn evaluate(&self, req: &FlowRequest<'_>) -> Decision {
        let mut items = Vec::with_capacity(req.items.len());
        let mut denial = None;
        for item in req.items {
            let (allowed, rule_id) = self.evaluate_item(item, req.target_server, req.tool);
            if !allowed && denial.is_none() {
                denial = Some(Denial {
                    placeholder: Some(item.placeholder.clone()),
                    kinds: vec![item.kind.as_str().to_owned()],
                    origins: item.origins.iter().map(|o| o.to_string()).collect(),
                    target_server: req.target_server.to_owned(),
                    tool: req.tool.map(str::to_owned),
                    rule_id: rule_id.clone(),
                });
            }
            items.push(ItemDecision {
                placeholder: item.placeholder.clone(),
                kind: item.kind.clone(),
                allowed,
                rule_id,
            });
        }
        let mut untracked_audit = false;
        let mut untracked_rule = None;
        if !req.untracked.is_empty() {
            let kinds: BTreeSet<&str> = req.untracked.iter().map(Kind::as_str).collect();
            untracked_rule = Some(self.untracked_pii.rule_id().to_owned());
            match self.untracked_pii {
                UntrackedPii::Allow => {}
                UntrackedPii::Audit => untracked_audit = true,
                UntrackedPii::Deny => {
                    if denial.is_none() {
                        denial = Some(Denial {
                            placeholder: None,
                            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
                            origins: Vec::new(),
                            target_server: req.target_server.to_owned(),
                            tool: req.tool.map(str::to_owned),
                            rule_id: self.untracked_pii.rule_id().to_owned(),
                        });
                    }
                }
            }
        }
        let rule_id = match &denial {
            Some(d) => d.rule_id.clone(),
            None => {
                let mut seen: Vec<&str> = Vec::new();
                for r in items
                    .iter()
                    .map(|i| i.rule_id.as_str())
                    .chain(untracked_rule.as_deref())
                {
                    if !seen.contains(&r) {
                        seen.push(r);
                    }
                }
                if seen.is_empty() {
                    RULE_NOTHING.to_owned()
                } else {
                    seen.join(",")
                }
            }
        };
        Decision {
            allowed: denial.is_none(),
            rule_id,
            items,
            untracked_audit,
            denial,
            policy_hash: self.hash.clone(),
        }
    }

    fn evaluate_item(&self, item: &FlowItem, target: &str, tool: Option<&str>) -> (bool, String) {
        if item.origins.iter().any(|o| **o == *target) {
            return (true, RULE_SAME_ORIGIN.to_owned());
        }
        if let Some(f) = self
            .flows
            .iter()
            .find(|f| f.matches(&item.origins, &item.kind, target, tool))
        {
            return (true, f.id.clone());
        }
        (
            self.cross_server == CrossServer::Allow,
            self.cross_server.rule_id().to_owned(),
        )
    }
}

fn parse_flow(i: usize, item: &toml::Value, problems: &mut Vec<String>) -> Option<Flow> {
    let at = format!("policy.flows[{i}]");
    let Some(t) = item.as_table() else {
        problems.push(format!("{at}: must be a table"));
        return None;
    };
    let before = problems.len();
    for key in t.keys() {
        if !FLOW_KEYS.contains(&key.as_str()) {
            problems.push(format!(
                "{at}: unknown key `{key}` (expected one of: {})",
                FLOW_KEYS.join(", ")
            ));
        }
    }
    let mut string = |key: &str| -> Option<String> {
        match t.get(key) {
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(_) => {
                problems.push(format!("{at}.{key}: must be a string"));
                None
            }
            None => {
                problems.push(format!("{at}.{key}: missing"));
                None
            }
        }
    };
    let id = string("id");
    let from = string("from");
    let to = string("to");
    if let Some(id) = &id {
        if !valid_name(id) {
            problems.push(format!(
                "{at}.id: `{id}` must be 1-128 characters of A-Z a-z 0-9 _ - ."
            ));
        } else if id == RULE_SAME_ORIGIN || id == RULE_NOTHING {
            problems.push(format!("{at}.id: `{id}` is a built-in rule id"));
        }
    }
    if let Some(from) = &from {
        if !valid_name(from) {
            problems.push(format!(
                "{at}.from: `{from}` must be a server name (A-Z a-z 0-9 _ - .)"
            ));
        }
    }
    let mut target = None;
    if let Some(to) = &to {
        let (server, tool) = match to.split_once('/') {
            Some((s, t)) => (s, Some(t)),
            None => (to.as_str(), None),
        };
        if !valid_name(server) {
            problems.push(format!(
                "{at}.to: `{to}` must be \"server\" or \"server/tool\" (server: A-Z a-z 0-9 _ - .)"
            ));
        } else if matches!(tool, Some(t) if t.is_empty() || t.contains('/')) {
            problems.push(format!("{at}.to: `{to}` has an empty or nested tool name"));
        } else {
            target = Some((server.to_owned(), tool.map(str::to_owned)));
        }
    }
    let kinds = match t.get("kinds") {
        None => None,
        Some(toml::Value::Array(ks)) => {
            let mut set = BTreeSet::new();
            for (j, k) in ks.iter().enumerate() {
                match k.as_str() {
                    Some(k) if Kind::is_valid(k) => {
                        set.insert(k.to_owned());
                    }
                    Some(k) => problems.push(format!(
                        "{at}.kinds[{j}]: `{k}` is not a KIND (upper-case letters, digits, '_')"
                    )),
                    None => problems.push(format!("{at}.kinds[{j}]: must be a string")),
                }
            }
            if ks.is_empty() {
                problems.push(format!(
                    "{at}.kinds: empty list allows nothing; omit `kinds` for every kind"
                ));
            }
            Some(set.into_iter().collect())
        }
        Some(_) => {
            problems.push(format!("{at}.kinds: must be an array of KIND names"));
            None
        }
    };
    if problems.len() != before {
        return None;
    }
    let (to_server, to_tool) = target?;
    Some(Flow {
        id: id?,
        from: from?,
        to_server,
        to_tool,
        kinds,
    })
}

/// One placeholder in a request: its text, kind and origins (the servers its value came from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowItem {
    /// The placeholder as written, e.g. `[EMAIL_1]`.
    pub placeholder: String,
    /// Its kind.
    pub kind: Kind,
    /// The servers its value came from.
    pub origins: Vec<Arc<str>>,
}

impl FlowItem {
    /// An item from its parts.
    pub fn new<I, S>(placeholder: &str, kind: Kind, origins: I) -> FlowItem
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        FlowItem {
            placeholder: placeholder.to_owned(),
            kind,
            origins: origins.into_iter().map(|o| Arc::from(o.as_ref())).collect(),
        }
    }
}

impl From<&crate::rewrite::PlaceholderUse> for FlowItem {
    fn from(u: &crate::rewrite::PlaceholderUse) -> Self {
        FlowItem {
            placeholder: u.placeholder.to_string(),
            kind: u.placeholder.kind.clone(),
            origins: u.origins.clone(),
        }
    }
}

/// What [`Policy::evaluate`] judges: where the request goes and what it carries.
#[derive(Debug, Clone, Copy)]
pub struct FlowRequest<'a> {
    /// The server the request goes to.
    pub target_server: &'a str,
    /// The tool, for `tools/call`.
    pub tool: Option<&'a str>,
    /// The placeholders the request carries (each once).
    pub items: &'a [FlowItem],
    /// Kinds of PII found in the request that the vault never issued (empty when none).
    pub untracked: &'a [Kind],
}

impl<'a> FlowRequest<'a> {
    /// A request to `target_server` (tool `tool`) carrying `items`, with no untracked PII.
    pub fn new(target_server: &'a str, tool: Option<&'a str>, items: &'a [FlowItem]) -> Self {
        FlowRequest {
            target_server,
            tool,
            items,
            untracked: &[],
        }
    }
    /// The same request, also carrying untracked PII of these kinds.
    pub fn with_untracked(mut self, kinds: &'a [Kind]) -> Self {
        self.untracked = kinds;
        self
    }
}

/// The verdict on one placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemDecision {
    /// The placeholder.
    pub placeholder: String,
    /// Its kind.
    pub kind: Kind,
    /// Whether it may go.
    pub allowed: bool,
    /// The rule that decided: `same-origin`, a flow id, or `default:cross_server=...`.
    pub rule_id: String,
}

/// Why a request was denied: names placeholders, kinds, origins, target and rule; never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The first placeholder denied; `None` when untracked PII was denied.
    pub placeholder: Option<String>,
    /// Its kind (or the untracked kinds).
    pub kinds: Vec<String>,
    /// Its origins (empty for untracked PII).
    pub origins: Vec<String>,
    /// The target server.
    pub target_server: String,
    /// The target tool.
    pub tool: Option<String>,
    /// The rule that denied.
    pub rule_id: String,
}

impl Denial {
    /// The client-facing error ([`Error::policy_denied`]).
    pub fn to_error(&self) -> Error {
        Error::policy_denied(self.to_string())
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.tool {
            Some(t) => format!("{}/{t}", self.target_server),
            None => self.target_server.clone(),
        };
        match &self.placeholder {
            Some(p) => {
                let origins = if self.origins.is_empty() {
                    "none".to_owned()
                } else {
                    self.origins.join(", ")
                };
                write!(
                    f,
                    "placeholder {p} (kind {}, origin {origins}) may not be sent to {target} (rule {}); nothing was forwarded",
                    self.kinds.join(", "),
                    self.rule_id
                )
            }
            None => write!(
                f,
                "the request to {target} holds {} that the gateway never issued (rule {}); nothing was forwarded",
                self.kinds.join(", "),
                self.rule_id
            ),
        }
    }
}

/// The verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may be forwarded.
    pub allowed: bool,
    /// The deciding rule: on deny, the rule that denied the first denied part; on allow, the
    /// distinct rules used, in order, joined by `,` (`no-pii` when nothing needed a rule).
    pub rule_id: String,
    /// One verdict per placeholder, in request order.
    pub items: Vec<ItemDecision>,
    /// True when untracked PII was let through under `untracked_pii = "audit"`.
    pub untracked_audit: bool,
    /// Details of a denial.
    pub denial: Option<Denial>,
    /// Hash of the policy that decided.
    pub policy_hash: String,
}

impl Decision {
    /// `Ok(())` when allowed, else the client-facing denial error.
    pub fn check(&self) -> Result<()> {
        match &self.denial {
            None => Ok(()),
            Some(d) => Err(d.to_error()),
        }
    }
}

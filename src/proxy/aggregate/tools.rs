//! The gateway's own tools on `/mcp`: `search_tools`, `check_flow`, `describe_placeholders`
//! and (with `expose = "search"`) `call_tool`; and the facts about flow policy that every
//! aggregated tool carries in its `_meta`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{Tool, ToolAnnotations};
use serde_json::{json, Value};

use super::search::{Index, ToolText};
use super::PolicySource;
use crate::audit::{Auditor, PlaceholderRecord, Record};
use crate::config::Expose;
use crate::detect::Kind;
use crate::exchange::untracked_kinds;
use crate::layer::scope::ClientScope;
use crate::policy::{CrossServer, FlowItem, FlowRequest, Policy, Reveal};
use crate::rewrite::Rewriter;
use crate::vault::Placeholder;

pub(super) const SEARCH_TOOLS: &str = "search_tools";
pub(super) const CHECK_FLOW: &str = "check_flow";
pub(super) const DESCRIBE_PLACEHOLDERS: &str = "describe_placeholders";
pub(super) const CALL_TOOL: &str = "call_tool";

/// `_meta` key: the real server of an aggregated tool.
pub const META_SERVER: &str = "mcp-pii-gateway/server";
/// `_meta` key: the server's own name of the tool.
pub const META_TOOL: &str = "mcp-pii-gateway/tool";
/// `_meta` key: the flows that let placeholders from other servers reach the tool
/// (`[{"kind", "from", "rule"}]`, `kind` `*` for every kind).
pub const META_RECEIVES: &str = "mcp-pii-gateway/receives";
/// `_meta` key: what happens to a placeholder from any other server (`deny` or `allow`).
pub const META_OTHERWISE: &str = "mcp-pii-gateway/otherwise";

/// True for the gateway's own tool names (upstream tools always hold `__`).
pub(super) fn is_own(name: &str) -> bool {
    matches!(
        name,
        SEARCH_TOOLS | CHECK_FLOW | DESCRIBE_PLACEHOLDERS | CALL_TOOL
    )
}

/// What the own tools need.
pub(super) struct Own {
    pub(super) rewriter: Rewriter,
    pub(super) policy: PolicySource,
    pub(super) auditor: Option<Arc<Auditor>>,
}

fn schema(v: Value) -> Arc<serde_json::Map<String, Value>> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(serde_json::Map::new()),
    }
}

fn read_only(t: Tool) -> Tool {
    t.annotate(ToolAnnotations::new().read_only(true))
}

impl Own {
    /// The own tools' definitions: `describe_placeholders` only while the policy reveals
    /// something; `call_tool` only with `expose = "search"`.
    pub(super) fn definitions(&self, expose: Expose) -> Vec<Tool> {
        let mut out = vec![
            read_only(Tool::new(
                SEARCH_TOOLS,
                "Search the tools of every MCP server behind this gateway by keywords (ranked, best \
                 first). detail: \"name\" (default), \"description\", or \"full\" (with input and \
                 output schemas).",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "query": {"type": "string", "description": "Keywords, e.g. \"send an email\"."},
                        "detail": {"type": "string", "enum": ["name", "description", "full"], "default": "name"},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}
                    },
                    "required": ["query"]
                })),
            )),
            read_only(Tool::new(
                CHECK_FLOW,
                "Tell whether the gateway would forward a call of tool (<server>__<tool>) with these \
                 arguments now, and which flow rule decides each placeholder in them. Nothing is \
                 forwarded.",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "tool": {"type": "string"},
                        "arguments": {"type": "object"}
                    },
                    "required": ["tool"]
                })),
            )),
        ];
        if !(self.policy)().reveal().is_empty() {
            out.push(read_only(Tool::new(
                DESCRIBE_PLACEHOLDERS,
                "Facts about the values behind placeholders, never the values: their kind and what \
                 the gateway's policy reveals (email domain, phone country, which placeholders are \
                 the same person).",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "placeholders": {"type": "array", "items": {"type": "string"}, "maxItems": 100}
                    },
                    "required": ["placeholders"]
                })),
            )));
        }
        if expose == Expose::Search {
            out.push(Tool::new(
                CALL_TOOL,
                "Call any tool of the servers behind this gateway by its <server>__<tool> name \
                 (find it with search_tools; detail \"full\" shows its input schema).",
                schema(json!({
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "arguments": {"type": "object"}
                    },
                    "required": ["name"]
                })),
            ));
        }
        out
    }

    /// `check_flow`: the policy's decision for a call, without making it. `resolve` maps an
    /// aggregated tool name to (server, the server's tool name).
    pub(super) fn check_flow(
        &self,
        cs: &ClientScope,
        args: &Value,
        resolve: impl Fn(&str) -> Option<(String, String)>,
    ) -> Value {
        let Some(name) = args.get("tool").and_then(Value::as_str) else {
            return tool_error("check_flow needs tool (a <server>__<tool> name)");
        };
        if is_own(name) {
            return tool_result(
                json!({"allowed": true, "tool": name, "reason": "a tool of the gateway itself"}),
            );
        }
        // The answer names the tool: a name holding PII is no tool's name, and is not repeated.
        let plain = self.rewriter.detector().find(name).is_empty();
        let Some((server, tool)) = resolve(name).filter(|(s, _)| plain && cs.may_use(s)) else {
            return tool_error(&format!(
                "unknown tool {}",
                super::quote(self.rewriter.detector(), name)
            ));
        };
        let arguments = args.get("arguments").cloned().unwrap_or_else(|| json!({}));
        let mut found = Vec::new();
        placeholders_in(&arguments, &mut found);
        let vault = self.rewriter.vault();
        let mut items = Vec::new();
        let mut unknown = Vec::new();
        for text in found {
            let Some(ph) = Placeholder::parse(&text) else {
                continue;
            };
            match vault.resolve(&cs.scope, &ph) {
                Ok(Some(e)) => items.push(FlowItem::new(
                    &text,
                    e.kind,
                    e.origins.iter().map(|o| o.to_string()),
                )),
                Ok(None) => unknown.push(text),
                Err(e) => return tool_error(&format!("the vault cannot answer now: {e}")),
            }
        }
        let untracked = untracked_kinds(self.rewriter.detector(), &arguments);
        let policy = (self.policy)();
        let decision =
            policy.evaluate(&FlowRequest::new(&server, Some(&tool), &items).with_untracked(&untracked));
        let per: Vec<Value> = decision
            .items
            .iter()
            .map(|d| {
                let origins = items
                    .iter()
                    .find(|i| i.placeholder == d.placeholder)
                    .map(|i| i.origins.iter().map(|o| o.to_string()).collect::<Vec<_>>())
                    .unwrap_or_default();
                json!({"placeholder": d.placeholder, "kind": d.kind.as_str(), "origins": origins, "allowed": d.allowed, "rule_id": d.rule_id})
            })
            .collect();
        let allowed = decision.allowed && unknown.is_empty();
        let reason = if !unknown.is_empty() {
            Some(format!(
                "{} {} not issued in this scope; the call would be refused",
                unknown.join(", "),
                if unknown.len() == 1 { "was" } else { "were" }
            ))
        } else {
            decision.denial.as_ref().map(|d| d.to_string())
        };
        let mut out = json!({
            "allowed": allowed,
            "server": server,
            "tool": tool,
            "rule_id": decision.rule_id,
            "placeholders": per,
        });
        if !unknown.is_empty() {
            out["unknown_placeholders"] = json!(unknown);
        }
        if !untracked.is_empty() {
            out["untracked_kinds"] = json!(untracked.iter().map(Kind::as_str).collect::<Vec<_>>());
        }
        if let Some(r) = reason {
            out["reason"] = Value::String(r);
        }
        tool_result(out)
    }

    /// `describe_placeholders`: what the policy's `reveal` list allows, audited.
    pub(super) fn describe(&self, cs: &ClientScope, args: &Value) -> Value {
        let policy = (self.policy)();
        let reveal = policy.reveal();
        if reveal.is_empty() {
            return tool_error(
                "describe_placeholders is off: the gateway's policy reveals nothing ([policy] reveal)",
            );
        }
        let Some(list) = args.get("placeholders").and_then(Value::as_array) else {
            return tool_error("describe_placeholders needs placeholders (a list such as [\"[EMAIL_1]\"])");
        };
        if list.len() > 100 {
            return tool_error("describe_placeholders takes at most 100 placeholders at a time");
        }
        let vault = self.rewriter.vault();
        let mut facts = Vec::new();
        let mut records = Vec::new();
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for item in list {
            let Some(text) = item.as_str() else {
                return tool_error("placeholders must be strings such as \"[EMAIL_1]\"");
            };
            let Some(ph) = Placeholder::parse(text) else {
                // Not a placeholder: echoed only when it holds nothing the detector finds.
                let shown = if self.rewriter.detector().find(text).is_empty() {
                    Value::String(text.to_owned())
                } else {
                    Value::Null
                };
                facts.push(json!({"placeholder": shown, "known": false}));
                continue;
            };
            let entry = match vault.resolve(&cs.scope, &ph) {
                Ok(e) => e,
                Err(e) => return tool_error(&format!("the vault cannot answer now: {e}")),
            };
            let Some(entry) = entry else {
                facts.push(json!({"placeholder": text, "known": false}));
                continue;
            };
            let mut f = json!({"placeholder": text, "known": true, "kind": entry.kind.as_str()});
            let value = entry.value.expose();
            let mut normal = None;
            if entry.kind == Kind::email() {
                let lower = value.to_lowercase();
                if reveal.contains(&Reveal::EmailDomain) {
                    if let Some((_, domain)) = lower.rsplit_once('@') {
                        f["domain"] = Value::String(domain.to_owned());
                    }
                }
                normal = Some(format!("EMAIL:{lower}"));
            } else if entry.kind == Kind::phone() {
                let c = crate::detect::classify_phone(value);
                if reveal.contains(&Reveal::PhoneCountry) {
                    f["country"] = c
                        .as_ref()
                        .map(|c| Value::String(c.1.clone()))
                        .unwrap_or(Value::Null);
                }
                normal = Some(match c {
                    Some((e164, _)) => format!("PHONE:{e164}"),
                    None => format!(
                        "PHONE:{}",
                        value.chars().filter(char::is_ascii_digit).collect::<String>()
                    ),
                });
            }
            if reveal.contains(&Reveal::SamePerson) {
                let key = normal.unwrap_or_else(|| format!("{}:{value}", entry.kind.as_str()));
                let g = groups.entry(key).or_default();
                if !g.iter().any(|p| p == text) {
                    g.push(text.to_owned());
                }
            }
            if let Some(a) = &self.auditor {
                let item = FlowItem::new(
                    text,
                    entry.kind.clone(),
                    entry.origins.iter().map(|o| o.to_string()),
                );
                records.push(a.placeholder(&item, Some(&entry.value)));
            }
            facts.push(f);
        }
        if let Some(a) = &self.auditor {
            if let Err(e) = audit_disclosure(a, cs, &policy, records) {
                // Every answer is audited: one that cannot be is not given.
                tracing::error!(error = %e, "cannot audit describe_placeholders; answer withheld");
                return tool_error("the gateway cannot audit this answer now, so it is not given");
            }
        }
        let mut out = json!({"placeholders": facts});
        if reveal.contains(&Reveal::SamePerson) {
            let same: Vec<&Vec<String>> = groups.values().filter(|g| g.len() > 1).collect();
            out["same_person"] = json!(same);
        }
        tool_result(out)
    }
}

fn audit_disclosure(
    a: &Auditor,
    cs: &ClientScope,
    policy: &Policy,
    restored: Vec<PlaceholderRecord>,
) -> crate::Result<()> {
    let ctx = a.context(
        &cs.client,
        &cs.scope,
        "gateway",
        "tools/call",
        Some(DESCRIBE_PLACEHOLDERS),
    );
    let revealed = policy.reveal().iter().map(|r| r.as_str().to_owned()).collect();
    a.exchange(Record::disclosure(&ctx, restored, revealed, policy.hash()))
        .map(|_| ())
}

/// Every placeholder-shaped text in the strings of `v`, once each, in order.
fn placeholders_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(i) = rest.find('[') {
                rest = &rest[i..];
                let end = rest.find(']').map(|e| e + 1);
                match end {
                    Some(e) if Placeholder::parse(&rest[..e]).is_some() => {
                        let p = rest[..e].to_owned();
                        if !out.contains(&p) {
                            out.push(p);
                        }
                        rest = &rest[e..];
                    }
                    _ => rest = &rest[1..],
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| placeholders_in(x, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            placeholders_in(&Value::String(k.clone()), out);
            placeholders_in(x, out);
        }),
        _ => {}
    }
}

/// Adds the flow-policy facts of `server`'s tool `tool` to its `_meta` (appended last, so the
/// tool's own fields keep their source text).
pub(super) fn annotate(tool_def: &mut Value, server: &str, tool: &str, policy: &Policy) {
    let Some(obj) = tool_def.as_object_mut() else {
        return;
    };
    let receives: Vec<Value> = policy
        .flows()
        .iter()
        .filter(|f| {
            f.to_server == server && f.to_tool.as_deref().is_none_or(|t| t == tool) && f.from != server
        })
        .flat_map(|f| {
            let kinds = f.kinds.clone().unwrap_or_else(|| vec!["*".to_owned()]);
            kinds
                .into_iter()
                .map(|k| json!({"kind": k, "from": f.from, "rule": f.id}))
                .collect::<Vec<_>>()
        })
        .collect();
    let otherwise = match policy.cross_server() {
        CrossServer::Deny => "deny",
        CrossServer::Allow => "allow",
    };
    let facts = [
        (META_SERVER, json!(server)),
        (META_TOOL, json!(tool)),
        (META_RECEIVES, Value::Array(receives)),
        (META_OTHERWISE, json!(otherwise)),
    ];
    let meta_last = obj.keys().next_back().map(String::as_str) == Some("_meta");
    match obj.get_mut("_meta") {
        Some(Value::Object(meta)) if meta_last => {
            for (k, v) in facts {
                meta.insert(k.into(), v);
            }
        }
        Some(_) => {
            // `_meta` elsewhere in the object: move it last (the tool is then written afresh
            // from its value, which is exact for everything but numbers beyond 64 bits).
            let mut meta = match obj.shift_remove("_meta") {
                Some(Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            for (k, v) in facts {
                meta.insert(k.into(), v);
            }
            obj.insert("_meta".into(), Value::Object(meta));
        }
        None => {
            obj.insert(
                "_meta".into(),
                Value::Object(facts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
            );
        }
    }
}

/// Every tool a client may use, for `search_tools`.
pub(super) struct Catalog {
    pub(super) built: Instant,
    tools: Vec<(String, Value)>,
    index: Index,
}

impl Catalog {
    /// `tools`: (server, aggregated tool definition), in catalog order.
    pub(super) fn new(tools: Vec<(String, Value)>) -> Catalog {
        let index = Index::new(tools.iter().map(|(_, t)| {
            ToolText {
                name: t.get("name").and_then(Value::as_str).unwrap_or(""),
                description: t.get("description").and_then(Value::as_str).unwrap_or(""),
                params: t
                    .pointer("/inputSchema/properties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default(),
            }
        }));
        Catalog {
            built: Instant::now(),
            tools,
            index,
        }
    }
}

/// `search_tools`.
pub(super) fn search(c: &Catalog, args: &Value) -> Value {
    let Some(query) = args.get("query").and_then(Value::as_str) else {
        return tool_error("search_tools needs query (keywords)");
    };
    let detail = args.get("detail").and_then(Value::as_str).unwrap_or("name");
    if !matches!(detail, "name" | "description" | "full") {
        return tool_error("detail must be \"name\", \"description\" or \"full\"");
    }
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(10)
        .clamp(1, 100) as usize;
    let hits: Vec<Value> = c
        .index
        .search(query, limit)
        .into_iter()
        .map(|(i, score)| {
            let (server, t) = &c.tools[i];
            let mut h = json!({"name": t.get("name"), "server": server});
            if detail != "name" {
                h["description"] = t.get("description").cloned().unwrap_or(Value::Null);
            }
            if detail == "full" {
                h["inputSchema"] = t.get("inputSchema").cloned().unwrap_or(Value::Null);
                if let Some(o) = t.get("outputSchema") {
                    h["outputSchema"] = o.clone();
                }
            }
            h["score"] = json!((score * 1000.0).round() / 1000.0);
            h
        })
        .collect();
    tool_result(json!({"tools": hits, "total": c.tools.len()}))
}

/// A successful tool result carrying `v` as structured content and as its JSON text.
pub(super) fn tool_result(v: Value) -> Value {
    let text = serde_json::to_string_pretty(&v).unwrap_or_default();
    json!({"content": [{"type": "text", "text": text}], "structuredContent": v, "isError": false})
}

/// A tool error result (`isError: true`), which the model reads.
pub(super) fn tool_error(msg: &str) -> Value {
    json!({"content": [{"type": "text", "text": msg}], "isError": true})
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn placeholders_are_found_in_strings_and_keys() {
        let mut out = Vec::new();
        placeholders_in(
            &json!({"to": "[EMAIL_1]", "cc": ["x [EMAIL_2] y [EMAIL_1]"], "[PHONE_3]": 1, "n": "[not_1] [EMAIL_01]"}),
            &mut out,
        );
        assert_eq!(out, ["[EMAIL_1]", "[EMAIL_2]", "[PHONE_3]"]);
    }

    #[test]
    fn annotate_states_the_flows_into_a_tool() {
        let policy: Policy = r#"
            cross_server = "deny"
            [[flows]]
            id = "crm-to-mail"
            from = "crm"
            to = "mail/send_email"
            kinds = ["EMAIL"]
            [[flows]]
            id = "crm-anything"
            from = "crm"
            to = "mail"
        "#
        .parse()
        .unwrap();
        let mut t = json!({"name": "mail__send_email", "inputSchema": {"type": "object"}});
        annotate(&mut t, "mail", "send_email", &policy);
        assert_eq!(t["_meta"][META_SERVER], "mail");
        assert_eq!(t["_meta"][META_OTHERWISE], "deny");
        assert_eq!(
            t["_meta"][META_RECEIVES],
            json!([{"kind": "EMAIL", "from": "crm", "rule": "crm-to-mail"}, {"kind": "*", "from": "crm", "rule": "crm-anything"}])
        );
        let mut other = json!({"_meta": {"x": 1}, "name": "mail__list"});
        annotate(&mut other, "mail", "list", &policy);
        assert_eq!(other["_meta"]["x"], 1);
        assert_eq!(other.as_object().unwrap().keys().next_back().unwrap(), "_meta");
        assert_eq!(other["_meta"][META_RECEIVES].as_array().unwrap().len(), 1);
    }
}

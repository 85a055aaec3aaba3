//! The catalog: what the gateway's `/mcp` `tools/list` says, checked against its contract.
//!
//! Upstream tools are named `<prefix>__<tool>` (the prefix is the server name with `-` → `_`,
//! never holding `__` nor ending in `_`, so the first `__` splits the name) and carry the
//! gateway's `_meta` keys: `mcp-pii-gateway/server`, `mcp-pii-gateway/tool`,
//! `mcp-pii-gateway/receives` (the flows that let placeholders in) and
//! `mcp-pii-gateway/otherwise` (`deny` or `allow`, for placeholders from any other server).
//! Names without `__` are the gateway's own tools.
//!
//! ```
//! use mcp_pii_gateway::codegen::Catalog;
//! let tools = serde_json::json!([
//!   {"name": "crm__lookup", "inputSchema": {"type": "object"}, "_meta": {
//!     "mcp-pii-gateway/server": "crm", "mcp-pii-gateway/tool": "lookup",
//!     "mcp-pii-gateway/receives": [], "mcp-pii-gateway/otherwise": "deny"}},
//!   {"name": "search_tools", "inputSchema": {"type": "object"}}
//! ]);
//! let c = Catalog::from_tools(tools.as_array().unwrap()).unwrap();
//! assert_eq!(c.servers["crm"][0].name, "lookup");
//! assert_eq!(c.gateway_tools, ["search_tools"]);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::error::{Error, Result};

/// The `_meta` key with the real server name.
pub const META_SERVER: &str = "mcp-pii-gateway/server";
/// The `_meta` key with the upstream tool name.
pub const META_TOOL: &str = "mcp-pii-gateway/tool";
/// The `_meta` key with the flows that let placeholders reach the tool.
pub const META_RECEIVES: &str = "mcp-pii-gateway/receives";
/// The `_meta` key saying what happens to placeholders from any other server.
pub const META_OTHERWISE: &str = "mcp-pii-gateway/otherwise";

/// The catalog of one `tools/list`, sorted: servers by name, each server's tools by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    /// Real server name → its tools, sorted by tool name.
    pub servers: BTreeMap<String, Vec<Tool>>,
    /// The gateway's own tools present (names without `__`), sorted.
    pub gateway_tools: Vec<String>,
}

/// One upstream tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// The upstream tool name.
    pub name: String,
    /// The name to call on `/mcp`: `<prefix>__<tool>`.
    pub qualified: String,
    /// The real server name.
    pub server: String,
    /// The description, if any.
    pub description: Option<String>,
    /// `inputSchema`.
    pub input_schema: Value,
    /// `outputSchema`, if any.
    pub output_schema: Option<Value>,
    /// The flows that let placeholders from other servers reach it, sorted.
    pub receives: Vec<Flow>,
    /// What happens to placeholders from a server no flow names.
    pub otherwise: Otherwise,
}

/// One flow of the policy that reaches a tool: placeholders of `kind` from `from`, by `rule`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flow {
    /// The origin server (`*`: any).
    pub from: String,
    /// The placeholder kind (`EMAIL`, `PHONE`, a custom rule's, or `*`).
    pub kind: String,
    /// The flow rule's id.
    pub rule: String,
}

/// The policy for placeholders from a server no flow names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Otherwise {
    /// They are refused (`cross_server = deny`).
    Deny,
    /// They are accepted (`cross_server = allow`).
    Allow,
}

impl Catalog {
    /// Reads the `tools` of one or more `tools/list` pages. Every departure from the contract
    /// is reported at once, one line each, as a bad-input error.
    pub fn from_tools(tools: &[Value]) -> Result<Catalog> {
        let mut problems = Vec::new();
        let mut catalog = Catalog::default();
        let mut seen = BTreeSet::new();
        let mut gateway = BTreeSet::new();
        for (i, t) in tools.iter().enumerate() {
            let Some(name) = t.get("name").and_then(Value::as_str) else {
                problems.push(format!("tools[{i}]: no string `name`"));
                continue;
            };
            if !seen.insert(name.to_string()) {
                problems.push(format!("{name:?}: listed twice"));
                continue;
            }
            match Tool::from_value(name, t) {
                Ok(Some(tool)) => catalog.servers.entry(tool.server.clone()).or_default().push(tool),
                Ok(None) => {
                    gateway.insert(name.to_string());
                }
                Err(mut p) => problems.append(&mut p),
            }
        }
        if !problems.is_empty() {
            return Err(Error::bad_input(format!(
                "the tool list does not follow the gateway's /mcp contract:\n  {}",
                problems.join("\n  ")
            )));
        }
        for tools in catalog.servers.values_mut() {
            tools.sort_by(|a, b| a.name.cmp(&b.name));
        }
        catalog.gateway_tools = gateway.into_iter().collect();
        Ok(catalog)
    }

    /// Every upstream tool, servers and tools in order.
    pub fn tools(&self) -> impl Iterator<Item = &Tool> {
        self.servers.values().flatten()
    }
}

impl Tool {
    /// The tool for one `tools/list` entry named `name`; `None` for the gateway's own tools;
    /// the problems found otherwise.
    fn from_value(name: &str, t: &Value) -> std::result::Result<Option<Tool>, Vec<String>> {
        let Some((prefix, tool)) = name.split_once("__") else {
            return Ok(None);
        };
        let mut p = Vec::new();
        let mut problem = |s: String| p.push(format!("{name:?}: {s}"));
        if prefix.is_empty() || prefix.ends_with('_') || tool.is_empty() {
            problem("not `<prefix>__<tool>` (empty part, or a prefix ending in `_`)".into());
        }
        // The MCP fields are read with rmcp's model type: what it refuses is not a tool.
        let typed: rmcp::model::Tool = match serde_json::from_value(t.clone()) {
            Ok(typed) => typed,
            Err(e) => {
                problem(format!("not an MCP tool definition ({e})"));
                return Err(p);
            }
        };
        let input_schema = Value::Object((*typed.input_schema).clone());
        let output_schema = typed.output_schema.map(|o| Value::Object((*o).clone()));
        let description = typed.description.map(|d| d.into_owned());
        let meta = t.get("_meta").and_then(Value::as_object);
        let meta_str = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str);
        let server = meta_str(META_SERVER).unwrap_or_default().to_string();
        let upstream = meta_str(META_TOOL).unwrap_or_default().to_string();
        if server.is_empty() {
            problem(format!("no `_meta[{META_SERVER:?}]` string"));
        } else if server.replace('-', "_") != prefix {
            problem(format!(
                "the prefix {prefix:?} is not the server name {server:?} with `-` → `_`"
            ));
        }
        if upstream.is_empty() {
            problem(format!("no `_meta[{META_TOOL:?}]` string"));
        } else if upstream != tool {
            problem(format!(
                "the name's tool part {tool:?} is not `_meta[{META_TOOL:?}]` {upstream:?}"
            ));
        }
        let otherwise = match meta_str(META_OTHERWISE) {
            Some("deny") => Otherwise::Deny,
            Some("allow") => Otherwise::Allow,
            _ => {
                problem(format!(
                    "`_meta[{META_OTHERWISE:?}]` is not \"deny\" or \"allow\""
                ));
                Otherwise::Deny
            }
        };
        let mut receives = Vec::new();
        match meta.and_then(|m| m.get(META_RECEIVES)) {
            Some(Value::Array(flows)) => {
                for (i, f) in flows.iter().enumerate() {
                    let field = |k: &str| f.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
                    match (field("kind"), field("from"), field("rule")) {
                        (Some(kind), Some(from), Some(rule)) => receives.push(Flow {
                            from: from.to_string(),
                            kind: kind.to_string(),
                            rule: rule.to_string(),
                        }),
                        _ => problem(format!(
                            "`_meta[{META_RECEIVES:?}][{i}]` lacks a string kind, from or rule"
                        )),
                    }
                }
            }
            _ => problem(format!("`_meta[{META_RECEIVES:?}]` is not an array")),
        }
        if !p.is_empty() {
            return Err(p);
        }
        receives.sort();
        receives.dedup();
        Ok(Some(Tool {
            name: upstream,
            qualified: name.to_string(),
            server,
            description,
            input_schema,
            output_schema,
            receives,
            otherwise,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn tool(name: &str, server: &str, tool: &str) -> Value {
        json!({"name": name, "inputSchema": {"type": "object"}, "_meta": {
            META_SERVER: server, META_TOOL: tool, META_RECEIVES: [], META_OTHERWISE: "deny"}})
    }

    #[test]
    fn splits_at_the_first_double_underscore() {
        let c = Catalog::from_tools(&[tool("crm_eu__get__all", "crm-eu", "get__all")]).unwrap();
        let t = &c.servers["crm-eu"][0];
        assert_eq!(
            (t.name.as_str(), t.qualified.as_str()),
            ("get__all", "crm_eu__get__all")
        );
    }

    #[test]
    fn reports_every_problem() {
        let mut bad_meta = tool("crm__x", "crm", "y");
        bad_meta["_meta"][META_OTHERWISE] = json!("maybe");
        bad_meta["_meta"][META_RECEIVES] = json!([{"kind": "EMAIL"}]);
        let tools = [
            tool("mail__send", "crm", "send"),
            bad_meta,
            json!({"name": "a_b__c", "inputSchema": {}}),
            json!({"name": "crm__z", "inputSchema": "no"}),
            tool("mail__send", "mail", "send"),
            tool("mail__send", "mail", "send"),
            json!({"nome": 1}),
        ];
        let e = Catalog::from_tools(&tools).unwrap_err().to_string();
        for want in [
            "\"mail__send\": the prefix \"mail\" is not the server name \"crm\"",
            "\"crm__x\": the name's tool part \"x\"",
            "\"crm__x\": `_meta[\"mcp-pii-gateway/otherwise\"]`",
            "lacks a string kind, from or rule",
            "\"a_b__c\": no `_meta[\"mcp-pii-gateway/server\"]` string",
            "\"crm__z\": not an MCP tool definition",
            "\"mail__send\": listed twice",
            "tools[6]: no string `name`",
        ] {
            assert!(e.contains(want), "{want:?} missing in {e}");
        }
    }

    #[test]
    fn sorts_servers_tools_and_flows() {
        let mut b = tool("crm__b", "crm", "b");
        b["_meta"][META_RECEIVES] = json!([
            {"kind": "PHONE", "from": "x", "rule": "r2"},
            {"kind": "EMAIL", "from": "a", "rule": "r1"}]);
        b["_meta"][META_OTHERWISE] = json!("allow");
        let c = Catalog::from_tools(&[
            b,
            tool("crm__a", "crm", "a"),
            tool("aaa__z", "aaa", "z"),
            json!({"name": "check_flow"}),
        ])
        .unwrap();
        let names: Vec<_> = c.tools().map(|t| t.qualified.as_str()).collect();
        assert_eq!(names, ["aaa__z", "crm__a", "crm__b"]);
        let b = &c.servers["crm"][1];
        assert_eq!(b.receives[0].from, "a");
        assert_eq!(b.otherwise, Otherwise::Allow);
        assert_eq!(c.gateway_tools, ["check_flow"]);
    }
}

//! What is written where: every server's directory and every tool's file and function name for
//! one language, decided once, deterministically, with every collision explained; plus the text
//! both languages share (the flow-policy sentences, first sentences, cleaned descriptions).

use std::collections::BTreeMap;

use super::catalog::{Catalog, Otherwise, Tool};
use super::names::{py_ident, ts_function, ts_ident, type_name, Namer};
use super::schema::{Ty, Types};
use super::Lang;

/// The layout of the tree for one language.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    /// Servers in name order.
    pub servers: Vec<ServerPlan<'a>>,
}

/// One server's directory.
#[derive(Debug)]
pub(crate) struct ServerPlan<'a> {
    /// The real server name.
    pub name: &'a str,
    /// Its directory under `servers/` (also its module name).
    pub dir: String,
    /// Why `dir` is not the plain sanitised name, if it is not.
    pub note: Option<String>,
    /// Its tools in name order.
    pub tools: Vec<ToolPlan<'a>>,
}

/// One tool's file and function.
#[derive(Debug)]
pub(crate) struct ToolPlan<'a> {
    /// The tool.
    pub tool: &'a Tool,
    /// The file name without extension (Python: also the module name).
    pub file: String,
    /// The function name.
    pub function: String,
    /// Why the names carry a suffix, if they do.
    pub note: Option<String>,
}

/// Names a generated tool module imports, which a tool function or type must not take.
pub(crate) const TS_MODULE_NAMES: &[&str] = &["callMCPTool", "ToolResult"];
pub(crate) const PY_MODULE_NAMES: &[&str] = &[
    "annotations",
    "Any",
    "Literal",
    "NotRequired",
    "TypedDict",
    "ToolResult",
    "call_mcp_tool",
];
/// File names a server directory holds besides the tools.
const TS_FILES: &[&str] = &["index"];
const PY_FILES: &[&str] = &["__init__"];

impl<'a> Plan<'a> {
    /// The layout of `catalog` in `lang`.
    pub fn new(catalog: &'a Catalog, lang: Lang) -> Plan<'a> {
        let mut dirs = Namer::default();
        let mut dir_owner: BTreeMap<String, &str> = BTreeMap::new();
        let mut servers = Vec::new();
        for (name, tools) in &catalog.servers {
            let base = match lang {
                Lang::Python => py_ident(name),
                Lang::TypeScript => ts_ident(name),
            };
            let dir = dirs.claim(&base);
            let note = (dir != base).then(|| {
                let by = dir_owner
                    .get(&base.to_ascii_lowercase())
                    .map_or("another server".to_string(), |o| format!("server {o:?}"));
                format!(
                    "Server {name:?} is in `{dir}`: `{base}` is taken by {by} (the names collide \
                     once made valid module names)."
                )
            });
            dir_owner.insert(dir.to_ascii_lowercase(), name);
            servers.push(ServerPlan {
                name,
                dir,
                note,
                tools: plan_tools(tools, lang),
            });
        }
        Plan { servers }
    }
}

fn plan_tools(tools: &[Tool], lang: Lang) -> Vec<ToolPlan<'_>> {
    let (module_names, files) = match lang {
        Lang::TypeScript => (TS_MODULE_NAMES, TS_FILES),
        Lang::Python => (PY_MODULE_NAMES, PY_FILES),
    };
    let mut file_names = Namer::with_reserved(files);
    let mut functions = Namer::with_reserved(module_names);
    // Who holds each name taken so far (names in lower case, as the namers compare them).
    let mut file_owner: BTreeMap<String, &str> = BTreeMap::new();
    let mut function_owner: BTreeMap<String, &str> = BTreeMap::new();
    let mut out = Vec::new();
    for tool in tools {
        let (file, function) = match lang {
            Lang::TypeScript => (ts_ident(&tool.name), ts_function(&tool.name)),
            Lang::Python => (py_ident(&tool.name), py_ident(&tool.name)),
        };
        let claimed = Namer::claim_together(&mut [&mut file_names, &mut functions], &[&file, &function]);
        let note = (claimed[0] != file).then(|| {
            let (taken, owner) = if file_names_taken_by(&file_owner, &file, files) {
                (&file, file_owner.get(&file.to_ascii_lowercase()))
            } else {
                (&function, function_owner.get(&function.to_ascii_lowercase()))
            };
            let by = owner.map_or("a name the generated code uses".to_string(), |o| {
                format!("tool {o:?}")
            });
            format!(
                "Named `{}` (file `{}`): `{taken}` is taken by {by} on this server (the names \
                 collide once made valid).",
                claimed[1], claimed[0]
            )
        });
        file_owner.insert(claimed[0].to_ascii_lowercase(), &tool.name);
        function_owner.insert(claimed[1].to_ascii_lowercase(), &tool.name);
        let mut claimed = claimed.into_iter();
        out.push(ToolPlan {
            tool,
            file: claimed.next().expect("two names"),
            function: claimed.next().expect("two names"),
            note,
        });
    }
    out
}

/// Whether `file` was taken (by a tool in `owners`, or as one of the `reserved` file names).
fn file_names_taken_by(owners: &BTreeMap<String, &str>, file: &str, reserved: &[&str]) -> bool {
    let lower = file.to_ascii_lowercase();
    owners.contains_key(&lower) || reserved.iter().any(|r| r.eq_ignore_ascii_case(file))
}

/// A string literal valid in both languages: JSON's escapes (`\"`, `\\`, `\n`, `\uXXXX`, ...)
/// are TypeScript's and Python's, and serde_json escapes nothing else.
pub(crate) fn string_literal(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

/// Union members joined with ` | `, each once, in order.
pub(crate) fn union_of(members: impl Iterator<Item = String>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for m in members {
        if !parts.contains(&m) {
            parts.push(m);
        }
    }
    parts.join(" | ")
}

/// Text from a server made safe to embed: `\r\n` → `\n`, other control characters dropped,
/// trimmed.
pub(crate) fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect::<String>()
        .trim()
        .to_string()
}

/// The first sentence of a description, on one line and at most 200 characters.
pub(crate) fn first_sentence(description: Option<&str>) -> String {
    let text = clean(description.unwrap_or(""));
    let line = text.lines().next().unwrap_or("").trim();
    let end = line
        .char_indices()
        .find(|&(i, c)| {
            matches!(c, '.' | '!' | '?') && line[i + c.len_utf8()..].starts_with(char::is_whitespace)
        })
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(line.len());
    let sentence = &line[..end];
    if sentence.chars().count() > 200 {
        let cut: String = sentence.chars().take(199).collect();
        format!("{}…", cut.trim_end())
    } else {
        sentence.to_string()
    }
}

/// A tool's types: its object types (names unique in the namer it was given) and the input's
/// and output's types with the names they asked for.
pub(crate) struct ToolTypes {
    /// The object types.
    pub types: Types,
    /// The input's name and type.
    pub input: (String, Ty),
    /// The output's name and type, when the tool has an `outputSchema`.
    pub output: Option<(String, Ty)>,
}

impl ToolTypes {
    /// The types of `tool`, named after it and unique in `names`.
    pub fn new(tool: &Tool, names: Namer) -> ToolTypes {
        let base = type_name(&tool.name);
        let mut types = Types::with_names(names);
        let input_name = format!("{base}Input");
        let input = types.add(&tool.input_schema, &input_name);
        let output = tool.output_schema.as_ref().map(|s| {
            let name = format!("{base}Output");
            let ty = types.add(s, &name);
            (name, ty)
        });
        ToolTypes {
            types,
            input: (input_name, input),
            output,
        }
    }
}

/// A tool's doc text: its description, what the flow policy means for it, why its name has a
/// suffix (if it has), and what it calls; `code` quotes code (`` ` `` or ``` `` ```).
pub(crate) fn tool_doc(t: &ToolPlan<'_>, code: &str, result: &str) -> String {
    let mut text = match &t.tool.description {
        Some(d) => format!("{}\n\n", clean(d)),
        None => String::new(),
    };
    text.push_str(&flow_text(t.tool));
    if let Some(note) = &t.note {
        text.push_str("\n\n");
        text.push_str(note);
    }
    text.push_str(&format!(
        "\n\nCalls {code}{}{code} on the gateway; returns the result's \
         {code}structuredContent{code} when it has one, else {result}.",
        t.tool.qualified
    ));
    text
}

/// What the flow policy means for `tool`, as sentences for its doc comment.
pub(crate) fn flow_text(tool: &Tool) -> String {
    let own = format!("placeholders from {} itself are always accepted", tool.server);
    let otherwise = match tool.otherwise {
        Otherwise::Deny => "refused (cross_server = deny)",
        Otherwise::Allow => "accepted (cross_server = allow)",
    };
    if tool.receives.is_empty() {
        return format!(
            "Flow policy: no flow names this tool; placeholders from other servers are \
             {otherwise}, and {own}."
        );
    }
    let flows: Vec<String> = tool
        .receives
        .iter()
        .map(|f| {
            let kind = if f.kind == "*" { "any placeholder" } else { &f.kind };
            let from = if f.from == "*" { "any server" } else { &f.from };
            format!("{kind} from {from} (flow {})", f.rule)
        })
        .collect();
    format!(
        "Flow policy: receives {}. Placeholders from any other server are {otherwise}; {own}.",
        flows.join("; ")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::catalog::Flow;
    use super::*;
    use serde_json::json;

    fn tool(server: &str, name: &str) -> Tool {
        Tool {
            name: name.into(),
            qualified: format!("{}__{name}", server.replace('-', "_")),
            server: server.into(),
            description: None,
            input_schema: json!({"type": "object"}),
            output_schema: None,
            receives: Vec::new(),
            otherwise: Otherwise::Deny,
        }
    }

    #[test]
    fn flow_sentences() {
        let mut t = tool("mail", "send");
        assert_eq!(
            flow_text(&t),
            "Flow policy: no flow names this tool; placeholders from other servers are refused \
             (cross_server = deny), and placeholders from mail itself are always accepted."
        );
        t.receives = vec![
            Flow {
                from: "crm".into(),
                kind: "EMAIL".into(),
                rule: "crm-to-mail".into(),
            },
            Flow {
                from: "*".into(),
                kind: "*".into(),
                rule: "any".into(),
            },
        ];
        t.otherwise = Otherwise::Allow;
        assert_eq!(
            flow_text(&t),
            "Flow policy: receives EMAIL from crm (flow crm-to-mail); any placeholder from any \
             server (flow any). Placeholders from any other server are accepted (cross_server = \
             allow); placeholders from mail itself are always accepted."
        );
    }

    #[test]
    fn first_sentences() {
        assert_eq!(
            first_sentence(Some("Looks up a customer. By email.")),
            "Looks up a customer."
        );
        assert_eq!(first_sentence(Some("v1.2 is out\nmore")), "v1.2 is out");
        assert_eq!(first_sentence(Some("  \r\n")), "");
        assert_eq!(first_sentence(None), "");
        let long = "x".repeat(500);
        assert_eq!(first_sentence(Some(&long)).chars().count(), 200);
    }

    #[test]
    fn collisions_get_suffixes_and_notes() {
        let mut c = Catalog::default();
        c.servers.insert(
            "crm-eu".into(),
            vec![
                tool("crm-eu", "get-user"),
                tool("crm-eu", "get_user"),
                tool("crm-eu", "index"),
            ],
        );
        c.servers.insert("crm_eu".into(), vec![tool("crm_eu", "x")]);
        let p = Plan::new(&c, Lang::Python);
        assert_eq!(p.servers[0].dir, "crm_eu");
        assert_eq!(p.servers[1].dir, "crm_eu_2");
        assert!(p.servers[1]
            .note
            .as_deref()
            .unwrap()
            .contains("taken by server \"crm-eu\""));
        let tools = &p.servers[0].tools;
        assert_eq!(tools[0].function, "get_user");
        assert_eq!(tools[1].function, "get_user_2");
        assert!(tools[1].note.as_deref().unwrap().contains("tool \"get-user\""));
        let mut chain = Catalog::default();
        for s in ["X", "x", "x_2"] {
            chain.servers.insert(s.into(), vec![tool(s, "t")]);
        }
        let p = Plan::new(&chain, Lang::Python);
        let dirs: Vec<_> = p.servers.iter().map(|s| s.dir.as_str()).collect();
        assert_eq!(dirs, ["X", "x_2", "x_2_2"]);
        assert!(p.servers[2]
            .note
            .as_deref()
            .unwrap()
            .contains("taken by server \"x\""));
        let p = Plan::new(&c, Lang::TypeScript);
        let tools = &p.servers[0].tools;
        assert_eq!(
            (tools[1].file.as_str(), tools[1].function.as_str()),
            ("get_user_2", "getUser_2")
        );
        assert_eq!(tools[2].file, "index_2");
        assert!(tools[2]
            .note
            .as_deref()
            .unwrap()
            .contains("a name the generated code uses"));
    }
}

//! The code-API generator: the gateway's `/mcp` catalog as a `servers/` tree of typed functions,
//! for agents that write code against MCP servers instead of calling tools one by one.
//!
//! ```text
//! servers/
//!   README.md              what an agent reads first: servers, one line per tool, the gateway's tools
//!   _client.py | .ts       the runtime: one MCP session to /mcp, callMCPTool, the gateway's tools
//!   __init__.py | index.ts every server
//!   crm/
//!     __init__.py | index.ts     re-exports every tool of crm
//!     lookup_customer.py | .ts   LookupCustomerInput, LookupCustomerOutput, lookup_customer / lookupCustomer
//! ```
//!
//! The steps, each usable alone:
//! 1. [`fetch`] gets the `tools/list` of `/mcp` ([`fetch::catalog_from_url`]) or of a gateway
//!    started in this process from its configuration ([`fetch::catalog_from_config`]).
//! 2. [`Catalog::from_tools`] checks the list against the gateway's contract (see [`catalog`]):
//!    `<prefix>__<tool>` names and the `mcp-pii-gateway/*` `_meta` keys that say what the flow
//!    policy lets each tool receive.
//! 3. [`generate`] turns a catalog into files, in memory: pure and deterministic (servers and
//!    tools sorted, no timestamps), so the same catalog always gives the same bytes.
//! 4. [`write()`] puts them under `DIR/servers` and removes what an earlier generation wrote for
//!    tools that are gone.
//!
//! What each tool file holds:
//! - the input and output types from `inputSchema` / `outputSchema` ([`schema`]): TypeScript
//!   interfaces or Python `TypedDict`s (required keys plain, the others optional), arrays,
//!   enums and `const` as literal types, unions, nested objects and local `$ref`s
//!   (`#/$defs/...`) as named types; what is not modelled (remote or cyclic `$ref`, `allOf` of
//!   several schemas, tuples) is `unknown` / `Any`;
//! - a doc comment with the tool's description and what the flow policy means for it: which
//!   kinds it receives from which servers by which flow rule, whether placeholders from other
//!   servers are refused or accepted, and that its own server's placeholders always are;
//! - one async function calling `callMCPTool('<prefix>__<tool>', input)` (Python:
//!   `call_mcp_tool`), returning the result's `structuredContent` when it has one, else the
//!   result.
//!
//! Names ([`names`]): a server's directory is its name made a valid module name (`crm-eu` →
//! `crm_eu`); a tool's file is its name made a valid identifier; its function is that name in
//! Python and its lowerCamelCase in TypeScript (`lookup_customer` → `lookupCustomer`). Keywords
//! get a trailing `_`, a leading digit a leading `_`, anything outside `[A-Za-z0-9_]` becomes `_`,
//! so no name can leave its directory. Two names that become one (ignoring case, as file systems
//! may) are told apart by `_2`, `_3`, ... in name order, and the file says why.
//!
//! The runtime (`servers/_client.py` on the `mcp` package 2.x, `servers/_client.ts` on
//! `@modelcontextprotocol/sdk`) connects on first use, once per process, to `MCP_GATEWAY_URL`
//! (default `http://127.0.0.1:8080/mcp`): one session, so one placeholder scope for the whole
//! script. It sends `Authorization: Bearer $MCP_GATEWAY_TOKEN` and the scope header with
//! `$MCP_GATEWAY_SCOPE` when those are set; the header's name is the configuration's
//! `[scope] header` when generated from it ([`Options::scope_header`]), else
//! `$MCP_GATEWAY_SCOPE_HEADER`. A result with `isError: true`, or a call the gateway refuses,
//! raises `ToolError`.
//!
//! Generated files start with a line holding [`HEADER`]; only such files are ever removed.
//!
//! ```
//! use mcp_pii_gateway::codegen::{generate, Catalog, Lang, Options};
//! let tools = serde_json::json!([{
//!     "name": "crm__lookup_customer",
//!     "description": "Looks up a customer by email. Returns the record.",
//!     "inputSchema": {"type": "object", "properties": {"email": {"type": "string"}}, "required": ["email"]},
//!     "_meta": {"mcp-pii-gateway/server": "crm", "mcp-pii-gateway/tool": "lookup_customer",
//!               "mcp-pii-gateway/receives": [], "mcp-pii-gateway/otherwise": "deny"}
//! }]);
//! let catalog = Catalog::from_tools(tools.as_array().unwrap()).unwrap();
//! let files = generate(&catalog, &Options::new(Lang::Python));
//! let tool = files.iter().find(|f| f.path == "servers/crm/lookup_customer.py").unwrap();
//! assert!(tool.contents.contains("async def lookup_customer(input: LookupCustomerInput)"));
//! assert!(tool.contents.contains("call_mcp_tool(\"crm__lookup_customer\", input)"));
//! let readme = files.iter().find(|f| f.path == "servers/README.md").unwrap();
//! assert!(readme.contents.contains("- `lookup_customer` (`lookup_customer.py`): Looks up a customer by email.\n"));
//! ```

pub mod catalog;
pub mod fetch;
pub mod names;
mod plan;
mod python;
pub mod schema;
mod typescript;
mod write;

use std::fmt::Write as _;

pub use catalog::{Catalog, Flow, Otherwise, Tool};
pub use write::{is_generated, write, Written};

use plan::{first_sentence, Plan};

/// The marker on the first line of every generated file (after the comment opener).
pub const HEADER: &str = "Generated by mcp-pii-gateway codegen; edits are overwritten.";

/// The language of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// TypeScript (ES modules).
    TypeScript,
    /// Python (3.11+).
    Python,
}

impl Lang {
    /// The file extension of its source files.
    pub fn extension(self) -> &'static str {
        match self {
            Lang::TypeScript => "ts",
            Lang::Python => "py",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The language.
    pub lang: Lang,
    /// The gateway's scope header name (`[scope] header`), built into the runtime when known.
    /// Default: none (the runtime reads `MCP_GATEWAY_SCOPE_HEADER`).
    pub scope_header: Option<String>,
}

impl Options {
    /// Options for `lang`, without a scope header name.
    pub fn new(lang: Lang) -> Options {
        Options {
            lang,
            scope_header: None,
        }
    }

    /// Builds `name` into the runtime as the scope header.
    pub fn scope_header(mut self, name: impl Into<String>) -> Options {
        self.scope_header = Some(name.into());
        self
    }
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Its path relative to the output directory, `/`-separated, always under `servers/`.
    pub path: String,
    /// Its contents.
    pub contents: String,
}

impl File {
    fn new(path: impl Into<String>, contents: impl Into<String>) -> File {
        File {
            path: path.into(),
            contents: contents.into(),
        }
    }

    /// The runtime from its template: the marker line after `comment`, and the scope header's
    /// name (a literal of the language, or `none`) in place of `__SCOPE_HEADER__`.
    fn runtime(path: &str, comment: &str, template: &str, scope: Option<String>, none: &str) -> File {
        let scope = scope.unwrap_or_else(|| none.to_string());
        File::new(
            path,
            format!(
                "{comment} {HEADER}\n{}",
                template.replace("__SCOPE_HEADER__", &scope)
            ),
        )
    }
}

/// The files of the `servers/` tree for `catalog`, sorted by path. Pure: the same catalog and
/// options always give the same files.
pub fn generate(catalog: &Catalog, options: &Options) -> Vec<File> {
    let plan = Plan::new(catalog, options.lang);
    let mut files = match options.lang {
        Lang::TypeScript => typescript::render(&plan, options),
        Lang::Python => python::render(&plan, options),
    };
    files.push(File::new(
        "servers/README.md",
        readme(catalog, &plan, options.lang),
    ));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

/// The gateway's own tools: name, runtime wrapper (Python, TypeScript), what it does.
const GATEWAY_TOOLS: &[(&str, &str, &str, &str)] = &[
    (
        "search_tools",
        "search_tools(query, detail=None, limit=None)",
        "searchTools(query, detail?, limit?)",
        "ranked keyword search over every tool you may call",
    ),
    (
        "check_flow",
        "check_flow(tool, arguments)",
        "checkFlow(tool, args)",
        "would the flow policy let this call through? (nothing is forwarded)",
    ),
    (
        "describe_placeholders",
        "describe_placeholders(placeholders)",
        "describePlaceholders(placeholders)",
        "what the policy lets out about placeholders (kind, email domain, phone country, same \
         person), never their values",
    ),
    (
        "call_tool",
        "call_mcp_tool(\"call_tool\", input)",
        "callMCPTool(\"call_tool\", input)",
        "call a catalog tool by name",
    ),
];

fn readme(catalog: &Catalog, plan: &Plan<'_>, lang: Lang) -> String {
    let ext = lang.extension();
    let mut r = format!("<!-- {HEADER} -->\n# MCP servers as code\n\n");
    r.push_str(
        "Every MCP server behind the gateway is a directory here, and every tool a file with its \
         input and output types and one async function. Read this list, then only the files of \
         the tools you need.\n\n\
         Results hold placeholders such as `[EMAIL_1]` and `[PHONE_2]` instead of real email \
         addresses and phone numbers. Pass them to other tools as they are: the gateway puts the \
         real values back on the way to the server, when its flow policy lets that server \
         receive them (each tool's doc comment says which). All calls of one process share one \
         session, so its placeholders stay valid for the whole script.\n\n",
    );
    let example = plan.servers.iter().find_map(|s| s.tools.first().map(|t| (s, t)));
    match lang {
        Lang::Python => {
            r.push_str("```python\nimport asyncio\n");
            if let Some((s, t)) = example {
                let _ = write!(
                    r,
                    "from servers.{} import {}\n\n\nasync def main():\n    # The input: see servers/{}/{}.py\n    result = await {}({{}})\n",
                    s.dir, t.function, s.dir, t.file, t.function
                );
            } else {
                r.push_str("from servers._client import search_tools\n\n\nasync def main():\n    result = await search_tools(\"...\")\n");
            }
            r.push_str("\n\nasyncio.run(main())\n```\n\n");
        }
        Lang::TypeScript => {
            r.push_str("```typescript\n");
            if let Some((s, t)) = example {
                let _ = write!(
                    r,
                    "import {{ {} }} from \"./servers/{}/index.js\";\nimport {{ close }} from \"./servers/_client.js\";\n\n// The input: see servers/{}/{}.ts\nconst result = await {}({{}});\nawait close();\n",
                    t.function, s.dir, s.dir, t.file, t.function
                );
            } else {
                r.push_str("import { close, searchTools } from \"./servers/_client.js\";\n\nconst result = await searchTools(\"...\");\nawait close();\n");
            }
            r.push_str("```\n\n");
        }
    }
    let _ = write!(
        r,
        "The connection (`_client.{ext}`) reads `MCP_GATEWAY_URL` (default \
         `http://127.0.0.1:8080/mcp`), `MCP_GATEWAY_TOKEN`, `MCP_GATEWAY_SCOPE` and \
         `MCP_GATEWAY_SCOPE_HEADER`. A tool that reports an error, or a call the gateway refuses, \
         raises `ToolError`.\n\n## The gateway's own tools\n\n"
    );
    let present: Vec<_> = GATEWAY_TOOLS
        .iter()
        .filter(|g| catalog.gateway_tools.iter().any(|t| t == g.0))
        .collect();
    if present.is_empty() {
        r.push_str("This gateway lists none of its own tools.\n");
    } else {
        let _ = writeln!(r, "In `servers/_client.{ext}`:\n");
        for (_, py, ts, what) in present {
            let call = match lang {
                Lang::Python => py,
                Lang::TypeScript => ts,
            };
            let _ = writeln!(r, "- `{call}`: {what}.");
        }
    }
    let other: Vec<_> = catalog
        .gateway_tools
        .iter()
        .filter(|t| !GATEWAY_TOOLS.iter().any(|g| g.0 == t.as_str()))
        .collect();
    for t in other {
        let call = match lang {
            Lang::Python => format!("call_mcp_tool({t:?}, input)"),
            Lang::TypeScript => format!("callMCPTool({t:?}, input)"),
        };
        let _ = writeln!(r, "- `{call}`");
    }
    r.push_str("\n## Servers\n");
    if plan.servers.is_empty() {
        r.push_str("\nNo server tools are listed for this client.\n");
    }
    for s in &plan.servers {
        let _ = write!(r, "\n### {} (`servers/{}/`)\n\n", s.name, s.dir);
        if let Some(note) = &s.note {
            let _ = writeln!(r, "{note}\n");
        }
        for t in &s.tools {
            let summary = first_sentence(t.tool.description.as_deref());
            let _ = write!(r, "- `{}` (`{}.{ext}`)", t.function, t.file);
            if !summary.is_empty() {
                let _ = write!(r, ": {}", summary.replace('`', "'"));
            }
            r.push('\n');
        }
    }
    r
}

//! The code-API generator end to end: a synthetic catalog of 120+ tools generated twice in both
//! languages (same bytes, nothing outside the output directory, stale files removed); the
//! Python tree compiled and imported by the interpreter of the `mcp` SDK's venv; the TypeScript
//! tree type-checked by `tsc --strict` against `@modelcontextprotocol/sdk`; the CLI against a
//! fake `/mcp` (paging, token, errors); and a Python script calling tools through the generated
//! runtime. The interpreters come from `scripts/install-test-deps.sh` (`.ci/venv`, `.ci/node`):
//! those tests are skipped without them, and fail under `CI=true`.
#![allow(clippy::unwrap_used)]

mod codegen_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use codegen_support::*;
use mcp_pii_gateway::codegen::{self, Catalog, Lang, Options};
use serde_json::{json, Value};

/// Every file under `dir`, relative path → bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if p.file_name().unwrap() != "__pycache__" && p.file_name().unwrap() != "node_modules" {
                    walk(root, &p, out);
                }
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn catalog(tools: &[Value]) -> Catalog {
    Catalog::from_tools(tools).unwrap()
}

fn generate_into(dir: &Path, tools: &[Value], lang: Lang) -> codegen::Written {
    let files = codegen::generate(&catalog(tools), &Options::new(lang).scope_header("x-run-id"));
    codegen::write(dir, &files).unwrap()
}

#[test]
fn synthetic_catalog_twice_gives_the_same_bytes_and_stays_inside_dir() {
    let tools = synthetic_catalog();
    assert!(tools.len() > 100);
    for lang in [Lang::Python, Lang::TypeScript] {
        let root = temp_dir(&format!("determinism-{lang:?}"));
        std::fs::write(root.join("sentinel"), "keep").unwrap();
        let out = root.join("out");
        let first = generate_into(&out, &tools, lang);
        let before = snapshot(&root);
        let second = generate_into(&out, &tools, lang);
        assert_eq!(snapshot(&root), before, "{lang:?}: regenerating changed bytes");
        assert!(second.written.is_empty() && second.removed.is_empty());
        assert_eq!(second.unchanged, first.written.len());
        // A fresh directory gets the same bytes too.
        let other = temp_dir(&format!("determinism-{lang:?}-2"));
        generate_into(&other, &tools, lang);
        let strip = |m: BTreeMap<String, Vec<u8>>, p: &str| -> BTreeMap<String, Vec<u8>> {
            m.into_iter()
                .filter_map(|(k, v)| k.strip_prefix(p).map(|k| (k.to_string(), v)))
                .collect()
        };
        assert_eq!(strip(snapshot(&other), ""), strip(before.clone(), "out/"));
        // Nothing but out/servers/... and the sentinel.
        for path in before.keys() {
            assert!(
                path == "sentinel" || path.starts_with("out/servers/"),
                "{lang:?}: wrote {path}"
            );
        }
        assert_eq!(std::fs::read_to_string(root.join("sentinel")).unwrap(), "keep");
        let ext = lang.extension();
        let not_tools = match lang {
            Lang::Python => ["__init__.py", "_client.py"],
            Lang::TypeScript => ["index.ts", "_client.ts"],
        };
        let per_tool = before
            .keys()
            .filter(|p| p.ends_with(&format!(".{ext}")))
            .filter(|p| !not_tools.iter().any(|n| p.rsplit('/').next() == Some(n)))
            .count();
        assert_eq!(
            per_tool,
            catalog(&tools).tools().count(),
            "{lang:?}: one file per tool"
        );
        let escape = format!("out/servers/crm/escape.{ext}");
        assert!(before.contains_key(&escape), "{lang:?}: ../../escape is {escape}");
    }
}

#[test]
fn collisions_are_disambiguated_and_explained() {
    let files = codegen::generate(&catalog(&synthetic_catalog()), &Options::new(Lang::Python));
    let get = |p: &str| {
        &files
            .iter()
            .find(|f| f.path == p)
            .unwrap_or_else(|| panic!("{p}"))
            .contents
    };
    // get-user and get_user both become get_user: the first in name order keeps it.
    assert!(get("servers/crm/GetUser.py").contains("async def GetUser("));
    assert!(get("servers/crm/get_user.py").contains("async def get_user("));
    let second = get("servers/crm/get_user_2.py");
    assert!(second.contains("async def get_user_2("), "{second}");
    assert!(second.contains("is taken by tool \"get-user\""), "{second}");
    assert!(get("servers/crm/class_.py").contains("async def class_("));
    assert!(get("servers/crm/call_mcp_tool_2.py").contains("a name the generated code uses"));
    assert!(get("servers/crm/__init__.py").contains("from .get_user_2 import get_user_2"));
    assert!(get("servers/class_/__init__.py").contains("The tools of server \"class\"."));
    assert!(get("servers/_3d_print/__init__.py").contains("The tools of server \"3d-print\"."));
    let readme = get("servers/README.md");
    assert!(readme.contains("### crm-eu (`servers/crm_eu/`)"), "{readme}");
    assert!(
        readme.contains("- `search_tools(query, detail=None, limit=None)`"),
        "{readme}"
    );
    assert!(
        readme.contains("- `call_mcp_tool(\"future_gateway_tool\", input)`"),
        "{readme}"
    );
    assert!(
        !readme.contains("check_flow"),
        "only the gateway tools listed: {readme}"
    );
}

#[test]
fn stale_generated_files_are_removed_and_others_kept() {
    let dir = temp_dir("stale");
    let tools = crm_and_mail();
    generate_into(&dir, &tools, Lang::Python);
    std::fs::write(dir.join("servers/crm/notes.py"), "# mine\n").unwrap();
    std::fs::write(
        dir.join("servers/mail/mine.txt"),
        "Generated by mcp-pii-gateway codegen; edits are overwritten.\n",
    )
    .unwrap();
    let fewer: Vec<Value> = tools
        .iter()
        .filter(|t| t["name"] != "mail__send_email")
        .cloned()
        .collect();
    let w = generate_into(&dir, &fewer, Lang::Python);
    assert_eq!(
        w.removed,
        ["servers/mail/__init__.py", "servers/mail/send_email.py"]
    );
    assert!(dir.join("servers/crm/notes.py").exists());
    assert!(
        dir.join("servers/mail/mine.txt").exists(),
        "no marker line: not ours"
    );
    // Switching language replaces the tree.
    let w = generate_into(&dir, &tools, Lang::TypeScript);
    assert!(w.removed.iter().all(|p| p.ends_with(".py")), "{:?}", w.removed);
    assert!(!dir.join("servers/_client.py").exists());
    assert!(dir.join("servers/crm/notes.py").exists());
}

#[test]
fn python_tree_compiles_and_imports() {
    let Some(python) = python() else { return };
    let dir = temp_dir("python-import");
    generate_into(&dir, &synthetic_catalog(), Lang::Python);
    let c = catalog(&synthetic_catalog());
    let packages: Vec<String> = std::fs::read_dir(dir.join("servers"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(packages.len(), c.servers.len());
    let script = format!(
        "import compileall, importlib, sys, typing\n\
         ok = compileall.compile_dir('servers', quiet=1, force=True)\n\
         assert ok, 'py_compile failed'\n\
         n = 0\n\
         for p in {packages:?}:\n\
         \x20   m = importlib.import_module('servers.' + p)\n\
         \x20   for name in m.__all__:\n\
         \x20       f = getattr(m, name)\n\
         \x20       typing.get_type_hints(f)\n\
         \x20       n += 1\n\
         import servers._client\n\
         print(n)\n"
    );
    let out = run_python(&python, &dir, &script, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), c.tools().count().to_string());
}

#[test]
fn typescript_tree_type_checks_strictly() {
    let Some((node, modules)) = node() else { return };
    let dir = temp_dir("typescript-tsc");
    generate_into(&dir, &synthetic_catalog(), Lang::TypeScript);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&modules, dir.join("node_modules")).unwrap();
    std::fs::write(
        dir.join("use.ts"),
        "import { crm } from \"./servers/index.js\";\n\
         import { close, searchTools } from \"./servers/_client.js\";\n\
         export async function main(): Promise<void> {\n\
         \x20 const r = await crm.tool10Crm({ email: \"[EMAIL_1]\", from: \"crm\", address: { city: \"x\" } });\n\
         \x20 const ok: boolean = r.ok;\n\
         \x20 await searchTools(\"send\", undefined, 3);\n\
         \x20 await crm.tool03Crm();\n\
         \x20 void ok;\n\
         \x20 await close();\n\
         }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tsconfig.json"),
        json!({"compilerOptions": {
            "strict": true, "noEmit": true, "target": "es2022", "module": "nodenext",
            "moduleResolution": "nodenext", "types": ["node"], "skipLibCheck": true,
            "noUnusedLocals": true, "noImplicitReturns": true},
          "include": ["servers/**/*.ts", "use.ts"]})
        .to_string(),
    )
    .unwrap();
    let out = Command::new(node)
        .current_dir(&dir)
        .arg(modules.join("typescript/bin/tsc"))
        .args(["-p", "tsconfig.json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tsc --strict failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cli_pages_through_tools_list_and_a_script_calls_tools_through_the_runtime() {
    let fake = FakeMcp::start(crm_and_mail(), 2, Some("t0ken"));
    let (dir, said) = generate_from("cli-e2e", &fake.url, "python", &["--token", "t0ken"]);
    assert!(said.contains("2 servers, 3 tools"), "{said}");
    let send = std::fs::read_to_string(dir.join("servers/mail/send_email.py")).unwrap();
    assert!(
        send.contains("Flow policy: receives EMAIL from crm (flow crm-to-mail). Placeholders from any other server are refused (cross_server = deny); placeholders from mail itself are always accepted."),
        "{send}"
    );
    let Some(python) = python() else { return };
    let script = r#"
import asyncio, json
from servers.crm import lookup_customer, always_fails
from servers.mail import send_email
from servers._client import ToolError, call_mcp_tool, search_tools

async def main():
    customer = await lookup_customer({"id": "c-1"})
    print("structured", json.dumps(customer, sort_keys=True))
    sent = await send_email({"to": "[EMAIL_1]", "body": "hi"})
    print("unstructured", json.dumps(sent["content"], sort_keys=True))
    print("search", json.dumps(await search_tools("mail", limit=3), sort_keys=True))
    try:
        await always_fails()
    except ToolError as e:
        print("error", e)
    try:
        await call_mcp_tool("mail__denied", {"to": "[EMAIL_1]"})
    except ToolError as e:
        print("refused", e)

asyncio.run(main())
"#;
    let env = [
        ("MCP_GATEWAY_URL", fake.url.as_str()),
        ("MCP_GATEWAY_TOKEN", "t0ken"),
    ];
    let out = run_python(&python, &dir, script, &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(r#"structured {"arguments": {"id": "c-1"}, "email": "[EMAIL_1]", "name": "Ana", "tool": "crm__lookup_customer"}"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"unstructured [{"text": "sent", "type": "text"}]"#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"search {"arguments": {"limit": 3, "query": "mail"}, "email": "[EMAIL_1]", "name": "Ana", "tool": "search_tools"}"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("error crm__always_fails: it failed on purpose"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("Traceback") && !stderr.contains("Task exception"),
        "{stderr}"
    );
    assert!(
        stdout.contains("refused mail__denied: flow policy denied the request: [EMAIL_1] may not reach mail"),
        "{stdout}"
    );
    {
        let calls = fake.calls.lock().unwrap();
        assert_eq!(
            calls[1]["params"]["arguments"],
            json!({"to": "[EMAIL_1]", "body": "hi"})
        );
        assert_eq!(calls[1]["headers"]["authorization"], "Bearer t0ken");
        assert_eq!(calls[1]["headers"]["mcp-session-id"], "fake-1", "one session");
    }

    // The scope header: its name comes from the environment when not built in.
    let scoped = "import asyncio\nfrom servers.crm import lookup_customer\nasyncio.run(lookup_customer({'id': 'x'}))\n";
    let env = [
        ("MCP_GATEWAY_URL", fake.url.as_str()),
        ("MCP_GATEWAY_TOKEN", "t0ken"),
        ("MCP_GATEWAY_SCOPE", "run-1"),
        ("MCP_GATEWAY_SCOPE_HEADER", "x-run-id"),
    ];
    let out = run_python(&python, &dir, scoped, &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let last = fake.calls.lock().unwrap().last().unwrap().clone();
    assert_eq!(last["headers"]["x-run-id"], "run-1");
    let out = run_python(
        &python,
        &dir,
        scoped,
        &[("MCP_GATEWAY_URL", &fake.url), ("MCP_GATEWAY_SCOPE", "run-1")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("GatewayConfigError: MCP_GATEWAY_SCOPE is set but no scope header name is known"),
        "{stderr}"
    );
}

#[test]
fn cli_errors_exit_2_with_a_clear_message() {
    let dir = temp_dir("cli-errors");
    let out_dir = dir.join("out");
    let out_dir = out_dir.to_str().unwrap();
    let fail = |args: &[&str], want: &str| {
        let out = codegen_cli(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {want:?} not in {stderr}");
    };
    fail(&["--lang", "python", "--out", out_dir], "--config");
    fail(
        &[
            "--url",
            "http://127.0.0.1:9/mcp",
            "--lang",
            "rust",
            "--out",
            out_dir,
        ],
        "rust",
    );
    fail(
        &[
            "--url",
            "http://127.0.0.1:9/mcp",
            "--url",
            "x",
            "--lang",
            "python",
            "--out",
            out_dir,
        ],
        "--url",
    );
    fail(
        &[
            "--url",
            "http://127.0.0.1:9/mcp",
            "--lang",
            "python",
            "--out",
            out_dir,
            "--header",
            "nocolon",
        ],
        "Name: value",
    );
    fail(
        &[
            "--url",
            "https://example.org/mcp",
            "--lang",
            "python",
            "--out",
            out_dir,
        ],
        "only http://",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}/mcp");
    fail(
        &["--url", &url, "--lang", "python", "--out", out_dir],
        "cannot reach",
    );
    let fake = FakeMcp::start(crm_and_mail(), 50, Some("right"));
    fail(
        &[
            "--url", &fake.url, "--lang", "python", "--out", out_dir, "--token", "wrong",
        ],
        "--token",
    );
    let mut bad = crm_and_mail();
    bad[0]["_meta"]["mcp-pii-gateway/server"] = json!("not-crm");
    bad.push(json!({"name": "mail__x", "inputSchema": {"type": "object"}}));
    let fake = FakeMcp::start(bad, 50, None);
    fail(
        &["--url", &fake.url, "--lang", "python", "--out", out_dir],
        "\"crm__lookup_customer\": the prefix \"crm\" is not the server name \"not-crm\"",
    );
    fail(
        &["--url", &fake.url, "--lang", "python", "--out", out_dir],
        "\"mail__x\": no `_meta[\"mcp-pii-gateway/server\"]` string",
    );
    let fake = FakeMcp::start(crm_and_mail(), 50, None);
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    fail(
        &[
            "--url",
            &fake.url,
            "--lang",
            "python",
            "--out",
            file.to_str().unwrap(),
        ],
        "a-file",
    );
    assert!(!dir.join("out").exists(), "nothing written on errors");
    fail(
        &[
            "--config",
            dir.join("missing.toml").to_str().unwrap(),
            "--lang",
            "python",
            "--out",
            out_dir,
        ],
        "missing.toml",
    );
}

#[cfg(unix)]
#[test]
fn symbolic_links_are_not_written_through() {
    let dir = temp_dir("symlinks");
    let outside = temp_dir("symlinks-outside");
    std::fs::create_dir_all(dir.join("servers")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("servers/crm")).unwrap();
    let files = codegen::generate(&catalog(&crm_and_mail()), &Options::new(Lang::Python));
    let e = codegen::write(&dir, &files).unwrap_err();
    assert!(e.to_string().contains("not writing through it"), "{e}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn typescript_script_calls_tools_through_the_runtime() {
    let Some((node, modules)) = node() else { return };
    let fake = FakeMcp::start(crm_and_mail(), 2, None);
    let (dir, _) = generate_from("typescript-e2e", &fake.url, "typescript", &[]);
    let stdout = run_typescript(
        &node,
        &modules,
        &dir,
        r#"import { crm, mail } from "./servers/index.js";
import { close, ToolError } from "./servers/_client.js";

const customer = await crm.lookupCustomer({ id: "c-1" });
const email: string = customer.email;
console.log("structured", email, JSON.stringify(customer.name));
const sent = await mail.sendEmail({ to: email, body: "hi" });
console.log("unstructured", JSON.stringify(sent.content));
try {
  await crm.alwaysFails();
} catch (e) {
  console.log("error", e instanceof ToolError ? e.message : String(e));
}
await close();
"#,
        &fake.url,
    );
    assert!(stdout.contains("structured [EMAIL_1] \"Ana\""), "{stdout}");
    assert!(
        stdout.contains(r#"unstructured [{"type":"text","text":"sent"}]"#),
        "{stdout}"
    );
    assert!(
        stdout.contains("error crm__always_fails: it failed on purpose"),
        "{stdout}"
    );
    assert_eq!(
        fake.calls.lock().unwrap()[1]["params"]["arguments"],
        json!({"to": "[EMAIL_1]", "body": "hi"})
    );
}

//! Helpers for the code-API generator's tests: catalogs that follow the `/mcp` tools/list
//! contract, a fake `/mcp` that serves one (paged) and answers tools/call, the interpreters the
//! generated code runs on, and the CLI.
//!
//! The fake stands in for the gateway's aggregated endpoint; a test against the real gateway
//! swaps [`FakeMcp::start`] for a gateway started from a configuration and keeps the rest
//! ([`codegen_cli`], [`run_python`]).
#![allow(dead_code, clippy::unwrap_used)]

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

/// One tool as `/mcp` lists it: `<prefix>__<tool>` plus the gateway's `_meta`.
pub fn contract_tool(
    server: &str,
    tool: &str,
    description: &str,
    input: Value,
    output: Option<Value>,
    receives: Value,
    otherwise: &str,
) -> Value {
    let mut t = json!({
        "name": format!("{}__{tool}", server.replace('-', "_")),
        "description": description,
        "inputSchema": input,
        "_meta": {
            "mcp-pii-gateway/server": server,
            "mcp-pii-gateway/tool": tool,
            "mcp-pii-gateway/receives": receives,
            "mcp-pii-gateway/otherwise": otherwise,
        }
    });
    if let Some(o) = output {
        t["outputSchema"] = o;
    }
    t
}

/// A small catalog: crm (lookup_customer, with an output schema) and mail (send_email, which
/// receives EMAIL from crm), plus a tool that reports an error and the gateway's own tools.
pub fn crm_and_mail() -> Vec<Value> {
    vec![
        contract_tool(
            "crm",
            "lookup_customer",
            "Looks up a customer by id. Returns name and email.",
            json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}),
            Some(json!({"type": "object", "properties": {
                "name": {"type": "string"}, "email": {"type": "string"}}, "required": ["name", "email"]})),
            json!([]),
            "deny",
        ),
        contract_tool(
            "crm",
            "always_fails",
            "Reports an error.",
            json!({"type": "object"}),
            None,
            json!([]),
            "deny",
        ),
        contract_tool(
            "mail",
            "send_email",
            "Sends an email.",
            json!({"type": "object", "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
                   "required": ["to"]}),
            None,
            json!([{"kind": "EMAIL", "from": "crm", "rule": "crm-to-mail"}]),
            "deny",
        ),
        json!({"name": "search_tools", "inputSchema": {"type": "object"}}),
        json!({"name": "check_flow", "inputSchema": {"type": "object"}}),
    ]
}

/// 120+ tools on six servers, with names that collide once made valid, keywords, digits,
/// dots and slashes, and schemas of every shape the generator maps.
pub fn synthetic_catalog() -> Vec<Value> {
    let schemas = [
        json!({"type": "object", "properties": {
            "email": {"type": "string", "description": "Who. Ends in */ and \"\"\" and \\"},
            "limit": {"type": "integer", "minimum": 1},
            "ratio": {"type": "number"},
            "flag": {"type": "boolean"},
            "mode": {"enum": ["fast", "slow", "it's \"quoted\""]},
            "level": {"enum": [1, 2, 3.5, null, true]},
            "from": {"type": "string"},
            "user-id": {"type": ["string", "null"]},
            "class": {"const": "x"},
            "__dunder": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
            "address": {"type": "object", "description": "Where.", "properties": {
                "city": {"type": "string"}, "geo": {"type": "object", "properties": {
                    "lat": {"type": "number"}, "lon": {"type": "number"}}, "required": ["lat", "lon"]}},
                "required": ["city"]},
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "sku": {"type": "string"}, "qty": {"type": "integer"}}, "required": ["sku"]}},
            "meta": {"type": "object", "additionalProperties": {"type": "string"}},
            "any": {},
            "ref": {"$ref": "#/$defs/Thing"},
            "choice": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"a": {"type": "integer"}}}]},
            "ünïcode key": {"type": "string"}
        }, "required": ["email", "from"], "additionalProperties": true}),
        json!({"type": "object"}),
        json!({"type": "object", "properties": {}, "additionalProperties": false}),
        json!({"type": "object", "properties": {"q": {"type": "string"},
            "thing": {"$ref": "#/$defs/Thing"}, "things": {"type": "array", "items": {"$ref": "#/$defs/Thing"}}},
            "$defs": {"Thing": {"type": "object", "properties": {"id": {"type": "string"},
                "parent": {"$ref": "#/$defs/Thing"}}, "required": ["id"]}}}),
        json!({"type": "object", "properties": {"nested": {"type": "object", "properties": {
            "deeper": {"type": "object", "properties": {"deepest": {"type": "array", "items": {
                "type": "object", "properties": {"x": {"oneOf": [{"type": "integer"}, {"type": "null"}]}}}}}}}}}}),
    ];
    let outputs = [
        None,
        Some(
            json!({"type": "object", "properties": {"ok": {"type": "boolean"}, "count": {"type": "integer"}},
                    "required": ["ok"]}),
        ),
        Some(
            json!({"type": "object", "properties": {"results": {"type": "array", "items": {
            "type": "object", "properties": {"id": {"type": "string"}, "score": {"type": "number"}}}}}}),
        ),
    ];
    let servers = ["crm", "crm-eu", "mail", "billing-v2", "3d-print", "class"];
    let tricky = [
        "get-user",
        "get_user",
        "GetUser",
        "class",
        "def",
        "delete",
        "new",
        "index",
        "__init__",
        "_client",
        "3d_render",
        "con",
        "a.b",
        "../../escape",
        "dir/file",
        "call_mcp_tool",
        "callMCPTool",
        "ToolResult",
        "Any",
        "ünïcode",
        "",
        "x__y",
        "TypedDict",
        "README",
    ];
    let mut tools = Vec::new();
    for (si, server) in servers.iter().enumerate() {
        for i in 0..16 {
            let tool = format!("tool_{i:02}_{server}");
            let description = format!("Tool {i} of {server}. It does thing {i}.\nSecond line.");
            let receives = match i % 3 {
                0 => json!([]),
                1 => {
                    json!([{"kind": "EMAIL", "from": servers[(si + 1) % servers.len()], "rule": format!("r{i}")},
                           {"kind": "*", "from": "*", "rule": "anything"}])
                }
                _ => json!([{"kind": "PHONE", "from": "crm", "rule": "crm-phones"}]),
            };
            tools.push(contract_tool(
                server,
                &tool,
                &description,
                schemas[i % schemas.len()].clone(),
                outputs[i % outputs.len()].clone(),
                receives,
                if i % 2 == 0 { "deny" } else { "allow" },
            ));
        }
    }
    // All on one server, so that they collide with each other.
    for (i, name) in tricky.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        tools.push(contract_tool(
            "crm",
            name,
            "A tricky name.",
            schemas[i % schemas.len()].clone(),
            outputs[i % outputs.len()].clone(),
            json!([]),
            "deny",
        ));
    }
    tools.push(json!({"name": "search_tools", "inputSchema": {"type": "object"}}));
    tools.push(json!({"name": "describe_placeholders", "inputSchema": {"type": "object"}}));
    tools.push(json!({"name": "future_gateway_tool", "inputSchema": {"type": "object"}}));
    tools
}

/// A fake `/mcp`: initialize, tools/list paged by `page` (cursors `"p1"`, `"p2"`, ...),
/// tools/call answering `{"tool", "arguments"}` as structured content (a tool whose name holds
/// `fails` reports an error, one whose name holds `denied` gets a JSON-RPC error as a flow the
/// policy denies would), 405 for GET, 200 for DELETE. With `token` set, requests without
/// `Authorization: Bearer <token>` get 401. It runs on a runtime of its own, so synchronous
/// tests can use it.
pub struct FakeMcp {
    /// `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    /// The tools/call requests received, in order: `{"params": ..., "headers": {name: value}}`.
    pub calls: Arc<Mutex<Vec<Value>>>,
    _rt: tokio::runtime::Runtime,
}

impl FakeMcp {
    /// Serves `tools`, `page` per tools/list page.
    pub fn start(tools: Vec<Value>, page: usize, token: Option<&str>) -> FakeMcp {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let tools = Arc::new(tools);
        let token = token.map(|t| format!("Bearer {t}"));
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = calls.clone();
        rt.spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    return;
                };
                let (tools, seen, token) = (tools.clone(), seen.clone(), token.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (tools, seen, token) = (tools.clone(), seen.clone(), token.clone());
                        async move {
                            Ok::<_, Infallible>(answer(req, &tools, page, &seen, token.as_deref()).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        FakeMcp {
            url: format!("http://{addr}/mcp"),
            calls,
            _rt: rt,
        }
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    tools: &[Value],
    page: usize,
    seen: &Mutex<Vec<Value>>,
    token: Option<&str>,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: Option<Value>| {
        let mut res = Response::new(Full::new(Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )));
        *res.status_mut() = status;
        res.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        res.headers_mut()
            .insert("mcp-session-id", "fake-1".parse().unwrap());
        res
    };
    if let Some(t) = token {
        if req.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some(t) {
            return reply(StatusCode::UNAUTHORIZED, Some(json!({"error": "unauthorized"})));
        }
    }
    match *req.method() {
        Method::POST => {}
        Method::DELETE => return reply(StatusCode::OK, None),
        _ => return reply(StatusCode::METHOD_NOT_ALLOWED, None),
    }
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
        .collect();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if msg.get("id").is_none() {
        return reply(StatusCode::ACCEPTED, None);
    }
    let params = &msg["params"];
    let result = match msg["method"].as_str().unwrap_or("") {
        "initialize" => json!({
            "protocolVersion": params["protocolVersion"].as_str().unwrap_or("2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "fake-gateway-mcp", "version": "0"}}),
        "tools/list" => {
            let start: usize = params["cursor"]
                .as_str()
                .and_then(|c| c.strip_prefix('p'))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let end = (start + page).min(tools.len());
            let mut r = json!({"tools": tools[start..end]});
            if end < tools.len() {
                r["nextCursor"] = json!(format!("p{end}"));
            }
            r
        }
        "tools/call" => {
            seen.lock()
                .unwrap()
                .push(json!({"params": params, "headers": headers}));
            let name = params["name"].as_str().unwrap_or("");
            if name.contains("denied") {
                return reply(
                    StatusCode::OK,
                    Some(json!({"jsonrpc": "2.0", "id": msg["id"],
                                "error": {"code": -32001, "message": "flow policy denied the request: [EMAIL_1] may not reach mail"}})),
                );
            }
            // Fits every output schema of `crm_and_mail` (lookup_customer's needs name and email).
            let structured = json!({"tool": name, "arguments": params["arguments"],
                                    "name": "Ana", "email": "[EMAIL_1]"});
            if name.contains("fails") {
                json!({"content": [{"type": "text", "text": "it failed on purpose"}], "isError": true})
            } else if name == "mail__send_email" {
                json!({"content": [{"type": "text", "text": "sent"}]})
            } else {
                json!({"content": [{"type": "text", "text": structured.to_string()}],
                       "structuredContent": structured})
            }
        }
        "ping" => json!({}),
        other => {
            return reply(
                StatusCode::OK,
                Some(json!({"jsonrpc": "2.0", "id": msg["id"],
                            "error": {"code": -32601, "message": format!("no method {other}")}})),
            )
        }
    };
    reply(
        StatusCode::OK,
        Some(json!({"jsonrpc": "2.0", "id": msg["id"], "result": result})),
    )
}

/// A fresh empty directory for one test, removed when the test passes (kept for a look when
/// it fails).
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh [`TempDir`] named after the test.
pub fn temp_dir(name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("codegen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

/// Runs `mcp-pii-gateway codegen` with `args`.
pub fn codegen_cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mcp-pii-gateway"))
        .arg("codegen")
        .args(args)
        .output()
        .unwrap()
}

/// Generates the `lang` tree of the `/mcp` at `url` into a fresh directory with the CLI
/// (`extra`: more flags, e.g. `--token`); returns the directory and what the CLI said.
pub fn generate_from(name: &str, url: &str, lang: &str, extra: &[&str]) -> (TempDir, String) {
    let dir = temp_dir(name);
    let mut args = vec!["--url", url, "--lang", lang, "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = codegen_cli(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "codegen failed: {stderr}");
    (dir, stderr)
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Skips (`None`) when a test tool is missing, except under `CI=true` where that fails.
fn needed(path: PathBuf, what: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is not installed: run scripts/install-test-deps.sh"
    );
    eprintln!(
        "skipping: {} missing (scripts/install-test-deps.sh)",
        path.display()
    );
    None
}

/// `.ci/venv/bin/python` (the `mcp` SDK's venv).
pub fn python() -> Option<PathBuf> {
    needed(repo().join(".ci/venv/bin/python"), "the Python SDK")
}

/// `.ci/node`'s node binary and its `node_modules` (with typescript, @types/node and the SDK).
pub fn node() -> Option<(PathBuf, PathBuf)> {
    let modules = repo().join(".ci/node/node_modules");
    let node = needed(modules.join("node/bin/node"), "node")?;
    needed(modules.join("typescript/bin/tsc"), "typescript")?;
    Some((node, modules))
}

/// Runs `script` with the Python SDK's interpreter in `dir` (so `import servers.x` works),
/// with `env` set.
pub fn run_python(python: &Path, dir: &Path, script: &str, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(python);
    c.current_dir(dir).arg("-c").arg(script);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Compiles the generated tree in `dir` plus `main_ts` with `tsc --strict` (failing the test on
/// a type error) and runs it under Node with the gateway at `url`; returns its stdout.
pub fn run_typescript(node: &Path, modules: &Path, dir: &Path, main_ts: &str, url: &str) -> String {
    #[cfg(unix)]
    std::os::unix::fs::symlink(modules, dir.join("node_modules")).unwrap();
    std::fs::write(dir.join("package.json"), r#"{"type": "module"}"#).unwrap();
    std::fs::write(dir.join("main.ts"), main_ts).unwrap();
    std::fs::write(
        dir.join("tsconfig.json"),
        json!({"compilerOptions": {
            "strict": true, "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext",
            "types": ["node"], "skipLibCheck": true, "outDir": "build"},
          "include": ["servers/**/*.ts", "main.ts"]})
        .to_string(),
    )
    .unwrap();
    let tsc = Command::new(node)
        .current_dir(dir)
        .arg(modules.join("typescript/bin/tsc"))
        .args(["-p", "tsconfig.json"])
        .output()
        .unwrap();
    assert!(tsc.status.success(), "{}", String::from_utf8_lossy(&tsc.stdout));
    let run = Command::new(node)
        .current_dir(dir)
        .arg("build/main.js")
        .env("MCP_GATEWAY_URL", url)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}

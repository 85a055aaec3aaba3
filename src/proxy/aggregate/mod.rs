//! The aggregated endpoint `/mcp`: one MCP server presenting every server a client may use.
//!
//! It is a Streamable HTTP MCP server of its own (the session-based protocol, 2024-11-05 to
//! 2025-11-25; a client of the stateless 2026-07-28 revision gets `-32601` for
//! `server/discover` and falls back to `initialize`, as the official SDKs do) and, inside the
//! process, a client of each server's stack, the same stack `/servers/NAME/mcp` uses. So every
//! message to or from an upstream is restored, checked against the flow policy, tokenized and
//! audited exactly as on the per-server endpoints, with the real server and tool.
//!
//! - **Names** ([`names`]): tools and prompts are `<server>__<name>` (`-` in a server name
//!   becomes `_`); resources are `mcp-gateway://<server>/<uri>`. The gateway's own tools
//!   (`search_tools`, `check_flow`, `describe_placeholders`, `call_tool`) have no `__`, so no
//!   upstream can shadow them.
//! - **One scope**: a downstream session is one vault scope for all upstreams (the scope
//!   header, when configured and sent, still wins), so `[EMAIL_1]` from one server means the
//!   same address on every other.
//! - **Lazy upstream sessions**: an upstream's session is opened (with the client's own
//!   `initialize` parameters) the first time the downstream session needs that server, and
//!   opened again if the upstream ended it.
//! - **Lists** (`tools/list`, `prompts/list`, `resources/list`, `resources/templates/list`)
//!   ask every server the client may use at once; the cursor carries each server's own cursor,
//!   so pagination works across servers. A server that fails is logged and left out; the
//!   others answer.
//! - **Server-to-client traffic**: requests from an upstream (sampling, elicitation, roots)
//!   reach the client with gateway-minted ids, and the client's answers go back to the
//!   upstream that asked, with its own id. Notifications (progress, logging, list changes,
//!   resource updates) are relayed; those outside a request's stream go to the session's GET
//!   stream (held for it, up to [`HELD_EVENTS`], while none is open).
//! - `[aggregate] expose = "search"` lists only the gateway's own tools plus `call_tool`, so a
//!   model's context starts with a handful of definitions; `search_tools` finds the rest.

mod lists;
pub mod names;
mod relay;
pub mod search;
mod stream;
mod tools;
mod upstream;

use super::body::UnboundedChannelBody;
use relay::{wrap_uri_at, By};
use stream::{is_sse, sse_frame, Events, Incoming};

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::body::{boxed, empty, full, Body, BoxError};
use super::front::{call_service, ServerService};
use super::sse::SseParser;
use super::upstream::MCP_SESSION_ID;
use crate::audit::Auditor;
use crate::config::{Expose, Limits};
use crate::json::{self, Parsed, Step};
use crate::jsonrpc::{
    error_object, error_response, INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND,
    PARSE_ERROR, SESSION_NOT_FOUND, UPSTREAM_FAILED,
};
use crate::layer::scope::{ClientScope, Delegated};
use crate::policy::Policy;
use crate::rewrite::Rewriter;

/// Messages held for a session's GET stream while none is open; past it the oldest are
/// dropped (and a warning logged).
pub const HELD_EVENTS: usize = 1000;
/// Protocol versions `/mcp` speaks, newest first.
pub const VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// Pages followed per server when `search_tools` reads the whole catalog.
const MAX_PAGES: usize = 64;
/// How long a session's catalog (for `search_tools`) is reused without a list change.
const CATALOG_TTL: Duration = Duration::from_secs(60);
/// Prefix of the ids of the gateway's own requests to upstreams.
const OWN_ID: &str = "mcp-pii-gateway:";

/// Reads the flow policy in force (it can change while the gateway runs).
pub type PolicySource = Arc<dyn Fn() -> Arc<Policy> + Send + Sync>;

/// What an [`Aggregate`] is built from.
pub struct AggregateParts {
    /// Each server's name and its service stack, in configuration order.
    pub members: Vec<(String, ServerService)>,
    /// What `tools/list` holds.
    pub expose: Expose,
    /// The server whose names are not prefixed (see [`AggregateConfig::unprefixed`]).
    ///
    /// [`AggregateConfig::unprefixed`]: crate::config::AggregateConfig::unprefixed
    pub unprefixed: Option<String>,
    /// The rewriter (detector and vault) of the stacks, for `check_flow` and
    /// `describe_placeholders`.
    pub rewriter: Rewriter,
    /// The flow policy in force.
    pub policy: PolicySource,
    /// The audit log, which records every `describe_placeholders` answer.
    pub auditor: Option<Arc<Auditor>>,
    /// Limits (`session_idle`, `upstream_timeout`).
    pub limits: Limits,
}

/// The `/mcp` service. Put a [`ScopeLayer`](crate::layer::ScopeLayer) without a server in
/// front of it: it reads the [`ClientScope`] that layer inserts. Cheap to clone.
#[derive(Clone)]
pub struct Aggregate {
    sh: Arc<Shared>,
}

impl std::fmt::Debug for Aggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregate")
            .field(
                "servers",
                &self.sh.members.iter().map(|m| &*m.name).collect::<Vec<_>>(),
            )
            .field("sessions", &self.session_count())
            .finish_non_exhaustive()
    }
}

struct Member {
    name: Arc<str>,
    prefix: String,
    svc: ServerService,
}

struct Shared {
    members: Vec<Member>,
    by_prefix: HashMap<String, usize>,
    by_name: HashMap<Arc<str>, usize>,
    expose: Expose,
    unprefixed: Option<usize>,
    own: tools::Own,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    limits: Limits,
    next_id: AtomicU64,
}

/// One downstream session.
struct Session {
    id: String,
    client: Arc<str>,
    /// The client's `initialize` params, with the negotiated version: what each upstream
    /// session is opened with.
    init: Value,
    ups: Vec<tokio::sync::Mutex<Option<Arc<Up>>>>,
    /// Gateway-minted id of a server-to-client request → (member, the upstream's id).
    pending: Mutex<HashMap<String, (usize, Value)>>,
    /// The client's requests in flight (id as JSON text) → member, for cancellation.
    inflight: Mutex<HashMap<String, usize>>,
    events: Mutex<Events>,
    last_used: Mutex<Instant>,
    log_level: Mutex<Option<Value>>,
    catalog: tokio::sync::Mutex<Option<Arc<tools::Catalog>>>,
}

/// One upstream session opened for a downstream session.
struct Up {
    sid: Option<HeaderValue>,
    version: Option<HeaderValue>,
    get: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(h) = self.get.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }
}

/// A failure to reach an upstream, as the client is told.
#[derive(Debug)]
struct UpError(String);

impl Aggregate {
    /// The service for `parts`.
    pub fn new(parts: AggregateParts) -> Aggregate {
        let mut by_prefix = HashMap::new();
        let mut by_name = HashMap::new();
        let members: Vec<Member> = parts
            .members
            .into_iter()
            .enumerate()
            .map(|(i, (name, svc))| {
                let name: Arc<str> = Arc::from(name.as_str());
                let prefix = names::prefix_of(&name);
                by_prefix.insert(prefix.clone(), i);
                by_name.insert(name.clone(), i);
                Member { name, prefix, svc }
            })
            .collect();
        let unprefixed = parts.unprefixed.as_deref().and_then(|u| by_name.get(u).copied());
        Aggregate {
            sh: Arc::new(Shared {
                unprefixed,
                members,
                by_prefix,
                by_name,
                expose: parts.expose,
                own: tools::Own {
                    rewriter: parts.rewriter,
                    policy: parts.policy,
                    auditor: parts.auditor,
                },
                sessions: Mutex::new(HashMap::new()),
                limits: parts.limits,
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Live downstream sessions.
    pub fn session_count(&self) -> usize {
        self.sh.sessions().len()
    }

    /// Ends sessions idle for longer than `limits.session_idle`; returns how many.
    pub async fn sweep(&self) -> usize {
        let idle = self.sh.limits.session_idle;
        let now = Instant::now();
        let expired: Vec<Arc<Session>> = {
            let mut map = self.sh.sessions();
            let ids: Vec<String> = map
                .iter()
                .filter(|(_, s)| now.saturating_duration_since(*lock(&s.last_used)) > idle)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        let n = expired.len();
        for s in expired {
            self.end(&s).await;
        }
        n
    }

    /// Ends every session.
    pub async fn shutdown(&self) {
        let all: Vec<Arc<Session>> = self.sh.sessions().drain().map(|(_, s)| s).collect();
        futures_util::future::join_all(all.iter().map(|s| self.end(s))).await;
    }

    /// Handles one request to `/mcp` (POST, GET or DELETE; the front checked the rest).
    pub async fn handle(&self, req: Request<Body>) -> Response<Body> {
        let Some(cs) = req.extensions().get::<ClientScope>().cloned() else {
            tracing::error!("/mcp reached without a ClientScope: the ScopeLayer is missing");
            return json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                INTERNAL_ERROR,
                "internal gateway error",
            );
        };
        let sid = req
            .headers()
            .get(MCP_SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match *req.method() {
            Method::POST => self.post(req, cs, sid).await,
            Method::GET => match self.session_for(&cs, sid.as_deref()) {
                Ok(s) => self.get_stream(&s),
                Err(r) => *r,
            },
            Method::DELETE => match self.session_for(&cs, sid.as_deref()) {
                Ok(s) => {
                    self.sh.sessions().remove(&s.id);
                    self.end(&s).await;
                    Response::new(empty())
                }
                Err(r) => *r,
            },
            _ => json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                INVALID_REQUEST,
                "use POST, GET or DELETE",
            ),
        }
    }

    fn session_for(&self, cs: &ClientScope, sid: Option<&str>) -> Result<Arc<Session>, Box<Response<Body>>> {
        let Some(sid) = sid else {
            return Err(Box::new(json_error(
                StatusCode::BAD_REQUEST,
                None,
                INVALID_REQUEST,
                "bad request: no Mcp-Session-Id header; /mcp speaks the session-based protocol: send initialize first",
            )));
        };
        match self.sh.sessions().get(sid) {
            // A session belongs to the client that opened it.
            Some(s) if s.client == cs.client => {
                *lock(&s.last_used) = Instant::now();
                Ok(s.clone())
            }
            _ => Err(Box::new(json_error(
                StatusCode::NOT_FOUND,
                None,
                SESSION_NOT_FOUND,
                "session not found: it ended or expired; initialize a new one",
            ))),
        }
    }

    async fn post(&self, req: Request<Body>, cs: ClientScope, sid: Option<String>) -> Response<Body> {
        let bytes = match req.into_body().collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    INVALID_REQUEST,
                    "request body could not be read",
                )
            }
        };
        let msg = match json::parse_owned(bytes.to_vec()) {
            Ok(m) => m,
            Err(e) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    PARSE_ERROR,
                    &format!("parse error: {e}"),
                )
            }
        };
        if msg.value.is_array() {
            return json_error(
                StatusCode::BAD_REQUEST,
                None,
                INVALID_REQUEST,
                "JSON-RPC batches are not supported on /mcp (MCP removed them in 2025-06-18): send one message per request",
            );
        }
        let method = msg.value.get("method").and_then(Value::as_str).map(str::to_owned);
        let id = msg.value.get("id").cloned();
        if method.as_deref() == Some("initialize") && id.is_some() && sid.is_none() {
            return self.initialize(&cs, &msg.value, id.as_ref());
        }
        if sid.is_none() && method.as_deref() == Some("server/discover") {
            // The stateless revision's handshake: "method not found" makes SDK clients fall
            // back to initialize.
            return json_error(
                StatusCode::OK,
                id.as_ref(),
                METHOD_NOT_FOUND,
                "method not found: /mcp speaks the session-based protocol (initialize)",
            );
        }
        let session = match self.session_for(&cs, sid.as_deref()) {
            Ok(s) => s,
            Err(r) => return *r,
        };
        match (method, id) {
            (None, Some(id)) => self.client_response(&session, &cs, msg, &id).await,
            (Some(m), None) => {
                self.client_notification(&session, &cs, &m, msg).await;
                accepted()
            }
            (Some(m), Some(id)) => self.request(&session, &cs, &m, msg, &id).await,
            (None, None) => json_error(
                StatusCode::BAD_REQUEST,
                None,
                INVALID_REQUEST,
                "not a JSON-RPC message",
            ),
        }
    }

    fn initialize(&self, cs: &ClientScope, msg: &Value, id: Option<&Value>) -> Response<Body> {
        let params = msg.get("params").cloned().unwrap_or_else(|| json!({}));
        let asked = params.get("protocolVersion").and_then(Value::as_str);
        let version = asked
            .filter(|v| VERSIONS.contains(v))
            .unwrap_or(VERSIONS[0])
            .to_owned();
        let mut init = params;
        if let Some(o) = init.as_object_mut() {
            o.insert("protocolVersion".into(), Value::String(version.clone()));
        }
        let sid = super::upstream::new_session_id();
        let session = Arc::new(Session {
            id: sid.clone(),
            client: cs.client.clone(),
            init,
            ups: self
                .sh
                .members
                .iter()
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
            pending: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            events: Mutex::new(Events::default()),
            last_used: Mutex::new(Instant::now()),
            log_level: Mutex::new(None),
            catalog: tokio::sync::Mutex::new(None),
        });
        self.sh.sessions().insert(sid.clone(), session);
        let servers: Vec<&str> = self
            .sh
            .members
            .iter()
            .filter(|m| cs.may_use(&m.name))
            .map(|m| &*m.name)
            .collect();
        let instructions = format!(
            "This gateway presents the MCP servers {} as one. Their tools are named <server>__<tool>; \
             search_tools finds tools by keyword. Personal data (emails, phone numbers) appears as \
             placeholders such as [EMAIL_1]: pass them on unchanged, the gateway restores the real \
             values where the flow policy allows it (check_flow tells in advance).",
            servers.join(", ")
        );
        let result = json!({
            "protocolVersion": version,
            "capabilities": {
                "tools": {"listChanged": true},
                "prompts": {"listChanged": true},
                "resources": {"subscribe": true, "listChanged": true},
                "logging": {},
                "completions": {},
            },
            "serverInfo": {"name": "mcp-pii-gateway", "version": env!("CARGO_PKG_VERSION")},
            "instructions": instructions,
        });
        let mut r = json_result(id, result);
        if let Ok(v) = HeaderValue::from_str(&sid) {
            r.headers_mut().insert(MCP_SESSION_ID, v);
        }
        tracing::debug!(client = %cs.client, "aggregated session opened");
        r
    }

    async fn request(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        method: &str,
        msg: Parsed<'static>,
        id: &Value,
    ) -> Response<Body> {
        match method {
            "ping" => json_result(Some(id), json!({})),
            "tools/list" => self.list(s, cs, "tools/list", "tools", &msg.value, id).await,
            "prompts/list" => self.list(s, cs, "prompts/list", "prompts", &msg.value, id).await,
            "resources/list" => {
                self.list(s, cs, "resources/list", "resources", &msg.value, id)
                    .await
            }
            "resources/templates/list" => {
                self.list(
                    s,
                    cs,
                    "resources/templates/list",
                    "resourceTemplates",
                    &msg.value,
                    id,
                )
                .await
            }
            "tools/call" => {
                let name = msg
                    .value
                    .pointer("/params/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if tools::is_own(name) {
                    let args = msg
                        .subtree(&[Step::Key("params"), Step::Key("arguments")])
                        .map(Parsed::into_owned);
                    return self.own_tool(s, cs, name.to_owned(), args, &msg, id).await;
                }
                self.route(s, cs, msg, id, "/params/name", By::Name).await
            }
            "prompts/get" => self.route(s, cs, msg, id, "/params/name", By::Name).await,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                self.route(s, cs, msg, id, "/params/uri", By::Uri).await
            }
            "completion/complete" => {
                if msg.value.pointer("/params/ref/uri").is_some() {
                    self.route(s, cs, msg, id, "/params/ref/uri", By::Uri).await
                } else {
                    self.route(s, cs, msg, id, "/params/ref/name", By::Name).await
                }
            }
            "logging/setLevel" => {
                let level = msg.value.pointer("/params/level").cloned();
                *lock(&s.log_level) = level;
                let body = msg.to_vec();
                let open = self.open_members(s).await;
                let sends = open
                    .iter()
                    .map(|&m| self.send(s, m, cs, Method::POST, Some(body.clone())));
                futures_util::future::join_all(sends).await;
                json_result(Some(id), json!({}))
            }
            _ => json_error(
                StatusCode::OK,
                Some(id),
                METHOD_NOT_FOUND,
                &format!("method not found: {}", self.quote(method)),
            ),
        }
    }

    /// The member and its own URI behind an aggregated resource URI (or the unprefixed
    /// server's URI as it is).
    fn member_of_uri(&self, uri: &str) -> Option<(usize, String)> {
        names::unwrap_uri(uri)
            .and_then(|(server, inner)| Some((*self.sh.by_name.get(server)?, inner.to_owned())))
            .or_else(|| self.sh.unprefixed.map(|m| (m, uri.to_owned())))
    }

    /// `text` from the client, quoted for an error the client reads. The gateway's own answers
    /// are not tokenized, so text holding PII the detector finds is not repeated.
    fn quote(&self, text: &str) -> String {
        quote(self.sh.own.rewriter.detector(), text)
    }

    fn member_of_name(&self, name: &str) -> Option<(usize, String)> {
        let prefixed = names::split(name)
            .and_then(|(prefix, inner)| Some((*self.sh.by_prefix.get(prefix)?, inner.to_owned())));
        prefixed.or_else(|| self.sh.unprefixed.map(|m| (m, name.to_owned())))
    }

    async fn own_tool(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        name: String,
        args: Option<Parsed<'static>>,
        msg: &Parsed<'static>,
        id: &Value,
    ) -> Response<Body> {
        let args_value = args
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_else(|| json!({}));
        match name.as_str() {
            tools::CALL_TOOL if self.sh.expose == Expose::Search => {
                let Some(target) = args_value.get("name").and_then(Value::as_str).map(str::to_owned) else {
                    return json_result(
                        Some(id),
                        tools::tool_error("call_tool needs name (the tool's <server>__<tool> name)"),
                    );
                };
                if tools::is_own(&target) {
                    return json_result(
                        Some(id),
                        tools::tool_error(
                            "call_tool calls upstream tools; call the gateway's own tools directly",
                        ),
                    );
                }
                // The same message, as a tools/call of the target with the given arguments.
                let inner_args = args
                    .as_ref()
                    .and_then(|a| a.subtree(&[Step::Key("arguments")]))
                    .map(|p| p.to_vec())
                    .unwrap_or_else(|| b"{}".to_vec());
                let mut out = Vec::new();
                out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
                out.extend_from_slice(&serde_json::to_vec(id).unwrap_or_default());
                out.extend_from_slice(b",\"method\":\"tools/call\",\"params\":{\"name\":");
                out.extend_from_slice(&serde_json::to_vec(&target).unwrap_or_default());
                out.extend_from_slice(b",\"arguments\":");
                out.extend_from_slice(&inner_args);
                if let Some(meta) = msg.subtree(&[Step::Key("params"), Step::Key("_meta")]) {
                    out.extend_from_slice(b",\"_meta\":");
                    out.extend_from_slice(&meta.to_vec());
                }
                out.extend_from_slice(b"}}");
                let inner = match json::parse_owned(out) {
                    Ok(p) => p,
                    Err(e) => {
                        return json_error(
                            StatusCode::OK,
                            Some(id),
                            INTERNAL_ERROR,
                            &format!("internal gateway error: {e}"),
                        )
                    }
                };
                self.route(s, cs, inner, id, "/params/name", By::Name).await
            }
            tools::SEARCH_TOOLS => {
                let catalog = match self.catalog(s, cs).await {
                    Ok(c) => c,
                    Err(e) => return json_result(Some(id), tools::tool_error(&e.0)),
                };
                json_result(Some(id), tools::search(&catalog, &args_value))
            }
            tools::CHECK_FLOW => {
                let result = self.sh.own.check_flow(cs, &args_value, |name| {
                    let (m, inner) = self.member_of_name(name)?;
                    Some((self.sh.members[m].name.to_string(), inner))
                });
                json_result(Some(id), result)
            }
            tools::DESCRIBE_PLACEHOLDERS => json_result(Some(id), self.sh.own.describe(cs, &args_value)),
            _ => json_error(
                StatusCode::OK,
                Some(id),
                INVALID_PARAMS,
                &format!("unknown tool {}", self.quote(&name)),
            ),
        }
    }
}

impl Shared {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        lock(&self.sessions)
    }
}

impl tower_service::Service<Request<Body>> for Aggregate {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

/// [`Aggregate::quote`] with the detector at hand.
fn quote(detector: &crate::detect::Detector, text: &str) -> String {
    const LONGEST: usize = 200;
    if text.len() > LONGEST || !detector.find(text).is_empty() {
        "(not repeated: it holds personal data or is too long)".to_owned()
    } else {
        format!("{text:?}")
    }
}

/// Locks a mutex whose data stays consistent across a panic.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn accepted() -> Response<Body> {
    let mut r = Response::new(empty());
    *r.status_mut() = StatusCode::ACCEPTED;
    r
}

fn raw_json(status: StatusCode, bytes: Bytes) -> Response<Body> {
    let mut r = Response::new(full(bytes));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error_body(id: Option<&Value>, code: i64, message: &str) -> Vec<u8> {
    let v = error_response(id.cloned().unwrap_or(Value::Null), error_object(code, message));
    serde_json::to_vec(&v).expect("a Value always serializes")
}

fn json_error(status: StatusCode, id: Option<&Value>, code: i64, message: &str) -> Response<Body> {
    raw_json(status, Bytes::from(error_body(id, code, message)))
}

fn json_result(id: Option<&Value>, result: Value) -> Response<Body> {
    let v = json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "result": result});
    raw_json(
        StatusCode::OK,
        Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
    )
}

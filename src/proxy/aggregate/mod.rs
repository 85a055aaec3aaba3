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

pub mod names;
pub mod search;
mod tools;

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Frame;
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

/// Where a session's out-of-band messages go: the open GET stream, else a bounded queue.
#[derive(Default)]
struct Events {
    stream: Option<mpsc::UnboundedSender<Bytes>>,
    held: VecDeque<Bytes>,
    dropped: u64,
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

    /// The client answers a request an upstream sent it.
    async fn client_response(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        mut msg: Parsed<'static>,
        id: &Value,
    ) -> Response<Body> {
        let key = id.as_str().map(str::to_owned).unwrap_or_else(|| id.to_string());
        let Some((m, inner_id)) = lock(&s.pending).remove(&key) else {
            return json_error(
                StatusCode::BAD_REQUEST,
                None,
                INVALID_REQUEST,
                "this response answers no request the gateway sent (unknown or already answered id)",
            );
        };
        // One token (the gateway's string id) becomes one token (the server's string or number
        // id): every other token of the answer is written back as the client sent it.
        let one_token = inner_id.is_string() || inner_id.is_number();
        if let Some(o) = msg.value.as_object_mut() {
            o.insert("id".into(), inner_id);
        }
        let body = if one_token {
            msg.to_vec()
        } else {
            Parsed::from(msg.value).to_vec()
        };
        match self.send(s, m, cs, Method::POST, Some(body)).await {
            Ok(res) => {
                let status = res.status();
                let bytes = res
                    .into_body()
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                if status.is_success() {
                    accepted()
                } else {
                    raw_json(status, bytes)
                }
            }
            Err(e) => json_error(StatusCode::BAD_GATEWAY, None, UPSTREAM_FAILED, &e.0),
        }
    }

    async fn client_notification(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        method: &str,
        msg: Parsed<'static>,
    ) {
        match method {
            "notifications/initialized" => {}
            "notifications/cancelled" => {
                let Some(rid) = msg.value.pointer("/params/requestId") else {
                    return;
                };
                let key = rid.to_string();
                let m = lock(&s.inflight).get(&key).copied();
                if let Some(m) = m {
                    let _ = self.send(s, m, cs, Method::POST, Some(msg.to_vec())).await;
                }
            }
            "notifications/roots/list_changed" => {
                let body = msg.to_vec();
                for m in self.open_members(s).await {
                    let _ = self.send(s, m, cs, Method::POST, Some(body.clone())).await;
                }
            }
            other => tracing::debug!(method = other, "client notification not relayed on /mcp"),
        }
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
                self.route_named(s, cs, msg, id, "/params/name").await
            }
            "prompts/get" => self.route_named(s, cs, msg, id, "/params/name").await,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                self.route_uri(s, cs, msg, id, "/params/uri").await
            }
            "completion/complete" => {
                if msg.value.pointer("/params/ref/uri").is_some() {
                    self.route_uri(s, cs, msg, id, "/params/ref/uri").await
                } else {
                    self.route_named(s, cs, msg, id, "/params/ref/name").await
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
                &format!("method not found: {method}"),
            ),
        }
    }

    /// Routes a request whose `pointer` holds an aggregated tool or prompt name.
    async fn route_named(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        mut msg: Parsed<'static>,
        id: &Value,
        pointer: &str,
    ) -> Response<Body> {
        let name = msg
            .value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let Some((m, inner)) = self.member_of_name(&name) else {
            return json_error(
                StatusCode::OK,
                Some(id),
                INVALID_PARAMS,
                &format!("unknown name {name:?}: names on /mcp are <server>__<name>"),
            );
        };
        if !cs.may_use(&self.sh.members[m].name) {
            return json_error(
                StatusCode::OK,
                Some(id),
                INVALID_PARAMS,
                &format!("unknown name {name:?}"),
            );
        }
        if let Some(v) = msg.value.pointer_mut(pointer) {
            *v = Value::String(inner);
        }
        self.forward(s, cs, m, msg, id).await
    }

    /// Routes a request whose `pointer` holds an aggregated resource URI.
    async fn route_uri(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        mut msg: Parsed<'static>,
        id: &Value,
        pointer: &str,
    ) -> Response<Body> {
        let uri = msg
            .value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let found = names::unwrap_uri(&uri)
            .and_then(|(server, inner)| Some((*self.sh.by_name.get(server)?, inner.to_owned())))
            .or_else(|| self.sh.unprefixed.map(|m| (m, uri.clone())));
        let Some((m, inner)) = found.filter(|(m, _)| cs.may_use(&self.sh.members[*m].name)) else {
            return json_error(
                StatusCode::OK,
                Some(id),
                INVALID_PARAMS,
                &format!(
                    "unknown resource {uri:?}: resources on /mcp are {}<server>/<uri>",
                    names::SCHEME
                ),
            );
        };
        if let Some(v) = msg.value.pointer_mut(pointer) {
            *v = Value::String(inner);
        }
        self.forward(s, cs, m, msg, id).await
    }

    fn member_of_name(&self, name: &str) -> Option<(usize, String)> {
        let prefixed = names::split(name)
            .and_then(|(prefix, inner)| Some((*self.sh.by_prefix.get(prefix)?, inner.to_owned())));
        prefixed.or_else(|| self.sh.unprefixed.map(|m| (m, name.to_owned())))
    }

    /// Sends one client request to member `m` and relays its answer: JSON stays JSON; an SSE
    /// stream is relayed event by event (server-to-client requests get gateway ids).
    async fn forward(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        m: usize,
        msg: Parsed<'static>,
        id: &Value,
    ) -> Response<Body> {
        let body = msg.to_vec();
        let method = msg
            .value
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let key = id.to_string();
        lock(&s.inflight).insert(key.clone(), m);
        let res = self.send_request(s, m, cs, body).await;
        let res = match res {
            Ok(r) => r,
            Err(e) => {
                lock(&s.inflight).remove(&key);
                return json_error(StatusCode::OK, Some(id), UPSTREAM_FAILED, &e.0);
            }
        };
        let (mut parts, body) = res.into_parts();
        parts.headers.remove(MCP_SESSION_ID);
        parts.headers.remove(header::CONTENT_LENGTH);
        let mut incoming = Incoming::new(is_sse(&parts.headers), body);
        let this = self.clone();
        let s2 = s.clone();
        if !incoming.is_sse() {
            let out = match incoming.next().await {
                Some(Ok(mut p)) => {
                    this.outward(&s2, m, &mut p, Some(&method));
                    p.to_vec()
                }
                Some(Err(e)) => {
                    lock(&s.inflight).remove(&key);
                    return json_error(StatusCode::BAD_GATEWAY, Some(id), UPSTREAM_FAILED, &e.0);
                }
                None => {
                    lock(&s.inflight).remove(&key);
                    return json_error(
                        StatusCode::BAD_GATEWAY,
                        Some(id),
                        UPSTREAM_FAILED,
                        "the upstream answered without a response",
                    );
                }
            };
            lock(&s.inflight).remove(&key);
            parts
                .headers
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            return Response::from_parts(parts, full(out));
        }
        let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
        let id = id.clone();
        tokio::spawn(async move {
            let mut answered = false;
            while let Some(item) = incoming.next().await {
                match item {
                    Ok(mut p) => {
                        let is_final = p.value.get("method").is_none() && p.value.get("id") == Some(&id);
                        this.outward(&s2, m, &mut p, is_final.then_some(method.as_str()));
                        answered |= is_final;
                        if tx.send(sse_frame(&p.to_vec())).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(server = %this.sh.members[m].name, "upstream stream failed on /mcp: {}", e.0);
                        break;
                    }
                }
            }
            if !answered {
                let e = error_body(
                    Some(&id),
                    UPSTREAM_FAILED,
                    "the upstream's stream ended without a response",
                );
                let _ = tx.send(sse_frame(&e));
            }
            lock(&s2.inflight).remove(&key);
        });
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        parts
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Response::from_parts(parts, boxed(UnboundedBody { rx }))
    }

    /// Rewrites a message from member `m` for the client: gateway ids for its requests,
    /// aggregated names and URIs. `answers` is the method of the client request a response
    /// answers.
    fn outward(&self, s: &Session, m: usize, p: &mut Parsed<'static>, answers: Option<&str>) {
        let server = self.sh.members[m].name.clone();
        let rename = self.sh.unprefixed != Some(m);
        let v = &mut p.value;
        let method = v.get("method").and_then(Value::as_str).map(str::to_owned);
        match (method.as_deref(), v.get("id").is_some()) {
            (Some(_), true) => {
                let gid = format!("{OWN_ID}{}", self.sh.next_id.fetch_add(1, Ordering::Relaxed));
                let inner = v.get("id").cloned().unwrap_or(Value::Null);
                lock(&s.pending).insert(gid.clone(), (m, inner));
                v["id"] = Value::String(gid);
            }
            (Some("notifications/resources/updated"), false) if rename => {
                wrap_uri_at(v, "/params/uri", &server);
            }
            (Some("notifications/tools/list_changed"), false) => {
                if let Ok(mut c) = s.catalog.try_lock() {
                    *c = None;
                }
            }
            (None, _) if rename => {
                let Some(result) = v.get_mut("result") else { return };
                match answers {
                    Some("tools/call") => wrap_content(result.get_mut("content"), &server),
                    Some("prompts/get") => {
                        if let Some(Value::Array(msgs)) = result.get_mut("messages") {
                            for msg in msgs {
                                wrap_one_content(msg.get_mut("content"), &server);
                            }
                        }
                    }
                    Some("resources/read") => {
                        if let Some(Value::Array(cs)) = result.get_mut("contents") {
                            for c in cs {
                                wrap_uri_at(c, "/uri", &server);
                            }
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// A fan-out list: every server the client may use (or those the cursor names), at once.
    async fn list(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        method: &str,
        key: &str,
        msg: &Value,
        id: &Value,
    ) -> Response<Body> {
        let own_tools = method == "tools/list";
        let cursor = msg.pointer("/params/cursor").and_then(Value::as_str);
        let targets: Vec<(usize, Option<String>)> = match cursor {
            None => self
                .sh
                .members
                .iter()
                .enumerate()
                .filter(|(_, m)| cs.may_use(&m.name))
                .map(|(i, _)| (i, None))
                .collect(),
            Some(c) => match decode_cursor(c) {
                Some(map) => map
                    .into_iter()
                    .filter_map(|(name, c)| {
                        let i = *self.sh.by_name.get(name.as_str())?;
                        cs.may_use(&self.sh.members[i].name).then_some((i, Some(c)))
                    })
                    .collect(),
                None => return json_error(StatusCode::OK, Some(id), INVALID_PARAMS, "invalid cursor"),
            },
        };
        let mut items: Vec<Vec<u8>> = Vec::new();
        if own_tools && cursor.is_none() {
            for t in self.sh.own.definitions(self.sh.expose) {
                items.push(serde_json::to_vec(&t).unwrap_or_default());
            }
        }
        let fan_out = !(own_tools && self.sh.expose == Expose::Search);
        let mut next: Vec<(String, String)> = Vec::new();
        if fan_out {
            let pages = futures_util::future::join_all(
                targets
                    .iter()
                    .map(|(m, c)| self.page(s, cs, *m, method, key, c.as_deref())),
            )
            .await;
            for ((m, _), page) in targets.iter().zip(pages) {
                match page {
                    Ok((page_items, next_cursor)) => {
                        items.extend(page_items);
                        if let Some(c) = next_cursor {
                            next.push((self.sh.members[*m].name.to_string(), c));
                        }
                    }
                    Err(e) => tracing::warn!(
                        server = %self.sh.members[*m].name,
                        method,
                        "left out of the aggregated list: {}", e.0
                    ),
                }
            }
        }
        let mut out = Vec::with_capacity(items.iter().map(Vec::len).sum::<usize>() + 128);
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.extend_from_slice(&serde_json::to_vec(id).unwrap_or_else(|_| b"null".to_vec()));
        out.extend_from_slice(format!(",\"result\":{{\"{key}\":[").as_bytes());
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(it);
        }
        out.push(b']');
        if !next.is_empty() {
            out.extend_from_slice(b",\"nextCursor\":");
            out.extend_from_slice(&serde_json::to_vec(&encode_cursor(&next)).unwrap_or_default());
        }
        out.extend_from_slice(b"}}");
        raw_json(StatusCode::OK, Bytes::from(out))
    }

    /// One page of one member's list, its items already renamed for `/mcp`.
    async fn page(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        m: usize,
        method: &str,
        key: &str,
        cursor: Option<&str>,
    ) -> Result<(Vec<Vec<u8>>, Option<String>), UpError> {
        let params = match cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let resp = self.call(s, cs, m, method, params).await?;
        if let Some(e) = resp.value.get("error") {
            return Err(UpError(format!(
                "the server answered an error: {}",
                e.get("message").and_then(Value::as_str).unwrap_or("?")
            )));
        }
        let Some(Value::Array(list)) = resp.value.pointer(&format!("/result/{key}")) else {
            return Err(UpError(format!("the server's answer has no {key} list")));
        };
        let server = self.sh.members[m].name.clone();
        let prefix = &self.sh.members[m].prefix;
        let rename = self.sh.unprefixed != Some(m);
        let policy = (self.sh.own.policy)();
        let mut out = Vec::with_capacity(list.len());
        for i in 0..list.len() {
            let Some(mut item) = resp.subtree(&[Step::Key("result"), Step::Key(key), Step::Index(i)]) else {
                continue;
            };
            match key {
                "tools" | "prompts" => {
                    let Some(name) = item.value.get("name").and_then(Value::as_str).map(str::to_owned) else {
                        continue;
                    };
                    if rename {
                        item.value["name"] = Value::String(names::join(prefix, &name));
                    } else if tools::is_own(&name) || self.member_of_name(&name).is_some_and(|(o, _)| o != m)
                    {
                        tracing::warn!(server = %server, name, "left out of /mcp: the name is taken by the gateway or by another server's prefix");
                        continue;
                    }
                    if key == "tools" {
                        tools::annotate(&mut item.value, &server, &name, &policy);
                    }
                }
                _ if !rename => {}
                "resources" => wrap_uri_at(&mut item.value, "/uri", &server),
                _ => {
                    if let Some(Value::String(t)) = item.value.get_mut("uriTemplate") {
                        *t = names::wrap_uri(&server, t);
                    }
                }
            }
            out.push(item.to_vec());
        }
        let next = resp
            .value
            .pointer("/result/nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok((out, next))
    }

    /// The gateway's own request `method` to member `m`; returns the response message.
    /// Everything else the upstream sends meanwhile goes to the session's GET stream.
    async fn call(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        m: usize,
        method: &str,
        params: Value,
    ) -> Result<Parsed<'static>, UpError> {
        let id = format!("{OWN_ID}{}", self.sh.next_id.fetch_add(1, Ordering::Relaxed));
        let body =
            serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
                .map_err(|e| UpError(e.to_string()))?;
        let res = self.send_request(s, m, cs, body).await?;
        let mut incoming = Incoming::new(is_sse(res.headers()), res.into_body());
        let want = Value::String(id);
        while let Some(item) = incoming.next().await {
            let mut p = item?;
            if p.value.get("method").is_none() && p.value.get("id") == Some(&want) {
                return Ok(p);
            }
            self.outward(s, m, &mut p, None);
            self.deliver(s, sse_frame(&p.to_vec()));
        }
        Err(UpError("the upstream answered without a response".into()))
    }

    /// POSTs a request to member `m` in its session (opening it first), opening the session
    /// again once if the upstream no longer knows it.
    async fn send_request(
        &self,
        s: &Arc<Session>,
        m: usize,
        cs: &ClientScope,
        body: Vec<u8>,
    ) -> Result<Response<Body>, UpError> {
        let res = self.send(s, m, cs, Method::POST, Some(body.clone())).await?;
        if res.status() != StatusCode::NOT_FOUND {
            return Ok(res);
        }
        // The upstream session ended (idle sweep, restart): open a new one and retry once.
        *s.ups[m].lock().await = None;
        self.send(s, m, cs, Method::POST, Some(body)).await
    }

    /// Sends one request to member `m` within the downstream session's upstream session.
    async fn send(
        &self,
        s: &Arc<Session>,
        m: usize,
        cs: &ClientScope,
        method: Method,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Body>, UpError> {
        let up = self.up(s, m, cs).await?;
        let req = Self::inner_request(cs, &up, method, body);
        self.call_member(m, req).await
    }

    /// A request to a server's stack within upstream session `up`, in the scope `cs`.
    fn inner_request(cs: &ClientScope, up: &Up, method: Method, body: Option<Vec<u8>>) -> Request<Body> {
        let mut req = Request::new(body.map(full).unwrap_or_else(empty));
        *req.method_mut() = method;
        *req.uri_mut() = http::Uri::from_static("/mcp");
        let h = req.headers_mut();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(sid) = &up.sid {
            h.insert(MCP_SESSION_ID, sid.clone());
        }
        if let Some(v) = &up.version {
            h.insert("mcp-protocol-version", v.clone());
        }
        req.extensions_mut().insert(Delegated(cs.clone()));
        req
    }

    async fn call_member(&self, m: usize, req: Request<Body>) -> Result<Response<Body>, UpError> {
        let member = &self.sh.members[m];
        call_service(member.svc.clone(), req)
            .await
            .map_err(|e| UpError(format!("server {} failed: {e}", member.name)))
    }

    /// Member `m`'s session for `s`, opened on first use.
    async fn up(&self, s: &Arc<Session>, m: usize, cs: &ClientScope) -> Result<Arc<Up>, UpError> {
        let mut slot = s.ups[m].lock().await;
        if let Some(up) = &*slot {
            return Ok(up.clone());
        }
        let name = self.sh.members[m].name.clone();
        let fresh = Up {
            sid: None,
            version: None,
            get: Mutex::new(None),
        };
        let init = json!({"jsonrpc": "2.0", "id": format!("{OWN_ID}init"), "method": "initialize", "params": s.init});
        let body = serde_json::to_vec(&init).map_err(|e| UpError(e.to_string()))?;
        let req = Self::inner_request(cs, &fresh, Method::POST, Some(body));
        let res = tokio::time::timeout(self.sh.limits.upstream_timeout, self.call_member(m, req))
            .await
            .map_err(|_| UpError(format!("server {name} did not answer initialize in time")))??;
        let sid = res.headers().get(MCP_SESSION_ID).cloned();
        let status = res.status();
        let mut incoming = Incoming::new(is_sse(res.headers()), res.into_body());
        let mut answer = None;
        while let Some(item) = incoming.next().await {
            let p = item?;
            if p.value.get("method").is_none() && p.value.get("id").is_some() {
                answer = Some(p);
                break;
            }
        }
        let answer = answer
            .ok_or_else(|| UpError(format!("server {name} did not answer initialize (HTTP {status})")))?;
        if let Some(e) = answer.value.get("error") {
            return Err(UpError(format!(
                "server {name} refused initialize: {}",
                e.get("message").and_then(Value::as_str).unwrap_or("?")
            )));
        }
        let version = answer
            .value
            .pointer("/result/protocolVersion")
            .and_then(Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok());
        let up = Arc::new(Up {
            sid,
            version,
            get: Mutex::new(None),
        });
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let req = Self::inner_request(cs, &up, Method::POST, serde_json::to_vec(&note).ok());
        let _ = self.call_member(m, req).await?;
        let level = lock(&s.log_level).clone();
        if let Some(level) = level {
            let set = json!({"jsonrpc": "2.0", "id": format!("{OWN_ID}level"), "method": "logging/setLevel", "params": {"level": level}});
            let req = Self::inner_request(cs, &up, Method::POST, serde_json::to_vec(&set).ok());
            let _ = self.call_member(m, req).await;
        }
        if up.sid.is_some() {
            let task =
                tokio::spawn(
                    self.clone()
                        .upstream_stream(s.clone(), m, cs.clone(), Arc::downgrade(&up)),
                );
            *lock(&up.get) = Some(task.abort_handle());
        }
        tracing::debug!(server = %name, "upstream session opened for /mcp");
        *slot = Some(up.clone());
        Ok(up)
    }

    /// Relays member `m`'s GET stream (its unsolicited messages) to the session's stream.
    async fn upstream_stream(self, s: Arc<Session>, m: usize, cs: ClientScope, up: std::sync::Weak<Up>) {
        loop {
            let Some(u) = up.upgrade() else { return };
            let req = Self::inner_request(&cs, &u, Method::GET, None);
            drop(u);
            let Ok(res) = self.call_member(m, req).await else {
                return;
            };
            if !res.status().is_success() || !is_sse(res.headers()) {
                return; // 405: the server offers no stream; 404: the session ended.
            }
            let mut incoming = Incoming::new(true, res.into_body());
            while let Some(Ok(mut p)) = incoming.next().await {
                self.outward(&s, m, &mut p, None);
                self.deliver(&s, sse_frame(&p.to_vec()));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Queues `frame` for the session's GET stream.
    fn deliver(&self, s: &Session, frame: Bytes) {
        let mut ev = lock(&s.events);
        if let Some(tx) = &ev.stream {
            match tx.send(frame) {
                Ok(()) => return,
                Err(e) => {
                    ev.stream = None;
                    ev.held.push_back(e.0);
                }
            }
        } else {
            ev.held.push_back(frame);
        }
        if ev.held.len() > HELD_EVENTS {
            ev.held.pop_front();
            ev.dropped += 1;
            if ev.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = ev.dropped,
                    "/mcp session has no GET stream open: oldest server messages dropped"
                );
            }
        }
    }

    fn get_stream(&self, s: &Arc<Session>) -> Response<Body> {
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let mut ev = lock(&s.events);
            if ev.stream.as_ref().is_some_and(|t| !t.is_closed()) {
                return json_error(
                    StatusCode::CONFLICT,
                    None,
                    INVALID_REQUEST,
                    "a GET stream is already open for this session",
                );
            }
            for f in ev.held.drain(..) {
                let _ = tx.send(f);
            }
            ev.stream = Some(tx);
        }
        let mut r = Response::new(boxed(UnboundedBody { rx }));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        r
    }

    /// Members with an open upstream session in `s`.
    async fn open_members(&self, s: &Session) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, u) in s.ups.iter().enumerate() {
            if u.lock().await.is_some() {
                out.push(i);
            }
        }
        out
    }

    /// Ends `s`: its upstream sessions are deleted.
    async fn end(&self, s: &Arc<Session>) {
        for (m, u) in s.ups.iter().enumerate() {
            let Some(up) = u.lock().await.take() else { continue };
            if up.sid.is_some() {
                // The scope does not matter for a DELETE; the client does (sessions are bound
                // to it).
                let cs = ClientScope::from_session(&s.client, &s.id);
                let req = Self::inner_request(&cs, &up, Method::DELETE, None);
                let _ = self.call_member(m, req).await;
            }
        }
        lock(&s.events).stream = None;
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
                self.route_named(s, cs, inner, id, "/params/name").await
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
                &format!("unknown tool {name:?}"),
            ),
        }
    }

    /// Every tool the client may use (for `search_tools`), read once and kept until a list
    /// changes or [`CATALOG_TTL`] passes.
    async fn catalog(&self, s: &Arc<Session>, cs: &ClientScope) -> Result<Arc<tools::Catalog>, UpError> {
        let mut slot = s.catalog.lock().await;
        if let Some(c) = &*slot {
            if c.built.elapsed() < CATALOG_TTL {
                return Ok(c.clone());
            }
        }
        let members: Vec<usize> = (0..self.sh.members.len())
            .filter(|&m| cs.may_use(&self.sh.members[m].name))
            .collect();
        let all = futures_util::future::join_all(members.iter().map(|&m| async move {
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let (page, next) = self
                    .page(s, cs, m, "tools/list", "tools", cursor.as_deref())
                    .await?;
                items.extend(page);
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            Ok::<_, UpError>(items)
        }))
        .await;
        let mut tools = Vec::new();
        for (m, r) in members.iter().zip(all) {
            match r {
                Ok(items) => {
                    for bytes in items {
                        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                            tools.push((self.sh.members[*m].name.to_string(), v));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(server = %self.sh.members[*m].name, "left out of search_tools: {}", e.0)
                }
            }
        }
        let c = Arc::new(tools::Catalog::new(tools));
        *slot = Some(c.clone());
        Ok(c)
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

/// Locks a mutex whose data stays consistent across a panic.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_sse(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        })
}

fn sse_frame(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
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

fn wrap_uri_at(v: &mut Value, pointer: &str, server: &str) {
    if let Some(Value::String(u)) = v.pointer_mut(pointer) {
        *u = names::wrap_uri(server, u);
    }
}

/// Aggregated URIs for the resource links and embedded resources of a content list.
fn wrap_content(content: Option<&mut Value>, server: &str) {
    if let Some(Value::Array(items)) = content {
        for c in items {
            wrap_one_content(Some(c), server);
        }
    }
}

fn wrap_one_content(c: Option<&mut Value>, server: &str) {
    let Some(c) = c else { return };
    match c.get("type").and_then(Value::as_str) {
        Some("resource_link") => wrap_uri_at(c, "/uri", server),
        Some("resource") => wrap_uri_at(c, "/resource/uri", server),
        _ => {}
    }
}

/// The cursor of the next page: each server still listing, with its own cursor.
fn encode_cursor(next: &[(String, String)]) -> String {
    use base64::Engine;
    let map: serde_json::Map<String, Value> = next
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Value::Object(map).to_string())
}

fn decode_cursor(c: &str) -> Option<Vec<(String, String)>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    let Value::Object(map) = serde_json::from_slice(&bytes).ok()? else {
        return None;
    };
    map.into_iter()
        .map(|(k, v)| Some((k, v.as_str()?.to_owned())))
        .collect()
}

/// The messages of a stack's answer, JSON or SSE, each read as clients read it.
struct Incoming {
    sse: Option<SseParser>,
    body: Body,
    queue: VecDeque<Parsed<'static>>,
    done: bool,
}

impl Incoming {
    fn new(sse: bool, body: Body) -> Incoming {
        Incoming {
            sse: sse.then(SseParser::default),
            body,
            queue: VecDeque::new(),
            done: false,
        }
    }

    fn is_sse(&self) -> bool {
        self.sse.is_some()
    }

    async fn next(&mut self) -> Option<Result<Parsed<'static>, UpError>> {
        loop {
            if let Some(p) = self.queue.pop_front() {
                return Some(Ok(p));
            }
            if self.done {
                return None;
            }
            match &mut self.sse {
                None => {
                    self.done = true;
                    let bytes = match (&mut self.body).collect().await {
                        Ok(c) => c.to_bytes(),
                        Err(e) => {
                            return Some(Err(UpError(format!(
                                "the upstream's answer could not be read: {e}"
                            ))))
                        }
                    };
                    if bytes.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    return Some(
                        json::parse_owned(bytes.to_vec())
                            .map_err(|e| UpError(format!("the upstream's answer is not JSON: {e}"))),
                    );
                }
                Some(parser) => match self.body.frame().await {
                    None => self.done = true,
                    Some(Err(e)) => {
                        self.done = true;
                        return Some(Err(UpError(format!("the upstream's stream failed: {e}"))));
                    }
                    Some(Ok(f)) => {
                        let Ok(data) = f.into_data() else { continue };
                        for ev in parser.push(&data) {
                            if ev.data.is_empty() {
                                continue;
                            }
                            match json::parse_owned(ev.data.into_bytes()) {
                                Ok(p) => self.queue.push_back(p),
                                Err(e) => {
                                    return Some(Err(UpError(format!("an upstream event is not JSON: {e}"))))
                                }
                            }
                        }
                    }
                },
            }
        }
    }
}

/// A body fed by an unbounded channel (one data frame per message).
struct UnboundedBody {
    rx: mpsc::UnboundedReceiver<Bytes>,
}

impl http_body::Body for UnboundedBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let next = vec![
            ("crm".to_owned(), "p2".to_owned()),
            ("mail-eu".to_owned(), "x".to_owned()),
        ];
        assert_eq!(decode_cursor(&encode_cursor(&next)).unwrap(), next);
        assert!(decode_cursor("not base64!").is_none());
        use base64::Engine;
        let arr = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("[1]");
        assert!(decode_cursor(&arr).is_none());
    }

    #[test]
    fn content_uris_are_aggregated() {
        let mut v = json!([
            {"type": "text", "text": "file:///x"},
            {"type": "resource_link", "uri": "file:///a", "name": "a"},
            {"type": "resource", "resource": {"uri": "file:///b", "text": "b"}}
        ]);
        wrap_content(Some(&mut v), "docs");
        assert_eq!(v[0]["text"], "file:///x");
        assert_eq!(v[1]["uri"], "mcp-gateway://docs/file:///a");
        assert_eq!(v[2]["resource"]["uri"], "mcp-gateway://docs/file:///b");
    }
}

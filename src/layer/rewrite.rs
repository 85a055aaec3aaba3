//! Restore toward the server, tokenize toward the model: [`RewriteLayer`].
//!
//! Request path: the body is buffered (size-limited: 413), parsed (invalid JSON: 400 with a
//! `-32700` parse error), restored with [`PiiCore::to_server`] (unknown placeholder or policy
//! denial: the inner service is never called and the client gets a JSON-RPC error for each of
//! its requests), the `Mcp-Name` / `Mcp-Param-*` headers restored the same way, and the body
//! re-serialized only when something changed (otherwise the original bytes are forwarded);
//! `Content-Length` is set to the forwarded length.
//!
//! Response path, by content type:
//! - `text/event-stream`: rewritten event by event as the events arrive ([`SseRewriter`]).
//! - any other non-empty body (JSON, whatever the status): buffered (size-limited), tokenized
//!   as a JSON-RPC message, or as text when it is not JSON; a body that is neither JSON nor
//!   UTF-8 text is withheld (502).
//! - empty bodies (202, 204, `Content-Length: 0`): passed through.
//!
//! It needs the [`ClientScope`] that [`ScopeLayer`](super::scope::ScopeLayer) puts into the
//! request's extensions; without one it answers 500 and forwards nothing. When the scope is the
//! client's default one and the server's answer assigns an `Mcp-Session-Id` (the answer to
//! `initialize`), that answer is tokenized in the new session's scope, where the session's
//! later requests will look for its placeholders.
//!
//! ```
//! use mcp_pii_gateway::{exchange::PiiCore, layer::{body::{full, Body}, rewrite::RewriteLayer, scope::ScopeLayer}};
//! use tower::{ServiceBuilder, ServiceExt};
//! let svc = ServiceBuilder::new()
//!     .layer(ScopeLayer::new())
//!     .layer(RewriteLayer::new(PiiCore::builtin(), "crm").max_request_body(1 << 20))
//!     .service_fn(|req: http::Request<Body>| async move {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(req.into_body()))
//!     });
//! # let _ = svc;
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::TryFutureExt;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use tower_layer::Layer;
use tower_service::Service;

use super::body::{boxed, full, Body, BoxError};
use super::headers::restore_mirror_headers;
use super::response::{http_error, json_response};
use super::scope::{ClientScope, ScopeSource, MCP_SESSION_ID};
use super::sse::SseRewriter;
use crate::exchange::{
    error_kind, error_reply, method_of, responses_as_errors, unanswered_errors, ExchangeCtx, PiiCore,
    RequestInfo, ToModel, ToServer,
};
use crate::json;
use crate::jsonrpc::{
    error_object, error_response, INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, SESSION_NOT_FOUND,
    UPSTREAM_FAILED,
};

/// Default [`RewriteLayer::max_request_body`]: 4 MiB.
pub const DEFAULT_MAX_REQUEST_BODY: usize = 4 << 20;
/// Default [`RewriteLayer::max_response_body`]: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 16 << 20;
/// Default [`RewriteLayer::max_sse_event`]: 4 MiB.
pub const DEFAULT_MAX_SSE_EVENT: usize = 4 << 20;

#[derive(Debug, Clone)]
struct Config {
    core: PiiCore,
    server: Arc<str>,
    max_request_body: usize,
    max_response_body: usize,
    max_sse_event: usize,
}

/// Restores placeholders in requests and tokenizes PII in responses; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct RewriteLayer {
    cfg: Arc<Config>,
}

impl RewriteLayer {
    /// Rewrites with `core` for the upstream named `server` (recorded as the origin of every
    /// value tokenized here, and checked by the flow policy).
    pub fn new(core: PiiCore, server: &str) -> RewriteLayer {
        RewriteLayer {
            cfg: Arc::new(Config {
                core,
                server: Arc::from(server),
                max_request_body: DEFAULT_MAX_REQUEST_BODY,
                max_response_body: DEFAULT_MAX_RESPONSE_BODY,
                max_sse_event: DEFAULT_MAX_SSE_EVENT,
            }),
        }
    }
    /// Largest request body accepted, in bytes; larger ones get 413. Default: 4 MiB.
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.cfg).max_request_body = bytes;
        self
    }
    /// Largest non-streaming response body accepted from the server, in bytes; larger ones are
    /// withheld and the client gets JSON-RPC errors. Default: 16 MiB.
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.cfg).max_response_body = bytes;
        self
    }
    /// Largest SSE event accepted from the server, in bytes; past it the stream fails closed.
    /// Default: 4 MiB.
    pub fn max_sse_event(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.cfg).max_sse_event = bytes;
        self
    }
    /// This layer's size limits applied to `self`.
    pub(crate) fn copy_limits_from(mut self, other: &RewriteLayer) -> Self {
        let c = Arc::make_mut(&mut self.cfg);
        c.max_request_body = other.cfg.max_request_body;
        c.max_response_body = other.cfg.max_response_body;
        c.max_sse_event = other.cfg.max_sse_event;
        self
    }
    /// The core.
    pub fn core(&self) -> &PiiCore {
        &self.cfg.core
    }
    /// The server name.
    pub fn server(&self) -> &str {
        &self.cfg.server
    }
}

impl<S> Layer<S> for RewriteLayer {
    type Service = Rewrite<S>;
    fn layer(&self, inner: S) -> Rewrite<S> {
        Rewrite {
            inner,
            cfg: self.cfg.clone(),
        }
    }
}

/// The service made by [`RewriteLayer`].
#[derive(Debug, Clone)]
pub struct Rewrite<S> {
    inner: S,
    cfg: Arc<Config>,
}

impl<S> Rewrite<S> {
    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The boxed future of the layer's services.
pub type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

impl<S, ReqB, ResB> Service<Request<ReqB>> for Rewrite<S>
where
    S: Service<Request<Body>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: http_body::Body<Data = Bytes> + Send + 'static,
    ReqB::Error: Into<BoxError>,
    ResB: http_body::Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Response<Body>, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        // The ready service is the one in `self`; keep a fresh clone in its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let cfg = self.cfg.clone();
        // Box the inner call here, where its `Send` bounds are concrete; the async exchange
        // below then only sees the stack's own body type.
        let call_inner: CallInner<S::Error> = Box::new(move |req: Request<Body>| {
            let mut inner = inner;
            Box::pin(inner.call(req).map_ok(|res| res.map(boxed)))
        });
        Box::pin(exchange(cfg, call_inner, req.map(boxed)))
    }
}

fn record(field: &'static str, value: &'static str) {
    tracing::Span::current().record(field, value);
}

type CallInner<E> = Box<dyn FnOnce(Request<Body>) -> BoxFuture<Response<Body>, E> + Send>;

async fn exchange<E>(
    cfg: Arc<Config>,
    call_inner: CallInner<E>,
    req: Request<Body>,
) -> Result<Response<Body>, E> {
    let (mut parts, body) = req.into_parts();
    let Some(cs) = parts.extensions.get::<ClientScope>().cloned() else {
        tracing::error!("no ClientScope in the request: put ScopeLayer in front of RewriteLayer");
        record("outcome", "internal_error");
        return Ok(http_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            INTERNAL_ERROR,
            "internal gateway error: the request has no scope",
        ));
    };

    // 1. Buffer the body, size-limited.
    if content_length(&parts.headers).is_some_and(|n| n > cfg.max_request_body as u64) {
        return Ok(too_large());
    }
    let bytes = match collect_limited(body, cfg.max_request_body).await {
        Ok(b) => b,
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => return Ok(too_large()),
        Err(_) => {
            record("outcome", "bad_request");
            return Ok(http_error(
                StatusCode::BAD_REQUEST,
                None,
                INVALID_REQUEST,
                "bad request: the request body could not be read",
            ));
        }
    };

    // 2. Parse, restore (all or nothing), restore the mirror headers.
    let mut ctx = ExchangeCtx::new(cs.scope.clone(), cfg.server.clone());
    let forwarded = if bytes.iter().all(u8::is_ascii_whitespace) {
        bytes
    } else {
        let mut parsed = match json::parse(&bytes) {
            Ok(p) => p,
            Err(e) => {
                record("outcome", "bad_request");
                let (code, what) = if e.is_limit() {
                    (INVALID_REQUEST, "the gateway cannot read the request")
                } else {
                    (PARSE_ERROR, "parse error")
                };
                return Ok(http_error(
                    StatusCode::BAD_REQUEST,
                    None,
                    code,
                    &format!("{what}: {e}; nothing was forwarded"),
                ));
            }
        };
        let exact = parsed.is_exact();
        let msg = &mut parsed.value;
        ctx = ctx.with_requests(RequestInfo::collect(msg));
        if let Some(m) = method_of(msg) {
            tracing::Span::current().record("mcp_method", &*m);
        }
        let restored = cfg
            .core
            .to_server(msg, &ctx)
            .and_then(|r| restore_mirror_headers(&mut parts.headers, &cfg.core, &ctx).map(|_| r));
        match restored {
            Ok(ToServer::Unchanged) if exact => {
                drop(parsed);
                bytes
            }
            Ok(ToServer::Unchanged) => Bytes::from(parsed.to_vec()),
            Ok(ToServer::Restored { placeholders }) => {
                tracing::Span::current().record("restored", placeholders);
                Bytes::from(parsed.to_vec())
            }
            Err(e) => {
                record("outcome", "rejected");
                if let Some(reply) = error_reply(msg, &e) {
                    tracing::info!(error = error_kind(&e), "request rejected; nothing was forwarded");
                    let mut res = json_response(StatusCode::OK, &reply);
                    res.extensions_mut().insert(Refused::of(&e));
                    return Ok(res);
                }
                match responses_as_errors(msg, &e) {
                    // The client's answers to server-initiated requests: the server gets errors
                    // in their place (so it does not wait forever), and no value.
                    Some(substitute) => {
                        tracing::info!(
                            error = error_kind(&e),
                            "client answer rejected; the server gets an error in its place"
                        );
                        Bytes::from(json::to_vec_sized(&substitute, 256))
                    }
                    // Only notifications: nothing to answer, nothing forwarded.
                    None => {
                        tracing::info!(error = error_kind(&e), "notification dropped");
                        let mut res = Response::new(super::body::empty());
                        *res.status_mut() = StatusCode::ACCEPTED;
                        return Ok(res);
                    }
                }
            }
        }
    };
    if !forwarded.is_empty()
        || parts.headers.contains_key(header::CONTENT_LENGTH)
        || parts.headers.contains_key(header::TRANSFER_ENCODING)
    {
        parts.headers.remove(header::TRANSFER_ENCODING);
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(forwarded.len()));
    }

    // The answer must come back readable: a compressed body cannot be inspected.
    parts.headers.remove(header::ACCEPT_ENCODING);

    // SSE event ids reach the client tokenized; a resuming client sends one back.
    restore_last_event_id(&mut parts.headers, &cfg.core, &ctx);

    // 3. Forward.
    let res = call_inner(Request::from_parts(parts, full(forwarded))).await?;

    // 4. Tokenize the answer.
    record("outcome", "ok");
    let (mut rparts, rbody) = res.into_parts();
    // Only the answer to `initialize` establishes a session (and so a scope): a session id on
    // any other answer is not one this client began, and tokenizing in its scope would hand
    // out placeholders that a later request could resolve to someone else's values.
    let initialize = ctx.requests.iter().any(|r| &*r.method == "initialize");
    if cs.source == ScopeSource::Default && initialize {
        if let Some(sid) = rparts
            .headers
            .get(MCP_SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|s| !s.is_empty())
        {
            ctx = ctx.with_scope(ClientScope::from_session(&cs.client, sid).scope);
        }
    }
    let ctx = Arc::new(ctx);
    if rparts.status == StatusCode::NO_CONTENT
        || rparts.status == StatusCode::NOT_MODIFIED
        || http_body::Body::size_hint(&rbody).exact() == Some(0)
    {
        return Ok(Response::from_parts(rparts, rbody));
    }
    if rparts
        .headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        // Compressed although we asked for no compression: fail closed.
        drop(rbody);
        return Ok(withhold(
            &ctx,
            rparts.status,
            "the server's response is compressed and cannot be inspected",
        ));
    }
    if is_event_stream(&rparts.headers) {
        rparts.headers.remove(header::CONTENT_LENGTH);
        let rw = SseRewriter::new(cfg.core.clone(), ctx, cfg.max_sse_event);
        let body = SseBody {
            inner: rbody,
            rw,
            done: false,
            span: tracing::Span::current(),
        };
        return Ok(Response::from_parts(rparts, Body::new(body)));
    }
    Ok(buffered_response(&cfg, &ctx, rparts, rbody).await)
}

async fn buffered_response(
    cfg: &Config,
    ctx: &ExchangeCtx,
    mut parts: http::response::Parts,
    body: Body,
) -> Response<Body> {
    let too_large = || {
        format!(
            "the server's response exceeds the gateway's size limit of {} bytes ([limits] max_response_bytes)",
            cfg.max_response_body
        )
    };
    if content_length(&parts.headers).is_some_and(|n| n > cfg.max_response_body as u64) {
        return withhold(ctx, parts.status, &too_large());
    }
    let bytes = match collect_limited(body, cfg.max_response_body).await {
        Ok(b) => b,
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return withhold(ctx, parts.status, &too_large())
        }
        Err(_) => return withhold(ctx, parts.status, "the server's response body could not be read"),
    };
    let out: Bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        // Nothing to read (a 202 without a length, say): nothing to leak either.
        bytes
    } else {
        let mut parsed = match json::parse(&bytes) {
            Ok(p) => p,
            Err(e) => return not_json(cfg, ctx, parts, bytes, &e),
        };
        match cfg.core.to_model(&mut parsed.value, ctx) {
            ToModel::Unchanged if parsed.is_exact() => {
                drop(parsed);
                bytes
            }
            ToModel::Unchanged => Bytes::from(parsed.to_vec()),
            ToModel::Tokenized { placeholders, .. } => {
                tracing::Span::current().record("placeholders", placeholders);
                Bytes::from(parsed.to_vec())
            }
            ToModel::Replaced => {
                record("outcome", "withheld");
                parts.extensions.insert(Refused::Withheld);
                // The message changed shape (errors in place of answers, batch elements
                // removed): its source tokens no longer line up with it.
                Bytes::from(json::to_vec_sized(&parsed.value, bytes.len()))
            }
            ToModel::Dropped => {
                return withhold(ctx, parts.status, "the server's message could not be tokenized")
            }
        }
    };
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    Response::from_parts(parts, full(out))
}

/// A response body that is not JSON. Plain text (an error page of a proxy in front of the
/// server, say) is tokenized as the text it is, but only when no client could read it as
/// anything else: never when it is declared JSON, holds a backslash (an escape some decoder
/// might apply), is JSON the gateway declines to read (too deep), or is not UTF-8. Those are
/// withheld.
fn not_json(
    cfg: &Config,
    ctx: &ExchangeCtx,
    mut parts: http::response::Parts,
    bytes: Bytes,
    e: &json::JsonError,
) -> Response<Body> {
    let declared_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_none_or(|m| m == "application/json" || m.ends_with("+json"));
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) if !e.is_limit() && !declared_json && !t.contains('\\') => t,
        _ => {
            return withhold(
                ctx,
                parts.status,
                &format!("the server's response cannot be read ({e})"),
            )
        }
    };
    let out = match cfg.core.tokenize_text(text, ctx) {
        Ok(None) => bytes,
        Ok(Some(t)) => Bytes::from(t),
        Err(_) => return withhold(ctx, parts.status, "the server's response could not be tokenized"),
    };
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(out.len()));
    Response::from_parts(parts, full(out))
}

/// Buffers `body` up to `max` bytes. Boxed in a plain function so that async callers need not
/// prove the body's bounds for every lifetime (a rustc limitation with `dyn Error` bodies).
fn collect_limited(body: Body, max: usize) -> BoxFuture<Bytes, BoxError> {
    Box::pin(Limited::new(body, max).collect().map_ok(|c| c.to_bytes()))
}

/// The answer sent instead of a server response whose body cannot be released: a JSON-RPC
/// error for each request of the exchange, or one with `id: null` when there is none.
///
/// An error status (4xx, 5xx) is kept, since it carries the protocol's meaning: a 404 ends the
/// session and the client initializes again (so it comes with `-32003`, outside `initialize`);
/// a 401 asks for credentials. Any other status becomes 200 (502 when there is no request to
/// answer): a redirect's `Location` is not relayed, so a client could not follow it.
fn withhold(ctx: &ExchangeCtx, status: StatusCode, why: &str) -> Response<Body> {
    record("outcome", "withheld");
    tracing::warn!(
        server = %ctx.server,
        status = status.as_u16(),
        "{why}; the response was withheld"
    );
    let keep = status.is_client_error() || status.is_server_error();
    let initialize = ctx.requests.iter().any(|r| &*r.method == "initialize");
    let err = if keep && status == StatusCode::NOT_FOUND && !initialize {
        error_object(
            SESSION_NOT_FOUND,
            "session not found: the server ended it; initialize a new one",
        )
    } else if keep {
        error_object(
            UPSTREAM_FAILED,
            &format!(
                "upstream error: the server answered HTTP {}; {why}; the gateway withheld its body",
                status.as_u16()
            ),
        )
    } else {
        error_object(
            UPSTREAM_FAILED,
            &format!("upstream error: {why}; the gateway withheld the response"),
        )
    };
    let mut res = match unanswered_errors(ctx, &[], &err) {
        Some(msg) => json_response(if keep { status } else { StatusCode::OK }, &msg),
        None => json_response(
            if keep { status } else { StatusCode::BAD_GATEWAY },
            &error_response(Value::Null, err),
        ),
    };
    res.extensions_mut().insert(Refused::Withheld);
    res
}

/// Restores the placeholders of a `Last-Event-ID` header (an SSE event id the gateway
/// tokenized). One it cannot restore (unknown, denied, not a header value once restored) is
/// dropped: the server then resumes as for a new stream, and nothing is forwarded unresolved.
fn restore_last_event_id(headers: &mut HeaderMap, core: &PiiCore, ctx: &ExchangeCtx) {
    const LAST_EVENT_ID: &str = "last-event-id";
    let Some(v) = headers
        .get(LAST_EVENT_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.contains('['))
    else {
        return;
    };
    match core.restore_text(v, ctx) {
        Ok(None) => {}
        Ok(Some(restored)) => match HeaderValue::from_str(&restored) {
            Ok(h) => {
                headers.insert(LAST_EVENT_ID, h);
            }
            Err(_) => {
                headers.remove(LAST_EVENT_ID);
            }
        },
        Err(e) => {
            tracing::info!(error = error_kind(&e), "Last-Event-ID not restored; dropped");
            headers.remove(LAST_EVENT_ID);
        }
    }
}

/// Why the layer answered in the server's place, when the HTTP status does not say it
/// (JSON-RPC errors travel in 200s). Put in the response's extensions, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// A flow policy denied the request; nothing was forwarded.
    PolicyDenied,
    /// The request held a placeholder never issued in its scope; nothing was forwarded.
    UnknownPlaceholder,
    /// The request was refused for another reason (too deep, bad input); nothing forwarded.
    Rejected,
    /// The server's answer could not be released and was replaced by errors.
    Withheld,
}

impl Refused {
    fn of(e: &crate::Error) -> Refused {
        if e.is_policy_denied() {
            Refused::PolicyDenied
        } else if e.is_unknown_placeholder() {
            Refused::UnknownPlaceholder
        } else {
            Refused::Rejected
        }
    }
}

fn too_large() -> Response<Body> {
    record("outcome", "too_large");
    http_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
        INVALID_REQUEST,
        "the request body exceeds the gateway's size limit",
    )
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn is_event_stream(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// A response body rewriting server-sent events as they arrive.
struct SseBody {
    inner: Body,
    rw: SseRewriter,
    done: bool,
    span: tracing::Span,
}

impl SseBody {
    fn finish_stats(&self) {
        let s = self.rw.stats();
        self.span.record("sse_events", s.events);
        if s.placeholders > 0 {
            self.span.record("placeholders", s.placeholders);
        }
        if s.withheld > 0 {
            self.span.record("outcome", "withheld");
        }
    }
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let _g = this.span.clone().entered();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let mut out = Vec::new();
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.rw.push(&data, &mut out);
                        if this.rw.is_failed() {
                            this.done = true;
                            this.finish_stats();
                        }
                    }
                    // Trailers: pass them on.
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Some(Err(e)) => {
                    this.done = true;
                    this.finish_stats();
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    this.rw.finish(&mut out);
                    this.done = true;
                    this.finish_stats();
                }
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}

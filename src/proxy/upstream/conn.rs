//! The HTTP/1 connections to one upstream, driven by the task of the request that uses them.
//!
//! hyper's pooled client runs each connection in a task of its own, so one relayed call costs
//! several cross-task wake-ups (request → connection task → response head → body chunk), each
//! a futex wake and often a hop to the other core: on loopback that was most of the gateway's
//! added latency. Here the request's own task polls the connection while it waits for the
//! response head and, through [`DrivenBody`], while the body is read; when the body has ended
//! the connection goes back to the pool, ready for the next request.
//!
//! An idle pooled connection is not polled, but the runtime still records its socket's
//! readiness: a connection the server closed is seen (and dropped) at the next checkout, or by
//! [`Pool::prune`], which the upstream's periodic sweep calls. A
//! request that could not be written because the reused connection turned out to be dead is
//! retried on another one (hyper hands the unsent request back); a request that was written
//! is never sent twice.
//!
//! On a current-thread runtime (`serve --runtime per-core` runs one per CPU), a connection's
//! socket belongs to the runtime that opened it: only that runtime's thread takes it from the
//! pool, so its I/O never needs another thread to be woken.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, Uri};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tower::Service;

use crate::proxy::body::Body;
use crate::proxy::tls::MaybeTls;

/// A connection to an upstream: plain TCP, or TLS for `https://`.
type Stream = MaybeTls<tokio_rustls::client::TlsStream<TcpStream>>;
type Driver = Pin<Box<http1::Connection<TokioIo<Stream>, Body>>>;

/// Why a request could not be relayed.
#[derive(Debug)]
pub(super) enum SendError {
    /// No connection could be opened.
    Connect(String),
    /// TLS failed: in the handshake, or by an alert the server sent once the handshake had
    /// finished (as a TLS 1.3 server refusing a client certificate does).
    Tls {
        /// A client-safe phrase (see [`crate::proxy::tls::failure`]).
        why: &'static str,
        /// The error, for the log.
        detail: String,
    },
    /// The connection failed before a response head arrived.
    Http(hyper::Error),
}

impl SendError {
    /// The client-safe phrase when TLS failed.
    pub(super) fn tls_failure(&self) -> Option<&'static str> {
        match self {
            SendError::Tls { why, .. } => Some(why),
            _ => None,
        }
    }

    /// A failed request on `conn`: TLS's failure when the error, or the error that ended the
    /// connection, says TLS failed.
    fn request_failed(e: hyper::Error, conn: &Conn) -> SendError {
        match crate::proxy::tls::failure(&e).or(conn.tls_failure) {
            Some(why) => SendError::Tls {
                why,
                detail: e.to_string(),
            },
            None => SendError::Http(e),
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "connect: {e}"),
            SendError::Tls { detail, .. } => write!(f, "tls: {detail}"),
            SendError::Http(e) => write!(f, "{e}"),
        }
    }
}

/// One HTTP/1 connection: the request sender and the connection future that does its I/O.
struct Conn {
    tx: http1::SendRequest<Body>,
    /// `None` once the connection has ended.
    driver: Option<Driver>,
    /// Set when the connection ended because TLS failed. The request's own error may only say
    /// that the connection closed: the cause is the connection's.
    tls_failure: Option<&'static str>,
    /// The thread whose current-thread runtime opened it (`None` on a multi-thread runtime,
    /// whose workers share one I/O driver).
    owner: Option<ThreadId>,
}

/// The thread a connection opened now belongs to: see [`Conn::owner`].
fn local_owner() -> Option<ThreadId> {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::CurrentThread) => Some(std::thread::current().id()),
        _ => None,
    }
}

impl Conn {
    /// Polls the connection's I/O; forgets it when it has ended.
    fn poll_driver(&mut self, cx: &mut Context<'_>) {
        if let Some(d) = &mut self.driver {
            if let Poll::Ready(r) = d.as_mut().poll(cx) {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "upstream connection ended");
                    self.tls_failure = crate::proxy::tls::failure(&e);
                }
                self.driver = None;
            }
        }
    }

    /// Waits until the connection can take a request (`Err` when it is dead).
    async fn ready(&mut self) -> hyper::Result<()> {
        poll_fn(|cx| {
            self.poll_driver(cx);
            self.tx.poll_ready(cx)
        })
        .await
    }

    /// Runs `fut` (a request on this connection) while driving the connection.
    async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        poll_fn(|cx| {
            // The connection first: it writes the request and reads the answer, then the
            // request future picks the head up in the same poll.
            self.poll_driver(cx);
            fut.as_mut().poll(cx)
        })
        .await
    }

    fn reusable(&self) -> bool {
        self.driver.is_some() && !self.tx.is_closed()
    }
}

/// The pool of one upstream's connections.
pub(super) struct Pool {
    connector: HttpConnector,
    /// For `https://`: the TLS client and the name its certificate must be valid for.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
    connect_timeout: Duration,
    target: Uri,
    /// `Host` of every request.
    host: HeaderValue,
    /// Origin-form path of every request.
    path: Uri,
    idle: Mutex<Vec<(Conn, Instant)>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Pool {
    /// A pool for the server at `target`: an `http://` URL, or an `https://` one with `tls`
    /// (without it, an `https://` target fails every request: TLS is never skipped).
    pub(super) fn new(
        target: Uri,
        connect_timeout: Duration,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Pool {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(connect_timeout));
        let https = target.scheme_str() == Some("https");
        // HttpConnector refuses https:// targets unless told the caller does the TLS.
        connector.enforce_http(!https);
        let tls = tls.filter(|_| https).and_then(|config| {
            let host = target.host()?;
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            let name = ServerName::try_from(host.to_owned()).ok()?;
            Some((tokio_rustls::TlsConnector::from(config), name))
        });
        let host = target
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .unwrap_or_else(|| HeaderValue::from_static("localhost"));
        let path = target
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
        Pool {
            connector,
            tls,
            connect_timeout,
            target,
            host,
            path,
            idle: Mutex::new(Vec::new()),
            max_idle: 64,
            idle_timeout: Duration::from_secs(90),
        }
    }

    /// Sends `req` (its URI and `Host` are set here) and returns the response once its head
    /// has arrived; the body drives the connection while it is read.
    pub(super) async fn send(
        self: &Arc<Self>,
        mut req: Request<Body>,
    ) -> Result<Response<DrivenBody>, SendError> {
        *req.uri_mut() = self.path.clone();
        req.headers_mut().insert(header::HOST, self.host.clone());
        loop {
            let (mut conn, reused) = match self.checkout() {
                Some(c) => (c, true),
                None => (self.connect().await?, false),
            };
            if let Err(e) = conn.ready().await {
                if reused {
                    continue;
                }
                return Err(SendError::request_failed(e, &conn));
            }
            let fut = conn.tx.try_send_request(req);
            match conn.drive(fut).await {
                Ok(res) => {
                    let pool = self.clone();
                    return Ok(res.map(|body| DrivenBody {
                        body,
                        conn: Some(conn),
                        pool,
                    }));
                }
                Err(mut e) => match e.take_message() {
                    // Never written: the connection died while idle. Try another one.
                    Some(r) if reused => req = r,
                    _ => {
                        // Let the connection record why it ended, if it has.
                        poll_fn(|cx| {
                            conn.poll_driver(cx);
                            Poll::Ready(())
                        })
                        .await;
                        return Err(SendError::request_failed(e.into_error(), &conn));
                    }
                },
            }
        }
    }

    /// The most recently used idle connection of this runtime that is still young enough.
    fn checkout(&self) -> Option<Conn> {
        let here = local_owner();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(i) = idle.iter().rposition(|(c, _)| c.owner == here) {
            let (conn, since) = idle.remove(i);
            if since.elapsed() < self.idle_timeout && conn.reusable() {
                return Some(conn);
            }
        }
        None
    }

    /// Drops idle connections that are too old or that the server closed (each is polled once,
    /// without a waker: it is only looked at again at checkout). Returns how many are left.
    pub(super) fn prune(&self) -> usize {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain_mut(|(conn, since)| {
            conn.poll_driver(&mut cx);
            since.elapsed() < self.idle_timeout && conn.reusable()
        });
        idle.len()
    }

    fn checkin(&self, conn: Conn) {
        if !conn.reusable() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<Conn, SendError> {
        let mut connector = self.connector.clone();
        let tcp = connector
            .call(self.target.clone())
            .await
            .map_err(|e| SendError::Connect(e.to_string()))?
            .into_inner();
        let io = if self.target.scheme_str() != Some("https") {
            MaybeTls::Plain(tcp)
        } else {
            let Some((tls, name)) = &self.tls else {
                return Err(SendError::Tls {
                    why: "its url's host is not a valid TLS server name",
                    detail: "no TLS client for this url".into(),
                });
            };
            match tokio::time::timeout(self.connect_timeout, tls.connect(name.clone(), tcp)).await {
                Ok(Ok(s)) => MaybeTls::Tls(Box::new(s)),
                Ok(Err(e)) => {
                    return Err(SendError::Tls {
                        why: crate::proxy::tls::failure(&e).unwrap_or("the TLS handshake with it failed"),
                        detail: e.to_string(),
                    })
                }
                Err(_) => {
                    return Err(SendError::Tls {
                        why: "the TLS handshake with it timed out (limits.connect_timeout)",
                        detail: "handshake timed out".into(),
                    })
                }
            }
        };
        let (tx, driver) = http1::handshake(TokioIo::new(io))
            .await
            .map_err(SendError::Http)?;
        Ok(Conn {
            tx,
            driver: Some(Box::pin(driver)),
            tls_failure: None,
            owner: local_owner(),
        })
    }
}

/// A response body that drives its connection while it is read, and returns the connection to
/// the pool once the body has ended. Dropped before the end, it closes the connection.
pub(super) struct DrivenBody {
    body: Incoming,
    conn: Option<Conn>,
    pool: Arc<Pool>,
}

impl DrivenBody {
    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.checkin(conn);
        }
    }
}

impl http_body::Body for DrivenBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(conn) = &mut this.conn {
            conn.poll_driver(cx);
        }
        let r = Pin::new(&mut this.body).poll_frame(cx);
        match &r {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.conn = None,
            _ => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for DrivenBody {
    fn drop(&mut self) {
        // A body read to its end (or one that had none) leaves a reusable connection.
        if self.body.is_end_stream() {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http_body_util::BodyExt;

    /// A server answering `ok`, closing connections idle for 100 ms.
    async fn server() -> Uri {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(Response::new(Body::from("ok")))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(Duration::from_millis(100))
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        format!("http://{addr}/mcp").parse().unwrap()
    }

    async fn get(pool: &Arc<Pool>) -> Bytes {
        let res = pool.send(Request::new(Body::empty())).await.unwrap();
        res.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_read_body_returns_its_connection_and_prune_drops_closed_ones() {
        let pool = Arc::new(Pool::new(server().await, Duration::from_secs(1), None));
        assert_eq!(get(&pool).await, "ok");
        assert_eq!(get(&pool).await, "ok");
        assert_eq!(pool.prune(), 1, "one connection, reused and back in the pool");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(pool.prune(), 0, "the server closed it");
        assert_eq!(get(&pool).await, "ok");
    }

    #[test]
    fn on_current_thread_runtimes_an_idle_connection_is_taken_only_by_its_thread() {
        let rt = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        // The server runs on its own runtime, counting the connections it accepts.
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let srv = tokio::runtime::Runtime::new().unwrap();
        let uri: Uri = srv.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepted = accepted.clone();
            tokio::spawn(async move {
                loop {
                    let (s, _) = listener.accept().await.unwrap();
                    accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(|_req| async {
                            Ok::<_, std::convert::Infallible>(Response::new(Body::from("ok")))
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(s), svc)
                            .await;
                    });
                }
            });
            format!("http://{addr}/mcp").parse().unwrap()
        });
        let count = || accepted.load(std::sync::atomic::Ordering::SeqCst);
        let pool = Arc::new(Pool::new(uri, Duration::from_secs(1), None));
        let a = rt();
        a.block_on(async { assert_eq!(get(&pool).await, "ok") });
        assert_eq!(count(), 1);
        // Another thread's runtime opens its own connection rather than take this one.
        let (p, (tx, rx)) = (pool.clone(), std::sync::mpsc::channel::<()>());
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let b = std::thread::spawn(move || {
            let b = rt();
            b.block_on(async { assert_eq!(get(&p).await, "ok") });
            done_tx.send(()).unwrap();
            // Keep the runtime (and its connection) alive until told.
            let _ = rx.recv();
        });
        done_rx.recv().unwrap();
        assert_eq!(count(), 2);
        // This thread takes its own connection back.
        a.block_on(async { assert_eq!(get(&pool).await, "ok") });
        assert_eq!(count(), 2);
        assert_eq!(pool.prune(), 2);
        tx.send(()).unwrap();
        b.join().unwrap();
    }

    #[tokio::test]
    async fn a_body_dropped_unread_closes_its_connection() {
        let pool = Arc::new(Pool::new(server().await, Duration::from_secs(1), None));
        let res = pool.send(Request::new(Body::empty())).await.unwrap();
        drop(res);
        assert_eq!(pool.prune(), 0);
        assert_eq!(get(&pool).await, "ok");
    }
}

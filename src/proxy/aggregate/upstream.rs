//! One downstream session's upstream sessions: opened lazily through each server's stack,
//! requests within them, their GET streams, and their end.

use super::*;

impl Aggregate {
    /// The gateway's own request `method` to member `m`; returns the response message.
    /// Everything else the upstream sends meanwhile goes to the session's GET stream.
    pub(super) async fn call(
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
    pub(super) async fn send_request(
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
    pub(super) async fn send(
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
    pub(super) fn inner_request(
        cs: &ClientScope,
        up: &Up,
        method: Method,
        body: Option<Vec<u8>>,
    ) -> Request<Body> {
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

    pub(super) async fn call_member(&self, m: usize, req: Request<Body>) -> Result<Response<Body>, UpError> {
        let member = &self.sh.members[m];
        call_service(member.svc.clone(), req)
            .await
            .map_err(|e| UpError(format!("server {} failed: {e}", member.name)))
    }

    /// Member `m`'s session for `s`, opened on first use.
    pub(super) async fn up(&self, s: &Arc<Session>, m: usize, cs: &ClientScope) -> Result<Arc<Up>, UpError> {
        // Held across the initialize on purpose: concurrent first uses of one server open one
        // upstream session, not several. Bounded by `upstream_timeout`.
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
    pub(super) async fn upstream_stream(
        self,
        s: Arc<Session>,
        m: usize,
        cs: ClientScope,
        up: std::sync::Weak<Up>,
    ) {
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

    /// Members with an open upstream session in `s`.
    pub(super) async fn open_members(&self, s: &Session) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, u) in s.ups.iter().enumerate() {
            if u.lock().await.is_some() {
                out.push(i);
            }
        }
        out
    }

    /// Ends `s`: its upstream sessions are deleted.
    pub(super) async fn end(&self, s: &Arc<Session>) {
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
}

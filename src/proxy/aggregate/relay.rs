//! Relaying one client request to the server that serves it, and what comes back: names and
//! URIs made aggregated again, server-to-client requests renumbered, the client's answers and
//! notifications routed back.

use super::*;

/// What names a routed request's server.
#[derive(Debug, Clone, Copy)]
pub(super) enum By {
    /// A tool or prompt name, `<server>__<name>`.
    Name,
    /// A resource URI, `mcp-gateway://<server>/<uri>`.
    Uri,
}

impl Aggregate {
    /// The client answers a request an upstream sent it.
    pub(super) async fn client_response(
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

    pub(super) async fn client_notification(
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

    /// Routes a request to the server named by the aggregated name or URI at `pointer`,
    /// which becomes the server's own before it is sent.
    pub(super) async fn route(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        mut msg: Parsed<'static>,
        id: &Value,
        pointer: &str,
        by: By,
    ) -> Response<Body> {
        let text = msg
            .value
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let found = match by {
            By::Name => self.member_of_name(&text),
            By::Uri => self.member_of_uri(&text),
        };
        // A server the client may not use is as unknown as one that does not exist.
        let Some((m, inner)) = found.filter(|(m, _)| cs.may_use(&self.sh.members[*m].name)) else {
            let why = match by {
                By::Name => format!(
                    "unknown name {}: names on /mcp are <server>__<name>",
                    self.quote(&text)
                ),
                By::Uri => format!(
                    "unknown resource {}: resources on /mcp are {}<server>/<uri>",
                    self.quote(&text),
                    names::SCHEME
                ),
            };
            return json_error(StatusCode::OK, Some(id), INVALID_PARAMS, &why);
        };
        if let Some(v) = msg.value.pointer_mut(pointer) {
            *v = Value::String(inner);
        }
        self.forward(s, cs, m, msg, id).await
    }

    /// Sends one client request to member `m` and relays its answer: JSON stays JSON; an SSE
    /// stream is relayed event by event (server-to-client requests get gateway ids).
    pub(super) async fn forward(
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
        let (tx, body) = UnboundedChannelBody::new();
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
        Response::from_parts(parts, boxed(body))
    }

    /// Rewrites a message from member `m` for the client: gateway ids for its requests,
    /// aggregated names and URIs. `answers` is the method of the client request a response
    /// answers.
    pub(super) fn outward(&self, s: &Session, m: usize, p: &mut Parsed<'static>, answers: Option<&str>) {
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
}

pub(super) fn wrap_uri_at(v: &mut Value, pointer: &str, server: &str) {
    if let Some(Value::String(u)) = v.pointer_mut(pointer) {
        *u = names::wrap_uri(server, u);
    }
}

/// Aggregated URIs for the resource links and embedded resources of a content list.
pub(super) fn wrap_content(content: Option<&mut Value>, server: &str) {
    if let Some(Value::Array(items)) = content {
        for c in items {
            wrap_one_content(Some(c), server);
        }
    }
}

pub(super) fn wrap_one_content(c: Option<&mut Value>, server: &str) {
    let Some(c) = c else { return };
    match c.get("type").and_then(Value::as_str) {
        Some("resource_link") => wrap_uri_at(c, "/uri", server),
        Some("resource") => wrap_uri_at(c, "/resource/uri", server),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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

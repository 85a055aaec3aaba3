//! What reaches the client outside a request's answer (the session's GET stream), and reading
//! a stack's answer (JSON or SSE) message by message.

use super::*;

impl Aggregate {
    /// Queues `frame` for the session's GET stream.
    pub(super) fn deliver(&self, s: &Session, frame: Bytes) {
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

    pub(super) fn get_stream(&self, s: &Arc<Session>) -> Response<Body> {
        let (tx, body) = UnboundedChannelBody::new();
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
        let mut r = Response::new(boxed(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        r
    }
}

/// Where a session's out-of-band messages go: the open GET stream, else a bounded queue.
#[derive(Default)]
pub(super) struct Events {
    pub(super) stream: Option<mpsc::UnboundedSender<Bytes>>,
    held: VecDeque<Bytes>,
    dropped: u64,
}

pub(super) fn is_sse(h: &HeaderMap) -> bool {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/event-stream")
        })
}

pub(super) fn sse_frame(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The messages of a stack's answer, JSON or SSE, each read as clients read it.
pub(super) struct Incoming {
    sse: Option<SseParser>,
    body: Body,
    queue: VecDeque<Parsed<'static>>,
    done: bool,
}

impl Incoming {
    pub(super) fn new(sse: bool, body: Body) -> Incoming {
        Incoming {
            sse: sse.then(SseParser::default),
            body,
            queue: VecDeque::new(),
            done: false,
        }
    }

    pub(super) fn is_sse(&self) -> bool {
        self.sse.is_some()
    }

    pub(super) async fn next(&mut self) -> Option<Result<Parsed<'static>, UpError>> {
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

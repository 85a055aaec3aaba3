//! What reaches the client outside a request's answer (the session's GET stream), and reading
//! a stack's answer (JSON or SSE) message by message.

use super::*;

impl Aggregate {
    /// Queues `frame` for the session's GET stream.
    pub(super) fn deliver(&self, s: &Session, frame: Bytes) {
        lock(&s.events).deliver(frame);
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
            ev.open(tx);
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

impl Events {
    /// Sends `frame` on the open GET stream, or holds it (the newest [`HELD_EVENTS`]) until
    /// one opens.
    fn deliver(&mut self, frame: Bytes) {
        let frame = match &self.stream {
            Some(tx) => match tx.send(frame) {
                Ok(()) => return,
                Err(e) => {
                    // The stream's client went away: hold it for the next one.
                    self.stream = None;
                    e.0
                }
            },
            None => frame,
        };
        self.held.push_back(frame);
        if self.held.len() > HELD_EVENTS {
            self.held.pop_front();
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped,
                    "/mcp session has no GET stream open: oldest server messages dropped"
                );
            }
        }
    }

    /// A GET stream opened: what was held goes first, in order.
    fn open(&mut self, tx: mpsc::UnboundedSender<Bytes>) {
        for f in self.held.drain(..) {
            let _ = tx.send(f);
        }
        self.stream = Some(tx);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_stream_the_newest_messages_are_held_and_the_oldest_dropped() {
        let mut ev = Events::default();
        for i in 0..HELD_EVENTS + 5 {
            ev.deliver(Bytes::from(i.to_string()));
        }
        assert_eq!(ev.dropped, 5);
        let (tx, mut rx) = mpsc::unbounded_channel();
        ev.open(tx);
        let mut got = Vec::new();
        while let Ok(f) = rx.try_recv() {
            got.push(String::from_utf8(f.to_vec()).expect("utf-8"));
        }
        assert_eq!(got.len(), HELD_EVENTS);
        assert_eq!(got[0], "5", "the five oldest were dropped");
        assert_eq!(got[HELD_EVENTS - 1], (HELD_EVENTS + 4).to_string());
        // Once open, a message goes straight through.
        ev.deliver(Bytes::from_static(b"live"));
        assert_eq!(rx.try_recv().expect("sent").as_ref(), b"live");
        assert!(ev.held.is_empty());
    }

    #[test]
    fn a_message_for_a_closed_stream_is_held_for_the_next_one() {
        let mut ev = Events::default();
        let (tx, rx) = mpsc::unbounded_channel();
        ev.open(tx);
        drop(rx);
        ev.deliver(Bytes::from_static(b"kept"));
        assert!(ev.stream.is_none());
        let (tx, mut rx) = mpsc::unbounded_channel();
        ev.open(tx);
        assert_eq!(rx.try_recv().expect("held").as_ref(), b"kept");
    }
}

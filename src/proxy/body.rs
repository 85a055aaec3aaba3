//! The body type of the gateway's services (the layer's [`Body`]), and the proxy's own
//! streaming bodies.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tokio::sync::mpsc;

pub use crate::layer::body::{boxed, empty, full, Body, BoxError};

/// A streaming body fed by a channel: each received chunk is one data frame; the body ends
/// when every sender is dropped.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    /// A body and the sender that feeds it (`cap` chunks of back-pressure).
    pub fn new(cap: usize) -> (mpsc::Sender<Bytes>, ChannelBody) {
        let (tx, rx) = mpsc::channel(cap);
        (tx, ChannelBody { rx })
    }
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// [`ChannelBody`] on an unbounded channel: for streams whose producer must never wait on the
/// client (the aggregated endpoint's relays); their memory is bounded where they are fed.
pub struct UnboundedChannelBody {
    rx: mpsc::UnboundedReceiver<Bytes>,
}

impl UnboundedChannelBody {
    /// A body and the sender that feeds it.
    pub fn new() -> (mpsc::UnboundedSender<Bytes>, UnboundedChannelBody) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, UnboundedChannelBody { rx })
    }
}

impl http_body::Body for UnboundedChannelBody {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A body that fails when no frame arrives for `idle` (a stalled upstream never hangs a
/// connection). Used for non-streaming upstream responses.
pub struct IdleTimeoutBody<B> {
    inner: B,
    idle: std::time::Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl<B> IdleTimeoutBody<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, idle: std::time::Duration) -> Self {
        IdleTimeoutBody {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

/// The error of an [`IdleTimeoutBody`] that timed out.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream body timed out")
    }
}

impl std::error::Error for BodyTimedOut {}

impl<B> http_body::Body for IdleTimeoutBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                let deadline = tokio::time::Instant::now() + this.idle;
                this.timer.as_mut().reset(deadline);
                Poll::Ready(r.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

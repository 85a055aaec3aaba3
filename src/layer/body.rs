//! The one body type of the layer stack, and small constructors for it.
//!
//! Every service built by this module answers with [`http::Response<Body>`] and hands its inner
//! service an [`http::Request<Body>`]. [`Body`] is a boxed, `Send` (not `Sync`) body of
//! [`Bytes`] frames whose error is a [`BoxError`]; [`Body::new`] (or [`boxed`]) converts hyper's
//! `Incoming`, rmcp's `BoxBody<Bytes, Infallible>`, `Full<Bytes>` and any other such body.
//!
//! `Body` is a struct rather than an alias of `UnsyncBoxBody<Bytes, BoxError>` on purpose: a
//! type that names `dyn Error` directly trips rustc's "implementation of `FnOnce` is not general
//! enough" error when a `service_fn` closure over it is spawned on tokio; a nominal type does not.
//!
//! ```
//! use mcp_pii_gateway::layer::body::{boxed, Body};
//! let a = Body::from("{}");
//! let b = boxed(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")));
//! # let _ = (a, b);
//! ```

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

/// A boxed, thread-safe error: what [`Body`] yields when a frame cannot be read.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The body type of every request and response inside the layer stack.
pub struct Body(UnsyncBoxBody<Bytes, BoxError>);

impl Body {
    /// Boxes any `Bytes` body whose error converts into [`BoxError`]; a [`Body`] is returned as
    /// it is, not boxed twice.
    pub fn new<B>(body: B) -> Body
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let mut slot = Some(body);
        if let Some(b) = (&mut slot as &mut dyn std::any::Any).downcast_mut::<Option<Body>>() {
            return b.take().expect("the slot was just filled");
        }
        let body = slot.take().expect("the slot was just filled");
        Body(body.map_err(Into::into).boxed_unsync())
    }
    /// An empty body.
    pub fn empty() -> Body {
        Body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
    }
    /// A body holding exactly `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        Body(
            Full::new(bytes.into())
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Body::full(b)
    }
}
impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Body::full(b)
    }
}
impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::full(s)
    }
}
impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::full(s)
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// Boxes any `Bytes` body into a [`Body`] (see [`Body::new`]).
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    Body::new(body)
}

/// A body holding exactly `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Body::full(bytes)
}

/// An empty body.
pub fn empty() -> Body {
    Body::empty()
}

//! The one body type of the layer stack, and small constructors for it.
//!
//! Every service built by this module answers with [`http::Response<Body>`] and hands its inner
//! service an [`http::Request<Body>`]. [`Body`] is a boxed, `Send` (not `Sync`) body of
//! [`Bytes`] frames whose error is a [`BoxError`], so hyper's `Incoming`, rmcp's
//! `BoxBody<Bytes, Infallible>` and `Full<Bytes>` all convert with [`boxed`].
//!
//! ```
//! use mcp_pii_gateway::layer::body::{boxed, full, Body};
//! let a: Body = full("{}");
//! let b: Body = boxed(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")));
//! # let _ = (a, b);
//! ```

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full};

/// A boxed, thread-safe error: what [`Body`] yields when a frame cannot be read.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The body type of every request and response inside the layer stack.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Boxes any `Bytes` body whose error converts into [`BoxError`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A body holding exactly `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

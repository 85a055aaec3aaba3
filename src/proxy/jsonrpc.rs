//! JSON-RPC error responses made by the gateway itself.
//!
//! Every failure the gateway produces becomes `{"jsonrpc":"2.0","id":..,"error":{..}}` with an
//! HTTP status that says whose fault it was. Messages never hold values from the request.

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use super::body::{full, Body};
use crate::error::{Error, Origin};

/// JSON-RPC error code: the session is unknown or expired (re-initialize).
pub const SESSION_NOT_FOUND: i64 = -32001;
/// JSON-RPC error code for gateway-level rejections (Host, Origin, auth, limits).
pub const GATEWAY_REJECTED: i64 = -32600;

/// A JSON-RPC error response body.
pub fn error_body(id: Option<&Value>, code: i64, message: &str) -> Vec<u8> {
    let v = json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": {"code": code, "message": message}});
    serde_json::to_vec(&v).expect("a json! value always serializes")
}

/// An HTTP response carrying a JSON-RPC error.
pub fn error_response(status: StatusCode, id: Option<&Value>, code: i64, message: &str) -> Response<Body> {
    let mut r = Response::new(full(error_body(id, code, message)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The HTTP status for a gateway [`Error`].
pub fn status_for(e: &Error) -> StatusCode {
    if e.is_policy_denied() {
        return StatusCode::FORBIDDEN;
    }
    match e.origin() {
        Origin::Client => StatusCode::BAD_REQUEST,
        Origin::Upstream => StatusCode::BAD_GATEWAY,
        Origin::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The response for a gateway [`Error`] answering request `id`.
pub fn from_error(e: &Error, id: Option<&Value>) -> Response<Body> {
    error_response(status_for(e), id, e.jsonrpc_code(), &e.to_string())
}

/// The `id` of a single JSON-RPC request in `body`, if it parses and has one.
pub fn request_id(body: &[u8]) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<Value>,
    }
    serde_json::from_slice::<IdOnly>(body).ok().and_then(|m| m.id)
}

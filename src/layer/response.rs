//! JSON-RPC messages as HTTP responses, and the HTTP status for each gateway [`Error`].
//!
//! The codes and the error message builder are [`crate::jsonrpc`]'s; this is the one place they
//! become HTTP responses.

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::Value;

use super::body::{full, Body};
use crate::error::{Error, Origin};
use crate::jsonrpc::{error_object, error_response};

/// An HTTP response with `status` whose body is the JSON-RPC message `msg`.
pub fn json_response(status: StatusCode, msg: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(msg).expect("a serde_json::Value always serializes");
    let mut res = Response::new(full(bytes));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// An HTTP response with `status` carrying `{"jsonrpc":"2.0","id":id,"error":{code,message}}`
/// (`id` null when `None`).
pub fn http_error(status: StatusCode, id: Option<&Value>, code: i64, message: &str) -> Response<Body> {
    let id = id.cloned().unwrap_or(Value::Null);
    json_response(status, &error_response(id, error_object(code, message)))
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
    http_error(status_for(e), id, e.jsonrpc_code(), &e.to_string())
}

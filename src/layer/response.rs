//! JSON-RPC error responses as HTTP responses.

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::Value;

use super::body::{full, Body};
use super::core::{error_object, error_response};

/// An HTTP response with `status` whose body is the JSON-RPC message `msg`.
pub fn json_response(status: StatusCode, msg: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(msg).unwrap_or_else(|_| b"null".to_vec());
    let mut res = Response::new(full(bytes));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// An HTTP response with `status` carrying `{"jsonrpc":"2.0","id":id,"error":{code,message}}`.
pub fn jsonrpc_error_response(status: StatusCode, id: Value, code: i64, message: &str) -> Response<Body> {
    json_response(status, &error_response(id, error_object(code, message)))
}

//! What is sent in a message's place when it cannot be forwarded or released: JSON-RPC error
//! responses for the same ids, saying what happened and never a value.

use serde_json::Value;

use super::{ExchangeCtx, RequestInfo};
use crate::error::Error;
use crate::jsonrpc::error_response;

/// A short, value-free name for an error's kind, for log lines (error messages name
/// placeholders and JSON paths; logs get only this).
pub fn error_kind(e: &Error) -> &'static str {
    if e.is_unknown_placeholder() {
        "unknown_placeholder"
    } else if e.is_policy_denied() {
        "policy_denied"
    } else if e.is_scope_full() {
        "scope_full"
    } else if e.is_bad_input() {
        "bad_input"
    } else if e.is_upstream() {
        "upstream"
    } else if e.is_vault_unavailable() {
        "vault_unavailable"
    } else {
        "internal"
    }
}

/// The JSON-RPC error object sent instead of a response that could not be tokenized.
pub(super) fn withheld_error(e: &Error) -> Value {
    let mut err = e.to_jsonrpc_error();
    if let Some(obj) = err.as_object_mut() {
        obj.insert(
            "message".into(),
            Value::String(format!(
                "the gateway withheld the server's response because it could not tokenize it: {e}; \
                 the request itself reached the server and may have taken effect"
            )),
        );
    }
    err
}

/// The id of a response (`result` or `error` member and a non-null id), if `msg` is one.
pub fn response_id(msg: &Value) -> Option<Value> {
    let obj = msg.as_object()?;
    if obj.contains_key("method") || !(obj.contains_key("result") || obj.contains_key("error")) {
        return None;
    }
    obj.get("id").filter(|id| !id.is_null()).cloned()
}

/// What to answer a client whose message `msg` was rejected with `err`: an error response for
/// each request in it (an object for one message, an array for a batch), or `None` when it held
/// no request (notifications and responses get no answer).
pub fn error_reply(msg: &Value, err: &Error) -> Option<Value> {
    let error = nothing_forwarded(err);
    per_message(msg, |m| {
        RequestInfo::from_message(m).map(|r| error_response(r.id, error.clone()))
    })
}

/// `err` as a JSON-RPC error object for a client message that was not forwarded, saying so.
fn nothing_forwarded(err: &Error) -> Value {
    let mut error = err.to_jsonrpc_error();
    if let Some(Value::String(m)) = error.get_mut("message") {
        if !m.ends_with("nothing was forwarded") {
            m.push_str("; nothing was forwarded");
        }
    }
    error
}

/// What to forward to the server instead of a rejected client→server message that holds
/// responses (the client's answers to server-initiated requests) but no request: an error
/// response with the same id for each response, so the server does not wait for an answer that
/// will never come (an object for one message, an array for a batch). Notifications are left
/// out. `None` when there is no response in `msg`.
pub fn responses_as_errors(msg: &Value, err: &Error) -> Option<Value> {
    let error = nothing_forwarded(err);
    per_message(msg, |m| {
        response_id(m).map(|id| error_response(id, error.clone()))
    })
}

/// What `f` gives for the message `msg`, or for a batch the array of what it gives for each
/// element (`None` when it gives nothing for any).
fn per_message(msg: &Value, f: impl Fn(&Value) -> Option<Value>) -> Option<Value> {
    match msg {
        Value::Array(items) => {
            let out: Vec<Value> = items.iter().filter_map(f).collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        other => f(other),
    }
}

/// Error responses for the requests of `ctx` whose ids are not in `answered`, as one message
/// (an object for one, an array for several); `None` when all were answered.
pub fn unanswered_errors(ctx: &ExchangeCtx, answered: &[Value], error: &Value) -> Option<Value> {
    let mut out: Vec<Value> = ctx
        .requests
        .iter()
        .filter(|r| !answered.contains(&r.id))
        .map(|r| error_response(r.id.clone(), error.clone()))
        .collect();
    match out.len() {
        0 => None,
        1 => out.pop(),
        _ => Some(Value::Array(out)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::jsonrpc::INVALID_PARAMS;
    use serde_json::json;

    #[test]
    fn request_info_and_replies() {
        let batch = json!([
            {"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"send"}},
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":"a","method":"ping"}
        ]);
        let reqs = RequestInfo::collect(&batch);
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].tool.as_deref(), Some("send"));
        let e = Error::unknown_placeholder("[EMAIL_9]", "/params/arguments/to");
        let reply = error_reply(&batch, &e).unwrap();
        assert_eq!(reply.as_array().unwrap().len(), 2);
        assert_eq!(reply[1]["id"], "a");
        assert_eq!(reply[0]["error"]["code"], INVALID_PARAMS);
        let note = json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{}});
        assert!(error_reply(&note, &e).is_none());
    }

    #[test]
    fn response_ids() {
        assert_eq!(
            response_id(&json!({"jsonrpc":"2.0","id":3,"result":{}})),
            Some(json!(3))
        );
        assert_eq!(response_id(&json!({"jsonrpc":"2.0","id":null,"error":{}})), None);
        assert_eq!(response_id(&json!({"jsonrpc":"2.0","id":3,"method":"x"})), None);
    }
}

//! Server→client: upstream JSON bodies and SSE streams through the layer API, checked against
//! the leak rule (what a client decodes holds no detector match outside placeholders).
//!
//! The first byte picks a mode: raw bytes or generated JSON-RPC (see `grammar`), through the
//! JSON body path (`json::parse` + `PiiCore::to_model` + `Parsed::to_vec`, as
//! `layer::rewrite::buffered_response` does), through `SseRewriter` in fuzzer-chosen chunks, or
//! through the whole `PiiLayer` driven with `oneshot`.
#![no_main]

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use arbitrary::{Result, Unstructured};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, StreamBody};
use libfuzzer_sys::fuzz_target;
use mcp_pii_gateway::json;
use mcp_pii_gateway::layer::body::{full, Body};
use mcp_pii_gateway::exchange::{ExchangeCtx, PiiCore, ToModel};
use mcp_pii_gateway::layer::sse::SseRewriter;
use mcp_pii_gateway::layer::PiiLayer;
use mcp_pii_gateway::vault::ScopeId;
use mcp_pii_gateway_fuzz::grammar::Gen;
use mcp_pii_gateway_fuzz::{
    assert_no_leak, assert_released_json, assert_released_sse, chunks, pii_outside_placeholders,
};
use tower::{Layer, ServiceExt};

fn ctx() -> ExchangeCtx {
    ExchangeCtx::new(ScopeId::new("anonymous", "fuzz"), "upstream")
}

/// What `buffered_response` releases for a JSON body (`None`: withheld).
fn json_body(data: &[u8]) -> Option<Vec<u8>> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Some(data.to_vec());
    }
    let mut parsed = json::parse(data).ok()?;
    let outcome = PiiCore::builtin().to_model(&mut parsed.value, &ctx());
    mcp_pii_gateway_fuzz::debug(
        &format!("to_model: {outcome:?}, exact: {}", parsed.is_exact()),
        b"",
    );
    match outcome {
        ToModel::Unchanged if parsed.is_exact() => Some(data.to_vec()),
        ToModel::Dropped => None,
        // Reshaped: written from the value, as `buffered_response` does.
        ToModel::Replaced => Some(json::Parsed::from(parsed.value).to_vec()),
        _ => Some(parsed.to_vec()),
    }
}

fn sse(parts: &[&[u8]], max_event: usize) -> Vec<u8> {
    let mut rw = SseRewriter::new(PiiCore::builtin(), Arc::new(ctx()), max_event);
    let mut out = Vec::new();
    for p in parts {
        rw.push(p, &mut out);
    }
    rw.finish(&mut out);
    out
}

fn check_json(data: &[u8]) {
    mcp_pii_gateway_fuzz::debug("JSON body", data);
    if let Some(out) = json_body(data) {
        mcp_pii_gateway_fuzz::debug("released", &out);
        assert_released_json(&out, "JSON body");
    }
}

fn check_sse(u: &mut Unstructured<'_>, data: &[u8]) -> Result<()> {
    mcp_pii_gateway_fuzz::debug("SSE stream", data);
    let max_event = if u.ratio(1, 8)? {
        u.int_in_range(8..=512)?
    } else {
        1 << 20
    };
    let parts = chunks(u, data, 6)?;
    let out = sse(&parts, max_event);
    assert_released_sse(&out, "SSE stream");
    // The output does not depend on how the stream was cut into chunks.
    let whole = sse(&[data], max_event);
    assert!(
        out == whole,
        "SSE output depends on chunking: {:?} vs {:?}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&whole)
    );
    Ok(())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

/// The whole `PiiLayer` over an upstream that answers `parts` with `ctype`.
fn check_layer(u: &mut Unstructured<'_>, data: &[u8]) -> Result<()> {
    mcp_pii_gateway_fuzz::debug("upstream body", data);
    let ctype = *u.choose(&[
        Some("application/json"),
        Some("text/event-stream"),
        Some("text/event-stream; charset=utf-8"),
        Some("text/plain"),
        Some("text/html; charset=utf-8"),
        None,
    ])?;
    let owned: Vec<Bytes> = chunks(u, data, 4)?
        .into_iter()
        .map(Bytes::copy_from_slice)
        .collect();
    let upstream = tower::service_fn(move |_req: Request<Body>| {
        let owned = owned.clone();
        async move {
            let frames = owned
                .into_iter()
                .map(|b| Ok::<_, Infallible>(http_body::Frame::data(b)));
            let mut res = Response::new(Body::new(StreamBody::new(futures_util::stream::iter(frames))));
            if let Some(ct) = ctype {
                res.headers_mut()
                    .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(ct));
            }
            Ok::<_, Infallible>(res)
        }
    });
    let svc = PiiLayer::new("upstream").layer(upstream);
    let req = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(full(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","arguments":{}}}"#,
        ))
        .expect("a valid request");
    let (sse, body) = runtime().block_on(async move {
        let res = svc.oneshot(req).await.expect("the layer answers");
        let sse = res
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = res
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        (sse, body)
    });
    if sse {
        assert_released_sse(&body, "layer SSE response");
    } else if let Ok(p) = json::parse(&body) {
        assert_no_leak(&p.value, "layer JSON response");
    } else if let Some(m) = pii_outside_placeholders(&String::from_utf8_lossy(&body)) {
        panic!("LEAK in layer text response: {m:?}");
    }
    Ok(())
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let mode: u8 = u.arbitrary()?;
    match mode % 6 {
        0 => check_json(u.take_rest()),
        1 => {
            let cut: u16 = u.arbitrary()?;
            let rest = u.take_rest();
            let c = if rest.is_empty() {
                0
            } else {
                cut as usize % (rest.len() + 1)
            };
            let out = sse(&[&rest[..c], &rest[c..]], 1 << 20);
            assert_released_sse(&out, "SSE stream (raw)");
            assert!(
                out == sse(&[rest], 1 << 20),
                "SSE output depends on chunking (raw)"
            );
        }
        2 => {
            let mut g = Gen::new(&mut u);
            g.message_or_batch()?;
            let text = std::mem::take(&mut g.out);
            check_json(text.as_bytes());
        }
        3 => {
            let mut g = Gen::new(&mut u);
            let stream = g.sse_stream()?;
            check_sse(&mut u, stream.as_bytes())?;
        }
        4 => {
            let mut g = Gen::new(&mut u);
            let body = if g.u.ratio(1, 2)? {
                g.sse_stream()?
            } else {
                g.message_or_batch()?;
                std::mem::take(&mut g.out)
            };
            check_layer(&mut u, body.as_bytes())?;
        }
        _ => {
            let n: u8 = u.arbitrary()?;
            let len = u.len();
            let rest = u.bytes(len)?;
            let sel = [n];
            let mut u2 = Unstructured::new(&sel);
            check_layer(&mut u2, rest)?;
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});

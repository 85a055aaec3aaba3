//! Client→server: `PiiCore::to_server` + `Parsed::to_vec`.
//!
//! 1. A generated server message is tokenized toward the model (minting placeholders in a
//!    scope); what the model saw, sent back, must restore to exactly the original value.
//! 2. A generated client message holding placeholders (minted, unknown, escaped, in protocol
//!    members) must restore to its value with exactly the placeholders of the walked members
//!    replaced by their values, or be refused whole when one is unknown.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mcp_pii_gateway::json;
use mcp_pii_gateway::exchange::{ExchangeCtx, PiiCore, ToModel};
use mcp_pii_gateway::vault::{Placeholder, ScopeId};
use mcp_pii_gateway_fuzz::grammar::Gen;
use mcp_pii_gateway_fuzz::placeholder_ranges;
use serde_json::{Map, Value};

const TAG: char = '\u{0}';

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    /// The message as sent, when it is an array (a batch): each object element is a message;
    /// any other element is no message and is restored whole (`Plain`).
    OuterBatch,
    Top,
    Params {
        progress: bool,
        cancelled: bool,
    },
    Meta,
    Content,
    /// Not a message: every string and member name, no protocol rules, no blob exemptions.
    Plain,
}

fn is_base64(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    let body = b
        .strip_suffix(b"==")
        .or_else(|| b.strip_suffix(b"="))
        .unwrap_or(b);
    b.len() % 4 == 0
        && body
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

struct Oracle<'a> {
    core: &'a PiiCore,
    scope: &'a ScopeId,
}

enum Fail {
    Unknown,
    Collision,
}

impl Oracle<'_> {
    /// `s` restored; `whole` is set when `s` is exactly one placeholder (its raw value).
    fn text(&self, s: &str) -> std::result::Result<(String, Option<String>), Fail> {
        let mut out = String::new();
        let mut last = 0;
        let ranges = placeholder_ranges(s);
        let mut whole = None;
        for &(a, b) in &ranges {
            let ph = Placeholder::parse(&s[a..b]).expect("a placeholder-shaped range parses");
            let entry = self
                .core
                .rewriter()
                .vault()
                .resolve(self.scope, &ph)
                .ok()
                .flatten()
                .ok_or(Fail::Unknown)?;
            let v = entry.value.expose();
            out.push_str(&s[last..a]);
            out.push_str(v.trim_start_matches(TAG));
            last = b;
            if a == 0 && b == s.len() {
                whole = Some(v.to_owned());
            }
        }
        out.push_str(&s[last..]);
        Ok((out, whole))
    }

    fn value(&self, v: &Value, ctx: Ctx) -> std::result::Result<Value, Fail> {
        Ok(match v {
            Value::String(s) => {
                let (out, whole) = self.text(s)?;
                match whole.as_deref().and_then(|w| w.strip_prefix(TAG)) {
                    Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => {
                        match d.parse::<u64>() {
                            Ok(n) => Value::from(n),
                            Err(_) => Value::String(out),
                        }
                    }
                    _ => Value::String(out),
                }
            }
            Value::Array(a) => {
                let child = |e: &Value| match ctx {
                    Ctx::OuterBatch if !e.is_object() => Ctx::Plain,
                    Ctx::OuterBatch => Ctx::Top,
                    Ctx::Plain => Ctx::Plain,
                    _ => Ctx::Content,
                };
                Value::Array(
                    a.iter()
                        .map(|e| self.value(e, child(e)))
                        .collect::<std::result::Result<_, _>>()?,
                )
            }
            Value::Object(m) => {
                let plain = ctx == Ctx::Plain;
                let skip_blob = !plain
                    && m.get("uri").is_some_and(Value::is_string)
                    && m.get("blob").is_some_and(is_base64);
                let skip_data = !plain
                    && matches!(m.get("type").and_then(Value::as_str), Some("image" | "audio"))
                    && m.get("data").is_some_and(is_base64);
                let method = m.get("method").and_then(Value::as_str).unwrap_or("");
                let mut out = Map::new();
                for (k, e) in m {
                    let (key, _) = self.text(k)?;
                    let child = if (skip_blob && k == "blob") || (skip_data && k == "data") {
                        None
                    } else {
                        match (ctx, k.as_str()) {
                            (Ctx::Plain, _) => Some(Ctx::Plain),
                            (Ctx::Top | Ctx::OuterBatch, "jsonrpc" | "id" | "method") => None,
                            (Ctx::Top | Ctx::OuterBatch, "params") => Some(Ctx::Params {
                                progress: method == "notifications/progress",
                                cancelled: method == "notifications/cancelled",
                            }),
                            (Ctx::Params { progress: true, .. }, "progressToken") => None,
                            (Ctx::Params { cancelled: true, .. }, "requestId") => None,
                            (Ctx::Params { .. }, "_meta") => Some(Ctx::Meta),
                            (Ctx::Meta, "progressToken") => None,
                            _ => Some(Ctx::Content),
                        }
                    };
                    let e = match child {
                        Some(c) => self.value(e, c)?,
                        None => e.clone(),
                    };
                    if out.insert(key, e).is_some() {
                        return Err(Fail::Collision);
                    }
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let core = PiiCore::builtin();
    let scope = ScopeId::new("anonymous", "fuzz");
    let ctx = ExchangeCtx::new(scope.clone(), "upstream");

    // 1. Mint: tokenize a server message; restoring what the model saw gives it back.
    let mut g = Gen::new(&mut u);
    g.message_or_batch()?;
    let server_msg = std::mem::take(&mut g.out);
    mcp_pii_gateway_fuzz::debug("server message", server_msg.as_bytes());
    if let Ok(mut parsed) = json::parse(server_msg.as_bytes()) {
        let original = parsed.value.clone();
        let outcome = core.to_model(&mut parsed.value, &ctx);
        if matches!(outcome, ToModel::Unchanged | ToModel::Tokenized { .. }) {
            let seen = parsed.to_vec();
            let mut back = json::parse(&seen).expect("the model's copy parses");
            core.to_server(&mut back.value, &ctx)
                .expect("every placeholder the model saw was minted in this scope");
            let restored = json::parse(&back.to_vec())
                .expect("the restored message parses")
                .value;
            assert!(
                restored == original,
                "restore(tokenize(m)) != m\n  m: {original}\n  model saw: {}\n  restored: {restored}",
                String::from_utf8_lossy(&seen)
            );
        }
    }

    // 2. A client message with placeholders.
    let mut g = Gen::new(&mut u);
    g.message_or_batch()?;
    let client_msg = std::mem::take(&mut g.out);
    mcp_pii_gateway_fuzz::debug("client message", client_msg.as_bytes());
    let Ok(mut parsed) = json::parse(client_msg.as_bytes()) else {
        return Ok(());
    };
    let top = if parsed.value.is_array() {
        Ctx::OuterBatch
    } else {
        Ctx::Top
    };
    let expected = Oracle {
        core: &core,
        scope: &scope,
    }
    .value(&parsed.value, top);
    let before = parsed.value.clone();
    match (core.to_server(&mut parsed.value, &ctx), expected) {
        (Ok(_), Ok(want)) => {
            let got = json::parse(&parsed.to_vec())
                .expect("the restored message parses")
                .value;
            assert!(
                got == want,
                "restore differs\n  sent: {before}\n  got: {got}\n  want: {want}"
            );
        }
        (Err(_), Err(_)) => assert!(parsed.value == before, "a refused message was changed"),
        (Ok(_), Err(Fail::Unknown)) => panic!("restored a message holding an unknown placeholder: {before}"),
        (Ok(_), Err(Fail::Collision)) => panic!("restoring merged two members of an object: {before}"),
        (Err(e), Ok(_)) => panic!("refused a message the rules restore ({e}): {before}"),
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});

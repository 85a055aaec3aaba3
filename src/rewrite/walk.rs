//! Iterative walkers over `serde_json::Value` and the JSON-RPC member rules they apply.
//!
//! No recursion: an explicit stack of `(value, context)` frames, so any nesting depth that can
//! be held in memory can be walked. Children are pushed in reverse, so strings are visited in
//! document order (an object's keys are visited before its members' values).

use std::convert::Infallible;

use serde_json::{Map, Value};

/// Which rules apply to a value, decided by where it sits in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ctx {
    /// A plain JSON value: every string and key, nothing skipped.
    Plain,
    /// Message content: every string and key, except well-formed base64 blobs.
    Content,
    /// A top-level message (or a batch element).
    Top,
    /// A top-level batch (array of messages).
    Batch,
    /// A message's `params`.
    Params {
        /// `notifications/progress`: leave `progressToken` alone.
        progress: bool,
        /// `notifications/cancelled`: leave `requestId` alone.
        cancelled: bool,
    },
    /// `params._meta`: leave `progressToken` alone.
    Meta,
    /// A JSON integer that a rule calls PII by its member name (see
    /// [`crate::detect::Detector::number_kind`]).
    Number,
}

impl Ctx {
    /// The context for a whole message or batch.
    pub(crate) fn message(msg: &Value) -> Ctx {
        if msg.is_array() {
            Ctx::Batch
        } else {
            Ctx::Top
        }
    }

    fn array_child(self) -> Ctx {
        match self {
            Ctx::Plain => Ctx::Plain,
            Ctx::Batch => Ctx::Top,
            _ => Ctx::Content,
        }
    }
}

/// What an object's context and siblings decide for its members, computed before its keys are
/// rewritten (the decisions read protocol names, which never change).
pub(crate) struct ObjRules {
    ctx: Ctx,
    skip_blob: bool,
    skip_data: bool,
    params: Ctx,
}

impl ObjRules {
    pub(crate) fn new(ctx: Ctx, m: &Map<String, Value>) -> ObjRules {
        let mut rules = ObjRules {
            ctx,
            skip_blob: false,
            skip_data: false,
            params: Ctx::Content,
        };
        match ctx {
            Ctx::Plain => return rules,
            Ctx::Top | Ctx::Batch => {
                let method = m.get("method").and_then(Value::as_str).unwrap_or("");
                rules.params = Ctx::Params {
                    progress: method == "notifications/progress",
                    cancelled: method == "notifications/cancelled",
                };
            }
            _ => {}
        }
        let (mut blob, mut data) = (false, false);
        for k in m.keys() {
            match k.as_str() {
                "blob" => blob = true,
                "data" => data = true,
                _ => {}
            }
        }
        if blob {
            // Resource contents: `{"uri": .., "blob": <base64>}`.
            rules.skip_blob =
                m.get("uri").is_some_and(Value::is_string) && m.get("blob").is_some_and(is_base64);
        }
        if data {
            // Image and audio content items: `{"type": "image"|"audio", "data": <base64>}`.
            rules.skip_data = matches!(m.get("type").and_then(Value::as_str), Some("image" | "audio"))
                && m.get("data").is_some_and(is_base64);
        }
        rules
    }

    /// The context for member `key`, or `None` to leave its value untouched.
    pub(crate) fn child(&self, key: &str) -> Option<Ctx> {
        if self.ctx == Ctx::Plain {
            return Some(Ctx::Plain);
        }
        if (self.skip_blob && key == "blob") || (self.skip_data && key == "data") {
            return None;
        }
        match (self.ctx, key) {
            (Ctx::Top | Ctx::Batch, "jsonrpc" | "id" | "method") => None,
            (Ctx::Top | Ctx::Batch, "params") => Some(self.params),
            (Ctx::Params { progress: true, .. }, "progressToken") => None,
            (Ctx::Params { cancelled: true, .. }, "requestId") => None,
            (Ctx::Params { .. }, "_meta") => Some(Ctx::Meta),
            (Ctx::Meta, "progressToken") => None,
            _ => Some(Ctx::Content),
        }
    }
}

/// True for a string that is well-formed standard base64 (padded, no whitespace). Anything
/// else in a blob position is walked like any other string.
fn is_base64(v: &Value) -> bool {
    let Some(s) = v.as_str() else {
        return false;
    };
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return false;
    }
    let body = b
        .strip_suffix(b"==")
        .or_else(|| b.strip_suffix(b"="))
        .unwrap_or(b);
    body.iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// What [`walk_mut`] does with integers: `is_pii(key, n)` says whether the integer `n` under
/// member `key` is PII; `f(n)` gives the string to put in its place.
pub(crate) struct Numbers<'a, E> {
    pub(crate) is_pii: &'a dyn Fn(&str, u64) -> bool,
    pub(crate) f: &'a mut dyn FnMut(u64) -> Result<Option<String>, E>,
}

/// Walks `root` in place like [`walk_mut`] (no numbers), but first offers each string value
/// (not member names) to `whole`, which may replace the value entirely (a placeholder standing
/// alone for an integer becomes that integer again).
pub(crate) fn walk_mut_whole(
    root: &mut Value,
    ctx: Ctx,
    f: &mut dyn FnMut(&str) -> Option<String>,
    whole: &mut dyn FnMut(&str) -> Option<Value>,
) {
    let mut stack: Vec<(&mut Value, Ctx)> = vec![(root, ctx)];
    while let Some((v, ctx)) = stack.pop() {
        if let Value::String(s) = v {
            if let Some(new) = whole(s) {
                *v = new;
            } else if let Some(new) = f(s) {
                *s = new;
            }
            continue;
        }
        match v {
            Value::Array(a) => {
                let child = ctx.array_child();
                stack.extend(a.iter_mut().rev().map(|e| (e, child)));
            }
            Value::Object(m) => {
                let rules = ObjRules::new(ctx, m);
                let r: Result<(), Infallible> = rewrite_keys(m, &mut |k| Ok(f(k)));
                if let Err(never) = r {
                    match never {}
                }
                for (k, e) in m.iter_mut().rev() {
                    if let Some(c) = rules.child(k) {
                        if !is_scalar_skip(e) {
                            stack.push((e, c));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Rewrites a string given the member name it is the value of: `f(s, key)`.
pub(crate) type KeyedRewrite<'a, E> = dyn FnMut(&str, Option<&str>) -> Result<Option<String>, E> + 'a;

/// Walks `root` in place, replacing each visited string and key `s` by `f(s, key)` when that
/// returns `Some` (and, with `numbers`, the integers it calls PII by a string), in document
/// order. `key` is the name of the member whose value the string is (or whose array holds it);
/// `None` for member names themselves and strings outside any object. Maps are rebuilt (in
/// order) only when a key changes. Stops at the first error.
pub(crate) fn walk_mut<E>(
    root: &mut Value,
    ctx: Ctx,
    f: &mut KeyedRewrite<'_, E>,
    mut numbers: Option<Numbers<'_, E>>,
) -> Result<(), E> {
    let mut stack: Vec<(&mut Value, Ctx, Option<&str>)> = vec![(root, ctx, None)];
    while let Some((v, ctx, key)) = stack.pop() {
        match v {
            Value::String(s) => {
                if let Some(new) = f(s, key)? {
                    *s = new;
                }
            }
            Value::Number(n) if ctx == Ctx::Number => {
                if let (Some(num), Some(u)) = (numbers.as_mut(), n.as_u64()) {
                    if let Some(new) = (num.f)(u)? {
                        *v = Value::String(new);
                    }
                }
            }
            Value::Array(a) => {
                let child = ctx.array_child();
                stack.extend(a.iter_mut().rev().map(|e| (e, child, key)));
            }
            Value::Object(m) => {
                let rules = ObjRules::new(ctx, m);
                rewrite_keys(m, &mut |k| f(k, None))?;
                for (k, e) in m.iter_mut().rev() {
                    if let Some(c) = rules.child(k) {
                        if !is_scalar_skip(e) {
                            stack.push((e, c, Some(k.as_str())));
                        } else if let (Some(num), Value::Number(n)) = (numbers.as_ref(), &*e) {
                            if n.as_u64().is_some_and(|u| (num.is_pii)(k, u)) {
                                stack.push((e, Ctx::Number, None));
                            }
                        }
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    Ok(())
}

/// Values with nothing to rewrite are not pushed at all.
fn is_scalar_skip(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(_) | Value::Number(_))
}

/// Rewrites the keys of `m` with `f`, rebuilding the map (same order) only if one changes.
fn rewrite_keys<E>(
    m: &mut Map<String, Value>,
    f: &mut dyn FnMut(&str) -> Result<Option<String>, E>,
) -> Result<(), E> {
    let mut changed: Vec<(usize, String)> = Vec::new();
    for (i, k) in m.keys().enumerate() {
        if let Some(new) = f(k)? {
            changed.push((i, new));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    let old = std::mem::take(m);
    let mut changed = changed.into_iter().peekable();
    for (i, (k, v)) in old.into_iter().enumerate() {
        let k = match changed.next_if(|(j, _)| *j == i) {
            Some((_, new)) => new,
            None => k,
        };
        m.insert(k, v);
    }
    Ok(())
}

/// One step of a JSON pointer.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// What [`walk_ref`] hands to its visitor.
pub(crate) enum Visit<'a, 'p> {
    /// A string value at `path`.
    Str(&'a str, &'p [Seg<'a>]),
    /// An object at `path` (visit its keys; their own path is `path` + the key).
    Object(&'a Map<String, Value>, &'p [Seg<'a>]),
}

/// Walks `root` read-only, with the JSON pointer segments of each visited string and object.
pub(crate) fn walk_ref<'a, E>(
    root: &'a Value,
    ctx: Ctx,
    f: &mut dyn FnMut(Visit<'a, '_>) -> Result<(), E>,
) -> Result<(), E> {
    // (value, ctx, depth, segment leading to it); the root has depth 0 and no segment.
    let mut stack: Vec<(&'a Value, Ctx, usize, Option<Seg<'a>>)> = vec![(root, ctx, 0, None)];
    let mut path: Vec<Seg<'a>> = Vec::new();
    while let Some((v, ctx, depth, seg)) = stack.pop() {
        path.truncate(depth.saturating_sub(1));
        if let Some(seg) = seg {
            path.push(seg);
        }
        match v {
            Value::String(s) => f(Visit::Str(s, &path))?,
            Value::Array(a) => {
                let child = ctx.array_child();
                for (i, e) in a.iter().enumerate().rev() {
                    if !is_scalar_skip(e) {
                        stack.push((e, child, depth + 1, Some(Seg::Index(i))));
                    }
                }
            }
            Value::Object(m) => {
                f(Visit::Object(m, &path))?;
                let rules = ObjRules::new(ctx, m);
                for (k, e) in m.iter().rev() {
                    if let Some(c) = rules.child(k) {
                        if !is_scalar_skip(e) {
                            stack.push((e, c, depth + 1, Some(Seg::Key(k))));
                        }
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn base64_shape() {
        for (s, want) in [
            ("", true),
            ("QUJD", true),
            ("QUI=", true),
            ("QQ==", true),
            ("iVBORw0KGgo+/A==", true),
            ("QQ=", false),
            ("Q===", false),
            ("QQ=A", false),
            ("a@b.", false),
            ("QUJD\n", false),
            ("+14155550123", true),
            ("4155550123", false),
        ] {
            assert_eq!(is_base64(&json!(s)), want, "{s:?}");
        }
        assert!(!is_base64(&json!(1)));
    }

    #[test]
    fn visits_strings_in_document_order_with_paths() {
        let v = json!({"a": ["x", {"b/c": "y", "~": "z"}], "d": "w"});
        let mut seen = Vec::new();
        walk_ref(&v, Ctx::Plain, &mut |visit| {
            if let Visit::Str(s, path) = visit {
                seen.push((s.to_string(), format!("{path:?}")));
            }
            Ok::<(), ()>(())
        })
        .unwrap();
        let strs: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(strs, ["x", "y", "z", "w"]);
        assert_eq!(seen[1].1, r#"[Key("a"), Index(1), Key("b/c")]"#);
        assert_eq!(seen[3].1, r#"[Key("d")]"#);
    }

    fn visited(v: &Value, ctx: Ctx) -> Vec<String> {
        let mut seen = Vec::new();
        walk_ref(v, ctx, &mut |visit| {
            if let Visit::Str(s, _) = visit {
                seen.push(s.to_string());
            }
            Ok::<(), ()>(())
        })
        .unwrap();
        seen
    }

    #[test]
    fn blob_rules_only_in_messages() {
        let v = json!({"jsonrpc": "2.0", "id": "i", "result": {"content": [
            {"type": "image", "data": "AAAA", "mimeType": "m1"},
            {"type": "audio", "data": "BBBB"},
            {"type": "image", "data": "not base64!"},
            {"type": "text", "data": "CCCC"},
            {"uri": "u", "blob": "DDDD"},
            {"blob": "EEEE"},
            {"uri": 1, "blob": "FFFF"}]}});
        let msg = visited(&v, Ctx::message(&v));
        assert_eq!(
            msg,
            [
                "image",
                "m1",
                "audio",
                "image",
                "not base64!",
                "text",
                "CCCC",
                "u",
                "EEEE",
                "FFFF"
            ]
        );
        let plain = visited(&v, Ctx::Plain);
        assert_eq!(plain.len(), 15, "{plain:?}");
        assert!(plain.contains(&"AAAA".to_owned()) && plain.contains(&"DDDD".to_owned()));
    }

    #[test]
    fn protocol_members_skipped_only_in_their_place() {
        let v = json!([
            {"jsonrpc": "2.0", "id": "i", "method": "notifications/progress",
             "params": {"progressToken": "p1", "requestId": "r1", "_meta": {"progressToken": "p2", "x": "x1"}}},
            {"jsonrpc": "2.0", "method": "notifications/cancelled",
             "params": {"progressToken": "p3", "requestId": "r2"}},
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"progressToken": "p4", "arguments": {"_meta": {"progressToken": "p5"}, "id": "i2"}}}
        ]);
        assert_eq!(
            visited(&v, Ctx::message(&v)),
            ["r1", "x1", "p3", "p4", "p5", "i2"]
        );
        // A single message (not a batch) gets the same rules.
        assert_eq!(visited(&v[0], Ctx::message(&v[0])), ["r1", "x1"]);
    }

    #[test]
    fn rewrites_keys_keeping_order() {
        let mut v = json!({"k1": 1, "xk2": 2, "k3": 3});
        walk_mut_whole(
            &mut v,
            Ctx::Plain,
            &mut |s| s.strip_prefix('x').map(str::to_owned),
            &mut |_| None,
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["k1", "k2", "k3"]);
    }
}

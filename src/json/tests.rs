#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn out(p: &Parsed<'_>) -> String {
    String::from_utf8(p.to_vec()).unwrap()
}

#[test]
fn reads_what_clients_read() {
    // (input, value as clients read it, bytes written back unchanged)
    let cases: &[(&str, Value, &str)] = &[
        (r#"{"a":1}"#, json!({"a": 1}), r#"{"a":1}"#),
        (" \t\r\n[1, 2 ,3 ] \n", json!([1, 2, 3]), "[1,2,3]"),
        ("\u{feff}{\"a\":\"b\"}", json!({"a": "b"}), r#"{"a":"b"}"#),
        (r#""caf\u00e9 \/ \n""#, json!("café / \n"), r#""caf\u00e9 \/ \n""#),
        (r#""\ud83d\ude00""#, json!("😀"), r#""\ud83d\ude00""#),
        (r#""cut \ud83d""#, json!("cut \u{fffd}"), r#""cut \ud83d""#),
        (
            r#""\ude00 low first""#,
            json!("\u{fffd} low first"),
            r#""\ude00 low first""#,
        ),
        (
            r#"[NaN,Infinity,-Infinity]"#,
            json!([0, f64::MAX, f64::MIN]),
            "[NaN,Infinity,-Infinity]",
        ),
        (
            "[12345678901234567890123,1.0,1e5,-0,1E+2]",
            json!([1.2345678901234568e22, 1.0, 1e5, 0, 100.0]),
            "[12345678901234567890123,1.0,1e5,-0,1E+2]",
        ),
        ("[1e400,-1e400]", json!([f64::MAX, f64::MIN]), "[1e400,-1e400]"),
        (
            "[true,false,null,{},[]]",
            json!([true, false, null, {}, []]),
            "[true,false,null,{},[]]",
        ),
    ];
    for (src, want, written) in cases {
        let p = parse(src.as_bytes()).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(&p.value, want, "{src:?}");
        assert!(p.is_exact(), "{src:?}");
        assert_eq!(out(&p), *written, "{src:?}");
    }
}

#[test]
fn refuses_what_clients_refuse() {
    for (src, kind) in [
        ("", JsonErrorKind::Empty),
        ("  \n", JsonErrorKind::Empty),
        ("{\"a\":1} x", JsonErrorKind::Trailing),
        ("{\"a\":1}{}", JsonErrorKind::Trailing),
        ("\"a\u{1}b\"", JsonErrorKind::ControlChar),
        ("\"a\nb\"", JsonErrorKind::ControlChar),
        (r#""\x""#, JsonErrorKind::BadEscape),
        (r#""\u12g4""#, JsonErrorKind::BadEscape),
        (r#""abc"#, JsonErrorKind::Eof),
        ("[1,]", JsonErrorKind::Expected("a value")),
        ("{\"a\" 1}", JsonErrorKind::Expected(":")),
        ("{1:2}", JsonErrorKind::Expected("a string key")),
        ("[01]", JsonErrorKind::Expected(", or ]")),
        ("[+1]", JsonErrorKind::Expected("a value")),
        ("[.5]", JsonErrorKind::Expected("a value")),
        ("[1.]", JsonErrorKind::Expected("a number")),
        ("[nan]", JsonErrorKind::Expected("a value")),
        ("[tru]", JsonErrorKind::Expected("a value")),
        ("[1", JsonErrorKind::Expected(", or ]")),
    ] {
        let e = parse(src.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{src:?} parsed"));
        assert_eq!(e.kind(), kind, "{src:?}");
    }
    let e = parse(b"{\"a\":\"\xff\"}").unwrap_err();
    assert_eq!((e.kind(), e.offset()), (JsonErrorKind::NotUtf8, 6));
    // Error texts name the problem and where, never the content.
    let e = parse(br#"{"mail":"ana@example.org" x"#).unwrap_err();
    assert_eq!(e.to_string(), "not valid JSON: expected , or } at byte 26");
}

#[test]
fn duplicate_keys_last_wins_and_earlier_members_are_dropped() {
    let p = parse(br#"{"text":"ana@example.org","text":"nothing"}"#).unwrap();
    assert!(!p.is_exact());
    assert_eq!(p.value, json!({"text": "nothing"}));
    assert_eq!(out(&p), r#"{"text":"nothing"}"#);

    // The surviving member moves to the end so values keep document order; numbers and
    // nested members of the dropped one are not reused.
    let p = parse(br#"{"a":{"n":1e5,"x":"\u0041"},"b":7e0,"a":[2.50,"y"],"c":{"d":1,"d":2.0}}"#).unwrap();
    assert_eq!(p.value, json!({"b": 7.0, "a": [2.5, "y"], "c": {"d": 2.0}}));
    assert_eq!(out(&p), r#"{"b":7e0,"a":[2.50,"y"],"c":{"d":2.0}}"#);
    // Escaped and plain spellings of one key are the same key.
    let p = parse(br#"{"k":1,"\u006b":2}"#).unwrap();
    assert_eq!(out(&p), r#"{"\u006b":2}"#);
}

#[test]
fn depth_is_bounded_without_recursion() {
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(parse(nest(MAX_DEPTH).as_bytes()).is_ok());
    let Err(e) = parse(nest(MAX_DEPTH + 1).as_bytes()) else {
        panic!("one level too deep was accepted")
    };
    assert_eq!(e.kind(), JsonErrorKind::TooDeep);
    assert!(e.is_limit());
    // Far deeper input fails just as cleanly (no stack overflow).
    let deep = "{\"a\":".repeat(1_000_000);
    assert_eq!(parse(deep.as_bytes()).unwrap_err().kind(), JsonErrorKind::TooDeep);
}

#[test]
fn rewritten_strings_are_freshly_encoded_and_the_rest_reused() {
    let src = br#"{"id":12345678901234567890123,"t":"mail ana@example.org \u00e9","k":"\u0041","big":1.000}"#;
    let mut p = parse(src).unwrap();
    p.value["t"] = json!("mail [EMAIL_1] é");
    let text = out(&p);
    assert_eq!(
        text,
        r#"{"id":12345678901234567890123,"t":"mail [EMAIL_1] é","k":"\u0041","big":1.000}"#
    );
    // Keys rewritten too; a value changed in type.
    let mut p = parse(br#"{"ana@example.org":{"n":5,"s":"x"}}"#).unwrap();
    let inner = p.value["ana@example.org"].take();
    let mut m = serde_json::Map::new();
    m.insert("[EMAIL_1]".into(), inner);
    p.value = Value::Object(m);
    p.value["[EMAIL_1]"]["n"] = json!("five");
    assert_eq!(out(&p), r#"{"[EMAIL_1]":{"n":"five","s":"x"}}"#);
}

#[test]
fn a_reshaped_value_is_written_without_its_source() {
    // Elements removed: positional tokens would lend NaN's token to the 0 and round the
    // integer; a value with no source is written as it is.
    let mut p = parse(br#"[{"x":NaN},{"id":0,"result":0,"n":12345678901234567890123}]"#).unwrap();
    let Value::Array(items) = &mut p.value else {
        unreachable!()
    };
    items.remove(0);
    let fresh = Parsed::from(p.value.clone()).to_vec();
    assert_eq!(
        String::from_utf8(fresh).unwrap(),
        r#"[{"id":0,"result":0,"n":1.2345678901234568e+22}]"#
    );
    // Split into messages first, each element keeps its own tokens.
    let p = parse(br#"[{"x":NaN},{"id":0,"result":0,"n":12345678901234567890123}]"#).unwrap();
    let kept = &p.into_messages()[1];
    assert_eq!(out(kept), r#"{"id":0,"result":0,"n":12345678901234567890123}"#);
}

#[test]
fn batch_elements_keep_their_own_tokens() {
    let p = parse(br#"[{"id":1.0,"a":"\u0041","a":"b"},7E0,{"n":12345678901234567890123}]"#).unwrap();
    let items = p.into_messages();
    let out: Vec<String> = items.iter().map(out).collect();
    assert_eq!(
        out,
        [r#"{"id":1.0,"a":"b"}"#, "7E0", r#"{"n":12345678901234567890123}"#]
    );
    assert_eq!(parse(b"{}").unwrap().into_messages().len(), 1);
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::String),
        "[ -~\\x00-\\x1f\"\\\\\u{e9}\u{1f600}]{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec(("[a-z\"\\\\\\n\u{e9}]{0,6}", inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A JSON number token of any size and shape.
fn arb_number_text() -> impl Strategy<Value = String> {
    "-?(0|[1-9][0-9]{0,40})(\\.[0-9]{1,30})?([eE][+-]?[0-9]{1,4})?"
}

proptest! {
    /// Differential: on standard JSON (compact or pretty), the value equals serde_json's and
    /// the unchanged output is serde_json's compact text.
    #[test]
    fn agrees_with_serde_json(v in arb_value(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_vec_pretty(&v).unwrap() } else { serde_json::to_vec(&v).unwrap() };
        let p = parse(&text).unwrap();
        let reference: Value = serde_json::from_slice(&text).unwrap();
        prop_assert_eq!(&p.value, &reference);
        prop_assert!(p.is_exact());
        prop_assert_eq!(p.to_vec(), serde_json::to_vec(&v).unwrap());
    }

    /// Number tokens come back byte for byte, wherever they sit.
    #[test]
    fn numbers_verbatim(nums in prop::collection::vec(arb_number_text(), 1..6), s in "[a-z@.]{0,12}") {
        let src = format!("{{\"s\":{s:?},\"n\":[{}],\"m\":{{\"x\":{}}}}}", nums.join(", "), nums[0]);
        let mut p = parse(src.as_bytes()).unwrap();
        let want = format!("{{\"s\":{s:?},\"n\":[{}],\"m\":{{\"x\":{}}}}}", nums.join(","), nums[0]);
        prop_assert_eq!(String::from_utf8(p.to_vec()).unwrap(), want.clone());
        // Rewriting the string keeps every number too.
        p.value["s"] = json!("[EMAIL_1]");
        let want = want.replacen(&format!(":{s:?}"), ":\"[EMAIL_1]\"", 1);
        prop_assert_eq!(String::from_utf8(p.to_vec()).unwrap(), want);
    }

    /// Any mutation of strings: the output decodes (by serde_json) to the mutated value.
    #[test]
    fn output_decodes_to_the_value(v in arb_value(), repl in any::<String>(), nth in 0usize..16) {
        let text = serde_json::to_vec(&v).unwrap();
        let mut p = parse(&text).unwrap();
        let mut i = 0;
        mutate_nth_string(&mut p.value, nth, &repl, &mut i);
        let back: Value = serde_json::from_slice(&p.to_vec()).unwrap();
        prop_assert_eq!(back, p.value.clone());
    }

    /// Arbitrary bytes: never panics; accepted input round-trips through serde_json when it
    /// holds no extension (NaN, lone surrogates) serde_json refuses.
    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(p) = parse(&b) {
            let _ = p.to_vec();
        }
    }
}

fn mutate_nth_string(v: &mut Value, nth: usize, repl: &str, i: &mut usize) {
    match v {
        Value::String(s) => {
            if *i == nth {
                *s = repl.to_owned();
            }
            *i += 1;
        }
        Value::Array(a) => a.iter_mut().for_each(|e| mutate_nth_string(e, nth, repl, i)),
        Value::Object(m) => m.values_mut().for_each(|e| mutate_nth_string(e, nth, repl, i)),
        _ => {}
    }
}

#[test]
fn subtree_keeps_its_own_tokens() {
    let src =
        br#"{"a":1.50,"result":{"tools":[{"n":1e2,"s":"caf\u00e9"},{"n":12345678901234567890123,"k":"x"}]}}"#;
    let p = parse(src).unwrap();
    let t0 = p
        .subtree(&[Step::Key("result"), Step::Key("tools"), Step::Index(0)])
        .unwrap();
    assert_eq!(t0.to_vec(), br#"{"n":1e2,"s":"caf\u00e9"}"#);
    let mut t1 = p
        .subtree(&[Step::Key("result"), Step::Key("tools"), Step::Index(1)])
        .unwrap();
    t1.value["k"] = "y".into();
    assert_eq!(t1.to_vec(), br#"{"n":12345678901234567890123,"k":"y"}"#);
    // A member appended at the end of a subtree is freshly encoded; nothing before it moves.
    t1.value["extra"] = serde_json::json!({"z": 2});
    assert_eq!(
        t1.to_vec(),
        br#"{"n":12345678901234567890123,"k":"y","extra":{"z":2}}"#
    );
    assert!(p.subtree(&[Step::Key("result"), Step::Key("nope")]).is_none());
    assert!(p.subtree(&[Step::Key("a"), Step::Index(0)]).is_none());
    // Duplicate keys: the dropped member's tokens are skipped.
    let d = parse(br#"{"x":{"v":1},"x":{"v":22},"y":"s"}"#).unwrap();
    assert_eq!(d.subtree(&[Step::Key("y")]).unwrap().to_vec(), br#""s""#);
    assert_eq!(d.subtree(&[Step::Key("x")]).unwrap().to_vec(), br#"{"v":22}"#);
}

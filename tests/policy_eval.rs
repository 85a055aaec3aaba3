//! Flow policy: loading and validation, canonical form and hash, evaluation (table tests over
//! every branch, a regression group) and properties (determinism, monotonicity).
#![allow(clippy::unwrap_used)]

use std::str::FromStr;
use std::sync::Arc;

use mcp_pii_gateway::detect::Kind;
use mcp_pii_gateway::policy::{CrossServer, FlowItem, FlowRequest, Policy, Reveal, UntrackedPii};
use proptest::prelude::*;

const BASE: &str = r#"
cross_server = "deny"
untracked_pii = "audit"

[[flows]]
id = "crm-to-mail"
from = "crm"
to = "mail"
kinds = ["EMAIL"]

[[flows]]
id = "hr-to-mail-send"
from = "hr"
to = "mail/send_email"

[[flows]]
id = "crm-to-mail-any"
from = "crm"
to = "mail"
"#;

fn kind(k: &str) -> Kind {
    Kind::new(k).unwrap()
}

struct Case {
    name: &'static str,
    policy: &'static str,
    /// (placeholder kind, origins)
    items: &'static [(&'static str, &'static [&'static str])],
    untracked: &'static [&'static str],
    target: &'static str,
    tool: Option<&'static str>,
    allowed: bool,
    rule: &'static str,
}

const ALLOW_ALL: &str = "cross_server = \"allow\"\nuntracked_pii = \"allow\"";
const DENY_UNTRACKED: &str = "untracked_pii = \"deny\"";

const CASES: &[Case] = &[
    Case {
        name: "no placeholders, no untracked PII",
        policy: BASE,
        items: &[],
        untracked: &[],
        target: "search",
        tool: Some("query"),
        allowed: true,
        rule: "no-pii",
    },
    Case {
        name: "same origin",
        policy: BASE,
        items: &[("EMAIL", &["crm"])],
        untracked: &[],
        target: "crm",
        tool: Some("update"),
        allowed: true,
        rule: "same-origin",
    },
    Case {
        name: "same origin among several origins",
        policy: BASE,
        items: &[("PHONE", &["hr", "search"])],
        untracked: &[],
        target: "search",
        tool: None,
        allowed: true,
        rule: "same-origin",
    },
    Case {
        name: "flow by server and kind",
        policy: BASE,
        items: &[("EMAIL", &["crm"])],
        untracked: &[],
        target: "mail",
        tool: Some("list"),
        allowed: true,
        rule: "crm-to-mail",
    },
    Case {
        name: "first matching flow in file order names the decision",
        policy: BASE,
        items: &[("EMAIL", &["crm"])],
        untracked: &[],
        target: "mail",
        tool: Some("send_email"),
        allowed: true,
        rule: "crm-to-mail",
    },
    Case {
        name: "kind not in first flow falls to a later flow",
        policy: BASE,
        items: &[("PHONE", &["crm"])],
        untracked: &[],
        target: "mail",
        tool: None,
        allowed: true,
        rule: "crm-to-mail-any",
    },
    Case {
        name: "tool-limited flow matches its tool",
        policy: BASE,
        items: &[("PHONE", &["hr"])],
        untracked: &[],
        target: "mail",
        tool: Some("send_email"),
        allowed: true,
        rule: "hr-to-mail-send",
    },
    Case {
        name: "tool-limited flow does not match another tool",
        policy: BASE,
        items: &[("PHONE", &["hr"])],
        untracked: &[],
        target: "mail",
        tool: Some("delete"),
        allowed: false,
        rule: "default:cross_server=deny",
    },
    Case {
        name: "tool-limited flow does not match a request without a tool",
        policy: BASE,
        items: &[("EMAIL", &["hr"])],
        untracked: &[],
        target: "mail",
        tool: None,
        allowed: false,
        rule: "default:cross_server=deny",
    },
    Case {
        name: "flow from one of several origins",
        policy: BASE,
        items: &[("EMAIL", &["search", "crm"])],
        untracked: &[],
        target: "mail",
        tool: None,
        allowed: true,
        rule: "crm-to-mail",
    },
    Case {
        name: "no flow to this target: default deny",
        policy: BASE,
        items: &[("EMAIL", &["crm"])],
        untracked: &[],
        target: "search",
        tool: Some("query"),
        allowed: false,
        rule: "default:cross_server=deny",
    },
    Case {
        name: "default allow",
        policy: ALLOW_ALL,
        items: &[("EMAIL", &["crm"])],
        untracked: &[],
        target: "search",
        tool: None,
        allowed: true,
        rule: "default:cross_server=allow",
    },
    Case {
        name: "one denied placeholder denies the whole request",
        policy: BASE,
        items: &[("EMAIL", &["crm"]), ("PHONE", &["search"])],
        untracked: &[],
        target: "mail",
        tool: Some("send_email"),
        allowed: false,
        rule: "default:cross_server=deny",
    },
    Case {
        name: "allowed by several rules lists each once, in order",
        policy: BASE,
        items: &[("EMAIL", &["crm"]), ("PHONE", &["mail"]), ("EMAIL", &["crm"])],
        untracked: &[],
        target: "mail",
        tool: None,
        allowed: true,
        rule: "crm-to-mail,same-origin",
    },
    Case {
        name: "untracked PII audited",
        policy: BASE,
        items: &[],
        untracked: &["EMAIL"],
        target: "search",
        tool: None,
        allowed: true,
        rule: "untracked_pii=audit",
    },
    Case {
        name: "untracked PII allowed",
        policy: ALLOW_ALL,
        items: &[],
        untracked: &["PHONE"],
        target: "search",
        tool: None,
        allowed: true,
        rule: "untracked_pii=allow",
    },
    Case {
        name: "untracked PII denied",
        policy: DENY_UNTRACKED,
        items: &[("EMAIL", &["search"])],
        untracked: &["PHONE", "EMAIL"],
        target: "search",
        tool: None,
        allowed: false,
        rule: "untracked_pii=deny",
    },
    Case {
        name: "placeholder denial reported before untracked denial",
        policy: DENY_UNTRACKED,
        items: &[("EMAIL", &["crm"])],
        untracked: &["PHONE"],
        target: "search",
        tool: None,
        allowed: false,
        rule: "default:cross_server=deny",
    },
    Case {
        name: "empty policy denies cross-server (fail closed)",
        policy: "",
        items: &[("EMAIL", &["crm"])],
        untracked: &[],
        target: "mail",
        tool: None,
        allowed: false,
        rule: "default:cross_server=deny",
    },
    // Regression group: edge cases that once looked plausible to get wrong.
    Case {
        name: "regression: placeholder with no origins is never same-origin",
        policy: BASE,
        items: &[("EMAIL", &[])],
        untracked: &[],
        target: "mail",
        tool: None,
        allowed: false,
        rule: "default:cross_server=deny",
    },
    Case {
        name: "regression: server names compare exactly (no prefix match)",
        policy: BASE,
        items: &[("EMAIL", &["crm"])],
        untracked: &[],
        target: "mail2",
        tool: None,
        allowed: false,
        rule: "default:cross_server=deny",
    },
    Case {
        name: "regression: origin crm2 does not match flow from crm",
        policy: BASE,
        items: &[("EMAIL", &["crm2"])],
        untracked: &[],
        target: "mail",
        tool: None,
        allowed: false,
        rule: "default:cross_server=deny",
    },
    Case {
        name: "regression: custom kinds follow kind lists",
        policy: BASE,
        items: &[("CUSTOMER_ID", &["hr"])],
        untracked: &[],
        target: "mail",
        tool: Some("send_email"),
        allowed: true,
        rule: "hr-to-mail-send",
    },
];

#[test]
fn evaluation_table() {
    for c in CASES {
        let policy = Policy::from_str(c.policy).unwrap();
        let items: Vec<FlowItem> = c
            .items
            .iter()
            .enumerate()
            .map(|(i, (k, o))| FlowItem::new(&format!("[{k}_{}]", i + 1), kind(k), o.iter()))
            .collect();
        let untracked: Vec<Kind> = c.untracked.iter().map(|k| kind(k)).collect();
        let req = FlowRequest::new(c.target, c.tool, &items).with_untracked(&untracked);
        let d = policy.evaluate(&req);
        assert_eq!(d.allowed, c.allowed, "{}: allowed", c.name);
        assert_eq!(d.rule_id, c.rule, "{}: rule", c.name);
        assert_eq!(d.denial.is_some(), !c.allowed, "{}: denial", c.name);
        assert_eq!(d.items.len(), items.len(), "{}: items", c.name);
        assert_eq!(d.policy_hash, policy.hash(), "{}: hash", c.name);
        assert_eq!(d.check().is_ok(), c.allowed, "{}: check", c.name);
        assert_eq!(
            d.untracked_audit,
            !c.untracked.is_empty() && policy.untracked_pii() == UntrackedPii::Audit && c.allowed,
            "{}: untracked_audit",
            c.name
        );
    }
}

#[test]
fn denial_names_placeholder_kind_origin_target_rule() {
    let policy = Policy::from_str(BASE).unwrap();
    let items = [
        FlowItem::new("[EMAIL_1]", Kind::email(), ["search"]),
        FlowItem::new("[PHONE_3]", Kind::phone(), ["crm", "hr"]),
    ];
    let d = policy.evaluate(&FlowRequest::new("search", Some("query"), &items));
    let err = d.check().unwrap_err();
    assert!(err.is_policy_denied());
    assert_eq!(err.jsonrpc_code(), -32001);
    let msg = err.to_string();
    for needle in [
        "[PHONE_3]",
        "PHONE",
        "crm, hr",
        "search/query",
        "default:cross_server=deny",
    ] {
        assert!(msg.contains(needle), "{msg} lacks {needle}");
    }
    assert!(
        !msg.contains("[EMAIL_1]"),
        "only the denied placeholder is named: {msg}"
    );
    let untracked = [Kind::email()];
    let strict = Policy::from_str(DENY_UNTRACKED).unwrap();
    let d = strict.evaluate(&FlowRequest::new("search", None, &[]).with_untracked(&untracked));
    let msg = d.check().unwrap_err().to_string();
    assert!(
        msg.contains("EMAIL") && msg.contains("untracked_pii=deny") && msg.contains("search"),
        "{msg}"
    );
}

#[test]
fn validation_lists_every_problem() {
    let bad = r#"
cross_server = "maybe"
untracked_pii = 3
colour = "blue"

[[flows]]
id = "same-origin"
from = "crm"
to = "mail"

[[flows]]
id = "dup"
from = "c r m"
to = "mail/"
kinds = ["email", 4]

[[flows]]
id = "dup"
from = "crm"
to = "mail"
kinds = []
extra = 1

[[flows]]
to = "x/y/z"
"#;
    let err = Policy::from_str(bad).unwrap_err();
    assert!(err.is_config());
    let p = err.config_problems().join("\n");
    for needle in [
        "policy.cross_server",
        "policy.untracked_pii",
        "unknown key `colour`",
        "flows[0].id: `same-origin` is a built-in",
        "flows[1].from",
        "flows[1].to",
        "flows[1].kinds[0]",
        "flows[1].kinds[1]",
        "flows[2].kinds: empty",
        "flows[2]: unknown key `extra`",
        "flows[3].id: missing",
        "flows[3].from: missing",
        "flows[3].to",
    ] {
        assert!(p.contains(needle), "missing problem {needle:?} in:\n{p}");
    }
    let dup = "[[flows]]\nid='a'\nfrom='x'\nto='y'\n[[flows]]\nid='a'\nfrom='x'\nto='z'";
    let p = Policy::from_str(dup).unwrap_err().config_problems().join("\n");
    assert!(p.contains("duplicate id `a`"), "{p}");
    assert!(Policy::from_str("flows = 3").unwrap_err().is_config());
    assert!(Policy::from_str("not toml [").unwrap_err().is_config());
}

#[test]
fn canonical_form_and_hash() {
    let a = Policy::from_str(BASE).unwrap();
    // Same policy, different spelling: key order, kind order and duplicates, comments.
    let b = Policy::from_str(
        r#"
# comment
untracked_pii = "audit"
[[flows]]
kinds = ["EMAIL", "EMAIL"]
to = "mail"
from = "crm"
id = "crm-to-mail"
[[flows]]
id = "hr-to-mail-send"
from = "hr"
to = "mail/send_email"
[[flows]]
id = "crm-to-mail-any"
from = "crm"
to = "mail"
"#,
    )
    .unwrap();
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.canonical(), b.canonical());
    assert_eq!(a.hash().len(), 64);
    let round = Policy::from_canonical(a.canonical()).unwrap();
    assert_eq!(round, a);
    let via_toml = Policy::from_str(&a.to_toml()).unwrap();
    assert_eq!(via_toml.hash(), a.hash());
    // Any change changes the hash, flow order included (it decides rule ids).
    let c = Policy::from_str(&BASE.replace("cross_server = \"deny\"", "cross_server = \"allow\"")).unwrap();
    assert_ne!(c.hash(), a.hash());
    let swapped = a.with_flow("z", "crm", "mail", None).unwrap();
    assert_ne!(swapped.hash(), a.hash());
    assert_eq!(swapped.flows().len(), 4);
    // Non-canonical or tampered canonical text is refused.
    assert!(Policy::from_canonical(&a.canonical().replace("\"deny\"", "\"maybe\"")).is_err());
    assert!(Policy::from_canonical(&format!(" {}", a.canonical())).is_err());
    assert_eq!(Policy::default().cross_server(), CrossServer::Deny);
    assert_eq!(Policy::default().untracked_pii(), UntrackedPii::Audit);
}

#[test]
fn loading_from_files() {
    let dir = std::env::temp_dir().join(format!("policy-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = Policy::from_str(BASE).unwrap();
    // A gateway.toml with a [policy] table.
    let gw = dir.join("gateway.toml");
    let table = BASE.replace("[[flows]]", "[[policy.flows]]");
    std::fs::write(
        &gw,
        format!("listen = \"127.0.0.1:0\"\n[policy]\n{table}\n[audit]\npath = \"a.jsonl\"\n"),
    )
    .unwrap();
    assert_eq!(Policy::from_file(&gw).unwrap().hash(), base.hash());
    // A gateway.toml naming a separate bare policy file.
    std::fs::write(dir.join("policy.toml"), BASE).unwrap();
    let gw2 = dir.join("gateway2.toml");
    std::fs::write(&gw2, "policy_file = \"policy.toml\"\n").unwrap();
    assert_eq!(Policy::from_file(&gw2).unwrap().hash(), base.hash());
    // A bare policy file.
    assert_eq!(
        Policy::from_file(&dir.join("policy.toml")).unwrap().hash(),
        base.hash()
    );
    // No policy at all: the default.
    let gw3 = dir.join("gateway3.toml");
    std::fs::write(&gw3, "listen = \"127.0.0.1:0\"\n").unwrap();
    assert_eq!(Policy::from_file(&gw3).unwrap(), Policy::default());
    // Both forms at once, a missing file, and bad contents are config errors.
    let gw4 = dir.join("gateway4.toml");
    std::fs::write(
        &gw4,
        "policy_file = \"policy.toml\"\n[policy]\ncross_server = \"allow\"\n",
    )
    .unwrap();
    assert!(Policy::from_file(&gw4).unwrap_err().is_config());
    assert!(Policy::from_file(&dir.join("missing.toml"))
        .unwrap_err()
        .is_config());
    let gw5 = dir.join("gateway5.toml");
    std::fs::write(&gw5, "[policy]\ncross_server = \"nope\"\n").unwrap();
    assert!(Policy::from_file(&gw5)
        .unwrap_err()
        .to_string()
        .contains("policy.cross_server"));
    // from_toml_value over an embedded table.
    let root: toml::Table = toml::from_str(&std::fs::read_to_string(&gw).unwrap()).unwrap();
    assert_eq!(
        Policy::from_toml_value(&root["policy"]).unwrap().hash(),
        base.hash()
    );
    assert_eq!(Policy::from_config(&root, &dir).unwrap().hash(), base.hash());
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- properties ----

const SERVERS: &[&str] = &["crm", "hr", "mail", "search", "files"];
const KINDS: &[&str] = &["EMAIL", "PHONE", "IBAN"];
const TOOLS: &[&str] = &["send_email", "query", "update"];

/// (from, to, tool, kinds) as indexes into SERVERS, SERVERS, TOOLS, KINDS.
type FlowSpec = (usize, usize, Option<usize>, Option<Vec<usize>>);

fn arb_flow() -> impl Strategy<Value = FlowSpec> {
    (
        0..SERVERS.len(),
        0..SERVERS.len(),
        proptest::option::of(0..TOOLS.len()),
        proptest::option::of(proptest::collection::vec(0..KINDS.len(), 1..3)),
    )
}

fn build_policy(cross_allow: bool, untracked: u8, flows: &[FlowSpec]) -> Policy {
    let mut p = Policy::from_str(&format!(
        "cross_server = \"{}\"\nuntracked_pii = \"{}\"",
        if cross_allow { "allow" } else { "deny" },
        ["allow", "audit", "deny"][untracked as usize % 3]
    ))
    .unwrap();
    for (i, (from, to, tool, kinds)) in flows.iter().enumerate() {
        let to = match tool {
            Some(t) => format!("{}/{}", SERVERS[*to], TOOLS[*t]),
            None => SERVERS[*to].to_owned(),
        };
        let kinds: Option<Vec<&str>> = kinds.as_ref().map(|ks| ks.iter().map(|k| KINDS[*k]).collect());
        p = p
            .with_flow(&format!("f{i}"), SERVERS[*from], &to, kinds.as_deref())
            .unwrap();
    }
    p
}

fn arb_items() -> impl Strategy<Value = Vec<(usize, Vec<usize>)>> {
    proptest::collection::vec(
        (0..KINDS.len(), proptest::collection::vec(0..SERVERS.len(), 0..3)),
        0..4,
    )
}

fn items_of(spec: &[(usize, Vec<usize>)]) -> Vec<FlowItem> {
    spec.iter()
        .enumerate()
        .map(|(i, (k, os))| FlowItem {
            placeholder: format!("[{}_{}]", KINDS[*k], i + 1),
            kind: kind(KINDS[*k]),
            origins: os.iter().map(|o| Arc::from(SERVERS[*o])).collect(),
        })
        .collect()
}

proptest! {
    #[test]
    fn evaluation_is_deterministic(
        cross in any::<bool>(), untracked in 0u8..3,
        flows in proptest::collection::vec(arb_flow(), 0..6),
        items in arb_items(), target in 0..SERVERS.len(), tool in proptest::option::of(0..TOOLS.len()),
        untracked_kinds in proptest::collection::vec(0..KINDS.len(), 0..2),
    ) {
        let p = build_policy(cross, untracked, &flows);
        let items = items_of(&items);
        let uk: Vec<Kind> = untracked_kinds.iter().map(|k| kind(KINDS[*k])).collect();
        let req = FlowRequest::new(SERVERS[target], tool.map(|t| TOOLS[t]), &items).with_untracked(&uk);
        let a = p.evaluate(&req);
        let again = Policy::from_canonical(p.canonical()).unwrap();
        prop_assert_eq!(&a, &p.evaluate(&req));
        prop_assert_eq!(&a, &again.evaluate(&req));
        prop_assert_eq!(&a, &p.clone().evaluate(&req));
    }

    #[test]
    fn adding_a_flow_never_turns_allow_into_deny(
        cross in any::<bool>(), untracked in 0u8..3,
        flows in proptest::collection::vec(arb_flow(), 0..5),
        extra in arb_flow(),
        items in arb_items(), target in 0..SERVERS.len(), tool in proptest::option::of(0..TOOLS.len()),
        untracked_kinds in proptest::collection::vec(0..KINDS.len(), 0..2),
    ) {
        let before = build_policy(cross, untracked, &flows);
        let mut more = flows.clone();
        more.push(extra);
        let after = build_policy(cross, untracked, &more);
        let items = items_of(&items);
        let uk: Vec<Kind> = untracked_kinds.iter().map(|k| kind(KINDS[*k])).collect();
        let req = FlowRequest::new(SERVERS[target], tool.map(|t| TOOLS[t]), &items).with_untracked(&uk);
        let b = before.evaluate(&req);
        let a = after.evaluate(&req);
        if b.allowed {
            prop_assert!(a.allowed);
        }
        for (x, y) in b.items.iter().zip(&a.items) {
            if x.allowed {
                prop_assert!(y.allowed);
                // An appended flow never steals a decision from an earlier rule.
                prop_assert!(x.rule_id == y.rule_id || x.rule_id.starts_with("default:"));
            }
        }
    }
}

#[test]
fn reveal_is_part_of_the_policy_and_absent_from_policies_without_it() {
    let plain = Policy::from_str("cross_server = \"deny\"").unwrap();
    assert!(!plain.canonical().contains("reveal"), "old hashes stay valid");
    let p = Policy::from_str("reveal = [\"same_person\", \"email.domain\", \"email.domain\"]").unwrap();
    assert_eq!(p.reveal(), [Reveal::EmailDomain, Reveal::SamePerson]);
    assert_ne!(p.hash(), plain.hash());
    let round = Policy::from_canonical(p.canonical()).unwrap();
    assert_eq!(round.reveal(), p.reveal());
    assert_eq!(Policy::from_str(&p.to_toml()).unwrap().hash(), p.hash());
    let e = Policy::from_str("reveal = [\"email.local_part\"]")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("policy.reveal[0]") && e.contains("email.domain"),
        "{e}"
    );
}

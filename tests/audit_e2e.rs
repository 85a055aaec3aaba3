//! An audited run end to end: the log verifies, holds no PII, replays exactly under its own
//! policy, lists exactly the expected changes under a stricter one, and search finds exactly one
//! value's records without showing anyone else's.
#![allow(clippy::unwrap_used)]

mod audit_support;

use std::collections::BTreeSet;

use audit_support::{run, Run, KEY_HEX, STRICT};
use mcp_pii_gateway::audit::{replay, search, verify, Fingerprinter, Record, RecordType, Verdict};
use mcp_pii_gateway::detect::Detector;
use mcp_pii_gateway::policy::Policy;

fn the_run(name: &str) -> Run {
    let dir = std::env::temp_dir().join(format!("audit-e2e-{name}-{}", std::process::id()));
    let r = run(&dir, 80, 16 * 1024);
    assert!(
        r.files.len() >= 2,
        "the run should rotate at least once: {:?}",
        r.files
    );
    r
}

fn all_text(r: &Run) -> String {
    r.files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

#[test]
fn the_log_verifies_and_holds_no_pii() {
    let r = the_run("nopii");
    let v = verify(&r.files).unwrap();
    assert!(v.is_intact(), "{v}");
    assert_eq!(v.records, r.records);
    let text = all_text(&r);
    // No value, in any form the detector knows, and not verbatim either.
    let detector = Detector::builtin();
    for (i, line) in text.lines().enumerate() {
        let spans = detector.find(line);
        assert!(spans.is_empty(), "line {} holds PII spans {spans:?}", i + 1);
    }
    for p in &r.people {
        assert!(!text.contains(&p.email), "an email leaked");
        assert!(!text.contains(&p.phone), "a phone leaked");
        assert!(
            !text.contains(&p.phone.replace([' ', '-'], "")),
            "a phone leaked (digits)"
        );
        let local = p.email.split('@').next().unwrap();
        assert!(!text.contains(local), "an email's local part leaked");
    }
    // Every placeholder entry carries a fingerprint; scopes are fingerprinted, not named.
    for line in text.lines() {
        let rec: Record = serde_json::from_str(line).unwrap();
        for p in rec.minted.iter().chain(&rec.restored) {
            assert_eq!(p.fingerprint.as_ref().map(String::len), Some(64));
        }
        if let Some(s) = &rec.scope {
            assert_eq!(s.len(), 64);
            assert!(!s.contains("run-1") && !s.contains("run-2"));
        }
    }
}

#[test]
fn replay_under_the_recorded_policy_reproduces_every_decision() {
    let r = the_run("replay-own");
    let report = replay(&r.files, None).unwrap();
    assert_eq!(report.decisions, r.decisions.len() as u64);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.reproduced, report.decisions);
    // The run exercised allows by same-origin and by flow, denials, and untracked PII.
    let rules: BTreeSet<&str> = r
        .decisions
        .iter()
        .flat_map(|d| d.items.iter().map(|i| i.2.as_str()))
        .collect();
    for rule in ["same-origin", "crm-to-mail", "default:cross_server=deny"] {
        assert!(rules.contains(rule), "the run never used {rule}: {rules:?}");
    }
    assert!(r.decisions.iter().any(|d| !d.allowed) && r.decisions.iter().any(|d| d.allowed && d.untracked));
    // Replaying under the same policy given explicitly is the same.
    let same = replay(&r.files, Some(&r.policy)).unwrap();
    assert!(same.is_clean(), "{same}");
}

#[test]
fn replay_under_a_stricter_policy_lists_exactly_the_expected_changes() {
    let r = the_run("replay-strict");
    let strict = STRICT.parse::<Policy>().unwrap();
    let report = replay(&r.files, Some(&strict)).unwrap();
    assert!(report.unreplayable.is_empty(), "{report}");
    // Independent oracle: a decision changes when a placeholder relied on the removed flow, or
    // when it let untracked PII through (now denied).
    let item_ok = |kind: &str, origins: &[String], target: &str, tool: Option<&str>| {
        let _ = kind;
        origins.iter().any(|o| o == target)
            || (origins.iter().any(|o| o == "hr") && target == "mail" && tool == Some("send_email"))
    };
    let mut expected = Vec::new();
    for d in &r.decisions {
        let changes = d.items.iter().any(|i| i.2 == "crm-to-mail") || (d.untracked && d.allowed);
        if changes {
            let now_allowed = !d.untracked
                && d.items
                    .iter()
                    .all(|(k, o, _)| item_ok(k, o, &d.target, d.tool.as_deref()));
            expected.push((d.seq, d.allowed, now_allowed));
        }
    }
    let got: Vec<(u64, bool, bool)> = report
        .differences
        .iter()
        .map(|d| {
            (
                d.seq,
                d.old_decision == Verdict::Allow,
                d.new_decision == Verdict::Allow,
            )
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected, "{report}");
    assert_eq!(
        report.reproduced + report.differences.len() as u64,
        report.decisions
    );
    // Each difference names kinds, origins, target and both rules.
    for d in &report.differences {
        let ev = r.decisions.iter().find(|e| e.seq == d.seq).unwrap();
        assert_eq!(d.server, ev.target);
        assert_eq!(d.tool, ev.tool);
        assert!(
            !d.old_rule.is_empty() && !d.new_rule.is_empty() && d.old_rule != d.new_rule
                || !d.items.is_empty()
        );
        for c in &d.items {
            if c.old_rule.as_deref() == Some("crm-to-mail") {
                assert_ne!(c.new_rule, "crm-to-mail");
            }
        }
    }
}

#[test]
fn search_finds_exactly_one_values_records_and_shows_no_other() {
    let r = the_run("search");
    let fp = Fingerprinter::from_key_text(KEY_HEX).unwrap();
    let mut searched = 0;
    for p in r.people.iter().take(6) {
        for value in [&p.email, &p.phone] {
            let report = search(&r.files, value, &fp).unwrap();
            assert_eq!(report.key_matches_log, Some(true));
            let got: BTreeSet<u64> = report.hits.iter().map(|h| h.seq).collect();
            let want = r.involving.get(value).cloned().unwrap_or_default();
            assert_eq!(got, want, "records involving one value");
            searched += usize::from(!want.is_empty());
            let needle = fp.fingerprint(value);
            let json = serde_json::to_string(&report).unwrap();
            for h in &report.hits {
                assert!(!h.minted.is_empty() || !h.restored.is_empty());
                for e in h.minted.iter().chain(&h.restored) {
                    assert_eq!(e.fingerprint.as_deref(), Some(needle.as_str()));
                }
            }
            // No other value's fingerprint, and no scope fingerprint, in the output.
            for other in r.people.iter().flat_map(|q| [&q.email, &q.phone]) {
                if other != value {
                    assert!(!json.contains(&fp.fingerprint(other)));
                }
            }
            assert!(!json.contains("\"scope\""));
            assert!(
                !report.to_string().contains(&needle[..16]),
                "human output shows no fingerprints"
            );
        }
    }
    assert!(searched >= 4, "the run should involve most searched values");
    // A value never seen, and a wrong key, find nothing (the wrong key is reported).
    assert!(search(&r.files, "nobody@example.com", &fp)
        .unwrap()
        .hits
        .is_empty());
    let wrong = Fingerprinter::from_key_text("another key of enough length").unwrap();
    let rep = search(&r.files, &r.people[0].email, &wrong).unwrap();
    assert!(rep.hits.is_empty());
    assert_eq!(rep.key_matches_log, Some(false));
}

#[test]
fn the_policy_record_rebuilds_the_policy() {
    let r = the_run("policy-record");
    let first = std::fs::read_to_string(&r.files[0]).unwrap();
    let rec: Record = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(rec.record_type, RecordType::Policy);
    assert_eq!(rec.policy_hash.as_deref(), Some(r.policy.hash()));
    assert_eq!(
        Policy::from_canonical(rec.policy.as_deref().unwrap()).unwrap(),
        r.policy
    );
}

//! Precision and recall of the built-in detector on the generated, labelled corpus
//! `tests/data/corpus.jsonl` (generator: `tests/data/gen_corpus.py`).
//!
//! A predicted span is a true positive when it overlaps a gold span of the same kind; a gold span
//! is found when some predicted span of its kind overlaps it. The test fails below
//! EMAIL and PHONE precision/recall 0.99, printing a score table, a
//! per-category breakdown of the errors and example misses and false hits (generated data, so
//! printing it is fine).
//!
//! Run: `cargo test --test detect_eval -- --nocapture`

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mcp_pii_gateway::detect::Detector;

const CORPUS: &str = include_str!("data/corpus.jsonl");

/// Thresholds per kind: (min precision, min recall).
const THRESHOLDS: &[(&str, f64, f64)] = &[("EMAIL", 0.99, 0.99), ("PHONE", 0.99, 0.99)];

/// How many example misses and false hits to print per kind.
const MAX_EXAMPLES: usize = 30;

#[derive(Clone, Debug, PartialEq)]
struct Labelled {
    start: usize,
    end: usize,
    kind: String,
    src: String,
    region: String,
}

#[derive(Clone, Debug)]
struct Line {
    text: String,
    gold: Vec<Labelled>,
    negatives: Vec<Labelled>,
    src: String,
}

#[derive(Clone, Debug, PartialEq)]
struct Pred {
    start: usize,
    end: usize,
    kind: String,
}

fn parse_corpus(corpus: &str) -> Vec<Line> {
    let spans = |v: &serde_json::Value, key: &str, lineno: usize| -> Vec<Labelled> {
        let Some(arr) = v.get(key) else { return Vec::new() };
        arr.as_array()
            .unwrap_or_else(|| panic!("line {lineno}: `{key}` is not an array"))
            .iter()
            .map(|s| {
                let num = |k: &str| {
                    s[k].as_u64()
                        .unwrap_or_else(|| panic!("line {lineno}: span `{k}` is not a number"))
                        as usize
                };
                let string = |k: &str| s.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
                Labelled {
                    start: num("start"),
                    end: num("end"),
                    kind: string("kind"),
                    src: string("src"),
                    region: string("region"),
                }
            })
            .collect()
    };
    corpus
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let lineno = i + 1;
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("line {lineno}: invalid JSON: {e}"));
            let text = v["text"]
                .as_str()
                .unwrap_or_else(|| panic!("line {lineno}: no `text` string"))
                .to_owned();
            let gold = spans(&v, "spans", lineno);
            let negatives = spans(&v, "negatives", lineno);
            for s in gold.iter().chain(&negatives) {
                assert!(
                    s.start < s.end
                        && s.end <= text.len()
                        && text.is_char_boundary(s.start)
                        && text.is_char_boundary(s.end),
                    "line {lineno}: span {}..{} is not a non-empty range on char boundaries",
                    s.start,
                    s.end
                );
            }
            let src = v["src"].as_str().unwrap_or("").to_owned();
            Line {
                text,
                gold,
                negatives,
                src,
            }
        })
        .collect()
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Counts for one kind.
#[derive(Clone, Debug, Default, PartialEq)]
struct KindScore {
    gold: usize,
    found: usize,
    predicted: usize,
    tp: usize,
    /// Gold spans predicted with exactly their boundaries (informational: the thresholds count
    /// overlaps).
    exact: usize,
}

impl KindScore {
    /// True positives / predicted; 1.0 when nothing was predicted (recall then tells).
    fn precision(&self) -> f64 {
        if self.predicted == 0 {
            1.0
        } else {
            self.tp as f64 / self.predicted as f64
        }
    }
    /// Found gold / gold; 1.0 when there is no gold.
    fn recall(&self) -> f64 {
        if self.gold == 0 {
            1.0
        } else {
            self.found as f64 / self.gold as f64
        }
    }
}

/// One error: a gold span nobody overlapped (miss), or a predicted span overlapping no gold span
/// of its kind (false hit).
#[derive(Clone, Debug, PartialEq)]
struct Miss {
    line: usize,
    start: usize,
    end: usize,
    kind: String,
    /// The category: the gold span's `src` for misses; for false hits the `src` of the negative
    /// it overlaps, `wrong_kind:<KIND>` when it overlaps gold of another kind, else
    /// `unlabelled@<line src>`.
    src: String,
    region: String,
}

#[derive(Debug, Default)]
struct Report {
    kinds: BTreeMap<String, KindScore>,
    misses: Vec<Miss>,
    false_hits: Vec<Miss>,
    /// Gold spans found, but by no prediction with exactly their boundaries.
    inexact: Vec<Miss>,
    /// (kind, gold src) -> gold count, to put misses per category in proportion.
    gold_by_src: BTreeMap<(String, String), usize>,
}

/// Scores predictions against gold, line by line (`preds[i]` belongs to `lines[i]`).
fn score(lines: &[Line], preds: &[Vec<Pred>], kinds: &[&str]) -> Report {
    assert_eq!(lines.len(), preds.len());
    let mut r = Report::default();
    for k in kinds {
        r.kinds.entry((*k).to_owned()).or_default();
    }
    for (i, (line, ps)) in lines.iter().zip(preds).enumerate() {
        for g in &line.gold {
            let ks = r.kinds.entry(g.kind.clone()).or_default();
            ks.gold += 1;
            *r.gold_by_src.entry((g.kind.clone(), g.src.clone())).or_default() += 1;
            if ps
                .iter()
                .any(|p| p.kind == g.kind && overlaps((p.start, p.end), (g.start, g.end)))
            {
                ks.found += 1;
                if ps
                    .iter()
                    .any(|p| p.kind == g.kind && p.start == g.start && p.end == g.end)
                {
                    ks.exact += 1;
                } else {
                    r.inexact.push(Miss {
                        line: i,
                        start: g.start,
                        end: g.end,
                        kind: g.kind.clone(),
                        src: g.src.clone(),
                        region: g.region.clone(),
                    });
                }
            } else {
                r.misses.push(Miss {
                    line: i,
                    start: g.start,
                    end: g.end,
                    kind: g.kind.clone(),
                    src: g.src.clone(),
                    region: g.region.clone(),
                });
            }
        }
        for p in ps {
            let ks = r.kinds.entry(p.kind.clone()).or_default();
            ks.predicted += 1;
            if line
                .gold
                .iter()
                .any(|g| g.kind == p.kind && overlaps((p.start, p.end), (g.start, g.end)))
            {
                ks.tp += 1;
                continue;
            }
            let src = if let Some(n) = line
                .negatives
                .iter()
                .find(|n| overlaps((p.start, p.end), (n.start, n.end)))
            {
                n.src.clone()
            } else if let Some(g) = line
                .gold
                .iter()
                .find(|g| overlaps((p.start, p.end), (g.start, g.end)))
            {
                format!("wrong_kind:{}", g.kind)
            } else {
                format!("unlabelled@{}", line.src)
            };
            r.false_hits.push(Miss {
                line: i,
                start: p.start,
                end: p.end,
                kind: p.kind.clone(),
                src,
                region: String::new(),
            });
        }
    }
    r
}

/// The text around `start..end` with the span marked, newlines escaped, cut on char boundaries.
fn snippet(text: &str, start: usize, end: usize) -> String {
    const CTX: usize = 50;
    let mut a = start.saturating_sub(CTX);
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = (end + CTX).min(text.len());
    while !text.is_char_boundary(b) {
        b += 1;
    }
    let esc = |s: &str| s.replace('\n', "\\n").replace('\t', "\\t");
    format!(
        "{}{}⟦{}⟧{}{}",
        if a > 0 { "…" } else { "" },
        esc(&text[a..start]),
        esc(&text[start..end]),
        esc(&text[end..b]),
        if b < text.len() { "…" } else { "" }
    )
}

fn render(report: &Report, lines: &[Line]) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "\n{:<8} {:>7} {:>9} {:>7} {:>7} {:>10} {:>8} {:>7}",
        "kind", "gold", "predicted", "TP", "found", "precision", "recall", "exact"
    )
    .unwrap();
    for (k, s) in &report.kinds {
        writeln!(
            out,
            "{:<8} {:>7} {:>9} {:>7} {:>7} {:>10.4} {:>8.4} {:>7}",
            k,
            s.gold,
            s.predicted,
            s.tp,
            s.found,
            s.precision(),
            s.recall(),
            s.exact
        )
        .unwrap();
    }
    for kind in report.kinds.keys() {
        let mut by_src: BTreeMap<&str, usize> = BTreeMap::new();
        let mut by_region: BTreeMap<&str, usize> = BTreeMap::new();
        for m in report.misses.iter().filter(|m| &m.kind == kind) {
            *by_src.entry(&m.src).or_default() += 1;
            if !m.region.is_empty() {
                *by_region.entry(&m.region).or_default() += 1;
            }
        }
        if !by_src.is_empty() {
            writeln!(out, "\n{kind} misses by category (missed / gold):").unwrap();
            for (src, n) in &by_src {
                let total = report
                    .gold_by_src
                    .get(&(kind.clone(), (*src).to_owned()))
                    .copied()
                    .unwrap_or(0);
                writeln!(out, "  {src:<28} {n:>5} / {total}").unwrap();
            }
        }
        if !by_region.is_empty() {
            let mut regions: Vec<_> = by_region.into_iter().collect();
            regions.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let list: Vec<String> = regions.iter().map(|(r, n)| format!("{r}:{n}")).collect();
            writeln!(out, "{kind} misses by region: {}", list.join(" ")).unwrap();
        }
        let mut fp_src: BTreeMap<&str, usize> = BTreeMap::new();
        for m in report.false_hits.iter().filter(|m| &m.kind == kind) {
            *fp_src.entry(&m.src).or_default() += 1;
        }
        if !fp_src.is_empty() {
            writeln!(out, "\n{kind} false hits by category:").unwrap();
            for (src, n) in &fp_src {
                writeln!(out, "  {src:<28} {n:>5}").unwrap();
            }
        }
    }
    let mut by_template: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for m in &report.misses {
        by_template.entry(&lines[m.line].src).or_default().0 += 1;
    }
    for m in &report.false_hits {
        by_template.entry(&lines[m.line].src).or_default().1 += 1;
    }
    if !by_template.is_empty() {
        writeln!(out, "\nerrors by document template (misses, false hits):").unwrap();
        for (t, (m, f)) in &by_template {
            writeln!(out, "  {t:<28} {m:>5} {f:>5}").unwrap();
        }
    }
    for kind in report.kinds.keys() {
        let lists = [
            ("misses", &report.misses, MAX_EXAMPLES),
            ("false hits", &report.false_hits, MAX_EXAMPLES),
            (
                "found with other boundaries (informational)",
                &report.inexact,
                MAX_EXAMPLES / 2,
            ),
        ];
        for (what, list, max) in lists {
            let xs: Vec<&Miss> = list.iter().filter(|m| &m.kind == kind).collect();
            if xs.is_empty() {
                continue;
            }
            writeln!(
                out,
                "\n{kind} {what} (first {} of {}):",
                xs.len().min(max),
                xs.len()
            )
            .unwrap();
            // Spread the examples over categories: round-robin by src.
            let mut by_src: BTreeMap<&str, Vec<&Miss>> = BTreeMap::new();
            for m in &xs {
                by_src.entry(&m.src).or_default().push(m);
            }
            let mut shown = 0;
            let mut round = 0;
            while shown < max.min(xs.len()) {
                for ms in by_src.values() {
                    if let Some(m) = ms.get(round) {
                        if shown < max {
                            let l = &lines[m.line];
                            writeln!(
                                out,
                                "  [{}{}] line {} ({}): {}",
                                m.src,
                                if m.region.is_empty() {
                                    String::new()
                                } else {
                                    format!(" {}", m.region)
                                },
                                m.line + 1,
                                l.src,
                                snippet(&l.text, m.start, m.end)
                            )
                            .unwrap();
                            shown += 1;
                        }
                    }
                }
                round += 1;
            }
        }
    }
    out
}

#[test]
fn corpus_is_well_formed() {
    let lines = parse_corpus(CORPUS);
    assert!(lines.len() >= 3000, "corpus has {} lines", lines.len());
    let mut per_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        let mut prev_end = 0;
        for g in &l.gold {
            assert!(
                g.kind == "EMAIL" || g.kind == "PHONE",
                "line {}: kind {}",
                i + 1,
                g.kind
            );
            assert!(
                g.start >= prev_end,
                "line {}: gold spans overlap or are unsorted",
                i + 1
            );
            prev_end = g.end;
            *per_kind.entry(g.kind.as_str()).or_default() += 1;
            for n in &l.negatives {
                assert!(
                    !overlaps((g.start, g.end), (n.start, n.end)),
                    "line {}: gold overlaps a negative",
                    i + 1
                );
            }
        }
    }
    assert!(
        per_kind.get("EMAIL").copied().unwrap_or(0) >= 1000,
        "{per_kind:?}"
    );
    assert!(
        per_kind.get("PHONE").copied().unwrap_or(0) >= 1000,
        "{per_kind:?}"
    );
    let negatives: usize = lines.iter().map(|l| l.negatives.len()).sum();
    assert!(negatives >= 1000, "only {negatives} negatives");
}

#[test]
fn builtin_detector_meets_precision_and_recall_thresholds() {
    // DETECT_EVAL_CORPUS=path evaluates another generated corpus (e.g. a held-out one made with
    // `gen_corpus.py --seed N --out path`): the committed one is what the rules were tuned on.
    let held_out = std::env::var("DETECT_EVAL_CORPUS")
        .ok()
        .map(|p| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("DETECT_EVAL_CORPUS={p}: {e}")));
    let lines = parse_corpus(held_out.as_deref().unwrap_or(CORPUS));
    let detector = Detector::builtin();
    let preds: Vec<Vec<Pred>> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let spans = detector.find(&l.text);
            // The `find` contract: sorted, non-overlapping, non-empty, on char boundaries.
            let mut prev_end = 0;
            for s in &spans {
                assert!(
                    s.start >= prev_end
                        && s.start < s.end
                        && l.text.is_char_boundary(s.start)
                        && l.text.is_char_boundary(s.end),
                    "line {}: detector returned a bad span {}..{} (after {prev_end})",
                    i + 1,
                    s.start,
                    s.end
                );
                prev_end = s.end;
            }
            spans
                .into_iter()
                .map(|s| Pred {
                    start: s.start,
                    end: s.end,
                    kind: s.kind.as_str().to_owned(),
                })
                .collect()
        })
        .collect();
    let kinds: Vec<&str> = THRESHOLDS.iter().map(|t| t.0).collect();
    let report = score(&lines, &preds, &kinds);
    let table = render(&report, &lines);
    println!("{table}");
    let mut failures = Vec::new();
    for (kind, min_p, min_r) in THRESHOLDS {
        let s = report.kinds.get(*kind).cloned().unwrap_or_default();
        if s.precision() < *min_p {
            failures.push(format!("{kind} precision {:.4} < {min_p}", s.precision()));
        }
        if s.recall() < *min_r {
            failures.push(format!("{kind} recall {:.4} < {min_r}", s.recall()));
        }
    }
    // The table and examples are on stdout, which the harness shows for a failing test.
    assert!(failures.is_empty(), "{} (details above)", failures.join("; "));
}

mod scoring {
    use super::*;

    fn lab(start: usize, end: usize, kind: &str, src: &str) -> Labelled {
        Labelled {
            start,
            end,
            kind: kind.into(),
            src: src.into(),
            region: String::new(),
        }
    }
    fn ks(gold: usize, found: usize, predicted: usize, tp: usize, exact: usize) -> KindScore {
        KindScore {
            gold,
            found,
            predicted,
            tp,
            exact,
        }
    }
    fn pred(start: usize, end: usize, kind: &str) -> Pred {
        Pred {
            start,
            end,
            kind: kind.into(),
        }
    }
    fn line(text: &str, gold: Vec<Labelled>, negatives: Vec<Labelled>) -> Line {
        Line {
            text: text.into(),
            gold,
            negatives,
            src: "t".into(),
        }
    }

    #[test]
    fn overlap_is_half_open() {
        assert!(overlaps((0, 5), (4, 10)));
        assert!(overlaps((4, 10), (0, 5)));
        assert!(overlaps((2, 3), (0, 10)));
        assert!(!overlaps((0, 5), (5, 10)));
        assert!(!overlaps((5, 10), (0, 5)));
    }

    #[test]
    fn exact_and_partial_overlaps_count_and_kinds_must_match() {
        //            0         1         2         3
        //            0123456789012345678901234567890123456
        let text = "mail a@b.example or call +1 201-555-0123 ok";
        let lines = vec![line(
            text,
            vec![lab(5, 16, "EMAIL", "e"), lab(25, 40, "PHONE", "p")],
            vec![],
        )];
        // Email predicted exactly, phone partially (just the tail), plus a PHONE guess on the email.
        let preds = vec![vec![
            pred(5, 16, "EMAIL"),
            pred(10, 16, "PHONE"),
            pred(31, 40, "PHONE"),
        ]];
        let r = score(&lines, &preds, &["EMAIL", "PHONE"]);
        assert_eq!(r.kinds["EMAIL"], ks(1, 1, 1, 1, 1));
        assert_eq!(r.kinds["PHONE"], ks(1, 1, 2, 1, 0));
        assert_eq!(r.kinds["PHONE"].precision(), 0.5);
        assert_eq!(r.kinds["PHONE"].recall(), 1.0);
        assert_eq!(r.false_hits.len(), 1);
        assert_eq!(r.false_hits[0].src, "wrong_kind:EMAIL");
        assert!(r.misses.is_empty());
        assert_eq!(r.inexact.len(), 1);
        assert_eq!(r.inexact[0].src, "p");
    }

    #[test]
    fn misses_and_false_hits_are_attributed() {
        let text = "x a@b.example 2024-01-01 +49 30 123456 y";
        let lines = vec![line(
            text,
            vec![
                lab(2, 13, "EMAIL", "email_faker"),
                lab(25, 38, "PHONE", "phone_intl"),
            ],
            vec![lab(14, 24, "", "neg_date")],
        )];
        // The date is flagged as a phone; the email and the phone are missed; a hit in free text.
        let preds = vec![vec![pred(14, 24, "PHONE"), pred(39, 40, "PHONE")]];
        let r = score(&lines, &preds, &["EMAIL", "PHONE"]);
        assert_eq!(r.kinds["EMAIL"], ks(1, 0, 0, 0, 0));
        assert_eq!(r.kinds["PHONE"], ks(1, 0, 2, 0, 0));
        assert_eq!(r.kinds["EMAIL"].precision(), 1.0);
        assert_eq!(r.kinds["EMAIL"].recall(), 0.0);
        assert_eq!(r.kinds["PHONE"].precision(), 0.0);
        let miss_src: Vec<&str> = r.misses.iter().map(|m| m.src.as_str()).collect();
        assert_eq!(miss_src, ["email_faker", "phone_intl"]);
        let fp_src: Vec<&str> = r.false_hits.iter().map(|m| m.src.as_str()).collect();
        assert_eq!(fp_src, ["neg_date", "unlabelled@t"]);
        let rendered = render(&r, &lines);
        assert!(rendered.contains("⟦2024-01-01⟧"), "{rendered}");
        assert!(rendered.contains("neg_date"), "{rendered}");
    }

    #[test]
    fn one_prediction_covering_two_gold_spans_finds_both_but_counts_once() {
        let lines = vec![line(
            "a@b.ex,c@d.ex",
            vec![lab(0, 6, "EMAIL", "e"), lab(7, 13, "EMAIL", "e")],
            vec![],
        )];
        let preds = vec![vec![pred(0, 13, "EMAIL")]];
        let r = score(&lines, &preds, &["EMAIL"]);
        assert_eq!(r.kinds["EMAIL"], ks(2, 2, 1, 1, 0));
    }

    #[test]
    fn empty_input_scores_perfect_and_unknown_kinds_are_listed() {
        let lines = vec![line("nothing here", vec![], vec![])];
        let r = score(&lines, &[vec![pred(0, 7, "CUSTOM")]], &["EMAIL"]);
        assert_eq!(r.kinds["EMAIL"].precision(), 1.0);
        assert_eq!(r.kinds["EMAIL"].recall(), 1.0);
        assert_eq!(r.kinds["CUSTOM"].precision(), 0.0);
    }

    #[test]
    fn snippet_cuts_on_char_boundaries() {
        let text = "电话电话电话电话电话电话电话电话电话电话电话电话电话电话电话电话电话电话电话电话 +86 10 1234 5678 电话电话电话电话电话电话电话电话电话电话电话电话电话电话电话电话电话";
        let start = text.find('+').unwrap();
        let end = start + "+86 10 1234 5678".len();
        let s = snippet(text, start, end);
        assert!(s.contains("⟦+86 10 1234 5678⟧"), "{s}");
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
    }

    #[test]
    fn parse_reads_spans_negatives_and_rejects_bad_offsets() {
        let ok = r#"{"text":"é a@b.ex","spans":[{"start":3,"end":9,"kind":"EMAIL","src":"e"}],"negatives":[],"src":"s"}"#;
        let lines = parse_corpus(ok);
        assert_eq!(lines.len(), 1);
        assert_eq!(&lines[0].text[3..9], "a@b.ex");
        assert_eq!(lines[0].gold, vec![lab(3, 9, "EMAIL", "e")]);
        let bad = r#"{"text":"é a@b.ex","spans":[{"start":1,"end":9,"kind":"EMAIL"}]}"#;
        assert!(std::panic::catch_unwind(|| parse_corpus(bad)).is_err());
    }
}

//! `Detector::builtin().find`: spans in bounds, on char boundaries, sorted and disjoint, of a
//! declared kind; the prefilter never rules out text that has a match; `find_into` agrees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_pii_gateway_fuzz::detector;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let d = detector();
    let spans = d.find(text);
    let mut last = 0;
    for sp in &spans {
        assert!(sp.start < sp.end, "empty span {sp:?}");
        assert!(sp.end <= text.len(), "span {sp:?} past the end ({})", text.len());
        assert!(
            text.is_char_boundary(sp.start) && text.is_char_boundary(sp.end),
            "span {sp:?} not on char boundaries"
        );
        assert!(sp.start >= last, "spans overlap or are unsorted: {spans:?}");
        assert!(d.kinds().contains(&sp.kind), "undeclared kind {:?}", sp.kind);
        last = sp.end;
    }
    if !d.might_contain(text) {
        assert!(
            spans.is_empty(),
            "might_contain is false but find found {spans:?}"
        );
    }
    let mut again = vec![];
    d.find_into(text, &mut again);
    assert_eq!(again, spans, "find_into disagrees with find");
    // Detection is about the text, not where it sits: the same matches, shifted, after a
    // neutral prefix.
    let shifted = format!("\n{text}");
    let s2: Vec<(usize, usize)> = d
        .find(&shifted)
        .iter()
        .map(|s| (s.start.wrapping_sub(1), s.end.wrapping_sub(1)))
        .collect();
    let s1: Vec<(usize, usize)> = spans.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(s1, s2, "a leading newline changes the matches");
});

//! The tool result of the latency bench, shared with the rewrite bench's per-call group.

/// About 4 KB of text with three emails and three phone numbers, varying with `seed`: filler
/// words plus fictional example.com addresses and 555-01xx numbers.
pub fn report_text(seed: u64) -> String {
    let words = [
        "order", "shipped", "invoice", "customer", "support", "ticket", "update", "status",
    ];
    let mut s = String::with_capacity(4200);
    let mut i = seed as usize;
    while s.len() < 4000 {
        s.push_str(words[i % words.len()]);
        s.push(' ');
        if i.is_multiple_of(97) {
            s.push_str(&format!("contact user{}@example.com ", i % 3));
        }
        if i.is_multiple_of(113) {
            s.push_str(&format!("call +1 202-555-01{:02} ", i % 3));
        }
        i += 7;
    }
    s
}

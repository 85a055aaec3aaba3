//! A child's stderr: drained as bytes whatever it holds, logged at debug level in bounded
//! lines with emails and phone numbers redacted.

use tokio::io::{AsyncRead, BufReader};

use crate::detect::Detector;
use crate::proxy::lines::{read_line_bounded, Ends, LineRead};

/// Longest stderr line logged; longer ones are truncated.
pub(super) const STDERR_LINE: usize = 8 << 10;
/// Bytes read past [`STDERR_LINE`] so that an email or phone number cut by the truncation is
/// still seen whole by the detector, and redacted (longer than any address: 254 bytes).
const STDERR_LOOKAHEAD: usize = 512;

/// Reads a child's stderr until EOF as bytes, never holding more than a few KiB: each line
/// (ended by `\n` or `\r`; empty ones skipped) goes to `log` lossily decoded, with the number of
/// bytes skipped when it was longer than [`STDERR_LINE`]. A truncated line comes with
/// [`STDERR_LOOKAHEAD`] bytes past the limit: give it to [`redact_prefix`] so that no cut-off
/// email or phone number is shown.
pub(super) async fn drain_stderr<R: AsyncRead + Unpin>(
    stderr: R,
    mut log: impl FnMut(std::borrow::Cow<'_, str>, usize),
) -> std::io::Result<()> {
    let mut r = BufReader::new(stderr);
    let mut buf = Vec::with_capacity(256);
    let keep = STDERR_LINE + STDERR_LOOKAHEAD;
    loop {
        buf.clear();
        match read_line_bounded(&mut r, &mut buf, STDERR_LINE, keep, Ends::NewlineOrReturn).await? {
            LineRead::Eof => return Ok(()),
            LineRead::Line if buf.is_empty() => {}
            LineRead::Line => log(String::from_utf8_lossy(&buf), 0),
            LineRead::TooLong(n) => {
                log(String::from_utf8_lossy(&buf), n.saturating_sub(STDERR_LINE));
            }
        }
    }
}

/// `text` with every detected span replaced by `[KIND]`.
#[cfg(test)]
fn redact(d: &Detector, text: &str) -> String {
    redact_prefix(d, text, text.len())
}

/// The first `max` bytes of `text` (cut back to a character boundary) with every detected span
/// replaced by `[KIND]`. Detection runs on all of `text`, so a span that starts before the cut
/// and ends after it is still replaced, never shown in part.
pub(super) fn redact_prefix(d: &Detector, text: &str, max: usize) -> String {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut);
    let mut at = 0;
    for s in d.find(text) {
        if s.start >= cut {
            break;
        }
        out.push_str(&text[at..s.start]);
        out.push('[');
        out.push_str(s.kind.as_str());
        out.push(']');
        at = s.end;
    }
    if at < cut {
        out.push_str(&text[at..cut]);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn stderr_is_drained_whatever_it_holds() {
        // Invalid UTF-8, a progress bar, 20 MiB without a newline, then more.
        let head: &[u8] = b"bad \xff\xfe bytes\n10%\r20%\rdone\r\n";
        let huge = tokio::io::repeat(b'x').take(20 << 20);
        let tail: &[u8] = b"\nafter\n";
        let input = head.chain(huge).chain(tail);
        let mut logged: Vec<(String, usize)> = Vec::new();
        drain_stderr(input, |t, skipped| logged.push((t.into_owned(), skipped)))
            .await
            .unwrap();
        let texts: Vec<&str> = logged.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(texts[..4], ["bad \u{fffd}\u{fffd} bytes", "10%", "20%", "done"]);
        let (long, skipped) = &logged[4];
        assert_eq!(long.len(), STDERR_LINE + STDERR_LOOKAHEAD);
        assert_eq!(*skipped, (20 << 20) - STDERR_LINE);
        assert_eq!(texts[5..], ["after"]);
    }

    #[test]
    fn stderr_is_redacted() {
        let d = Detector::builtin();
        assert_eq!(
            redact(&d, "failed for ana.lima@example.org!"),
            "failed for [EMAIL]!"
        );
        // An address cut by the truncation is redacted whole, never shown in part.
        let text = format!("{}ana.lima@example.org and more", "x ".repeat(10));
        assert_eq!(
            redact_prefix(&d, &text, 25),
            format!("{}[EMAIL]", "x ".repeat(10))
        );
        assert_eq!(redact_prefix(&d, &text, 20), "x ".repeat(10));
        assert_eq!(redact_prefix(&d, "é", 1), "");
    }
}

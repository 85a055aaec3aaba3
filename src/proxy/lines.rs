//! Reading newline-delimited input with bounded memory, whatever the peer writes.
//!
//! A line longer than the limit is not buffered: its first bytes are kept (so that an id can
//! still be read from them, or a truncated line logged) and the rest is read and discarded.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// The outcome of [`read_line_bounded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineRead {
    /// A whole line is in the buffer, without its terminator.
    Line,
    /// The input ended; the buffer is empty.
    Eof,
    /// The line held this many bytes (terminator excluded), more than the limit; the buffer
    /// holds its first bytes (at most `keep`) and the rest was discarded.
    TooLong(usize),
}

/// Which bytes end a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ends {
    /// `\n` only (JSON-RPC over stdio; a `\r` before it stays in the line).
    Newline,
    /// `\n` or `\r` (logs, where progress bars redraw with `\r`).
    NewlineOrReturn,
}

/// Reads one line into `buf` (which should be empty), at most `max` bytes of it. A longer
/// line is consumed to its end, keeping only its first `keep` bytes in `buf`, and reported as
/// [`LineRead::TooLong`]. `buf` never holds more than `max.max(keep)` bytes. The last line
/// before the end of input needs no terminator. Only read errors are errors: the bytes are not
/// interpreted.
pub(crate) async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
    keep: usize,
    ends: Ends,
) -> std::io::Result<LineRead> {
    // Bytes of the current line seen so far, once it is known to be too long.
    let mut too_long: Option<usize> = None;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(match too_long {
                Some(n) => LineRead::TooLong(n),
                None if buf.is_empty() => LineRead::Eof,
                None => LineRead::Line,
            });
        }
        let end = match ends {
            Ends::Newline => memchr::memchr(b'\n', avail),
            Ends::NewlineOrReturn => memchr::memchr2(b'\n', b'\r', avail),
        };
        let chunk = &avail[..end.unwrap_or(avail.len())];
        match too_long.as_mut() {
            None if buf.len() + chunk.len() <= max => buf.extend_from_slice(chunk),
            None => {
                too_long = Some(buf.len() + chunk.len());
                buf.truncate(keep);
                top_up(buf, chunk, keep);
            }
            Some(n) => {
                *n += chunk.len();
                top_up(buf, chunk, keep);
            }
        }
        let used = end.map_or(avail.len(), |i| i + 1);
        r.consume(used);
        if end.is_some() {
            return Ok(match too_long {
                Some(n) => LineRead::TooLong(n),
                None => LineRead::Line,
            });
        }
    }
}

fn top_up(buf: &mut Vec<u8>, chunk: &[u8], keep: usize) {
    let room = keep.saturating_sub(buf.len()).min(chunk.len());
    buf.extend_from_slice(&chunk[..room]);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt, BufReader};

    async fn all(data: &[u8], cap: usize, max: usize, keep: usize, ends: Ends) -> Vec<(LineRead, Vec<u8>)> {
        let mut r = BufReader::with_capacity(cap, data);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let got = read_line_bounded(&mut r, &mut buf, max, keep, ends)
                .await
                .unwrap();
            if got == LineRead::Eof {
                return out;
            }
            out.push((got, buf));
        }
    }

    #[tokio::test]
    async fn bounded_lines() {
        let data: &[u8] = b"{\"a\":1}\nxxxxxxxxxxxxxxxxxxxxxxxx\n{}\nlast";
        for cap in [1, 4, 1024] {
            let got = all(data, cap, 10, 3, Ends::Newline).await;
            assert_eq!(
                got,
                vec![
                    (LineRead::Line, b"{\"a\":1}".to_vec()),
                    (LineRead::TooLong(24), b"xxx".to_vec()),
                    (LineRead::Line, b"{}".to_vec()),
                    (LineRead::Line, b"last".to_vec()),
                ],
                "capacity {cap}"
            );
        }
    }

    #[tokio::test]
    async fn keep_may_exceed_max_and_eof_ends_a_long_line() {
        let got = all(b"0123456789abcdef", 4, 8, 12, Ends::Newline).await;
        assert_eq!(got, vec![(LineRead::TooLong(16), b"0123456789ab".to_vec())]);
    }

    #[tokio::test]
    async fn carriage_returns_end_lines_when_asked() {
        let data: &[u8] = b"10%\r20%\r\nok\r\n";
        let got = all(data, 3, 100, 100, Ends::NewlineOrReturn).await;
        let lines: Vec<&[u8]> = got.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(lines, vec![&b"10%"[..], b"20%", b"", b"ok", b""]);
        let got = all(data, 3, 100, 100, Ends::Newline).await;
        let lines: Vec<&[u8]> = got.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(lines, vec![&b"10%\r20%\r"[..], b"ok\r"]);
    }

    #[tokio::test]
    async fn a_huge_line_is_consumed_without_being_buffered() {
        let n = 20 << 20;
        let data = tokio::io::repeat(b'x').take(n as u64).chain(&b"\nnext\n"[..]);
        let mut r = BufReader::new(data);
        let mut buf = Vec::new();
        let got = read_line_bounded(&mut r, &mut buf, 1024, 64, Ends::Newline)
            .await
            .unwrap();
        assert_eq!(got, LineRead::TooLong(n));
        assert_eq!(buf.len(), 64);
        assert!(buf.capacity() <= 8 << 10, "buffer grew to {}", buf.capacity());
        buf.clear();
        let got = read_line_bounded(&mut r, &mut buf, 1024, 64, Ends::Newline)
            .await
            .unwrap();
        assert_eq!((got, buf.as_slice()), (LineRead::Line, &b"next"[..]));
    }
}

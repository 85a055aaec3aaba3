//! Small scanners over JSON text that the oracles need (token level, no decoding).

/// `src` without the whitespace between tokens (and without a leading byte order mark).
pub fn strip_ws(src: &[u8]) -> Vec<u8> {
    let src = src.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(src);
    let mut out = Vec::with_capacity(src.len());
    let mut in_str = false;
    let mut esc = false;
    for &c in src {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
            out.push(c);
        } else if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
            out.push(c);
        }
    }
    out
}

/// The element texts of a compact top-level array (as `to_vec` writes it).
pub fn split_top_array(src: &[u8]) -> Option<Vec<String>> {
    let s = std::str::from_utf8(src).ok()?;
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let mut parts = Vec::new();
    let (mut depth, mut in_str, mut esc, mut start) = (0i32, false, false, 0usize);
    for (i, c) in inner.char_indices() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(inner[start..i].to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(inner[start..].to_owned());
    Some(parts)
}

/// The text of every number token (including `NaN`, `Infinity`, `-Infinity`), in order.
pub fn number_tokens(src: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_str = false;
    let mut esc = false;
    let mut cur: Option<usize> = None;
    for (i, &c) in src.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        let num = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.');
        match (num, cur) {
            (true, None) => cur = Some(i),
            (false, Some(s)) => {
                out.push(String::from_utf8_lossy(&src[s..i]).into_owned());
                cur = None;
            }
            _ => {}
        }
        if c == b'"' {
            in_str = true;
        }
    }
    if let Some(s) = cur {
        out.push(String::from_utf8_lossy(&src[s..]).into_owned());
    }
    out.retain(|t| !matches!(t.as_str(), "true" | "false" | "null"));
    out
}

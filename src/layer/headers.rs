//! The stateless revision's mirror headers (`Mcp-Name`, `Mcp-Param-*`): their value encoding
//! and their restore, consistent with the body.
//!
//! A value travels verbatim when it is non-empty printable ASCII without leading or trailing
//! space or tab and does not itself look like the sentinel; otherwise as
//! `=?base64?<base64(utf8)>?=`. This matches rmcp 3.9 and the Python SDK.
//!
//! ```
//! use mcp_pii_gateway::layer::headers::{decode_value, encode_value};
//! assert_eq!(encode_value("echo"), "echo");
//! assert_eq!(encode_value("café"), "=?base64?Y2Fmw6k=?=");
//! assert_eq!(decode_value("=?base64?Y2Fmw6k=?=").as_deref(), Some("café"));
//! ```

use base64::{prelude::BASE64_STANDARD, Engine};
use http::{HeaderMap, HeaderValue};

use crate::error::{Error, Result};
use crate::exchange::{ExchangeCtx, PiiCore};

const PREFIX: &str = "=?base64?";
const SUFFIX: &str = "?=";

/// The `Mcp-Name` header.
pub const MCP_NAME: &str = "mcp-name";
/// The prefix of `Mcp-Param-<token>` headers.
pub const MCP_PARAM_PREFIX: &str = "mcp-param-";

fn requires_base64(value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    let b = value.as_bytes();
    matches!(b.first(), Some(b' ' | b'\t'))
        || matches!(b.last(), Some(b' ' | b'\t'))
        || value.chars().any(|c| (c as u32) < 0x20 || (c as u32) > 0x7E)
        || (value.starts_with(PREFIX) && value.ends_with(SUFFIX))
}

/// Encodes a value for a mirror header.
pub fn encode_value(value: &str) -> String {
    if requires_base64(value) {
        format!("{PREFIX}{}{SUFFIX}", BASE64_STANDARD.encode(value.as_bytes()))
    } else {
        value.to_owned()
    }
}

/// Decodes a mirror header value; `None` when it is not valid (bad base64 or UTF-8).
pub fn decode_value(value: &str) -> Option<String> {
    match value.strip_prefix(PREFIX).and_then(|v| v.strip_suffix(SUFFIX)) {
        Some(inner) => {
            let bytes = BASE64_STANDARD.decode(inner).ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(value.to_owned()),
    }
}

/// Restores placeholders in the `Mcp-Name` and `Mcp-Param-*` headers, with the same vault,
/// scope and hooks as the body, so that a server comparing them with the restored body finds
/// them equal. All or nothing: on error `headers` is untouched.
pub fn restore_mirror_headers(headers: &mut HeaderMap, core: &PiiCore, ctx: &ExchangeCtx) -> Result<usize> {
    let mut updates = Vec::new();
    for (name, value) in headers.iter() {
        let n = name.as_str();
        if n != MCP_NAME && !n.starts_with(MCP_PARAM_PREFIX) {
            continue;
        }
        // Headers that are not text or not decodable cannot hold a placeholder we issued
        // (placeholders are ASCII): forward them as they are.
        let Ok(raw) = value.to_str() else { continue };
        if !raw.contains('[') && !raw.starts_with(PREFIX) {
            continue;
        }
        let Some(decoded) = decode_value(raw) else {
            continue;
        };
        if let Some(restored) = core.restore_text(&decoded, ctx)? {
            let v = HeaderValue::from_str(&encode_value(&restored))
                .map_err(|_| Error::internal("an encoded mirror header value is not a valid header"))?;
            updates.push((name.clone(), v));
        }
    }
    let n = updates.len();
    for (name, value) in updates {
        headers.insert(name, value);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn encoding_table() {
        for (raw, enc) in [
            ("echo", "echo"),
            ("mailto:[EMAIL_1]", "mailto:[EMAIL_1]"),
            (" lead", "=?base64?IGxlYWQ=?="),
            ("tab\t", "=?base64?dGFiCQ==?="),
            ("=?base64?x?=", "=?base64?PT9iYXNlNjQ/eD89?="),
            ("", ""),
        ] {
            assert_eq!(encode_value(raw), enc, "{raw:?}");
            assert_eq!(decode_value(enc).as_deref(), Some(raw));
        }
        assert_eq!(decode_value("=?base64?***?="), None);
    }
}

//! Keyed fingerprints (HMAC-SHA256) of values and scopes.

use std::fmt;

use ring::hmac;

use crate::error::{Error, Result};
use crate::vault::ScopeId;

/// Smallest key accepted, in bytes.
const MIN_KEY_LEN: usize = 16;

/// Computes keyed fingerprints: the same value and key always give the same fingerprint, and
/// without the key a fingerprint says nothing about the value (no dictionary attack on emails).
///
/// Values and scopes are fingerprinted under different domain tags, so a value never matches a
/// scope. `Debug` never shows the key.
///
/// ```
/// use mcp_pii_gateway::audit::Fingerprinter;
/// let fp = Fingerprinter::from_key_text("6d792d746573742d6b65792d30313233343536373839").unwrap();
/// let a = fp.fingerprint("ana.lima@example.org");
/// assert_eq!(a, fp.fingerprint("ana.lima@example.org"));
/// assert_ne!(a, fp.fingerprint("ana.lima@example.net"));
/// assert_eq!(a.len(), 64);
/// ```
#[derive(Clone)]
pub struct Fingerprinter {
    key: hmac::Key,
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprinter(key_id={})", self.key_id())
    }
}

impl Fingerprinter {
    /// A fingerprinter over raw key bytes (at least 16).
    pub fn new(key: &[u8]) -> Result<Fingerprinter> {
        if key.len() < MIN_KEY_LEN {
            return Err(Error::config(vec![format!(
                "audit key: at least {MIN_KEY_LEN} bytes are needed (got {})",
                key.len()
            )]));
        }
        Ok(Fingerprinter {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        })
    }

    /// A fingerprinter from key text: hex (an even number of hex digits, at least 32) is
    /// decoded, anything else is used as raw bytes.
    pub fn from_key_text(text: &str) -> Result<Fingerprinter> {
        let t = text.trim();
        if t.len() >= 2 * MIN_KEY_LEN && t.len().is_multiple_of(2) && t.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let bytes = hex::decode(t).map_err(|_| Error::config(vec!["audit key: bad hex".into()]))?;
            Fingerprinter::new(&bytes)
        } else {
            Fingerprinter::new(t.as_bytes())
        }
    }

    /// A fingerprinter keyed by the environment variable `var` (hex or raw text).
    pub fn from_env(var: &str) -> Result<Fingerprinter> {
        match std::env::var(var) {
            Ok(v) => Fingerprinter::from_key_text(&v).map_err(|e| {
                Error::config(
                    e.config_problems()
                        .iter()
                        .map(|p| format!("{p} (from environment variable {var})"))
                        .collect(),
                )
            }),
            Err(_) => Err(Error::config(vec![format!(
                "audit key: environment variable {var} is not set (or not UTF-8); set it to at least {MIN_KEY_LEN} bytes of secret (hex or text)"
            )])),
        }
    }

    fn mac(&self, domain: &[u8], parts: &[&[u8]]) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(domain);
        for p in parts {
            // Length-prefix each part so ("ab","c") and ("a","bc") differ.
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p);
        }
        hex::encode(ctx.sign().as_ref())
    }

    /// The fingerprint of a value: 64 hex digits.
    pub fn fingerprint(&self, value: &str) -> String {
        self.mac(b"mcp-pii-gateway/value/v1", &[value.as_bytes()])
    }

    /// The fingerprint of a scope (client and scope key): 64 hex digits.
    pub fn scope(&self, scope: &ScopeId) -> String {
        self.mac(
            b"mcp-pii-gateway/scope/v1",
            &[scope.client().as_bytes(), scope.key().as_bytes()],
        )
    }

    /// A short public identifier of the key (16 hex digits), recorded in policy records so a
    /// search can tell whether it holds the key the log was written with.
    pub fn key_id(&self) -> String {
        let mut id = self.mac(b"mcp-pii-gateway/key-id/v1", &[]);
        id.truncate(16);
        id
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_and_raw_keys() {
        let hex_key = "00112233445566778899aabbccddeeff";
        let a = Fingerprinter::from_key_text(hex_key).unwrap();
        let b = Fingerprinter::new(&hex::decode(hex_key).unwrap()).unwrap();
        assert_eq!(a.fingerprint("x"), b.fingerprint("x"));
        let raw = Fingerprinter::from_key_text("a raw passphrase key").unwrap();
        assert_eq!(
            raw.fingerprint("x"),
            Fingerprinter::new(b"a raw passphrase key")
                .unwrap()
                .fingerprint("x")
        );
        assert!(Fingerprinter::from_key_text("short").unwrap_err().is_config());
    }

    #[test]
    fn domains_are_separate_and_debug_hides_key() {
        let fp = Fingerprinter::new(b"0123456789abcdef").unwrap();
        let scope = ScopeId::new("a", "b");
        assert_ne!(fp.scope(&scope), fp.fingerprint("a"));
        assert_ne!(
            fp.scope(&ScopeId::new("ab", "")),
            fp.scope(&ScopeId::new("a", "b"))
        );
        let other = Fingerprinter::new(b"0123456789abcdeX").unwrap();
        assert_ne!(fp.fingerprint("v"), other.fingerprint("v"));
        assert_ne!(fp.key_id(), other.key_id());
        assert!(!format!("{fp:?}").contains("0123456789abcdef"));
    }
}

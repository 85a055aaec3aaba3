//! How `/mcp` names what it aggregates, and how it finds the server behind a name.
//!
//! - Tools and prompts: `<prefix>__<name>`, the prefix being the server name with `-` written
//!   `_` (`crm-eu` → `crm_eu__lookup_customer`). A prefix never holds `__` and never ends with
//!   `_`, so the first `__` of a name always ends the prefix; the gateway's own tools have no
//!   `__` at all, so no upstream can shadow them.
//! - Resources and resource templates: `mcp-gateway://<server>/<the server's own URI>`
//!   (`mcp-gateway://docs/file:///guide.md`). A template keeps working: what a client expands
//!   is the server's template behind the same prefix.

/// The URI scheme of aggregated resources.
pub const SCHEME: &str = "mcp-gateway://";

/// The prefix of `server`'s tools and prompts.
pub fn prefix_of(server: &str) -> String {
    server.replace('-', "_")
}

/// `<prefix>__<name>`.
pub fn join(prefix: &str, name: &str) -> String {
    format!("{prefix}__{name}")
}

/// The prefix and the server's own name of an aggregated tool or prompt name.
pub fn split(name: &str) -> Option<(&str, &str)> {
    let i = name.find("__")?;
    let (prefix, rest) = (&name[..i], &name[i + 2..]);
    (!prefix.is_empty() && !rest.is_empty()).then_some((prefix, rest))
}

/// The aggregated URI of `server`'s resource `uri`.
pub fn wrap_uri(server: &str, uri: &str) -> String {
    format!("{SCHEME}{server}/{uri}")
}

/// The server and its own URI behind an aggregated resource URI.
pub fn unwrap_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix(SCHEME)?;
    let (server, inner) = rest.split_once('/')?;
    (!server.is_empty()).then_some((server, inner))
}

/// What makes a set of server names unusable on `/mcp`: each problem names the servers.
pub fn problems(servers: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for s in servers {
        let p = prefix_of(s);
        if p.contains("__") || p.ends_with('_') || p.starts_with('_') {
            out.push(format!(
                "server {s:?}: on /mcp its tools would be named {p}__<tool>, which cannot be split \
                 back unambiguously; rename it so that it has no \"__\", \"_-\", \"-_\" or \"--\" and \
                 does not start or end with \"_\" or \"-\""
            ));
        } else if let Some(other) = seen.insert(p.clone(), s) {
            out.push(format!(
                "servers {other:?} and {s:?}: both would be named {p}__<tool> on /mcp; rename one"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(
            join(&prefix_of("crm-eu"), "lookup_customer"),
            "crm_eu__lookup_customer"
        );
        assert_eq!(
            split("crm_eu__lookup_customer"),
            Some(("crm_eu", "lookup_customer"))
        );
        // A tool name may itself hold "__": only the first one ends the prefix.
        assert_eq!(split("a__b__c"), Some(("a", "b__c")));
        assert_eq!(split("search_tools"), None);
        assert_eq!(split("__x"), None);
        assert_eq!(split("x__"), None);
        let u = wrap_uri("docs", "file:///guide.md");
        assert_eq!(u, "mcp-gateway://docs/file:///guide.md");
        assert_eq!(unwrap_uri(&u), Some(("docs", "file:///guide.md")));
        assert_eq!(unwrap_uri("file:///x"), None);
        assert_eq!(unwrap_uri("mcp-gateway:///x"), None);
    }

    #[test]
    fn ambiguous_server_names_are_problems() {
        assert!(problems(&["crm", "mail", "crm-eu"]).is_empty());
        let p = problems(&["crm-eu", "crm_eu"]);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("\"crm-eu\" and \"crm_eu\""), "{p:?}");
        for bad in ["a__b", "a-_b", "a--b", "a-", "_a", "-a"] {
            assert_eq!(problems(&[bad]).len(), 1, "{bad}");
        }
    }
}

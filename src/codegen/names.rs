//! Identifiers and file names: any tool or server name made valid for a language and safe as a
//! path component, and deterministic disambiguation when two names become one.
//!
//! ```
//! use mcp_pii_gateway::codegen::names;
//! assert_eq!(names::py_ident("class"), "class_");
//! assert_eq!(names::py_ident("get-user"), "get_user");
//! assert_eq!(names::ts_ident("3d-render"), "_3d_render");
//! assert_eq!(names::ts_function("lookup_customer"), "lookupCustomer");
//! assert_eq!(names::type_name("lookup_customer"), "LookupCustomer");
//! assert_eq!(names::py_ident("../../etc"), "etc");
//! ```

use std::collections::BTreeSet;

use heck::{ToLowerCamelCase, ToUpperCamelCase};

/// Python keywords (soft keywords such as `match` and `type` are valid names).
const PY_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
    "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

/// Words a TypeScript module may not bind (reserved words, strict-mode reserved words, `await` in
/// modules, `arguments`/`eval` in strict code) plus the built-in type names.
const TS_RESERVED: &[&str] = &[
    "any",
    "arguments",
    "await",
    "bigint",
    "boolean",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "declare",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "eval",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "never",
    "new",
    "null",
    "number",
    "object",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "string",
    "super",
    "switch",
    "symbol",
    "this",
    "throw",
    "true",
    "try",
    "type",
    "typeof",
    "undefined",
    "unknown",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Names that Windows will not create as files, whatever the extension.
const WINDOWS_DEVICES: &[&str] = &[
    "aux", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "con", "lpt1", "lpt2",
    "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9", "nul", "prn",
];

/// Is `s` a Python keyword?
pub fn is_py_keyword(s: &str) -> bool {
    PY_KEYWORDS.contains(&s)
}

/// Is `s` reserved in a TypeScript module?
pub fn is_ts_reserved(s: &str) -> bool {
    TS_RESERVED.contains(&s)
}

/// `s` with every character outside `[A-Za-z0-9_]` turned into `_`, runs of `_` from that
/// collapsed, and `_` trimmed at both ends (so `../x` is `x`, never a path). Empty → `tool`.
fn ascii_word(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let t = out.trim_matches('_');
    if t.is_empty() {
        "tool".to_string()
    } else {
        t.to_string()
    }
}

/// Keeps a leading digit from starting an identifier; avoids the reserved words and Windows
/// device names (every generated identifier is also used as a file or directory name).
fn finish(mut s: String, reserved: impl Fn(&str) -> bool) -> String {
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if reserved(&s) || WINDOWS_DEVICES.contains(&s.to_ascii_lowercase().as_str()) {
        s.push('_');
    }
    s
}

/// A valid Python identifier (and module name) for `s`: ASCII letters, digits and `_`, no
/// leading digit, not a keyword (`class` → `class_`).
pub fn py_ident(s: &str) -> String {
    finish(ascii_word(s), is_py_keyword)
}

/// A valid TypeScript identifier for `s`, keeping its spelling (`3d-render` → `_3d_render`).
pub fn ts_ident(s: &str) -> String {
    finish(ascii_word(s), is_ts_reserved)
}

/// The TypeScript function name of a tool: its name in lowerCamelCase (`lookup_customer` →
/// `lookupCustomer`), made valid.
pub fn ts_function(s: &str) -> String {
    let camel = ascii_word(s).to_lower_camel_case();
    // Case conversion drops `_`; a name of digits only keeps its word.
    let camel = if camel.is_empty() { ascii_word(s) } else { camel };
    finish(camel, is_ts_reserved)
}

/// A type name: `s` in UpperCamelCase, made valid in both languages (`2fa` → `T2fa`).
pub fn type_name(s: &str) -> String {
    let mut p = ascii_word(s).to_upper_camel_case();
    if p.is_empty() {
        p = "T".to_string();
    }
    if p.starts_with(|c: char| c.is_ascii_digit()) {
        p.insert(0, 'T');
    }
    p
}

/// Is `s` an ASCII identifier in both languages (`[A-Za-z_][A-Za-z0-9_]*`)? Such object keys
/// are written bare; others are quoted.
pub fn is_plain_key(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Hands out unique names in one namespace, first come first served: the second `x` is `x_2`.
/// Names are compared ignoring ASCII case, as they also name files and a case-insensitive file
/// system would merge `Get.ts` and `get.ts`. Feed names in a deterministic order.
#[derive(Debug, Default, Clone)]
pub struct Namer {
    taken: BTreeSet<String>,
}

impl Namer {
    /// A namer in which `reserved` are already taken.
    pub fn with_reserved(reserved: &[&str]) -> Namer {
        Namer {
            taken: reserved.iter().map(|r| r.to_ascii_lowercase()).collect(),
        }
    }

    /// Is `name` free?
    pub fn is_free(&self, name: &str) -> bool {
        !self.taken.contains(&name.to_ascii_lowercase())
    }

    /// Takes `name` if free, else the first free `name_2`, `name_3`, ...
    pub fn claim(&mut self, name: &str) -> String {
        let mut n = 1;
        loop {
            let candidate = if n == 1 {
                name.to_string()
            } else {
                format!("{name}_{n}")
            };
            if self.taken.insert(candidate.to_ascii_lowercase()) {
                return candidate;
            }
            n += 1;
        }
    }

    /// Takes `bases[i]` + suffix in `namers[i]` for the first suffix of `""`, `"_2"`, `"_3"`,
    /// ... that is free in every namer: one suffix for names that must stay in step (a tool's
    /// file and its function).
    pub fn claim_together(namers: &mut [&mut Namer], bases: &[&str]) -> Vec<String> {
        let mut n = 1;
        loop {
            let suffix = if n == 1 { String::new() } else { format!("_{n}") };
            let names: Vec<String> = bases.iter().map(|b| format!("{b}{suffix}")).collect();
            if namers.iter().zip(&names).all(|(m, name)| m.is_free(name)) {
                for (m, name) in namers.iter_mut().zip(&names) {
                    m.taken.insert(name.to_ascii_lowercase());
                }
                return names;
            }
            n += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn python_identifiers() {
        for (input, want) in [
            ("lookup_customer", "lookup_customer"),
            ("get-user", "get_user"),
            ("class", "class_"),
            ("None", "None_"),
            ("match", "match"),
            ("3d", "_3d"),
            ("", "tool"),
            ("---", "tool"),
            ("../../etc/passwd", "etc_passwd"),
            ("a/b\\c", "a_b_c"),
            ("ünïcødé", "n_c_d"),
            ("con", "con_"),
            ("CON", "CON_"),
            ("a..b", "a_b"),
            ("_private_", "private"),
        ] {
            assert_eq!(py_ident(input), want, "{input:?}");
        }
    }

    #[test]
    fn typescript_identifiers() {
        for (input, want) in [
            ("lookup_customer", "lookupCustomer"),
            ("get-user", "getUser"),
            ("delete", "delete_"),
            ("new", "new_"),
            ("3d-render", "_3dRender"),
            ("ALL_CAPS", "allCaps"),
            ("eval", "eval_"),
            ("", "tool"),
            ("123", "_123"),
        ] {
            assert_eq!(ts_function(input), want, "{input:?}");
        }
        assert_eq!(ts_ident("delete"), "delete_");
        assert_eq!(ts_ident("crm-eu"), "crm_eu");
    }

    #[test]
    fn type_names() {
        assert_eq!(type_name("lookup_customer"), "LookupCustomer");
        assert_eq!(type_name("2fa"), "T2fa");
        assert_eq!(type_name("!!"), "Tool");
        assert_eq!(type_name("get-user"), "GetUser");
    }

    #[test]
    fn plain_keys() {
        assert!(is_plain_key("email"));
        assert!(is_plain_key("_x1"));
        assert!(!is_plain_key("user-id"));
        assert!(!is_plain_key("1a"));
        assert!(!is_plain_key(""));
        assert!(!is_plain_key("é"));
    }

    #[test]
    fn namer_disambiguates_ignoring_case() {
        let mut n = Namer::with_reserved(&["index"]);
        assert_eq!(n.claim("Index"), "Index_2");
        assert_eq!(n.claim("get"), "get");
        assert_eq!(n.claim("GET"), "GET_2");
        assert_eq!(n.claim("get_2"), "get_2_2");
        let mut a = Namer::default();
        let mut b = Namer::default();
        a.claim("x");
        assert_eq!(
            Namer::claim_together(&mut [&mut a, &mut b], &["x", "y"]),
            ["x_2", "y_2"]
        );
    }
}

//! `search_tools`: ranked keyword search over the tools a client may use.
//!
//! Okapi BM25 (k1 = 1.2, b = 0.75) over each tool's words: its name (counted three times),
//! its parameter names (twice) and its description. Words are split at non-alphanumerics and
//! camelCase humps, lower-cased, stripped of a few English suffixes (`emails` → `email`,
//! `sending` → `send`) and of stop words. Ties keep catalog order, so results are
//! deterministic. Building the index is linear in the catalog's text; a query touches only the
//! postings of its words.

use std::collections::HashMap;

const K1: f64 = 1.2;
const B: f64 = 0.75;
const NAME_WEIGHT: u32 = 3;
const PARAM_WEIGHT: u32 = 2;

const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "its", "of",
    "on", "or", "that", "the", "this", "to", "with", "me", "my", "i", "you", "your",
];

/// The words of `text`, as the index sees them.
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            let w = stem(&cur.to_lowercase());
            if !STOP.contains(&w.as_str()) {
                out.push(w);
            }
            cur.clear();
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower {
                flush(&mut cur, &mut out);
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            cur.push(c);
        } else {
            prev_lower = false;
            flush(&mut cur, &mut out);
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn stem(w: &str) -> String {
    let n = w.chars().count();
    if n > 5 {
        if let Some(s) = w.strip_suffix("ing") {
            return s.to_owned();
        }
    }
    if n > 4 {
        if let Some(s) = w.strip_suffix("ies") {
            return format!("{s}y");
        }
        if let Some(s) = w.strip_suffix("ed") {
            return s.to_owned();
        }
        for end in ["sses", "xes", "ches", "shes"] {
            if w.ends_with(end) {
                return w[..w.len() - 2].to_owned();
            }
        }
    }
    if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") {
        return w[..w.len() - 1].to_owned();
    }
    w.to_owned()
}

/// What is indexed of one tool.
#[derive(Debug, Clone, Default)]
pub struct ToolText<'a> {
    /// The tool's name (as the client calls it).
    pub name: &'a str,
    /// Its description.
    pub description: &'a str,
    /// Its input schema's property names.
    pub params: Vec<&'a str>,
}

/// A BM25 index over a list of tools; results are positions in that list.
#[derive(Debug, Default)]
pub struct Index {
    postings: HashMap<String, Vec<(u32, u32)>>,
    lens: Vec<u32>,
    avg_len: f64,
}

impl Index {
    /// Indexes `tools` (in catalog order).
    pub fn new<'a>(tools: impl IntoIterator<Item = ToolText<'a>>) -> Index {
        let mut postings: HashMap<String, Vec<(u32, u32)>> = HashMap::new();
        let mut lens = Vec::new();
        for (doc, t) in tools.into_iter().enumerate() {
            let doc = doc as u32;
            let mut tf: HashMap<String, u32> = HashMap::new();
            let mut len = 0;
            let fields = [(t.name, NAME_WEIGHT), (t.description, 1)];
            for (text, weight) in fields {
                for w in words(text) {
                    *tf.entry(w).or_default() += weight;
                    len += weight;
                }
            }
            for p in &t.params {
                for w in words(p) {
                    *tf.entry(w).or_default() += PARAM_WEIGHT;
                    len += PARAM_WEIGHT;
                }
            }
            for (w, n) in tf {
                postings.entry(w).or_default().push((doc, n));
            }
            lens.push(len);
        }
        let avg_len = if lens.is_empty() {
            1.0
        } else {
            (lens.iter().map(|&l| l as f64).sum::<f64>() / lens.len() as f64).max(1.0)
        };
        Index {
            postings,
            lens,
            avg_len,
        }
    }

    /// The best `limit` tools for `query`, best first, with their scores; tools sharing no
    /// word with the query are not returned.
    pub fn search(&self, query: &str, limit: usize) -> Vec<(usize, f64)> {
        let n = self.lens.len() as f64;
        let mut scores: HashMap<u32, f64> = HashMap::new();
        let mut qwords = words(query);
        qwords.sort();
        qwords.dedup();
        for w in &qwords {
            let Some(post) = self.postings.get(w) else {
                continue;
            };
            let df = post.len() as f64;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(doc, tf) in post {
                let tf = tf as f64;
                let dl = self.lens[doc as usize] as f64;
                let s = idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * dl / self.avg_len));
                *scores.entry(doc).or_default() += s;
            }
        }
        let mut ranked: Vec<(usize, f64)> = scores.into_iter().map(|(d, s)| (d as usize, s)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(limit);
        ranked
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn words_split_stem_and_drop_stop_words() {
        assert_eq!(words("send_email"), ["send", "email"]);
        assert_eq!(words("sendEmails to the Customer"), ["send", "email", "customer"]);
        assert_eq!(words("Sending messages; searches"), ["send", "message", "search"]);
        assert_eq!(words("address class"), ["address", "class"]);
    }

    #[test]
    fn name_matches_rank_first_and_ties_keep_catalog_order() {
        let tools = [
            ToolText {
                name: "crm__lookup_customer",
                description: "Find a customer by email address.",
                params: vec!["email"],
            },
            ToolText {
                name: "mail__send_email",
                description: "Send a message.",
                params: vec!["to", "subject", "body"],
            },
            ToolText {
                name: "mail__list_folders",
                description: "List mail folders.",
                params: vec![],
            },
            ToolText {
                name: "a__x",
                description: "nothing relevant",
                params: vec![],
            },
            ToolText {
                name: "b__x",
                description: "nothing relevant",
                params: vec![],
            },
        ];
        let idx = Index::new(tools.iter().cloned());
        let r = idx.search("send an email", 10);
        assert_eq!(r[0].0, 1, "{r:?}");
        assert_eq!(r[1].0, 0, "{r:?}");
        assert_eq!(r.len(), 2);
        assert_eq!(
            idx.search("relevant", 10).iter().map(|r| r.0).collect::<Vec<_>>(),
            [3, 4]
        );
        assert!(idx.search("zebra", 10).is_empty());
        assert_eq!(idx.search("email", 1).len(), 1);
    }
}

//! Rewriting JSON values and JSON-RPC messages: PII → placeholders toward the model,
//! placeholders → values toward servers.
//!
//! ```
//! use std::sync::Arc;
//! use mcp_pii_gateway::{detect::Detector, rewrite::Rewriter, vault::{MemoryVault, ScopeId}};
//! let rw = Rewriter::new(Arc::new(Detector::builtin()), Arc::new(MemoryVault::builder().build()));
//! let scope = ScopeId::new("anonymous", "run-1");
//!
//! // Toward the model: a tool result from server "crm".
//! let mut msg = serde_json::json!({"jsonrpc": "2.0", "id": 7, "result": {
//!     "content": [{"type": "text", "text": "Ana <ana.lima@example.org>, see [EMAIL_1]"}]}});
//! rw.tokenize_message(&mut msg, &scope, "crm").unwrap();
//! // The literal "[EMAIL_1]" the server sent is vaulted too, so it can't be confused.
//! assert_eq!(msg["result"]["content"][0]["text"], "Ana <[EMAIL_1]>, see [EMAIL_2]");
//!
//! // Toward a server: the model's tool call.
//! let mut call = serde_json::json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
//!     "params": {"name": "send", "arguments": {"to": "[EMAIL_1]", "body": "re [EMAIL_2]"}}});
//! let plan = rw.plan_restore_message(&call, &scope).unwrap();
//! assert_eq!(plan.uses[0].path, "/params/arguments/to");
//! rw.apply_restore_message(&mut call, &plan);
//! assert_eq!(call["params"]["arguments"]["to"], "ana.lima@example.org");
//! assert_eq!(call["params"]["arguments"]["body"], "re [EMAIL_1]");
//!
//! // A placeholder never issued in this scope rejects the whole message.
//! let call = serde_json::json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
//!     "params": {"arguments": {"to": "[EMAIL_9]"}}});
//! let err = rw.plan_restore_message(&call, &scope).unwrap_err();
//! assert!(err.is_unknown_placeholder());
//! assert!(err.to_string().contains("[EMAIL_9] at /params/arguments/to"));
//! ```
//!
//! # Values
//!
//! - [`Rewriter::tokenize_value`] replaces PII in every string and object key with placeholders,
//!   in place, in one pass; placeholder-shaped text already in the data (`[KIND_N]` with KIND one
//!   of the detector's kinds, N from 1 without a leading zero) is vaulted too, as a value of that
//!   KIND, so `restore(tokenize(v)) == v` for every JSON value. Text such as `[TODO_1]` (not a
//!   kind) or `[EMAIL_01]` (leading zero) is plain text and stays as it is. On error the value
//!   is in an unspecified, partly rewritten state and must be dropped, never forwarded.
//! - [`Rewriter::plan_restore_value`] finds every placeholder and resolves it without touching
//!   the value: any `[KIND_N]` with a known KIND that is not issued in the scope (or expired)
//!   fails the whole plan with [`Error::unknown_placeholder`](crate::Error::unknown_placeholder)
//!   naming it and the RFC 6901 JSON pointer of the string (or key) it was found in. The plan
//!   carries each placeholder's kind and origins for the flow policy;
//!   [`Rewriter::apply_restore`] then cannot fail, so nothing is ever half-restored.
//! - Object keys are rewritten too, keeping member order; a map is rebuilt only when one of its
//!   keys changes. If restoring keys would make two members of one object equal, the plan fails
//!   with a bad-input error (a JSON object can't hold both, and data must not be lost).
//! - JSON pointers in errors and plans never show raw PII: detected PII inside an object key is
//!   shown as `<KIND>` in the pointer.
//! - Work is skipped early: a string that the detector's prefilter rules out and that holds no
//!   `[` is not scanned; a restore only scans strings holding a `[`; an output string is built
//!   only when something in it changes. Nothing is cloned.
//! - The walkers are iterative (explicit stack), so nesting depth is limited only by memory.
//!   Note that `serde_json` itself limits parsing to 128 levels by default and that dropping or
//!   serializing a `Value` recurses, so such depths only arise from values built in code.
//!
//! # Messages
//!
//! The `*_message` methods take a JSON-RPC 2.0 message or a batch (array of messages) and apply
//! the same rules in both directions (toward the model they tokenize, toward servers they
//! restore); what flows which way is decided by the caller:
//! - `jsonrpc`, `id` and `method` are never touched.
//! - `params` of requests and notifications (including `_meta`), `result` and `error` (its
//!   `message` and `data`) of responses, and any other member are walked like values. So
//!   toward the model: responses, notifications, and server-initiated requests
//!   (`sampling/createMessage`, `elicitation/create`, `roots/list`, ...); toward servers:
//!   requests, notifications, and the answers to server-initiated requests.
//! - Correlation tokens are left untouched: `params._meta.progressToken`, `params.progressToken`
//!   of `notifications/progress`, and `params.requestId` of `notifications/cancelled`.
//! - Base64 blobs are left untouched: `blob` of resource contents (an object with a string
//!   `uri`) and `data` of content items whose `type` is `image` or `audio`, when the string is
//!   well-formed padded base64; anything else in those positions is walked like other strings.
//! - Everything else, including unknown methods and unknown members at any level, is walked
//!   generically: PII can't slip through a field the gateway doesn't know.
//! - An element of a batch that is not an object is walked as a plain value.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::Value;

use crate::detect::{Detector, Kind, Span};
use crate::error::{Error, Result};
use crate::vault::{Placeholder, ScopeId, Secret, Tokenized, Vault};

mod scan;
mod staged;
mod walk;

use walk::{Ctx, Seg, Visit};

/// Which way a message flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Server → client: tokenize.
    ToModel,
    /// Client → server: restore.
    ToServer,
}

/// What a tokenize pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenizeReport {
    /// Every placeholder written, once each, in order of first appearance in this value; `minted`
    /// tells which were new to the scope.
    pub placeholders: Vec<Tokenized>,
}

/// One placeholder found in outgoing data.
#[derive(Debug, Clone)]
pub struct PlaceholderUse {
    /// The placeholder.
    pub placeholder: Placeholder,
    /// The servers its value came from.
    pub origins: Vec<Arc<str>>,
    /// JSON pointer of the first string it was found in.
    pub path: String,
}

/// Everything needed to restore a value, resolved up front.
#[derive(Debug, Clone, Default)]
pub struct RestorePlan {
    /// Each distinct placeholder found, in order of first appearance.
    pub uses: Vec<PlaceholderUse>,
    values: Vec<Secret>,
    index: HashMap<Placeholder, usize>,
}

impl RestorePlan {
    /// True when the value holds no placeholder (nothing to restore).
    pub fn is_empty(&self) -> bool {
        self.uses.is_empty()
    }

    /// The value behind `placeholder`, when this plan resolved it. Never log it.
    pub fn value_of(&self, placeholder: &Placeholder) -> Option<&Secret> {
        self.index.get(placeholder).map(|&i| &self.values[i])
    }
}

/// Rewrites values with one detector and one vault. Cheap to clone.
#[derive(Clone)]
pub struct Rewriter {
    detector: Arc<Detector>,
    vault: Arc<dyn Vault>,
}

impl std::fmt::Debug for Rewriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rewriter")
            .field("detector", &self.detector)
            .finish_non_exhaustive()
    }
}

/// A span to replace while tokenizing: byte range and the kind it is vaulted as.
#[derive(Debug, Clone)]
struct Cut {
    start: usize,
    end: usize,
    kind: Kind,
    /// Placeholder-shaped text (as opposed to a detector match).
    literal: bool,
}

/// One placeholder written into an output string.
struct Placed {
    /// Byte range in the output.
    start: usize,
    end: usize,
    /// Index of its cut.
    cut: usize,
    tokenized: Tokenized,
}

/// Most rounds of re-detection before a string is vaulted whole (see [`TokenizePass::text`]).
const MAX_ROUNDS: usize = 8;

/// Per-pass state of a tokenize: scratch buffers and the report.
struct TokenizePass<'a> {
    rw: &'a Rewriter,
    scope: &'a ScopeId,
    origin: &'a str,
    spans: Vec<Span>,
    cuts: Vec<Cut>,
    /// Where each cut's placeholder went in the current output, in order.
    placed: Vec<Placed>,
    /// Placeholders minted by this pass (a value can be vaulted in an earlier round).
    minted: HashSet<Placeholder>,
    seen: HashSet<Placeholder>,
    report: TokenizeReport,
}

impl<'a> TokenizePass<'a> {
    fn new(rw: &'a Rewriter, scope: &'a ScopeId, origin: &'a str) -> Self {
        TokenizePass {
            rw,
            scope,
            origin,
            spans: Vec::new(),
            cuts: Vec::new(),
            placed: Vec::new(),
            minted: HashSet::new(),
            seen: HashSet::new(),
            report: TokenizeReport::default(),
        }
    }

    /// Checks the detector's spans for `s` (in `self.spans`) and appends them as cuts.
    fn push_detected(&mut self, s: &str) -> Result<()> {
        let kinds = self.rw.detector.kinds();
        for sp in &self.spans {
            if sp.start >= sp.end {
                continue;
            }
            if sp.end > s.len() || !s.is_char_boundary(sp.start) || !s.is_char_boundary(sp.end) {
                return Err(Error::internal("the detector returned a span outside the text"));
            }
            if !kinds.contains(&sp.kind) {
                return Err(Error::internal(format!(
                    "the detector returned a span of kind {} it does not declare",
                    sp.kind
                )));
            }
            self.cuts.push(Cut {
                start: sp.start,
                end: sp.end,
                kind: sp.kind.clone(),
                literal: false,
            });
        }
        Ok(())
    }

    /// The tokenized text, or `None` when nothing in `s` changes.
    ///
    /// Cuts are the detector's matches plus placeholder-shaped text, made disjoint. Replacing a
    /// match can expose another one that the detector didn't see in the original (a match can
    /// end where a replaced one began, now that a `]` delimits it), so the output is scanned
    /// again and any match outside the inserted placeholders becomes a cut too (joined with
    /// the cuts it touches), until nothing new is found. If that hasn't settled after
    /// [`MAX_ROUNDS`], the whole string is vaulted as one value: lossless, and nothing detected
    /// is left in the output.
    fn text(&mut self, s: &str, key: Option<&str>) -> Result<Option<String>> {
        let detector = &*self.rw.detector;
        // `find_keyed_into` applies the prefilter itself: one call, no separate `might_contain`.
        // The member name is context (`"MobilePhone": "0619861964"`).
        detector.find_keyed_into(s, key, &mut self.spans);
        let bracket = memchr::memchr(b'[', s.as_bytes()).is_some();
        if self.spans.is_empty() && !bracket {
            return Ok(None);
        }
        let kinds = detector.kinds();
        self.cuts.clear();
        self.push_detected(s)?;
        if bracket {
            for f in scan::placeholders(s, kinds) {
                self.cuts.push(Cut {
                    start: f.start,
                    end: f.end,
                    kind: kinds[f.kind].clone(),
                    literal: true,
                });
            }
        }
        if self.cuts.is_empty() {
            return Ok(None);
        }
        let mut round = 0;
        loop {
            merge_cuts(&mut self.cuts);
            let out = self.render(s)?;
            round += 1;
            detector.find_keyed_into(&out, key, &mut self.spans);
            let mut extra: Vec<Cut> = Vec::new();
            for sp in &self.spans {
                if let Some(cut) = self.map_back(s, &out, sp)? {
                    extra.push(cut);
                }
            }
            if extra.is_empty() {
                return Ok(Some(self.settle(out)));
            }
            if round >= MAX_ROUNDS {
                let kind = extra[0].kind.clone();
                self.cuts.clear();
                self.cuts.push(Cut {
                    start: 0,
                    end: s.len(),
                    kind,
                    literal: false,
                });
                let out = self.render(s)?;
                return Ok(Some(self.settle(out)));
            }
            self.cuts.extend(extra);
        }
    }

    /// Vaults every cut and builds the output; records where each placeholder went.
    fn render(&mut self, s: &str) -> Result<String> {
        let mut out = String::with_capacity(s.len() + 8 * self.cuts.len());
        self.placed.clear();
        let mut last = 0;
        for (i, cut) in self.cuts.iter().enumerate() {
            out.push_str(&s[last..cut.start]);
            let t = self
                .rw
                .vault
                .tokenize(self.scope, &cut.kind, &s[cut.start..cut.end], self.origin)?;
            if t.placeholder.kind != cut.kind || t.placeholder.n == 0 {
                return Err(Error::internal("the vault returned a malformed placeholder"));
            }
            if t.minted {
                self.minted.insert(t.placeholder.clone());
            }
            let start = out.len();
            write!(out, "{}", t.placeholder).expect("writing to a String cannot fail");
            self.placed.push(Placed {
                start,
                end: out.len(),
                cut: i,
                tokenized: t,
            });
            last = cut.end;
        }
        out.push_str(&s[last..]);
        Ok(out)
    }

    /// The placeholder for a JSON integer that a rule calls PII. It is vaulted as
    /// [`NUMBER_TAG`] followed by its digits, so that restoring gives back a number (a string
    /// holding the same digits is another value, with its own placeholder).
    fn number(&mut self, kind: &Kind, n: u64) -> Result<Option<String>> {
        let t = self
            .rw
            .vault
            .tokenize(self.scope, kind, &format!("{NUMBER_TAG}{n}"), self.origin)?;
        if t.placeholder.kind != *kind || t.placeholder.n == 0 {
            return Err(Error::internal("the vault returned a malformed placeholder"));
        }
        let out = t.placeholder.to_string();
        if self.seen.insert(t.placeholder.clone()) {
            self.report.placeholders.push(t);
        }
        Ok(Some(out))
    }

    /// Adds the placeholders of the final output to the report and returns it.
    fn settle(&mut self, out: String) -> String {
        for p in &self.placed {
            let placeholder = &p.tokenized.placeholder;
            if !self.seen.contains(placeholder) {
                self.seen.insert(placeholder.clone());
                self.report.placeholders.push(Tokenized {
                    placeholder: placeholder.clone(),
                    minted: self.minted.contains(placeholder),
                });
            }
        }
        out
    }

    /// Maps a detector span over the output back to a cut over the original `s`; `None` when
    /// it lies within one inserted placeholder (detection inside a placeholder is not PII).
    fn map_back(&self, s: &str, out: &str, sp: &Span) -> Result<Option<Cut>> {
        if sp.start >= sp.end {
            return Ok(None);
        }
        if sp.end > out.len() || !out.is_char_boundary(sp.start) || !out.is_char_boundary(sp.end) {
            return Err(Error::internal("the detector returned a span outside the text"));
        }
        if !self.rw.detector.kinds().contains(&sp.kind) {
            return Err(Error::internal(format!(
                "the detector returned a span of kind {} it does not declare",
                sp.kind
            )));
        }
        // Output pieces alternate: kept text, placeholder, kept text, ... Kept text after
        // placeholder `j` is a verbatim copy of `s` from the end of its cut.
        let placed = &self.placed;
        let cut = |j: usize| &self.cuts[placed[j].cut];
        // Offset in `s` of an output position inside kept text after placeholder `j` (or before
        // the first one when `j` is None).
        let kept = |j: Option<usize>, pos: usize| -> usize {
            match j {
                None => pos,
                Some(j) => cut(j).end + (pos - placed[j].end),
            }
        };
        // The last placeholder starting at or before `pos`.
        let locate =
            |pos: usize| -> Option<usize> { placed.partition_point(|p| p.start <= pos).checked_sub(1) };
        let (js, je) = (locate(sp.start), locate(sp.end - 1));
        if let (Some(a), Some(b)) = (js, je) {
            if a == b && sp.end <= placed[a].end {
                // Within one placeholder.
                return Ok(None);
            }
        }
        let start = match js {
            Some(j) if sp.start < placed[j].end => cut(j).start,
            j => kept(j, sp.start),
        };
        let end = match je {
            Some(j) if sp.end - 1 < placed[j].end => cut(j).end,
            j => kept(j, sp.end - 1) + 1,
        };
        // Map kept-text ends to char boundaries of `s` (they are, as the same bytes are kept).
        debug_assert!(s.is_char_boundary(start) && s.is_char_boundary(end));
        Ok(Some(Cut {
            start,
            end,
            kind: sp.kind.clone(),
            literal: false,
        }))
    }
}

/// Sorts cuts and makes them disjoint. A cut inside another one is dropped (so a detector match
/// inside placeholder-shaped text doesn't split it); partly overlapping cuts are joined, taking
/// the detector's kind if one of them is a detector match. Any disjoint set of cuts keeps the
/// rewrite lossless; joining keeps every detected byte out of the output.
/// Calls `f` with every string value and member name of the JSON-RPC message (or batch) `msg`
/// that the `*_message` methods read; the members they leave untouched (envelope, correlation
/// tokens, base64 blobs: see [Messages](self#messages)) are skipped.
pub fn for_each_message_text(msg: &Value, f: &mut dyn FnMut(&str)) {
    let walked: std::result::Result<(), std::convert::Infallible> =
        walk::walk_ref(msg, Ctx::message(msg), &mut |visit| {
            match visit {
                Visit::Str(s, _) => f(s),
                Visit::Object(m, _) => m.keys().for_each(|k| f(k)),
            }
            Ok(())
        });
    if let Err(never) = walked {
        match never {}
    }
}

fn merge_cuts(cuts: &mut Vec<Cut>) {
    if cuts.len() < 2 {
        return;
    }
    cuts.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut w = 0;
    for r in 1..cuts.len() {
        if cuts[r].start < cuts[w].end {
            if cuts[r].end > cuts[w].end {
                cuts[w].end = cuts[r].end;
                if cuts[w].literal && !cuts[r].literal {
                    cuts[w].kind = cuts[r].kind.clone();
                    cuts[w].literal = false;
                }
            }
        } else {
            w += 1;
            cuts.swap(w, r);
        }
    }
    cuts.truncate(w + 1);
}

impl Rewriter {
    /// A rewriter over `detector` and `vault`.
    pub fn new(detector: Arc<Detector>, vault: Arc<dyn Vault>) -> Rewriter {
        Rewriter { detector, vault }
    }
    /// The detector.
    pub fn detector(&self) -> &Arc<Detector> {
        &self.detector
    }
    /// The vault.
    pub fn vault(&self) -> &Arc<dyn Vault> {
        &self.vault
    }

    /// Tokenizes one text; returns the rewritten text.
    pub fn tokenize_text(
        &self,
        text: &str,
        scope: &ScopeId,
        origin: &str,
    ) -> Result<(String, TokenizeReport)> {
        self.tokenize_staged(&mut (), scope, origin, |rw, _| {
            let mut pass = TokenizePass::new(rw, scope, origin);
            let out = pass.text(text, None)?.unwrap_or_else(|| text.to_owned());
            Ok((out, pass.report))
        })
    }
    /// Tokenizes every string and object key of `v` in place.
    pub fn tokenize_value(&self, v: &mut Value, scope: &ScopeId, origin: &str) -> Result<TokenizeReport> {
        self.tokenize_staged(v, scope, origin, |rw, v| {
            rw.tokenize_in(v, Ctx::Plain, scope, origin)
        })
    }
    /// Finds and resolves every placeholder in `v` without changing it.
    pub fn plan_restore_value(&self, v: &Value, scope: &ScopeId) -> Result<RestorePlan> {
        self.plan_staged(scope, |rw| rw.plan_in(v, Ctx::Plain, scope))
    }
    /// Applies a plan made by [`plan_restore_value`](Self::plan_restore_value) for this same value.
    ///
    /// Placeholders the plan doesn't hold (a plan made for another value) are left as they are.
    pub fn apply_restore(&self, v: &mut Value, plan: &RestorePlan) {
        self.apply_in(v, Ctx::Plain, plan);
    }
    /// Tokenizes the model-bound parts of a JSON-RPC message (or batch) from server `origin`.
    pub fn tokenize_message(&self, msg: &mut Value, scope: &ScopeId, origin: &str) -> Result<TokenizeReport> {
        self.tokenize_staged(msg, scope, origin, |rw, msg| {
            let ctx = Ctx::message(msg);
            rw.tokenize_in(msg, ctx, scope, origin)
        })
    }
    /// Plans the restore of the server-bound parts of a JSON-RPC message (or batch).
    pub fn plan_restore_message(&self, msg: &Value, scope: &ScopeId) -> Result<RestorePlan> {
        self.plan_staged(scope, |rw| rw.plan_in(msg, Ctx::message(msg), scope))
    }
    /// Applies a plan made by [`plan_restore_message`](Self::plan_restore_message).
    pub fn apply_restore_message(&self, msg: &mut Value, plan: &RestorePlan) {
        let ctx = Ctx::message(msg);
        self.apply_in(msg, ctx, plan);
    }

    fn tokenize_in(&self, v: &mut Value, ctx: Ctx, scope: &ScopeId, origin: &str) -> Result<TokenizeReport> {
        let pass = std::cell::RefCell::new(TokenizePass::new(self, scope, origin));
        let detector = &*self.detector;
        let is_pii = |k: &str, n: u64| detector.number_kind(k, n).is_some();
        // The number's kind is decided again for the value (same key rules, same answer); the
        // key is not at hand there, so use the rules' kind for any integer they flagged.
        let kind = detector.rules_number_kind();
        let mut num = |n: u64| match &kind {
            Some(kind) => pass.borrow_mut().number(kind, n),
            None => Ok(None),
        };
        walk::walk_mut(
            v,
            ctx,
            &mut |s, key| pass.borrow_mut().text(s, key),
            Some(walk::Numbers {
                is_pii: &is_pii,
                f: &mut num,
            }),
        )?;
        Ok(pass.into_inner().report)
    }

    fn plan_in(&self, v: &Value, ctx: Ctx, scope: &ScopeId) -> Result<RestorePlan> {
        let kinds = self.detector.kinds();
        let mut plan = RestorePlan::default();
        walk::walk_ref(v, ctx, &mut |visit| match visit {
            Visit::Str(s, path) => self.plan_text(s, scope, &mut plan, &mut || self.pointer(path, None)),
            Visit::Object(m, path) => {
                let mut any = false;
                for k in m.keys() {
                    if memchr::memchr(b'[', k.as_bytes()).is_some()
                        && scan::placeholders(k, kinds).next().is_some()
                    {
                        any = true;
                        self.plan_text(k, scope, &mut plan, &mut || self.pointer(path, Some(k)))?;
                    }
                }
                if any {
                    // Restoring keys must not merge two members.
                    let mut names: HashSet<std::borrow::Cow<'_, str>> = HashSet::with_capacity(m.len());
                    for k in m.keys() {
                        let name = match restore_text(k, kinds, &plan) {
                            Some(s) => std::borrow::Cow::Owned(s),
                            None => std::borrow::Cow::Borrowed(k.as_str()),
                        };
                        if !names.insert(name) {
                            return Err(Error::bad_input(format!(
                                "restoring placeholders in the member names of the object at {} would make two \
                                 names equal; nothing was forwarded",
                                display_pointer(&self.pointer(path, None))
                            )));
                        }
                    }
                }
                Ok(())
            }
        })?;
        Ok(plan)
    }

    /// Resolves every placeholder in `s` into `plan`; `path` renders where `s` is.
    fn plan_text(
        &self,
        s: &str,
        scope: &ScopeId,
        plan: &mut RestorePlan,
        path: &mut dyn FnMut() -> String,
    ) -> Result<()> {
        if memchr::memchr(b'[', s.as_bytes()).is_none() {
            return Ok(());
        }
        let kinds = self.detector.kinds();
        for f in scan::placeholders(s, kinds) {
            let ph = Placeholder {
                kind: kinds[f.kind].clone(),
                n: f.n,
            };
            if plan.index.contains_key(&ph) {
                continue;
            }
            match self.vault.resolve(scope, &ph)? {
                Some(entry) => {
                    plan.index.insert(ph.clone(), plan.uses.len());
                    plan.uses.push(PlaceholderUse {
                        placeholder: ph,
                        origins: entry.origins,
                        path: path(),
                    });
                    plan.values.push(entry.value);
                }
                None => {
                    return Err(Error::unknown_placeholder(
                        ph.to_string(),
                        display_pointer(&path()),
                    ));
                }
            }
        }
        Ok(())
    }

    fn apply_in(&self, v: &mut Value, ctx: Ctx, plan: &RestorePlan) {
        if plan.is_empty() {
            return;
        }
        let kinds = self.detector.kinds();
        let numbers = plan.values.iter().any(|v| v.expose().starts_with(NUMBER_TAG));
        walk::walk_mut_whole(v, ctx, &mut |s| restore_text(s, kinds, plan), &mut |s| {
            if numbers {
                restore_number(s, kinds, plan)
            } else {
                None
            }
        });
    }

    /// The RFC 6901 pointer for `path` (plus `key`), with detected PII in keys shown as `<KIND>`.
    fn pointer(&self, path: &[Seg<'_>], key: Option<&str>) -> String {
        let mut out = String::new();
        let keys = path
            .iter()
            .map(|s| match s {
                Seg::Key(k) => Err(*k),
                Seg::Index(i) => Ok(*i),
            })
            .chain(key.map(Err));
        for seg in keys {
            out.push('/');
            match seg {
                Ok(i) => write!(out, "{i}").expect("writing to a String cannot fail"),
                Err(k) => self.push_key(&mut out, k),
            }
        }
        out
    }

    fn push_key(&self, out: &mut String, key: &str) {
        let escape = |out: &mut String, s: &str| {
            if !s.bytes().any(|b| b == b'~' || b == b'/') {
                return out.push_str(s);
            }
            for c in s.chars() {
                match c {
                    '~' => out.push_str("~0"),
                    '/' => out.push_str("~1"),
                    c => out.push(c),
                }
            }
        };
        if !self.detector.might_contain(key) {
            return escape(out, key);
        }
        let mut last = 0;
        for sp in self.detector.find(key) {
            if sp.start < last
                || sp.end > key.len()
                || !key.is_char_boundary(sp.start)
                || !key.is_char_boundary(sp.end)
            {
                // A malformed span: show nothing of this key rather than risk showing PII.
                out.truncate(out.rfind('/').map_or(0, |i| i + 1));
                out.push_str("<redacted>");
                return;
            }
            escape(out, &key[last..sp.start]);
            write!(out, "<{}>", sp.kind).expect("writing to a String cannot fail");
            last = sp.end;
        }
        escape(out, &key[last..]);
    }
}

/// The pointer as shown in messages: the root is shown as `/` would be ambiguous, so say so.
fn display_pointer(p: &str) -> String {
    if p.is_empty() {
        "the top level".to_owned()
    } else {
        p.to_owned()
    }
}

/// Starts the vaulted form of a JSON integer a rule calls PII (see [`TokenizePass::number`]).
/// No detected text starts with it.
const NUMBER_TAG: char = '\u{0}';

/// The integer a string value stands for when it is exactly one placeholder minted from an
/// integer (see [`TokenizePass::number`]); `None` otherwise.
fn restore_number(s: &str, kinds: &[Kind], plan: &RestorePlan) -> Option<Value> {
    if !s.starts_with('[') || !s.ends_with(']') {
        return None;
    }
    let f = scan::placeholders(s, kinds).next()?;
    if f.start != 0 || f.end != s.len() {
        return None;
    }
    let ph = Placeholder {
        kind: kinds[f.kind].clone(),
        n: f.n,
    };
    let digits = plan.value_of(&ph)?.expose().strip_prefix(NUMBER_TAG)?;
    digits.parse::<u64>().ok().map(Value::from)
}

/// `s` with every placeholder the plan holds replaced by its value; `None` when none is. A
/// placeholder minted from an integer is its digits here (in text and member names); standing
/// alone as a string value it becomes the integer again ([`restore_number`]).
fn restore_text(s: &str, kinds: &[Kind], plan: &RestorePlan) -> Option<String> {
    memchr::memchr(b'[', s.as_bytes())?;
    let mut out: Option<String> = None;
    let mut last = 0;
    for f in scan::placeholders(s, kinds) {
        let ph = Placeholder {
            kind: kinds[f.kind].clone(),
            n: f.n,
        };
        let Some(value) = plan.value_of(&ph) else {
            continue;
        };
        let o = out.get_or_insert_with(|| String::with_capacity(s.len() + 32));
        o.push_str(&s[last..f.start]);
        o.push_str(value.expose().trim_start_matches(NUMBER_TAG));
        last = f.end;
    }
    let mut o = out?;
    o.push_str(&s[last..]);
    Some(o)
}

#[cfg(test)]
mod tests;

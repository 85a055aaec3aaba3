//! Rewriting against a remote vault in at most one round trip per message.
//!
//! A remote vault ([`Vault::batched`]) answers what its replica already knows without I/O. A
//! message is first rewritten against that alone, through a [`Recorder`] that notes every value
//! (or placeholder) it could not answer and stands in a provisional placeholder for it. When
//! nothing was missing, that rewrite is the result: no round trip. Otherwise everything missing
//! is fetched or minted in one batch and the message is rewritten again through a [`Prepared`]
//! view holding the answers. Should the second rewrite meet a value the first did not (the
//! detector sees text next to a placeholder, and placeholders now have their real numbers), the
//! view asks the vault for it alone: correct, one more round trip, and rare.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Rewriter;
use crate::detect::Kind;
use crate::error::Result;
use crate::vault::{Entry, Placeholder, ScopeId, Secret, Tokenized, Vault};

/// Provisional numbers start here: far above any real one, so they never collide.
const PROVISIONAL: u64 = 1 << 62;

/// A vault view that answers from the remote vault's cache and records the rest.
struct Recorder {
    vault: Arc<dyn Vault>,
    state: Mutex<Recorded>,
}

#[derive(Default)]
struct Recorded {
    /// Values to tokenize, in order, with their provisional numbers.
    values: Vec<(Kind, Secret)>,
    index: HashMap<(Kind, Secret), u64>,
    /// Placeholders to resolve, in order.
    placeholders: Vec<Placeholder>,
}

impl Recorder {
    fn new(vault: Arc<dyn Vault>) -> Recorder {
        Recorder {
            vault,
            state: Mutex::new(Recorded::default()),
        }
    }
    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn take(&self) -> Recorded {
        std::mem::take(&mut *self.lock())
    }
}

impl Vault for Recorder {
    fn tokenize(&self, scope: &ScopeId, kind: &Kind, value: &str, origin: &str) -> Result<Tokenized> {
        let batched = self
            .vault
            .batched()
            .expect("a recorder only wraps a batched vault");
        if let Some(placeholder) = batched.cached(scope, kind, value, origin) {
            return Ok(Tokenized {
                placeholder,
                minted: false,
            });
        }
        let mut st = self.lock();
        let key = (kind.clone(), Secret::new(value));
        let next = PROVISIONAL + st.values.len() as u64;
        let n = *st.index.entry(key.clone()).or_insert(next);
        if n == next {
            st.values.push(key);
        }
        Ok(Tokenized {
            placeholder: Placeholder {
                kind: kind.clone(),
                n,
            },
            minted: true,
        })
    }

    fn resolve(&self, scope: &ScopeId, placeholder: &Placeholder) -> Result<Option<Entry>> {
        let batched = self
            .vault
            .batched()
            .expect("a recorder only wraps a batched vault");
        if let Some(entry) = batched.cached_entry(scope, placeholder) {
            return Ok(Some(entry));
        }
        self.lock().placeholders.push(placeholder.clone());
        // A stand-in that restores to the placeholder's own text: distinct per placeholder, so
        // the planner's checks (two member names restoring to one) behave as with real values.
        Ok(Some(Entry {
            value: Secret::new(&placeholder.to_string()),
            kind: placeholder.kind.clone(),
            origins: Vec::new(),
        }))
    }

    fn sweep(&self) -> usize {
        0
    }
}

/// A vault view holding the answers of one batch, falling back to the vault itself.
struct Prepared {
    vault: Arc<dyn Vault>,
    tokenized: HashMap<(Kind, Secret), Tokenized>,
    resolved: HashMap<Placeholder, Option<Entry>>,
}

impl Vault for Prepared {
    fn tokenize(&self, scope: &ScopeId, kind: &Kind, value: &str, origin: &str) -> Result<Tokenized> {
        if let Some(t) = self.tokenized.get(&(kind.clone(), Secret::new(value))) {
            return Ok(t.clone());
        }
        self.vault.tokenize(scope, kind, value, origin)
    }

    fn resolve(&self, scope: &ScopeId, placeholder: &Placeholder) -> Result<Option<Entry>> {
        if let Some(e) = self.resolved.get(placeholder) {
            return Ok(e.clone());
        }
        if let Some(e) = self
            .vault
            .batched()
            .and_then(|b| b.cached_entry(scope, placeholder))
        {
            return Ok(Some(e));
        }
        self.vault.resolve(scope, placeholder)
    }

    fn sweep(&self) -> usize {
        0
    }
}

impl Rewriter {
    fn over(&self, vault: Arc<dyn Vault>) -> Rewriter {
        Rewriter {
            detector: self.detector.clone(),
            vault,
        }
    }

    /// Runs a tokenizing `pass` over `input` in at most one round trip (see the module docs).
    /// `pass` must be deterministic for the same input and vault answers.
    pub(super) fn tokenize_staged<I: Clone, T>(
        &self,
        input: &mut I,
        scope: &ScopeId,
        origin: &str,
        pass: impl Fn(&Rewriter, &mut I) -> Result<T>,
    ) -> Result<T> {
        let Some(batched) = self.vault.batched() else {
            return pass(self, input);
        };
        let recorder = Arc::new(Recorder::new(self.vault.clone()));
        let mut trial = input.clone();
        let out = pass(&self.over(recorder.clone()), &mut trial)?;
        let recorded = recorder.take();
        if recorded.values.is_empty() {
            *input = trial;
            return Ok(out);
        }
        let answers = batched.tokenize_batch(scope, origin, &recorded.values)?;
        let prepared = Prepared {
            vault: self.vault.clone(),
            tokenized: recorded.values.into_iter().zip(answers).collect(),
            resolved: HashMap::new(),
        };
        pass(&self.over(Arc::new(prepared)), input)
    }

    /// Runs a planning `pass` (which changes nothing) in at most one round trip.
    pub(super) fn plan_staged<T>(&self, scope: &ScopeId, pass: impl Fn(&Rewriter) -> Result<T>) -> Result<T> {
        let Some(batched) = self.vault.batched() else {
            return pass(self);
        };
        let recorder = Arc::new(Recorder::new(self.vault.clone()));
        let out = pass(&self.over(recorder.clone()));
        let recorded = recorder.take();
        if recorded.placeholders.is_empty() {
            return out;
        }
        let answers = batched.resolve_batch(scope, &recorded.placeholders)?;
        let prepared = Prepared {
            vault: self.vault.clone(),
            tokenized: HashMap::new(),
            resolved: recorded.placeholders.into_iter().zip(answers).collect(),
        };
        pass(&self.over(Arc::new(prepared)))
    }
}

//! Exact-value redaction inside the broker: the only place that knows the
//! secret values to look for.
//!
//! Owns a matcher built from the vault's secret cache, rebuilt lazily when
//! the cache changes, and cleared at sign-out. Must never: return a value,
//! only the redacted text and the spans (with rule ids).

use gatehouse_ipc::broker::RedactionSpan;
use gatehouse_policy::{ExactSecrets, ExactSecretsBuilder};

use crate::vault::Vault;

#[derive(Default)]
pub struct Redactor {
    built: Option<(u64, ExactSecrets)>,
}

impl Redactor {
    pub fn clear(&mut self) {
        self.built = None;
    }

    /// Redacts known secret values (then secret-shaped patterns) in `text`.
    pub fn redact(&mut self, vault: &Vault, text: &str) -> (String, Vec<RedactionSpan>) {
        let current =
            matches!(&self.built, Some((generation, _)) if *generation == vault.cache_generation);
        if !current {
            let mut b = ExactSecretsBuilder::default();
            for (reference, value) in vault.cache.entries() {
                b.add_with_reference(&format!("{{{{{reference}}}}}"), value.to_vec());
            }
            self.built = Some((vault.cache_generation, b.build()));
        }
        let exact = &self.built.as_ref().expect("built above").1;
        let out = gatehouse_policy::redact(text, exact);
        let spans = out
            .spans
            .into_iter()
            .map(|s| RedactionSpan {
                start: s.start,
                end: s.end,
                rule_id: s.rule_id,
            })
            .collect();
        (out.text, spans)
    }
}

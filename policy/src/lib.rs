//! placeholder
/// A redacted span (placeholder until the policy crate is built).
#[derive(Debug, Clone)]
pub struct Span;

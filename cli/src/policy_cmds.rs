//! `gatehouse classify`, `gatehouse redact` and `gatehouse bench policy`.
//! (Placeholder: filled by the policy work.)

#[derive(clap::Args, Debug)]
pub struct ClassifyArgs {}

#[derive(clap::Args, Debug)]
pub struct RedactArgs {}

#[derive(clap::Args, Debug)]
pub struct BenchPolicyArgs {}

pub fn run_classify(_args: &ClassifyArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet built")
}

/// `exact_layer` applies the broker's exact-value redaction when signed in
/// (returns `None` when no broker/account is available).
pub type ExactLayer<'a> =
    &'a dyn Fn(&str) -> anyhow::Result<Option<(String, Vec<gatehouse_policy::Span>)>>;

pub fn run_redact(_args: &RedactArgs, _exact_layer: ExactLayer<'_>) -> anyhow::Result<()> {
    anyhow::bail!("not yet built")
}

pub fn run_bench(_args: &BenchPolicyArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet built")
}

//! Classifies many lines at once while working on the rules: each stdin line
//! is `vendor<TAB>command` (corpus escapes `\n`, `\r`, `\x15`, `\x7f`,
//! `\x08` become control characters); prints the class and rule ids.
//! `cargo run -p gatehouse-policy --example probe < cases.tsv`

use gatehouse_policy::{Vendor, classify};
use std::io::BufRead;

fn main() {
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        let Some((v, cmd)) = line.split_once('\t') else {
            continue;
        };
        let Ok(vendor) = v.parse::<Vendor>() else {
            eprintln!("{v:?}: not a vendor");
            continue;
        };
        let cmd = cmd
            .replace("\\n", "\n")
            .replace("\\x15", "\u{15}")
            .replace("\\x7f", "\u{7f}")
            .replace("\\r", "\r")
            .replace("\\x08", "\u{8}");
        let verdict = classify(vendor, &cmd);
        println!(
            "{v:<10} {:<9} {cmd:?}  {:?}",
            verdict.class.as_str(),
            verdict.rule_ids
        );
    }
}

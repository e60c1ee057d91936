//! Keyword abbreviation as network devices do it: a word matches a keyword
//! it is a case-insensitive prefix of; an exact match wins; two or more
//! prefix matches are ambiguous.

/// The result of resolving one typed word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match<'a> {
    /// Exactly one keyword matches.
    One(&'a str),
    /// Several keywords start with the word.
    Ambiguous,
    /// No keyword starts with the word.
    NoMatch,
}

/// Resolves `word` against `keywords`.
pub fn resolve<'a>(word: &str, keywords: &[&'a str]) -> Match<'a> {
    if word.is_empty() {
        return Match::NoMatch;
    }
    let lower = word.to_ascii_lowercase();
    if let Some(k) = keywords.iter().find(|k| k.eq_ignore_ascii_case(&lower)) {
        return Match::One(k);
    }
    let mut found = None;
    for k in keywords {
        if k.len() >= lower.len()
            && k.is_char_boundary(lower.len())
            && k[..lower.len()].eq_ignore_ascii_case(&lower)
        {
            if found.is_some() {
                return Match::Ambiguous;
            }
            found = Some(*k);
        }
    }
    found.map_or(Match::NoMatch, Match::One)
}

/// A word of a command line and its byte offset in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text of the word.
    pub text: String,
    /// Byte offset of its first character in the line.
    pub at: usize,
}

/// Splits a line on ASCII whitespace, keeping offsets.
pub fn words(line: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        if c.is_ascii_whitespace() {
            if let Some(s) = start.take() {
                out.push(Word {
                    text: line[s..i].to_string(),
                    at: s,
                });
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(Word {
            text: line[s..].to_string(),
            at: s,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_prefix_ambiguous() {
        let k = ["show", "shutdown", "ship"];
        assert_eq!(resolve("show", &k), Match::One("show"));
        assert_eq!(resolve("sho", &k), Match::One("show"));
        assert_eq!(resolve("sh", &k), Match::Ambiguous);
        assert_eq!(resolve("x", &k), Match::NoMatch);
        assert_eq!(resolve("SHU", &k), Match::One("shutdown"));
        assert_eq!(resolve("", &k), Match::NoMatch);
    }

    #[test]
    fn words_offsets() {
        let w = words("  sh  run ");
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].at, 2);
        assert_eq!(w[1].text, "run");
        assert_eq!(w[1].at, 6);
    }
}

//! Line editing as a device CLI or a terminal line discipline applies it.
//! Owns the two views of an input with control characters that the
//! classifier reviews: the text after editing (Ctrl-U kills the line, Ctrl-W
//! the previous word, BS/DEL the previous character, a bare CR ends the
//! line) and the text with every control character read as a line end.
//! Must never hide a command: both views are classified, and the caller
//! makes the input at least unknown.

/// True for a control character the classifier must not pass through
/// unnoticed: every C0 control except TAB and LF, DEL, and a CR that is not
/// part of a CRLF line end (or the final byte).
pub(crate) fn has_controls(text: &str) -> bool {
    let b = text.as_bytes();
    b.iter().enumerate().any(|(i, &c)| match c {
        b'\t' | b'\n' => false,
        b'\r' => i + 1 < b.len() && b[i + 1] != b'\n',
        c => c < 0x20 || c == 0x7f,
    })
}

/// The text as the device sees it after its line editing.
pub(crate) fn edited(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut line = String::new();
    for ch in text.chars() {
        match ch {
            '\n' | '\r' => {
                out.push_str(&line);
                out.push('\n');
                line.clear();
            }
            '\u{15}' => line.clear(),
            '\u{8}' | '\u{7f}' => {
                line.pop();
            }
            '\u{17}' => {
                while line.ends_with([' ', '\t']) {
                    line.pop();
                }
                while !line.is_empty() && !line.ends_with([' ', '\t']) {
                    line.pop();
                }
            }
            c if c.is_control() && c != '\t' => line.push(' '),
            c => line.push(c),
        }
    }
    out.push_str(&line);
    out
}

/// The text with every control character (other than TAB) read as a line
/// end: what runs if nothing edits the line and each fragment is a command.
pub(crate) fn fragments(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\t' { '\n' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editing_keys() {
        assert_eq!(edited("show clock\u{15}reload"), "reload");
        assert_eq!(edited("rebooz\u{8}t"), "reboot");
        assert_eq!(
            edited("show clock\u{7f}\u{7f}\u{7f}\u{7f}\u{7f}reload"),
            "show reload"
        );
        assert_eq!(edited("show clock\u{17}ver"), "show ver");
        assert_eq!(edited("show clock\rreload"), "show clock\nreload");
        assert!(has_controls("a\u{15}b"));
        assert!(has_controls("a\rb"));
        assert!(!has_controls("a\r\nb\r"));
        assert!(!has_controls("a\tb\n"));
        assert_eq!(fragments("a\u{15}b"), "a\nb");
    }
}

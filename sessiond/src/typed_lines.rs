//! Lines typed into an interactive shell, for the audit log.
//!
//! Owns: turning the keystrokes a client sends into the lines a person typed
//! (Enter ends a line; Backspace and Ctrl+U edit it; Ctrl+C drops it; escape
//! sequences such as arrow keys are left out), so every line typed in
//! `connect` or the app's terminal gets its own sealed audit row.
//! Must never: drop a line that was entered, or hold more than
//! [`MAX_LINE`] bytes (a longer line is cut and marked).
//!
//! What it records is what was typed, not what the remote shell ran: tab
//! completion and history recall (arrow keys) happen on the device.

/// The longest line kept; longer input is cut with a marker.
pub const MAX_LINE: usize = 4096;

#[derive(Debug, Default)]
pub struct TypedLines {
    buf: Vec<u8>,
    /// Inside an escape sequence (ESC, then `[`/`O` and parameters up to a final byte).
    escape: Option<usize>,
    cut: bool,
}

impl TypedLines {
    /// Feeds keystrokes; returns the lines they completed.
    pub fn feed(&mut self, data: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in data {
            if let Some(n) = self.escape {
                // ESC [ params final (0x40..=0x7e), or ESC O x, or ESC x.
                let done = match n {
                    0 => !matches!(b, b'[' | b'O'),
                    _ => (0x40..=0x7e).contains(&b),
                };
                self.escape = if done { None } else { Some(n + 1) };
                continue;
            }
            match b {
                b'\r' | b'\n' => {
                    if !self.buf.is_empty() || self.cut {
                        let mut line = String::from_utf8_lossy(&self.buf).into_owned();
                        if self.cut {
                            line.push_str(" …(cut)");
                        }
                        lines.push(line);
                    }
                    self.buf.clear();
                    self.cut = false;
                }
                0x1b => self.escape = Some(0),
                0x7f | 0x08 => {
                    self.buf.pop();
                }
                0x15 | 0x03 => {
                    self.buf.clear();
                    self.cut = false;
                }
                b'\t' => self.push(b'\t'),
                b if b < 0x20 => {}
                b => self.push(b),
            }
        }
        lines
    }

    fn push(&mut self, b: u8) {
        if self.buf.len() < MAX_LINE {
            self.buf.push(b);
        } else {
            self.cut = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_typed_with_editing_and_escapes_left_out() {
        let mut t = TypedLines::default();
        assert!(t.feed(b"/system reb").is_empty());
        assert_eq!(t.feed(b"oot\ry\r"), ["/system reboot", "y"]);
        // Backspace, an arrow key, Ctrl+U and Ctrl+C.
        assert_eq!(t.feed(b"shw\x7f\x7fhow ver\x1b[Dsion\n"), ["show version"]);
        assert_eq!(t.feed(b"rm -rf /\x15ls\r"), ["ls"]);
        assert!(t.feed(b"reload\x03\r").is_empty());
        // CR LF is one line; empty lines are not rows.
        assert_eq!(t.feed(b"a\r\n\r\nb\r"), ["a", "b"]);
        let long = vec![b'x'; MAX_LINE + 10];
        let out = t.feed(&[long.as_slice(), b"\r"].concat());
        assert_eq!(out.len(), 1);
        assert!(out[0].ends_with("…(cut)") && out[0].len() < MAX_LINE + 20);
    }
}

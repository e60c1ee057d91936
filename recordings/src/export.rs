//! Export: a verified recording as a plain asciicast v3 file, for
//! `asciinema play` and the asciinema web player.
//! Must never: be called on anything but a [`Recording`] the reader verified.

use std::io::{self, Write};

use crate::format::*;
use crate::reader::Recording;

/// Writes `rec` as a plain asciicast v3 file (header, then one event per line).
pub fn write_asciicast(rec: &Recording, w: &mut impl Write) -> io::Result<()> {
    let mut line = Vec::with_capacity(4096);
    serde_json::to_writer(&mut line, &rec.header)?;
    line.push(b'\n');
    w.write_all(&line)?;
    for e in &rec.events {
        line.clear();
        let (code, data) = e.data.code_and_data();
        push_event_start(&mut line, e.interval_us, code);
        escape_json_into(&mut line, &data);
        line.extend_from_slice(b"\"]\n");
        w.write_all(&line)?;
    }
    Ok(())
}

/// `rec` as a plain asciicast v3 file, which `asciinema play` (3.x) plays.
pub fn export_asciicast(rec: &Recording) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write_asciicast(rec, &mut out);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

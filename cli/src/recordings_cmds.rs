//! Recording commands: `recordings list`, `recordings play`, `recordings export`.
//!
//! Owns finding a recording by id or unique id prefix, asking the broker for
//! its key, and printing, playing or exporting what the reader verified.
//! Must never: ask the broker for anything to list recordings (listing reads
//! only the plaintext metadata line and the chunk headers), write a
//! recording's plaintext anywhere but the terminal or the file the user named
//! (created 0600), or show bytes of a chunk that failed authentication.

use std::fs::OpenOptions;
use std::io::{BufWriter, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use gatehouse_ipc::Layout;
use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse};
use gatehouse_ipc::display::{human_duration, human_size, utc};
use gatehouse_recordings::{EventData, FILE_SUFFIX, ListedRecording, Recording, RecordingReader};
use serde_json::json;
use zeroize::Zeroizing;

use crate::commands::BrokerConn;

#[derive(Subcommand, Debug)]
pub enum RecordingsCommand {
    /// List recordings: id, host, user, kind, start, duration, size and state.
    ///
    /// Every SSH session that sessiond runs is recorded in the profile's
    /// `recordings` directory, sealed in chunks under a key only the broker
    /// holds. Listing needs no key and no broker: it reads each file's
    /// plaintext metadata line (id, host, user, kind, start time, terminal
    /// size) and walks its chunk headers without decrypting anything.
    ///
    /// A recording is "complete" when its final chunk is there. An
    /// "incomplete" one was cut short — sessiond crashed or was killed, or
    /// the session is still running — and everything written before the cut
    /// can still be played. DURATION (complete recordings only) runs from the
    /// start to the file's last write. Times are UTC. Oldest first.
    List {
        /// Print a JSON array instead of a table (full ids, times in Unix ms).
        #[arg(long)]
        json: bool,
    },
    /// Play a recording in this terminal, with its original timing.
    ///
    /// Writes the recorded output to standard output as it happened, pausing
    /// between writes as the session did. The key comes from the broker (you
    /// must be signed in). Every chunk is authenticated before a byte of it
    /// is shown: a recording that was altered, or has chunks from elsewhere,
    /// is refused with the number of the offending chunk.
    ///
    /// Play it in a terminal at least as large as the recorded one (see
    /// `recordings list --json` for cols and rows). Ctrl-C stops playback.
    Play {
        /// Recording id, or any unique prefix of it.
        id: String,
        /// Playback speed: 2 plays twice as fast, 0.5 at half speed.
        #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_speed)]
        speed: f64,
        /// Cap every pause at this many seconds (after --speed), so long
        /// idle stretches pass quickly.
        #[arg(long, value_name = "SECS", value_parser = parse_max_wait)]
        max_wait: Option<f64>,
        /// Print the whole output at once, without pauses.
        #[arg(long, conflicts_with_all = ["speed", "max_wait"])]
        no_wait: bool,
    },
    /// Export a recording as a plain asciicast v3 file.
    ///
    /// Writes the verified recording — header, output, resizes, markers and
    /// the exit status — as an asciicast v3 file that `asciinema play` (3.x)
    /// and the asciinema web player play. The export is NOT encrypted: it
    /// holds everything the session showed. With -o the file is created with
    /// mode 0600 (an existing file is overwritten); without -o it goes to
    /// standard output.
    Export {
        /// Recording id, or any unique prefix of it.
        id: String,
        /// Write to PATH instead of standard output.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
    },
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a positive number")),
    }
}

fn parse_max_wait(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{s:?} is not a number of seconds (0 or more)")),
    }
}

pub fn run(layout: &Layout, cmd: RecordingsCommand) -> anyhow::Result<()> {
    let dir = gatehouse_recordings::recordings_dir(layout);
    match cmd {
        RecordingsCommand::List { json } => list(&dir, json),
        RecordingsCommand::Play {
            id,
            speed,
            max_wait,
            no_wait,
        } => {
            let rec = open(layout, &dir, &id)?;
            let timing = if no_wait {
                Timing::NoWait
            } else {
                Timing::Scaled {
                    speed,
                    max_wait: max_wait.map(Duration::from_secs_f64),
                }
            };
            let mut out = std::io::stdout().lock();
            play(&rec, timing, &mut out, &mut std::thread::sleep)?;
            if out.is_terminal() {
                // The session may have ended mid-color: give the prompt its defaults back.
                out.write_all(b"\x1b[0m")?;
                out.flush()?;
            }
            report_ending(&rec);
            Ok(())
        }
        RecordingsCommand::Export { id, output } => {
            let rec = open(layout, &dir, &id)?;
            match &output {
                Some(path) => {
                    let file = OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut w = BufWriter::new(file);
                    gatehouse_recordings::write_asciicast(&rec, &mut w)
                        .and_then(|()| w.flush())
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "exported recording {} ({} events) to {}",
                        rec.meta.id,
                        rec.events.len(),
                        path.display()
                    );
                }
                None => {
                    let mut w = BufWriter::new(std::io::stdout().lock());
                    gatehouse_recordings::write_asciicast(&rec, &mut w)
                        .and_then(|()| w.flush())
                        .context("writing standard output")?;
                }
            }
            report_ending(&rec);
            Ok(())
        }
    }
}

// ------------------------------------------------------------------ list

fn list(dir: &Path, json: bool) -> anyhow::Result<()> {
    let entries =
        gatehouse_recordings::list(dir).with_context(|| format!("reading {}", dir.display()))?;
    if json {
        let rows: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| match e {
                Ok(l) => json!({
                    "id": l.meta.id,
                    "host": l.meta.host,
                    "user": l.meta.user,
                    "kind": l.meta.kind,
                    "started_ms": l.meta.started_ms,
                    "cols": l.meta.cols,
                    "rows": l.meta.rows,
                    "duration_ms": l.duration_ms(),
                    "size": l.size,
                    "chunks": l.scan.chunks,
                    "complete": l.scan.complete,
                    "path": l.path,
                }),
                Err(u) => json!({ "path": u.path, "error": u.error.to_string() }),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let ok: Vec<&ListedRecording> = entries.iter().filter_map(|e| e.as_ref().ok()).collect();
    if ok.is_empty() && entries.is_empty() {
        println!("no recordings in {}", dir.display());
        return Ok(());
    }
    if !ok.is_empty() {
        print!("{}", table(&ok));
    }
    for u in entries.iter().filter_map(|e| e.as_ref().err()) {
        eprintln!(
            "gatehouse: unreadable recording {}: {}",
            u.path.display(),
            u.error
        );
    }
    Ok(())
}

/// The `recordings list` table, columns padded to their widest cell.
fn table(rows: &[&ListedRecording]) -> String {
    let head = [
        "ID",
        "HOST",
        "USER",
        "KIND",
        "STARTED (UTC)",
        "DURATION",
        "SIZE",
        "STATE",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|l| {
            [
                l.meta.id.chars().take(12).collect(),
                l.meta.host.clone(),
                l.meta.user.clone(),
                l.meta.kind.to_string(),
                utc(l.meta.started_ms),
                l.duration_ms()
                    .map(|ms| human_duration(Duration::from_millis(ms)))
                    .unwrap_or_else(|| "-".into()),
                human_size(l.size),
                if l.scan.complete {
                    "complete".into()
                } else {
                    "incomplete".into()
                },
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |row: &[&str]| {
        let mut l = String::new();
        for (i, (c, w)) in row.iter().zip(width).enumerate() {
            if i + 1 == row.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&head);
    for row in &cells {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

// ------------------------------------------------------------------ open

/// The one recording in `dir` whose id starts with `prefix`.
fn resolve_id(dir: &Path, prefix: &str) -> anyhow::Result<String> {
    let prefix = prefix.to_ascii_lowercase();
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{prefix:?} is not a recording id (hex digits; see `gatehouse recordings list`)");
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("no recordings yet ({} does not exist)", dir.display())
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(FILE_SUFFIX)) else {
            continue;
        };
        if gatehouse_recordings::is_recording_id(id) && id.starts_with(&prefix) {
            found.push(id.to_string());
        }
    }
    found.sort();
    match found.len() {
        0 => bail!("no recording id starts with {prefix:?} (see `gatehouse recordings list`)"),
        1 => Ok(found.remove(0)),
        n => bail!(
            "{n} recordings start with {prefix:?}: {}; give more digits",
            found.join(", ")
        ),
    }
}

/// Asks the broker for the key of recording `id`.
fn recording_key(layout: &Layout, id: &str) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let mut broker = BrokerConn::connect_layout(layout)
        .context("connecting to the broker for the recording key (is it up?)")?;
    match broker
        .ask(BrokerRequest::RecordingKey {
            recording_id: id.to_string(),
        })
        .with_context(|| format!("asking the broker for the key of recording {id}"))?
    {
        BrokerResponse::RecordingKey(secret) => Ok(gatehouse_recordings::recording_key(&secret)?),
        r => bail!("unexpected broker response: {r:?}"),
    }
}

fn open(layout: &Layout, dir: &Path, prefix: &str) -> anyhow::Result<Recording> {
    let id = resolve_id(dir, prefix)?;
    let key = recording_key(layout, &id)?;
    let path = gatehouse_recordings::recording_path(dir, &id);
    RecordingReader::open(&path, &key).with_context(|| format!("recording {id}"))
}

/// Tells (on stderr) how a recording ended, when that is worth saying.
fn report_ending(rec: &Recording) {
    let exit = rec.events.iter().rev().find_map(|e| match e.data {
        EventData::Exit(n) => Some(n),
        _ => None,
    });
    if let Some(n) = exit
        && n != 0
    {
        eprintln!("the session exited with status {n}");
    }
    if !rec.complete {
        eprintln!(
            "gatehouse: recording {} is incomplete (crashed or still running): {} chunk(s) \
             before the cut were verified and shown{}",
            rec.meta.id,
            rec.chunks,
            if rec.trailing_bytes > 0 {
                format!(
                    "; {} byte(s) after them do not form a whole chunk",
                    rec.trailing_bytes
                )
            } else {
                String::new()
            }
        );
    }
}

// ------------------------------------------------------------------ play

#[derive(Debug, Clone, Copy)]
enum Timing {
    NoWait,
    Scaled {
        speed: f64,
        max_wait: Option<Duration>,
    },
}

/// Writes the output events of `rec` to `out`, sleeping (through `sleep`)
/// for the time since the previous output, scaled and capped per `timing`.
fn play(
    rec: &Recording,
    timing: Timing,
    out: &mut impl Write,
    sleep: &mut impl FnMut(Duration),
) -> std::io::Result<()> {
    let mut pending_us: u64 = 0;
    for e in &rec.events {
        pending_us = pending_us.saturating_add(e.interval_us);
        let EventData::Output(text) = &e.data else {
            continue;
        };
        if let Timing::Scaled { speed, max_wait } = timing {
            let mut pause = Duration::from_secs_f64(pending_us as f64 / 1e6 / speed);
            if let Some(cap) = max_wait {
                pause = pause.min(cap);
            }
            if !pause.is_zero() {
                out.flush()?;
                sleep(pause);
            }
        }
        pending_us = 0;
        out.write_all(text.as_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_recordings::{RecordingKind, RecordingMeta, RecordingOptions, RecordingWriter};

    fn key() -> Zeroizing<[u8; 32]> {
        Zeroizing::new([42u8; 32])
    }

    fn record(dir: &Path, host: &str, finish: bool) -> PathBuf {
        let id = gatehouse_recordings::new_recording_id().expect("id");
        let meta = RecordingMeta {
            id,
            host: host.into(),
            user: "admin".into(),
            kind: RecordingKind::Shell,
            started_ms: 1_767_225_600_000, // 2026-01-01 00:00:00 UTC
            cols: 80,
            rows: 24,
        };
        let mut w =
            RecordingWriter::create(dir, key(), meta, RecordingOptions::default()).expect("create");
        w.output(b"hello\r\n").expect("o");
        w.resize(100, 30).expect("r");
        w.output(b"bye\r\n").expect("o");
        let path = w.path().to_path_buf();
        if finish {
            w.exit(Some(0)).expect("x");
            w.finish().expect("finish");
        }
        path
    }

    fn id_of(path: &Path) -> String {
        let name = path.file_name().expect("name").to_string_lossy();
        name.trim_end_matches(FILE_SUFFIX).to_string()
    }

    #[test]
    fn ids_resolve_by_unique_prefix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = id_of(&record(dir.path(), "a", true));
        let b = id_of(&record(dir.path(), "b", true));
        assert_eq!(resolve_id(dir.path(), &a).expect("full"), a);
        assert_eq!(resolve_id(dir.path(), &a.to_uppercase()).expect("case"), a);
        let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
        let short = &a[..common + 1];
        assert_eq!(resolve_id(dir.path(), short).expect("prefix"), a);
        if common > 0 {
            let e = resolve_id(dir.path(), &a[..common]).expect_err("ambiguous");
            assert!(e.to_string().contains("2 recordings start with"), "{e}");
        }
        let none = "0123456789abcdef"
            .chars()
            .find(|c| !a.starts_with(*c) && !b.starts_with(*c))
            .expect("a free first digit");
        assert!(resolve_id(dir.path(), &none.to_string()).is_err());
        assert!(resolve_id(dir.path(), "../x").is_err());
        assert!(resolve_id(dir.path(), "").is_err());
        assert!(resolve_id(&dir.path().join("missing"), "ab").is_err());
    }

    #[test]
    fn table_shows_state_and_duration() {
        let dir = tempfile::tempdir().expect("tempdir");
        record(dir.path(), "core-sw1", true);
        record(dir.path(), "edge-rtr", false);
        let entries = gatehouse_recordings::list(dir.path()).expect("list");
        let ok: Vec<&ListedRecording> = entries.iter().filter_map(|e| e.as_ref().ok()).collect();
        let t = table(&ok);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("ID "), "{t}");
        assert_eq!(lines.len(), 3, "{t}");
        let sw = lines.iter().find(|l| l.contains("core-sw1")).expect("sw");
        assert!(
            sw.ends_with("complete") && !sw.ends_with("incomplete"),
            "{sw}"
        );
        assert!(sw.contains("2026-01-01 00:00:00"), "{sw}");
        let rtr = lines.iter().find(|l| l.contains("edge-rtr")).expect("rtr");
        assert!(rtr.ends_with("incomplete"), "{rtr}");
        assert!(rtr.contains(" - "), "no duration while incomplete: {rtr}");
    }

    #[test]
    fn play_writes_output_with_scaled_capped_pauses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = record(dir.path(), "h", true);
        let mut rec = RecordingReader::open(&path, &key()).expect("open");
        // Known timing: 2 s before "hello", 1 s resize, 3 s before "bye".
        rec.events[0].interval_us = 2_000_000;
        rec.events[1].interval_us = 1_000_000;
        rec.events[2].interval_us = 3_000_000;
        let mut out = Vec::new();
        let mut slept = Vec::new();
        let timing = Timing::Scaled {
            speed: 2.0,
            max_wait: None,
        };
        play(&rec, timing, &mut out, &mut |d| slept.push(d)).expect("play");
        assert!(out.starts_with(b"hello\r\nbye\r\n"));
        assert_eq!(
            slept,
            vec![Duration::from_secs(1), Duration::from_secs(2)],
            "the resize's time counts toward the next output"
        );
        let mut slept = Vec::new();
        let timing = Timing::Scaled {
            speed: 1.0,
            max_wait: Some(Duration::from_millis(1500)),
        };
        play(&rec, timing, &mut Vec::new(), &mut |d| slept.push(d)).expect("play");
        assert_eq!(slept, vec![Duration::from_millis(1500); 2]);
        let mut slept = Vec::new();
        let mut out = Vec::new();
        play(&rec, Timing::NoWait, &mut out, &mut |d| slept.push(d)).expect("play");
        assert!(slept.is_empty());
        assert_eq!(out, b"hello\r\nbye\r\n");
    }

    #[test]
    fn export_of_an_incomplete_recording_is_still_valid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = record(dir.path(), "h", false);
        let rec = RecordingReader::open(&path, &key()).expect("open");
        assert!(!rec.complete);
        let mut out = Vec::new();
        gatehouse_recordings::write_asciicast(&rec, &mut out).expect("export");
        let text = String::from_utf8(out).expect("utf8");
        let mut lines = text.lines();
        let header: serde_json::Value =
            serde_json::from_str(lines.next().expect("header")).expect("json");
        assert_eq!(header["version"], 3);
        let events: Vec<serde_json::Value> = lines
            .map(|l| serde_json::from_str(l).expect("event"))
            .collect();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1][1], "r");
        assert_eq!(events[1][2], "100x30");
    }
}

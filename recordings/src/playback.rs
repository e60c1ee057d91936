//! Playback, independent of any widget: a verified recording taken apart
//! into timed steps ([`Opened`]), and [`Playback`], the state machine from a
//! time on the timeline to the output fed so far to a [`TermSink`] (the
//! app's terminal emulator, or anything else that draws a terminal).
//! Must never: hold output of an unverified chunk (it is built only from a
//! [`Recording`] the reader verified), or show output through `Debug`
//! (output buffers are zeroized on drop).

use std::sync::Arc;
use std::time::Duration;

use zeroize::{Zeroize, Zeroizing};

use crate::format::EventData;
use crate::reader::Recording;

/// Something a terminal widget is fed with during playback.
pub trait TermSink {
    /// Bytes the device sent.
    fn feed(&mut self, bytes: &[u8]);
    /// The terminal was resized.
    fn resize(&mut self, cols: u16, rows: u16);
    /// Back to a blank screen of this size (seeking backwards replays from the start).
    fn reset(&mut self, cols: u16, rows: u16);
}

/// One step of a recording, at its time from the start.
pub enum Step {
    Output(Zeroizing<Vec<u8>>),
    Resize { cols: u16, rows: u16 },
}

/// A verified, decrypted recording, ready to play. Its output is zeroized
/// when dropped; `Debug` shows only its shape.
pub struct Opened {
    pub id: String,
    pub host: String,
    pub cols: u16,
    pub rows: u16,
    /// (µs from the start, step), in order.
    pub steps: Vec<(u64, Step)>,
    /// (µs from the start, label).
    pub markers: Vec<(u64, String)>,
    pub duration_us: u64,
    pub complete: bool,
    pub exit: Option<u32>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("id", &self.id)
            .field("steps", &self.steps.len())
            .field("markers", &self.markers.len())
            .field("duration_us", &self.duration_us)
            .finish_non_exhaustive()
    }
}

impl Opened {
    /// Takes a verified recording apart (its output strings are moved, not copied).
    pub fn from_recording(rec: Recording) -> Opened {
        let mut t = 0u64;
        let mut steps = Vec::new();
        let mut markers = Vec::new();
        let mut exit = None;
        for e in rec.events {
            t = t.saturating_add(e.interval_us);
            match e.data {
                EventData::Output(s) => {
                    steps.push((t, Step::Output(Zeroizing::new(s.into_bytes()))))
                }
                EventData::Resize { cols, rows } => steps.push((t, Step::Resize { cols, rows })),
                EventData::Marker(m) => markers.push((t, m)),
                EventData::Exit(n) => exit = Some(n),
                EventData::Input(mut s) => s.zeroize(),
                EventData::Other { mut data, .. } => data.zeroize(),
            }
        }
        Opened {
            id: rec.meta.id,
            host: rec.meta.host,
            cols: rec.meta.cols,
            rows: rec.meta.rows,
            steps,
            markers,
            duration_us: t,
            complete: rec.complete,
            exit,
        }
    }
}

/// Where playback is: which steps have been fed to the sink for the
/// current position. Independent of any widget.
#[derive(Debug)]
pub struct Playback {
    pub rec: Arc<Opened>,
    /// µs from the start.
    pub position_us: u64,
    /// Steps `..fed` have been fed.
    pub fed: usize,
    pub playing: bool,
    pub speed: f64,
}

impl Playback {
    pub fn new(rec: Arc<Opened>, sink: &mut impl TermSink) -> Playback {
        sink.reset(rec.cols, rec.rows);
        Playback {
            rec,
            position_us: 0,
            fed: 0,
            playing: false,
            speed: 1.0,
        }
    }

    /// Moves to `to_us` (clamped to the recording) and feeds the sink what
    /// the screen must show there: forward feeds the steps in between,
    /// backward replays from a blank screen.
    pub fn seek(&mut self, to_us: u64, sink: &mut impl TermSink) {
        let to = to_us.min(self.rec.duration_us);
        if to < self.position_us {
            sink.reset(self.rec.cols, self.rec.rows);
            self.fed = 0;
        }
        while let Some((t, step)) = self.rec.steps.get(self.fed) {
            if *t > to {
                break;
            }
            match step {
                Step::Output(b) => sink.feed(b),
                Step::Resize { cols, rows } => sink.resize(*cols, *rows),
            }
            self.fed += 1;
        }
        self.position_us = to;
        if to >= self.rec.duration_us {
            self.playing = false;
        }
    }

    /// Advances by `wall` of real time at the current speed (while playing).
    pub fn advance(&mut self, wall: Duration, sink: &mut impl TermSink) {
        if !self.playing {
            return;
        }
        let dt = (wall.as_secs_f64() * self.speed * 1e6) as u64;
        self.seek(self.position_us.saturating_add(dt), sink);
    }
}

//! Recordings: the list of session recordings and their playback with a
//! timeline (play/pause, seek slider, speed, the recording's markers).
//!
//! Owns: listing (plaintext metadata and chunk headers only, through
//! `gatehouse_recordings::list`, as `gatehouse recordings list`),
//! opening one (the key from the broker's `RecordingKey`, the ui role's
//! right; every chunk authenticated by `RecordingReader`, as `recordings
//! play`), and [`Playback`]: the state machine from a time on the timeline
//! to the output fed so far, independent of the terminal widget it feeds
//! (anything that implements [`TermSink`]: the app feeds the terminal
//! tabs' emulator, [`TermGrid`], so playback shows colours and full-screen
//! programs as they were).
//!
//! Must never: show bytes of a chunk that failed authentication (the reader
//! refuses the recording), write a decrypted recording anywhere, keep it
//! after sign-out ([`Recordings::clear`] drops it; its output buffers are
//! zeroized on drop — the emulator's cells, like a terminal tab's, are
//! dropped but not wiped), or print it through `Debug`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse};
use gatehouse_ipc::display::{human_duration, human_size, utc};
use gatehouse_recordings::RecordingReader;
use iced::keyboard::{Key, key::Named};
use iced::widget::{button, canvas, column, container, row, scrollable, slider, text};
use iced::{Element, Fill, FillPortion, Length};

use crate::app::Effect;
use crate::daemons::{self, Daemons};
use crate::term_grid::{GridEvent, TermGrid};

/// Playback speeds offered.
pub const SPEEDS: [f64; 5] = [0.5, 1.0, 2.0, 4.0, 8.0];

/// One recording in the list (plaintext metadata only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub host: String,
    pub user: String,
    pub kind: String,
    pub started_ms: u64,
    pub duration_ms: Option<u64>,
    pub size: u64,
    pub complete: bool,
}

/// What the list call found.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Newest first.
    pub rows: Vec<Listed>,
    /// Files that could not be read, with why.
    pub unreadable: Vec<String>,
}

pub use gatehouse_recordings::playback::{Opened, Playback, Step, TermSink};

#[derive(Debug, Default)]
pub struct Recordings {
    pub loading: bool,
    pub listing: Option<Listing>,
    pub error: Option<String>,
    /// The recording being opened (its id).
    pub opening: Option<String>,
    pub playback: Option<Playback>,
    /// The playback screen: the same terminal emulator as the terminal tabs.
    pub screen: TermGrid,
    /// The list row chosen with the keyboard (Up/Down, Enter plays it).
    pub selected: usize,
    last_tick: Option<Instant>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Refresh,
    Open(String),
    Close,
    PlayPause,
    /// Seek to this many ms from the start.
    Seek(f64),
    Speed(f64),
    /// Keyboard: seek by this many seconds (negative = back).
    SeekBy(f64),
    /// Keyboard: the next (true) or previous marker.
    Marker(bool),
    /// Keyboard: a faster (true) or slower speed.
    SpeedStep(bool),
    /// Keyboard: the next (true) or previous recording in the list.
    Step(bool),
    /// Keyboard: play the selected recording.
    OpenSelected,
    /// Scrolling and selecting on the playback screen (its size is the
    /// recording's: a resize of the widget changes nothing).
    Grid(GridEvent),
}

/// The keys of this screen (no text field here, so plain keys are free):
/// in the list Up/Down and Enter, R refresh; while playing Space
/// play/pause, Left/Right ±5 s, Home/End, [ and ] markers, - and + speed,
/// Esc back to the list.
pub fn key(r: &Recordings, key: &Key) -> Option<Message> {
    let playing = r.playback.is_some();
    match key {
        Key::Named(Named::Space) if playing => Some(Message::PlayPause),
        Key::Named(Named::ArrowLeft) if playing => Some(Message::SeekBy(-5.0)),
        Key::Named(Named::ArrowRight) if playing => Some(Message::SeekBy(5.0)),
        Key::Named(Named::Home) if playing => Some(Message::Seek(0.0)),
        Key::Named(Named::End) if playing => Some(Message::Seek(f64::MAX)),
        Key::Named(Named::Escape) if playing => Some(Message::Close),
        Key::Named(Named::ArrowUp) if !playing => Some(Message::Step(false)),
        Key::Named(Named::ArrowDown) if !playing => Some(Message::Step(true)),
        Key::Named(Named::Enter) if !playing => Some(Message::OpenSelected),
        Key::Character(c) => match c.as_str() {
            "[" if playing => Some(Message::Marker(false)),
            "]" if playing => Some(Message::Marker(true)),
            "-" if playing => Some(Message::SpeedStep(false)),
            "+" | "=" if playing => Some(Message::SpeedStep(true)),
            "r" if !playing => Some(Message::Refresh),
            _ => None,
        },
        _ => None,
    }
}

/// One-shot daemon calls this screen asks for (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {
    List,
    Open(String),
}

#[derive(Debug, Clone)]
pub enum Reply {
    Listed(Result<Listing, String>),
    Opened {
        id: String,
        result: Result<Arc<Opened>, String>,
    },
}

fn dir(d: &Daemons) -> PathBuf {
    gatehouse_recordings::recordings_dir(d.layout())
}

/// Runs one [`Call`].
pub async fn run(d: Daemons, c: Call) -> Reply {
    match c {
        Call::List => Reply::Listed(
            daemons::on_files(&d, |l| list(&gatehouse_recordings::recordings_dir(l)))
                .await
                .and_then(|r| r),
        ),
        Call::Open(id) => Reply::Opened {
            result: open(&d, &id).await.map(Arc::new),
            id,
        },
    }
}

/// Every recording's metadata (no key, no broker), newest first.
pub fn list(dir: &std::path::Path) -> Result<Listing, String> {
    let entries =
        gatehouse_recordings::list(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    let mut out = Listing::default();
    for e in entries {
        match e {
            Ok(l) => out.rows.push(Listed {
                duration_ms: l.duration_ms(),
                id: l.meta.id,
                host: l.meta.host,
                user: l.meta.user,
                kind: l.meta.kind.to_string(),
                started_ms: l.meta.started_ms,
                size: l.size,
                complete: l.scan.complete,
            }),
            Err(u) => out
                .unreadable
                .push(format!("{}: {}", u.path.display(), u.error)),
        }
    }
    out.rows.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
    Ok(out)
}

/// Asks the broker for the key of recording `id` and reads it (every chunk
/// authenticated).
pub async fn open(d: &Daemons, id: &str) -> Result<Opened, String> {
    if !gatehouse_recordings::is_recording_id(id) {
        return Err(format!("{id:?} is not a recording id"));
    }
    let secret = match daemons::broker_call(
        d,
        BrokerRequest::RecordingKey {
            recording_id: id.to_string(),
        },
    )
    .await
    {
        Ok(BrokerResponse::RecordingKey(s)) => s,
        Ok(r) => return Err(format!("unexpected broker answer {r:?}")),
        Err(e) => return Err(format!("the broker gave no key: {e}")),
    };
    let key = gatehouse_recordings::recording_key(&secret).map_err(|e| e.to_string())?;
    drop(secret);
    let path = gatehouse_recordings::recording_path(&dir(d), id);
    tokio::task::spawn_blocking(move || {
        RecordingReader::open(&path, &key)
            .map(Opened::from_recording)
            .map_err(|e| format!("recording {}: {e}", path.display()))
    })
    .await
    .map_err(|e| e.to_string())?
}

fn clock(us: u64) -> String {
    let s = us / 1_000_000;
    format!("{}:{:02}.{}", s / 60, s % 60, (us / 100_000) % 10)
}

impl Recordings {
    /// The tab was opened: list once.
    pub fn shown(&mut self) -> Vec<Effect> {
        if self.listing.is_none() && !self.loading {
            self.update(Message::Refresh)
        } else {
            vec![]
        }
    }

    /// Whether playback is running: the shell's clock must tick for it.
    pub fn needs_clock(&self) -> bool {
        self.playback.as_ref().is_some_and(|p| p.playing)
    }

    /// The clock ticked: playback advances by the real time since the last tick.
    pub fn tick(&mut self, now: Instant) {
        let last = self.last_tick.replace(now);
        if let (Some(p), Some(last)) = (&mut self.playback, last) {
            p.advance(now.saturating_duration_since(last), &mut self.screen);
        }
    }

    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {
            Message::Refresh => {
                self.loading = true;
                return vec![Effect::Call(daemons::Call::Recordings(Call::List))];
            }
            Message::Open(id) => {
                self.opening = Some(id.clone());
                self.error = None;
                return vec![Effect::Call(daemons::Call::Recordings(Call::Open(id)))];
            }
            Message::Grid(e) => match e {
                GridEvent::Scroll(n) => self.screen.scroll(n),
                GridEvent::Page(up) => self.screen.page(up),
                GridEvent::SelectStart { line, col } => self.screen.select_start(line, col),
                GridEvent::SelectTo { line, col } => self.screen.select_to(line, col),
                GridEvent::Paste(_) | GridEvent::Resize { .. } => {}
            },
            Message::Close => {
                self.playback = None;
                self.screen = TermGrid::default();
            }
            Message::PlayPause => {
                if let Some(p) = &mut self.playback {
                    if !p.playing && p.position_us >= p.rec.duration_us {
                        p.seek(0, &mut self.screen);
                    }
                    p.playing = !p.playing;
                    // The next tick anchors the clock: time before Play does not count.
                    self.last_tick = None;
                }
            }
            Message::Seek(ms) => {
                if let Some(p) = &mut self.playback {
                    p.seek((ms.max(0.0) * 1000.0) as u64, &mut self.screen);
                }
            }
            Message::Speed(s) => {
                if let Some(p) = &mut self.playback {
                    p.speed = s;
                }
            }
            Message::SeekBy(secs) => {
                if let Some(p) = &mut self.playback {
                    let to = p.position_us as f64 + secs * 1e6;
                    p.seek(to.max(0.0) as u64, &mut self.screen);
                }
            }
            Message::Marker(next) => {
                if let Some(p) = &mut self.playback {
                    let at = p.position_us;
                    let t = if next {
                        p.rec.markers.iter().map(|m| m.0).find(|t| *t > at)
                    } else {
                        p.rec.markers.iter().rev().map(|m| m.0).find(|t| *t < at)
                    };
                    if let Some(t) = t {
                        p.seek(t, &mut self.screen);
                    }
                }
            }
            Message::SpeedStep(up) => {
                if let Some(p) = &mut self.playback {
                    let i = SPEEDS
                        .iter()
                        .position(|s| (*s - p.speed).abs() < f64::EPSILON)
                        .unwrap_or(1);
                    let j = if up {
                        (i + 1).min(SPEEDS.len() - 1)
                    } else {
                        i.saturating_sub(1)
                    };
                    p.speed = SPEEDS[j];
                }
            }
            Message::Step(down) => {
                let n = self.listing.as_ref().map(|l| l.rows.len()).unwrap_or(0);
                if n > 0 {
                    self.selected = if down {
                        (self.selected + 1).min(n - 1)
                    } else {
                        self.selected.saturating_sub(1)
                    };
                }
            }
            Message::OpenSelected => {
                let id = self
                    .listing
                    .as_ref()
                    .and_then(|l| l.rows.get(self.selected))
                    .map(|r| r.id.clone());
                if let (Some(id), None) = (id, &self.opening) {
                    return self.update(Message::Open(id));
                }
            }
        }
        vec![]
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {
            Reply::Listed(l) => {
                self.loading = false;
                match l {
                    Ok(l) => {
                        self.selected = self.selected.min(l.rows.len().saturating_sub(1));
                        self.listing = Some(l);
                        self.error = None;
                    }
                    Err(e) => self.error = Some(e),
                }
            }
            Reply::Opened { id, result } => {
                if self.opening.as_deref() != Some(id.as_str()) {
                    return vec![];
                }
                self.opening = None;
                match result {
                    Ok(rec) => {
                        self.screen = TermGrid::default();
                        self.playback = Some(Playback::new(rec, &mut self.screen));
                    }
                    Err(e) => self.error = Some(e),
                }
            }
        }
        vec![]
    }

    /// Forgets everything shown (sign-out): the decrypted recording and the
    /// screen are dropped (zeroized).
    pub fn clear(&mut self) {
        *self = Recordings::default();
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut col = column![].spacing(8);
        if let Some(e) = &self.error {
            col = col.push(text(e.clone()).style(text::danger));
        }
        match &self.playback {
            Some(p) => col = col.push(self.player(p)),
            None => col = col.push(self.list_view()),
        }
        col.into()
    }

    fn list_view(&self) -> Element<'_, Message> {
        let mut col = column![
            row![
                text("Recordings").size(18),
                iced::widget::space::horizontal(),
                button(text(if self.loading {
                    "Loading…"
                } else {
                    "Refresh"
                }))
                .on_press_maybe((!self.loading).then_some(Message::Refresh)),
            ]
            .align_y(iced::Center)
        ]
        .spacing(6);
        col = col.push(
            text("Up/Down choose · Enter play · R refresh")
                .size(12)
                .style(text::secondary),
        );
        let Some(l) = &self.listing else {
            return col.into();
        };
        for u in &l.unreadable {
            col = col.push(
                text(format!("unreadable: {u}"))
                    .size(13)
                    .style(text::danger),
            );
        }
        let mut list = column![].spacing(3);
        for (i, r) in l.rows.iter().enumerate() {
            let state = if r.complete { "complete" } else { "incomplete" };
            let label = if self.opening.as_deref() == Some(r.id.as_str()) {
                "Opening…".to_string()
            } else {
                format!("Play {}", &r.id[..r.id.len().min(12)])
            };
            list = list.push(
                row![
                    button(text(label).size(13).font(crate::MONO))
                        .style(if i == self.selected {
                            button::primary
                        } else {
                            button::secondary
                        })
                        .on_press_maybe(self.opening.is_none().then(|| Message::Open(r.id.clone())))
                        .width(FillPortion(3)),
                    text(format!("{} ({})", r.host, r.user))
                        .size(13)
                        .width(FillPortion(3)),
                    text(r.kind.clone()).size(13).width(FillPortion(1)),
                    text(utc(r.started_ms)).size(13).width(FillPortion(3)),
                    text(
                        r.duration_ms
                            .map(|ms| human_duration(Duration::from_millis(ms)))
                            .unwrap_or_else(|| "-".into())
                    )
                    .size(13)
                    .width(FillPortion(1)),
                    text(human_size(r.size)).size(13).width(FillPortion(1)),
                    text(state).size(13).width(FillPortion(1)),
                ]
                .spacing(6)
                .align_y(iced::Center),
            );
        }
        if l.rows.is_empty() && l.unreadable.is_empty() {
            list = list.push(text(
                "No recordings yet: every SSH session sessiond runs is recorded.",
            ));
        }
        col.push(scrollable(list).height(Fill)).into()
    }

    fn player<'a>(&'a self, p: &'a Playback) -> Element<'a, Message> {
        let rec = &p.rec;
        let dur_ms = (rec.duration_us / 1000) as f64;
        let mut speeds = row![text("Speed").size(13)]
            .spacing(4)
            .align_y(iced::Center);
        for s in SPEEDS {
            let b = button(text(format!("{s}x")).size(13));
            speeds = speeds.push(if (p.speed - s).abs() < f64::EPSILON {
                b
            } else {
                b.style(button::secondary).on_press(Message::Speed(s))
            });
        }
        let mut markers = row![].spacing(4);
        for (t, label) in &rec.markers {
            markers = markers.push(
                button(text(format!("◆ {label} @ {}", clock(*t))).size(12))
                    .style(button::secondary)
                    .on_press(Message::Seek((*t / 1000) as f64)),
            );
        }
        column![
            row![
                text(format!(
                    "Recording {} · {} · {}{}",
                    &rec.id[..rec.id.len().min(12)],
                    rec.host,
                    if rec.complete {
                        "complete"
                    } else {
                        "incomplete (cut short)"
                    },
                    rec.exit.map(|n| format!(" · exit {n}")).unwrap_or_default()
                ))
                .size(15),
                iced::widget::space::horizontal(),
                button(text("Back to list"))
                    .style(button::secondary)
                    .on_press(Message::Close),
            ]
            .align_y(iced::Center),
            row![
                button(text(if p.playing { "Pause" } else { "Play" })).on_press(Message::PlayPause),
                text(format!(
                    "{} / {}",
                    clock(p.position_us),
                    clock(rec.duration_us)
                ))
                .font(crate::MONO)
                .size(13),
                speeds,
            ]
            .spacing(10)
            .align_y(iced::Center),
            text(
                "Space play/pause · Left/Right ±5 s · Home/End · [ ] markers · - + speed · Esc back"
            )
            .size(12)
            .style(text::secondary),
            slider(
                0.0..=dur_ms.max(1.0),
                (p.position_us / 1000) as f64,
                Message::Seek
            )
            .step(10.0),
            canvas(Timeline {
                duration_us: rec.duration_us,
                position_us: p.position_us,
                markers: rec.markers.iter().map(|(t, _)| *t).collect(),
            })
            .width(Fill)
            .height(Length::Fixed(12.0)),
            scrollable(markers.wrap()).height(Length::Shrink),
            container(self.screen.view(Message::Grid))
                .padding(6)
                .width(Fill)
                .height(Fill)
                .clip(true)
                .style(container::dark),
        ]
        .spacing(6)
        .into()
    }
}

/// The strip under the slider: the recording's markers and the position.
struct Timeline {
    duration_us: u64,
    position_us: u64,
    markers: Vec<u64>,
}

impl<Message> canvas::Program<Message> for Timeline {
    type State = ();

    fn draw(
        &self,
        _state: &(),
        renderer: &iced::Renderer,
        theme: &iced::Theme,
        bounds: iced::Rectangle,
        _cursor: iced::mouse::Cursor,
    ) -> Vec<canvas::Geometry> {
        let mut frame = canvas::Frame::new(renderer, bounds.size());
        let palette = theme.extended_palette();
        frame.fill_rectangle(
            iced::Point::new(0.0, bounds.height / 2.0 - 1.0),
            iced::Size::new(bounds.width, 2.0),
            palette.background.strong.color,
        );
        let x = |t: u64| {
            if self.duration_us == 0 {
                0.0
            } else {
                (t as f64 / self.duration_us as f64) as f32 * (bounds.width - 2.0)
            }
        };
        for m in &self.markers {
            frame.fill_rectangle(
                iced::Point::new(x(*m), 0.0),
                iced::Size::new(3.0, bounds.height),
                palette.danger.base.color,
            );
        }
        frame.fill_rectangle(
            iced::Point::new(x(self.position_us), 2.0),
            iced::Size::new(2.0, bounds.height - 4.0),
            palette.primary.base.color,
        );
        vec![frame.into_geometry()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn opened() -> Arc<Opened> {
        Arc::new(Opened {
            id: "ab".into(),
            host: "h".into(),
            cols: 20,
            rows: 4,
            steps: vec![
                (1_000_000, Step::Output(Zeroizing::new(b"one\r\n".to_vec()))),
                (2_000_000, Step::Output(Zeroizing::new(b"two\r\n".to_vec()))),
                (3_000_000, Step::Output(Zeroizing::new(b"three".to_vec()))),
            ],
            markers: vec![(2_000_000, "mark".into())],
            duration_us: 3_000_000,
            complete: true,
            exit: Some(0),
        })
    }

    #[test]
    fn seeking_feeds_exactly_the_steps_up_to_the_position() {
        let mut s = TermGrid::default();
        let mut p = Playback::new(opened(), &mut s);
        p.seek(1_500_000, &mut s);
        assert_eq!(s.text().trim_end(), "one");
        p.seek(9_000_000, &mut s);
        assert_eq!(s.text().trim_end(), "one\ntwo\nthree");
        assert_eq!(p.position_us, 3_000_000);
        // Backwards: a fresh screen, replayed.
        p.seek(2_000_000, &mut s);
        assert_eq!(s.text().trim_end(), "one\ntwo");
        p.seek(0, &mut s);
        assert_eq!(s.text().trim_end(), "");
        p.playing = true;
        p.speed = 2.0;
        p.advance(Duration::from_millis(600), &mut s);
        assert_eq!(p.position_us, 1_200_000);
        assert_eq!(s.text().trim_end(), "one");
        p.advance(Duration::from_secs(5), &mut s);
        assert!(!p.playing, "stops at the end");
    }

    #[test]
    fn the_clock_runs_only_while_playing() {
        let mut r = Recordings {
            opening: Some("ab".into()),
            ..Recordings::default()
        };
        assert!(!r.needs_clock(), "nothing open");
        r.replied(Reply::Opened {
            id: "ab".into(),
            result: Ok(opened()),
        });
        let playing = r.playback.as_ref().is_some_and(|p| p.playing);
        assert_eq!(r.needs_clock(), playing);
        r.update(Message::PlayPause);
        assert_eq!(
            r.needs_clock(),
            !playing,
            "Play/Pause turns the clock on/off"
        );
        r.clear();
        assert!(!r.needs_clock(), "sign-out stops it");
    }

    #[test]
    fn markers_jump_and_sign_out_drops_the_recording() {
        let mut r = Recordings {
            opening: Some("ab".into()),
            ..Recordings::default()
        };
        r.replied(Reply::Opened {
            id: "ab".into(),
            result: Ok(opened()),
        });
        // The marker's button seeks to it: the screen shows what came before.
        let ui = iced_test::simulator(r.view())
            .find("◆ mark @ 0:02.0")
            .is_ok();
        assert!(ui, "the marker is offered");
        r.update(Message::Seek(2000.0));
        assert_eq!(r.screen.text().trim_end(), "one\ntwo");
        // A reply for a recording no longer asked for is dropped.
        r.replied(Reply::Opened {
            id: "cd".into(),
            result: Ok(opened()),
        });
        assert_eq!(r.playback.as_ref().map(|p| p.position_us), Some(2_000_000));
        r.clear();
        assert!(r.playback.is_none());
        assert_eq!(r.screen.text(), "");
    }
}

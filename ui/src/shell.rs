//! The iced shell around [`crate::app::State`]: effects as tasks, the
//! subscriptions (clock, keyboard, window focus and size, broker events),
//! remembering the window's size ([`crate::window_memory`]), and the
//! `--screenshot` mode that saves the first rendered frame and exits.
//!
//! Must never: change state except through `State::update`, or write the
//! screenshot anywhere but the path the person gave.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use iced::{Subscription, Task};

use crate::app::{Effect, Message, State};
use crate::daemons::{self, Daemons};

/// How often the clock ticks (the approval guard counts with it).
pub const TICK: Duration = Duration::from_millis(100);

/// How long `--screenshot` waits for the first broker answers before it
/// captures the window.
pub const SCREENSHOT_AFTER: Duration = Duration::from_millis(1500);

/// What the window captures of itself, if anything.
#[derive(Debug, Clone, Default)]
pub enum Capture {
    #[default]
    None,
    /// Save the frame shown after [`SCREENSHOT_AFTER`] to this file and exit.
    Screenshot(PathBuf),
    /// As soon as the first frame is rendered, print `first frame` on
    /// stdout and exit (`gatehouse bench ui` times cold starts with it).
    FirstFrame,
}

/// The iced program state: the app plus the shell's own settings.
pub struct Shell {
    pub app: State,
    capture: Capture,
    /// Saving the window size failed once (said once on stderr).
    size_unsaved: bool,
}

/// A task that captures the window's current frame.
pub fn capture_frame<M: Send + 'static>(
    done: fn(Result<iced::window::Screenshot, String>) -> M,
) -> Task<M> {
    iced::window::latest().then(move |id| match id {
        Some(id) => iced::window::screenshot(id).map(move |s| done(Ok(s))),
        None => Task::done(done(Err("no window to capture".into()))),
    })
}

/// Reports the first frame (see [`Capture::FirstFrame`]) and exits.
pub fn first_frame_done<M: Send + 'static>(
    shot: Result<iced::window::Screenshot, String>,
) -> Task<M> {
    match shot {
        Ok(s) => println!("first frame {}x{}", s.size.width, s.size.height),
        Err(e) => eprintln!("gatehouse-ui: {e}"),
    }
    iced::exit()
}

#[derive(Debug, Clone)]
pub enum ShellMessage {
    App(Message),
    Capture,
    Captured(Result<iced::window::Screenshot, String>),
    Saved(Result<(), String>),
    /// The window was resized (logical pixels): remembered for the next run.
    Resized(iced::Size),
}

/// Turns effects into iced tasks.
pub fn tasks(daemons: &Daemons, effects: Vec<Effect>) -> Task<ShellMessage> {
    Task::batch(effects.into_iter().map(|e| match e {
        Effect::Call(c) => Task::perform(daemons::run(daemons.clone(), c), |r| {
            ShellMessage::App(Message::Reply(r))
        }),
        Effect::Watch(w) => Task::run(daemons::watch(daemons.clone(), w), |r| {
            ShellMessage::App(Message::Reply(r))
        }),
        Effect::Focus(id) => iced::widget::operation::focus(id),
        Effect::Then(m) => Task::done(ShellMessage::App(*m)),
    }))
}

impl Shell {
    pub fn boot(daemons: Daemons, capture: Capture) -> (Shell, Task<ShellMessage>) {
        let (app, effects) = State::new(daemons.clone(), Instant::now());
        let mut task = tasks(&daemons, effects);
        match capture {
            Capture::None => {}
            Capture::Screenshot(_) => {
                task = Task::batch([
                    task,
                    Task::perform(tokio::time::sleep(SCREENSHOT_AFTER), |_| {
                        ShellMessage::Capture
                    }),
                ]);
            }
            Capture::FirstFrame => task = Task::batch([task, Task::done(ShellMessage::Capture)]),
        }
        (
            Shell {
                app,
                capture,
                size_unsaved: false,
            },
            task,
        )
    }

    pub fn update(&mut self, m: ShellMessage) -> Task<ShellMessage> {
        match m {
            ShellMessage::App(m) => {
                // The clock does not tick while idle: bring it up to date
                // first, so a card shown now starts its guard now.
                if !matches!(m, Message::Tick(_)) {
                    self.app.update(Message::Tick(Instant::now()));
                }
                let effects = self.app.update(m);
                tasks(&self.app.daemons, effects)
            }
            ShellMessage::Capture => capture_frame(ShellMessage::Captured),
            ShellMessage::Captured(shot) => {
                let path = match &self.capture {
                    Capture::None => return Task::none(),
                    Capture::FirstFrame => return first_frame_done(shot),
                    Capture::Screenshot(p) => p.clone(),
                };
                let shot = match shot {
                    Ok(s) => s,
                    Err(e) => return Task::done(ShellMessage::Saved(Err(e))),
                };
                Task::perform(
                    async move {
                        tokio::task::spawn_blocking(move || save_ppm(&path, &shot))
                            .await
                            .map_err(|e| e.to_string())?
                    },
                    ShellMessage::Saved,
                )
            }
            ShellMessage::Resized(size) => {
                let root = &self.app.daemons.layout().root;
                if let Err(e) = crate::window_memory::save(root, (size.width, size.height))
                    && !self.size_unsaved
                {
                    self.size_unsaved = true;
                    eprintln!("gatehouse-ui: the window size is not remembered: {e}");
                }
                Task::none()
            }
            ShellMessage::Saved(r) => {
                match r {
                    Ok(()) => {}
                    Err(e) => eprintln!("gatehouse-ui: screenshot failed: {e}"),
                }
                iced::exit()
            }
        }
    }

    pub fn view(&self) -> iced::Element<'_, ShellMessage> {
        self.app.view().map(ShellMessage::App)
    }

    pub fn theme(&self) -> iced::Theme {
        self.app.theme()
    }

    pub fn subscription(&self) -> Subscription<ShellMessage> {
        // The clock runs only while something depends on it (a guard delay).
        let clock = if self.app.needs_clock() {
            iced::time::every(TICK).map(|t| ShellMessage::App(Message::Tick(t)))
        } else {
            Subscription::none()
        };
        // Frames are listened to only while a seen approval card waits for
        // its first drawn frame (the guard starts then).
        let frames = if self.app.approvals.awaiting_frame() {
            iced::window::frames().map(|at| ShellMessage::App(Message::Frame(at)))
        } else {
            Subscription::none()
        };
        Subscription::batch([
            clock,
            frames,
            iced::keyboard::listen().map(|k| ShellMessage::App(Message::Key(k))),
            iced::event::listen_with(window_events),
            Subscription::run_with(EventsOf(self.app.daemons.clone()), |d| {
                daemons::events(d.0.clone())
            })
            .map(|f| ShellMessage::App(Message::Feed(f))),
        ])
    }
}

/// The window's focus changes (the approval guard counts only while the
/// window has focus) and sizes (remembered).
fn window_events(
    e: iced::Event,
    _: iced::event::Status,
    _: iced::window::Id,
) -> Option<ShellMessage> {
    match e {
        iced::Event::Window(iced::window::Event::Focused) => {
            Some(ShellMessage::App(Message::WindowFocused(true)))
        }
        iced::Event::Window(iced::window::Event::Unfocused) => {
            Some(ShellMessage::App(Message::WindowFocused(false)))
        }
        iced::Event::Window(iced::window::Event::Resized(size)) => {
            Some(ShellMessage::Resized(size))
        }
        _ => None,
    }
}

/// The broker event stream's identity: one per runtime directory.
struct EventsOf(Daemons);

impl std::hash::Hash for EventsOf {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.runtime().hash(state);
    }
}

/// Writes a screenshot as binary PPM (P6: RGB, no alpha).
pub fn save_ppm(path: &std::path::Path, shot: &iced::window::Screenshot) -> Result<(), String> {
    let (w, h) = (shot.size.width as usize, shot.size.height as usize);
    if shot.rgba.len() != w * h * 4 {
        return Err(format!(
            "screenshot is {} bytes, expected {}x{}x4",
            shot.rgba.len(),
            w,
            h
        ));
    }
    let mut out = format!("P6\n{w} {h}\n255\n").into_bytes();
    for px in shot.rgba.chunks_exact(4) {
        out.extend_from_slice(&px[..3]);
    }
    std::fs::write(path, out).map_err(|e| format!("writing {}: {e}", path.display()))
}

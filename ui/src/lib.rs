//! Gatehouse desktop app (`gatehouse-ui`): an unprivileged client of the
//! broker, sessiond and copilotd with the `ui` role, drawn with iced's
//! software renderer.
//!
//! Owns: the app state ([`app`]) and one module per screen, each with its
//! own `Message`, `Call`/`Reply` (one-shot daemon calls it runs itself) and
//! `view`; [`daemons`] routes calls and holds the connections' plumbing.
//! Must never: hold an org key or a keychain payload it did not ask to
//! reveal, or decide anything the broker did not ask a person.

/// The monospace face of commands, addresses and terminals: DejaVu Sans
/// Mono, embedded so every machine (and every snapshot) draws the same
/// glyphs. Load [`MONO_FONT_BYTES`] before drawing (`main.rs`, tests).
pub const MONO: iced::Font = iced::Font::with_name("DejaVu Sans Mono");
/// The font file behind [`MONO`] (license: `assets/DejaVuSansMono.LICENSE`).
pub const MONO_FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
/// The face of every label: DejaVu Sans, embedded (and made the default)
/// for the same reason: the window and its snapshots look the same on
/// every machine, whatever fonts it has installed.
pub const UI_FONT: iced::Font = iced::Font::with_name("DejaVu Sans");
/// The font file behind [`UI_FONT`] (license: `assets/DejaVuSans.LICENSE`).
pub const UI_FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The settings every rendering of the app uses (the window, snapshots):
/// both embedded faces loaded, [`UI_FONT`] the default.
pub fn settings() -> iced::Settings {
    iced::Settings {
        fonts: vec![UI_FONT_BYTES.into(), MONO_FONT_BYTES.into()],
        default_font: UI_FONT,
        ..iced::Settings::default()
    }
}

pub mod app;
pub mod approval;
pub mod audit_log;
pub mod bench;
pub mod copilot;
pub mod daemons;
pub mod diagrams;
pub mod hosts;
pub mod notify;
pub mod palette;
pub mod presence;
pub mod procedures;
pub mod recordings;
pub mod security;
pub mod settings_screen;
pub mod shell;
pub mod signin;
pub mod term_bench;
pub mod term_grid;
pub mod term_raster;
pub mod terminal;
pub mod window_memory;
pub mod workarea;

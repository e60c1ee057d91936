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

pub mod app;
pub mod approval;
pub mod audit_log;
pub mod bench;
pub mod copilot;
pub mod daemons;
pub mod diagrams;
pub mod hosts;
pub mod procedures;
pub mod recordings;
pub mod security;
pub mod shell;
pub mod signin;
pub mod term_bench;
pub mod term_grid;
pub mod terminal;

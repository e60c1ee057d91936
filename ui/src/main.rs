//! `gatehouse-ui`: the Gatehouse desktop app.
//!
//! Owns: argument parsing (`--profile`, `--screenshot FILE`) and starting
//! the iced application (at the size the window had when it last closed). Must never: run as another role than `ui` (the
//! broker decides that from this executable's path) or take secrets from
//! arguments or the environment.

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_ui::daemons::Daemons;
use gatehouse_ui::shell::{self, Capture, Shell};
use gatehouse_ui::window_memory;

const USAGE: &str =
    "usage: gatehouse-ui [--profile NAME] [--screenshot FILE.ppm | --first-frame [--bare]]

  --screenshot FILE  save the window as it is 1.5 s after start (binary PPM) and exit
  --first-frame      print `first frame WxH` once the first frame is rendered, and exit
  --bare             with --first-frame: an empty window with nothing of the app (the
                     baseline `gatehouse bench ui` compares cold starts with)
  --bench-headless   print the in-process benchmarks as JSON (no display, no daemons)";

fn main() -> ExitCode {
    // First: an installed (setgid) app takes its group for all three gids.
    if let Err(e) = gatehouse_sandbox::boundary::enter() {
        eprintln!("gatehouse-ui: {e}");
        return ExitCode::FAILURE;
    }
    // The app shows revealed passwords and takes the passphrase: no process
    // of the user may read its memory (each connection to a daemon is
    // dumpable only until the daemon has identified it).
    if let Err(e) = gatehouse_sandbox::boundary::make_non_dumpable() {
        eprintln!("gatehouse-ui: {e}");
        return ExitCode::FAILURE;
    }
    let mut profile: Option<String> = None;
    let mut capture = Capture::None;
    let mut bare = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--profile" => profile = args.next(),
            "--screenshot" => match args.next() {
                Some(p) => capture = Capture::Screenshot(PathBuf::from(p)),
                None => {
                    eprintln!("gatehouse-ui: --screenshot needs a file\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--first-frame" => capture = Capture::FirstFrame,
            "--bare" => bare = true,
            "--bench-headless" => {
                println!("{}", gatehouse_ui::bench::headless(20));
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("gatehouse-ui: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let daemons = match Daemons::resolve(profile.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gatehouse-ui: {e}");
            return ExitCode::FAILURE;
        }
    };
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        eprintln!(
            "gatehouse-ui: no display (DISPLAY is not set). Use the `gatehouse` CLI, or run under Xvfb."
        );
        return ExitCode::FAILURE;
    }
    if bare {
        if !matches!(capture, Capture::FirstFrame) {
            eprintln!("gatehouse-ui: --bare goes with --first-frame\n{USAGE}");
            return ExitCode::from(2);
        }
        return finish(bare_first_frame());
    }
    // Appearance before sign-in: the settings record's plaintext fields
    // (not verified: its MAC needs the broker; only the theme and the text
    // size are read). Signed in, the verified record takes over.
    let appearance = gatehouse_records::Store::open_in(daemons.layout())
        .ok()
        .and_then(|s| gatehouse_records::settings::unverified(&s).ok())
        .unwrap_or_default();
    let dark = appearance.theme == gatehouse_records::settings::Theme::Dark;
    let font_size = f32::from(appearance.font_size);
    let mut settings = gatehouse_ui::settings();
    settings.default_text_size = iced::Pixels(f32::from(appearance.font_size));
    let (width, height) = window_memory::load(&daemons.layout().root);
    let window = iced::window::Settings {
        size: iced::Size::new(width, height),
        min_size: Some(iced::Size::new(window_memory::MIN.0, window_memory::MIN.1)),
        resizable: true,
        ..iced::window::Settings::default()
    };
    let result = iced::application(
        move || {
            let (mut shell, task) = Shell::boot(daemons.clone(), capture.clone());
            shell.app.dark = dark;
            shell.app.terminals.set_font_size(font_size);
            (shell, task)
        },
        Shell::update,
        Shell::view,
    )
    .settings(settings)
    .title("Gatehouse")
    .theme(Shell::theme)
    .subscription(Shell::subscription)
    .window(window)
    .run();
    finish(result)
}

/// The baseline window: the same toolkit, renderer and fonts, nothing of
/// the app (no state, no daemons, no subscriptions).
fn bare_first_frame() -> iced::Result {
    iced::application(bare_boot, bare_update, bare_view)
        .settings(gatehouse_ui::settings())
        .title("Gatehouse")
        .window_size(window_memory::DEFAULT)
        .run()
}

#[derive(Debug, Clone)]
enum Bare {
    Captured(Result<iced::window::Screenshot, String>),
}

fn bare_boot() -> ((), iced::Task<Bare>) {
    ((), shell::capture_frame(Bare::Captured))
}

fn bare_update(_: &mut (), m: Bare) -> iced::Task<Bare> {
    let Bare::Captured(shot) = m;
    shell::first_frame_done(shot)
}

fn bare_view(_: &()) -> iced::Element<'_, Bare> {
    iced::widget::text("Gatehouse").into()
}

fn finish(result: iced::Result) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-ui: {e}");
            ExitCode::FAILURE
        }
    }
}

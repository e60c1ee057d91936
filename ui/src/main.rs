//! `gatehouse-ui`: the Gatehouse desktop app.
//!
//! Owns: argument parsing (`--profile`, `--screenshot FILE`) and starting
//! the iced application. Must never: run as another role than `ui` (the
//! broker decides that from this executable's path) or take secrets from
//! arguments or the environment.

use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_ui::daemons::Daemons;
use gatehouse_ui::shell::Shell;

const USAGE: &str = "usage: gatehouse-ui [--profile NAME] [--screenshot FILE.ppm]";

fn main() -> ExitCode {
    let mut profile: Option<String> = None;
    let mut screenshot: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--profile" => profile = args.next(),
            "--screenshot" => screenshot = args.next().map(PathBuf::from),
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
    let result = iced::application(
        move || Shell::boot(daemons.clone(), screenshot.clone()),
        Shell::update,
        Shell::view,
    )
    .font(gatehouse_ui::MONO_FONT_BYTES)
    .title("Gatehouse")
    .theme(Shell::theme)
    .subscription(Shell::subscription)
    .window_size((1100.0, 720.0))
    .run();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse-ui: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `gatehouse ui`: starts the desktop app, `gatehouse-ui`, installed next to
//! this binary (the broker gives the `ui` role only to that file).
//!
//! Must never: start a `gatehouse-ui` from anywhere but the installation
//! directory (e.g. `$PATH`), or pass it a secret.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use gatehouse_ipc::PeerRole;
use gatehouse_ipc::peer::Installation;

#[derive(Args, Debug)]
pub struct UiArgs {
    /// Save the first rendered frame as a PPM image to this file and exit.
    #[arg(long)]
    pub screenshot: Option<PathBuf>,
}

pub fn run(profile: Option<&str>, args: &UiArgs) -> anyhow::Result<ExitCode> {
    let install = Installation::of_current_exe().context("finding the installation directory")?;
    let exe = install.binary(PeerRole::Ui);
    if !exe.exists() {
        bail!(
            "{} is not installed (build it with `cargo build -p gatehouse-ui` and install it beside `gatehouse`)",
            exe.display()
        );
    }
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        bail!(
            "no display (DISPLAY is not set): the desktop app needs one; run it under Xvfb, or use the CLI (`gatehouse demo` walks through the same flows headless)"
        );
    }
    let mut c = std::process::Command::new(&exe);
    if let Some(p) = profile {
        c.args(["--profile", p]);
    }
    if let Some(s) = &args.screenshot {
        c.arg("--screenshot").arg(s);
    }
    // Replaces this process: the app is what the person now runs.
    let err = c.exec();
    Err(err).with_context(|| format!("starting {}", exe.display()))
}

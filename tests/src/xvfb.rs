//! A private X server (Xvfb) for tests of the real `gatehouse-ui` window,
//! the xdotool calls that drive it as a person would: find the window,
//! give it keyboard focus, press keys and type text (XTEST, the same path a
//! keyboard takes; never synthetic `XSendEvent`s, which toolkits may treat
//! differently), and the window's pixels as the X server holds them
//! ([`Xvfb::capture`], what a person would see).
//!
//! Must never: fall back to anything when Xvfb or xdotool is missing (the
//! test fails and says which package to install), or touch a display it did
//! not start.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::ChildGuard;

/// A running Xvfb on a free display number; killed on drop.
pub struct Xvfb {
    _server: ChildGuard,
    /// `:N`, for `DISPLAY`.
    pub display: String,
}

/// The set-up of the real-window tests that drive devices: a private X
/// server, a profile with the real sessiond, the app installed beside the
/// CLI, an account created with `passphrase` (signed in), and the lab
/// devices up with their data logs. Start sessiond with
/// `BrokerFixture::start_sessiond` and the app with [`Xvfb::open_app`].
pub fn lab_window_profile(passphrase: &str) -> Result<(Xvfb, crate::broker::BrokerFixture)> {
    let x = Xvfb::start()?;
    let f = crate::broker::BrokerFixture::start(crate::broker::Options {
        real_sessiond: true,
        ..crate::broker::Options::default()
    })?;
    crate::install(
        &f.scratch,
        &crate::find_binary("gatehouse-ui")?,
        "gatehouse-ui",
    )?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{passphrase}\n"),
    )?;
    f.cli_ok(&["lab", "up", "--log-data"], "")?;
    Ok((x, f))
}

/// How long a real-window test waits for the app's window: a polling
/// budget (a loaded machine may take long to start the app), not a sleep.
pub const WINDOW_WAIT: Duration = Duration::from_secs(180);

impl Xvfb {
    /// Starts Xvfb (1280×800, 24-bit, no TCP, no access control) on the
    /// first free display from a number derived from this process id.
    pub fn start() -> Result<Xvfb> {
        if Command::new("Xvfb").arg("-help").output().is_err() {
            bail!(
                "Xvfb is not installed: the UI window tests need it (run scripts/deps, which installs xvfb and xauth)"
            );
        }
        // Tests of one binary run in parallel in one process: each call
        // starts from another number, so two never race for one display.
        static CALLS: AtomicU32 = AtomicU32::new(0);
        let offset = CALLS.fetch_add(1, Ordering::SeqCst) * 53;
        for n in (100 + (std::process::id() + offset) % 400..).take(50) {
            if Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                continue;
            }
            let display = format!(":{n}");
            let socket = format!("/tmp/.X11-unix/X{n}");
            // No lock file: a socket left there is stale (a killed server's);
            // it would pass for ours before our server listens.
            let _ = std::fs::remove_file(&socket);
            let mut c = Command::new("Xvfb");
            c.args([
                &display,
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
                "-ac",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
            let mut g = ChildGuard::spawn(&mut c)?;
            let up = crate::proc::wait_until("Xvfb socket", Duration::from_secs(10), || {
                if let Some(s) = g.has_exited()? {
                    bail!("Xvfb {display} exited: {s}");
                }
                Ok(Path::new(&socket).exists())
            });
            // Our server must be the one that owns the socket (a server
            // that lost the race for the display exits).
            std::thread::sleep(Duration::from_millis(300));
            if up.is_ok() && g.has_exited()?.is_none() {
                return Ok(Xvfb {
                    _server: g,
                    display,
                });
            }
        }
        bail!("no free X display for Xvfb")
    }

    /// Runs `xdotool ARGS` on this display; its stdout, or an error with
    /// everything it printed.
    pub fn xdotool(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .stdin(Stdio::null())
            .output()
            .context("running xdotool (scripts/deps installs it)")?;
        if !out.status.success() {
            bail!(
                "xdotool {args:?} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Waits (up to `within`) for a mapped window titled exactly `title`;
    /// returns its X id.
    pub fn wait_window(&self, title: &str, within: Duration) -> Result<String> {
        let pattern = format!("^{title}$");
        let mut found = None;
        crate::proc::wait_until(&format!("a window titled {title:?}"), within, || {
            // `search` exits 1 when nothing matches yet.
            let out = Command::new("xdotool")
                .args(["search", "--onlyvisible", "--name", &pattern])
                .env("DISPLAY", &self.display)
                .output()?;
            found = String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(str::to_string);
            Ok(found.is_some())
        })?;
        found.context("window vanished")
    }

    /// Starts `gatehouse ui` in `f`'s profile on this display, with `env`
    /// added, and waits for its window (at most [`WINDOW_WAIT`]). The app's
    /// stderr goes to a file in the fixture's scratch directory and is quoted
    /// if the window never comes.
    pub fn open_app(
        &self,
        f: &crate::broker::BrokerFixture,
        env: &[(&str, &str)],
    ) -> Result<(ChildGuard, String)> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let n = RUNS.fetch_add(1, Ordering::Relaxed);
        let log = f.scratch.path().join(format!("ui-run-{n}.log"));
        let mut app = f.command(&f.install_dir().join("gatehouse"));
        app.args(["--profile", &f.profile, "ui"])
            .env("DISPLAY", &self.display)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        let app = ChildGuard::spawn_group(&mut app)?;
        let win = self
            .wait_window("Gatehouse", WINDOW_WAIT)
            .with_context(|| {
                format!(
                    "the app's stderr: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })?;
        Ok((app, win))
    }

    /// Gives window `id` the keyboard focus (there is no window manager: the
    /// X server's focus is set directly) and waits until it has it.
    pub fn focus(&self, id: &str) -> Result<()> {
        self.xdotool(&["windowfocus", "--sync", id]).map(drop)
    }

    /// Takes the keyboard focus away from every application window: the
    /// root window gets it (a person clicking on the desktop).
    pub fn unfocus(&self) -> Result<()> {
        let out = self.xdotool(&["search", "--maxdepth", "0", "--name", ""])?;
        let root = out
            .lines()
            .next()
            .map(str::to_string)
            .with_context(|| format!("no root window in {out:?}"))?;
        self.focus(&root)
    }

    /// Presses (and releases) each key chord in turn, `delay_ms` apart, on
    /// the focused window: `keys(&["ctrl+4", "alt+a"], 1)`.
    pub fn keys(&self, chords: &[&str], delay_ms: u32) -> Result<()> {
        let delay = delay_ms.to_string();
        let mut args = vec!["key", "--delay", delay.as_str()];
        args.extend_from_slice(chords);
        self.xdotool(&args).map(drop)
    }

    /// Types `text` into the focused window, a key per character,
    /// `delay_ms` apart.
    pub fn type_text(&self, text: &str, delay_ms: u32) -> Result<()> {
        let delay = delay_ms.to_string();
        self.xdotool(&["type", "--delay", delay.as_str(), "--", text])
            .map(drop)
    }

    /// The pixels of window `id` (an id as [`Xvfb::wait_window`] returns
    /// it), as the X server holds them.
    pub fn capture(&self, id: &str) -> Result<Capture> {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};
        let win: u32 = id
            .trim()
            .parse()
            .with_context(|| format!("window id {id:?}"))?;
        let (conn, _) = x11rb::connect(Some(&self.display))
            .with_context(|| format!("connecting to X display {}", self.display))?;
        let geometry = conn.get_geometry(win)?.reply()?;
        let (width, height) = (geometry.width, geometry.height);
        let image = conn
            .get_image(ImageFormat::Z_PIXMAP, win, 0, 0, width, height, !0)?
            .reply()
            .context("GetImage of the window")?;
        let bpp = conn
            .setup()
            .pixmap_formats
            .iter()
            .find(|f| f.depth == image.depth)
            .map(|f| f.bits_per_pixel)
            .context("no pixmap format for the window's depth")?;
        if image.depth != 24 || bpp != 32 {
            bail!(
                "window depth {} at {bpp} bits per pixel: only 24-bit colour (Xvfb's) is read",
                image.depth
            );
        }
        let lsb = conn.setup().image_byte_order == x11rb::protocol::xproto::ImageOrder::LSB_FIRST;
        let pixels = image
            .data
            .chunks_exact(4)
            .map(|p| {
                if lsb {
                    [p[2], p[1], p[0]]
                } else {
                    [p[1], p[2], p[3]]
                }
            })
            .collect();
        Ok(Capture {
            width: usize::from(width),
            height: usize::from(height),
            pixels,
        })
    }
}

/// A window's pixels (RGB, row by row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<[u8; 3]>,
}

impl Capture {
    /// Writes the pixels as a binary PPM (to look at when a test fails).
    pub fn save_ppm(&self, path: &Path) -> Result<()> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend(self.pixels.iter().flatten());
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
    }

    /// Where pixels of exactly `rgb` are, as (x, y).
    pub fn where_colour(&self, rgb: [u8; 3]) -> Vec<(usize, usize)> {
        self.pixels
            .iter()
            .enumerate()
            .filter(|(_, p)| **p == rgb)
            .map(|(i, _)| (i % self.width, i / self.width))
            .collect()
    }
}

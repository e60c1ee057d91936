//! Terminal throughput, measured in the app's real path (the hook of
//! `gatehouse bench ui`): realistic device output fed through [`TermGrid`]
//! as it would come from a session (4 KiB reads), and frames of the grid
//! widget drawn as the app draws them: one each time a display refresh
//! (1/60 s) of processing has passed since the last frame ended.
//! Processing time is this thread's CPU time, so the figures hold on a
//! machine shared with other work (on an idle one it is the wall clock's);
//! wall-clock figures are reported beside them.
//!
//! Owns: the sample output (colored `show` tables, long wrapped lines,
//! prompts, scrolling) and the timing. The renderer is passed in (`FnMut(Element)`),
//! so this crate needs no headless renderer: the CLI hands in
//! [`Offscreen::frame`] (the app's tiny-skia renderer, kept across frames
//! as a window keeps it), tests `iced_test::simulator(element).snapshot(&theme)`.
//! Must never: touch a daemon or the network.

use std::time::{Duration, Instant};

use iced::Element;

use crate::term_grid::TermGrid;
use crate::term_raster::FRAME_INTERVAL;

/// Output is fed this many bytes at a time (a read of the session's stream).
pub const CHUNK: usize = 4 * 1024;
/// The earlier model's frame spacing (kept as a comparison row): a frame
/// after every 64 KiB, each drawing the whole grid.
pub const FRAME_EVERY: usize = 64 * 1024;

/// When a frame is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// At display rate: when [`FRAME_INTERVAL`] has passed since the last
    /// frame ended, through the grid's paced view (the app's).
    Display,
    /// After every this many bytes, each one drawn in full.
    EveryBytes(usize),
    /// Never (parsing alone).
    Never,
}

/// This thread's CPU time so far (user and system).
pub fn thread_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_THREAD)
        .map(|u| {
            let t = |v: nix::sys::time::TimeVal| {
                Duration::new(v.tv_sec().max(0) as u64, (v.tv_usec().max(0) as u32) * 1000)
            };
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or_default()
}

/// A point in wall-clock and CPU time.
#[derive(Clone, Copy)]
struct Stamp(Instant, Duration);

impl Stamp {
    fn now() -> Stamp {
        Stamp(Instant::now(), thread_cpu())
    }

    /// (wall, cpu) since `self`.
    fn since(self) -> (Duration, Duration) {
        let now = Stamp::now();
        (now.0 - self.0, now.1.saturating_sub(self.1))
    }
}

/// What one run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    /// Bytes fed.
    pub bytes: u64,
    /// Frames asked for.
    pub frames: u64,
    /// Frames the grid's widget drew (not a repeat of the last).
    pub drawn: u64,
    /// Everything (parse + render).
    pub elapsed: Duration,
    /// Parsing alone.
    pub parse: Duration,
    /// Rendering alone.
    pub render: Duration,
    /// The same three in this thread's CPU time.
    pub elapsed_cpu: Duration,
    pub parse_cpu: Duration,
    pub render_cpu: Duration,
}

impl Throughput {
    /// MiB fed per second, parse and render together.
    pub fn mib_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        self.bytes as f64 / (1024.0 * 1024.0) / secs
    }

    /// MiB fed per second of this thread's CPU time.
    pub fn mib_per_cpu_sec(&self) -> f64 {
        let secs = self.elapsed_cpu.as_secs_f64().max(1e-9);
        self.bytes as f64 / (1024.0 * 1024.0) / secs
    }

    /// Milliseconds per frame.
    pub fn ms_per_frame(&self) -> f64 {
        self.render.as_secs_f64() * 1e3 / self.frames.max(1) as f64
    }

    /// CPU milliseconds per frame.
    pub fn cpu_ms_per_frame(&self) -> f64 {
        self.render_cpu.as_secs_f64() * 1e3 / self.frames.max(1) as f64
    }
}

/// Realistic device output of about `len` bytes: a prompt, `show`
/// commands with colored tables (16, 256 and true colors, bold, inverse),
/// lines longer than the screen (they wrap), and enough of it to scroll.
pub fn sample_output(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 4096);
    let mut n = 0u32;
    while out.len() < len {
        out.extend_from_slice(b"\x1b[1mcore-sw1#\x1b[0m show interfaces status\r\n");
        out.extend_from_slice(
            b"\x1b[7mPort      Name               Status       Vlan       Duplex  Speed Type\x1b[0m\r\n",
        );
        for i in 0..48u32 {
            let (color, status) = match (i + n) % 3 {
                0 => ("\x1b[32m", "connected   "),
                1 => ("\x1b[31m", "notconnect  "),
                _ => ("\x1b[38;5;214m", "err-disabled"),
            };
            out.extend_from_slice(
                format!(
                    "Gi1/0/{i:<4}{:<19}{color}{status}\x1b[0m {:<10} a-full  a-1000 \x1b[38;2;120;160;255m10/100/1000BaseTX\x1b[0m\r\n",
                    format!("uplink-{n}-{i}"),
                    100 + i % 7
                )
                .as_bytes(),
            );
        }
        // A long line (a config dump line, a log message) that wraps.
        out.extend_from_slice(b"\x1b[2m%LINK-3-UPDOWN:\x1b[0m ");
        for k in 0..12 {
            out.extend_from_slice(
                format!("Interface GigabitEthernet1/0/{k}, changed state to up; ").as_bytes(),
            );
        }
        out.extend_from_slice(b"\r\n");
        n += 1;
    }
    out.truncate(len);
    out
}

/// Feeds `total` bytes of [`sample_output`] through a `cols`x`rows`
/// [`TermGrid`], [`CHUNK`] bytes at a time, and renders the grid widget
/// with `render` as `pace` says.
pub fn run(
    total: usize,
    cols: u16,
    rows: u16,
    pace: Pace,
    mut render: impl FnMut(Element<'_, ()>),
) -> Throughput {
    let data = sample_output(total);
    let mut grid = TermGrid::new(cols, rows);
    let (mut parse, mut parse_cpu) = (Duration::ZERO, Duration::ZERO);
    let (mut drawn, mut drawn_cpu) = (Duration::ZERO, Duration::ZERO);
    let mut frames = 0u64;
    let mut since = 0usize;
    let start = Stamp::now();
    let mut last_frame = start;
    for piece in data.chunks(CHUNK) {
        let t = Stamp::now();
        grid.feed(piece);
        let (wall, cpu) = t.since();
        parse += wall;
        parse_cpu += cpu;
        since += piece.len();
        let due = match pace {
            Pace::Display => last_frame.since().1 >= FRAME_INTERVAL,
            Pace::EveryBytes(n) => since >= n,
            Pace::Never => false,
        };
        if due {
            let t = Stamp::now();
            if pace == Pace::Display {
                render(grid.view(|_| ()));
            } else {
                render(grid.view_every_change(|_| ()));
            }
            let (wall, cpu) = t.since();
            drawn += wall;
            drawn_cpu += cpu;
            last_frame = Stamp::now();
            frames += 1;
            since = 0;
        }
    }
    let (elapsed, elapsed_cpu) = start.since();
    Throughput {
        bytes: data.len() as u64,
        frames,
        drawn: grid.frames(),
        elapsed,
        parse,
        render: drawn,
        elapsed_cpu,
        parse_cpu,
        render_cpu: drawn_cpu,
    }
}

/// The app's renderer (tiny-skia), drawing offscreen at the simulator's
/// 1024x768, kept across frames as a window keeps its own (glyph cache
/// included).
pub struct Offscreen {
    renderer: iced::Renderer,
    cache: Option<iced_runtime::user_interface::Cache>,
    size: iced::Size,
    theme: iced::Theme,
}

impl Offscreen {
    /// `None` when no headless renderer can be made.
    pub fn new() -> Option<Offscreen> {
        if let Ok(mut fonts) = iced_renderer::graphics::text::font_system().write() {
            fonts.load_font(crate::MONO_FONT_BYTES.into());
        }
        // The software renderer is made at once: one poll, no executor.
        let made = <iced::Renderer as iced_core::renderer::Headless>::new(
            iced::Font::with_name("Fira Sans"),
            iced::Pixels(16.0),
            None,
        );
        let mut made = std::pin::pin!(made);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        let std::task::Poll::Ready(Some(renderer)) = made.as_mut().poll(&mut cx) else {
            return None;
        };
        Some(Offscreen {
            renderer,
            cache: Some(iced_runtime::user_interface::Cache::default()),
            size: iced::Size::new(1024.0, 768.0),
            theme: iced::Theme::Dark,
        })
    }

    /// Lays out and draws `e`, and reads the pixels back.
    pub fn frame(&mut self, e: Element<'_, ()>) {
        use iced_core::renderer::Headless as _;
        let cache = self.cache.take().unwrap_or_default();
        let mut ui = iced_runtime::UserInterface::build(e, self.size, cache, &mut self.renderer);
        let base = iced::theme::Base::base(&self.theme);
        ui.draw(
            &mut self.renderer,
            &self.theme,
            &iced_core::renderer::Style {
                text_color: base.text_color,
            },
            iced_core::mouse::Cursor::Unavailable,
        );
        self.cache = Some(ui.into_cache());
        let px = iced::Size::new(self.size.width as u32, self.size.height as u32);
        std::hint::black_box(self.renderer.screenshot(px, 1.0, base.background_color));
    }
}

/// Terminal throughput for `gatehouse bench ui`, as JSON: `mib` MiB fed
/// at 120x40 in 4 KiB reads, drawn offscreen in a 1024x768 frame at display
/// rate (the app's model) and, for comparison, with a frame per 64 KiB
/// (the earlier model), beside two baselines measured in the same run:
/// parsing alone (no frames), and as many frames of an empty screen (what
/// the renderer costs by itself).
pub fn headless(mib: usize) -> serde_json::Value {
    let bytes = mib.max(1) << 20;
    let parse_only = run(bytes, 120, 40, Pace::Never, |_| {});
    let Some(mut off) = Offscreen::new() else {
        return serde_json::json!({ "error": "no headless renderer" });
    };
    let display = run(bytes, 120, 40, Pace::Display, |e| off.frame(e));
    let Some(mut off) = Offscreen::new() else {
        return serde_json::json!({ "error": "no headless renderer" });
    };
    let every = run(bytes, 120, 40, Pace::EveryBytes(FRAME_EVERY), |e| {
        off.frame(e)
    });
    let t = Stamp::now();
    for _ in 0..every.frames {
        off.frame(iced::widget::space().into());
    }
    let (empty, empty_cpu) = t.since();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    serde_json::json!({
        "bytes": display.bytes,
        "chunk_bytes": CHUNK,
        "grid": "120x40, 1024x768 frame",
        "frame_interval_ms": ms(FRAME_INTERVAL),
        "frames": display.frames,
        "frames_drawn": display.drawn,
        "mib_per_s": display.mib_per_sec(),
        "parse_ms": ms(display.parse),
        "render_ms_per_frame": display.ms_per_frame(),
        "frame_per_64k_frames": every.frames,
        "frame_per_64k_mib_per_s": every.mib_per_sec(),
        "frame_per_64k_render_ms_per_frame": every.ms_per_frame(),
        "baseline_parse_only_mib_per_s": parse_only.mib_per_sec(),
        "baseline_empty_frame_ms": ms(empty) / every.frames.max(1) as f64,
        "pace_clock": "thread CPU time",
        "cpu_mib_per_s": display.mib_per_cpu_sec(),
        "cpu_render_ms_per_frame": display.cpu_ms_per_frame(),
        "frame_per_64k_cpu_mib_per_s": every.mib_per_cpu_sec(),
        "frame_per_64k_cpu_render_ms_per_frame": every.cpu_ms_per_frame(),
        "baseline_parse_only_cpu_mib_per_s": parse_only.mib_per_cpu_sec(),
        "baseline_empty_frame_cpu_ms": ms(empty_cpu) / every.frames.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_colored_wrapping_and_scrolls() {
        let s = sample_output(200_000);
        assert_eq!(s.len(), 200_000);
        let mut g = TermGrid::new(80, 24);
        g.feed(&s);
        assert!(g.history() > 1000, "scrolled: {}", g.history());
        assert!(s.windows(6).any(|w| w == b"\x1b[38;5"), "256 colors");
        assert!(s.windows(6).any(|w| w == b"\x1b[38;2"), "true colors");
    }

    #[test]
    fn offscreen_frames_and_json() {
        let v = super::headless(1);
        println!("{v}");
        assert_eq!(v["bytes"], 1 << 20, "{v}");
        assert_eq!(v["frame_per_64k_frames"], 16, "{v}");
        // Every frame asked for at display rate was drawn (none skipped as
        // "not due yet"): the bench times real frames.
        assert_eq!(v["frames"], v["frames_drawn"], "{v}");
        assert!(
            v["render_ms_per_frame"].as_f64().is_some_and(|m| m > 0.0),
            "{v}"
        );
        assert!(v["baseline_empty_frame_ms"].as_f64().is_some(), "{v}");
    }

    /// iced_test's headless renderer on `e`; the embedded font is loaded
    /// with the first frame only (the font system is global).
    fn simulated(e: Element<'_, ()>, first: bool) -> iced_test::Simulator<'_, ()> {
        if first {
            iced_test::Simulator::with_settings(
                iced::Settings {
                    fonts: vec![crate::MONO_FONT_BYTES.into()],
                    ..iced::Settings::default()
                },
                e,
            )
        } else {
            iced_test::simulator(e)
        }
    }

    #[test]
    fn bench_renders_a_frame_per_piece_with_the_headless_renderer() {
        let mut last = None;
        let mut first = true;
        let t = run(
            4 * FRAME_EVERY,
            120,
            40,
            Pace::EveryBytes(FRAME_EVERY),
            |e| {
                let mut ui = simulated(e, std::mem::take(&mut first));
                last = Some(ui.snapshot(&iced::Theme::Dark).expect("snapshot"));
            },
        );
        if let (Some(dir), Some(shot)) = (std::env::var_os("GATEHOUSE_TERM_SNAPSHOT"), &last) {
            let _ = shot.matches_image(std::path::Path::new(&dir).join("term"));
        }
        assert_eq!(t.frames, 4);
        assert_eq!(t.drawn, 4);
        assert_eq!(t.bytes, 4 * FRAME_EVERY as u64);
        assert!(t.elapsed >= t.parse + t.render);
        assert!(last.is_some());
    }

    /// The figures (`cargo test -p gatehouse-ui --release --lib term_bench
    /// -- --ignored --nocapture`): parsing alone, then with a frame per piece.
    #[test]
    #[ignore]
    fn figures() {
        let parse_only = run(32 << 20, 120, 40, Pace::Never, |_| {});
        println!(
            "parse only: {} MiB in {:?} = {:.1} MiB/s",
            parse_only.bytes >> 20,
            parse_only.elapsed,
            parse_only.mib_per_sec()
        );
        let mut first = true;
        let framed = run(4 << 20, 120, 40, Pace::EveryBytes(FRAME_EVERY), |e| {
            let mut ui = simulated(e, std::mem::take(&mut first));
            let _ = ui.snapshot(&iced::Theme::Dark);
        });
        println!(
            "with frames: {} MiB, {} frames in {:?} (parse {:?}, render {:?}) = {:.1} MiB/s, {:.1} ms/frame",
            framed.bytes >> 20,
            framed.frames,
            framed.elapsed,
            framed.parse,
            framed.render,
            framed.mib_per_sec(),
            framed.render.as_secs_f64() * 1000.0 / framed.frames as f64
        );
    }
}

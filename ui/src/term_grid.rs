//! A terminal emulator widget: bytes in, a grid of styled cells out.
//!
//! Owns: parsing a byte stream (VT/xterm escape sequences, with
//! `alacritty_terminal`) into a grid with scrollback, the selection, the
//! answers a terminal owes its peer (cursor-position and device-attribute
//! reports), the search of the screen and its scrollback ([`TermGrid::find`],
//! [`TermGrid::search_for`]), the key → bytes mapping of a person's
//! keystrokes, and the grid's widget ([`TermGrid::view`]): each shown cell's
//! colours (bold, inverse, 16/256/truecolor, the cursor, the selection,
//! search matches) handed to [`crate::term_raster`], which draws the rows at
//! most once per display refresh; the mouse wheel and Shift+PageUp/PageDown
//! scroll back, a drag selects, Ctrl+Shift+C copies the selection,
//! Ctrl+Shift+V pastes.
//!
//! Reusable: it is fed bytes ([`TermGrid::feed`]), wherever they come from
//! (a live shell through sessiond, a recording played back); it opens no
//! PTY and talks to no daemon.
//!
//! Must never: let the peer read or write the person's clipboard (OSC 52 is
//! disabled; clipboard, color and window-size queries go unanswered), or
//! panic on any byte sequence.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use alacritty_terminal::Term;
use alacritty_terminal::event::{Event as TermEvent, EventListener};
use alacritty_terminal::grid::{Dimensions, Scroll};
use alacritty_terminal::index::{Column, Line, Point as GridPoint, Side};
use alacritty_terminal::selection::{Selection, SelectionType};
use alacritty_terminal::term::cell::Flags;
use alacritty_terminal::term::{Config, Osc52, TermMode};
use alacritty_terminal::vte::ansi::{Color as AnsiColor, CursorShape, NamedColor, Processor, Rgb};
use iced::keyboard::{Key, Modifiers, key::Named};
use iced::{Color, Element, Event, Length, Point, Rectangle, Size};
use iced_core::layout::{self, Layout};
use iced_core::renderer::{self, Quad};
use iced_core::widget::{Tree, Widget, tree};
use iced_core::{Clipboard, Shell, clipboard, mouse};

use crate::term_raster::{Bar, Frame, PaintCell, Rgb8};

/// Lines of scrollback kept per terminal.
pub const SCROLLBACK: usize = 10_000;
/// The default font size of terminal cells.
pub const FONT_SIZE: f32 = 13.0;
/// DejaVu Sans Mono's advance width, in ems (1233/2048).
const ADVANCE_EM: f32 = 1233.0 / 2048.0;

/// The cell size of [`crate::MONO`] at `size` pixels: (width, height).
pub fn cell_size(size: f32) -> (f32, f32) {
    (size * ADVANCE_EM, (size * 1.25).round())
}

/// How many columns and rows fit in `bounds` at `size` (at least 2x1).
pub fn fit(bounds: Size, size: f32) -> (u16, u16) {
    let (w, h) = cell_size(size);
    let cols = (bounds.width / w).floor().clamp(2.0, 1000.0) as u16;
    let rows = (bounds.height / h).floor().clamp(1.0, 500.0) as u16;
    (cols, rows)
}

/// What the peer asked the terminal to answer (device status reports):
/// collected while parsing, taken with [`TermGrid::take_answers`].
#[derive(Clone, Default)]
struct Answers(Arc<Mutex<Vec<u8>>>);

impl EventListener for Answers {
    fn send_event(&self, event: TermEvent) {
        // Only plain reports (cursor position, device attributes, modes).
        // Clipboard loads, color and size queries are not answered: they
        // would let the device read the person's clipboard or screen.
        if let TermEvent::PtyWrite(s) = event
            && let Ok(mut a) = self.0.lock()
        {
            // Bounded: a peer flooding queries cannot grow this forever.
            if a.len() < 64 * 1024 {
                a.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// The size of a terminal, as alacritty asks for it.
#[derive(Debug, Clone, Copy)]
struct GridSize {
    cols: usize,
    rows: usize,
}

impl Dimensions for GridSize {
    fn total_lines(&self) -> usize {
        self.rows
    }
    fn screen_lines(&self) -> usize {
        self.rows
    }
    fn columns(&self) -> usize {
        self.cols
    }
}

/// What a person did to the grid widget (mapped to the owner's message).
#[derive(Debug, Clone, PartialEq)]
pub enum GridEvent {
    /// Scroll the view by this many lines (positive: back into history).
    Scroll(i32),
    /// Scroll a page back (true) or forward (false).
    Page(bool),
    /// A drag started at (line, column) of the grid (line < 0: history).
    SelectStart { line: i32, col: usize },
    /// The drag reached (line, column).
    SelectTo { line: i32, col: usize },
    /// Ctrl+Shift+V: the clipboard's text.
    Paste(String),
    /// The widget's area now fits this many columns and rows.
    Resize { cols: u16, rows: u16 },
}

/// A terminal screen with scrollback, fed bytes.
pub struct TermGrid {
    term: Term<Answers>,
    parser: Processor,
    answers: Answers,
    fed: u64,
    /// Unique among this process's grids (a frame names the grid it shows).
    id: u64,
    /// Counts every change to what is shown (content, view, selection,
    /// search): a frame is drawn only when it moved.
    generation: u64,
    /// Counts changes to the content (fed bytes, a resize).
    content: u64,
    /// The search; found again, lazily, once the content changed (new
    /// output and resizes move lines).
    search: RefCell<Search>,
    /// Frames drawn of this grid (by any view of it).
    frames: Cell<u64>,
    /// The cells' font size in pixels (the settings' font size).
    font_size: f32,
}

/// A match of a search: from `start` to `end` (inclusive), each a (line,
/// column) as [`TermGrid::line`] numbers lines (negative: history). A match
/// may span rows (a line that wrapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    pub start: (i32, usize),
    pub end: (i32, usize),
}

impl Match {
    fn contains(&self, p: (i32, usize)) -> bool {
        self.start <= p && p <= self.end
    }
}

/// The search over the screen and scrollback.
#[derive(Debug, Default)]
struct Search {
    /// What is searched for, lowercased (empty: no search).
    query: Vec<char>,
    /// Every match, oldest first, as of `of_content`.
    matches: Vec<Match>,
    /// The selected match, counted from the newest (0): new output moves
    /// every line up, but not this count (unless it brings a new match).
    current: Option<usize>,
    of_content: u64,
}

impl Search {
    /// The selected match's index in `matches`.
    fn index(&self) -> Option<usize> {
        let from_end = self.current?;
        self.matches.len().checked_sub(from_end + 1)
    }
}

/// A character as a case-insensitive search compares it.
fn fold(c: char) -> char {
    let mut l = c.to_lowercase();
    match (l.next(), l.next()) {
        (Some(one), None) => one,
        _ => c,
    }
}

static NEXT_GRID: AtomicU64 = AtomicU64::new(1);

/// An 80x24 screen (a recording's playback resizes it to the recording's).
impl Default for TermGrid {
    fn default() -> Self {
        TermGrid::new(80, 24)
    }
}

impl std::fmt::Debug for TermGrid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (cols, rows) = self.size();
        f.debug_struct("TermGrid")
            .field("cols", &cols)
            .field("rows", &rows)
            .field("fed", &self.fed)
            .finish()
    }
}

impl TermGrid {
    pub fn new(cols: u16, rows: u16) -> TermGrid {
        let answers = Answers::default();
        let config = Config {
            scrolling_history: SCROLLBACK,
            osc52: Osc52::Disabled,
            ..Config::default()
        };
        let size = GridSize {
            cols: usize::from(cols.max(2)),
            rows: usize::from(rows.max(1)),
        };
        TermGrid {
            term: Term::new(config, &size, answers.clone()),
            parser: Processor::new(),
            answers,
            fed: 0,
            id: NEXT_GRID.fetch_add(1, Ordering::Relaxed),
            generation: 0,
            content: 0,
            search: RefCell::new(Search::default()),
            frames: Cell::new(0),
            font_size: FONT_SIZE,
        }
    }

    /// Draws the cells at `size` pixels from the next frame on (the view
    /// fits its columns and rows to it and reports the new size).
    pub fn set_font_size(&mut self, size: f32) {
        let size = size.clamp(8.0, 40.0);
        if size != self.font_size {
            self.font_size = size;
            self.generation += 1;
        }
    }

    pub fn font_size(&self) -> f32 {
        self.font_size
    }

    /// Parses `bytes` (one pass; escape sequences may span calls). Nothing
    /// is drawn here: the next frame shows the result.
    pub fn feed(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.parser.advance(&mut self.term, bytes);
        self.fed += bytes.len() as u64;
        self.changed(true);
    }

    /// Marks what is shown as changed (and the content, when `content`).
    fn changed(&mut self, content: bool) {
        self.generation += 1;
        if content {
            self.content += 1;
        }
    }

    /// Frames drawn of this grid so far.
    pub fn frames(&self) -> u64 {
        self.frames.get()
    }

    /// Bytes fed so far.
    pub fn fed(&self) -> u64 {
        self.fed
    }

    /// The answers the peer asked for since the last call (to send back
    /// to a live shell; a playback drops them).
    pub fn take_answers(&mut self) -> Vec<u8> {
        self.answers
            .0
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default()
    }

    /// Columns and rows.
    pub fn size(&self) -> (u16, u16) {
        let g = self.term.grid();
        (g.columns() as u16, g.screen_lines() as u16)
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        if self.size() == (cols, rows) {
            return;
        }
        self.term.resize(GridSize {
            cols: usize::from(cols.max(2)),
            rows: usize::from(rows.max(1)),
        });
        self.changed(true);
    }

    /// Lines of history above the screen.
    pub fn history(&self) -> usize {
        self.term.grid().history_size()
    }

    /// How far the view is scrolled back (0: at the bottom).
    pub fn display_offset(&self) -> usize {
        self.term.grid().display_offset()
    }

    /// Scrolls the view (positive: back into history).
    pub fn scroll(&mut self, lines: i32) {
        self.term.scroll_display(Scroll::Delta(lines));
        self.changed(false);
    }

    /// Scrolls a page back (`up`) or forward.
    pub fn page(&mut self, up: bool) {
        self.term
            .scroll_display(if up { Scroll::PageUp } else { Scroll::PageDown });
        self.changed(false);
    }

    /// Back to the live screen.
    pub fn scroll_to_bottom(&mut self) {
        if self.display_offset() != 0 {
            self.term.scroll_display(Scroll::Bottom);
            self.changed(false);
        }
    }

    /// Whether the peer asked for bracketed paste.
    pub fn bracketed_paste(&self) -> bool {
        self.term.mode().contains(TermMode::BRACKETED_PASTE)
    }

    /// Whether arrows send application-cursor sequences (`ESC O A`).
    pub fn app_cursor(&self) -> bool {
        self.term.mode().contains(TermMode::APP_CURSOR)
    }

    fn clamp_point(&self, line: i32, col: usize) -> GridPoint {
        let g = self.term.grid();
        let top = -(g.history_size() as i32);
        let bottom = g.screen_lines() as i32 - 1;
        GridPoint::new(
            Line(line.clamp(top, bottom)),
            Column(col.min(g.columns().saturating_sub(1))),
        )
    }

    /// Starts a selection at a grid point.
    pub fn select_start(&mut self, line: i32, col: usize) {
        let p = self.clamp_point(line, col);
        self.term.selection = Some(Selection::new(SelectionType::Simple, p, Side::Left));
        self.changed(false);
    }

    /// Extends the selection to a grid point.
    pub fn select_to(&mut self, line: i32, col: usize) {
        let p = self.clamp_point(line, col);
        if let Some(s) = self.term.selection.as_mut() {
            s.update(p, Side::Right);
            self.changed(false);
        }
    }

    pub fn clear_selection(&mut self) {
        if self.term.selection.take().is_some() {
            self.changed(false);
        }
    }

    /// The selected text, if any.
    pub fn selection_text(&self) -> Option<String> {
        self.term.selection_to_string().filter(|s| !s.is_empty())
    }

    /// Line `n` of the grid (0: the screen's top row when not scrolled;
    /// negative: history), without trailing blanks.
    pub fn line(&self, n: i32) -> String {
        let g = self.term.grid();
        if n < -(g.history_size() as i32) || n >= g.screen_lines() as i32 {
            return String::new();
        }
        let row = &g[Line(n)];
        let mut s = String::with_capacity(g.columns());
        for c in 0..g.columns() {
            let cell = &row[Column(c)];
            if cell.flags.contains(Flags::WIDE_CHAR_SPACER) {
                continue;
            }
            s.push(cell.c);
        }
        s.truncate(s.trim_end().len());
        s
    }

    /// The screen's text as shown (scrolled view included), one line per
    /// row, without trailing blanks or blank rows at the end.
    pub fn text(&self) -> String {
        let g = self.term.grid();
        let offset = g.display_offset() as i32;
        let mut out: Vec<String> = (0..g.screen_lines() as i32)
            .map(|r| self.line(r - offset))
            .collect();
        while out.last().is_some_and(String::is_empty) {
            out.pop();
        }
        out.join("\n")
    }

    /// The cursor's (row, column) on the screen.
    pub fn cursor(&self) -> (usize, usize) {
        let p = self.term.grid().cursor.point;
        (p.line.0.max(0) as usize, p.column.0)
    }

    // ------------------------------------------------------------ search

    /// The logical line (rows joined where the terminal wrapped them)
    /// that starts at `first`: its characters, case-folded, and each one's
    /// (line, first column, last column). Returns the line after it.
    fn logical_line(
        &self,
        first: i32,
        chars: &mut Vec<char>,
        at: &mut Vec<(i32, usize, usize)>,
    ) -> i32 {
        let g = self.term.grid();
        let bottom = g.screen_lines() as i32 - 1;
        let cols = g.columns();
        chars.clear();
        at.clear();
        let mut l = first;
        while l <= bottom {
            let row = &g[Line(l)];
            for c in 0..cols {
                let cell = &row[Column(c)];
                if cell
                    .flags
                    .intersects(Flags::WIDE_CHAR_SPACER | Flags::LEADING_WIDE_CHAR_SPACER)
                {
                    continue;
                }
                let last = if cell.flags.contains(Flags::WIDE_CHAR) {
                    c + 1
                } else {
                    c
                };
                chars.push(fold(if cell.c == '\0' { ' ' } else { cell.c }));
                at.push((l, c, last));
            }
            l += 1;
            if !row[Column(cols - 1)].flags.contains(Flags::WRAPLINE) {
                break;
            }
        }
        l
    }

    /// The first line of the logical line that holds `line`.
    fn logical_start(&self, line: i32) -> i32 {
        let g = self.term.grid();
        let top = -(g.history_size() as i32);
        let last = Column(g.columns() - 1);
        let mut l = line;
        while l > top && g[Line(l - 1)][last].flags.contains(Flags::WRAPLINE) {
            l -= 1;
        }
        l
    }

    /// Every match of the folded `query` in logical lines from `from` until
    /// one starts after `to`, oldest first.
    fn matches_in(&self, query: &[char], from: i32, to: i32) -> Vec<Match> {
        let mut out = Vec::new();
        if query.is_empty() {
            return out;
        }
        let (mut chars, mut at) = (Vec::new(), Vec::new());
        let mut l = self.logical_start(from);
        while l <= to {
            let next = self.logical_line(l, &mut chars, &mut at);
            let mut i = 0;
            while i + query.len() <= chars.len() {
                if chars[i..i + query.len()] == *query {
                    let (sl, sc, _) = at[i];
                    let (el, _, ec) = at[i + query.len() - 1];
                    out.push(Match {
                        start: (sl, sc),
                        end: (el, ec),
                    });
                    i += query.len();
                } else {
                    i += 1;
                }
            }
            if next == l {
                break;
            }
            l = next;
        }
        out
    }

    /// Every match of `query` (case-insensitive) in the scrollback and the
    /// screen, oldest first. Matches span wrapped lines; a wide character
    /// is one character of the text.
    pub fn find(&self, query: &str) -> Vec<Match> {
        let q: Vec<char> = query.chars().map(fold).collect();
        let g = self.term.grid();
        self.matches_in(&q, -(g.history_size() as i32), g.screen_lines() as i32 - 1)
    }

    /// The search, its matches found again if the content changed since.
    fn search_fresh(&self) -> std::cell::RefMut<'_, Search> {
        let mut search = self.search.borrow_mut();
        if !search.query.is_empty() && search.of_content != self.content {
            let g = self.term.grid();
            search.matches = self.matches_in(
                &search.query,
                -(g.history_size() as i32),
                g.screen_lines() as i32 - 1,
            );
            search.of_content = self.content;
            if search.index().is_none() {
                search.current = (!search.matches.is_empty()).then_some(0);
            }
        }
        search
    }

    /// Searches for `query` (empty: no search): every match is highlighted,
    /// and the one nearest the bottom of the view is selected and scrolled
    /// into view. Returns how many matched.
    pub fn search_for(&mut self, query: &str) -> usize {
        let matches = self.find(query);
        let bottom = self.term.grid().screen_lines() as i32 - 1 - self.display_offset() as i32;
        let selected = matches
            .iter()
            .rposition(|m| m.start.0 <= bottom)
            .or((!matches.is_empty()).then_some(0));
        let n = matches.len();
        let show = selected.map(|i| matches[i].start.0);
        *self.search.get_mut() = Search {
            query: query.chars().map(fold).collect(),
            matches,
            current: selected.map(|i| n - 1 - i),
            of_content: self.content,
        };
        if let Some(line) = show {
            self.show_line(line);
        }
        self.changed(false);
        n
    }

    /// Selects the next older match (`older`), or the next newer one,
    /// wrapping around, and scrolls it into view.
    pub fn search_step(&mut self, older: bool) -> Option<Match> {
        let m = {
            let mut search = self.search_fresh();
            let n = search.matches.len();
            if search.query.is_empty() || n == 0 {
                return None;
            }
            let from_end = match search.current {
                None => 0,
                Some(c) if older => (c + 1) % n,
                Some(c) => (c + n - 1) % n,
            };
            search.current = Some(from_end);
            search.matches[n - 1 - from_end]
        };
        self.show_line(m.start.0);
        self.changed(false);
        Some(m)
    }

    /// Ends the search (its highlights go; the view stays where it is).
    pub fn search_clear(&mut self) {
        if !self.search.get_mut().query.is_empty() {
            *self.search.get_mut() = Search::default();
            self.changed(false);
        }
    }

    /// The selected match's number (1: the oldest) and how many matched.
    pub fn search_status(&self) -> (Option<usize>, usize) {
        let search = self.search_fresh();
        (search.index().map(|i| i + 1), search.matches.len())
    }

    /// The selected match.
    pub fn search_current(&self) -> Option<Match> {
        let search = self.search_fresh();
        search.index().map(|i| search.matches[i])
    }

    /// Scrolls the view so `line` is shown (centred when it was not).
    fn show_line(&mut self, line: i32) {
        let g = self.term.grid();
        let rows = g.screen_lines() as i32;
        let offset = g.display_offset() as i32;
        let top = -offset;
        if (top..top + rows).contains(&line) {
            return;
        }
        let want = (rows / 2 - line).clamp(0, g.history_size() as i32);
        self.term.scroll_display(Scroll::Delta(want - offset));
    }

    // ------------------------------------------------------------ painting

    /// The colours of one cell as drawn.
    fn paint(&self, cell: &alacritty_terminal::term::cell::Cell, mark: Mark) -> (Rgb, Rgb) {
        let bold = cell.flags.contains(Flags::BOLD);
        let mut fg = self.rgb(cell.fg, bold);
        let mut bg = self.rgb(cell.bg, false);
        if cell.flags.contains(Flags::DIM) {
            fg = dim(fg);
        }
        if cell.flags.contains(Flags::INVERSE) {
            std::mem::swap(&mut fg, &mut bg);
        }
        if cell.flags.contains(Flags::HIDDEN) {
            fg = bg;
        }
        match mark {
            Mark::None => {}
            Mark::Selected => (fg, bg) = (DEFAULT_BG, SELECTION_BG),
            Mark::Match => (fg, bg) = (MATCH_FG, MATCH_BG),
            Mark::Current => (fg, bg) = (MATCH_FG, CURRENT_MATCH_BG),
        }
        (fg, bg)
    }

    /// Calls `row(r, cells)` for each of the first `rows` rows of the view
    /// with the cells of its first `cols` columns as drawn (selection,
    /// search matches and the cursor applied).
    fn paint_rows(
        &self,
        rows: usize,
        cols: usize,
    ) -> impl FnMut(usize, &mut Vec<PaintCell>) -> bool + '_ {
        let term = &self.term;
        let g = term.grid();
        let offset = g.display_offset() as i32;
        let selection = term.selection.as_ref().and_then(|s| s.to_range(term));
        let current = self.search_current();
        let query = self.search.borrow().query.clone();
        let matches = if query.is_empty() {
            Vec::new()
        } else {
            self.matches_in(&query, -offset, rows as i32 - 1 - offset)
        };
        let cur = term.renderable_content().cursor;
        let cursor = (cur.shape != CursorShape::Hidden).then_some((
            cur.point.line.0,
            cur.point.column.0,
            cur.shape,
        ));
        move |r, out| {
            if r >= rows {
                return false;
            }
            let line = r as i32 - offset;
            let row = &g[Line(line)];
            let here: Vec<&Match> = matches
                .iter()
                .filter(|m| m.start.0 <= line && line <= m.end.0)
                .collect();
            for c in 0..cols.min(g.columns()) {
                let cell = &row[Column(c)];
                if cell
                    .flags
                    .intersects(Flags::WIDE_CHAR_SPACER | Flags::LEADING_WIDE_CHAR_SPACER)
                {
                    continue;
                }
                let mark = if selection
                    .as_ref()
                    .is_some_and(|s| s.contains(GridPoint::new(Line(line), Column(c))))
                {
                    Mark::Selected
                } else if let Some(m) = here.iter().find(|m| m.contains((line, c))) {
                    if Some(**m) == current {
                        Mark::Current
                    } else {
                        Mark::Match
                    }
                } else {
                    Mark::None
                };
                let (mut fg, mut bg) = self.paint(cell, mark);
                let mut bar = Bar::None;
                if let Some((cl, cc, shape)) = cursor
                    && cl == line
                    && cc == c
                {
                    match shape {
                        CursorShape::Underline => bar = Bar::Underline,
                        CursorShape::Beam => bar = Bar::Beam,
                        _ => {
                            std::mem::swap(&mut fg, &mut bg);
                            if bg == DEFAULT_BG {
                                bg = DEFAULT_FG;
                            }
                        }
                    }
                }
                out.push(PaintCell {
                    col: c as u16,
                    width: if cell.flags.contains(Flags::WIDE_CHAR) {
                        2
                    } else {
                        1
                    },
                    c: if cell.c == '\0' { ' ' } else { cell.c },
                    zerowidth: cell.zerowidth().map(|z| z.into()),
                    fg: rgb8(fg),
                    bg: rgb8(bg),
                    bold: cell.flags.contains(Flags::BOLD),
                    underline: cell.flags.intersects(Flags::ALL_UNDERLINES),
                    strike: cell.flags.contains(Flags::STRIKEOUT),
                    bar,
                });
            }
            true
        }
    }

    /// The widget showing this grid; `on` maps what the person does to it.
    pub fn view<'a, M: 'a>(&'a self, on: impl Fn(GridEvent) -> M + 'a) -> Element<'a, M> {
        Element::new(GridView {
            grid: self,
            size: self.font_size,
            paced: true,
            on: Box::new(on),
        })
    }

    /// The same widget drawing a new frame whenever the grid changed, with
    /// no pacing (benchmarks comparing with the earlier frame-per-batch
    /// model).
    pub fn view_every_change<'a, M: 'a>(
        &'a self,
        on: impl Fn(GridEvent) -> M + 'a,
    ) -> Element<'a, M> {
        Element::new(GridView {
            grid: self,
            size: self.font_size,
            paced: false,
            on: Box::new(on),
        })
    }
}

/// A recording played back into the grid (answers to the device's
/// queries are dropped: there is no device).
impl crate::recordings::TermSink for TermGrid {
    fn feed(&mut self, bytes: &[u8]) {
        TermGrid::feed(self, bytes);
        self.take_answers();
    }

    fn resize(&mut self, cols: u16, rows: u16) {
        TermGrid::resize(self, cols, rows);
    }

    fn reset(&mut self, cols: u16, rows: u16) {
        let size = self.font_size;
        *self = TermGrid::new(cols, rows);
        self.font_size = size;
    }
}

/// Key press → the bytes a terminal sends for it (`None`: not for the
/// terminal). `text` is what the key typed (layout and Shift applied).
pub fn key_bytes(key: &Key, m: Modifiers, text: Option<&str>, app_cursor: bool) -> Option<Vec<u8>> {
    let esc = |s: &str| {
        let mut v = vec![0x1b];
        v.extend_from_slice(s.as_bytes());
        v
    };
    // xterm's modifier parameter: 1 + shift + 2*alt + 4*ctrl.
    let modp = 1 + u8::from(m.shift()) + 2 * u8::from(m.alt()) + 4 * u8::from(m.control());
    let cursor = |c: char| {
        if modp > 1 {
            esc(&format!("[1;{modp}{c}"))
        } else if app_cursor {
            esc(&format!("O{c}"))
        } else {
            esc(&format!("[{c}"))
        }
    };
    let tilde = |n: u8| {
        if modp > 1 {
            esc(&format!("[{n};{modp}~"))
        } else {
            esc(&format!("[{n}~"))
        }
    };
    match key {
        Key::Named(n) => Some(match n {
            Named::Enter => b"\r".to_vec(),
            Named::Backspace => {
                if m.alt() {
                    vec![0x1b, 0x7f]
                } else if m.control() {
                    vec![0x08]
                } else {
                    vec![0x7f]
                }
            }
            Named::Tab => {
                if m.shift() {
                    esc("[Z")
                } else {
                    b"\t".to_vec()
                }
            }
            Named::Escape => vec![0x1b],
            Named::ArrowUp => cursor('A'),
            Named::ArrowDown => cursor('B'),
            Named::ArrowRight => cursor('C'),
            Named::ArrowLeft => cursor('D'),
            Named::Home => cursor('H'),
            Named::End => cursor('F'),
            Named::Insert => tilde(2),
            Named::Delete => tilde(3),
            Named::PageUp => tilde(5),
            Named::PageDown => tilde(6),
            Named::F1 => esc("OP"),
            Named::F2 => esc("OQ"),
            Named::F3 => esc("OR"),
            Named::F4 => esc("OS"),
            Named::F5 => tilde(15),
            Named::F6 => tilde(17),
            Named::F7 => tilde(18),
            Named::F8 => tilde(19),
            Named::F9 => tilde(20),
            Named::F10 => tilde(21),
            Named::F11 => tilde(23),
            Named::F12 => tilde(24),
            Named::Space => {
                if m.control() {
                    vec![0]
                } else if m.alt() {
                    esc(" ")
                } else {
                    b" ".to_vec()
                }
            }
            _ => return None,
        }),
        Key::Character(c) => {
            let c = c.as_str();
            if m.control() {
                let ch = c.chars().next()?;
                let b = match ch.to_ascii_lowercase() {
                    l @ 'a'..='z' => l as u8 - b'a' + 1,
                    '@' | '2' => 0,
                    '[' | '3' => 0x1b,
                    '\\' | '4' => 0x1c,
                    ']' | '5' => 0x1d,
                    '^' | '6' => 0x1e,
                    '_' | '-' | '7' => 0x1f,
                    '?' | '8' => 0x7f,
                    _ => return None,
                };
                return Some(if m.alt() { vec![0x1b, b] } else { vec![b] });
            }
            let typed = text.filter(|t| !t.is_empty() && !t.chars().any(char::is_control));
            let typed = typed.unwrap_or(c);
            if m.alt() {
                Some(esc(typed))
            } else {
                Some(typed.as_bytes().to_vec())
            }
        }
        Key::Unidentified => None,
    }
}

/// Wraps pasted text for the peer: bracketed when it asked, and with line
/// breaks as Enter (`\r`). Escape bytes inside are dropped so a paste cannot
/// end the bracket early or smuggle control sequences.
pub fn paste_bytes(text: &str, bracketed: bool) -> Vec<u8> {
    let body: String = text
        .replace("\r\n", "\r")
        .replace('\n', "\r")
        .chars()
        .filter(|c| *c != '\u{1b}')
        .collect();
    if bracketed {
        let mut v = b"\x1b[200~".to_vec();
        v.extend_from_slice(body.as_bytes());
        v.extend_from_slice(b"\x1b[201~");
        v
    } else {
        body.into_bytes()
    }
}

// ---------------------------------------------------------------- colors

const DEFAULT_FG: Rgb = Rgb {
    r: 0xd4,
    g: 0xd4,
    b: 0xd4,
};
const DEFAULT_BG: Rgb = Rgb {
    r: 0x1c,
    g: 0x1c,
    b: 0x1c,
};
const PALETTE16: [Rgb; 16] = [
    Rgb {
        r: 0x00,
        g: 0x00,
        b: 0x00,
    },
    Rgb {
        r: 0xcd,
        g: 0x31,
        b: 0x31,
    },
    Rgb {
        r: 0x0d,
        g: 0xbc,
        b: 0x79,
    },
    Rgb {
        r: 0xe5,
        g: 0xe5,
        b: 0x10,
    },
    Rgb {
        r: 0x24,
        g: 0x72,
        b: 0xc8,
    },
    Rgb {
        r: 0xbc,
        g: 0x3f,
        b: 0xbc,
    },
    Rgb {
        r: 0x11,
        g: 0xa8,
        b: 0xcd,
    },
    Rgb {
        r: 0xe5,
        g: 0xe5,
        b: 0xe5,
    },
    Rgb {
        r: 0x66,
        g: 0x66,
        b: 0x66,
    },
    Rgb {
        r: 0xf1,
        g: 0x4c,
        b: 0x4c,
    },
    Rgb {
        r: 0x23,
        g: 0xd1,
        b: 0x8b,
    },
    Rgb {
        r: 0xf5,
        g: 0xf5,
        b: 0x43,
    },
    Rgb {
        r: 0x3b,
        g: 0x8e,
        b: 0xea,
    },
    Rgb {
        r: 0xd6,
        g: 0x70,
        b: 0xd6,
    },
    Rgb {
        r: 0x29,
        g: 0xb8,
        b: 0xdb,
    },
    Rgb {
        r: 0xff,
        g: 0xff,
        b: 0xff,
    },
];

/// The xterm 256-color palette entry `i` (16..=255: cube and grays).
fn indexed(i: u8) -> Rgb {
    match i {
        0..=15 => PALETTE16[usize::from(i)],
        16..=231 => {
            let i = i - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            Rgb {
                r: level(i / 36),
                g: level((i / 6) % 6),
                b: level(i % 6),
            }
        }
        232..=255 => {
            let v = 8 + (i - 232) * 10;
            Rgb { r: v, g: v, b: v }
        }
    }
}

fn dim(c: Rgb) -> Rgb {
    Rgb {
        r: (u16::from(c.r) * 2 / 3) as u8,
        g: (u16::from(c.g) * 2 / 3) as u8,
        b: (u16::from(c.b) * 2 / 3) as u8,
    }
}

impl TermGrid {
    /// The RGB of a cell color (OSC 4 overrides first), bold brightening
    /// the eight basic colors as xterm does.
    fn rgb(&self, c: AnsiColor, bold: bool) -> Rgb {
        let colors = self.term.colors();
        match c {
            AnsiColor::Spec(rgb) => rgb,
            AnsiColor::Indexed(i) => {
                let i = if bold && i < 8 { i + 8 } else { i };
                colors[usize::from(i)].unwrap_or_else(|| indexed(i))
            }
            AnsiColor::Named(n) => {
                let idx = n as usize;
                if let Some(rgb) = colors[idx] {
                    return rgb;
                }
                match n {
                    NamedColor::Foreground | NamedColor::BrightForeground => DEFAULT_FG,
                    NamedColor::Background => DEFAULT_BG,
                    NamedColor::Cursor => DEFAULT_FG,
                    NamedColor::DimForeground => dim(DEFAULT_FG),
                    _ if idx < 8 && bold => PALETTE16[idx + 8],
                    _ if idx < 16 => PALETTE16[idx],
                    // Dim black..white follow Foreground's block.
                    _ => {
                        let base = idx.saturating_sub(NamedColor::DimBlack as usize);
                        dim(PALETTE16[base.min(7)])
                    }
                }
            }
        }
    }
}

fn color(c: Rgb) -> Color {
    Color::from_rgb8(c.r, c.g, c.b)
}

fn rgb8(c: Rgb) -> Rgb8 {
    [c.r, c.g, c.b]
}

/// The selection's background (its text is drawn in the default background).
const SELECTION_BG: Rgb = Rgb {
    r: 0x9c,
    g: 0xc4,
    b: 0xf0,
};
/// A search match's text and background.
const MATCH_FG: Rgb = Rgb {
    r: 0x10,
    g: 0x10,
    b: 0x10,
};
pub const MATCH_BG: Rgb = Rgb {
    r: 0xe5,
    g: 0xc0,
    b: 0x7b,
};
/// The selected match's background.
pub const CURRENT_MATCH_BG: Rgb = Rgb {
    r: 0xff,
    g: 0x8c,
    b: 0x00,
};

/// What marks a cell beyond its own colours.
#[derive(Clone, Copy)]
enum Mark {
    None,
    Selected,
    Match,
    Current,
}

// ---------------------------------------------------------------- widget

struct GridView<'a, M> {
    grid: &'a TermGrid,
    size: f32,
    /// At most one frame per display refresh ([`TermGrid::view`]).
    paced: bool,
    on: Box<dyn Fn(GridEvent) -> M + 'a>,
}

/// The widget's own state: a drag in progress, the size last reported,
/// and the frame (row images) last drawn, which the next frame reuses.
#[derive(Default)]
struct ViewState {
    dragging: bool,
    reported: Option<(u16, u16)>,
    frame: RefCell<Frame>,
}

impl<M> GridView<'_, M> {
    /// The grid point under `p` (widget-relative pixels).
    fn point_at(&self, bounds: Rectangle, p: Point) -> (i32, usize) {
        let (w, h) = cell_size(self.size);
        let row = ((p.y - bounds.y) / h).floor().max(0.0) as i32;
        let col = ((p.x - bounds.x) / w).floor().max(0.0) as usize;
        (row - self.grid.display_offset() as i32, col)
    }

    /// The rows and columns shown in `bounds`, and the rows' width in pixels.
    fn shown(&self, bounds: Rectangle) -> (usize, usize, u32) {
        let g = self.grid.term.grid();
        let (cw, ch) = cell_size(self.size);
        let rows = ((bounds.height / ch).ceil() as usize).min(g.screen_lines());
        let cols = ((bounds.width / cw).ceil() as usize).min(g.columns());
        let width = ((cols as f32 * cw).ceil() as u32).max(1);
        (rows, cols, width)
    }

    /// What a frame of this grid in `bounds` shows (the frame is redrawn
    /// only when this changes).
    fn shows(&self, bounds: Rectangle) -> [u64; 5] {
        let (rows, _, width) = self.shown(bounds);
        [
            self.grid.id,
            self.grid.generation,
            u64::from(width),
            rows as u64,
            u64::from(self.size.to_bits()),
        ]
    }
}

impl<M> Widget<M, iced::Theme, iced::Renderer> for GridView<'_, M> {
    fn size(&self) -> Size<Length> {
        Size::new(Length::Fill, Length::Fill)
    }

    fn tag(&self) -> tree::Tag {
        tree::Tag::of::<ViewState>()
    }

    fn state(&self) -> tree::State {
        tree::State::new(ViewState::default())
    }

    fn layout(
        &mut self,
        _tree: &mut Tree,
        _renderer: &iced::Renderer,
        limits: &layout::Limits,
    ) -> layout::Node {
        layout::atomic(limits, Length::Fill, Length::Fill)
    }

    fn operate(
        &mut self,
        _tree: &mut Tree,
        layout: Layout<'_>,
        _renderer: &iced::Renderer,
        operation: &mut dyn iced_core::widget::Operation,
    ) {
        // Each shown row as a text (what `find`/screen readers see).
        let bounds = layout.bounds();
        let (_, h) = cell_size(self.size);
        let offset = self.grid.display_offset() as i32;
        let (_, rows) = self.grid.size();
        for r in 0..i32::from(rows) {
            let line = self.grid.line(r - offset);
            if !line.is_empty() {
                let b = Rectangle::new(
                    Point::new(bounds.x, bounds.y + r as f32 * h),
                    Size::new(bounds.width, h),
                );
                operation.text(None, b, &line);
            }
        }
    }

    fn update(
        &mut self,
        tree: &mut Tree,
        event: &Event,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        _renderer: &iced::Renderer,
        clipboard: &mut dyn Clipboard,
        shell: &mut Shell<'_, M>,
        _viewport: &Rectangle,
    ) {
        let state = tree.state.downcast_mut::<ViewState>();
        let bounds = layout.bounds();
        // The grid changed but its frame is not due yet: redraw when it is.
        if let Event::Window(iced::window::Event::RedrawRequested(now)) = event {
            let frame = state.frame.borrow();
            if !frame.shows(self.shows(bounds))
                && let Some(due) = frame.next_due(*now)
            {
                shell.request_redraw_at(due);
            }
        }
        let fits = fit(bounds.size(), self.size);
        if fits == self.grid.size() {
            state.reported = Some(fits);
        } else if state.reported != Some(fits) {
            state.reported = Some(fits);
            shell.publish((self.on)(GridEvent::Resize {
                cols: fits.0,
                rows: fits.1,
            }));
        }
        match event {
            Event::Mouse(mouse::Event::WheelScrolled { delta }) if cursor.is_over(bounds) => {
                let lines = match delta {
                    mouse::ScrollDelta::Lines { y, .. } => (y * 3.0).round() as i32,
                    mouse::ScrollDelta::Pixels { y, .. } => {
                        (y / cell_size(self.size).1).round() as i32
                    }
                };
                if lines != 0 {
                    shell.publish((self.on)(GridEvent::Scroll(lines)));
                    shell.capture_event();
                }
            }
            Event::Mouse(mouse::Event::ButtonPressed(mouse::Button::Left)) => {
                if let Some(p) = cursor.position_over(bounds) {
                    let (line, col) = self.point_at(bounds, p);
                    state.dragging = true;
                    shell.publish((self.on)(GridEvent::SelectStart { line, col }));
                    shell.capture_event();
                }
            }
            Event::Mouse(mouse::Event::CursorMoved { position }) if state.dragging => {
                let (line, col) = self.point_at(bounds, *position);
                shell.publish((self.on)(GridEvent::SelectTo { line, col }));
            }
            Event::Mouse(mouse::Event::ButtonReleased(mouse::Button::Left)) => {
                state.dragging = false;
            }
            Event::Keyboard(iced::keyboard::Event::KeyPressed { key, modifiers, .. }) => {
                let m = *modifiers;
                match key {
                    Key::Character(c) if m.control() && m.shift() => {
                        match c.as_str().to_ascii_lowercase().as_str() {
                            "c" => {
                                if let Some(t) = self.grid.selection_text() {
                                    clipboard.write(clipboard::Kind::Standard, t);
                                }
                                shell.capture_event();
                            }
                            "v" => {
                                if let Some(t) = clipboard.read(clipboard::Kind::Standard) {
                                    shell.publish((self.on)(GridEvent::Paste(t)));
                                }
                                shell.capture_event();
                            }
                            _ => {}
                        }
                    }
                    Key::Named(Named::PageUp) if m.shift() && !m.control() => {
                        shell.publish((self.on)(GridEvent::Page(true)));
                        shell.capture_event();
                    }
                    Key::Named(Named::PageDown) if m.shift() && !m.control() => {
                        shell.publish((self.on)(GridEvent::Page(false)));
                        shell.capture_event();
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn mouse_interaction(
        &self,
        _tree: &Tree,
        layout: Layout<'_>,
        cursor: mouse::Cursor,
        _viewport: &Rectangle,
        _renderer: &iced::Renderer,
    ) -> mouse::Interaction {
        if cursor.is_over(layout.bounds()) {
            mouse::Interaction::Text
        } else {
            mouse::Interaction::None
        }
    }

    fn draw(
        &self,
        tree: &Tree,
        renderer: &mut iced::Renderer,
        _theme: &iced::Theme,
        _style: &renderer::Style,
        layout: Layout<'_>,
        _cursor: mouse::Cursor,
        _viewport: &Rectangle,
    ) {
        use iced_core::Renderer as _;
        use iced_core::image::Renderer as _;
        let bounds = layout.bounds();
        renderer.fill_quad(
            Quad {
                bounds,
                ..Quad::default()
            },
            color(DEFAULT_BG),
        );
        let state = tree.state.downcast_ref::<ViewState>();
        let mut frame = state.frame.borrow_mut();
        let shows = self.shows(bounds);
        let now = Instant::now();
        // A new frame only when the grid changed and a refresh interval
        // has passed since the last one (`update` asks for a redraw then);
        // until then the last frame's rows are drawn again.
        if !frame.shows(shows) && (!self.paced || frame.next_due(now).is_none()) {
            let (rows, cols, width) = self.shown(bounds);
            frame.draw(
                now,
                shows,
                width,
                self.size,
                cell_size(self.size),
                rgb8(DEFAULT_BG),
                self.grid.paint_rows(rows, cols),
            );
            self.grid.frames.set(self.grid.frames.get() + 1);
        }
        let (_, ch) = cell_size(self.size);
        let (x, y) = (bounds.x.round(), bounds.y.round());
        for (r, row) in frame.rows().enumerate() {
            let top = y + r as f32 * ch;
            for &(x0, x1, bg) in &row.backgrounds {
                renderer.fill_quad(
                    Quad {
                        bounds: Rectangle::new(
                            Point::new(x + x0 as f32, top),
                            Size::new((x1 - x0) as f32, ch),
                        ),
                        ..Quad::default()
                    },
                    Color::from_rgb8(bg[0], bg[1], bg[2]),
                );
            }
            for (px, py, image) in &row.pieces {
                let Some(size) = image_size(image) else {
                    continue;
                };
                renderer.draw_image(
                    iced_core::Image {
                        filter_method: iced_core::image::FilterMethod::Nearest,
                        snap: true,
                        ..iced_core::Image::new(image.clone())
                    },
                    Rectangle::new(Point::new(x + *px as f32, top + *py as f32), size),
                    bounds,
                );
            }
        }
    }
}

/// The size of a row image (made from RGBA pixels).
fn image_size(h: &iced_core::image::Handle) -> Option<Size> {
    match h {
        iced_core::image::Handle::Rgba { width, height, .. } => {
            Some(Size::new(*width as f32, *height as f32))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_font_size_setting_redraws_and_refits_the_cells() {
        let mut g = TermGrid::new(80, 24);
        assert_eq!(g.font_size(), FONT_SIZE);
        let before = g.generation;
        g.set_font_size(20.0);
        assert_eq!(g.font_size(), 20.0);
        assert!(g.generation > before, "a new frame is due");
        // Bigger cells: fewer of them fit the same area.
        let area = Size::new(1000.0, 600.0);
        let (c13, r13) = fit(area, FONT_SIZE);
        let (c20, r20) = fit(area, g.font_size());
        assert!(c20 < c13 && r20 < r13, "{c13}x{r13} vs {c20}x{r20}");
        // Out of range sizes are held to 8..=40 pixels.
        g.set_font_size(2.0);
        assert_eq!(g.font_size(), 8.0);
        g.set_font_size(400.0);
        assert_eq!(g.font_size(), 40.0);
        // A recording's reset keeps it.
        crate::recordings::TermSink::reset(&mut g, 80, 24);
        assert_eq!(g.font_size(), 40.0);
    }

    #[test]
    fn feeds_text_colors_and_wraps() {
        let mut g = TermGrid::new(10, 3);
        g.feed(b"hello\r\n\x1b[31;1mred\x1b[0m \x1b[38;5;200mx\x1b[38;2;1;2;3my");
        assert_eq!(g.line(0), "hello");
        assert_eq!(g.line(1), "red xy");
        g.feed(b"\r\n0123456789ABC");
        // Wrapped at 10 columns; the first line went to history.
        assert_eq!(g.text(), "red xy\n0123456789\nABC");
        assert_eq!(g.history(), 1);
        g.feed(b"\r\nmore");
        assert_eq!(g.history(), 2);
        assert_eq!(g.line(-2), "hello");
    }

    #[test]
    fn escape_sequences_split_across_feeds() {
        let mut g = TermGrid::new(20, 2);
        for b in b"ab\x1b[2J\x1b[Hcd\x1b[1;5Hx" {
            g.feed(&[*b]);
        }
        assert_eq!(g.line(0), "cd  x");
    }

    #[test]
    fn answers_cursor_position_reports_but_not_clipboard_reads() {
        let mut g = TermGrid::new(20, 5);
        g.feed(b"ab\x1b[6n");
        assert_eq!(g.take_answers(), b"\x1b[1;3R");
        // OSC 52 read: no answer (the clipboard is not the device's).
        g.feed(b"\x1b]52;c;?\x07");
        assert!(g.take_answers().is_empty());
    }

    #[test]
    fn scrollback_selection_and_resize() {
        let mut g = TermGrid::new(10, 2);
        for i in 0..20 {
            g.feed(format!("l{i}\r\n").as_bytes());
        }
        assert_eq!(g.text(), "l19");
        g.scroll(3);
        assert_eq!(g.display_offset(), 3);
        assert_eq!(g.text(), "l16\nl17");
        g.scroll_to_bottom();
        g.select_start(-1, 0);
        g.select_to(0, 9);
        assert_eq!(g.selection_text().as_deref(), Some("l18\nl19"));
        g.resize(30, 4);
        assert_eq!(g.size(), (30, 4));
    }

    #[test]
    fn plays_a_recording_as_a_term_sink() {
        use crate::recordings::TermSink;
        let mut g = TermGrid::new(20, 3);
        TermSink::feed(&mut g, b"one\x1b[6n\r\ntwo");
        assert_eq!(g.text(), "one\ntwo");
        assert!(g.take_answers().is_empty(), "no device to answer");
        TermSink::resize(&mut g, 30, 5);
        assert_eq!(g.size(), (30, 5));
        TermSink::reset(&mut g, 10, 2);
        assert_eq!((g.size(), g.text()), ((10, 2), String::new()));
    }

    #[test]
    fn search_finds_matches_across_the_whole_scrollback_case_insensitively() {
        let mut g = TermGrid::new(40, 10);
        // 12,000 lines: the first 2,000 or so fall out of the 10,000-line
        // scrollback; a needle every 1,000 lines.
        for i in 0..12_000 {
            if i % 1000 == 500 {
                g.feed(format!("line {i} Needle-{i}\r\n").as_bytes());
            } else {
                g.feed(format!("line {i}\r\n").as_bytes());
            }
        }
        assert_eq!(g.history(), SCROLLBACK);
        let found = g.find("NEEDLE-");
        let lines: Vec<String> = found.iter().map(|m| g.line(m.start.0)).collect();
        assert_eq!(
            lines,
            (2..12)
                .map(|k| format!("line {0} Needle-{0}", k * 1000 + 500))
                .collect::<Vec<_>>(),
            "every needle still kept, oldest first"
        );
        // Columns: "line 2500 " is 10 characters, the match is 7.
        assert_eq!(found[0].start.1, 10);
        assert_eq!(found[0].end, (found[0].start.0, 16));
        assert!(g.find("no such text").is_empty());
    }

    #[test]
    fn search_matches_across_wrapped_lines() {
        let mut g = TermGrid::new(10, 4);
        g.feed(b"abcdefghijklmnop\r\nnext line");
        // "abcdefghij" then "klmnop": a wrapped line is one line of text.
        let m = g.find("IJKL");
        assert_eq!(
            m,
            vec![Match {
                start: (0, 8),
                end: (1, 1)
            }]
        );
        // A line that ended (no wrap) does not run into the next one.
        assert!(g.find("opnext").is_empty());
        assert!(g.find("op next").is_empty());
    }

    #[test]
    fn search_counts_a_wide_character_as_one_character() {
        let mut g = TermGrid::new(20, 3);
        g.feed("ab日本語cd\r\n".as_bytes());
        // a b 日(2-3) 本(4-5) 語(6-7) c(8) d(9)
        assert_eq!(
            g.find("本語c"),
            vec![Match {
                start: (0, 4),
                end: (0, 8)
            }]
        );
        assert_eq!(
            g.find("b日"),
            vec![Match {
                start: (0, 1),
                end: (0, 3)
            }]
        );
        // A wide character that did not fit at the end of a row wraps whole.
        let mut g = TermGrid::new(5, 3);
        g.feed("abcd日本".as_bytes());
        assert_eq!(
            g.find("d日本"),
            vec![Match {
                start: (0, 3),
                end: (1, 3)
            }]
        );
    }

    #[test]
    fn search_selects_steps_and_scrolls_to_matches() {
        let mut g = TermGrid::new(30, 5);
        for i in 0..100 {
            let mark = if [10, 50, 97].contains(&i) {
                " HIT"
            } else {
                ""
            };
            g.feed(format!("row {i}{mark}\r\n").as_bytes());
        }
        // Typed: the match nearest the bottom (row 97, on the screen) is
        // selected; the view stays at the bottom.
        assert_eq!(g.search_for("hit"), 3);
        assert_eq!(g.search_status(), (Some(3), 3));
        assert_eq!(g.display_offset(), 0);
        // Enter: the next older one, scrolled into view.
        let m = g.search_step(true).expect("a match");
        assert_eq!(g.line(m.start.0), "row 50 HIT");
        assert!(g.text().contains("row 50 HIT"), "{}", g.text());
        assert_eq!(g.search_status(), (Some(2), 3));
        g.search_step(true);
        assert!(g.text().contains("row 10 HIT"), "{}", g.text());
        // Past the oldest it wraps around to the newest; Shift+Enter goes back.
        g.search_step(true);
        assert_eq!(g.search_status(), (Some(3), 3));
        g.search_step(false);
        assert_eq!(g.search_status(), (Some(1), 3));
        assert!(g.text().contains("row 10 HIT"));
        // The shown matches are drawn highlighted, the selected one apart.
        let (rows, cols) = (5, 30);
        let mut paint = g.paint_rows(rows, cols);
        let mut current = 0;
        for r in 0..rows {
            let mut cells = Vec::new();
            assert!(paint(r, &mut cells));
            current += cells
                .iter()
                .filter(|c| c.bg == rgb8(CURRENT_MATCH_BG))
                .count();
        }
        assert_eq!(current, 3, "the three cells of the selected \"HIT\"");
        drop(paint);
        // Closed: no highlight; the view stays.
        g.search_clear();
        assert_eq!(g.search_status(), (None, 0));
        assert!(g.text().contains("row 10 HIT"));
    }

    /// How many cells of the shown rows are drawn as the selected match.
    fn current_cells(g: &TermGrid) -> usize {
        let (cols, rows) = g.size();
        let mut paint = g.paint_rows(usize::from(rows), usize::from(cols));
        let mut n = 0;
        for r in 0..usize::from(rows) {
            let mut cells = Vec::new();
            paint(r, &mut cells);
            n += cells
                .iter()
                .filter(|c| c.bg == rgb8(CURRENT_MATCH_BG))
                .count();
        }
        n
    }

    #[test]
    fn the_selected_match_stays_selected_when_lines_move() {
        let mut g = TermGrid::new(40, 10);
        for i in 0..30 {
            g.feed(format!("line {i}\r\n").as_bytes());
        }
        g.feed(b"Configuration register is 0x0\r\nSW1>");
        assert_eq!(g.search_for("configuration register"), 1);
        assert_eq!(current_cells(&g), 22);
        // The search bar takes two rows: the grid shrinks, lines move up.
        g.resize(40, 8);
        assert_eq!(current_cells(&g), 22, "after a resize");
        // New output without a match moves them again.
        g.feed(b"\r\nSW1>\r\nSW1>");
        assert_eq!(current_cells(&g), 22, "after new output");
        assert_eq!(g.search_status(), (Some(1), 1));
    }

    #[test]
    fn search_follows_new_output() {
        let mut g = TermGrid::new(30, 4);
        g.feed(b"one HIT\r\n");
        assert_eq!(g.search_for("hit"), 1);
        for i in 0..20 {
            g.feed(format!("more {i}\r\n").as_bytes());
        }
        g.feed(b"two HIT\r\n");
        // Stepping after new output searches again: both are found.
        g.search_step(false);
        assert_eq!(g.search_status().1, 2);
    }

    #[test]
    fn keys_to_bytes() {
        let none = Modifiers::empty();
        let ch = |s: &str| Key::Character(s.into());
        assert_eq!(
            key_bytes(&ch("a"), none, Some("a"), false),
            Some(b"a".to_vec())
        );
        assert_eq!(
            key_bytes(&ch("a"), Modifiers::SHIFT, Some("A"), false),
            Some(b"A".to_vec())
        );
        assert_eq!(
            key_bytes(&ch("c"), Modifiers::CTRL, None, false),
            Some(vec![3])
        );
        assert_eq!(
            key_bytes(&Key::Named(Named::ArrowUp), none, None, false),
            Some(b"\x1b[A".to_vec())
        );
        assert_eq!(
            key_bytes(&Key::Named(Named::ArrowUp), none, None, true),
            Some(b"\x1bOA".to_vec())
        );
        assert_eq!(
            key_bytes(&Key::Named(Named::Enter), none, None, false),
            Some(b"\r".to_vec())
        );
        assert_eq!(
            key_bytes(&Key::Named(Named::Backspace), none, None, false),
            Some(vec![0x7f])
        );
        assert_eq!(
            key_bytes(&ch("b"), Modifiers::ALT, Some("b"), false),
            Some(b"\x1bb".to_vec())
        );
        assert_eq!(
            key_bytes(&Key::Named(Named::Shift), none, None, false),
            None
        );
    }

    #[test]
    fn paste_is_bracketed_and_cannot_escape() {
        assert_eq!(
            paste_bytes("a\nb\x1b[201~rm", true),
            b"\x1b[200~a\rb[201~rm\x1b[201~".to_vec()
        );
        assert_eq!(paste_bytes("x\r\ny", false), b"x\ry".to_vec());
    }
}

//! The terminal's frames: the cells [`crate::term_grid::TermGrid`] shows,
//! rasterized into one RGBA image per screen row, at most once per display
//! refresh.
//!
//! Owns: the glyph masks (each glyph of [`crate::MONO`] rasterized once per
//! sub-pixel position with cosmic-text/swash, from iced's own font system,
//! so fallback faces are the ones iced would pick), the row images of the
//! last frame keyed by what the row shows (a row that did not change, or
//! only moved up when output scrolled, is not rasterized again and keeps its
//! image, which the renderer keeps too), and the pacing: a new frame only
//! when the grid changed and a refresh interval has passed since the last.
//!
//! Why not one text primitive per run of cells: iced's software renderer
//! blends every glyph with its own pixmap draw call (about 3 µs each), so a
//! 120x40 screen of coloured text cost ~15 ms a frame. Here a row is filled
//! and its glyph masks blended in a loop over bytes, and the renderer draws
//! one image per row.
//!
//! Must never: hold anything but pixels and glyph masks (no text outlives
//! the frame it was drawn in, beyond the row images on screen), or panic
//! on any cell (missing glyphs draw nothing).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use iced_core::image::Handle;
use iced_renderer::graphics::text::cosmic_text::{
    self, Attrs, Buffer, CacheKey, Family, LayoutGlyph, Metrics, SwashCache, SwashContent,
};

/// One display refresh (60 Hz): the least time between two frames of a
/// terminal.
pub const FRAME_INTERVAL: Duration = Duration::from_nanos(16_666_667);
/// How early a frame may come: a window's timer wakes it a little late or
/// early, and a redraw within this of its due time is drawn, not put off
/// to the next refresh.
const FRAME_SLACK: Duration = Duration::from_millis(2);

/// A colour as the rows store it: red, green, blue.
pub type Rgb8 = [u8; 3];

/// How one cell (or a wide cell's two columns) is painted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaintCell {
    /// First column.
    pub col: u16,
    /// Columns it covers (2 for a wide character).
    pub width: u8,
    /// The character (`' '` for an empty cell) and any zero-width ones
    /// after it (combining marks).
    pub c: char,
    pub zerowidth: Option<Box<[char]>>,
    pub fg: Rgb8,
    pub bg: Rgb8,
    pub bold: bool,
    pub underline: bool,
    pub strike: bool,
    /// A cursor drawn as a bar over the cell (a block cursor is drawn as
    /// swapped colours instead).
    pub bar: Bar,
}

/// A line cursor's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Bar {
    #[default]
    None,
    Underline,
    Beam,
}

/// One glyph mask, placed relative to its pen position.
struct Mask {
    left: i32,
    top: i32,
    width: usize,
    height: usize,
    /// Alpha per pixel, or RGBA per pixel when `color`.
    data: Vec<u8>,
    color: bool,
}

/// Glyphs shaped and rasterized once, reused by every row.
struct Glyphs {
    size: f32,
    line_height: f32,
    swash: SwashCache,
    /// The shaped glyphs of a cell's text (one char, or a char and its
    /// combining marks), and the baseline.
    shaped: HashMap<String, (Vec<LayoutGlyph>, f32)>,
    ascii: Vec<Option<(Vec<LayoutGlyph>, f32)>>,
    masks: HashMap<CacheKey, Option<Mask>>,
}

impl Glyphs {
    fn new(size: f32, line_height: f32) -> Glyphs {
        Glyphs {
            size,
            line_height,
            swash: SwashCache::new(),
            shaped: HashMap::new(),
            ascii: vec![None; 128],
            masks: HashMap::new(),
        }
    }

    fn shape(
        fonts: &mut cosmic_text::FontSystem,
        size: f32,
        line_height: f32,
        text: &str,
    ) -> (Vec<LayoutGlyph>, f32) {
        let mut buffer = Buffer::new(fonts, Metrics::new(size, line_height));
        buffer.set_size(fonts, None, None);
        let family = Family::Name("DejaVu Sans Mono");
        buffer.set_text(
            fonts,
            text,
            &Attrs::new().family(family),
            cosmic_text::Shaping::Advanced,
            None,
        );
        buffer.shape_until_scroll(fonts, false);
        let mut glyphs = Vec::new();
        let mut baseline = 0.0;
        if let Some(run) = buffer.layout_runs().next() {
            glyphs.extend(run.glyphs.iter().cloned());
            baseline = run.line_y;
        }
        (glyphs, baseline)
    }

    /// Blends the glyphs of `cell` at pen position `x` (row pixels) into
    /// `row` (`width` pixels wide, RGBA); widens `band` (the lines drawn on)
    /// to cover them.
    fn draw(
        &mut self,
        fonts: &mut cosmic_text::FontSystem,
        row: &mut [u8],
        width: usize,
        x: f32,
        cell: &PaintCell,
        band: &mut (usize, usize),
    ) {
        let (size, lh) = (self.size, self.line_height);
        let shaped = if cell.zerowidth.is_none() && cell.c.is_ascii() {
            let slot = &mut self.ascii[cell.c as usize];
            slot.get_or_insert_with(|| {
                Self::shape(fonts, size, lh, cell.c.encode_utf8(&mut [0; 4]))
            })
        } else {
            let mut text = String::from(cell.c);
            text.extend(cell.zerowidth.iter().flat_map(|z| z.iter()));
            self.shaped
                .entry(text)
                .or_insert_with_key(|t| Self::shape(fonts, size, lh, t))
        };
        let (glyphs, baseline) = (&shaped.0, shaped.1);
        let height = row.len() / 4 / width.max(1);
        let passes: &[f32] = if cell.bold { &[0.0, 0.6] } else { &[0.0] };
        for glyph in glyphs {
            for dx in passes {
                let p = glyph.physical((x + dx, 0.0), 1.0);
                let mask = self
                    .masks
                    .entry(p.cache_key)
                    .or_insert_with(|| rasterize(&mut self.swash, fonts, p.cache_key));
                let Some(mask) = mask else { continue };
                let ox = p.x + mask.left;
                let oy = p.y - mask.top + baseline.round() as i32;
                blend(row, width, height, ox, oy, mask, cell.fg, band);
            }
        }
    }
}

fn rasterize(
    swash: &mut SwashCache,
    fonts: &mut cosmic_text::FontSystem,
    key: CacheKey,
) -> Option<Mask> {
    let image = swash.get_image_uncached(fonts, key)?;
    let (w, h) = (
        image.placement.width as usize,
        image.placement.height as usize,
    );
    if w == 0 || h == 0 {
        return None;
    }
    let data = match image.content {
        SwashContent::Mask => image.data,
        SwashContent::Color => image.data,
        // Sub-pixel masks (RGBA coverage): their mean coverage.
        SwashContent::SubpixelMask => image
            .data
            .chunks_exact(4)
            .map(|p| ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8)
            .collect(),
    };
    Some(Mask {
        left: image.placement.left,
        top: image.placement.top,
        width: w,
        height: h,
        color: image.content == SwashContent::Color,
        data,
    })
}

/// Blends `mask` in colour `fg` into the RGBA `row` at (`ox`, `oy`), clipped.
#[allow(clippy::too_many_arguments)]
fn blend(
    row: &mut [u8],
    width: usize,
    height: usize,
    ox: i32,
    oy: i32,
    mask: &Mask,
    fg: Rgb8,
    band: &mut (usize, usize),
) {
    for my in 0..mask.height {
        let y = oy + my as i32;
        if y < 0 || y as usize >= height {
            continue;
        }
        band.0 = band.0.min(y as usize);
        band.1 = band.1.max(y as usize + 1);
        let line = y as usize * width;
        for mx in 0..mask.width {
            let x = ox + mx as i32;
            if x < 0 || x as usize >= width {
                continue;
            }
            let (a, src) = if mask.color {
                let i = (my * mask.width + mx) * 4;
                let p = &mask.data[i..i + 4];
                (p[3], [p[0], p[1], p[2]])
            } else {
                (mask.data[my * mask.width + mx], fg)
            };
            if a == 0 {
                continue;
            }
            let i = (line + x as usize) * 4;
            let dst = &mut row[i..i + 3];
            if a == 255 {
                dst.copy_from_slice(&src);
            } else {
                let a = u16::from(a);
                for k in 0..3 {
                    let d = u16::from(dst[k]);
                    let s = u16::from(src[k]);
                    dst[k] = ((s * a + d * (255 - a) + 127) / 255) as u8;
                }
            }
        }
    }
}

/// Fills pixels `x0..x1` of every line of `row` with `c`.
fn fill(row: &mut [u8], width: usize, x0: usize, x1: usize, y0: usize, y1: usize, c: Rgb8) {
    let px = [c[0], c[1], c[2], 255];
    for y in y0..y1 {
        let line = &mut row[(y * width + x0) * 4..(y * width + x1.min(width)) * 4];
        for p in line.chunks_exact_mut(4) {
            p.copy_from_slice(&px);
        }
    }
}

/// One shown row as the renderer draws it: its background runs (quads)
/// and the pieces of it that have ink (images).
#[derive(Clone, Default)]
pub struct RowDraw {
    /// (first pixel, end pixel, colour) of each run of cells whose
    /// background is not the terminal's.
    pub backgrounds: Vec<(u32, u32, Rgb8)>,
    /// (x, y) within the row, and the image: runs of cells with glyphs,
    /// lines or a cursor, cropped to the lines they draw on. Blank cells
    /// are not in any image (the renderer draws images pixel by pixel, so
    /// what is not drawn costs nothing).
    pub pieces: Vec<(u32, u32, Handle)>,
}

/// The rows of the last frame and what is needed to draw the next.
#[derive(Default)]
pub struct Frame {
    glyphs: Option<Glyphs>,
    /// Each shown row's content hash and drawing.
    rows: Vec<(u64, RowDraw)>,
    /// What the rows show (the caller's key: grid, its generation, size).
    shows: Option<[u64; 5]>,
    /// When the last frame was rasterized.
    last: Option<Instant>,
    /// A row's pixels while it is rasterized (kept: no allocation per row).
    scratch: Vec<u8>,
    /// Rows rasterized (not reused) since this frame state was made.
    pub rasterized_rows: u64,
}

impl Frame {
    /// Whether the rows already show `what` (nothing to draw).
    pub fn shows(&self, what: [u64; 5]) -> bool {
        self.shows == Some(what)
    }

    /// When the next frame may be drawn (`None`: now).
    pub fn next_due(&self, now: Instant) -> Option<Instant> {
        let last = self.last?;
        let due = last + FRAME_INTERVAL;
        (now + FRAME_SLACK < due).then_some(due)
    }

    /// The rows, top to bottom.
    pub fn rows(&self) -> impl Iterator<Item = &RowDraw> {
        self.rows.iter().map(|(_, r)| r)
    }

    /// Draws a new frame: `rows` gives each shown row's cells in turn
    /// (`false` past the last). A row whose cells (and size) hash like a
    /// row of the last frame keeps that row's drawing.
    #[allow(clippy::too_many_arguments)]
    pub fn draw(
        &mut self,
        now: Instant,
        what: [u64; 5],
        width: u32,
        size: f32,
        (cell_w, cell_h): (f32, f32),
        default_bg: Rgb8,
        mut rows: impl FnMut(usize, &mut Vec<PaintCell>) -> bool,
    ) {
        let width = width as usize;
        let height = cell_h as usize;
        if self
            .glyphs
            .as_ref()
            .is_none_or(|g| g.size != size || g.line_height != cell_h)
        {
            self.glyphs = Some(Glyphs::new(size, cell_h));
            self.rows.clear();
        }
        let mut old: HashMap<u64, RowDraw> = self.rows.drain(..).collect();
        let mut cells = Vec::with_capacity(256);
        let mut fonts = None;
        let mut r = 0;
        loop {
            cells.clear();
            if !rows(r, &mut cells) {
                break;
            }
            r += 1;
            let mut h = std::hash::DefaultHasher::new();
            (width, height, default_bg, cell_w.to_bits()).hash(&mut h);
            cells.hash(&mut h);
            let key = h.finish();
            if let Some(row) = old.get(&key) {
                // Two equal rows (blank ones) share the drawing.
                let row = if old.len() > 1 {
                    old.remove(&key).unwrap_or_default()
                } else {
                    row.clone()
                };
                self.rows.push((key, row));
                continue;
            }
            let fonts = fonts.get_or_insert_with(|| {
                iced_renderer::graphics::text::font_system()
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            });
            let glyphs = self.glyphs.as_mut().expect("made above");
            let row = raster_row(
                glyphs,
                fonts.raw(),
                &mut self.scratch,
                &cells,
                (width, height),
                cell_w,
                default_bg,
            );
            self.rasterized_rows += 1;
            self.rows.push((key, row));
        }
        self.shows = Some(what);
        self.last = Some(now);
    }
}

/// Whether a cell puts anything on top of its background.
fn inked(c: &PaintCell) -> bool {
    (c.c != ' ' && c.c != '\0' && c.fg != c.bg) || c.underline || c.strike || c.bar != Bar::None
}

/// Rasterizes one row into `px` (backgrounds first, so no cell's
/// background covers a neighbour's glyph, then glyphs, then lines and bar
/// cursors) and cuts it into the pieces the renderer draws.
fn raster_row(
    glyphs: &mut Glyphs,
    fonts: &mut cosmic_text::FontSystem,
    px: &mut Vec<u8>,
    cells: &[PaintCell],
    (width, height): (usize, usize),
    cell_w: f32,
    default_bg: Rgb8,
) -> RowDraw {
    let mut out = RowDraw::default();
    px.resize(width * height * 4, 0);
    fill(px, width, 0, width, 0, height, default_bg);
    let x_of = |col: u16| ((f32::from(col) * cell_w).round() as usize).min(width);
    let end_of = |c: &PaintCell| c.col + u16::from(c.width);
    for c in cells {
        if c.bg == default_bg {
            continue;
        }
        let (x0, x1) = (x_of(c.col), x_of(end_of(c)));
        fill(px, width, x0, x1, 0, height, c.bg);
        match out.backgrounds.last_mut() {
            Some(last) if last.1 == x0 as u32 && last.2 == c.bg => last.1 = x1 as u32,
            _ => out.backgrounds.push((x0 as u32, x1 as u32, c.bg)),
        }
    }
    // The lines anything is drawn on.
    let mut band = (height, 0);
    for c in cells {
        if c.c != ' ' && c.c != '\0' && c.fg != c.bg {
            glyphs.draw(fonts, px, width, f32::from(c.col) * cell_w, c, &mut band);
        }
    }
    for c in cells {
        let (x0, x1) = (x_of(c.col), x_of(end_of(c)));
        let mut line = |y0: usize, y1: usize, x1: usize| {
            fill(px, width, x0, x1, y0, y1, c.fg);
            band = (band.0.min(y0), band.1.max(y1));
        };
        if c.underline {
            line(height - 2, height - 1, x1);
        }
        if c.strike {
            line(height / 2, height / 2 + 1, x1);
        }
        match c.bar {
            Bar::None => {}
            Bar::Underline => line(height - 2, height, x1),
            Bar::Beam => line(0, height, (x0 + 2).min(width)),
        }
    }
    if band.0 >= band.1 {
        return out;
    }
    // Pieces: runs of inked cells (a gap of one blank cell does not split
    // a run: a draw call costs more than a cell's pixels), one pixel wider
    // each side for glyphs that overhang their cell.
    let mut i = 0;
    while i < cells.len() {
        if !inked(&cells[i]) {
            i += 1;
            continue;
        }
        let first = i;
        let mut last = i;
        let mut j = i + 1;
        while j < cells.len() {
            if inked(&cells[j]) {
                last = j;
            } else if j > last + 1 || cells[j].col > end_of(&cells[last]) + 1 {
                break;
            }
            j += 1;
        }
        i = last + 1;
        let x0 = x_of(cells[first].col).saturating_sub(1);
        let x1 = (x_of(end_of(&cells[last])) + 1).min(width);
        let (y0, y1) = band;
        let mut piece = Vec::with_capacity((x1 - x0) * (y1 - y0) * 4);
        for y in y0..y1 {
            piece.extend_from_slice(&px[(y * width + x0) * 4..(y * width + x1) * 4]);
        }
        let image = Handle::from_rgba((x1 - x0) as u32, (y1 - y0) as u32, piece);
        out.pieces.push((x0 as u32, y0 as u32, image));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(col: u16, c: char, fg: Rgb8, bg: Rgb8) -> PaintCell {
        PaintCell {
            col,
            width: 1,
            c,
            zerowidth: None,
            fg,
            bg,
            bold: false,
            underline: false,
            strike: false,
            bar: Bar::None,
        }
    }

    fn load_font() {
        if let Ok(mut f) = iced_renderer::graphics::text::font_system().write() {
            f.load_font(crate::MONO_FONT_BYTES.into());
        }
    }

    #[test]
    fn rows_are_rasterized_once_and_reused_when_they_move() {
        load_font();
        let bg = [0x1c; 3];
        let rows = [
            vec![
                cell(0, 'a', [255, 0, 0], bg),
                cell(1, 'b', [0, 255, 0], [0, 0, 255]),
            ],
            vec![cell(0, 'x', [200, 200, 200], bg)],
        ];
        let mut f = Frame::default();
        let t = Instant::now();
        f.draw(t, [1, 1, 80, 2, 0], 80, 13.0, (7.8, 16.0), bg, |r, out| {
            rows.get(r).map(|c| out.extend(c.iter().cloned())).is_some()
        });
        assert_eq!(f.rasterized_rows, 2);
        // The rows moved up by one (output scrolled): only the new row is drawn.
        let moved = [rows[1].clone(), vec![cell(0, 'y', [1, 2, 3], bg)]];
        f.draw(t, [1, 2, 80, 2, 0], 80, 13.0, (7.8, 16.0), bg, |r, out| {
            moved
                .get(r)
                .map(|c| out.extend(c.iter().cloned()))
                .is_some()
        });
        assert_eq!(f.rasterized_rows, 3);
        assert_eq!(f.rows().count(), 2);
        // The next frame is due one refresh after this one.
        assert!(f.next_due(t).is_some());
        assert!(f.next_due(t + FRAME_INTERVAL).is_none());
    }

    #[test]
    fn a_glyph_is_drawn_in_its_colour_over_its_background() {
        load_font();
        let bg = [0x1c; 3];
        let mut g = Glyphs::new(13.0, 16.0);
        let mut fonts = iced_renderer::graphics::text::font_system()
            .write()
            .unwrap();
        let cells = [
            cell(0, 'M', [255, 0, 0], [0, 0, 255]),
            cell(1, ' ', [0; 3], bg),
            cell(2, ' ', [0; 3], [0, 255, 0]),
        ];
        let mut px = Vec::new();
        let row = raster_row(&mut g, fonts.raw(), &mut px, &cells, (24, 16), 7.8, bg);
        // The blank cells are no image; the coloured backgrounds are runs.
        assert_eq!(row.pieces.len(), 1);
        assert_eq!(
            row.backgrounds,
            vec![(0, 8, [0, 0, 255]), (16, 23, [0, 255, 0])]
        );
        let (x, _, image) = &row.pieces[0];
        assert_eq!(*x, 0);
        let iced_core::image::Handle::Rgba { width, .. } = image else {
            panic!("an RGBA image")
        };
        assert_eq!(*width, 9, "the cell and one pixel of overhang");
        let pixels: Vec<&[u8]> = px.chunks_exact(4).collect();
        // Some pixel of the first cell is pure glyph colour, some pure background.
        assert!(pixels.iter().any(|p| p[..3] == [255, 0, 0]), "glyph drawn");
        assert!(
            pixels.iter().any(|p| p[..3] == [0, 0, 255]),
            "background drawn"
        );
        // The second cell (pixels 8..16) is the default background only.
        for y in 0..16 {
            for x in 9..16 {
                assert_eq!(pixels[y * 24 + x][..3], bg, "({x},{y})");
            }
        }
    }
}

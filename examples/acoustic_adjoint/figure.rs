//! A figure around a 2D array: a title, axes with ticks in physical units and a colour bar with
//! its unit, so a reader can tell depth, scale and sign. Text is drawn with embedded-graphics'
//! bitmap fonts: no system font to find, no font file in the repository.

use embedded_graphics::mono_font::MonoTextStyle;
use embedded_graphics::mono_font::iso_8859_1::{FONT_6X10, FONT_7X13};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Alignment, Baseline, Text, TextStyleBuilder};

/// One axis: its label with unit, and the physical coordinates of the first and last sample.
pub struct Axis {
    pub label: String,
    pub first: f64,
    pub last: f64,
}

/// What surrounds the picture.
pub struct Figure {
    pub title: String,
    /// Across, left to right.
    pub across: Axis,
    /// Down, top to bottom.
    pub down: Axis,
    /// What stands right of the picture.
    pub side: Side,
}

/// A colour bar or a legend.
pub enum Side {
    /// A colour bar: its label with unit and its range `(bottom, top)`.
    Bar(String, (f64, f64)),
    /// Colour swatches and what they mean.
    Legend(Vec<(&'static str, [u8; 3])>),
}

/// Pixels around the picture: left (tick labels), right (colour bar), top (title, axis
/// labels), bottom (ticks, label).
const LEFT: usize = 64;
const RIGHT: usize = 130;
const TOP: usize = 44;
const BOTTOM: usize = 44;
const BAR_WIDTH: usize = 16;

/// An RGB canvas embedded-graphics can draw on.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            rgb: vec![255; width * height * 3],
        }
    }

    fn put(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            self.rgb[(y * self.width + x) * 3..][..3].copy_from_slice(&c);
        }
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.width as u32, self.height as u32)
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, c) in pixels {
            if let (Ok(x), Ok(y)) = (usize::try_from(p.x), usize::try_from(p.y)) {
                self.put(x, y, [c.r(), c.g(), c.b()]);
            }
        }
        Ok(())
    }
}

/// Tick values: multiples of 1, 2 or 5 × 10^k inside `[lo, hi]`, about six of them.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (lo, hi) = (lo.min(hi), lo.max(hi));
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return vec![lo];
    }
    let raw = span / 6.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// A tick label: plain with as many decimals as the step needs, scientific for very small or
/// very large values.
fn label_of(value: f64, step: f64) -> String {
    let size = value.abs().max(step.abs());
    if value == 0.0 {
        "0".into()
    } else if !(1e-2..1e5).contains(&size) {
        format!("{value:.1e}")
    } else {
        let decimals = (-step.abs().log10().floor()).max(0.0) as usize;
        format!("{value:.decimals$}")
    }
}

/// The ticks of `[first, last]`: where each falls (0 at `first`, 1 at `last`) and its label.
fn tick_marks(first: f64, last: f64) -> Vec<(f64, String)> {
    let values = ticks(first, last);
    let step = values.get(1).map_or(1.0, |b| b - values[0]);
    values
        .iter()
        .map(|&v| ((v - first) / (last - first), label_of(v, step)))
        .collect()
}

fn text(canvas: &mut Canvas, s: &str, (x, y): (usize, usize), align: Alignment, big: bool) {
    let font = if big { &FONT_7X13 } else { &FONT_6X10 };
    let style = MonoTextStyle::new(font, Rgb888::BLACK);
    let layout = TextStyleBuilder::new()
        .alignment(align)
        .baseline(Baseline::Top)
        .build();
    let _ = Text::with_text_style(s, Point::new(x as i32, y as i32), style, layout).draw(canvas);
}

fn line(canvas: &mut Canvas, (x0, y0): (usize, usize), (x1, y1): (usize, usize)) {
    let _ = Line::new(
        Point::new(x0 as i32, y0 as i32),
        Point::new(x1 as i32, y1 as i32),
    )
    .into_styled(PrimitiveStyle::with_stroke(Rgb888::BLACK, 1))
    .draw(canvas);
}

/// A one-pixel black frame just outside the `w × h` box at `(x, y)`.
fn outline(canvas: &mut Canvas, (x, y): (usize, usize), (w, h): (usize, usize)) {
    let _ = Rectangle::new(
        Point::new(x as i32 - 1, y as i32 - 1),
        Size::new(w as u32 + 2, h as u32 + 2),
    )
    .into_styled(PrimitiveStyle::with_stroke(Rgb888::BLACK, 1))
    .draw(canvas);
}

/// Draws `picture` (`w × h` RGB pixels) inside a figure and returns the figure's pixels.
/// `colour(t)` colours a bar, `t` from 0 (bottom) to 1 (top).
pub fn frame(
    picture: &[u8],
    (w, h): (usize, usize),
    figure: &Figure,
    colour: impl Fn(f64) -> [u8; 3],
) -> Canvas {
    let mut canvas = Canvas::new(LEFT + w + RIGHT, TOP + h + BOTTOM);
    for row in 0..h {
        let start = ((TOP + row) * canvas.width + LEFT) * 3;
        canvas.rgb[start..start + w * 3].copy_from_slice(&picture[row * w * 3..][..w * 3]);
    }
    outline(&mut canvas, (LEFT, TOP), (w, h));
    let mid = LEFT + w / 2;
    text(
        &mut canvas,
        &figure.title,
        (mid, 4),
        Alignment::Center,
        true,
    );
    text(
        &mut canvas,
        &figure.down.label,
        (4, TOP - 14),
        Alignment::Left,
        false,
    );

    // Across: ticks below the picture, label under them.
    for (at, s) in tick_marks(figure.across.first, figure.across.last) {
        let x = LEFT + (at * (w - 1) as f64).round() as usize;
        line(&mut canvas, (x, TOP + h), (x, TOP + h + 4));
        text(&mut canvas, &s, (x, TOP + h + 6), Alignment::Center, false);
    }
    let s = &figure.across.label;
    text(
        &mut canvas,
        s,
        (mid, TOP + h + 22),
        Alignment::Center,
        false,
    );

    // Down: ticks left of the picture.
    for (at, s) in tick_marks(figure.down.first, figure.down.last) {
        let y = TOP + (at * (h - 1) as f64).round() as usize;
        line(&mut canvas, (LEFT - 5, y), (LEFT - 1, y));
        let at = (LEFT - 7, y.saturating_sub(4));
        text(&mut canvas, &s, at, Alignment::Right, false);
    }

    match &figure.side {
        Side::Bar(label, range) => bar(&mut canvas, (w, h), label, *range, colour),
        Side::Legend(entries) => {
            for (k, (name, c)) in entries.iter().enumerate() {
                let (x, y) = (LEFT + w + 10, TOP + 4 + 16 * k);
                for dy in 0..10 {
                    for dx in 0..10 {
                        canvas.put(x + dx, y + dy, *c);
                    }
                }
                text(&mut canvas, name, (x + 14, y), Alignment::Left, false);
            }
        }
    }
    canvas
}

/// The colour bar right of a `w × h` picture: top is the range's top.
fn bar(
    canvas: &mut Canvas,
    (w, h): (usize, usize),
    label: &str,
    (bottom, top): (f64, f64),
    colour: impl Fn(f64) -> [u8; 3],
) {
    let bar_x = LEFT + w + 14;
    for row in 0..h {
        let c = colour(1.0 - row as f64 / (h - 1).max(1) as f64);
        for col in 0..BAR_WIDTH {
            canvas.put(bar_x + col, TOP + row, c);
        }
    }
    outline(canvas, (bar_x, TOP), (BAR_WIDTH, h));
    // Bottom to top: `at` runs from the bottom of the bar.
    for (at, s) in tick_marks(bottom, top) {
        let y = TOP + ((1.0 - at) * (h - 1) as f64).round() as usize;
        line(canvas, (bar_x + BAR_WIDTH, y), (bar_x + BAR_WIDTH + 4, y));
        let at = (bar_x + BAR_WIDTH + 6, y.saturating_sub(4));
        text(canvas, &s, at, Alignment::Left, false);
    }
    let at = (LEFT + w + RIGHT - 4, TOP - 14);
    text(canvas, label, at, Alignment::Right, false);
}

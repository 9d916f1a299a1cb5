//! `--gif`: the schedule as an animated GIF, one frame an action.
//!
//! States `0 … n` run across. The top strip shows each state: pale red once its step is
//! reversed, a blue run over the states an advance passes (forward recomputation), red for the
//! step being reversed, and a black bar under the live state. The row below marks the states
//! held in slots, green on the GPU and orange in host memory. The caption counts forward
//! steps and reversed steps so far, in a 3 × 5 pixel font drawn here (GIF has no text).

use std::borrow::Cow;
use std::path::Path;

use gpurevolve::schedule::{Action, Tier};

/// The palette: index → RGB.
const PALETTE: [[u8; 3]; 9] = [
    [255, 255, 255], // background
    [200, 200, 200], // cell borders
    [60, 60, 60],    // text
    [31, 119, 180],  // advance
    [214, 39, 40],   // reverse
    [44, 160, 44],   // held on the GPU
    [255, 127, 14],  // held in host memory
    [0, 0, 0],       // live marker
    [250, 214, 214], // reversed already
];
const BG: u8 = 0;
const BORDER: u8 = 1;
const TEXT: u8 = 2;
const ADVANCE: u8 = 3;
const REVERSE: u8 = 4;
const DEVICE: u8 = 5;
const HOST: u8 = 6;
const LIVE: u8 = 7;
const DONE: u8 = 8;

/// 3 × 5 glyphs, one row a 3-bit number (the high bit left).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        'F' => [7, 4, 6, 4, 4],
        'W' => [5, 5, 7, 7, 5],
        'D' => [6, 5, 5, 5, 6],
        'R' => [6, 5, 6, 5, 5],
        'E' => [7, 4, 6, 4, 7],
        'V' => [5, 5, 5, 5, 2],
        _ => [0; 5],
    }
}

/// One frame's pixels (palette indices).
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![BG; width * height],
        }
    }

    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, colour: u8) {
        for row in y..(y + h).min(self.height) {
            for col in x..(x + w).min(self.width) {
                self.pixels[row * self.width + col] = colour;
            }
        }
    }

    fn outline(&mut self, x: usize, y: usize, w: usize, h: usize, colour: u8) {
        self.rect(x, y, w, 1, colour);
        self.rect(x, y + h - 1, w, 1, colour);
        self.rect(x, y, 1, h, colour);
        self.rect(x + w - 1, y, 1, h, colour);
    }

    fn text(&mut self, x: usize, y: usize, scale: usize, text: &str) {
        for (i, c) in text.chars().enumerate() {
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        let (px, py) = (x + (i * 4 + col) * scale, y + row * scale);
                        self.rect(px, py, scale, scale, TEXT);
                    }
                }
            }
        }
    }
}

/// The most frames (actions) an animation may have: beyond, it is unwatchable and large.
pub const MAX_FRAMES: u64 = 3000;

/// The most steps drawn across one frame.
pub const MAX_STEPS: u64 = 200;

/// Writes `actions` for `steps` steps as an animated GIF at `path`. `tiers` gives each slot's
/// tier (missing: the GPU); `state_only` counts a reverse's forward step only when its step
/// was never recorded (the first), as a state-only adjoint runs.
pub fn write(
    path: &Path,
    actions: impl Iterator<Item = Action>,
    steps: u64,
    tiers: &[Tier],
    state_only: bool,
) -> Result<(), String> {
    const CELL: usize = 14;
    const MARGIN: usize = 12;
    let n = steps as usize;
    let width = 2 * MARGIN + (n + 1) * CELL;
    let height = 3 * CELL + 40;
    let (w16, h16) = (
        u16::try_from(width).map_err(|_| format!("{steps} steps are too many to animate"))?,
        u16::try_from(height).map_err(|e| e.to_string())?,
    );
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let palette: Vec<u8> = PALETTE.iter().flatten().copied().collect();
    let mut encoder = gif::Encoder::new(std::io::BufWriter::new(file), w16, h16, &palette)
        .map_err(|e| e.to_string())?;
    encoder
        .set_repeat(gif::Repeat::Infinite)
        .map_err(|e| e.to_string())?;

    let x = |state: usize| MARGIN + state * CELL;
    let (strip, held_row, caption) = (MARGIN, MARGIN + CELL + 6, MARGIN + 2 * CELL + 14);
    let mut held: Vec<Option<u64>> = Vec::new();
    let (mut live, mut end) = (Some(0u64), steps);
    let (mut forward, mut reversed) = (0u64, 0u64);
    for action in actions {
        let mut frame = Canvas::new(width, height);
        for state in 0..=n {
            if state as u64 >= end {
                frame.rect(x(state), strip, CELL, CELL, DONE);
            }
            frame.outline(x(state), strip, CELL, CELL, BORDER);
        }
        match action {
            Action::Advance { from, to } => {
                for state in from..=to {
                    frame.rect(
                        x(state as usize) + 2,
                        strip + 2,
                        CELL - 4,
                        CELL - 4,
                        ADVANCE,
                    );
                }
                forward += to - from;
                live = Some(to);
            }
            Action::Reverse { step } => {
                frame.rect(x(step as usize) + 2, strip + 2, CELL - 4, CELL - 4, REVERSE);
                if !state_only || reversed == 0 {
                    forward += 1;
                }
                reversed += 1;
                end = step;
                live = None;
            }
            Action::Save { step, slot } => {
                if held.len() <= slot {
                    held.resize(slot + 1, None);
                }
                held[slot] = Some(step);
            }
            Action::Restore { step, .. } | Action::Join { step, .. } => live = Some(step),
            Action::Free { slot, .. } => {
                if let Some(s) = held.get_mut(slot) {
                    *s = None;
                }
            }
            Action::End => {}
        }
        for (slot, step) in held.iter().enumerate() {
            if let Some(step) = step {
                let colour = if tiers.get(slot).is_some_and(|t| *t != Tier::DEVICE) {
                    HOST
                } else {
                    DEVICE
                };
                frame.rect(x(*step as usize) + 2, held_row, CELL - 4, CELL - 4, colour);
            }
        }
        if let Some(state) = live {
            frame.rect(x(state as usize), strip + CELL + 1, CELL, 3, LIVE);
        }
        frame.text(
            MARGIN,
            caption,
            3,
            &format!("FWD {forward}  REV {reversed}"),
        );
        let delay = match action {
            Action::End => 300,
            _ => 35,
        };
        let gif_frame = gif::Frame {
            width: w16,
            height: h16,
            delay,
            buffer: Cow::Borrowed(&frame.pixels),
            ..gif::Frame::default()
        };
        encoder.write_frame(&gif_frame).map_err(|e| e.to_string())?;
    }
    Ok(())
}

//! PNG pictures: models, gathers, gradients and the schedule.

use std::path::Path;

use super::figure::{self, Axis, Figure, Side};

use gpurevolve::schedule::{Action, Tier};

/// Velocities: viridis, perceptually ordered (colorous, from d3-scale-chromatic).
fn sequential(t: f64) -> [u8; 3] {
    let c = colorous::VIRIDIS.eval_continuous(t.clamp(0.0, 1.0));
    [c.r, c.g, c.b]
}

/// Signed fields, symmetric about zero (`t` in [−1, 1]): ColorBrewer's red–blue, red for
/// positive, white at zero (colorous).
fn diverging(t: f64) -> [u8; 3] {
    let c = colorous::RED_BLUE.eval_continuous((1.0 - t.clamp(-1.0, 1.0)) / 2.0);
    [c.r, c.g, c.b]
}

/// Writes the PNG under a temporary name and renames it into place: a full disk or a kill
/// never leaves a partial picture under its final name.
fn write_rgb(path: &Path, width: usize, height: usize, rgb: &[u8]) -> Result<(), String> {
    gpurevolve::fs::write_atomically(path, |out| {
        let mut encoder = png::Encoder::new(out, width as u32, height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(rgb)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
    .map_err(|e| e.to_string())
}

/// How a 2D array is coloured.
#[derive(Clone, Copy)]
pub enum Colour {
    /// Between its minimum and maximum.
    Sequential,
    /// Symmetric about zero, saturating at the given `|value|`.
    Diverging(f64),
}

/// A `(nx, nz)` array (z fastest) as a figure with x across and z (depth) down, upscaled by
/// whole pixels to about 600 pixels across (true aspect ratio); `figure`'s colour bar range
/// is filled in from the data.
pub fn field(
    path: &Path,
    data: &[f64],
    nx: usize,
    nz: usize,
    colour: Colour,
    figure: Figure,
) -> Result<(), String> {
    let scale = (600 / nx.max(nz)).max(1);
    resampled(path, data, nx, nz, (nx * scale, nz * scale), colour, figure)
}

/// As [`field`], resampled (nearest cell) to `w × h` pixels.
fn resampled(
    path: &Path,
    data: &[f64],
    nx: usize,
    nz: usize,
    (w, h): (usize, usize),
    colour: Colour,
    mut figure: Figure,
) -> Result<(), String> {
    let (lo, hi) = data
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let bar = move |t: f64| match colour {
        Colour::Sequential => sequential(t),
        Colour::Diverging(_) => diverging(2.0 * t - 1.0),
    };
    if let Side::Bar(_, range) = &mut figure.side {
        *range = match colour {
            Colour::Sequential => (lo, hi),
            Colour::Diverging(clip) => (-clip, clip),
        };
    }
    let mut rgb = vec![0u8; w * h * 3];
    for row in 0..h {
        for col in 0..w {
            let v = data[(col * nx / w) * nz + row * nz / h];
            let c = match colour {
                Colour::Sequential => sequential(if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }),
                Colour::Diverging(clip) => diverging(if clip > 0.0 { v / clip } else { 0.0 }),
            };
            rgb[(row * w + col) * 3..][..3].copy_from_slice(&c);
        }
    }
    let canvas = figure::frame(&rgb, (w, h), &figure, bar);
    write_rgb(path, canvas.width, canvas.height, &canvas.rgb)
}

/// The `q`-quantile of `|data|` (a colour clip that lets weak events show).
pub fn abs_quantile(data: &[f64], q: f64) -> f64 {
    let mut a: Vec<f64> = data.iter().map(|v| v.abs()).collect();
    a.sort_by(f64::total_cmp);
    a.get(((a.len() as f64 - 1.0) * q) as usize)
        .copied()
        .unwrap_or(0.0)
}

/// A shot record `[nt][receivers]` with receivers across and time down, in a 600 × 700 box.
pub fn gather(
    path: &Path,
    traces: &[f64],
    nt: usize,
    nrec: usize,
    figure: Figure,
) -> Result<(), String> {
    // Transpose to (receiver, time) so `field` draws time downwards.
    let mut t = vec![0.0; traces.len()];
    for k in 0..nt {
        for r in 0..nrec {
            t[r * nt + k] = traces[k * nrec + r];
        }
    }
    resampled(
        path,
        &t,
        nrec,
        nt,
        (600, 700),
        Colour::Diverging(abs_quantile(traces, 0.98)),
        figure,
    )
}

/// The schedule as the classic sweep picture: time steps across, work (step evaluations) down;
/// advances blue, reverses red; saves and restores green and orange on the GPU, purple and
/// brown through host memory (`tiers`: each slot's tier). A reverse costs `reverse_cost` step
/// evaluations: 1 for an adjoint that needs only its state, 2 when it recomputes its step.
pub fn schedule(
    path: &Path,
    actions: impl Iterator<Item = Action>,
    steps: u64,
    work: u64,
    reverse_cost: u64,
    tiers: &[Tier],
) -> Result<(), String> {
    let on_host = |slot: usize| tiers.get(slot) == Some(&Tier::HOST);
    let blue = [31, 119, 180];
    let red = [214, 39, 40];
    let (save_gpu, save_host) = ([44, 160, 44], [148, 103, 189]);
    let (restore_gpu, restore_host) = ([255, 127, 14], [140, 86, 75]);
    let (w, h) = (800usize, 800usize);
    let mut rgb = vec![255u8; w * h * 3];
    let px = |step: u64| ((step as f64 / steps as f64) * (w - 1) as f64) as usize;
    let py = |t: u64| ((t as f64 / work.max(1) as f64) * (h - 1) as f64) as usize;
    let mut put = |x: usize, y: usize, c: [u8; 3]| {
        if x < w && y < h {
            rgb[(y * w + x) * 3..][..3].copy_from_slice(&c);
        }
    };
    let mut line = |(x0, y0): (usize, usize), (x1, y1): (usize, usize), c: [u8; 3]| {
        let n = x0.abs_diff(x1).max(y0.abs_diff(y1)).max(1);
        for i in 0..=n {
            let f = i as f64 / n as f64;
            put(
                (x0 as f64 + f * (x1 as f64 - x0 as f64)).round() as usize,
                (y0 as f64 + f * (y1 as f64 - y0 as f64)).round() as usize,
                c,
            );
        }
    };
    let mut t = 0u64;
    let mut reverses = Vec::new();
    for action in actions {
        match action {
            Action::Advance { from, to } => {
                line((px(from), py(t)), (px(to), py(t + to - from)), blue);
                t += to - from;
            }
            Action::Reverse { step } => {
                // Drawn last, over the restore marks a level schedule makes at every reverse.
                reverses.push(((px(step + 1), py(t)), (px(step), py(t + reverse_cost))));
                t += reverse_cost;
            }
            Action::Save { step, slot } => {
                let (x, y) = (px(step), py(t));
                let c = if on_host(slot) { save_host } else { save_gpu };
                for d in 0..3 {
                    line((x.saturating_sub(2), y + d), (x + 2, y + d), c);
                }
            }
            // A join reads one level of the slot's state: drawn as a restore.
            Action::Restore { step, slot } | Action::Join { step, slot } => {
                let c = if on_host(slot) {
                    restore_host
                } else {
                    restore_gpu
                };
                let (x, y) = (px(step), py(t));
                line((x.saturating_sub(2), y), (x + 2, y), c);
                line((x.saturating_sub(2), y + 1), (x + 2, y + 1), c);
            }
            Action::Free { .. } | Action::End => {}
        }
    }
    for ((x0, y0), (x1, y1)) in reverses {
        for d in 0..3 {
            line((x0, y0 + d), (x1, y1 + d), red);
        }
    }
    let mut legend = vec![
        ("forward step", blue),
        ("reverse step", red),
        ("save on GPU", save_gpu),
        ("restore on GPU", restore_gpu),
    ];
    if tiers.contains(&Tier::HOST) {
        legend.extend([
            ("save to host", save_host),
            ("restore from host", restore_host),
        ]);
    }
    let figure = Figure {
        title: format!("Schedule of shot 1: {steps} steps, {work} step evaluations"),
        across: Axis {
            label: "time step".into(),
            first: 0.0,
            last: steps as f64,
        },
        down: Axis {
            label: "work (steps run)".into(),
            first: 0.0,
            last: work as f64,
        },
        side: Side::Legend(legend),
    };
    let canvas = figure::frame(&rgb, (w, h), &figure, |_| [0, 0, 0]);
    write_rgb(path, canvas.width, canvas.height, &canvas.rgb)
}

//! Pictures as PNG: filter grids (convolution filters, sparse-coding atoms) and line plots.
//!
//! **Filter grids** follow the sparse-coding papers' convention (Olshausen & Field; UFLDL's
//! `display_network`; Kavukcuoglu et al.'s PSD figures): each tile is scaled symmetrically
//! around zero by its own largest magnitude, `gray = round(127.5 + 127.5 · v / max|v|)`, so 0
//! is mid-gray (128), the tile's strongest positive weight white and strongest negative
//! black; an all-zero tile is flat gray. Tiles are blown up by an integer factor (nearest
//! neighbour; by default to about [`TILE_PIXELS`] pixels a side), on a black background with
//! [`GridOptions::gap`] pixels between and around them, in a near-square grid filled row by row.
//! Multi-channel convolution filters `[out, in, k, k]` draw one row per output filter and one
//! tile per input channel (each tile on its own scale); with one input channel the `out`
//! tiles form the near-square grid.
//!
//! **Line plots** are drawn by `plotters` into a pixel buffer with text from a bundled font
//! (a subset of DejaVu Sans, `visualize/FONT-LICENSE.txt`), registered through plotters'
//! `ab_glyph` feature: no system font is looked up, so a bare machine draws the same picture
//! bit for bit, and a font that fails to load is an error, not missing text.
//!
//! Every file is encoded in memory and written with [`checkpoint::write_atomic`].
//!
//! ```
//! use kestrel_trainer::visualize::{filter_grid, GridOptions};
//! // Two 3×3 filters, each with one bright pixel; 2× scale, 1-pixel gaps.
//! let mut f = vec![0.0f32; 18];
//! f[4] = 1.0;
//! f[9] = -2.0;
//! let g = filter_grid(&f, 2, 3, 3, &GridOptions { scale: Some(2), ..Default::default() })?;
//! assert_eq!(g.dimensions(), (2 * 6 + 3, 6 + 2));
//! assert_eq!(g.get_pixel(1 + 2, 1 + 2)[0], 255); // centre of filter 0: its maximum
//! assert_eq!(g.get_pixel(1 + 7, 1)[0], 0); // corner of filter 1: its most negative value
//! assert_eq!(g.get_pixel(1, 1)[0], 128); // zero
//! # Ok::<(), kestrel_trainer::Error>(())
//! ```

use std::path::Path;
use std::sync::OnceLock;

use image::{GrayImage, ImageBuffer, ImageEncoder, PixelWithColorType, RgbImage};
use plotters::prelude::*;

use crate::checkpoint::{self, Checkpoint, Envelope, KIND_CONVNET};
use crate::error::{Error, Result};
use crate::nn::{infer, Op};
use crate::psd::{PsdModel, KIND_PSD};

/// The bundled font (DejaVu Sans, cut down to Latin, Greek and math signs).
pub const FONT: &[u8] = include_bytes!("visualize/DejaVuSans-subset.ttf");

/// The font family name the bundled font is registered under (plotters' default family).
pub const FONT_FAMILY: &str = "sans-serif";

/// The side, in pixels, that tiles are scaled up to by default.
pub const TILE_PIXELS: usize = 40;

/// Registers [`FONT`] with plotters once; an error if it does not parse.
fn font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Other(
            "the bundled font visualize/DejaVuSans-subset.ttf does not parse".into(),
        ))
    }
}

/// How a filter grid is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridOptions {
    /// Pixels per filter value (`None`: [`auto_scale`]).
    pub scale: Option<usize>,
    /// Black pixels between tiles and around the grid.
    pub gap: usize,
    /// Tiles per row (`None`: `⌈√count⌉`, a near-square grid).
    pub columns: Option<usize>,
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            scale: None,
            gap: 1,
            columns: None,
        }
    }
}

/// The integer factor that makes an `h × w` tile about [`TILE_PIXELS`] a side (1 to 16).
pub fn auto_scale(h: usize, w: usize) -> usize {
    TILE_PIXELS.div_ceil(h.max(w).max(1)).clamp(1, 16)
}

/// One value of a tile whose largest magnitude is `max_abs`, as a gray level.
#[inline]
pub fn tile_gray(v: f32, max_abs: f32) -> u8 {
    if max_abs > 0.0 && max_abs.is_finite() {
        (127.5 + 127.5 * v / max_abs).round().clamp(0.0, 255.0) as u8
    } else {
        128
    }
}

/// `count` filters of `h × w` (`count · h · w` values, filter after filter, each row-major)
/// as a grid of tiles; see the module docs for the convention.
pub fn filter_grid(
    filters: &[f32],
    count: usize,
    h: usize,
    w: usize,
    opts: &GridOptions,
) -> Result<GrayImage> {
    let expected = count * h * w;
    if expected == 0 || filters.len() != expected {
        return Err(Error::FilterShape {
            name: "filter grid".into(),
            len: filters.len(),
            count,
            h,
            w,
            expected,
        });
    }
    let s = opts.scale.unwrap_or_else(|| auto_scale(h, w)).max(1);
    let cols = opts
        .columns
        .unwrap_or_else(|| (count as f64).sqrt().ceil() as usize)
        .clamp(1, count);
    let rows = count.div_ceil(cols);
    let (th, tw, gap) = (h * s, w * s, opts.gap);
    let width = cols * tw + (cols + 1) * gap;
    let height = rows * th + (rows + 1) * gap;
    let mut img = GrayImage::new(width as u32, height as u32);
    for (i, f) in filters.chunks(h * w).enumerate() {
        let max_abs = f.iter().fold(0f32, |m, v| m.max(v.abs()));
        let x0 = gap + (i % cols) * (tw + gap);
        let y0 = gap + (i / cols) * (th + gap);
        for y in 0..th {
            for x in 0..tw {
                let g = tile_gray(f[(y / s) * w + x / s], max_abs);
                img.put_pixel((x0 + x) as u32, (y0 + y) as u32, image::Luma([g]));
            }
        }
    }
    Ok(img)
}

/// Convolution weights `[out, in, k, k]`: one row of `in` tiles per output filter (with one
/// input channel, the near-square grid of [`filter_grid`]).
pub fn conv_grid(
    weights: &[f32],
    out: usize,
    in_c: usize,
    k: usize,
    opts: &GridOptions,
) -> Result<GrayImage> {
    let opts = if in_c > 1 {
        GridOptions {
            columns: Some(in_c),
            ..*opts
        }
    } else {
        *opts
    };
    filter_grid(weights, out * in_c, k, k, &opts)
}

/// A named set of filters to draw as one grid.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterBank {
    /// Label drawn above the grid (`lenet layer 0 conv2d: 12 filters 1×5×5`).
    pub name: String,
    /// `count · channels · h · w` values, `[count, channels, h, w]` row-major.
    pub data: Vec<f32>,
    /// Filters (output channels, or dictionary atoms).
    pub count: usize,
    /// Input channels per filter (1 for patch atoms).
    pub channels: usize,
    /// Filter height.
    pub h: usize,
    /// Filter width.
    pub w: usize,
}

impl FilterBank {
    /// The bank's grid ([`conv_grid`] for square multi-channel filters).
    pub fn grid(&self, opts: &GridOptions) -> Result<GrayImage> {
        let opts = if self.channels > 1 {
            GridOptions {
                columns: Some(self.channels),
                ..*opts
            }
        } else {
            *opts
        };
        filter_grid(
            &self.data,
            self.count * self.channels,
            self.h,
            self.w,
            &opts,
        )
        .map_err(|e| match e {
            Error::FilterShape {
                len,
                count,
                h,
                w,
                expected,
                ..
            } => Error::FilterShape {
                name: self.name.clone(),
                len,
                count,
                h,
                w,
                expected,
            },
            e => e,
        })
    }
}

/// Label text size in pixels, and the white margin around grids and labels.
const LABEL_PX: u32 = 14;
const MARGIN: u32 = 6;

/// Every bank's grid, stacked top to bottom on white, each under its label.
pub fn render_banks(banks: &[FilterBank], opts: &GridOptions) -> Result<RgbImage> {
    font()?;
    let font = (FONT_FAMILY, LABEL_PX as f64).into_font();
    let mut parts = Vec::with_capacity(banks.len());
    for b in banks {
        let (tw, _) = font
            .box_size(&b.name)
            .map_err(|e| Error::Other(format!("measuring the label {:?}: {e:?}", b.name)))?;
        parts.push((b.grid(opts)?, tw));
    }
    let label_h = LABEL_PX + 6;
    let width = parts
        .iter()
        .map(|(g, tw)| g.width().max(*tw))
        .max()
        .unwrap_or(0)
        + 2 * MARGIN;
    let height = parts
        .iter()
        .map(|(g, _)| label_h + g.height() + MARGIN)
        .sum::<u32>()
        + MARGIN;
    let mut img = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let mut y = MARGIN;
    let mut label_at = Vec::with_capacity(parts.len());
    for (g, _) in &parts {
        label_at.push(y);
        y += label_h;
        for (gx, gy, p) in g.enumerate_pixels() {
            img.put_pixel(MARGIN + gx, y + gy, image::Rgb([p[0]; 3]));
        }
        y += g.height() + MARGIN;
    }
    let (w, h) = img.dimensions();
    {
        let root = BitMapBackend::with_buffer(img.as_mut(), (w, h)).into_drawing_area();
        for (b, y) in banks.iter().zip(label_at) {
            root.draw_text(&b.name, &font.color(&BLACK), (MARGIN as i32, y as i32 + 2))
                .map_err(|e| Error::Other(format!("drawing the label {:?}: {e}", b.name)))?;
        }
        root.present()
            .map_err(|e| Error::Other(format!("drawing labels: {e}")))?;
    }
    Ok(img)
}

/// The filter banks worth drawing from a checkpoint file of any kind (`path` is for
/// messages).
///
/// One arm per checkpoint kind, each a function returning that kind's banks: a new kind (PSD:
/// encoder filters and decoder dictionary) is one more arm, and everything after it
/// ([`render_banks`], `kestrel visualize`) takes `&[FilterBank]` without knowing the kind.
pub fn checkpoint_filters(env: Envelope, path: &Path) -> Result<Vec<FilterBank>> {
    match env.kind.as_str() {
        KIND_CONVNET => convnet_filters(&Checkpoint::from_envelope(env, path)?, path),
        KIND_PSD => Ok(psd_filters(&PsdModel::from_envelope(env, path)?)),
        other => Err(Error::NoFilters {
            path: path.to_path_buf(),
            message: format!(
                "kestrel visualize does not know {other:?} checkpoints (it draws: \
                 {KIND_CONVNET}, {KIND_PSD})"
            ),
        }),
    }
}

/// A PSD model's decoder atoms (dictionary columns, each a `K×K` patch per channel) and
/// encoder filters (rows of `W`), as two banks.
pub fn psd_filters(m: &PsdModel) -> Vec<FilterBank> {
    let (c, kk, n) = (m.meta.channels, m.meta.patch, m.meta.atoms);
    let k = c * kk * kk;
    // Dense dictionaries are `[k, n]` (atoms are columns); convolutional ones `[n, c, K, K]`.
    let atoms = if m.meta.conv {
        m.dictionary.clone()
    } else {
        let mut t = vec![0.0f32; n * k];
        for r in 0..k {
            for j in 0..n {
                t[j * k + r] = m.dictionary[r * n + j];
            }
        }
        t
    };
    let what = if m.meta.conv { "convolutional " } else { "" };
    let bank = |name: String, data: Vec<f32>| FilterBank {
        name,
        data,
        count: n,
        channels: c,
        h: kk,
        w: kk,
    };
    vec![
        bank(
            format!(
                "PSD {what}dictionary: {n} atoms {c}×{kk}×{kk} (λ = {})",
                m.meta.lambda
            ),
            atoms,
        ),
        bank(
            format!(
                "PSD {} encoder filters: {n} × {c}×{kk}×{kk}",
                m.meta.encoder
            ),
            m.weight.clone(),
        ),
    ]
}

/// A convnet's first convolution, `[out, in, k, k]`.
pub fn convnet_filters(ckpt: &Checkpoint, path: &Path) -> Result<Vec<FilterBank>> {
    let plans = infer(&ckpt.arch)?;
    let Some((layer, s)) = plans.iter().enumerate().find_map(|(i, p)| match p.op {
        Op::Conv2d(s) => Some((i, s)),
        _ => None,
    }) else {
        let ops: Vec<&str> = plans.iter().map(|p| p.op.name()).collect();
        return Err(Error::NoFilters {
            path: path.to_path_buf(),
            message: format!(
                "architecture {} has no conv2d layer (its layers: {})",
                ckpt.arch.name,
                ops.join(", ")
            ),
        });
    };
    let bad = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let weight = ckpt
        .params
        .iter()
        .find(|p| p.layer == layer)
        .and_then(|p| p.get("weight"))
        .ok_or_else(|| bad(format!("layer {layer} (conv2d) has no weight tensor")))?;
    if weight.len() != s.weight_len() {
        return Err(bad(format!(
            "layer {layer} (conv2d) weight has {} values, [{}, {}, {}, {}] needs {}",
            weight.len(),
            s.out_c,
            s.in_c,
            s.kernel,
            s.kernel,
            s.weight_len()
        )));
    }
    Ok(vec![FilterBank {
        name: format!(
            "{} layer {layer} conv2d: {} filters {}×{}×{}",
            ckpt.arch.name, s.out_c, s.in_c, s.kernel, s.kernel
        ),
        data: weight.to_vec(),
        count: s.out_c,
        channels: s.in_c,
        h: s.kernel,
        w: s.kernel,
    }])
}

/// What `kestrel visualize` drew.
#[derive(Debug, Clone, PartialEq)]
pub struct Drawn {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// The banks' labels, top to bottom.
    pub banks: Vec<String>,
}

/// Loads a checkpoint and writes its filter banks ([`checkpoint_filters`]) as one PNG.
pub fn visualize_checkpoint(ckpt_path: &Path, out: &Path, opts: &GridOptions) -> Result<Drawn> {
    let banks = checkpoint_filters(Envelope::load(ckpt_path)?, ckpt_path)?;
    let img = render_banks(&banks, opts).map_err(|e| picture_error(out, e))?;
    save_png(out, &img)?;
    Ok(Drawn {
        width: img.width(),
        height: img.height(),
        banks: banks.into_iter().map(|b| b.name).collect(),
    })
}

/// Names the output file in a drawing error.
fn picture_error(path: &Path, e: Error) -> Error {
    match e {
        Error::Other(message) => Error::Picture {
            path: path.to_path_buf(),
            message,
        },
        e => e,
    }
}

/// Encodes an 8-bit image (gray or RGB) as PNG bytes.
pub fn encode_png<P>(img: &ImageBuffer<P, Vec<u8>>) -> Result<Vec<u8>>
where
    P: PixelWithColorType<Subpixel = u8>,
{
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes)
        .write_image(img.as_raw(), img.width(), img.height(), P::COLOR_TYPE)
        .map_err(|e| Error::Other(format!("encoding PNG: {e}")))?;
    Ok(bytes)
}

/// Writes an 8-bit image as a PNG file, atomically.
pub fn save_png<P>(path: &Path, img: &ImageBuffer<P, Vec<u8>>) -> Result<()>
where
    P: PixelWithColorType<Subpixel = u8>,
{
    let bytes = encode_png(img).map_err(|e| picture_error(path, e))?;
    checkpoint::write_atomic(path, &bytes)
}

/// Plot size in pixels.
const PLOT_SIZE: (u32, u32) = (800, 500);

/// Line colours, in series order (matplotlib's `tab10`).
const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// A line plot of `series` (name, `(x, y)` points in order) with a legend, as an 800×500
/// PNG (e.g. energy per epoch, training and validation curves). Every value must be finite
/// and there must be at least one point.
pub fn curve_png(
    path: &Path,
    title: &str,
    series: &[(&str, &[(f64, f64)])],
    x_label: &str,
    y_label: &str,
) -> Result<()> {
    let img = curve_image(title, series, x_label, y_label).map_err(|e| picture_error(path, e))?;
    save_png(path, &img)
}

/// `lo..hi` widened by 5% (or around a single value), so lines clear the frame.
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let span = hi - lo;
    let pad = if span > 0.0 {
        0.05 * span
    } else if lo != 0.0 {
        0.1 * lo.abs()
    } else {
        1.0
    };
    lo - pad..hi + pad
}

/// [`curve_png`]'s picture.
pub fn curve_image(
    title: &str,
    series: &[(&str, &[(f64, f64)])],
    x_label: &str,
    y_label: &str,
) -> Result<RgbImage> {
    font()?;
    let mut xs = (f64::INFINITY, f64::NEG_INFINITY);
    let mut ys = xs;
    for (name, points) in series {
        for (i, &(x, y)) in points.iter().enumerate() {
            if !x.is_finite() || !y.is_finite() {
                return Err(Error::Other(format!(
                    "series {name:?} point {i} is ({x}, {y}): every value must be finite"
                )));
            }
            xs = (xs.0.min(x), xs.1.max(x));
            ys = (ys.0.min(y), ys.1.max(y));
        }
    }
    if xs.0 > xs.1 {
        return Err(Error::Other(format!("plot {title:?}: no points to draw")));
    }
    let (w, h) = PLOT_SIZE;
    let mut img = RgbImage::new(w, h);
    let draw_err = |e: &dyn std::fmt::Display| Error::Other(format!("plot {title:?}: {e}"));
    {
        let root = BitMapBackend::with_buffer(img.as_mut(), (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT_FAMILY, 22))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(padded(xs.0, xs.1), padded(ys.0, ys.1))
            .map_err(|e| draw_err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style((FONT_FAMILY, 14))
            .light_line_style(RGBColor(235, 235, 235))
            .axis_desc_style((FONT_FAMILY, 16))
            .draw()
            .map_err(|e| draw_err(&e))?;
        for (i, (name, points)) in series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| draw_err(&e))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            // Markers, so a one-point series still shows.
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(|e| draw_err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT_FAMILY, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_err(&e))?;
        root.present().map_err(|e| draw_err(&e))?;
    }
    Ok(img)
}

#[cfg(test)]
mod tests;

//! Patch data for sparse coding (PSD): small grayscale patches sampled from a dataset
//! directory, preprocessed the way the exported encoder will preprocess them on the device.
//!
//! A dataset directory is either
//! - an **MNIST-format IDX directory** (any of `train-images-idx3-ubyte[.gz]` or
//!   `t10k-images-idx3-ubyte[.gz]` present; both splits are then loaded with [`data::load`]):
//!   training patches come from the train split, held-out patches from the test split; or
//! - a **folder of pictures**: every `.png`, `.jpg` or `.jpeg` file directly in it (extension
//!   case-insensitive; subfolders are not searched, so a folder's contents are exactly what
//!   `ls` shows), of any size, in file-name order (bytewise), so the order and everything
//!   drawn from it is the same on every machine. Pictures become 8-bit grayscale with the
//!   ITU-R BT.601 luma weights, exactly as PIL's `convert("L")` and OpenCV's `cvtColor` do:
//!   `Y = (19595·R + 38470·G + 7471·B + 2¹⁵) >> 16` (0.299, 0.587, 0.114); alpha is dropped.
//!   Held out: every [`HELD_OUT_EVERY`]th file in that order starting with the first
//!   (positions 0, 10, 20, …), so any folder of two or more pictures has both parts. A folder
//!   of one picture holds out its last quarter along the longer side (bottom rows of a tall
//!   or square picture, right columns of a wide one) and trains on the rest: the two regions
//!   share no pixel, so no held-out patch overlaps a training patch.
//!
//! Each patch is `K·K` floats, row-major: pixels `p → p/255`, then [`normalize_patch`]
//! (mean removal, optional contrast normalization). Sampling ([`Dataset::sample`]) draws a
//! region (picture) uniformly, then a position uniformly inside it, from one
//! `ChaCha8Rng::seed_from_u64(seed)` stream in order, so the same seed gives the same patches
//! whatever the thread count (threads only fill the already-chosen patches).
//!
//! ```
//! use kestrel_trainer::patches::{normalize_patch, unit};
//! let mut patch: Vec<f32> = [0u8, 255, 0, 255].iter().map(|&p| unit(p)).collect();
//! normalize_patch(&mut patch, Some(0.02));
//! assert_eq!(patch, [-1.0, 1.0, -1.0, 1.0]); // mean 0, RMS 1
//! ```

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::{self, Normalize, Split};
use crate::error::{Error, Result};

/// Picture file extensions read from a folder (compared case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// In a folder of pictures, every this-many-th file (by sorted name, starting with the first)
/// is held out.
pub const HELD_OUT_EVERY: usize = 10;

/// Contrast-normalization floor, in `p/255` units: a centered patch is divided by
/// `max(RMS, eps)`, so patches flatter than about 5 gray levels RMS (flat background, JPEG
/// noise) are not stretched to unit contrast.
pub const DEFAULT_CONTRAST_EPS: f32 = 0.02;

/// A pixel as the patch code sees it: `p / 255` in f32.
#[inline]
pub fn unit(p: u8) -> f32 {
    p as f32 / 255.0
}

/// The exact per-patch preprocessing the exported model repeats on the device, on one patch
/// of `p/255` values, in f32:
///
/// 1. `mean = (Σ xᵢ) / n`, the sum taken left to right (row-major) from 0; `xᵢ ← xᵢ − mean`.
/// 2. With `contrast = Some(eps)`: `rms = sqrt((Σ xᵢ²) / n)` over the centered values, same
///    order; `xᵢ ← xᵢ / max(rms, eps)`.
///
/// An empty slice is left alone.
pub fn normalize_patch(patch: &mut [f32], contrast: Option<f32>) {
    if patch.is_empty() {
        return;
    }
    let n = patch.len() as f32;
    let mean = patch.iter().fold(0.0f32, |s, &v| s + v) / n;
    for v in patch.iter_mut() {
        *v -= mean;
    }
    if let Some(eps) = contrast {
        let rms = (patch.iter().fold(0.0f32, |s, &v| s + v * v) / n).sqrt();
        let d = rms.max(eps);
        for v in patch.iter_mut() {
            *v /= d;
        }
    }
}

/// BT.601 luma of an 8-bit RGB pixel, rounded as PIL does.
#[inline]
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((19595 * r as u32 + 38470 * g as u32 + 7471 * b as u32 + (1 << 15)) >> 16) as u8
}

/// An 8-bit grayscale picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    /// Where it came from, for messages: the file, or `IDX file #index`.
    pub name: String,
    /// Height.
    pub rows: usize,
    /// Width.
    pub cols: usize,
    /// `rows × cols` pixels, row-major.
    pub pixels: Vec<u8>,
}

/// Decodes a PNG or JPEG file (format from its content, else its extension) to grayscale.
pub fn decode_picture(path: &Path) -> Result<Picture> {
    let fail = |message: String| Error::ImageDecode {
        path: path.to_path_buf(),
        message,
    };
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(|e| fail(e.to_string()))?;
    let (cols, rows) = (img.width() as usize, img.height() as usize);
    let pixels = match img {
        image::DynamicImage::ImageLuma8(g) => g.into_raw(),
        image::DynamicImage::ImageLumaA8(_)
        | image::DynamicImage::ImageLuma16(_)
        | image::DynamicImage::ImageLumaA16(_) => img.to_luma8().into_raw(),
        other => other
            .to_rgb8()
            .pixels()
            .map(|p| luma(p[0], p[1], p[2]))
            .collect(),
    };
    Ok(Picture {
        name: path.display().to_string(),
        rows,
        cols,
        pixels,
    })
}

/// The picture files directly in `dir` ([`IMAGE_EXTENSIONS`]), sorted by file name.
pub fn list_pictures(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::DataDir {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::DataDir {
            path: dir.to_path_buf(),
            source: e,
        })?;
        let path = entry.path();
        let is_picture = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)));
        if is_picture && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// What a dataset directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// MNIST-format IDX files.
    Idx,
    /// PNG/JPEG pictures.
    Folder,
}

/// A rectangle of one picture that patches are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Index into [`Dataset::pictures`].
    pub image: usize,
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Height.
    pub rows: usize,
    /// Width.
    pub cols: usize,
}

impl Region {
    /// All of picture `image`.
    pub fn whole(image: usize, picture: &Picture) -> Region {
        Region {
            image,
            top: 0,
            left: 0,
            rows: picture.rows,
            cols: picture.cols,
        }
    }
}

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Patches to train on.
    Train,
    /// Patches to measure on, disjoint from the training ones.
    HeldOut,
}

/// How patches are cut and preprocessed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatchOptions {
    /// Side `K` of the square patches.
    pub size: usize,
    /// `Some(eps)`: contrast normalization with that floor (see [`normalize_patch`]).
    pub contrast: Option<f32>,
}

/// Where a patch was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Index into [`Dataset::pictures`].
    pub image: usize,
    /// Row of the patch's top-left pixel in the picture.
    pub top: usize,
    /// Column of the patch's top-left pixel in the picture.
    pub left: usize,
}

/// Preprocessed patches: `len() × size²` floats, one row-major patch after another.
#[derive(Debug, Clone, PartialEq)]
pub struct Patches {
    /// Side `K`.
    pub size: usize,
    /// `n · K·K` values.
    pub data: Vec<f32>,
    /// Where each patch came from.
    pub origins: Vec<Origin>,
}

impl Patches {
    /// Number of patches.
    pub fn len(&self) -> usize {
        self.origins.len()
    }

    /// No patches.
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// Patch `i`.
    pub fn patch(&self, i: usize) -> &[f32] {
        let len = self.size * self.size;
        &self.data[i * len..(i + 1) * len]
    }
}

/// A whole picture (or region) as floats, for convolutional sparse coding.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatImage {
    /// Height.
    pub rows: usize,
    /// Width.
    pub cols: usize,
    /// `rows × cols` values, row-major.
    pub data: Vec<f32>,
}

/// A dataset directory's pictures with their train and held-out regions.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The directory.
    pub dir: PathBuf,
    /// What it holds.
    pub kind: SourceKind,
    /// Every picture (for IDX: the train split, then the test split).
    pub pictures: Vec<Picture>,
    /// Regions training patches come from.
    pub train: Vec<Region>,
    /// Regions held-out patches come from; they share no pixel with `train`.
    pub held_out: Vec<Region>,
}

fn idx_present(dir: &Path) -> bool {
    ["train", "t10k"].iter().any(|split| {
        let stem = format!("{split}-images-idx3-ubyte");
        dir.join(&stem).is_file() || dir.join(format!("{stem}.gz")).is_file()
    })
}

impl Dataset {
    /// Opens an IDX directory or a folder of pictures (see the module docs).
    pub fn open(dir: &Path) -> Result<Dataset> {
        let meta = std::fs::metadata(dir).map_err(|e| Error::DataDir {
            path: dir.to_path_buf(),
            source: e,
        })?;
        if !meta.is_dir() {
            return Err(Error::DataDir {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a directory (an MNIST-format directory or a folder of .png/.jpg files)",
                ),
            });
        }
        if idx_present(dir) {
            return Dataset::from_idx(dir);
        }
        let files = list_pictures(dir)?;
        if files.is_empty() {
            return Err(Error::EmptyImageFolder {
                path: dir.to_path_buf(),
            });
        }
        let pictures = files
            .par_iter()
            .map(|f| decode_picture(f))
            .collect::<Result<Vec<_>>>()?;
        Ok(Dataset::from_pictures(dir, pictures))
    }

    /// Both splits of an MNIST-format directory: train → [`Part::Train`], test →
    /// [`Part::HeldOut`].
    pub fn from_idx(dir: &Path) -> Result<Dataset> {
        let mut pictures = Vec::new();
        let (mut train, mut held_out) = (Vec::new(), Vec::new());
        for (split, file, regions) in [
            (Split::Train, "train-images-idx3-ubyte", &mut train),
            (Split::Test, "t10k-images-idx3-ubyte", &mut held_out),
        ] {
            let set = data::load(dir, split)?;
            for i in 0..set.n {
                let picture = Picture {
                    name: format!("{} #{i}", dir.join(file).display()),
                    rows: set.rows,
                    cols: set.cols,
                    pixels: set.image(i).to_vec(),
                };
                regions.push(Region::whole(pictures.len(), &picture));
                pictures.push(picture);
            }
        }
        Ok(Dataset {
            dir: dir.to_path_buf(),
            kind: SourceKind::Idx,
            pictures,
            train,
            held_out,
        })
    }

    /// A folder's decoded pictures, in sorted order, split as the module docs say.
    pub fn from_pictures(dir: &Path, pictures: Vec<Picture>) -> Dataset {
        let (mut train, mut held_out) = (Vec::new(), Vec::new());
        if let [only] = &pictures[..] {
            let whole = Region::whole(0, only);
            let (mut a, mut b) = (whole, whole);
            if only.rows >= only.cols {
                let held = only.rows.div_ceil(4);
                a.rows = only.rows - held;
                (b.top, b.rows) = (a.rows, held);
            } else {
                let held = only.cols.div_ceil(4);
                a.cols = only.cols - held;
                (b.left, b.cols) = (a.cols, held);
            }
            train.push(a);
            held_out.push(b);
        } else {
            for (i, p) in pictures.iter().enumerate() {
                if i % HELD_OUT_EVERY == 0 {
                    held_out.push(Region::whole(i, p));
                } else {
                    train.push(Region::whole(i, p));
                }
            }
        }
        Dataset {
            dir: dir.to_path_buf(),
            kind: SourceKind::Folder,
            pictures,
            train,
            held_out,
        }
    }

    /// The regions of one part.
    pub fn regions(&self, part: Part) -> &[Region] {
        match part {
            Part::Train => &self.train,
            Part::HeldOut => &self.held_out,
        }
    }

    /// A typed error unless a `size × size` patch fits in `region`.
    pub fn check_fits(&self, region: &Region, size: usize) -> Result<()> {
        if size == 0 || size > region.rows || size > region.cols {
            let p = &self.pictures[region.image];
            let whole = region.rows == p.rows && region.cols == p.cols;
            let image = if whole {
                p.name.clone()
            } else {
                format!(
                    "the region rows {}..{}, columns {}..{} of {} (held out from a single picture)",
                    region.top,
                    region.top + region.rows,
                    region.left,
                    region.left + region.cols,
                    p.name
                )
            };
            return Err(Error::PatchTooLarge {
                patch: size,
                image,
                rows: region.rows,
                cols: region.cols,
            });
        }
        Ok(())
    }

    /// `n` patches at uniformly random positions of uniformly chosen regions of `part`,
    /// reproducible from `seed` (see the module docs).
    pub fn sample(&self, part: Part, n: usize, opts: &PatchOptions, seed: u64) -> Result<Patches> {
        let regions = self.regions(part);
        for r in regions {
            self.check_fits(r, opts.size)?;
        }
        if regions.is_empty() && n > 0 {
            return Err(Error::Other(format!(
                "{}: no {part:?} pictures to draw patches from",
                self.dir.display()
            )));
        }
        let k = opts.size;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let origins: Vec<Origin> = (0..n)
            .map(|_| {
                let r = &regions[rng.random_range(0..regions.len())];
                Origin {
                    image: r.image,
                    top: r.top + rng.random_range(0..=r.rows - k),
                    left: r.left + rng.random_range(0..=r.cols - k),
                }
            })
            .collect();
        Ok(self.cut(origins, opts))
    }

    /// Every `K×K` patch of `region` whose top-left corner is on the `stride` grid
    /// (row-major order: `⌊(rows−K)/stride⌋+1` rows of `⌊(cols−K)/stride⌋+1` patches).
    pub fn dense(&self, region: &Region, opts: &PatchOptions, stride: usize) -> Result<Patches> {
        self.check_fits(region, opts.size)?;
        if stride == 0 {
            return Err(Error::Other(
                "dense patches: stride must be at least 1".into(),
            ));
        }
        let k = opts.size;
        let mut origins = Vec::new();
        for top in (region.top..=region.top + region.rows - k).step_by(stride) {
            for left in (region.left..=region.left + region.cols - k).step_by(stride) {
                origins.push(Origin {
                    image: region.image,
                    top,
                    left,
                });
            }
        }
        Ok(self.cut(origins, opts))
    }

    /// The raw pixels of the `K×K` patch at `o` (row-major), as a device's camera would
    /// hand them to an exported encoder. `o` must come from this dataset with side `k`.
    pub fn pixels(&self, o: &Origin, k: usize) -> Vec<u8> {
        let p = &self.pictures[o.image];
        (0..k)
            .flat_map(|y| {
                let start = (o.top + y) * p.cols + o.left;
                p.pixels[start..start + k].iter().copied()
            })
            .collect()
    }

    /// Cuts and preprocesses the patches at `origins` (already checked to fit), in parallel.
    fn cut(&self, origins: Vec<Origin>, opts: &PatchOptions) -> Patches {
        let k = opts.size;
        let mut data = vec![0f32; origins.len() * k * k];
        data.par_chunks_mut(k * k)
            .zip(origins.par_iter())
            .for_each(|(out, o)| {
                let p = &self.pictures[o.image];
                for (y, row) in out.chunks_mut(k).enumerate() {
                    let start = (o.top + y) * p.cols + o.left;
                    for (v, &px) in row.iter_mut().zip(&p.pixels[start..start + k]) {
                        *v = unit(px);
                    }
                }
                normalize_patch(out, opts.contrast);
            });
        Patches {
            size: k,
            data,
            origins,
        }
    }

    /// Mean and standard deviation of `p/255` over every pixel of `part`'s regions (for
    /// [`Dataset::images`]; use the training part's for both parts).
    pub fn pixel_stats(&self, part: Part) -> Normalize {
        let (mut n, mut s, mut s2) = (0f64, 0f64, 0f64);
        for r in self.regions(part) {
            let p = &self.pictures[r.image];
            for y in r.top..r.top + r.rows {
                for &px in &p.pixels[y * p.cols + r.left..y * p.cols + r.left + r.cols] {
                    let x = px as f64 / 255.0;
                    (n, s, s2) = (n + 1.0, s + x, s2 + x * x);
                }
            }
        }
        let mean = s / n.max(1.0);
        Normalize {
            mean: mean as f32,
            std: (s2 / n.max(1.0) - mean * mean).max(1e-12).sqrt() as f32,
        }
    }

    /// `part`'s regions as whole images for convolutional sparse coding, each pixel
    /// `(p/255 − mean) / std` ([`Normalize::apply`], the runtime's input normalization).
    ///
    /// No local contrast normalization here: for that, start the architecture with an `lcn`
    /// layer, so the trainer and the exported model share one implementation of it.
    pub fn images(&self, part: Part, norm: &Normalize) -> Vec<FloatImage> {
        self.regions(part)
            .iter()
            .map(|r| {
                let p = &self.pictures[r.image];
                let mut data = Vec::with_capacity(r.rows * r.cols);
                for y in r.top..r.top + r.rows {
                    let row = &p.pixels[y * p.cols + r.left..y * p.cols + r.left + r.cols];
                    data.extend(row.iter().map(|&px| norm.apply(px)));
                }
                FloatImage {
                    rows: r.rows,
                    cols: r.cols,
                    data,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

//! Datasets of labelled images, in one of two layouts ([`load_with`] tells them apart):
//!
//! - **MNIST format**: IDX files, raw or gzip-compressed, with the standard file names:
//!   `DIR/train-images-idx3-ubyte[.gz]`, `DIR/train-labels-idx1-ubyte[.gz]`,
//!   `DIR/t10k-images-idx3-ubyte[.gz]`, `DIR/t10k-labels-idx1-ubyte[.gz]`. Compression is
//!   recognised by the gzip magic bytes, not the file name.
//! - **Image folder**: `DIR/train/<class>/*.png|jpg|jpeg` and `DIR/test/<class>/…`, class
//!   names from the folder names, any size and colour (see [`folder`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use rand::Rng;

use crate::error::{Error, Result};

pub mod folder;

/// Where Debian's `dataset-fashion-mnist` package puts the data.
pub const DEFAULT_DATA_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fashion-MNIST's class names, by label.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// IDX element type code for unsigned bytes, the only one MNIST-format sets use.
const IDX_U8: u8 = 0x08;

/// A decoded IDX file of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Elements in row-major order.
    pub data: Vec<u8>,
}

/// Parses IDX bytes (already decompressed); `path` is for messages.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<Idx> {
    let err = |message: String| Error::Idx {
        path: path.to_path_buf(),
        message,
    };
    if bytes.len() < 4 {
        return Err(err(format!(
            "truncated: {} bytes, an IDX header needs at least 4",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(err(format!(
            "bad magic at offset 0: {:02x} {:02x}, an IDX file starts with 00 00",
            bytes[0], bytes[1]
        )));
    }
    if bytes[2] != IDX_U8 {
        return Err(err(format!(
            "element type code {:#04x} at offset 2 is not supported (expected 0x08, unsigned byte)",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(err("offset 3: zero dimensions".into()));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(err(format!(
            "truncated header: {ndim} dimensions need {header} bytes, file has {}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err(format!("dimensions {dims:?} overflow")))?;
    let expected = header + count;
    if bytes.len() != expected {
        let what = if bytes.len() < expected {
            "truncated"
        } else {
            "trailing bytes"
        };
        return Err(err(format!(
            "{what}: dimensions {dims:?} need {expected} bytes ({header} header + {count} data), file has {}",
            bytes.len()
        )));
    }
    Ok(Idx {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an IDX file, decompressing it if it starts with the gzip magic.
pub fn read_idx(path: &Path) -> Result<Idx> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::Idx {
                path: path.to_path_buf(),
                message: format!("corrupt gzip stream: {e}"),
            })?;
        out
    } else {
        raw
    };
    parse_idx(&bytes, path)
}

/// Which half of an MNIST-format directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `train-*`
    Train,
    /// `t10k-*`
    Test,
}

/// Images and labels of one split.
#[derive(Debug, Clone)]
pub struct Images {
    /// Number of images.
    pub n: usize,
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// `n * rows * cols` pixels.
    pub pixels: Vec<u8>,
    /// `n` labels.
    pub labels: Vec<u8>,
}

impl Images {
    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let len = self.rows * self.cols;
        &self.pixels[i * len..(i + 1) * len]
    }

    /// The first `n` images (or all).
    pub fn take(&self, n: usize) -> Images {
        let n = n.min(self.n);
        let len = self.rows * self.cols;
        Images {
            n,
            rows: self.rows,
            cols: self.cols,
            pixels: self.pixels[..n * len].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// The images at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Images {
        let mut pixels = Vec::with_capacity(idx.len() * self.rows * self.cols);
        for &i in idx {
            pixels.extend_from_slice(self.image(i));
        }
        Images {
            n: idx.len(),
            rows: self.rows,
            cols: self.cols,
            pixels,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
        }
    }

    /// Mean and standard deviation of `p/255` over all pixels.
    pub fn pixel_stats(&self) -> (f32, f32) {
        let n = self.pixels.len().max(1) as f64;
        let (s, s2) = self.pixels.iter().fold((0f64, 0f64), |(s, s2), &p| {
            let x = p as f64 / 255.0;
            (s + x, s2 + x * x)
        });
        let mean = s / n;
        (
            (mean) as f32,
            ((s2 / n - mean * mean).max(1e-12)).sqrt() as f32,
        )
    }
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [stem.to_string(), format!("{stem}.gz")] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::io(
        dir.join(stem),
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "neither {stem} nor {stem}.gz found in {} (an MNIST-format directory, or an image folder with train/<class>/ and test/<class>/ subfolders; on Debian: apt-get install dataset-fashion-mnist)",
                dir.display()
            ),
        ),
    ))
}

/// Loads one split of an MNIST-format directory and checks that images and labels agree.
pub fn load(dir: &Path, split: Split) -> Result<Images> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let ipath = find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lpath = find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = read_idx(&ipath)?;
    let labels = read_idx(&lpath)?;
    if images.dims.len() != 3 {
        return Err(Error::Idx {
            path: ipath,
            message: format!(
                "expected 3 dimensions (n, rows, cols), found {:?}",
                images.dims
            ),
        });
    }
    if labels.dims.len() != 1 {
        return Err(Error::Idx {
            path: lpath,
            message: format!("expected 1 dimension (n), found {:?}", labels.dims),
        });
    }
    if images.dims[0] != labels.dims[0] {
        return Err(Error::Idx {
            path: lpath,
            message: format!(
                "{} labels but {} has {} images",
                labels.dims[0],
                ipath.display(),
                images.dims[0]
            ),
        });
    }
    Ok(Images {
        n: images.dims[0],
        rows: images.dims[1],
        cols: images.dims[2],
        pixels: images.data,
        labels: labels.data,
    })
}

/// How [`load_with`] reads a dataset.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions<'a> {
    /// `[rows, cols]` of the network input, which image folders are resized to (required
    /// for them; IDX images keep their size).
    pub size: Option<[usize; 2]>,
    /// Leave out unreadable or corrupt pictures of an image folder, listing them in
    /// [`Loaded::skipped`], instead of failing.
    pub skip_bad_images: bool,
    /// Label an image folder's classes by their position in this list (a model's class
    /// names) instead of the `train` folder's sorted class folders.
    pub classes: Option<&'a [String]>,
}

/// One split as [`load_with`] read it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The images and labels.
    pub images: Images,
    /// Class names by label for an image folder (`None` for IDX files: see [`class_names`]).
    pub classes: Option<Vec<String>>,
    /// Pictures left out as unreadable (`LoadOptions::skip_bad_images`).
    pub skipped: Vec<PathBuf>,
    /// The split's directory or folder, for messages.
    pub source: PathBuf,
}

impl Loaded {
    /// At most `n` images: the first `n` of IDX files, but `n` spread evenly over an image
    /// folder, whose images are sorted by class (so that every class is represented).
    pub fn limit(mut self, n: usize) -> Loaded {
        self.images = if self.classes.is_some() && n < self.images.n {
            let all = self.images.n;
            self.images
                .select(&(0..n).map(|i| i * all / n).collect::<Vec<_>>())
        } else {
            self.images.take(n)
        };
        self
    }

    /// `skipped 3 unreadable images in DIR/train: a/1.png, b/7.png, c/2.jpg`, naming the
    /// first five (relative to the split folder), or `None` if nothing was skipped.
    pub fn warning(&self) -> Option<String> {
        const SHOWN: usize = 5;
        if self.skipped.is_empty() {
            return None;
        }
        let names: Vec<String> = self
            .skipped
            .iter()
            .take(SHOWN)
            .map(|p| {
                p.strip_prefix(&self.source)
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .collect();
        let more = self.skipped.len().saturating_sub(SHOWN);
        Some(format!(
            "skipped {} unreadable image{} in {}: {}{}",
            self.skipped.len(),
            if self.skipped.len() == 1 { "" } else { "s" },
            self.source.display(),
            names.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ))
    }
}

/// Whether `dir` is an image folder: no IDX images in it, and a `train` or `test` subfolder.
pub fn is_image_folder(dir: &Path) -> bool {
    let idx = ["train", "t10k"].iter().any(|split| {
        let stem = format!("{split}-images-idx3-ubyte");
        dir.join(&stem).is_file() || dir.join(format!("{stem}.gz")).is_file()
    });
    !idx && (dir.join("train").is_dir() || dir.join("test").is_dir())
}

/// Loads one split of an MNIST-format directory ([`load`]) or an image folder
/// ([`folder::load`]), whichever `dir` is ([`is_image_folder`]).
pub fn load_with(dir: &Path, split: Split, opts: &LoadOptions<'_>) -> Result<Loaded> {
    if is_image_folder(dir) {
        return folder::load(dir, split, opts);
    }
    let source = match split {
        Split::Train => dir.join("train-*"),
        Split::Test => dir.join("t10k-*"),
    };
    Ok(Loaded {
        images: load(dir, split)?,
        classes: None,
        skipped: Vec::new(),
        source,
    })
}

/// Class names for a data directory: `classes.txt` (one per line) if present, Fashion-MNIST's
/// names if the path says "fashion", else the digits.
pub fn class_names(dir: &Path, n: usize) -> Vec<String> {
    if let Ok(text) = std::fs::read_to_string(dir.join("classes.txt")) {
        let names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        if names.len() == n {
            return names;
        }
    }
    if n == 10 && dir.to_string_lossy().to_lowercase().contains("fashion") {
        return FASHION_CLASSES.iter().map(|s| s.to_string()).collect();
    }
    (0..n).map(|i| i.to_string()).collect()
}

/// How pixels become network inputs: `x = (p/255 − mean) / std` — the exact expression the
/// runtime uses, so trainer and device see the same numbers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalize {
    /// Mean of `p/255`.
    pub mean: f32,
    /// Standard deviation of `p/255`.
    pub std: f32,
}

impl Normalize {
    /// One pixel.
    #[inline]
    pub fn apply(&self, p: u8) -> f32 {
        (p as f32 / 255.0 - self.mean) / self.std
    }

    /// Writes the normalized images `idx` of `set` into `out` (`idx.len() * rows * cols`).
    pub fn batch(&self, set: &Images, idx: &[usize], out: &mut Vec<f32>) {
        out.clear();
        for &i in idx {
            out.extend(set.image(i).iter().map(|&p| self.apply(p)));
        }
    }
}

/// Input augmentation: random horizontal flips, random shifts (jitter, zero fill) and
/// Gaussian noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Mirror left-right with probability ½ (for datasets whose classes are mirror-symmetric,
    /// like Fashion-MNIST's clothes; not for digits).
    pub flip: bool,
    /// Shift by up to ± this many pixels in each axis.
    pub jitter: usize,
    /// Noise standard deviation, in normalized units.
    pub noise: f32,
}

impl Augment {
    /// Augments one normalized `rows × cols` image in place; `background` is the value of a
    /// zero pixel.
    pub fn apply<R: Rng>(
        &self,
        img: &mut [f32],
        rows: usize,
        cols: usize,
        background: f32,
        rng: &mut R,
    ) {
        if self.flip && rng.random::<bool>() {
            for row in img.chunks_mut(cols) {
                row.reverse();
            }
        }
        if self.jitter > 0 {
            let j = self.jitter as i64;
            let (dy, dx) = (rng.random_range(-j..=j), rng.random_range(-j..=j));
            if dy != 0 || dx != 0 {
                let src = img.to_vec();
                for y in 0..rows as i64 {
                    for x in 0..cols as i64 {
                        let (sy, sx) = (y - dy, x - dx);
                        img[(y * cols as i64 + x) as usize] =
                            if sy >= 0 && sy < rows as i64 && sx >= 0 && sx < cols as i64 {
                                src[(sy * cols as i64 + sx) as usize]
                            } else {
                                background
                            };
                    }
                }
            }
        }
        if self.noise > 0.0 {
            for v in img.iter_mut() {
                // Box–Muller; rand's distributions live in rand_distr, which we don't need for one line.
                let (u1, u2): (f32, f32) = (rng.random::<f32>().max(1e-7), rng.random());
                *v +=
                    self.noise * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, IDX_U8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn parses_good_files() {
        let p = Path::new("x");
        let f = parse_idx(&idx(&[2, 2, 3], &[1; 12]), p).unwrap();
        assert_eq!(f.dims, vec![2, 2, 3]);
        assert_eq!(f.data.len(), 12);
    }

    #[test]
    fn malformed_files_are_typed_errors() {
        let p = Path::new("bad.idx");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "truncated: 0 bytes"),
            (vec![1, 0, 8, 1, 0, 0, 0, 0], "bad magic at offset 0"),
            (
                vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0],
                "element type code 0x0d",
            ),
            (vec![0, 0, 8, 0], "zero dimensions"),
            (vec![0, 0, 8, 3, 0, 0], "truncated header"),
            (
                idx(&[2, 2, 3], &[1; 11]),
                "truncated: dimensions [2, 2, 3] need 28 bytes (16 header + 12 data), file has 27",
            ),
            (idx(&[2], &[1; 3]), "trailing bytes"),
            (idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), "overflow"),
        ];
        for (bytes, want) in cases {
            let e = parse_idx(&bytes, p).unwrap_err();
            assert!(matches!(e, Error::Idx { .. }), "{e:?}");
            let msg = e.to_string();
            assert!(
                msg.contains(want) && msg.contains("bad.idx"),
                "{msg:?} lacks {want:?}"
            );
        }
    }

    #[test]
    fn gzip_and_mismatched_counts() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&idx(&[3, 2, 2], &[7; 12])).unwrap();
        std::fs::write(
            dir.path().join("t10k-images-idx3-ubyte.gz"),
            gz.finish().unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("t10k-labels-idx1-ubyte"),
            idx(&[3], &[0, 1, 2]),
        )
        .unwrap();
        let s = load(dir.path(), Split::Test).unwrap();
        assert_eq!((s.n, s.rows, s.cols), (3, 2, 2));
        std::fs::write(
            dir.path().join("t10k-labels-idx1-ubyte"),
            idx(&[2], &[0, 1]),
        )
        .unwrap();
        let e = load(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(e.contains("2 labels but") && e.contains("3 images"), "{e}");
        std::fs::write(
            dir.path().join("t10k-images-idx3-ubyte.gz"),
            [0x1f, 0x8b, 1, 2, 3],
        )
        .unwrap();
        let e = load(dir.path(), Split::Test).unwrap_err().to_string();
        assert!(e.contains("corrupt gzip"), "{e}");
        let e = load(dir.path(), Split::Train).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte.gz found in"), "{e}");
    }

    #[test]
    fn jitter_shifts_with_background() {
        let aug = Augment {
            flip: false,
            jitter: 1,
            noise: 0.0,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        use rand::SeedableRng;
        let orig: Vec<f32> = (0..9).map(|v| v as f32).collect();
        let mut moved = 0;
        for _ in 0..20 {
            let mut img = orig.clone();
            aug.apply(&mut img, 3, 3, -1.0, &mut rng);
            // Every value is either the background or one of the originals, and the shift is rigid.
            assert!(img.iter().all(|v| *v == -1.0 || orig.contains(v)));
            if img != orig {
                moved += 1;
            }
        }
        assert!(moved > 0);
    }
}

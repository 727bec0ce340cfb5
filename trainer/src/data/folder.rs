//! Image-folder datasets: `DIR/train/<class>/*.png|jpg|jpeg` and `DIR/test/<class>/…`.
//!
//! - **Classes** are the folders directly inside `DIR/train`, sorted by name (bytewise); a
//!   label is an index into that list (or into the list the caller gives, such as a model's
//!   class names). A test class that train lacks is an error naming its folder.
//! - **Images** are the `.png`, `.jpg` and `.jpeg` files directly inside a class folder
//!   (extension case-insensitive), in file-name order. Other files, hidden files (name
//!   starting with `.`) and anything in deeper subfolders are ignored, as are hidden folders
//!   and plain files next to the class folders.
//! - **Pixels**: decoded by the `image` crate, made 8-bit grayscale with the BT.601 luma
//!   weights ([`crate::patches::luma`]; alpha dropped), then resized to the architecture's
//!   input with [`RESIZE_FILTER`] (bilinear). Images already at that size are not resampled,
//!   so PNGs written from IDX files load bit for bit as the IDX pixels.
//! - **Order**: classes in order, files in order within each class; decoding runs in
//!   parallel but the result does not depend on the thread count.
//! - **Errors**, each naming the file or folder: an unreadable or corrupt image, an empty
//!   class folder, no class folders at all, more than 256 classes. With `skip_bad_images`,
//!   unreadable images are left out and listed in [`Loaded::skipped`]; a class left with no
//!   image is still an error.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use rayon::prelude::*;

use super::{Images, LoadOptions, Loaded, Split};
use crate::error::{Error, Result};
use crate::patches::{decode_picture, list_pictures};

/// How pictures of another size are resampled to the architecture's input: the `image`
/// crate's triangle filter, i.e. bilinear interpolation (widened when shrinking, so every
/// source pixel contributes).
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;

/// Labels are `u8`.
pub const MAX_CLASSES: usize = 256;

/// The subfolder of a split.
pub fn split_dir(dir: &Path, split: Split) -> PathBuf {
    dir.join(match split {
        Split::Train => "train",
        Split::Test => "test",
    })
}

fn read_dir_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::DataDir {
        path: path.to_path_buf(),
        source,
    }
}

fn hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The class folders of a split folder, sorted by name: an error if there are none, more
/// than [`MAX_CLASSES`], or one whose name is not UTF-8.
pub fn class_folders(split_dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(split_dir).map_err(read_dir_err(split_dir))? {
        let path = entry.map_err(read_dir_err(split_dir))?.path();
        if !path.is_dir() || hidden(&path) {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return Err(Error::ImageFolder {
                path,
                message: "class folder name is not UTF-8".into(),
            });
        };
        classes.push((name.to_string(), path));
    }
    classes.sort();
    if classes.is_empty() {
        return Err(Error::ImageFolder {
            path: split_dir.to_path_buf(),
            message: "no class folders (expected <class>/*.png|jpg subfolders)".into(),
        });
    }
    if classes.len() > MAX_CLASSES {
        return Err(Error::ImageFolder {
            path: split_dir.to_path_buf(),
            message: format!(
                "{} class folders, at most {MAX_CLASSES} are supported",
                classes.len()
            ),
        });
    }
    Ok(classes)
}

/// The class names of a folder dataset: its `train` folder's class folders.
pub fn class_names(dir: &Path) -> Result<Vec<String>> {
    Ok(class_folders(&split_dir(dir, Split::Train))?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

/// An error reading a picture that `--skip-bad-images` turns into a warning.
fn unreadable(e: &Error) -> bool {
    matches!(e, Error::ImageDecode { .. } | Error::Io { .. })
}

/// Decodes one picture to grayscale `rows × cols` ([`RESIZE_FILTER`] if it differs).
fn read_sized(path: &Path, [rows, cols]: [usize; 2]) -> Result<Vec<u8>> {
    let pic = decode_picture(path)?;
    if (pic.rows, pic.cols) == (rows, cols) {
        return Ok(pic.pixels);
    }
    let gray = image::GrayImage::from_raw(pic.cols as u32, pic.rows as u32, pic.pixels)
        .expect("decode_picture returns rows × cols pixels");
    Ok(image::imageops::resize(&gray, cols as u32, rows as u32, RESIZE_FILTER).into_raw())
}

/// Loads one split of a folder dataset (see the module docs).
pub fn load(dir: &Path, split: Split, opts: &LoadOptions<'_>) -> Result<Loaded> {
    let here = split_dir(dir, split);
    let size = opts.size.ok_or_else(|| Error::ImageFolder {
        path: dir.to_path_buf(),
        message: "an image-folder dataset needs the input size to resize to".into(),
    })?;
    let folders = class_folders(&here)?;
    let (classes, against) = match opts.classes {
        Some(names) => (names.to_vec(), "the model's classes"),
        None if split == Split::Train => (folders.iter().map(|(n, _)| n.clone()).collect(), ""),
        None => (class_names(dir)?, "the train folder's classes"),
    };
    if classes.len() > MAX_CLASSES {
        return Err(Error::ImageFolder {
            path: here,
            message: format!(
                "{} classes given, labels hold at most {MAX_CLASSES}",
                classes.len()
            ),
        });
    }
    let mut jobs = Vec::new();
    for (name, path) in &folders {
        let Some(label) = classes.iter().position(|c| c == name) else {
            return Err(Error::ImageFolder {
                path: path.clone(),
                message: format!("class {name:?} is not one of {against}: {classes:?}"),
            });
        };
        let files: Vec<PathBuf> = list_pictures(path)?
            .into_iter()
            .filter(|f| !hidden(f))
            .collect();
        if files.is_empty() {
            return Err(Error::ImageFolder {
                path: path.clone(),
                message: "empty class folder: no .png/.jpg/.jpeg files".into(),
            });
        }
        jobs.extend(files.into_iter().map(|f| (f, label as u8, path)));
    }
    let decoded: Vec<Result<Vec<u8>>> = jobs
        .par_iter()
        .map(|(f, _, _)| read_sized(f, size))
        .collect();

    let mut images = Images {
        n: 0,
        rows: size[0],
        cols: size[1],
        pixels: Vec::with_capacity(jobs.len() * size[0] * size[1]),
        labels: Vec::with_capacity(jobs.len()),
    };
    let mut skipped = Vec::new();
    let mut kept_per_class = vec![0usize; classes.len()];
    for ((file, label, _), pixels) in jobs.iter().zip(decoded) {
        match pixels {
            Ok(p) => {
                images.pixels.extend_from_slice(&p);
                images.labels.push(*label);
                kept_per_class[*label as usize] += 1;
            }
            Err(e) if opts.skip_bad_images && unreadable(&e) => skipped.push(file.clone()),
            Err(e) => return Err(e),
        }
    }
    images.n = images.labels.len();
    if let Some((_, _, folder)) = jobs
        .iter()
        .find(|(_, l, _)| kept_per_class[*l as usize] == 0)
    {
        return Err(Error::ImageFolder {
            path: folder.to_path_buf(),
            message: "every image in this class folder is unreadable".into(),
        });
    }
    Ok(Loaded {
        images,
        classes: Some(classes),
        skipped,
        source: here,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a `w × h` picture of one colour; the format follows the extension.
    fn picture(path: &Path, w: u32, h: u32, rgb: Option<[u8; 3]>, gray: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match rgb {
            Some(c) => image::RgbImage::from_pixel(w, h, image::Rgb(c)).save(path),
            None => image::GrayImage::from_pixel(w, h, image::Luma([gray])).save(path),
        }
        .unwrap();
    }

    /// `train/{a,b}` with two 4×4 pictures each, `test/{a,b}` with one.
    fn dataset() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (split, n) in [("train", 2), ("test", 1)] {
            for (class, gray) in [("a", 10), ("b", 200)] {
                for i in 0..n {
                    let f = d.path().join(format!("{split}/{class}/{i}.png"));
                    picture(&f, 4, 4, None, gray + i as u8);
                }
            }
        }
        d
    }

    fn opts() -> LoadOptions<'static> {
        LoadOptions {
            size: Some([4, 4]),
            ..Default::default()
        }
    }

    fn error(dir: &Path, split: Split, o: &LoadOptions<'_>) -> (Error, String) {
        let e = super::super::load_with(dir, split, o).unwrap_err();
        let msg = e.to_string();
        (e, msg)
    }

    #[test]
    fn loads_classes_in_order_and_ignores_other_files() {
        let d = dataset();
        let p = d.path();
        std::fs::write(p.join("train/a/notes.txt"), "not a picture").unwrap();
        std::fs::write(p.join("train/a/.hidden.png"), "junk").unwrap();
        std::fs::write(p.join("train/README.md"), "junk").unwrap();
        std::fs::create_dir_all(p.join("train/.cache")).unwrap();
        picture(&p.join("train/b/deeper/9.png"), 4, 4, None, 99);
        assert!(super::super::is_image_folder(p));
        let l = super::super::load_with(p, Split::Train, &opts()).unwrap();
        assert_eq!(l.classes.as_deref(), Some(&["a".into(), "b".into()][..]));
        assert_eq!(l.images.labels, [0, 0, 1, 1]);
        let firsts: Vec<u8> = (0..4).map(|i| l.images.image(i)[0]).collect();
        assert_eq!(firsts, [10, 11, 200, 201]);
        assert!(l.skipped.is_empty() && l.warning().is_none());
        // Test labels index the train classes, even where test lacks one of them.
        std::fs::remove_dir_all(p.join("test/a")).unwrap();
        let t = super::super::load_with(p, Split::Test, &opts()).unwrap();
        assert_eq!(
            (t.images.labels.clone(), t.images.image(0)[0]),
            (vec![1], 200)
        );
        // A model's class list relabels the folders.
        let model = ["x".to_string(), "b".into()];
        let o = LoadOptions {
            classes: Some(&model),
            ..opts()
        };
        let t = super::super::load_with(p, Split::Test, &o).unwrap();
        assert_eq!(t.images.labels, [1]);
        // Spread over the classes, not the first class only.
        assert_eq!(l.limit(2).images.labels, [0, 1]);
    }

    #[test]
    fn rgb_and_other_sizes_become_the_input_size_in_gray() {
        let d = dataset();
        let p = d.path();
        // BT.601 luma of (200, 100, 50): (19595·200 + 38470·100 + 7471·50 + 2¹⁵) >> 16 = 124.
        picture(&p.join("train/a/rgb.png"), 56, 40, Some([200, 100, 50]), 0);
        picture(&p.join("train/b/small.png"), 2, 3, None, 77);
        let o = LoadOptions {
            size: Some([28, 28]),
            ..Default::default()
        };
        let l = super::super::load_with(p, Split::Train, &o).unwrap();
        assert_eq!((l.images.n, l.images.rows, l.images.cols), (6, 28, 28));
        assert_eq!(l.images.pixels.len(), 6 * 28 * 28);
        // Files sort as 0.png, 1.png, rgb.png within a; 0.png, 1.png, small.png within b.
        assert!(
            l.images.image(2).iter().all(|&v| v == 124),
            "{:?}",
            l.images.image(2)
        );
        assert!(l.images.image(5).iter().all(|&v| v == 77));
        assert!(l.images.image(0).iter().all(|&v| v == 10));
    }

    #[test]
    fn jpeg_is_read() {
        let d = dataset();
        picture(&d.path().join("train/a/photo.JPG"), 4, 4, None, 128);
        let l = super::super::load_with(d.path(), Split::Train, &opts()).unwrap();
        assert_eq!(l.images.n, 5);
        let v = l.images.image(2);
        assert!(v.iter().all(|&p| p.abs_diff(128) <= 2), "{v:?}");
    }

    #[test]
    fn corrupt_images_are_errors_or_counted_with_skip() {
        let d = dataset();
        let p = d.path();
        let bad = p.join("train/b/1_bad.png");
        std::fs::write(&bad, [0x89, b'P', b'N', b'G', 7, 1, 2, 3, 4]).unwrap();
        std::fs::write(p.join("train/a/bad.jpeg"), b"random bytes").unwrap();
        let (e, msg) = error(p, Split::Train, &opts());
        assert!(matches!(e, Error::ImageDecode { .. }), "{e:?}");
        assert!(msg.contains("bad.jpeg"), "{msg}");

        let skip = LoadOptions {
            skip_bad_images: true,
            ..opts()
        };
        let l = super::super::load_with(p, Split::Train, &skip).unwrap();
        assert_eq!(l.images.n, 4);
        assert_eq!(l.images.labels, [0, 0, 1, 1]);
        assert_eq!(l.skipped, [p.join("train/a/bad.jpeg"), bad]);
        let w = l.warning().unwrap();
        assert!(
            w.starts_with("skipped 2 unreadable images in ")
                && w.ends_with("a/bad.jpeg, b/1_bad.png"),
            "{w}"
        );

        // A class whose every picture is bad is still an error, naming the folder.
        std::fs::write(p.join("test/a/0.png"), b"junk").unwrap();
        let (e, msg) = error(p, Split::Test, &skip);
        assert!(matches!(e, Error::ImageFolder { .. }), "{e:?}");
        assert!(
            msg.contains("test/a") && msg.contains("unreadable"),
            "{msg}"
        );
    }

    #[test]
    fn layout_errors_name_the_folder() {
        let d = dataset();
        let p = d.path();
        std::fs::create_dir_all(p.join("train/empty")).unwrap();
        std::fs::write(p.join("train/empty/readme.txt"), "no pictures").unwrap();
        let (e, msg) = error(p, Split::Train, &opts());
        assert!(matches!(e, Error::ImageFolder { .. }), "{e:?}");
        assert!(
            msg.contains("train/empty") && msg.contains("empty class folder"),
            "{msg}"
        );
        std::fs::remove_dir_all(p.join("train/empty")).unwrap();

        picture(&p.join("test/zebra/0.png"), 4, 4, None, 0);
        let (_, msg) = error(p, Split::Test, &opts());
        assert!(
            msg.contains("test/zebra") && msg.contains("not one of the train folder's classes"),
            "{msg}"
        );
        let model = ["a".to_string(), "b".into()];
        let o = LoadOptions {
            classes: Some(&model),
            ..opts()
        };
        let (_, msg) = error(p, Split::Test, &o);
        assert!(
            msg.contains("test/zebra") && msg.contains("model's classes"),
            "{msg}"
        );

        let (_, msg) = error(p, Split::Train, &LoadOptions::default());
        assert!(msg.contains("needs the input size"), "{msg}");

        let e = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(e.path().join("train")).unwrap();
        let (_, msg) = error(e.path(), Split::Train, &opts());
        assert!(msg.contains("no class folders"), "{msg}");
        let (e, msg) = error(e.path(), Split::Test, &opts());
        assert!(
            matches!(e, Error::DataDir { .. }) && msg.contains("test"),
            "{msg}"
        );
    }

    #[test]
    fn more_than_256_classes_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        for i in 0..257 {
            std::fs::create_dir_all(d.path().join(format!("train/c{i:03}"))).unwrap();
        }
        let (_, msg) = error(d.path(), Split::Train, &opts());
        assert!(msg.contains("257 class folders, at most 256"), "{msg}");
    }
}

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

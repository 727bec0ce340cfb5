use std::collections::HashSet;

use super::*;

/// An IDX file of unsigned bytes.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

/// A pixel pattern that differs between pictures and positions.
fn pattern(image: usize, y: usize, x: usize) -> u8 {
    ((image * 37 + y * 11 + x * 5 + (x * y) % 7) % 256) as u8
}

/// An MNIST-format directory: 20 train and 5 test images of 12×12.
fn idx_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (prefix, n, first) in [("train", 20u32, 0), ("t10k", 5, 100)] {
        let pixels: Vec<u8> = (0..n as usize)
            .flat_map(|i| (0..144).map(move |j| pattern(first + i, j / 12, j % 12)))
            .collect();
        let images = idx(&[n, 12, 12], &pixels);
        std::fs::write(
            dir.path().join(format!("{prefix}-images-idx3-ubyte")),
            images,
        )
        .unwrap();
        let labels = idx(&[n], &vec![0; n as usize]);
        std::fs::write(
            dir.path().join(format!("{prefix}-labels-idx1-ubyte")),
            labels,
        )
        .unwrap();
    }
    dir
}

/// Writes `image::*` pictures into `dir` under `names`: gray PNGs of assorted sizes, one
/// non-square, one RGB PNG and one JPEG (upper-case extension).
fn picture_folder(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..n {
        let (w, h) = if i == 3 {
            (24, 15)
        } else {
            (16 + i as u32, 16)
        };
        let path = dir.path().join(format!("img{i:02}.png"));
        match i {
            1 => image::RgbImage::from_fn(w, h, |x, y| {
                let v = pattern(i, y as usize, x as usize);
                image::Rgb([v, v / 2, 255 - v])
            })
            .save(&path)
            .unwrap(),
            2 => image::GrayImage::from_fn(w, h, |x, y| {
                image::Luma([pattern(i, y as usize, x as usize)])
            })
            .save_with_format(dir.path().join("img02.JPG"), image::ImageFormat::Jpeg)
            .unwrap(),
            _ => image::GrayImage::from_fn(w, h, |x, y| {
                image::Luma([pattern(i, y as usize, x as usize)])
            })
            .save(&path)
            .unwrap(),
        }
    }
    std::fs::write(dir.path().join("notes.txt"), "not a picture").unwrap();
    dir
}

const OPTS: PatchOptions = PatchOptions {
    size: 5,
    contrast: None,
};

#[test]
fn normalize_patch_is_the_documented_arithmetic() {
    let raw = [10u8, 20, 30, 40, 50, 60, 70, 80, 250];
    let mut p: Vec<f32> = raw.iter().map(|&v| unit(v)).collect();
    normalize_patch(&mut p, None);
    let mean = raw.iter().map(|&v| v as f32 / 255.0).sum::<f32>() / 9.0;
    for (v, &r) in p.iter().zip(&raw) {
        assert_eq!(*v, r as f32 / 255.0 - mean);
    }
    let mut c = p.clone();
    normalize_patch(&mut c, Some(DEFAULT_CONTRAST_EPS));
    let rms = (c.iter().map(|v| v * v).sum::<f32>() / 9.0).sqrt();
    assert!((rms - 1.0).abs() < 1e-5, "{rms}");
    // A flat patch stays zero; a nearly flat one is divided by eps, not stretched.
    let mut flat = vec![0.5f32; 9];
    normalize_patch(&mut flat, Some(0.02));
    assert!(flat.iter().all(|&v| v == 0.0));
    let mut faint: Vec<f32> = (0..9).map(|i| 0.5 + 0.001 * (i % 2) as f32).collect();
    normalize_patch(&mut faint, Some(0.02));
    let rms = (faint.iter().map(|v| v * v).sum::<f32>() / 9.0).sqrt();
    assert!(rms < 0.05, "{rms}");
    normalize_patch(&mut [], Some(0.02));
}

#[test]
fn luma_is_bt601_as_pil() {
    // PIL: Image.new("RGB", (1, 1), c).convert("L").getpixel((0, 0))
    for ((r, g, b), want) in [
        ((255, 0, 0), 76),
        ((0, 255, 0), 150),
        ((0, 0, 255), 29),
        ((255, 255, 255), 255),
        ((0, 0, 0), 0),
        ((10, 200, 30), 124),
    ] {
        assert_eq!(luma(r, g, b), want, "{r} {g} {b}");
    }
}

#[test]
fn idx_directory_patches() {
    let dir = idx_dir();
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(ds.kind, SourceKind::Idx);
    assert_eq!(
        (ds.train.len(), ds.held_out.len(), ds.pictures.len()),
        (20, 5, 25)
    );
    let a = ds.sample(Part::Train, 200, &OPTS, 7).unwrap();
    assert_eq!((a.len(), a.data.len()), (200, 200 * 25));
    assert!(a
        .origins
        .iter()
        .all(|o| o.image < 20 && o.top <= 7 && o.left <= 7));
    let held = ds.sample(Part::HeldOut, 50, &OPTS, 7).unwrap();
    assert!(held.origins.iter().all(|o| (20..25).contains(&o.image)));
    assert!(ds.pictures[held.origins[0].image]
        .name
        .contains("t10k-images-idx3-ubyte #"));
    // Each patch is its picture's pixels at its origin, minus their mean.
    for i in [0, 17, 199] {
        let o = a.origins[i];
        let raw: Vec<f32> = (0..25)
            .map(|j| unit(ds.pictures[o.image].pixels[(o.top + j / 5) * 12 + o.left + j % 5]))
            .collect();
        let mean = raw.iter().sum::<f32>() / 25.0;
        for (v, r) in a.patch(i).iter().zip(&raw) {
            assert!((v - (r - mean)).abs() < 1e-6);
        }
    }
}

#[test]
fn sampling_is_reproducible_and_thread_independent() {
    let dir = picture_folder(12);
    let ds = Dataset::open(dir.path()).unwrap();
    let opts = PatchOptions {
        size: 6,
        contrast: Some(DEFAULT_CONTRAST_EPS),
    };
    let a = ds.sample(Part::Train, 300, &opts, 42).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let b = one.install(|| ds.sample(Part::Train, 300, &opts, 42).unwrap());
    assert_eq!(a, b);
    let c = ds.sample(Part::Train, 300, &opts, 43).unwrap();
    assert_ne!(a.origins, c.origins);
    // Uniform over pictures: every training picture is drawn from.
    let seen: HashSet<usize> = a.origins.iter().map(|o| o.image).collect();
    assert_eq!(seen.len(), ds.train.len());
}

#[test]
fn picture_folder_split_and_preprocessing() {
    let dir = picture_folder(12);
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(ds.kind, SourceKind::Folder);
    // Sorted by name, notes.txt skipped, the upper-case .JPG read.
    let names: Vec<String> = ds
        .pictures
        .iter()
        .map(|p| {
            Path::new(&p.name)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into()
        })
        .collect();
    assert_eq!(
        names[..4],
        ["img00.png", "img01.png", "img02.JPG", "img03.png"]
    );
    assert_eq!((ds.pictures[3].rows, ds.pictures[3].cols), (15, 24));
    // The RGB picture became BT.601 luma.
    let (v, p1) = (pattern(1, 2, 3), &ds.pictures[1]);
    assert_eq!(p1.pixels[2 * p1.cols + 3], luma(v, v / 2, 255 - v));
    // Every 10th file, from the first, is held out.
    let held: Vec<usize> = ds.held_out.iter().map(|r| r.image).collect();
    assert_eq!(held, [0, 10]);
    assert_eq!(ds.train.len(), 10);
    let h = ds.sample(Part::HeldOut, 100, &OPTS, 1).unwrap();
    assert!(h.origins.iter().all(|o| o.image == 0 || o.image == 10));
    let t = ds.sample(Part::Train, 100, &OPTS, 1).unwrap();
    assert!(t.origins.iter().all(|o| o.image != 0 && o.image != 10));
    // Mean removal always; contrast normalization on request.
    for i in 0..t.len() {
        let mean = t.patch(i).iter().sum::<f32>() / 25.0;
        assert!(mean.abs() < 1e-5, "{mean}");
    }
    let opts = PatchOptions {
        size: 5,
        contrast: Some(DEFAULT_CONTRAST_EPS),
    };
    let c = ds.sample(Part::Train, 100, &opts, 1).unwrap();
    for i in 0..c.len() {
        let rms = (c.patch(i).iter().map(|v| v * v).sum::<f32>() / 25.0).sqrt();
        assert!((rms - 1.0).abs() < 1e-4, "patch {i}: rms {rms}");
    }
}

#[test]
fn single_picture_holds_out_a_disjoint_region() {
    for (w, h) in [(20u32, 40u32), (40, 20)] {
        let dir = tempfile::tempdir().unwrap();
        image::GrayImage::from_fn(w, h, |x, y| {
            image::Luma([pattern(0, y as usize, x as usize)])
        })
        .save(dir.path().join("only.png"))
        .unwrap();
        let ds = Dataset::open(dir.path()).unwrap();
        let (t, held) = (ds.train[0], ds.held_out[0]);
        assert_eq!((t.rows * t.cols + held.rows * held.cols) as u32, w * h);
        let t = ds.sample(Part::Train, 200, &OPTS, 3).unwrap();
        let held = ds.sample(Part::HeldOut, 200, &OPTS, 3).unwrap();
        let pixels = |p: &Patches| -> HashSet<(usize, usize)> {
            p.origins
                .iter()
                .flat_map(|o| (0..25).map(move |j| (o.top + j / 5, o.left + j % 5)))
                .collect()
        };
        assert!(pixels(&t).is_disjoint(&pixels(&held)), "{w}×{h}");
        // The held-out quarter is 10 pixels deep: a 12-pixel patch names the region.
        let big = PatchOptions { size: 12, ..OPTS };
        let e = ds
            .sample(Part::HeldOut, 1, &big, 3)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--patch 12") && e.contains("only.png") && e.contains("region"),
            "{e}"
        );
    }
}

#[test]
fn dense_extraction_covers_the_grid() {
    let dir = picture_folder(4);
    let ds = Dataset::open(dir.path()).unwrap();
    let r = Region::whole(3, &ds.pictures[3]); // 15 rows × 24 columns
    let all = ds.dense(&r, &OPTS, 1).unwrap();
    assert_eq!(all.len(), 11 * 20);
    assert_eq!(
        all.origins[21],
        Origin {
            image: 3,
            top: 1,
            left: 1
        }
    );
    let strided = ds.dense(&r, &OPTS, 5).unwrap();
    assert_eq!(strided.len(), 3 * 4);
    assert_eq!(
        strided.origins.last().unwrap(),
        &Origin {
            image: 3,
            top: 10,
            left: 15
        }
    );
    assert_eq!(strided.patch(5), all.patch(5 * 20 + 5));
    assert!(ds.dense(&r, &OPTS, 0).is_err());
}

#[test]
fn whole_images_are_normalized_with_dataset_stats() {
    let dir = idx_dir();
    let ds = Dataset::open(dir.path()).unwrap();
    let norm = ds.pixel_stats(Part::Train);
    let imgs = ds.images(Part::Train, &norm);
    assert_eq!(imgs.len(), 20);
    let all: Vec<f32> = imgs.iter().flat_map(|i| i.data.iter().copied()).collect();
    let mean = all.iter().map(|&v| v as f64).sum::<f64>() / all.len() as f64;
    let var = all.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / all.len() as f64;
    assert!(
        mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
        "{mean} {var}"
    );
    assert_eq!(imgs[0].data[13], norm.apply(ds.pictures[0].pixels[13]));
}

#[test]
fn errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nosuch");
    let e = Dataset::open(&missing).unwrap_err();
    assert!(matches!(e, Error::DataDir { .. }), "{e:?}");
    assert!(e.to_string().contains("nosuch"), "{e}");

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    std::fs::write(empty.join("readme.md"), "x").unwrap();
    let e = Dataset::open(&empty).unwrap_err();
    assert!(matches!(e, Error::EmptyImageFolder { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with("empty image folder ") && msg.contains("no .png/.jpg/.jpeg files"),
        "{msg}"
    );

    let dir = picture_folder(3);
    std::fs::write(dir.path().join("broken.png"), b"\x89PNG garbage bytes").unwrap();
    let e = Dataset::open(dir.path()).unwrap_err();
    assert!(matches!(e, Error::ImageDecode { .. }), "{e:?}");
    assert!(
        e.to_string().contains("broken.png: cannot decode image"),
        "{e}"
    );

    let dir = picture_folder(3);
    let ds = Dataset::open(dir.path()).unwrap();
    let big = PatchOptions { size: 17, ..OPTS };
    let e = ds.sample(Part::Train, 10, &big, 1).unwrap_err();
    assert!(
        matches!(
            e,
            Error::PatchTooLarge {
                patch: 17,
                rows: 16,
                cols: 17,
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("--patch 17") && msg.contains("img01.png") && msg.contains("16×17"),
        "{msg}"
    );

    let idx = idx_dir();
    let ds = Dataset::open(idx.path()).unwrap();
    let e = ds
        .sample(Part::HeldOut, 10, &PatchOptions { size: 13, ..OPTS }, 1)
        .unwrap_err();
    assert!(
        e.to_string().contains("t10k-images-idx3-ubyte #0") && e.to_string().contains("12×12"),
        "{e}"
    );
}

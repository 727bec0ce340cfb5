//! `--data DIR` on an image folder, end to end: Fashion-MNIST images written out as PNGs
//! under `train/<class>/` and `test/<class>/` train, export and evaluate exactly as the same
//! images in IDX files do, and bad pictures are errors naming the file (or, with
//! `--skip-bad-images`, a counted warning).

mod common;
use common::{kestrel, s};

use std::path::{Path, PathBuf};

use kestrel_trainer::checkpoint::Checkpoint;
use kestrel_trainer::data::{self, Images, LoadOptions, Split, FASHION_CLASSES};

const TRAIN: usize = 3000;
const TEST: usize = 1000;

fn data() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("KESTREL_DATA").unwrap_or_else(|_| data::DEFAULT_DATA_DIR.into()),
    );
    assert!(
        dir.is_dir(),
        "no data in {}: run scripts/install-deps.sh or set KESTREL_DATA",
        dir.display()
    );
    dir
}

/// Folder names that sort in label order (`0 T-shirt-top`, `1 Trouser`, …), so the folder's
/// labels equal the IDX labels.
fn class_folder(label: u8) -> String {
    format!(
        "{label} {}",
        FASHION_CLASSES[label as usize].replace('/', "-")
    )
}

/// The images in the order an image folder yields them: by class, then by file name (the
/// zero-padded original index).
fn by_class(set: &Images) -> Images {
    let mut order: Vec<usize> = (0..set.n).collect();
    order.sort_by_key(|&i| (set.labels[i], i));
    set.select(&order)
}

fn write_idx(path: &Path, dims: &[usize], data: &[u8]) {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for &d in dims {
        b.extend_from_slice(&(d as u32).to_be_bytes());
    }
    b.extend_from_slice(data);
    std::fs::write(path, b).unwrap();
}

/// The first `TRAIN` and `TEST` Fashion-MNIST images, as PNG folders in `folder` and as
/// IDX files in `idx`, both in class order.
fn write_fixture(folder: &Path, idx: &Path) {
    for (split, sub, prefix, n) in [
        (Split::Train, "train", "train", TRAIN),
        (Split::Test, "test", "t10k", TEST),
    ] {
        let set = data::load(&data(), split).unwrap().take(n);
        for i in 0..set.n {
            let dir = folder.join(sub).join(class_folder(set.labels[i]));
            std::fs::create_dir_all(&dir).unwrap();
            let img = image::GrayImage::from_raw(28, 28, set.image(i).to_vec()).unwrap();
            img.save(dir.join(format!("{i:05}.png"))).unwrap();
        }
        let sorted = by_class(&set);
        write_idx(
            &idx.join(format!("{prefix}-images-idx3-ubyte")),
            &[sorted.n, 28, 28],
            &sorted.pixels,
        );
        write_idx(
            &idx.join(format!("{prefix}-labels-idx1-ubyte")),
            &[sorted.n],
            &sorted.labels,
        );
    }
}

fn train(data: &Path, out: &Path, extra: &[&str]) -> (bool, String, String) {
    let (data, out) = (s(data), s(out));
    let mut args = vec![
        "train", "--arch", "lenet", "--data", &data, "--epochs", "1", "--seed", "5", "--out", &out,
    ];
    args.extend_from_slice(extra);
    kestrel(&args)
}

fn eval_json(model: &Path, data: &Path) -> serde_json::Value {
    let (ok, stdout, stderr) =
        kestrel(&["eval", "--model", &s(model), "--data", &s(data), "--json"]);
    assert!(ok, "eval failed: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

#[test]
fn image_folder_trains_and_evaluates_like_idx() {
    let tmp = tempfile::tempdir().unwrap();
    let (folder, idx) = (tmp.path().join("fashion-png"), tmp.path().join("idx"));
    std::fs::create_dir_all(&idx).unwrap();
    write_fixture(&folder, &idx);

    // The PNGs load bit for bit as the IDX pixels, with the same labels.
    let opts = LoadOptions {
        size: Some([28, 28]),
        ..Default::default()
    };
    for split in [Split::Train, Split::Test] {
        let a = data::load_with(&folder, split, &opts).unwrap();
        let b = data::load(&idx, split).unwrap();
        assert_eq!((a.images.pixels, a.images.labels), (b.pixels, b.labels));
    }

    // Same images, same seed: the same training, to the same accuracy.
    let (ck_folder, ck_idx) = (tmp.path().join("folder.ckpt"), tmp.path().join("idx.ckpt"));
    let (ok, stdout, stderr) = train(&folder, &ck_folder, &[]);
    assert!(ok, "train on the folder failed: {stderr}");
    assert!(stdout.contains(&format!("on {TEST} images")), "{stdout}");
    let (ok, _, stderr) = train(&idx, &ck_idx, &[]);
    assert!(ok, "train on IDX failed: {stderr}");
    let (a, b) = (
        Checkpoint::load(&ck_folder).unwrap(),
        Checkpoint::load(&ck_idx).unwrap(),
    );
    let (acc_a, acc_b) = (a.test_accuracy.unwrap(), b.test_accuracy.unwrap());
    assert_eq!(acc_a, acc_b, "folder {acc_a} vs IDX {acc_b}");
    assert!(acc_a > 0.6, "one epoch on {TRAIN} images: {acc_a}");
    let names: Vec<String> = (0..10).map(class_folder).collect();
    assert_eq!(a.classes, names);

    // Export (int8, calibrated on the folder the checkpoint names) and evaluate on the
    // folder's test split: labels come from the model's class names.
    let model = tmp.path().join("folder.kmodel");
    let (ok, _, stderr) = kestrel(&[
        "export",
        "--checkpoint",
        &s(&ck_folder),
        "--quant",
        "int8",
        "--out",
        &s(&model),
    ]);
    assert!(ok, "export failed: {stderr}");
    let v = eval_json(&model, &folder);
    assert_eq!(v["n"], TEST);
    let acc = v["accuracy"].as_f64().unwrap();
    assert!(
        (acc - acc_a as f64).abs() < 0.02,
        "int8 {acc} vs float {acc_a}"
    );

    // A test class the model does not know is an error naming the folder.
    let stray = folder.join("test/zebra");
    std::fs::create_dir_all(&stray).unwrap();
    std::fs::copy(folder.join("test/1 Trouser/00002.png"), stray.join("0.png")).unwrap();
    let (ok, _, stderr) = kestrel(&["eval", "--model", &s(&model), "--data", &s(&folder)]);
    assert!(
        !ok && stderr.contains("test/zebra") && stderr.contains("model's classes"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&stray).unwrap();

    // A corrupt picture stops training, naming it; --skip-bad-images counts and skips it.
    let bad = folder.join("train/3 Dress/zz-corrupt.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = tmp.path().join("bad.ckpt");
    let limit = ["--limit", "200", "--validation", "0"];
    let (ok, _, stderr) = train(&folder, &out, &limit);
    assert!(!ok && stderr.contains("zz-corrupt.png"), "{stderr}");
    let with_skip = [&limit[..], &["--skip-bad-images"]].concat();
    let (ok, _, stderr) = train(&folder, &out, &with_skip);
    assert!(ok, "--skip-bad-images failed: {stderr}");
    assert!(
        stderr.contains("skipped 1 unreadable image in")
            && stderr.contains("3 Dress/zz-corrupt.png"),
        "{stderr}"
    );
}

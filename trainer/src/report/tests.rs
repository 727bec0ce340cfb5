use std::path::{Path, PathBuf};

use super::*;
use crate::checkpoint::EpochLog;
use crate::config::Arch;
use crate::data::Normalize;

#[test]
fn base64_matches_rfc4648_vectors() {
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (plain, encoded) in cases {
        assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
    }
    assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
}

#[test]
fn escape_and_paths() {
    assert_eq!(escape(r#"<a & "b">"#), "&lt;a &amp; &quot;b&quot;&gt;");
    let ck = Path::new("runs/lenet.ckpt");
    assert_eq!(report_path(ck), PathBuf::from("runs/lenet.html"));
    assert_eq!(
        exports_path(ck),
        PathBuf::from("runs/lenet.ckpt.exports.json")
    );
}

#[test]
fn activation_statistics() {
    let s = ActStats::of(&[0.0, 2.0, -2.0, 0.0]);
    assert_eq!(
        (s.mean, s.std, s.zeros, s.max_abs),
        (0.0, 2f64.sqrt(), 0.5, 2.0)
    );
}

fn checkpoint(dir: &Path) -> (Checkpoint, PathBuf) {
    let arch = Arch::load("lenet").unwrap();
    let net = Network::new(Cpu::new(), &arch, 3).unwrap();
    let history = (1..=3)
        .map(|epoch| EpochLog {
            epoch,
            lr: 0.1 / epoch as f32,
            train_loss: 1.0 / epoch as f32,
            train_error: 0.3 / epoch as f32,
            val_error: Some(0.35 / epoch as f32),
            seconds: 1.0,
        })
        .collect();
    let ck = Checkpoint {
        train: arch.train.clone(),
        arch,
        normalize: Normalize {
            mean: 0.3,
            std: 0.3,
        },
        classes: (0..10).map(|c| format!("class {c}")).collect(),
        data_dir: dir.join("no-such-data"),
        train_samples: 100,
        epochs_done: 3,
        history,
        test_accuracy: Some(0.5),
        params: net.params().unwrap(),
        velocities: Vec::new(),
    };
    let path = dir.join("tiny.ckpt");
    ck.save(&path).unwrap();
    (ck, path)
}

/// Without its data directory the report is still written, with plots and filters, and
/// says why the test sections are missing.
#[test]
fn missing_test_data_leaves_out_the_test_sections() {
    let dir = tempfile::tempdir().unwrap();
    let (ck, path) = checkpoint(dir.path());
    let w = write(&path, &[], None).unwrap();
    assert_eq!(w.path, dir.path().join("tiny.html"));
    assert!(w.missing_test.is_some());
    let html = std::fs::read_to_string(&w.path).unwrap();
    assert!(
        html.contains(r#"data-expected-images="4""#),
        "3 plots + filters"
    );
    assert_eq!(html.matches(r#"data-check="plot""#).count(), 3);
    assert_eq!(html.matches(r#"data-check="filters""#).count(), 1);
    assert!(html.contains("could not be read"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network"
    );
    let rows = layer_rows(&ck, None).unwrap();
    let macs: u64 = rows.iter().map(|r| r.macs).sum();
    assert!(macs > 0 && rows.iter().all(|r| r.stats.is_none()));
}

#[test]
fn confusion_counts_and_accuracy() {
    let set = Images {
        n: 4,
        rows: 1,
        cols: 1,
        pixels: vec![0; 4],
        labels: vec![0, 1, 1, 2],
    };
    let m = confusion(&set, &[0, 1, 2, 2], 3);
    assert_eq!(m, vec![vec![1, 0, 0], vec![0, 1, 1], vec![0, 0, 1]]);
    let t = TestResults {
        predictions: vec![0, 1, 2, 2],
        confusion: m,
    };
    assert_eq!(t.accuracy(), 0.75);
}

#[test]
fn exports_replace_by_model_path() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("a.ckpt");
    let rec = |acc| ExportRecord {
        model: "m.kmodel".into(),
        precision: "int8".into(),
        model_bytes: 1,
        n: 1,
        accuracy: acc,
        agreement: 1.0,
        checkpoint_crc: 7,
    };
    assert!(load_exports(&ck).unwrap().is_empty());
    save_export(&ck, rec(0.5)).unwrap();
    save_export(&ck, rec(0.75)).unwrap();
    assert_eq!(load_exports(&ck).unwrap(), vec![rec(0.75)]);
}

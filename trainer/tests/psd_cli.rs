//! `kestrel psd train|eval`, `kestrel visualize` on a PSD checkpoint and
//! `kestrel gradcheck --encoder`, end to end on tiny generated pictures; bad input gives
//! typed errors naming the flag or file, and no checkpoint.

mod common;
use common::{kestrel, s};

use std::path::Path;

use kestrel_trainer::checkpoint::Envelope;

/// Twelve 16×16 gray PNGs with oriented stripes and blobs (some structure to learn).
fn pictures(dir: &Path) {
    for i in 0..12u32 {
        image::GrayImage::from_fn(16, 16, |x, y| {
            let v = match i % 3 {
                0 => (x * 16 + i * 7) % 256,
                1 => (y * 16 + i * 5) % 256,
                _ => ((x + y) * 8 + i * 3) % 256,
            };
            image::Luma([v as u8])
        })
        .save(dir.join(format!("p{i:02}.png")))
        .unwrap();
    }
}

#[test]
fn train_eval_visualize_gradcheck() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("pics");
    std::fs::create_dir(&data).unwrap();
    pictures(&data);
    let ck = tmp.path().join("psd.ckpt");
    let (ok, stdout, stderr) = kestrel(&[
        "psd",
        "train",
        "--data",
        &s(&data),
        "--patch",
        "5",
        "--atoms",
        "12",
        "--lambda",
        "0.3",
        "--encoder",
        "lista:2",
        "--epochs",
        "2",
        "--patches",
        "300",
        "--batch",
        "50",
        "--seed",
        "3",
        "--encoder-epochs",
        "4",
        "--encoder-lr",
        "3e-3",
        "--encoder-patches",
        "600",
        "--out",
        &s(&ck),
    ]);
    assert!(ok, "psd train failed: {stderr}");
    assert!(
        stdout.contains("6 epochs") && stdout.contains("lista:2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("epoch 2:") && stdout.contains("encoder epoch 4:"),
        "{stdout}"
    );
    let m = kestrel_trainer::psd::PsdModel::load(&ck).unwrap();
    assert_eq!((m.meta.epochs_done, m.meta.history.len()), (6, 6));
    // The encoder-only epochs: dictionary frozen (one FISTA energy), the encoder's own
    // energy going down.
    let h = &m.meta.history;
    assert_eq!(h[2].energy, h[5].energy);
    assert!(
        h[5].encoder_energy < h[2].encoder_energy,
        "encoder epochs did not lower E(x, g(x)): {h:?}"
    );
    assert_eq!(m.lateral.as_ref().map(Vec::len), Some(144));
    let png = std::fs::read(tmp.path().join("psd.ckpt.energy.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    let (ok, stdout, stderr) = kestrel(&[
        "psd",
        "eval",
        "--checkpoint",
        &s(&ck),
        "--n",
        "200",
        "--json",
    ]);
    assert!(ok, "psd eval failed: {stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for key in [
        "encoder_energy",
        "fista_energy",
        "ratio",
        "reconstruction_error",
        "nonzero_fraction",
        "n",
    ] {
        assert!(v.get(key).is_some(), "{key} missing: {stdout}");
    }
    let (e, f) = (
        v["encoder_energy"].as_f64().unwrap(),
        v["fista_energy"].as_f64().unwrap(),
    );
    assert!(f > 0.0 && e >= f * (1.0 - 1e-4), "{stdout}");
    assert_eq!(v["n"], 200);

    let grid = tmp.path().join("grid.png");
    let (ok, stdout, stderr) = kestrel(&["visualize", "--checkpoint", &s(&ck), "--out", &s(&grid)]);
    assert!(ok, "visualize failed: {stderr}");
    assert!(
        stdout.contains("dictionary") && stdout.contains("encoder filters"),
        "{stdout}"
    );
    assert_eq!(&std::fs::read(&grid).unwrap()[1..4], b"PNG");

    let (ok, stdout, stderr) = kestrel(&["gradcheck", "--encoder", "lista:2"]);
    assert!(ok && stdout.contains("passed"), "{stdout}{stderr}");
    assert!(
        stdout.contains(" S ") && stdout.contains("theta"),
        "{stdout}"
    );
}

#[test]
fn bad_input_is_a_typed_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("pics");
    std::fs::create_dir(&data).unwrap();
    pictures(&data);
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let corrupt = tmp.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(corrupt.join("a.png"), b"not a png").unwrap();
    let ck = tmp.path().join("x.ckpt");
    let train = |over: &[(&str, &str)], flags: &[&str]| {
        let mut args: Vec<String> = vec!["psd".into(), "train".into()];
        let mut base = vec![
            ("--data", s(&data)),
            ("--patch", "5".into()),
            ("--atoms", "8".into()),
            ("--encoder", "shrink".into()),
            ("--epochs", "1".into()),
            ("--patches", "50".into()),
            ("--out", s(&ck)),
        ];
        for (k, v) in over {
            match base.iter_mut().find(|(b, _)| b == k) {
                Some(slot) => slot.1 = v.to_string(),
                None => base.push((k, v.to_string())),
            }
        }
        for (k, v) in base {
            args.push(k.into());
            args.push(v);
        }
        args.extend(flags.iter().map(|f| f.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        kestrel(&refs)
    };
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a [&'a str]);
    let cases: &[Case] = &[
        (&[("--lambda", "0")], &[], &["--lambda", "> 0"]),
        (&[("--lambda", "-1")], &[], &["--lambda"]),
        (&[("--lambda", "NaN")], &[], &["--lambda", "finite"]),
        (&[("--atoms", "0")], &[], &["--atoms"]),
        (&[("--encoder-lr", "0")], &[], &["--encoder-lr", "> 0"]),
        (&[("--patch", "17")], &[], &["--patch 17", "16×16"]),
        (
            &[("--encoder", "lista:0")],
            &[],
            &["--encoder", "lista:0", "at least one step"],
        ),
        (
            &[("--encoder", "sigmoid")],
            &[],
            &["--encoder", "tanh, shrink or lista:T"],
        ),
        (
            &[("--data", &s(&empty))],
            &[],
            &["empty image folder", "empty"],
        ),
        (
            &[("--data", &s(&tmp.path().join("missing")))],
            &[],
            &["missing"],
        ),
        (
            &[("--data", &s(&corrupt))],
            &[],
            &["a.png", "cannot decode"],
        ),
        (
            &[("--encoder", "lista:2")],
            &["--conv"],
            &["--encoder", "lista:2", "not supported with --conv"],
        ),
        (&[("--patch", "4")], &["--conv"], &["--patch", "4", "odd"]),
    ];
    for (over, flags, want) in cases {
        let (ok, _, stderr) = train(over, flags);
        assert!(!ok, "{over:?} {flags:?} succeeded");
        for w in *want {
            assert!(
                stderr.contains(w),
                "{over:?} {flags:?}: {w:?} not in {stderr}"
            );
        }
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!ck.exists(), "{over:?}: a checkpoint was written");
    }

    // A checkpoint of another kind.
    let convnet = tmp.path().join("convnet.ckpt");
    let env = Envelope {
        kind: "convnet".into(),
        meta: "{}".into(),
        params: vec![],
        velocities: vec![],
    };
    std::fs::write(&convnet, env.to_bytes().unwrap()).unwrap();
    let (ok, _, stderr) = kestrel(&["psd", "eval", "--checkpoint", &s(&convnet)]);
    assert!(!ok, "eval of a convnet checkpoint succeeded");
    assert!(
        stderr.contains("convnet.ckpt")
            && stderr.contains("convnet checkpoint")
            && stderr.contains("psd"),
        "{stderr}"
    );
    let (ok, _, stderr) = kestrel(&["gradcheck", "--encoder", "lista:0"]);
    assert!(!ok && stderr.contains("lista:0"), "{stderr}");
}

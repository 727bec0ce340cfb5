//! The `kestrel` command line, end to end on a small slice of the real data: the names and
//! JSON keys scripts rely on.

mod common;
use common::kestrel;

use std::path::PathBuf;

fn data() -> String {
    let dir = std::env::var("KESTREL_DATA")
        .unwrap_or_else(|_| kestrel_trainer::data::DEFAULT_DATA_DIR.into());
    assert!(
        PathBuf::from(&dir).is_dir(),
        "no data in {dir}: run scripts/install-deps.sh or set KESTREL_DATA"
    );
    dir
}

#[test]
fn train_export_eval_inspect() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    let (ck, model) = (p("lenet.ckpt"), p("lenet.kmodel"));
    let (ok, stdout, stderr) = kestrel(&[
        "train",
        "--arch",
        "lenet",
        "--data",
        &data(),
        "--epochs",
        "2",
        "--limit",
        "3000",
        "--out",
        &ck,
    ]);
    assert!(ok, "train failed: {stderr}");
    assert!(
        stdout.contains("epoch   1/2") && stdout.contains("val err"),
        "{stdout}"
    );
    // The defaults assume nothing about the data: no flips, and a validation split of 10%
    // (at most 5,000) that the log states.
    assert!(
        stdout.contains("validation: 300 of the 3000 training images held out (10.0%"),
        "{stdout}"
    );
    assert!(!stdout.contains("flips"), "{stdout}");
    assert!(stdout.contains("float test accuracy"), "{stdout}");

    let (ok, _, stderr) = kestrel(&[
        "export",
        "--checkpoint",
        &ck,
        "--quant",
        "int8",
        "--out",
        &model,
    ]);
    assert!(ok, "export failed: {stderr}");

    // The float network as ONNX: a protobuf ModelProto with the documented input and output.
    let onnx = p("lenet.onnx");
    let (ok, stdout, stderr) = kestrel(&[
        "export",
        "--checkpoint",
        &ck,
        "--format",
        "onnx",
        "--out",
        &onnx,
    ]);
    assert!(
        ok && stdout.contains("ONNX opset 13"),
        "export onnx failed: {stderr}"
    );
    use kestrel_trainer::export_onnx::onnx::ModelProto;
    use prost::Message;
    let m = ModelProto::decode(std::fs::read(&onnx).unwrap().as_slice()).unwrap();
    let g = m.graph.unwrap();
    assert_eq!(
        (g.input[0].name.as_str(), g.output[0].name.as_str()),
        ("input", "logits")
    );
    assert_eq!(g.node.len(), 12);

    let (ok, stdout, stderr) = kestrel(&[
        "eval",
        "--model",
        &model,
        "--data",
        &data(),
        "--limit",
        "500",
        "--json",
    ]);
    assert!(ok, "eval failed: {stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["n"], 500);
    let acc = v["accuracy"].as_f64().unwrap();
    assert!(acc > 0.5 && acc <= 1.0, "{v}");
    assert!(v["mean_latency_us"].as_f64().unwrap() > 0.0);

    let (ok, stdout, stderr) = kestrel(&["inspect", "--model", &model, "--json"]);
    assert!(ok, "inspect failed: {stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    for key in ["layers", "params", "macs", "model_bytes", "arena_bytes"] {
        assert!(v.get(key).is_some(), "inspect --json lacks {key}: {v}");
    }
    // lenet (LeNet-5 widened to 12 and 24 maps): 90,670 parameters and 1,038,120 MACs
    // (conv1 235,200 + conv2 720,000 + fc 72,000 + 10,080 + 840).
    assert_eq!(v["params"], 90_670);
    assert_eq!(v["macs"], 1_038_120);
    assert_eq!(v["layers"].as_array().unwrap().len(), 12);
    assert_eq!(
        v["model_bytes"].as_u64().unwrap(),
        std::fs::metadata(&model).unwrap().len()
    );

    let (ok, stdout, _) = kestrel(&["inspect", "--model", &model]);
    assert!(
        ok && stdout.contains("conv2d") && stdout.contains("arena"),
        "{stdout}"
    );

    // Resuming continues from epoch 2.
    let (ok, stdout, stderr) = kestrel(&[
        "train",
        "--arch",
        "lenet",
        "--data",
        &data(),
        "--epochs",
        "3",
        "--limit",
        "3000",
        "--validation",
        "500",
        "--out",
        &p("resumed.ckpt"),
        "--resume",
        &ck,
        "--flip",
    ]);
    assert!(ok, "resume failed: {stderr}");
    assert!(
        stdout.contains("epoch   3/3") && !stdout.contains("epoch   1/3"),
        "{stdout}"
    );
    assert!(
        stdout.contains("validation: 500 of the 3000 training images held out (16.7%")
            && stdout.contains("augmentation: random left-right flips (--flip"),
        "{stdout}"
    );
}

#[test]
fn gradcheck_passes_for_shipped_archs() {
    for arch in ["lenet", "jarrett"] {
        let (ok, stdout, stderr) = kestrel(&["gradcheck", "--arch", arch]);
        assert!(ok, "gradcheck {arch} failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("worst rel err") && stdout.contains("passed"),
            "{stdout}"
        );
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    // A model file that is not one.
    std::fs::write(p("junk.kmodel"), b"ONNX not a kestrel model").unwrap();
    let (ok, _, stderr) = kestrel(&["inspect", "--model", &p("junk.kmodel")]);
    assert!(
        !ok && stderr.contains("junk.kmodel") && stderr.contains("not a Kestrel model"),
        "{stderr}"
    );
    // A truncated checkpoint.
    std::fs::write(p("bad.ckpt"), b"KCKP\x01").unwrap();
    let (ok, _, stderr) = kestrel(&[
        "export",
        "--checkpoint",
        &p("bad.ckpt"),
        "--quant",
        "f32",
        "--out",
        &p("m"),
    ]);
    assert!(
        !ok && stderr.contains("bad.ckpt") && stderr.contains("truncated"),
        "{stderr}"
    );
    assert!(!tmp.path().join("m").exists(), "no output file on failure");
    // ONNX is the float network; a Kestrel model needs a precision.
    for (args, message) in [
        (
            &["--format", "onnx", "--quant", "int8"][..],
            "--quant must be f32 or absent",
        ),
        (&[][..], "--format kestrel needs --quant"),
    ] {
        let mut all = vec!["export", "--checkpoint", "bad.ckpt", "--out", "m"];
        all.extend_from_slice(args);
        let (ok, _, stderr) = kestrel(&all);
        assert!(!ok && stderr.contains(message), "{all:?}: {stderr}");
    }
    // A data directory without MNIST files.
    let (ok, _, stderr) = kestrel(&[
        "train",
        "--arch",
        "lenet",
        "--data",
        &p(""),
        "--epochs",
        "1",
        "--out",
        &p("c"),
    ]);
    assert!(
        !ok && stderr.contains("train-images-idx3-ubyte"),
        "{stderr}"
    );
    // A malformed IDX file.
    std::fs::create_dir(p("d")).unwrap();
    std::fs::write(
        tmp.path().join("d/train-images-idx3-ubyte"),
        [0u8, 0, 8, 3, 0, 0, 0, 9],
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("d/train-labels-idx1-ubyte"),
        [0u8, 0, 8, 1, 0, 0, 0, 0],
    )
    .unwrap();
    let (ok, _, stderr) = kestrel(&[
        "train",
        "--arch",
        "lenet",
        "--data",
        &p("d"),
        "--epochs",
        "1",
        "--out",
        &p("c"),
    ]);
    assert!(
        !ok && stderr.contains("train-images-idx3-ubyte: truncated header"),
        "{stderr}"
    );
    // An unknown architecture.
    let (ok, _, stderr) = kestrel(&["gradcheck", "--arch", "nosuch"]);
    assert!(
        !ok && stderr.contains("not a built-in architecture"),
        "{stderr}"
    );
}

/// A tiny MNIST-format directory in `dir`: `n` train and `n / 4` test images of 28×28.
fn tiny_idx(dir: &std::path::Path, n: u32) {
    let idx = |dims: &[u32], data: Vec<u8>| {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend(data);
        b
    };
    for (prefix, n) in [("train", n), ("t10k", n / 4)] {
        let pixels = (0..n * 784).map(|i| (i * 37 % 251) as u8).collect();
        let images = idx(&[n, 28, 28], pixels);
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        let labels = idx(&[n], (0..n).map(|i| (i % 10) as u8).collect());
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
}

#[test]
fn visualize_draws_first_layer_filters() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    tiny_idx(tmp.path(), 64);
    let train = |arch: &str, out: &str| {
        let (ok, _, stderr) = kestrel(&[
            "train",
            "--arch",
            arch,
            "--data",
            &p(""),
            "--epochs",
            "1",
            "--validation",
            "0",
            "--out",
            out,
        ]);
        assert!(ok, "train {arch} failed: {stderr}");
    };
    train("lenet", &p("lenet.ckpt"));
    let (ok, stdout, stderr) = kestrel(&[
        "visualize",
        "--checkpoint",
        &p("lenet.ckpt"),
        "--out",
        &p("pics/filters.png"),
    ]);
    assert!(ok, "visualize failed: {stderr}");
    assert!(
        stdout.contains("filters.png") && stdout.contains("lenet layer 0 conv2d: 12 filters 1×5×5"),
        "{stdout}"
    );
    let img = image::open(p("pics/filters.png")).unwrap().into_rgb8();
    // 12 filters of 5×5 at 8× in a 4×3 grid with 1-pixel gaps, below a label.
    assert!(
        img.width() >= 4 * 40 + 5 && img.height() > 3 * 40 + 4,
        "{:?}",
        img.dimensions()
    );

    // No convolution: a typed error naming the checkpoint; no picture written.
    std::fs::write(
        p("mlp.toml"),
        "name = \"mlp\"\ninput = [1, 28, 28]\n[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"linear\"\nout = 10\n",
    )
    .unwrap();
    train(&p("mlp.toml"), &p("mlp.ckpt"));
    let (ok, _, stderr) = kestrel(&[
        "visualize",
        "--checkpoint",
        &p("mlp.ckpt"),
        "--out",
        &p("mlp.png"),
    ]);
    assert!(
        !ok && stderr.contains("mlp.ckpt") && stderr.contains("no conv2d layer"),
        "{stderr}"
    );
    assert!(!tmp.path().join("mlp.png").exists());
}

/// A model file of a hundred bytes that declares tens of billions of operations (a
/// 1024×1024 input under a 255×255 max pooling at stride 1) is refused before it runs,
/// naming the limit and the model's figure.
#[test]
fn a_model_over_the_default_limits_is_refused() {
    use kestrel_format::*;
    let tmp = tempfile::tempdir().unwrap();
    let input = Shape::new(1, 1024, 1024);
    let mut desc = ModelDesc {
        name: "huge",
        precision: Precision::F32,
        input: InputSpec {
            shape: input,
            mean: 0.0,
            std: 1.0,
            quant: None,
        },
        layers: Default::default(),
        classes: Default::default(),
        provenance: Provenance {
            arch: "huge",
            dataset: "-",
            train_samples: 0,
            epochs: 0,
            float_accuracy: f32::NAN,
            trainer: "-",
        },
    };
    desc.layers
        .push(LayerDesc {
            op: Op::MaxPool2d { k: 255, stride: 1 },
            input,
            output: Shape::new(1, 770, 770),
            out_quant: None,
        })
        .unwrap();
    let bytes = encode(&desc, &[]).unwrap();
    assert!(bytes.len() < 128, "{} bytes", bytes.len());
    let path = tmp.path().join("huge.kmodel");
    std::fs::write(&path, &bytes).unwrap();
    let model = path.to_string_lossy();
    for args in [
        &["inspect", "--model", &model][..],
        &["eval", "--model", &model, "--data", &data(), "--limit", "1"][..],
    ] {
        let (ok, _, stderr) = kestrel(args);
        assert!(
            !ok && stderr.contains(
                "exceeds the operations per inference limit: it needs 38554371076, the limit \
                 is 10000000000"
            ),
            "{args:?}: {stderr}"
        );
    }
}

/// `--device` on the training commands: `auto` says which device it chose (and why not
/// CUDA), an explicit `cuda` that cannot run is a clear error and never a panic, and a
/// device name that is not one is refused; `kestrel conformance` runs the suite.
#[test]
fn device_choice_is_explicit_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_string_lossy().into_owned();
    tiny_idx(tmp.path(), 64);
    let dir = tmp.path().to_string_lossy().into_owned();
    let train = |device: &str| {
        kestrel(&[
            "train",
            "--arch",
            "lenet5",
            "--data",
            &dir,
            "--epochs",
            "1",
            "--out",
            &p("c"),
            "--device",
            device,
        ])
    };
    let psd = |device: &str| {
        kestrel(&[
            "psd",
            "train",
            "--data",
            &dir,
            "--patch",
            "5",
            "--atoms",
            "8",
            "--encoder",
            "shrink",
            "--epochs",
            "1",
            "--patches",
            "64",
            "--encoder-epochs",
            "0",
            "--out",
            &p("p"),
            "--device",
            device,
        ])
    };
    match kestrel_trainer::backend::device::cuda_devices() {
        Err(why) => {
            println!("no CUDA on this machine ({why}): checking the fallback and the errors");
            for (ok, stdout, stderr) in [train("auto"), psd("auto")] {
                assert!(ok, "{stderr}");
                assert!(
                    stdout.contains(&format!("device: cpu (auto: {why})")),
                    "{stdout}"
                );
            }
            for (ok, stdout, stderr) in [train("cuda"), psd("cuda:1")] {
                assert!(!ok, "{stdout}");
                assert!(
                    stderr.contains("error: device cuda:")
                        && stderr.contains(&why)
                        && stderr.contains("use --device cpu or auto")
                        && !stderr.contains("panicked"),
                    "{stderr}"
                );
            }
        }
        Ok(n) => {
            println!("{n} CUDA device(s): checking that auto picks cuda:0");
            let (ok, stdout, stderr) = train("auto");
            assert!(
                ok && stdout.contains("device: cuda:0 ("),
                "{stdout}{stderr}"
            );
            let (ok, _, stderr) = train(&format!("cuda:{n}"));
            assert!(!ok && stderr.contains("the CUDA driver sees"), "{stderr}");
        }
    }
    let (ok, _, stderr) = train("gpu");
    assert!(
        !ok && stderr.contains("expected auto, cpu, cuda or cuda:N"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = kestrel(&["conformance", "--device", "cpu"]);
    assert!(
        ok && stdout.contains(" checks, 0 failed"),
        "{stdout}{stderr}"
    );
}

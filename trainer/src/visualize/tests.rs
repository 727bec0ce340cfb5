use super::*;
use crate::backend::cpu::Cpu;
use crate::config::Arch;
use crate::data::Normalize;
use crate::nn::Network;

fn opts(scale: usize, gap: usize) -> GridOptions {
    GridOptions {
        scale: Some(scale),
        gap,
        columns: None,
    }
}

#[test]
fn grid_dimensions() {
    // (count, h, w, scale, gap) → columns ⌈√count⌉, rows ⌈count/columns⌉.
    for (count, h, w, scale, gap, cols, rows) in [
        (1, 9, 9, 4, 1, 1, 1),
        (2, 3, 3, 2, 1, 2, 1),
        (12, 5, 5, 8, 1, 4, 3),
        (16, 9, 9, 4, 2, 4, 4),
        (17, 9, 9, 4, 2, 5, 4),
        (100, 7, 5, 1, 1, 10, 10),
    ] {
        let g = filter_grid(&vec![0.5; count * h * w], count, h, w, &opts(scale, gap)).unwrap();
        let want = (
            (cols * w * scale + (cols + 1) * gap) as u32,
            (rows * h * scale + (rows + 1) * gap) as u32,
        );
        assert_eq!(g.dimensions(), want, "{count} filters {h}×{w}");
    }
    assert_eq!(auto_scale(9, 9), 5);
    assert_eq!(auto_scale(5, 5), 8);
    assert_eq!(auto_scale(28, 28), 2);
    let g = filter_grid(&[0.0; 81], 1, 9, 9, &GridOptions::default()).unwrap();
    assert_eq!(g.dimensions(), (9 * 5 + 2, 9 * 5 + 2));
}

#[test]
fn grid_pixels_are_symmetric_around_gray() {
    // Three 4×4 filters: one bright pixel, a ramp, all zero.
    let mut f = vec![0.0f32; 48];
    f[5] = 3.0; // filter 0, row 1 col 1
    for i in 0..16 {
        f[16 + i] = i as f32 - 5.0; // filter 1: −5..10
    }
    let (s, gap) = (3, 2);
    let g = filter_grid(&f, 3, 4, 4, &opts(s, gap)).unwrap();
    let at = |tile: usize, y: usize, x: usize| {
        // 2 columns: tile t at column t % 2, row t / 2; every pixel of a cell is the same.
        let x0 = gap + (tile % 2) * (4 * s + gap);
        let y0 = gap + (tile / 2) * (4 * s + gap);
        let p = g.get_pixel((x0 + x * s + s - 1) as u32, (y0 + y * s) as u32)[0];
        assert_eq!(
            p,
            g.get_pixel((x0 + x * s) as u32, (y0 + y * s + s - 1) as u32)[0]
        );
        p
    };
    assert_eq!(at(0, 1, 1), 255);
    assert_eq!(at(0, 0, 0), 128);
    assert_eq!(at(0, 3, 3), 128);
    assert_eq!(at(1, 3, 3), 255); // +10, the largest magnitude
    assert_eq!(at(1, 0, 0), tile_gray(-5.0, 10.0));
    assert_eq!(tile_gray(-5.0, 10.0), 64);
    assert_eq!(at(1, 1, 1), 128); // value 0
    assert_eq!(at(2, 2, 2), 128);
    // Gaps and the unused fourth cell are black.
    assert_eq!(g.get_pixel(0, 0)[0], 0);
    assert_eq!(g.get_pixel((gap + 4 * s) as u32, 5)[0], 0);
    assert_eq!(
        g.get_pixel(g.width() - gap as u32 - 1, g.height() - gap as u32 - 1)[0],
        0
    );
}

#[test]
fn conv_grid_rows_are_output_filters() {
    // [out 3, in 2, 2, 2]: 3 rows of 2 tiles.
    let w: Vec<f32> = (0..24).map(|i| (i % 5) as f32 - 2.0).collect();
    let g = conv_grid(&w, 3, 2, 2, &opts(1, 1)).unwrap();
    assert_eq!(g.dimensions(), (2 * 2 + 3, 3 * 2 + 4));
    let single = conv_grid(&w[..20], 5, 1, 2, &opts(1, 1)).unwrap();
    assert_eq!(single.dimensions(), (3 * 2 + 4, 2 * 2 + 3));
    let e = conv_grid(&w, 4, 2, 2, &opts(1, 1)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::FilterShape {
                len: 24,
                expected: 32,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn png_round_trip_and_atomic_write() {
    let mut f = vec![0.0f32; 2 * 81];
    f[40] = 1.0;
    let g = filter_grid(&f, 2, 9, 9, &GridOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/atoms.png");
    save_png(&path, &g).unwrap();
    let back = image::open(&path).unwrap().into_luma8();
    assert_eq!(back, g);
    // Only the PNG: no temporary file left beside it.
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );
}

fn checkpoint(arch: Arch) -> Checkpoint {
    let net = Network::new(Cpu::new(), &arch, 3).unwrap();
    Checkpoint {
        train: arch.train.clone(),
        normalize: Normalize {
            mean: 0.3,
            std: 0.3,
        },
        classes: (0..10).map(|i| i.to_string()).collect(),
        data_dir: "/data".into(),
        train_samples: 0,
        epochs_done: 0,
        history: vec![],
        test_accuracy: None,
        params: net.params().unwrap(),
        velocities: vec![],
        arch,
    }
}

#[test]
fn checkpoint_banks_and_picture() {
    let ckpt = checkpoint(Arch::load("lenet").unwrap());
    let path = Path::new("lenet.ckpt");
    let banks = convnet_filters(&ckpt, path).unwrap();
    // The same from the file's envelope, which dispatches on the kind.
    let env = Envelope::from_bytes(&ckpt.to_bytes().unwrap(), path).unwrap();
    assert_eq!(checkpoint_filters(env.clone(), path).unwrap(), banks);
    let other = Envelope {
        kind: "psd-draft".into(),
        ..env
    };
    let e = checkpoint_filters(other, path).unwrap_err();
    assert!(matches!(e, Error::NoFilters { .. }), "{e:?}");
    assert!(e.to_string().contains("\"psd-draft\" checkpoints"), "{e}");
    assert_eq!(banks.len(), 1);
    let b = &banks[0];
    assert_eq!((b.count, b.channels, b.h, b.w), (12, 1, 5, 5));
    assert_eq!(b.name, "lenet layer 0 conv2d: 12 filters 1×5×5");
    assert_eq!(b.data, ckpt.params[0].get("weight").unwrap());
    let img = render_banks(&banks, &GridOptions::default()).unwrap();
    let grid = b.grid(&GridOptions::default()).unwrap();
    assert!(img.width() >= grid.width() && img.height() > grid.height());
    // The label drew dark text on the white strip above the grid.
    let dark = (0..img.width())
        .flat_map(|x| (MARGIN..MARGIN + LABEL_PX).map(move |y| (x, y)))
        .filter(|&(x, y)| img.get_pixel(x, y)[0] < 100)
        .count();
    assert!(dark > 50, "{dark} dark label pixels");

    // A weight of the wrong length, and an architecture without convolutions.
    let mut broken = ckpt.clone();
    let w = broken.params[0]
        .tensors
        .iter_mut()
        .find(|t| t.name == "weight");
    w.unwrap().data.pop();
    let e = convnet_filters(&broken, path).unwrap_err().to_string();
    assert!(
        e.contains("lenet.ckpt") && e.contains("299 values") && e.contains("300"),
        "{e}"
    );
    let mlp = Arch::from_toml(
        "name = \"mlp\"\ninput = [1, 4, 4]\n[[layer]]\ntype = \"flatten\"\n[[layer]]\ntype = \"linear\"\nout = 3\n",
        "mlp",
    )
    .unwrap();
    let e = convnet_filters(&checkpoint(mlp), path).unwrap_err();
    assert!(matches!(e, Error::NoFilters { .. }), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("lenet.ckpt") && e.contains("mlp has no conv2d layer"),
        "{e}"
    );
}

#[test]
fn curve_png_is_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("energy.png");
    let train: Vec<(f64, f64)> = (1..=10).map(|e| (e as f64, 1.0 / e as f64)).collect();
    let val: Vec<(f64, f64)> = (1..=10)
        .map(|e| (e as f64, 1.2 / e as f64 + 0.05))
        .collect();
    curve_png(
        &path,
        "PSD energy",
        &[("train", &train), ("validation", &val)],
        "epoch",
        "energy",
    )
    .unwrap();
    let img = image::open(&path).unwrap().into_rgb8();
    assert_eq!(img.dimensions(), PLOT_SIZE);
    let count = |c: [u8; 3]| img.pixels().filter(|p| p.0 == c).count();
    let (blue, orange) = (COLOURS[0], COLOURS[1]);
    assert!(count([blue.0, blue.1, blue.2]) > 200, "no train line");
    assert!(
        count([orange.0, orange.1, orange.2]) > 200,
        "no validation line"
    );
    let dark = img.pixels().filter(|p| p.0.iter().all(|&v| v < 80)).count();
    assert!(dark > 500, "no text or axes: {dark} dark pixels");
    // Same input, same bytes.
    let again = dir.path().join("again.png");
    curve_png(
        &again,
        "PSD energy",
        &[("train", &train), ("validation", &val)],
        "epoch",
        "energy",
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&again).unwrap()
    );
    // One point still draws; bad input is an error naming the file.
    curve_png(&again, "one", &[("x", &[(1.0, 2.0)])], "epoch", "y").unwrap();
    let e = curve_png(&again, "t", &[("x", &[(1.0, f64::NAN)])], "a", "b").unwrap_err();
    assert!(matches!(e, Error::Picture { .. }), "{e:?}");
    assert!(
        e.to_string().contains("again.png") && e.to_string().contains("finite"),
        "{e}"
    );
    let e = curve_png(&again, "t", &[("x", &[])], "a", "b")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no points"), "{e}");
}

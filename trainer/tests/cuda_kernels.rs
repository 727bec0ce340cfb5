//! The CUDA kernels compile: every `kernels/*.cu` through NVRTC to PTX for compute_80
//! (A100) and compute_90 (H100) and to machine code for sm_80/sm_90/sm_100, each expected
//! `extern "C"` kernel present. Needs NVRTC
//! (`libnvrtc.so.13`) but no GPU; skipped when NVRTC is missing unless
//! `KESTREL_REQUIRE_NVRTC=1`. Also: opening a CUDA device on a machine without one is a
//! typed error, never a panic. And, without a GPU: the kernels run on the host
//! (`backend/cuda/host_check`, compiled by g++, skipped without it) agree with the CPU
//! backend on small shapes (strided padded convolutions, overlapping pooling windows with
//! ties, LCN, both losses, dropout's mask, the per-channel and per-row reductions).

use std::path::Path;
use std::process::Command;

use kestrel_trainer::backend::cpu::Cpu;
use kestrel_trainer::backend::cuda::{self, Cuda, KERNEL_ENTRIES, KERNEL_SOURCES};
use kestrel_trainer::backend::{
    Activation, Backend, ConvShape, LcnShape, LinearShape, PoolShape, Thresh,
};
use kestrel_trainer::config::LossKind;
use kestrel_trainer::Error;

const INSTALL: &str = "install NVRTC 13 with `pip install --target target/nvrtc \
                       nvidia-cuda-nvrtc==13.0.88` and run with \
                       LD_LIBRARY_PATH=$PWD/target/nvrtc/nvidia/cu13/lib";

/// False (after printing why) when NVRTC is missing and not required.
fn nvrtc_or_skip() -> bool {
    if cuda::kernels::nvrtc_present() {
        return true;
    }
    if std::env::var("KESTREL_REQUIRE_NVRTC").is_ok_and(|v| v == "1") {
        panic!("KESTREL_REQUIRE_NVRTC=1 but libnvrtc.so.13 cannot be loaded: {INSTALL}");
    }
    eprintln!("skipped: libnvrtc.so.13 cannot be loaded ({INSTALL})");
    false
}

#[test]
fn every_kernel_compiles_for_ampere_and_hopper() {
    assert_eq!(
        KERNEL_SOURCES.iter().map(|s| s.0).collect::<Vec<_>>(),
        KERNEL_ENTRIES.iter().map(|e| e.0).collect::<Vec<_>>(),
        "every source lists its kernels"
    );
    if !nvrtc_or_skip() {
        return;
    }
    for arch in ["compute_80", "compute_90"] {
        let compiled = cuda::compile_ptx(arch).unwrap_or_else(|e| panic!("{arch}: {e}"));
        assert_eq!(compiled.len(), KERNEL_SOURCES.len());
        for ((file, ptx), (efile, names)) in compiled.iter().zip(KERNEL_ENTRIES) {
            assert_eq!(file, efile);
            let text = ptx.to_src();
            let entries: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split(".entry ").nth(1))
                .map(|rest| rest.trim_end_matches(|c: char| c == '(' || c.is_whitespace()))
                .collect();
            for name in *names {
                assert!(
                    entries.contains(name),
                    "{arch} {file}: no `.entry {name}` in the PTX (entries: {entries:?})"
                );
            }
            assert_eq!(
                entries.len(),
                names.len(),
                "{arch} {file}: unlisted kernels in {entries:?}"
            );
            println!(
                "{arch} {file}: {} kernels, {} bytes of PTX",
                names.len(),
                text.len()
            );
        }
    }
}

/// Machine code for Ampere, Hopper and Blackwell (what `Cuda::new` loads): an ELF image per
/// file naming each of its kernels; an architecture NVRTC does not know is an error naming
/// the file and the architecture.
#[test]
fn every_kernel_builds_to_machine_code() {
    if !nvrtc_or_skip() {
        return;
    }
    for arch in ["sm_80", "sm_90", "sm_100"] {
        let images =
            cuda::kernels::compile_cubin_bytes(arch).unwrap_or_else(|e| panic!("{arch}: {e}"));
        assert_eq!(images.len(), KERNEL_ENTRIES.len());
        for ((file, elf), (efile, names)) in images.iter().zip(KERNEL_ENTRIES) {
            assert_eq!(file, efile);
            assert!(
                elf.starts_with(b"\x7fELF"),
                "{arch} {file}: not an ELF image"
            );
            for name in *names {
                assert!(
                    elf.windows(name.len() + 1)
                        .any(|w| &w[..name.len()] == name.as_bytes() && w[name.len()] == 0),
                    "{arch} {file}: no symbol {name}"
                );
            }
        }
    }
    let err = cuda::kernels::compile_cubin_bytes("sm_1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("nvrtc elementwise.cu (sm_1)"), "{err}");
}

#[test]
fn a_machine_without_cuda_gets_a_device_error() {
    match Cuda::new(0) {
        Ok(be) => println!("CUDA device 0: {}", be.device_name()),
        Err(Error::Device { device, message }) => {
            assert_eq!(device, "cuda:0");
            assert!(
                [
                    "libcuda.so",
                    "libnvrtc.so.13",
                    "libcublas.so.13",
                    "no CUDA device"
                ]
                .iter()
                .any(|m| message.contains(m)),
                "{message}"
            );
            println!("as expected: {message}");
        }
        Err(other) => panic!("expected Error::Device, got {other}"),
    }
    // An ordinal no machine has is always a device error.
    assert!(matches!(Cuda::new(1 << 20), Err(Error::Device { .. })));
}

/// Writes `v` as raw little-endian f32 to `dir/name.f32`.
fn dump_to(dir: &Path, name: &str, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(dir.join(format!("{name}.f32")), bytes).unwrap();
}
/// Deterministic values in [-1, 1) (quantized to quarters when `q`, for ties).
fn rnd(n: usize, seed: u64, q: bool) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((s >> 33) as f32) / (1u64 << 31) as f32 * 2.0 - 1.0;
            if q {
                (u * 4.0).round() / 4.0
            } else {
                u
            }
        })
        .collect()
}

/// The inputs and the CPU backend's outputs that `host_check/check.cpp` compares against.
fn dump_cpu_reference(dir: &Path) {
    let dump = |name: &str, v: &[f32]| dump_to(dir, name, v);
    let be = Cpu::new();
    // conv
    let s = ConvShape {
        in_c: 2,
        in_h: 7,
        in_w: 6,
        out_c: 4,
        kernel: 3,
        stride: 2,
        pad: 1,
        out_h: 4,
        out_w: 3,
    };
    let n = 3;
    let x = rnd(n * s.in_len(), 1, false);
    let w = rnd(s.weight_len(), 2, false);
    let b = rnd(s.out_c, 3, false);
    let dy = rnd(n * s.out_len(), 4, false);
    let mut y = vec![0.0; n * s.out_len()];
    be.conv2d_fwd(&s, n, &x, &w, &b, &mut y).unwrap();
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; b.len()]);
    be.conv2d_bwd(&s, n, &x, &w, &dy, Some(&mut dx), &mut dw, &mut db)
        .unwrap();
    let mut dxd = vec![0.0; x.len()];
    be.conv2d_bwd_data(&s, n, &w, &dy, &mut dxd).unwrap();
    for (k, v) in [
        ("conv_x", &x),
        ("conv_w", &w),
        ("conv_b", &b),
        ("conv_dy", &dy),
        ("conv_y", &y),
        ("conv_dx", &dx),
        ("conv_dw", &dw),
        ("conv_db", &db),
        ("conv_dxd", &dxd),
    ] {
        dump(k, v);
    }
    // linear
    let ls = LinearShape {
        inputs: 5,
        outputs: 4,
    };
    let x = rnd(3 * 5, 5, false);
    let w = rnd(20, 6, false);
    let b = rnd(4, 7, false);
    let dy = rnd(12, 8, false);
    let mut y = vec![0.0; 12];
    be.linear_fwd(&ls, 3, &x, &w, &b, &mut y).unwrap();
    let (mut dx, mut dw, mut db) = (vec![0.0; 15], vec![0.0; 20], vec![0.0; 4]);
    be.linear_bwd(&ls, 3, &x, &w, &dy, Some(&mut dx), &mut dw, &mut db)
        .unwrap();
    for (k, v) in [
        ("lin_x", &x),
        ("lin_w", &w),
        ("lin_b", &b),
        ("lin_dy", &dy),
        ("lin_y", &y),
        ("lin_dx", &dx),
        ("lin_dw", &dw),
        ("lin_db", &db),
    ] {
        dump(k, v);
    }
    // pool (overlapping windows, ties)
    let ps = PoolShape {
        c: 2,
        in_h: 7,
        in_w: 6,
        kernel: 3,
        stride: 2,
        out_h: 3,
        out_w: 2,
    };
    let x = rnd(2 * ps.in_len(), 9, true);
    let dy = rnd(2 * ps.out_len(), 10, false);
    let mut y = vec![0.0; dy.len()];
    let mut dx = vec![0.0; x.len()];
    be.maxpool_fwd(&ps, 2, &x, &mut y).unwrap();
    be.maxpool_bwd(&ps, 2, &x, &dy, &mut dx).unwrap();
    dump("pool_x", &x);
    dump("pool_dy", &dy);
    dump("max_y", &y);
    dump("max_dx", &dx);
    be.avgpool_fwd(&ps, 2, &x, &mut y).unwrap();
    be.avgpool_bwd(&ps, 2, &dy, &mut dx).unwrap();
    dump("avg_y", &y);
    dump("avg_dx", &dx);
    // lcn
    let cs = LcnShape {
        c: 3,
        h: 6,
        w: 5,
        size: 3,
        eps: 1e-2,
    };
    let x = rnd(2 * cs.len(), 11, false);
    let dy = rnd(2 * cs.len(), 12, false);
    let mut win: Vec<f32> = rnd(9, 13, false).iter().map(|v| v.abs() + 0.1).collect();
    let t: f32 = win.iter().sum();
    win.iter_mut().for_each(|v| *v /= t);
    let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    be.lcn_fwd(&cs, 2, &win, &x, &mut y).unwrap();
    be.lcn_bwd(&cs, 2, &win, &x, &dy, &mut dx).unwrap();
    dump("lcn_x", &x);
    dump("lcn_dy", &dy);
    dump("lcn_win", &win);
    dump("lcn_y", &y);
    dump("lcn_dx", &dx);
    // loss
    let z = rnd(5 * 4, 14, true);
    let labels = [0u8, 3, 1, 2, 2];
    let mut g = vec![0.0; 20];
    let o = be.loss(LossKind::Nll, 4, &z, &labels, &mut g).unwrap();
    dump("loss_z", &z);
    dump("nll_g", &g);
    dump("nll_out", &[o.loss, o.correct as f32]);
    let o = be.loss(LossKind::Hinge, 4, &z, &labels, &mut g).unwrap();
    dump("hinge_g", &g);
    dump("hinge_out", &[o.loss, o.correct as f32]);
    // dropout
    let x = rnd(1000, 15, false);
    let mut y = vec![0.0; 1000];
    be.dropout_fwd(0.3, 0xDEAD_BEEF_1234_5678, &x, &mut y)
        .unwrap();
    dump("drop_x", &x);
    dump("drop_y", &y);
    // shrink / scale per channel: [n=2, c=3, inner=5]
    let x = rnd(30, 16, true);
    let dy = rnd(30, 17, false);
    let th = vec![0.0f32, 0.3, 0.6];
    let (mut dxs, mut dth) = (vec![0.0; 30], vec![0.0; 3]);
    be.shrink_bwd(
        Thresh::PerChannel {
            theta: &th,
            inner: 5,
        },
        &x,
        &dy,
        &mut dxs,
        Some(&mut dth),
    )
    .unwrap();
    let mut ys = vec![0.0; 30];
    be.shrink_fwd(
        Thresh::PerChannel {
            theta: &th,
            inner: 5,
        },
        &x,
        &mut ys,
    )
    .unwrap();
    let (mut dxg, mut dg) = (vec![0.0; 30], vec![0.0; 3]);
    be.scale_bwd(5, &th, &x, &dy, &mut dxg, Some(&mut dg))
        .unwrap();
    let mut rn = vec![0.0; 5];
    be.row_sq_norms(5, 6, &x, &mut rn).unwrap();
    let mut ra = vec![0.0; 5];
    be.row_abs_sums(5, 6, &x, &mut ra).unwrap();
    let mut d = dy.clone();
    be.normalize_columns(5, 6, &mut d).unwrap();
    for (k, v) in [
        ("sh_x", &x),
        ("sh_dy", &dy),
        ("sh_y", &ys),
        ("sh_dx", &dxs),
        ("sh_dth", &dth),
        ("sc_dx", &dxg),
        ("sc_dg", &dg),
        ("rn", &rn),
        ("ra", &ra),
        ("ncol", &d),
    ] {
        dump(k, v);
    }
    // gemm, every transpose combination, accumulating into c (β ≠ 0): m = 3, n = 4, k = 5
    let (a, b, c0) = (rnd(15, 18, false), rnd(20, 19, false), rnd(12, 20, false));
    dump("gemm_a", &a);
    dump("gemm_b", &b);
    dump("gemm_c0", &c0);
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut c = c0.clone();
        be.gemm(ta, tb, 3, 4, 5, 0.5, &a, &b, 0.25, &mut c).unwrap();
        dump(&format!("gemm_{}{}", ta as u8, tb as u8), &c);
    }
    // activations (with zeros), optimizers, axpby, add_sign
    let mut x = rnd(40, 21, true);
    x.extend([30.0, -30.0, 5e-5, -5e-5]);
    let dy = rnd(x.len(), 22, false);
    dump("act_x", &x);
    dump("act_dy", &dy);
    for (f, name) in [
        (Activation::Relu, "relu"),
        (Activation::Tanh, "tanh"),
        (Activation::Abs, "abs"),
    ] {
        let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        be.act_fwd(f, &x, &mut y).unwrap();
        be.act_bwd(f, &x, &y, &dy, &mut dx).unwrap();
        dump(&format!("{name}_y"), &y);
        dump(&format!("{name}_dx"), &dx);
    }
    let (mut w, mut v) = (x.clone(), dy.clone());
    be.sgd_update(&mut w, &mut v, &dy, 0.1, 0.9, 0.01).unwrap();
    dump("sgd_w", &w);
    dump("sgd_v", &v);
    let (mut w, mut m, mut v) = (x.clone(), dy.clone(), vec![0.5; x.len()]);
    be.adam_update(&mut w, &mut m, &mut v, &dy, 0.01, (0.9, 0.999), 1e-8, 3)
        .unwrap();
    dump("adam_w", &w);
    dump("adam_m", &m);
    dump("adam_v", &v);
    let mut y = dy.clone();
    be.axpby(0.5, &x, -2.0, &mut y).unwrap();
    dump("axpby_y", &y);
    let mut y = dy.clone();
    be.add_sign(0.5, &x, &mut y).unwrap();
    dump("sign_y", &y);
    // Sizes past one pass of a block (256 threads) and one loss block (128 samples): LCN
    // planes of 19·17 pixels, per-channel sums of 3·150 elements, rows of 700, columns of
    // 600, 200 samples of 10 classes; and a scalar threshold.
    let cs = LcnShape {
        c: 2,
        h: 19,
        w: 17,
        size: 5,
        eps: 1e-2,
    };
    let x = rnd(2 * cs.len(), 21, false);
    let dy = rnd(2 * cs.len(), 22, false);
    let mut win: Vec<f32> = rnd(25, 23, false).iter().map(|v| v.abs() + 0.1).collect();
    let t: f32 = win.iter().sum();
    win.iter_mut().for_each(|v| *v /= t);
    let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    be.lcn_fwd(&cs, 2, &win, &x, &mut y).unwrap();
    be.lcn_bwd(&cs, 2, &win, &x, &dy, &mut dx).unwrap();
    for (k, v) in [
        ("big_lcn_x", &x),
        ("big_lcn_dy", &dy),
        ("big_lcn_win", &win),
        ("big_lcn_y", &y),
        ("big_lcn_dx", &dx),
    ] {
        dump(k, v);
    }
    let x = rnd(3 * 2 * 150, 24, false);
    let dy = rnd(x.len(), 25, false);
    let g = vec![0.5, -2.0];
    let (mut dx, mut dg) = (vec![0.0; x.len()], vec![0.0; 2]);
    be.scale_bwd(150, &g, &x, &dy, &mut dx, Some(&mut dg))
        .unwrap();
    let mut y = vec![0.0; x.len()];
    be.shrink_fwd(Thresh::Scalar(0.3), &x, &mut y).unwrap();
    let mut rn = vec![0.0; 900 / 700 + 1];
    let xr = rnd(rn.len() * 700, 26, false);
    be.row_sq_norms(rn.len(), 700, &xr, &mut rn).unwrap();
    let mut d = rnd(600 * 3, 27, false);
    dump("big_ncol_in", &d);
    be.normalize_columns(600, 3, &mut d).unwrap();
    for (k, v) in [
        ("big_x", &x),
        ("big_dy", &dy),
        ("big_dx", &dx),
        ("big_dg", &dg),
        ("big_shrink", &y),
        ("big_rows_x", &xr),
        ("big_rn", &rn),
        ("big_ncol", &d),
    ] {
        dump(k, v);
    }
    let z = rnd(200 * 10, 28, false);
    let labels: Vec<u8> = (0..200).map(|i| (i * 7 % 10) as u8).collect();
    let mut g = vec![0.0; z.len()];
    let o = be.loss(LossKind::Nll, 10, &z, &labels, &mut g).unwrap();
    dump("big_loss_z", &z);
    dump("big_nll_g", &g);
    dump("big_nll_out", &[o.loss, o.correct as f32]);
}

#[test]
fn host_emulated_kernels_match_the_cpu_backend() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/backend/cuda/host_check/check.cpp");
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("check");
    let built = Command::new("g++")
        .args(["-std=c++20", "-O1", "-ffp-contract=off", "-pthread", "-w"])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output();
    match built {
        Err(e) => {
            eprintln!("skipped: g++ cannot run ({e})");
            return;
        }
        Ok(out) if !out.status.success() => {
            panic!(
                "g++ {}: {}",
                src.display(),
                String::from_utf8_lossy(&out.stderr)
            )
        }
        Ok(_) => {}
    }
    dump_cpu_reference(dir.path());
    let run = Command::new(&exe).arg(dir.path()).output().unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    println!("{report}");
    assert!(
        run.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

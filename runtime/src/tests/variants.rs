//! Every kernel set this build has and this CPU runs, against the reference, 1,000 random
//! cases per kernel (see `crate::check`): on x86-64 the AVX2 set wherever the CPU has it,
//! found at run time, in the default `cargo test`; `scripts/test.sh` also runs this file
//! under `qemu-aarch64` for NEON, and M-profile firmware runs the same cases under
//! `qemu-system-arm`.

use std::eprintln;

use proptest::prelude::*;

use crate::check::{self, Kernel, WORK_BYTES};
use crate::kernels::table::Kernels;
use crate::KernelSet;

/// Case `seed` of `kernel` on every set [`check::sets`] offers here.
fn check(kernel: Kernel, seed: u64) -> Result<(), TestCaseError> {
    let mut work = std::vec![0u8; WORK_BYTES];
    for set in check::sets() {
        if let Err(m) = check::run_on(set, kernel, seed, &mut work) {
            return Err(TestCaseError::fail(std::format!("{m}")));
        }
    }
    Ok(())
}

/// Says (once per kernel and set) when a set has no variant of `kernel`, and when this
/// machine runs no set but the reference: the check then proves nothing here.
fn note(kernel: Kernel) {
    static NOTED: std::sync::Mutex<std::vec::Vec<(&str, &str)>> =
        std::sync::Mutex::new(std::vec::Vec::new());
    let mut noted = NOTED.lock().unwrap_or_else(|e| e.into_inner());
    if check::sets().next().is_none() && !noted.contains(&("", kernel.name())) {
        noted.push(("", kernel.name()));
        eprintln!(
            "variants: this build and CPU run no kernel set but the reference ({} variants compiled, not runnable here); {} is not checked",
            KernelSet::VARIANT.name(),
            kernel.name()
        );
    }
    for set in check::sets() {
        if check::runs_reference(set, kernel) && !noted.contains(&(set.name(), kernel.name())) {
            noted.push((set.name(), kernel.name()));
            eprintln!(
                "variants: kernel set {} has no variant of {}; the check compares the reference with itself",
                set.name(),
                kernel.name()
            );
        }
    }
}

/// On x86-64 a plain build (no `-C target-cpu`) finds AVX2, and AVX-512 VNNI, at run time
/// where the CPU has them, and on aarch64 the dot-product extension, so the checks above
/// test them without separate builds.
/// Detection picks the last of `sets` (the variant sets this CPU has, slowest first; the
/// reference where there are none, or with `force-reference`), and the check offers exactly
/// `sets`, each holding real variants. `missing` names what this CPU lacks when the check
/// covers less than every set of this architecture.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn expect_sets(sets: &[KernelSet], missing: &str) {
    let sets = if cfg!(feature = "force-reference") {
        &[]
    } else {
        sets
    };
    let expect = sets.last().copied().unwrap_or(KernelSet::Reference);
    assert_eq!(KernelSet::detect(), expect);
    let offered: std::vec::Vec<KernelSet> = check::sets().collect();
    assert_eq!(offered, sets);
    for &set in sets {
        // The tables really hold the variants, not the reference's functions.
        assert!(
            !check::runs_reference(set, Kernel::Conv2dS8),
            "{}",
            set.name()
        );
    }
    if sets.len() < 2 {
        eprintln!(
            "detection_finds_this_cpus_set: this CPU has no {missing}; those kernels are not checked here"
        );
    }
}

#[test]
fn detection_finds_this_cpus_set() {
    #[cfg(target_arch = "x86_64")]
    {
        use std::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("f16c");
        let vnni = avx2 && has!("avx512vnni") && has!("avx512vl") && has!("avx512bw");
        let sets: &[KernelSet] = match (avx2, vnni) {
            (_, true) => &[KernelSet::Avx2, KernelSet::Avx2Vnni],
            (true, false) => &[KernelSet::Avx2],
            _ => &[],
        };
        expect_sets(sets, if avx2 { "AVX-512 VNNI" } else { "AVX2" });
    }
    #[cfg(target_arch = "aarch64")]
    {
        let sets: &[KernelSet] = if std::arch::is_aarch64_feature_detected!("dotprod") {
            &[KernelSet::Neon, KernelSet::NeonDot]
        } else {
            &[KernelSet::Neon]
        };
        expect_sets(sets, "dotprod");
    }
    assert!(KernelSet::Reference.runs_here());
    assert!(KernelSet::detect().runs_here());
    // A script that runs this binary on a known CPU (`scripts/neon-test.sh`, under qemu)
    // says which set it must find, so that a wrong detection fails instead of testing less.
    if let Ok(name) = std::env::var("KESTREL_EXPECT_KERNELS") {
        assert_eq!(KernelSet::detect().name(), name, "KESTREL_EXPECT_KERNELS");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn conv2d_s8(seed: u64) { note(Kernel::Conv2dS8); check(Kernel::Conv2dS8, seed)?; }
    #[test]
    fn fc_s8(seed: u64) { note(Kernel::FcS8); check(Kernel::FcS8, seed)?; }
    #[test]
    fn maxpool_s8(seed: u64) { note(Kernel::MaxPoolS8); check(Kernel::MaxPoolS8, seed)?; }
    #[test]
    fn avgpool_s8(seed: u64) { note(Kernel::AvgPoolS8); check(Kernel::AvgPoolS8, seed)?; }
    #[test]
    fn conv2d_f32(seed: u64) { note(Kernel::Conv2dF32); check(Kernel::Conv2dF32, seed)?; }
    #[test]
    fn fc_f32(seed: u64) { note(Kernel::FcF32); check(Kernel::FcF32, seed)?; }
    #[test]
    fn maxpool_f32(seed: u64) { note(Kernel::MaxPoolF32); check(Kernel::MaxPoolF32, seed)?; }
    #[test]
    fn avgpool_f32(seed: u64) { note(Kernel::AvgPoolF32); check(Kernel::AvgPoolF32, seed)?; }
    #[test]
    fn lcn_s8(seed: u64) { note(Kernel::LcnS8); check(Kernel::LcnS8, seed)?; }
    #[test]
    fn lcn_f32(seed: u64) { note(Kernel::LcnF32); check(Kernel::LcnF32, seed)?; }
    #[test]
    fn lut_s8(seed: u64) { note(Kernel::LutS8); check(Kernel::LutS8, seed)?; }
    #[test]
    fn conv2d_f16(seed: u64) { note(Kernel::Conv2dF16); check(Kernel::Conv2dF16, seed)?; }
    #[test]
    fn fc_f16(seed: u64) { note(Kernel::FcF16); check(Kernel::FcF16, seed)?; }
    #[cfg(feature = "encoders")]
    #[test]
    fn lista_step_s8(seed: u64) { note(Kernel::ListaS8); check(Kernel::ListaS8, seed)?; }
    #[cfg(feature = "encoders")]
    #[test]
    fn lista_step_f32(seed: u64) { note(Kernel::ListaF32); check(Kernel::ListaF32, seed)?; }
    #[cfg(feature = "encoders")]
    #[test]
    fn lista_step_f16(seed: u64) { note(Kernel::ListaF16); check(Kernel::ListaF16, seed)?; }
}

/// The input stage (pixels or normalized f32 to int8 codes), variant against reference:
/// random normalizations and quantizations, values around the rounding ties, far beyond
/// the int8 range, and NaN among the normalized inputs. (Not `|x / scale| ≥ 2^31` or ±∞:
/// there `quantize_f32`'s `t + 1` overflows.)
fn quantize_input(seed: u64) -> Result<(), TestCaseError> {
    use crate::kernels::quantize::reference;
    use kestrel_format::QParams;
    let mut rng = check::Rng::new(seed);
    let n = rng.int(1, 100) as usize;
    let unit = |rng: &mut check::Rng| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
    let q = QParams {
        scale: (0.5 + unit(&mut rng)) * 2f32.powi(rng.int(-20, 4)),
        zero_point: rng.int(-128, 127),
    };
    let (mean, std) = (unit(&mut rng), 0.05 + 2.0 * unit(&mut rng));
    let pixels: std::vec::Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
    let x: std::vec::Vec<f32> = (0..n)
        .map(|_| match rng.int(0, 9) {
            0 => f32::NAN,
            1 => (rng.int(-300, 300) as f32 + 0.5) * q.scale, // ties
            2 => (unit(&mut rng) - 0.5) * 2f32.powi(rng.int(8, 40)) * q.scale,
            3 => [f32::INFINITY, f32::NEG_INFINITY][rng.int(0, 1) as usize],
            _ => (unit(&mut rng) - 0.5) * 400.0 * q.scale,
        })
        .collect();
    let (mut want, mut got) = (std::vec![0i8; n], std::vec![0i8; n]);
    for set in check::sets() {
        let ks = Kernels::get(set).expect("check::sets offers runnable sets");
        reference::pixels_s8(&pixels, mean, std, q, &mut want);
        (ks.pixels_s8)(&pixels, mean, std, q, &mut got);
        prop_assert_eq!(
            &want,
            &got,
            "{} pixels_s8 {:?} mean {} std {}",
            set.name(),
            q,
            mean,
            std
        );
        reference::quantize_s8(&x, q, &mut want);
        (ks.quantize_s8)(&x, q, &mut got);
        prop_assert_eq!(&want, &got, "{} quantize_s8 {:?} x {:?}", set.name(), q, x);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn quantize_s8(seed: u64) { quantize_input(seed)?; }
}

/// The generator stays inside `WORK_BYTES` and produces every kind of case it claims:
/// padding, strides, extreme zero points.
#[test]
fn cases_cover_the_space() {
    let mut work = std::vec![0u8; WORK_BYTES];
    let (mut padded, mut strided, mut zp_extreme) = (0, 0, 0);
    for seed in 0..2000 {
        for kernel in Kernel::ALL {
            let case = check::run(kernel, seed, &mut work).unwrap_or_else(|m| panic!("{m}"));
            padded += (case.pad > 0) as u32;
            strided += (case.stride > 1) as u32;
            zp_extreme += (case.zp.0 == -128 || case.zp.0 == 127) as u32;
        }
    }
    assert!(
        padded > 500 && strided > 500 && zp_extreme > 100,
        "{padded} {strided} {zp_extreme}"
    );
}

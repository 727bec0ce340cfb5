//! The compiled kernel variant against the reference, 1,000 random cases per kernel (see
//! `crate::check`). Meaningful where `IMPL` is not `"reference"`: `scripts/test.sh` runs
//! this file natively with AVX2 and under `qemu-aarch64` for NEON; M-profile firmware runs
//! the same cases under `qemu-system-arm`.

use std::eprintln;

use proptest::prelude::*;

use crate::check::{self, Kernel, WORK_BYTES};
use crate::IMPL;

fn check(kernel: Kernel, seed: u64) -> Result<(), TestCaseError> {
    let mut work = std::vec![0u8; WORK_BYTES];
    match check::run(kernel, seed, &mut work) {
        Ok(_) => Ok(()),
        Err(m) => Err(TestCaseError::fail(std::format!("{m}"))),
    }
}

fn note() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if IMPL == "reference" {
        ONCE.call_once(|| {
        eprintln!("variants: this build runs the reference kernels; the check compares the reference with itself")
        });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn conv2d_s8(seed: u64) { note(); check(Kernel::Conv2dS8, seed)?; }
    #[test]
    fn fc_s8(seed: u64) { note(); check(Kernel::FcS8, seed)?; }
    #[test]
    fn maxpool_s8(seed: u64) { note(); check(Kernel::MaxPoolS8, seed)?; }
    #[test]
    fn avgpool_s8(seed: u64) { note(); check(Kernel::AvgPoolS8, seed)?; }
    #[test]
    fn conv2d_f32(seed: u64) { note(); check(Kernel::Conv2dF32, seed)?; }
    #[test]
    fn fc_f32(seed: u64) { note(); check(Kernel::FcF32, seed)?; }
    #[test]
    fn maxpool_f32(seed: u64) { note(); check(Kernel::MaxPoolF32, seed)?; }
    #[test]
    fn avgpool_f32(seed: u64) { note(); check(Kernel::AvgPoolF32, seed)?; }
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

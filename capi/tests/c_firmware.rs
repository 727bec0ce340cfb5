//! `tests/c/firmware/fw.c`, a bare-metal C firmware, linked with `arm-none-eabi-gcc`
//! against the `thumbv7em-none-eabihf` `libkestrel.a` and run under `qemu-system-arm -M
//! mps2-an386` (Cortex-M4F): its logits must equal the host runtime's bit for bit, its
//! status codes and messages the host library's.
//!
//! Needs `gcc-arm-none-eabi` (with `libnewlib-arm-none-eabi`, which its driver expects
//! installed though nothing of it is linked), `qemu-system-arm` and the
//! `thumbv7em-none-eabihf` Rust target (`scripts/install-deps.sh`); without them the test
//! fails with the fix.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{bits, model, pixels, reference};
use kestrel::{kestrel_error_message, KestrelStatus as S};
use kestrel_format::Precision;

const GCC: &str = "arm-none-eabi-gcc";
const QEMU: &str = "qemu-system-arm";

fn need(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "this test needs `{tool}`: run scripts/install-deps.sh (apt-get install \
         gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)"
    );
}

/// Builds the Cortex-M4F static library in its own target directory (the outer cargo's
/// is busy with this test run).
fn staticlib(tmp: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = tmp.join("target");
    let out = Command::new(cargo)
        .args(["build", "-p", "kestrel-capi", "--release"])
        .args(["--target", "thumbv7em-none-eabihf", "--target-dir"])
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "cargo build --target thumbv7em-none-eabihf failed (rustup target add \
         thumbv7em-none-eabihf?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join("thumbv7em-none-eabihf/release/libkestrel.a")
}

/// `model_data.c`: the model (16-byte aligned, in flash) and the input pixels.
fn model_data(file: &[u8], pixels: &[u8]) -> String {
    let array = |b: &[u8]| {
        let items: Vec<String> = b.iter().map(|x| x.to_string()).collect();
        items.join(",")
    };
    format!(
        "#include <stddef.h>\n#include <stdint.h>\n\
         __attribute__((aligned(16))) const uint8_t kestrel_model[] = {{{}}};\n\
         const size_t kestrel_model_len = {};\n\
         const uint8_t test_pixels[] = {{{}}};\n\
         const size_t test_pixels_len = {};\n",
        array(file),
        file.len(),
        array(pixels),
        pixels.len()
    )
}

fn firmware(dir: &Path, lib: &Path, data: &Path, elf: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(GCC)
        .args([
            "-mcpu=cortex-m4",
            "-mthumb",
            "-mfloat-abi=hard",
            "-mfpu=fpv4-sp-d16",
        ])
        .args([
            "-std=c11",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-ffreestanding",
        ])
        // No C library, no libgcc: libkestrel.a brings everything it calls (memcpy, float
        // helpers from compiler-builtins), which this link proves.
        .args(["-nostdlib", "-Wl,--gc-sections", "-T"])
        .arg(src.join("tests/c/firmware/mps2-an386.ld"))
        .arg("-I")
        .arg(src.join("include"))
        .arg(src.join("tests/c/firmware/fw.c"))
        .arg(data)
        .arg(lib)
        .arg("-o")
        .arg(elf)
        .current_dir(dir)
        .output()
        .expect("run arm-none-eabi-gcc");
    assert!(
        out.status.success(),
        "{GCC} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `elf` under QEMU (killed after a minute) and returns its exit status and output.
fn qemu(elf: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(QEMU)
        .args([
            "-M",
            "mps2-an386",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
        ])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run qemu-system-arm");
    let start = Instant::now();
    while child.try_wait().expect("wait for qemu").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("qemu output");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

fn message(code: i32) -> String {
    // SAFETY: a static NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(kestrel_error_message(code)) };
    text.to_str().unwrap().to_owned()
}

#[test]
fn c_firmware_on_qemu_matches_the_host_runtime() {
    need(GCC);
    need(QEMU);
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capi-firmware");
    std::fs::create_dir_all(&tmp).unwrap();
    let lib = staticlib(&tmp);
    let p = pixels();
    for (precision, name) in [(Precision::Int8, "int8"), (Precision::F32, "f32")] {
        let file = model(precision);
        let data = tmp.join(format!("model_{name}.c"));
        std::fs::write(&data, model_data(&file, &p)).unwrap();
        let elf = tmp.join(format!("fw_{name}.elf"));
        firmware(&tmp, &lib, &data, &elf);
        let (status, out) = qemu(&elf);
        assert_eq!(status, Some(0), "{name}: firmware failed:\n{out}");

        let want: String = bits(&reference(&file, Some(&p), None))
            .iter()
            .map(|b| format!(" 0x{b:08x}"))
            .collect();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines.contains(&format!("pixels{want}").as_str()),
            "{name}:\n{out}"
        );
        for (case, code) in [
            ("uninitialized", S::NotInitialized as i32),
            ("small_arena", S::ArenaTooSmall as i32),
        ] {
            let line = format!("misuse {case} {code} {}", message(code));
            assert!(
                lines.contains(&line.as_str()),
                "{name}: no `{line}` in\n{out}"
            );
        }
    }
}

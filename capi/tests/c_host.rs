//! `tests/c/host.c`, compiled with the system `cc` against `libkestrel.a` and the generated
//! header, runs both test models and the misuse cases; its logits must equal the Rust
//! runtime's bit for bit, its status codes and messages the ones Rust returns.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bits, model, normalized, pixels, reference};
use kestrel::{kestrel_error_message, KestrelStatus as S};
use kestrel_format::Precision;

/// System libraries a Rust static library needs on this host
/// (`cargo rustc -p kestrel-capi --crate-type staticlib -- --print native-static-libs`).
const NATIVE_LIBS: &[&str] = if cfg!(target_os = "linux") {
    &[
        "-lgcc_s",
        "-lutil",
        "-lrt",
        "-lpthread",
        "-lm",
        "-ldl",
        "-lc",
    ]
} else if cfg!(target_os = "macos") {
    &["-lSystem", "-lc", "-lm"]
} else {
    &[]
};

/// The static library cargo built for this test run: the newest `libkestrel*.a` next to
/// this test binary (in `deps/`, where the test profile's build stays) or one level up.
fn staticlib() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir");
    let dirs = [deps, deps.parent().expect("profile dir")];
    let newest = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("libkestrel") && name.ends_with(".a") && !name.contains('_')
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    newest.expect("libkestrel.a not built (crate-type staticlib in capi/Cargo.toml)")
}

fn compile(out: &Path) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = out.join("host");
    let mut cc = Command::new("cc");
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1"])
        .arg("-I")
        .arg(dir.join("include"))
        .arg(dir.join("tests/c/host.c"))
        .arg(staticlib())
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&exe);
    let result = cc.output().unwrap_or_else(|e| {
        panic!("this test needs a C compiler: could not run `cc` ({e}); install gcc or clang")
    });
    assert!(
        result.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    exe
}

fn message(code: i32) -> String {
    // SAFETY: a static NUL-terminated string.
    let text = unsafe { std::ffi::CStr::from_ptr(kestrel_error_message(code)) };
    text.to_str().unwrap().to_owned()
}

fn hex(v: &[f32]) -> String {
    bits(v).iter().map(|b| format!(" 0x{b:08x}")).collect()
}

#[test]
fn c_program_matches_the_runtime() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capi-host");
    std::fs::create_dir_all(&out).unwrap();
    let exe = compile(&out);
    let (p, x) = (pixels(), normalized());
    std::fs::write(out.join("pixels.bin"), &p).unwrap();
    let x_bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(out.join("input.f32"), x_bytes).unwrap();

    for (precision, name) in [(Precision::Int8, "int8"), (Precision::F32, "f32")] {
        let file = model(precision);
        let path = out.join(format!("{name}.kmodel"));
        std::fs::write(&path, &file).unwrap();
        let run = Command::new(&exe)
            .arg(&path)
            .arg(out.join("pixels.bin"))
            .arg(out.join("input.f32"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{name}: host failed:\n{stdout}{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let line = |key: &str| {
            let prefix = format!("{key} ");
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("{name}: no `{key}` line in\n{stdout}"))
                .to_owned()
        };
        assert_eq!(line("input_len"), "16");
        assert_eq!(line("output_len"), "3");
        let want = reference(&file, Some(&p), None);
        assert_eq!(format!(" {}", line("pixels")), hex(&want), "{name} pixels");
        let want = reference(&file, None, Some(&x));
        assert_eq!(format!(" {}", line("f32")), hex(&want), "{name} f32");

        let cases = [
            ("uninitialized", S::NotInitialized as i32),
            ("null_handle", S::NullPointer as i32),
            ("null_model", S::NullPointer as i32),
            ("misaligned_model", S::ModelMisaligned as i32),
            ("corrupt_model", S::ModelInvalid as i32),
            ("small_arena", S::ArenaTooSmall as i32),
            ("input_length", S::InputLength as i32),
            ("output_length", S::OutputLength as i32),
            ("null_logits", S::NullPointer as i32),
            ("logits_in_arena", S::BuffersOverlap as i32),
            ("unknown_code", 42),
        ];
        for (case, code) in cases {
            let want = format!("{code} {}", message(code));
            assert_eq!(line(&format!("misuse {case}")), want, "{name} {case}");
        }
    }
}

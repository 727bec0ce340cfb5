//! The CUDA C sources (`kernels/*.cu`, embedded with `include_str!`) and their compilation
//! by NVRTC: to a CUBIN for the device's own architecture (`sm_90`), which the driver loads
//! as is, or to PTX (`compute_90`), which the driver compiles when it loads it.
//!
//! [`super::Cuda::new`] asks for a CUBIN first: a driver only JIT-compiles PTX of an ISA it
//! knows, so PTX from a newer NVRTC than the driver (NVRTC 13.2 from PyTorch's wheels on a
//! CUDA 13.0 driver) would not load, while a CUBIN built by any CUDA 13 NVRTC runs on any
//! CUDA 13 driver (minor-version compatibility). PTX is the fallback for an architecture
//! this NVRTC cannot build SASS for.
//!
//! Every file is header-free (no `#include`: NVRTC's built-ins only) and compiled with
//! `--fmad=false` and without fast math, so elementwise arithmetic is the CPU backend's,
//! operation for operation (no fused multiply-adds, IEEE division and square roots).

use cudarc::nvrtc::Ptx;

use crate::error::{Error, Result};

/// Every kernel file: `(file name, CUDA C source)`.
pub const KERNEL_SOURCES: &[(&str, &str)] = &[
    ("elementwise.cu", include_str!("kernels/elementwise.cu")),
    ("activation.cu", include_str!("kernels/activation.cu")),
    ("optim.cu", include_str!("kernels/optim.cu")),
    ("pool.cu", include_str!("kernels/pool.cu")),
    ("conv.cu", include_str!("kernels/conv.cu")),
    ("reduce.cu", include_str!("kernels/reduce.cu")),
    ("loss.cu", include_str!("kernels/loss.cu")),
    ("lcn.cu", include_str!("kernels/lcn.cu")),
];

/// The `extern "C"` kernels each file defines, `(file name, kernel names)`: what
/// [`super::Cuda::new`] loads, and what the NVRTC test looks for in the PTX.
pub const KERNEL_ENTRIES: &[(&str, &[&str])] = &[
    (
        "elementwise.cu",
        &[
            "fill_f32",
            "axpby_f32",
            "add_sign_f32",
            "shrink_fwd_f32",
            "shrink_bwd_f32",
            "scale_fwd_f32",
            "bias_rows_f32",
        ],
    ),
    (
        "activation.cu",
        &[
            "act_fwd_f32",
            "act_bwd_f32",
            "dropout_fwd_f32",
            "dropout_bwd_f32",
        ],
    ),
    ("optim.cu", &["sgd_update_f32", "adam_update_f32"]),
    (
        "pool.cu",
        &[
            "maxpool_fwd_f32",
            "maxpool_bwd_f32",
            "avgpool_fwd_f32",
            "avgpool_bwd_f32",
        ],
    ),
    ("conv.cu", &["im2col_f32", "col2im_f32", "nchw_to_cnhw_f32"]),
    (
        "reduce.cu",
        &[
            "channel_sum_f32",
            "channel_dot_f32",
            "shrink_dtheta_f32",
            "row_sq_norms_f32",
            "row_abs_sums_f32",
            "normalize_columns_f32",
        ],
    ),
    ("loss.cu", &["loss_nll_f32", "loss_hinge_f32"]),
    ("lcn.cu", &["lcn_fwd_f32", "lcn_bwd_f32"]),
];

/// How to get NVRTC when `libnvrtc.so.13` is missing.
pub(super) const NVRTC_HOW: &str = "CUDA 13's NVRTC compiles the kernels: install the CUDA 13 \
     toolkit, or `pip install nvidia-cuda-nvrtc==13.0.88` and add its lib directory to \
     LD_LIBRARY_PATH";

/// True when NVRTC's library (`libnvrtc.so.13`) can be loaded. cudarc panics on the first
/// NVRTC call without it, so every caller checks first.
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library by its candidate names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles every file of [`KERNEL_SOURCES`] to PTX for `arch` (`compute_90`), in that
/// order.
///
/// Fails with [`Error::Device`] when NVRTC cannot be loaded and with [`Error::Backend`]
/// (the compiler's log in the message) when a file does not compile.
pub fn compile_ptx(arch: &str) -> Result<Vec<(&'static str, Ptx)>> {
    compile_all(arch, |bytes| {
        Ptx::from_src(String::from_utf8_lossy(
            bytes.strip_suffix(&[0]).unwrap_or(&bytes),
        ))
    })
}

/// Compiles every file of [`KERNEL_SOURCES`] to a CUBIN (an ELF image of machine code) for
/// the real architecture `arch` (`sm_90`), as [`Ptx`] images for `load_module`; errors as
/// [`compile_ptx`]'s.
pub fn compile_cubin(arch: &str) -> Result<Vec<(&'static str, Ptx)>> {
    compile_all(arch, Ptx::from_binary)
}

/// The raw output of [`compile_cubin`] (the ELF bytes), for tests and tools.
pub fn compile_cubin_bytes(arch: &str) -> Result<Vec<(&'static str, Vec<u8>)>> {
    compile_all(arch, |bytes| bytes)
}

fn compile_all<T>(arch: &str, wrap: impl Fn(Vec<u8>) -> T) -> Result<Vec<(&'static str, T)>> {
    if !nvrtc_present() {
        return Err(Error::Device {
            device: "cuda".into(),
            message: format!("libnvrtc.so.13 not found: {NVRTC_HOW}"),
        });
    }
    KERNEL_SOURCES
        .iter()
        .map(|&(file, src)| Ok((file, wrap(nvrtc(file, src, arch)?))))
        .collect()
}

/// One file through NVRTC: CUBIN bytes for `sm_*`, PTX text (NUL-terminated) otherwise.
fn nvrtc(file: &str, src: &str, arch: &str) -> Result<Vec<u8>> {
    use cudarc::nvrtc::{result, sys};
    use std::ffi::{c_char, CString};
    let fail = |message: String| Error::Backend {
        backend: "cuda".into(),
        op: format!("nvrtc {file} ({arch})"),
        message,
    };
    let (src_c, name_c) = (
        CString::new(src).map_err(|_| fail("a NUL byte in the source".into()))?,
        CString::new(file).map_err(|_| fail("a NUL byte in the file name".into()))?,
    );
    let prog = result::create_program(&src_c, Some(&name_c)).map_err(|e| fail(format!("{e:?}")))?;
    // `--fmad=false` and IEEE division and square roots (NVRTC's defaults without fast
    // math): the CPU backend's arithmetic, operation for operation.
    let options = [
        "--fmad=false".to_string(),
        format!("--gpu-architecture={arch}"),
    ];
    // SAFETY: `prog` was created above from `src_c` and `name_c`, which outlive it, and is
    // destroyed exactly once, after its last use; the output buffers are sized by NVRTC.
    let out = unsafe {
        let compiled = match result::compile_program(prog, &options) {
            Ok(()) => Ok(()),
            Err(e) => {
                let log = result::get_program_log(prog)
                    .map(|l| {
                        let bytes: Vec<u8> = l.iter().map(|&c| c as u8).collect();
                        String::from_utf8_lossy(&bytes)
                            .trim_end_matches('\0')
                            .to_string()
                    })
                    .unwrap_or_default();
                Err(fail(format!("{e:?}: {log}")))
            }
        };
        compiled.and_then(|()| {
            if arch.starts_with("sm_") {
                let mut size = 0usize;
                sys::nvrtcGetCUBINSize(prog, &mut size)
                    .result()
                    .map_err(|e| fail(format!("CUBIN size: {e:?}")))?;
                let mut buf = vec![0u8; size];
                sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut c_char)
                    .result()
                    .map_err(|e| fail(format!("CUBIN: {e:?}")))?;
                Ok(buf)
            } else {
                let ptx = result::get_ptx(prog).map_err(|e| fail(format!("PTX: {e:?}")))?;
                Ok(ptx.iter().map(|&c| c as u8).collect())
            }
        })
    };
    // SAFETY: as above; `prog` is not used after this.
    let _ = unsafe { result::destroy_program(prog) };
    out
}

//! The CUDA C sources (`kernels/*.cu`, embedded with `include_str!`) and their compilation
//! to PTX by NVRTC.
//!
//! Every file is header-free (no `#include`: NVRTC's built-ins only) and compiled with
//! `--fmad=false` and without fast math, so elementwise arithmetic is the CPU backend's,
//! operation for operation (no fused multiply-adds, IEEE division and square roots).

use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};

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

/// True when NVRTC's library (`libnvrtc.so.13`) can be loaded. cudarc panics on the first
/// NVRTC call without it, so every caller checks first.
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library by its candidate names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles every file of [`KERNEL_SOURCES`] for `arch` (`compute_90`), in that order.
///
/// Fails with [`Error::Device`] when NVRTC cannot be loaded and with [`Error::Backend`]
/// (the compiler's log in the message) when a file does not compile.
pub fn compile_ptx(arch: &str) -> Result<Vec<(&'static str, Ptx)>> {
    if !nvrtc_present() {
        return Err(Error::Device {
            device: "cuda".into(),
            message: "libnvrtc.so.13 not found (CUDA 13's NVRTC compiles the kernels: install \
                      the CUDA toolkit, or `pip install nvidia-cuda-nvrtc==13.0.88` and add \
                      its lib directory to LD_LIBRARY_PATH)"
                .into(),
        });
    }
    KERNEL_SOURCES
        .iter()
        .map(|&(file, src)| {
            let opts = CompileOptions {
                fmad: Some(false),
                use_fast_math: Some(false),
                options: vec![format!("--gpu-architecture={arch}")],
                name: Some(file.to_string()),
                ..Default::default()
            };
            let ptx = compile_ptx_with_opts(src, opts).map_err(|e| Error::Backend {
                backend: "cuda".into(),
                op: format!("nvrtc {file} ({arch})"),
                message: compile_message(&e),
            })?;
            Ok((file, ptx))
        })
        .collect()
}

/// The compiler's log when there is one, else the error itself.
fn compile_message(e: &cudarc::nvrtc::CompileError) -> String {
    match e {
        cudarc::nvrtc::CompileError::CompileError { nvrtc, log, .. } => {
            format!("{nvrtc:?}: {}", log.to_string_lossy())
        }
        other => format!("{other:?}"),
    }
}

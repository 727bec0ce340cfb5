//! The CUDA backend: every [`Backend`] op on one NVIDIA GPU, through the driver API,
//! cuBLAS and NVRTC (all loaded at run time by cudarc, so the binary runs without them and
//! [`Cuda::new`] reports what is missing as [`Error::Device`]).
//!
//! Design:
//! - tensors ([`CudaTensor`]) are device buffers of `f32`; datasets and batches move in with
//!   [`Backend::upload_into`] into buffers allocated once, parameters and results move out
//!   with [`Backend::download`];
//! - every op is enqueued on one stream (the context's default stream), so ops run in call
//!   order with no host synchronization, except [`Backend::download`] and
//!   [`Backend::loss`], which reads back the per-sample losses and correct counts (the one
//!   host sync of a training step);
//! - the kernels (`kernels/*.cu`) are compiled once per [`Cuda`] by NVRTC to machine code
//!   (CUBIN) for the device's own compute capability and the functions are cached by name;
//! - GEMMs go to cuBLAS (row-major through the column-major transpose identity
//!   `Cᵀ = Bᵀ·Aᵀ`), in plain FP32 unless [`Cuda::set_tf32`] asks for TF32 tensor cores;
//! - nothing uses floating-point atomics: every output element is written by one thread,
//!   and every reduction (bias gradients, per-channel and per-row sums, the loss) runs in a
//!   fixed order, so the same inputs on the same device and library versions give the same
//!   bits (cuBLAS is deterministic on one stream: its default forbids atomics).
//!
//! Op → implementation:
//! - memory: `zeros`/`upload`/`upload_into`/`download`/`copy` by driver copies, `fill` by
//!   `fill_f32`;
//! - `gemm`, `linear_fwd`/`linear_bwd`: cuBLAS SGEMM, bias by `bias_rows_f32`, `db` by
//!   `channel_sum_f32`;
//! - `conv2d_fwd`: `im2col_f32` per chunk of samples + strided-batched SGEMM onto the
//!   `bias_rows_f32` output; `conv2d_bwd`: `channel_sum_f32` (`db`), `im2col_f32` +
//!   `nchw_to_cnhw_f32` + one SGEMM per chunk (`dw`, chunks in order), SGEMM + `col2im_f32`
//!   (`dx`); `conv2d_bwd_data`: strided-batched SGEMM + `col2im_f32`;
//! - `act_*`, `dropout_*`: `activation.cu`; pooling: `pool.cu` (backward passes gather per
//!   input element, first-maximum rule as on the CPU);
//! - `loss`: `loss_nll_f32`/`loss_hinge_f32`, one thread per sample;
//! - `sgd_update`, `adam_update`: `optim.cu`;
//! - `axpby`, `add_sign`, `shrink_*`, `scale_*`: `elementwise.cu`; `dθ`, `dg`, row norms and
//!   `normalize_columns`: `reduce.cu` (one block per output, f64 partials, fixed tree);
//! - `lcn_fwd`/`lcn_bwd`: `lcn.cu`, one block per sample (window sums as gathers in the
//!   CPU's tap order, f64 trees for the whole-plane sums).
//!
//! Testing without a GPU: `tests/cuda_kernels.rs` compiles every kernel with NVRTC, and
//! runs them on the host (`host_check/`: g++, threads for a block's threads, a naive SGEMM
//! for cuBLAS, the same launch sequence as this module) against the CPU backend.
//!
//! Known gaps: `gemm`'s promise that row `i` of `c` does not depend on `m` holds only as far
//! as cuBLAS picks the same kernel for different `m` (results agree within rounding).
//!
//! [`Backend`]: crate::backend::Backend
//! [`Backend::upload_into`]: crate::backend::Backend::upload_into
//! [`Backend::download`]: crate::backend::Backend::download
//! [`Backend::loss`]: crate::backend::Backend::loss

mod blas;
mod conv;
pub mod kernels;
mod ops;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig};

use crate::error::{Error, Result};

pub use kernels::{compile_cubin, compile_ptx, KERNEL_ENTRIES, KERNEL_SOURCES};

/// Threads per block of the elementwise kernels.
const THREADS: u32 = 256;
/// Threads per block of the `reduce.cu` kernels (its `REDUCE_THREADS`).
const REDUCE_THREADS: u32 = 256;
/// Threads per block of the `lcn.cu` kernels (its `LCN_THREADS`).
const LCN_THREADS: u32 = 256;
/// Scratch planes of `h·w` floats per sample for `lcn.cu` (its `LCN_PLANES`).
const LCN_PLANES: usize = 6;

/// Enqueues kernel `$name` on the backend's stream with a [`LaunchConfig`] and arguments
/// (`&CudaSlice`, `&mut CudaSlice` or `&` of a scalar whose Rust type matches the C type:
/// `i64` for `long long`, `i32` for `int`, `u64` for `unsigned long long`, `f32`). The
/// arguments live until the launch returns (one expression), as cudarc requires.
///
/// Before launching, the arguments' C types ([`KernelArg`]) are compared with the kernel's
/// parameter list parsed from its `.cu` source ([`kernel_params`]): a mismatch (count, order
/// or type, `const` included) is an [`Error::Backend`] instead of a silent bug on the GPU.
macro_rules! launch {
    ($be:expr, $op:expr, $name:expr, $cfg:expr; $($arg:expr),* $(,)?) => {{
        use cudarc::driver::PushKernelArg as _;
        let passed: &[&str] = &[$($crate::backend::cuda::c_type($arg)),*];
        $be.check_args($op, $name, passed)?;
        let f = $be.func($op, $name)?;
        // SAFETY: each kernel's parameter list is matched by the caller's argument types,
        // and the buffers hold the lengths the kernel indexes (checked by the callers).
        unsafe { $be.stream.launch_builder(f)$(.arg($arg))*.launch($cfg) }
            .map(|_| ())
            .map_err(|e| $be.fail($op, e))
    }};
}
pub(crate) use launch;

/// The C parameter type a Rust kernel argument is passed as (cudarc pushes its bytes as-is).
pub trait KernelArg {
    /// The C type, spelled as [`kernel_params`] normalizes it (`const float*`, `long long`).
    const C: &'static str;
}
macro_rules! kernel_arg {
    ($($t:ty => $c:expr),* $(,)?) => {
        $(impl KernelArg for $t { const C: &'static str = $c; })*
    };
}
kernel_arg! {
    &i32 => "int",
    &i64 => "long long",
    &u64 => "unsigned long long",
    &f32 => "float",
    &CudaSlice<f32> => "const float*",
    &mut CudaSlice<f32> => "float*",
    &CudaSlice<f64> => "const double*",
    &mut CudaSlice<f64> => "double*",
    &CudaSlice<i32> => "const int*",
    &CudaSlice<u8> => "const unsigned char*",
}

/// The C type of a `launch!` argument.
#[doc(hidden)]
pub fn c_type<T: KernelArg>(_: T) -> &'static str {
    T::C
}

/// Every `extern "C" __global__` kernel's parameter types, parsed from `sources`
/// (`(file, text)` pairs): whitespace normalized, `*` attached to the type, names dropped.
pub fn kernel_params(sources: &[(&str, &'static str)]) -> HashMap<&'static str, Vec<String>> {
    let mut out = HashMap::new();
    for (_, src) in sources {
        for rest in src.split("extern \"C\" __global__ void ").skip(1) {
            let Some((name, after)) = rest.split_once('(') else {
                continue;
            };
            let params = after.split(')').next().unwrap_or("");
            let types = params
                .split(',')
                .map(|p| {
                    let p = p.split_whitespace().collect::<Vec<_>>().join(" ");
                    let ty = p.trim_end_matches(|c: char| c.is_alphanumeric() || c == '_');
                    ty.trim().replace(" *", "*")
                })
                .filter(|t| !t.is_empty())
                .collect();
            out.insert(name.trim(), types);
        }
    }
    out
}

/// A device buffer of `f32` on one [`Cuda`] backend.
///
/// The allocation holds at least one element (CUDA has no empty allocations); [`Self::len`]
/// is the tensor's length.
#[derive(Debug)]
pub struct CudaTensor {
    buf: CudaSlice<f32>,
    len: usize,
}

impl CudaTensor {
    /// Number of floats.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True for a tensor of no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The device buffer (possibly longer than [`Self::len`]: one element for an empty tensor).
    pub fn slice(&self) -> &CudaSlice<f32> {
        &self.buf
    }
}

/// Reusable device scratch for the convolutions (`im2col` columns and transposed
/// gradients), grown on demand; the stream orders its reuse.
#[derive(Default)]
struct Scratch {
    col: Option<CudaSlice<f32>>,
    tmp: Option<CudaSlice<f32>>,
}

/// One CUDA device: its context, stream, cuBLAS handle and compiled kernels.
pub struct Cuda {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    funcs: HashMap<&'static str, CudaFunction>,
    label: String,
    device_name: String,
    scratch: Mutex<Scratch>,
}

impl std::fmt::Debug for Cuda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cuda")
            .field("device", &self.label)
            .field("name", &self.device_name)
            .finish_non_exhaustive()
    }
}

/// The first missing library the backend needs beyond the driver (NVRTC, cuBLAS), as an
/// [`Error::Device`]: cudarc's dynamic loading panics on first use when one is missing.
fn missing_library(device: &str) -> Option<Error> {
    // SAFETY: each probe only tries to dlopen the library by its candidate names.
    let checks: [(bool, &str, &str); 2] = unsafe {
        [
            (
                cudarc::nvrtc::sys::is_culib_present(),
                "libnvrtc.so.13",
                kernels::NVRTC_HOW,
            ),
            (
                cudarc::cublas::sys::is_culib_present(),
                "libcublas.so.13",
                "install CUDA 13's cuBLAS (the toolkit, or `pip install nvidia-cublas`) \
                 and add its lib directory to LD_LIBRARY_PATH",
            ),
        ]
    };
    checks
        .iter()
        .find(|(present, ..)| !present)
        .map(|&(_, lib, how)| Error::Device {
            device: device.into(),
            message: format!("{lib} not found: {how} (or use --device cpu)"),
        })
}

impl Cuda {
    /// Opens device `ordinal`: creates its context, compiles the kernels for its compute
    /// capability with NVRTC and creates a cuBLAS handle in plain FP32 mode.
    ///
    /// Fails with [`Error::Device`] when the driver has no device `ordinal` (or there is no
    /// driver: [`Device::check`](super::Device::check)) or a library is missing
    /// (`libnvrtc.so.13`, `libcublas.so.13`), and with [`Error::Backend`] when the driver,
    /// NVRTC or cuBLAS fails.
    pub fn new(ordinal: usize) -> Result<Cuda> {
        super::Device::Cuda(ordinal).check()?;
        let label = format!("cuda:{ordinal}");
        if let Some(e) = missing_library(&label) {
            return Err(e);
        }
        let device_err = |message: String| Error::Device {
            device: label.clone(),
            message,
        };
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| device_err(format!("cannot create a context: {e}")))?;
        let backend_err = |op: &str, message: String| Error::Backend {
            backend: label.clone(),
            op: op.into(),
            message,
        };
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| backend_err("compute capability", e.to_string()))?;
        let device_name = ctx
            .name()
            .map_err(|e| backend_err("device name", e.to_string()))?;
        let stream = ctx.default_stream();
        // SAFETY: every buffer of this backend is allocated, used (kernels, cuBLAS, copies)
        // and freed on this one stream, in order, so cudarc's per-argument event recording
        // (for buffers shared across streams) has nothing to order and only costs time.
        unsafe { ctx.disable_event_tracking() };
        let mut funcs = HashMap::new();
        // Machine code for this device (no JIT, so no driver-vs-NVRTC PTX version skew);
        // PTX only when this NVRTC cannot build SASS for the architecture.
        let images = compile_cubin(&format!("sm_{major}{minor}")).or_else(|cubin| {
            compile_ptx(&format!("compute_{major}{minor}"))
                .map_err(|ptx| backend_err("nvrtc", format!("CUBIN: {cubin}; PTX: {ptx}")))
        })?;
        for (file, image) in images {
            let module = ctx.load_module(image).map_err(|e| {
                device_err(format!(
                    "cannot load the kernels ({file}): {e} (CUDA 13 kernels need NVIDIA \
                     driver 580 or newer)"
                ))
            })?;
            let names = KERNEL_ENTRIES
                .iter()
                .find(|(f, _)| *f == file)
                .map_or(&[][..], |(_, n)| n);
            for &name in names {
                let f = module
                    .load_function(name)
                    .map_err(|e| backend_err(&format!("load {file}: {name}"), e.to_string()))?;
                funcs.insert(name, f);
            }
        }
        let blas =
            CudaBlas::new(stream.clone()).map_err(|e| backend_err("cuBLAS", format!("{e:?}")))?;
        let mut be = Cuda {
            ctx,
            stream,
            blas,
            funcs,
            label,
            device_name,
            scratch: Mutex::new(Scratch::default()),
        };
        be.set_tf32(false)?;
        Ok(be)
    }

    /// The device as `--device` names it (`cuda:0`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The device's name (`NVIDIA H100 80GB HBM3`).
    pub fn device_name(&self) -> String {
        self.device_name.clone()
    }

    /// Waits until every enqueued op has finished (for timings; downloads sync by themselves).
    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| self.fail("synchronize", e))
    }

    /// cuBLAS math mode: `true` lets SGEMMs use TF32 tensor cores (10-bit mantissa inputs,
    /// much faster on Ampere and later), `false` (the default) keeps plain FP32. Either way
    /// results are deterministic on one device; TF32 ones differ from the CPU's by more than
    /// the conformance tolerances allow for FP32.
    pub fn set_tf32(&mut self, on: bool) -> Result<()> {
        use cudarc::cublas::sys::{cublasMath_t, cublasSetMathMode};
        let mode = if on {
            cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH
        } else {
            cublasMath_t::CUBLAS_DEFAULT_MATH
        };
        // SAFETY: the handle is alive for `self`'s lifetime.
        unsafe { cublasSetMathMode(*self.blas.handle(), mode) }
            .result()
            .map_err(|e| self.fail("cuBLAS math mode", format!("{e:?}")))
    }

    /// An [`Error::Backend`] for `op`.
    fn fail(&self, op: &str, e: impl std::fmt::Display) -> Error {
        Error::Backend {
            backend: self.label.clone(),
            op: op.into(),
            message: e.to_string(),
        }
    }

    /// The loaded kernel `name`.
    fn func(&self, op: &str, name: &str) -> Result<&CudaFunction> {
        self.funcs
            .get(name)
            .ok_or_else(|| self.fail(op, format!("kernel {name} is not loaded")))
    }

    /// Fails unless `passed` (the C types of a launch's arguments) is kernel `name`'s
    /// parameter list in its source.
    fn check_args(&self, op: &str, name: &str, passed: &[&str]) -> Result<()> {
        static PARAMS: OnceLock<HashMap<&'static str, Vec<String>>> = OnceLock::new();
        let params = PARAMS.get_or_init(|| kernel_params(KERNEL_SOURCES));
        match params.get(name) {
            Some(want) if want.iter().map(String::as_str).eq(passed.iter().copied()) => Ok(()),
            want => Err(self.fail(
                op,
                format!("launch of {name}: arguments {passed:?}, kernel parameters {want:?}"),
            )),
        }
    }

    /// A device buffer of at least one float.
    fn alloc(&self, op: &str, len: usize) -> Result<CudaSlice<f32>> {
        self.stream
            .alloc_zeros::<f32>(len.max(1))
            .map_err(|e| self.fail(&format!("{op}: alloc {len} floats"), e))
    }

    /// The scratch buffers, locked (one op at a time uses them).
    fn scratch(&self) -> MutexGuard<'_, Scratch> {
        self.scratch
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `slot`, grown to at least `len` floats.
    fn grow<'s>(
        &self,
        op: &str,
        slot: &'s mut Option<CudaSlice<f32>>,
        len: usize,
    ) -> Result<&'s mut CudaSlice<f32>> {
        if slot.as_ref().is_none_or(|s| s.len() < len) {
            *slot = None; // free the old buffer first
            *slot = Some(self.alloc(op, len)?);
        }
        Ok(slot.as_mut().expect("just filled"))
    }

    /// Fails unless the lengths agree (ops trust their callers, but a wrong length on the
    /// device would be an out-of-bounds access rather than a panic).
    fn same_len(&self, op: &str, lens: &[usize]) -> Result<()> {
        if lens.windows(2).all(|w| w[0] == w[1]) {
            Ok(())
        } else {
            Err(self.fail(op, format!("tensor lengths differ: {lens:?}")))
        }
    }

    /// Checks that `t` holds `want` floats.
    fn has_len(&self, op: &str, what: &str, t: &CudaTensor, want: usize) -> Result<()> {
        if t.len == want {
            Ok(())
        } else {
            Err(self.fail(op, format!("{what} has {} floats, expected {want}", t.len)))
        }
    }
}

/// A grid-stride launch over `n` elements.
fn grid(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(THREADS as usize).clamp(1, 1 << 20) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One `reduce.cu` block per output value.
fn per_block(outputs: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (outputs as u32, 1, 1),
        block_dim: (REDUCE_THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `extern "C" __global__` kernel in the sources is listed in [`KERNEL_ENTRIES`]
    /// and vice versa (checked on the text, so it runs without NVRTC).
    #[test]
    fn kernel_list_matches_the_sources() {
        for (file, src) in KERNEL_SOURCES {
            let defined: Vec<&str> = src
                .split("extern \"C\" __global__ void ")
                .skip(1)
                .map(|rest| rest.split('(').next().unwrap_or("").trim())
                .collect();
            let (_, listed) = KERNEL_ENTRIES
                .iter()
                .find(|(f, _)| f == file)
                .unwrap_or_else(|| panic!("{file} has no KERNEL_ENTRIES row"));
            assert_eq!(&defined, listed, "{file}");
            assert!(
                !src.contains("#include"),
                "{file}: NVRTC has no headers here"
            );
            for name in defined {
                assert!(name.ends_with("_f32"), "{file}: {name}");
            }
        }
    }

    /// Every kernel's parameters parse into types a Rust argument maps to ([`KernelArg`]).
    #[test]
    fn kernel_params_parse_into_known_types() {
        let known = [
            <&i32>::C,
            <&i64>::C,
            <&u64>::C,
            <&f32>::C,
            <&CudaSlice<f32>>::C,
            <&mut CudaSlice<f32>>::C,
            <&CudaSlice<f64>>::C,
            <&mut CudaSlice<f64>>::C,
            <&CudaSlice<i32>>::C,
            <&CudaSlice<u8>>::C,
        ];
        let params = kernel_params(KERNEL_SOURCES);
        for (file, names) in KERNEL_ENTRIES {
            for name in *names {
                let types = params.get(name).unwrap_or_else(|| panic!("{file}: {name}"));
                assert!(!types.is_empty(), "{name}");
                for t in types {
                    assert!(known.contains(&t.as_str()), "{name}: parameter type {t:?}");
                }
            }
        }
        assert_eq!(
            params["loss_nll_f32"],
            [
                "float*",
                "double*",
                "const float*",
                "const unsigned char*",
                "int",
                "int",
                "float"
            ]
        );
        assert_eq!(
            params["dropout_fwd_f32"],
            [
                "float*",
                "const float*",
                "long long",
                "unsigned long long",
                "float",
                "float"
            ]
        );
        assert_eq!(c_type(&0i64), "long long");
        assert_eq!(c_type(&0), "int", "an unsuffixed literal is an i32");
    }

    /// Every `launch!` site in this module's sources passes as many arguments as the kernel
    /// it names has parameters (the types are checked at launch time by `check_args`).
    #[test]
    fn launch_sites_pass_every_parameter() {
        let params = kernel_params(KERNEL_SOURCES);
        let sites = [
            ("ops.rs", include_str!("ops.rs")),
            ("blas.rs", include_str!("blas.rs")),
            ("conv.rs", include_str!("conv.rs")),
        ];
        let mut checked = 0;
        for (file, src) in sites {
            for call in src.split("launch!(").skip(1) {
                // The invocation's text up to its closing parenthesis.
                let mut depth = 1;
                let end = call
                    .char_indices()
                    .find(|&(_, c)| {
                        depth += match c {
                            '(' | '[' | '{' => 1,
                            ')' | ']' | '}' => -1,
                            _ => 0,
                        };
                        depth == 0
                    })
                    .map_or(call.len(), |(i, _)| i);
                let call = &call[..end];
                let (head, args) = call
                    .split_once(';')
                    .expect("`launch!(be, op, name, cfg; args)`");
                let name = head.split(',').nth(2).unwrap_or("").trim();
                let count = args.split(',').filter(|a| !a.trim().is_empty()).count();
                // A literal names its kernel; a variable may name any kernel with that count.
                let names: Vec<&str> = match name.strip_prefix('"') {
                    Some(n) => vec![n.trim_end_matches('"')],
                    None => Vec::new(),
                };
                for n in names {
                    let want = params
                        .get(n)
                        .unwrap_or_else(|| panic!("{file}: no kernel {n}"));
                    assert_eq!(count, want.len(), "{file}: launch of {n}: `{args}`");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 30, "only {checked} launch sites found");
    }

    /// The block sizes and scratch planes the kernels are written for (`#define`s) are the
    /// ones the launches use.
    #[test]
    fn launch_constants_match_the_kernels() {
        let define = |file: &str, name: &str| -> usize {
            let (_, src) = KERNEL_SOURCES.iter().find(|(f, _)| *f == file).unwrap();
            let line = src
                .lines()
                .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
                .unwrap_or_else(|| panic!("{file}: no #define {name}"));
            line.trim().parse().unwrap()
        };
        assert_eq!(
            define("reduce.cu", "REDUCE_THREADS"),
            REDUCE_THREADS as usize
        );
        assert_eq!(define("lcn.cu", "LCN_THREADS"), LCN_THREADS as usize);
        assert_eq!(define("lcn.cu", "LCN_PLANES"), LCN_PLANES);
        assert!(REDUCE_THREADS.is_power_of_two() && LCN_THREADS.is_power_of_two());
        assert_eq!(per_block(7).block_dim, (REDUCE_THREADS, 1, 1));
        assert_eq!(grid(0).grid_dim, (1, 1, 1), "never a zero grid");
        assert_eq!(grid(usize::MAX / 2).grid_dim, (1 << 20, 1, 1));
    }

    #[test]
    fn row_major_leading_dimensions() {
        let g = blas::RowMajor::single(false, true, 3, 4, 5, 1.0, 0.0);
        assert_eq!((g.lda, g.ldb, g.ldc), (5, 5, 4));
        let g = blas::RowMajor::single(true, false, 3, 4, 5, 1.0, 0.0);
        assert_eq!((g.lda, g.ldb, g.ldc), (3, 4, 4));
    }

    #[test]
    fn no_library_no_panic() {
        // Each missing library is named (here: NVRTC unless the test command's
        // LD_LIBRARY_PATH provides it, and cuBLAS); with CUDA, nothing is missing.
        // SAFETY: dlopen probes.
        let (nvrtc, cublas) = unsafe {
            (
                cudarc::nvrtc::sys::is_culib_present(),
                cudarc::cublas::sys::is_culib_present(),
            )
        };
        let missing = missing_library("cuda:0").map(|e| e.to_string());
        match (nvrtc, cublas) {
            (false, _) => assert!(missing.as_ref().unwrap().contains("libnvrtc.so.13")),
            (true, false) => assert!(missing.as_ref().unwrap().contains("libcublas.so.13")),
            (true, true) => assert_eq!(missing, None),
        }
    }
}

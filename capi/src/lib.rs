//! # kestrel-capi
//!
//! The C interface to [`kestrel_runtime`]: one static library (`libkestrel.a`) and one
//! header (`include/kestrel.h`, generated from this file by cbindgen in `build.rs`).
//! No allocation anywhere: the caller owns the model bytes, the handle and the arena.
//!
//! ```c
//! static KestrelHandle h;                       /* KESTREL_HANDLE_SIZE bytes */
//! static uint8_t arena[ARENA_BYTES + 15];       /* any alignment: up to 15 bytes skipped */
//! float logits[10];
//! int32_t rc = kestrel_init(&h, model, model_len);   /* validates and plans, once */
//! if (rc == KESTREL_STATUS_OK)
//!     rc = kestrel_run_pixels(&h, arena, sizeof arena, pixels, 784, logits, 10);
//! if (rc != KESTREL_STATUS_OK) puts(kestrel_error_message(rc));
//! ```
//!
//! The same calls from Rust, as the tests make them:
//!
//! ```
//! use core::mem::MaybeUninit;
//! use kestrel::*;
//! # let file = kestrel_format::AlignedBuf::new(&[0u8; 16]); // not a model
//! let mut h = MaybeUninit::<KestrelHandle>::zeroed();
//! let rc = unsafe { kestrel_init(h.as_mut_ptr(), file.as_ptr(), file.len()) };
//! assert_eq!(rc, KestrelStatus::ModelInvalid as i32);
//! // A failed init leaves the handle uninitialized, and every call says so.
//! assert_eq!(unsafe { kestrel_arena_bytes(h.as_ptr()) }, 0);
//! ```
//!
//! **The handle holds the validated model, not the plan.** A [`Plan`] borrows its
//! [`Model`], so keeping both in one handle would make the handle point into itself (and
//! break if C code copied it). Instead [`kestrel_init`] validates the model once (header,
//! CRC, every tensor and shape: the expensive part), checks that a plan can be made and
//! stores the [`Model`] view, which borrows only the caller's model bytes; each run makes
//! the [`Plan`] again, which is a walk over at most `MAX_LAYERS` layers computing offsets
//! (no model bytes are read), small next to any layer's arithmetic: on an x86-64 host,
//! for the 5-layer test model, `Plan::new` takes about 0.1 µs, `Model::from_bytes` 1.6–1.9
//! µs and the whole run 1.2–1.3 µs, and a real model's run is hundreds of times longer.
//! The plan lives on the stack during a run (`MAX_LAYERS` offsets: about 0.5 KiB on a
//! 32-bit target, 1 KiB on a 64-bit one). So the handle may be
//! copied or moved like any C struct; only the model bytes must stay where they are,
//! unchanged, for as long as the handle is used.
//!
//! **Misuse is an error code, not undefined behaviour**: null pointers, misaligned float
//! pointers, overlapping buffers, a short arena, wrong lengths, a misaligned or corrupt
//! model and a handle that `kestrel_init` did not accept (zero it first: `KestrelHandle
//! h = {0};` or a `static`) all return a negative [`KestrelStatus`]. Every function
//! is written so that it cannot panic (no indexing, no unwrap).
//!
//! **Panics and `no_std`.** The crate is `no_std`. On a host target (`target_os` other
//! than `"none"`) it links `std` only for std's panic handler and unwinding runtime, which
//! a Rust static library for a host needs; nothing else of std is used. On bare metal
//! (`target_os = "none"`, e.g. `thumbv7em-none-eabihf`) the default `panic-handler`
//! feature supplies a `#[panic_handler]` that loops forever (unreachable, since nothing
//! here panics); a Rust firmware with its own handler turns the feature off.
//!
//! **Tests** (`cargo test -p kestrel-capi`): `tests/api.rs` calls every function from Rust
//! (each error path, and logits equal to [`Plan::run_f32`]'s bit for bit on an int8 and an
//! f32 model); `tests/c_host.rs` compiles `tests/c/host.c` with the system `cc` against
//! `libkestrel.a`; `tests/c_firmware.rs` links `tests/c/firmware/fw.c` for a Cortex-M4F
//! with `arm-none-eabi-gcc -nostdlib` and runs it under `qemu-system-arm -M mps2-an386`;
//! `tests/header.rs` fails on a stale committed header.
#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]

#[cfg(not(target_os = "none"))]
extern crate std;

use core::ffi::c_char;
use core::mem::{align_of, size_of};
use core::ptr;

use kestrel_format::Model;
use kestrel_runtime::{Input, Plan};

/// Bytes of a [`KestrelHandle`] on 64-bit targets (10824 used today; the rest is room for
/// the runtime to grow without changing the header).
#[cfg(target_pointer_width = "64")]
pub const KESTREL_HANDLE_SIZE: usize = 12288;
/// Bytes of a [`KestrelHandle`] on 32-bit targets such as Cortex-M (8192 used today).
#[cfg(not(target_pointer_width = "64"))]
pub const KESTREL_HANDLE_SIZE: usize = 9216;
/// Alignment of a [`KestrelHandle`] in bytes.
pub const KESTREL_HANDLE_ALIGN: usize = 8;
/// An arena starting at a multiple of this address needs exactly
/// [`kestrel_arena_bytes`] bytes; any other needs up to `KESTREL_ARENA_ALIGN - 1` more.
pub const KESTREL_ARENA_ALIGN: usize = 16;
/// Model bytes must start at a multiple of this address.
pub const KESTREL_MODEL_ALIGN: usize = 16;

/// Caller-owned storage for one initialized model. Opaque: allocate it (statically, on the
/// stack or in a struct), zero it, and pass its address to [`kestrel_init`].
///
/// The field is public only so that C sees the size; its contents are private.
#[repr(C, align(8))]
pub struct KestrelHandle {
    /// Storage.
    pub opaque: [u8; KESTREL_HANDLE_SIZE],
}

/// Status codes returned by every `int32_t` function: 0 on success, negative on error.
/// [`kestrel_error_message`] describes each.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KestrelStatus {
    /// Success.
    Ok = 0,
    /// A pointer argument is null.
    NullPointer = -1,
    /// The handle was not initialized by a successful `kestrel_init`.
    NotInitialized = -2,
    /// The handle, or a float buffer, is not aligned for its type.
    MisalignedPointer = -3,
    /// Two buffers (arena, input, logits, model bytes) overlap.
    BuffersOverlap = -4,
    /// The model bytes do not start at a `KESTREL_MODEL_ALIGN`-byte aligned address.
    ModelMisaligned = -5,
    /// The model's format version is not the one this build reads.
    ModelVersion = -6,
    /// The model bytes are not a valid Kestrel model (truncated, corrupt, inconsistent).
    ModelInvalid = -7,
    /// This build has no kernel for one of the model's layers at its precision.
    UnsupportedOp = -8,
    /// This build was compiled without the model's precision (f32 or int8).
    PrecisionNotBuilt = -9,
    /// This build was compiled without the sparse-code encoder ops the model uses.
    EncodersNotBuilt = -10,
    /// The arena is smaller than `kestrel_arena_bytes` (plus the skip to 16-byte alignment).
    ArenaTooSmall = -11,
    /// The input length is not the model's `kestrel_input_len`.
    InputLength = -12,
    /// The logits length is not the model's `kestrel_output_len`.
    OutputLength = -13,
    /// Any other runtime error (not expected from this interface).
    Internal = -14,
    /// The model exceeds the runtime's default limits (`kestrel_runtime::Limits::DEFAULT`:
    /// 10^10 operations per inference, a 1 GiB arena): a file that would keep the device
    /// busy for minutes is refused before it runs.
    LimitExceeded = -15,
}

/// Marks an [`Inner`] written by a successful [`kestrel_init`] ("KESTRELh").
const MAGIC: u64 = 0x4B45_5354_5245_4C68;

/// What a [`KestrelHandle`] holds.
#[repr(C)]
struct Inner {
    /// [`MAGIC`] once initialized; 0 while `kestrel_init` works on it or after it failed.
    magic: u64,
    /// Borrows the caller's model bytes (`'static` stands for "while the handle is used").
    model: Model<'static>,
    /// The caller's model bytes, to refuse arenas that overlap them.
    bytes: &'static [u8],
    /// [`Plan::arena_bytes`].
    arena_bytes: usize,
    /// Input elements (`c*h*w`).
    input_len: usize,
    /// Output elements.
    output_len: usize,
}

const _: () = assert!(size_of::<Inner>() <= size_of::<KestrelHandle>());
const _: () = assert!(align_of::<Inner>() <= align_of::<KestrelHandle>());
const _: () = assert!(align_of::<KestrelHandle>() == KESTREL_HANDLE_ALIGN);
const _: () = assert!(size_of::<KestrelHandle>() == KESTREL_HANDLE_SIZE);
const _: () = assert!(KESTREL_MODEL_ALIGN == kestrel_format::TENSOR_ALIGN);

impl From<kestrel_format::Error> for KestrelStatus {
    fn from(e: kestrel_format::Error) -> Self {
        use kestrel_format::Error::*;
        match e {
            Misaligned { .. } => KestrelStatus::ModelMisaligned,
            UnsupportedVersion { .. } => KestrelStatus::ModelVersion,
            // Every other kind is "this is not a valid model"; the Rust API has the detail.
            _ => KestrelStatus::ModelInvalid,
        }
    }
}

impl From<kestrel_runtime::Error> for KestrelStatus {
    fn from(e: kestrel_runtime::Error) -> Self {
        use kestrel_runtime::Error::*;
        match e {
            ArenaTooSmall { .. } => KestrelStatus::ArenaTooSmall,
            InputLength { .. } => KestrelStatus::InputLength,
            OutputLength { .. } => KestrelStatus::OutputLength,
            Unsupported { .. } => KestrelStatus::UnsupportedOp,
            PrecisionNotBuilt { .. } => KestrelStatus::PrecisionNotBuilt,
            EncodersNotBuilt { .. } => KestrelStatus::EncodersNotBuilt,
            LimitExceeded { .. } => KestrelStatus::LimitExceeded,
            // The sparse-coding API's errors and future kinds (`#[non_exhaustive]`).
            _ => KestrelStatus::Internal,
        }
    }
}

fn code(r: Result<(), KestrelStatus>) -> i32 {
    match r {
        Ok(()) => KestrelStatus::Ok as i32,
        Err(s) => s as i32,
    }
}

/// `p` as a handle, if it is non-null, aligned and initialized.
///
/// # Safety
/// `p` is null or points to `KESTREL_HANDLE_SIZE` readable bytes.
unsafe fn inner<'h>(p: *const KestrelHandle) -> Result<&'h Inner, KestrelStatus> {
    if p.is_null() {
        return Err(KestrelStatus::NullPointer);
    }
    if !p.is_aligned() {
        return Err(KestrelStatus::MisalignedPointer);
    }
    let p = p.cast::<Inner>();
    // SAFETY: `p` is non-null and aligned, and the caller promised the handle's bytes are
    // readable; `magic` is a plain integer, valid for any bytes.
    let magic = unsafe { ptr::addr_of!((*p).magic).read() };
    if magic != MAGIC {
        return Err(KestrelStatus::NotInitialized);
    }
    // SAFETY: only `kestrel_init` writes MAGIC, after writing a whole valid `Inner`.
    Ok(unsafe { &*p })
}

/// The byte range `[p, p + len)` as a pair of addresses (saturating).
fn range<T>(p: *const T, len: usize) -> (usize, usize) {
    let start = p as usize;
    (
        start,
        start.saturating_add(len.saturating_mul(size_of::<T>())),
    )
}

fn overlap(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Validates the `model_len` bytes at `model` and initializes `*h` in place.
///
/// Returns `KESTREL_STATUS_OK`, or an error and leaves `*h` uninitialized (every other
/// function then returns `KESTREL_STATUS_NOT_INITIALIZED`). The model bytes must start at
/// a `KESTREL_MODEL_ALIGN`-byte aligned address and stay in place, unchanged, for as long
/// as `*h` is used; `*h` itself holds no pointer into itself and may be copied.
///
/// # Safety
/// `h` is null or points to `KESTREL_HANDLE_SIZE` writable bytes; `model` is null or
/// points to `model_len` readable bytes that live and stay unchanged while `*h` is used.
#[no_mangle]
pub unsafe extern "C" fn kestrel_init(
    h: *mut KestrelHandle,
    model: *const u8,
    model_len: usize,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    code(unsafe { init(h, model, model_len) })
}

/// See [`kestrel_init`].
unsafe fn init(
    h: *mut KestrelHandle,
    model: *const u8,
    model_len: usize,
) -> Result<(), KestrelStatus> {
    if h.is_null() || model.is_null() {
        return Err(KestrelStatus::NullPointer);
    }
    if !h.is_aligned() {
        return Err(KestrelStatus::MisalignedPointer);
    }
    let h = h.cast::<Inner>();
    // SAFETY: `h` is non-null, aligned and writable (contract). Clearing the magic first
    // means a failed init leaves a handle every other function refuses.
    unsafe { ptr::addr_of_mut!((*h).magic).write(0) };
    if model_len > isize::MAX as usize || overlap(range(h, 1), range(model, model_len)) {
        return Err(if model_len > isize::MAX as usize {
            KestrelStatus::ModelInvalid
        } else {
            KestrelStatus::BuffersOverlap
        });
    }
    // SAFETY: non-null, `model_len` readable bytes that outlive every use of the handle
    // (contract), at most isize::MAX long, and not the handle's own bytes.
    let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(model, model_len) };
    let model = Model::from_bytes(bytes)?;
    let plan = Plan::new(&model)?;
    let arena_bytes = plan.arena_bytes();
    let input_len = model.input_shape().len();
    let output_len = model.output_shape().len();
    let value = Inner {
        magic: MAGIC,
        model,
        bytes,
        arena_bytes,
        input_len,
        output_len,
    };
    // SAFETY: `h` is aligned and has room for an `Inner` (the asserts above); the old
    // contents are plain bytes with nothing to drop.
    unsafe { h.write(value) };
    Ok(())
}

/// Arena bytes the model needs from a `KESTREL_ARENA_ALIGN`-aligned address (0 if `h` is
/// null or not initialized).
///
/// # Safety
/// `h` is null or points to `KESTREL_HANDLE_SIZE` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn kestrel_arena_bytes(h: *const KestrelHandle) -> usize {
    // SAFETY: forwarded from this function's contract.
    unsafe { inner(h) }.map_or(0, |i| i.arena_bytes)
}

/// Input elements the model takes (`channels·height·width`; 0 if `h` is null or not
/// initialized).
///
/// # Safety
/// `h` is null or points to `KESTREL_HANDLE_SIZE` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn kestrel_input_len(h: *const KestrelHandle) -> usize {
    // SAFETY: forwarded from this function's contract.
    unsafe { inner(h) }.map_or(0, |i| i.input_len)
}

/// Logits the model writes (0 if `h` is null or not initialized).
///
/// # Safety
/// `h` is null or points to `KESTREL_HANDLE_SIZE` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn kestrel_output_len(h: *const KestrelHandle) -> usize {
    // SAFETY: forwarded from this function's contract.
    unsafe { inner(h) }.map_or(0, |i| i.output_len)
}

/// Runs the model on raw pixels (`0..=255`, normalized with the model's mean and std, and
/// quantized for int8 models) and writes `logits_len` f32 logits (int8 outputs
/// dequantized). `pixels_len` must be `kestrel_input_len(h)`, `logits_len`
/// `kestrel_output_len(h)`, and `arena_len` at least `kestrel_arena_bytes(h)` plus the
/// bytes skipped to reach a 16-byte aligned address. The arena's contents do not matter.
///
/// # Safety
/// Each pointer is null or points to as many readable (`pixels`, `*h`) or writable
/// (`arena`, `logits`) elements as its length says.
#[no_mangle]
pub unsafe extern "C" fn kestrel_run_pixels(
    h: *const KestrelHandle,
    arena: *mut u8,
    arena_len: usize,
    pixels: *const u8,
    pixels_len: usize,
    logits: *mut f32,
    logits_len: usize,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    code(unsafe {
        run(
            h,
            arena,
            arena_len,
            Src::Pixels(pixels, pixels_len),
            logits,
            logits_len,
        )
    })
}

/// Runs the model on already normalized input (`x = (p/255 − mean)/std`; quantized for
/// int8 models), otherwise as `kestrel_run_pixels`. `input` must be 4-byte aligned.
///
/// # Safety
/// Each pointer is null or points to as many readable (`input`, `*h`) or writable
/// (`arena`, `logits`) elements as its length says.
#[no_mangle]
pub unsafe extern "C" fn kestrel_run_f32(
    h: *const KestrelHandle,
    arena: *mut u8,
    arena_len: usize,
    input: *const f32,
    input_len: usize,
    logits: *mut f32,
    logits_len: usize,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    code(unsafe {
        run(
            h,
            arena,
            arena_len,
            Src::F32(input, input_len),
            logits,
            logits_len,
        )
    })
}

/// The input of [`run`], still raw.
#[derive(Clone, Copy)]
enum Src {
    Pixels(*const u8, usize),
    F32(*const f32, usize),
}

/// See [`kestrel_run_pixels`]: every check in the order the caller would fix them, then
/// [`Plan::run_f32`].
unsafe fn run(
    h: *const KestrelHandle,
    arena: *mut u8,
    arena_len: usize,
    src: Src,
    logits: *mut f32,
    logits_len: usize,
) -> Result<(), KestrelStatus> {
    let (src_null, src_len, src_aligned) = match src {
        Src::Pixels(p, n) => (p.is_null(), n, true),
        Src::F32(p, n) => (p.is_null(), n, p.is_aligned()),
    };
    if arena.is_null() || src_null || logits.is_null() {
        return Err(KestrelStatus::NullPointer);
    }
    // SAFETY: `h` is null or readable (contract).
    let inner = unsafe { inner(h) }?;
    if !src_aligned || !logits.is_aligned() {
        return Err(KestrelStatus::MisalignedPointer);
    }
    if src_len != inner.input_len {
        return Err(KestrelStatus::InputLength);
    }
    if logits_len != inner.output_len {
        return Err(KestrelStatus::OutputLength);
    }
    // Only the arena's first `arena_bytes + 15` bytes can be used; borrowing no more keeps
    // the slice far below isize::MAX and the overlap check to what is written.
    let arena_len = arena_len.min(inner.arena_bytes.saturating_add(KESTREL_ARENA_ALIGN - 1));
    let a = range(arena, arena_len);
    let s = match src {
        Src::Pixels(p, n) => range(p, n),
        Src::F32(p, n) => range(p, n),
    };
    let l = range(logits, logits_len);
    let m = range(inner.bytes.as_ptr(), inner.bytes.len());
    let hr = range(h, 1);
    // The writable buffers must not overlap anything else (read-only ones may share).
    if [s, l, m, hr].iter().any(|&r| overlap(a, r)) || [s, m, hr].iter().any(|&r| overlap(l, r)) {
        return Err(KestrelStatus::BuffersOverlap);
    }
    // SAFETY: non-null, aligned, valid for the given lengths (contract), which equal the
    // model's small input and output sizes or were clamped, and no mutable slice overlaps
    // any other slice in use (checked above).
    let (arena, logits) = unsafe {
        (
            core::slice::from_raw_parts_mut(arena, arena_len),
            core::slice::from_raw_parts_mut(logits, logits_len),
        )
    };
    // SAFETY: as above.
    let input = unsafe {
        match src {
            Src::Pixels(p, n) => Input::Pixels(core::slice::from_raw_parts(p, n)),
            Src::F32(p, n) => Input::Normalized(core::slice::from_raw_parts(p, n)),
        }
    };
    let plan = Plan::new(&inner.model)?;
    plan.run_f32(arena, input, logits)?;
    Ok(())
}

/// A static, NUL-terminated English description of a status code (unknown codes included).
#[no_mangle]
pub extern "C" fn kestrel_error_message(code: i32) -> *const c_char {
    message(code).as_ptr()
}

/// See [`kestrel_error_message`].
fn message(code: i32) -> &'static core::ffi::CStr {
    use KestrelStatus as S;
    const ALL: [KestrelStatus; 16] = [
        S::Ok,
        S::NullPointer,
        S::NotInitialized,
        S::MisalignedPointer,
        S::BuffersOverlap,
        S::ModelMisaligned,
        S::ModelVersion,
        S::ModelInvalid,
        S::UnsupportedOp,
        S::PrecisionNotBuilt,
        S::EncodersNotBuilt,
        S::ArenaTooSmall,
        S::InputLength,
        S::OutputLength,
        S::Internal,
        S::LimitExceeded,
    ];
    let Some(&status) = ALL.iter().find(|&&s| s as i32 == code) else {
        return c"unknown kestrel status code";
    };
    match status {
        S::Ok => c"ok",
        S::NullPointer => c"a pointer argument is null",
        S::NotInitialized => c"the handle was not initialized by a successful kestrel_init",
        S::MisalignedPointer => {
            c"the handle or a float buffer is not aligned for its type (handle: 8 bytes, float: 4)"
        }
        S::BuffersOverlap => c"the arena, input, logits, model bytes or handle overlap",
        S::ModelMisaligned => {
            c"the model bytes must start at a 16-byte aligned address (KESTREL_MODEL_ALIGN)"
        }
        S::ModelVersion => c"the model's format version is not the one this build reads",
        S::ModelInvalid => {
            c"not a valid Kestrel model (truncated, corrupt or inconsistent; the Rust API's \
              kestrel_format::Model::from_bytes names the problem)"
        }
        S::UnsupportedOp => {
            c"this build of kestrel-runtime has no kernel for one of the model's layers"
        }
        S::PrecisionNotBuilt => {
            c"this build of kestrel-runtime was compiled without the model's precision"
        }
        S::EncodersNotBuilt => {
            c"this build of kestrel-runtime was compiled without the sparse-code encoder ops"
        }
        S::ArenaTooSmall => {
            c"arena too small: give kestrel_arena_bytes() bytes from a 16-byte aligned \
              address, or 15 more"
        }
        S::InputLength => c"the input length is not kestrel_input_len()",
        S::OutputLength => c"the logits length is not kestrel_output_len()",
        S::Internal => c"internal kestrel-runtime error",
        S::LimitExceeded => {
            c"the model exceeds the runtime's default limits (10^10 operations per inference, \
              a 1 GiB arena); kestrel_runtime::Plan::with_limits names the figure"
        }
    }
}

/// Bare metal has no std to supply one; nothing in this crate can panic.
#[cfg(all(target_os = "none", feature = "panic-handler"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

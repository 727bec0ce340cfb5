/* kestrel.h: the C interface to kestrel-runtime (crate kestrel-capi).
 * Generated from capi/src/lib.rs by cbindgen (capi/build.rs): do not edit. */

#ifndef KESTREL_H
#define KESTREL_H

#include <stddef.h>
#include <stdint.h>
/* KESTREL_HANDLE_SIZE depends on the pointer width of the target. */
#if UINTPTR_MAX > 0xFFFFFFFFu
#define KESTREL_POINTER_64 1
#endif
#if defined(_MSC_VER)
#define KESTREL_ALIGNED(n) __declspec(align(n))
#else
#define KESTREL_ALIGNED(n) __attribute__((aligned(n)))
#endif

#if defined(KESTREL_POINTER_64)
/**
 * Bytes of a [`KestrelHandle`] on 64-bit targets (10824 used today; the rest is room for
 * the runtime to grow without changing the header).
 */
#define KESTREL_HANDLE_SIZE 12288
#endif

#if !defined(KESTREL_POINTER_64)
/**
 * Bytes of a [`KestrelHandle`] on 32-bit targets such as Cortex-M (8192 used today).
 */
#define KESTREL_HANDLE_SIZE 9216
#endif

/**
 * Alignment of a [`KestrelHandle`] in bytes.
 */
#define KESTREL_HANDLE_ALIGN 8

/**
 * An arena starting at a multiple of this address needs exactly
 * [`kestrel_arena_bytes`] bytes; any other needs up to `KESTREL_ARENA_ALIGN - 1` more.
 */
#define KESTREL_ARENA_ALIGN 16

/**
 * Model bytes must start at a multiple of this address.
 */
#define KESTREL_MODEL_ALIGN 16

/**
 * Status codes returned by every `int32_t` function: 0 on success, negative on error.
 * [`kestrel_error_message`] describes each.
 */
enum KestrelStatus
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /**
   * Success.
   */
  KESTREL_STATUS_OK = 0,
  /**
   * A pointer argument is null.
   */
  KESTREL_STATUS_NULL_POINTER = -1,
  /**
   * The handle was not initialized by a successful `kestrel_init`.
   */
  KESTREL_STATUS_NOT_INITIALIZED = -2,
  /**
   * The handle, or a float buffer, is not aligned for its type.
   */
  KESTREL_STATUS_MISALIGNED_POINTER = -3,
  /**
   * Two buffers (arena, input, logits, model bytes) overlap.
   */
  KESTREL_STATUS_BUFFERS_OVERLAP = -4,
  /**
   * The model bytes do not start at a `KESTREL_MODEL_ALIGN`-byte aligned address.
   */
  KESTREL_STATUS_MODEL_MISALIGNED = -5,
  /**
   * The model's format version is not the one this build reads.
   */
  KESTREL_STATUS_MODEL_VERSION = -6,
  /**
   * The model bytes are not a valid Kestrel model (truncated, corrupt, inconsistent).
   */
  KESTREL_STATUS_MODEL_INVALID = -7,
  /**
   * This build has no kernel for one of the model's layers at its precision.
   */
  KESTREL_STATUS_UNSUPPORTED_OP = -8,
  /**
   * This build was compiled without the model's precision (f32 or int8).
   */
  KESTREL_STATUS_PRECISION_NOT_BUILT = -9,
  /**
   * This build was compiled without the sparse-code encoder ops the model uses.
   */
  KESTREL_STATUS_ENCODERS_NOT_BUILT = -10,
  /**
   * The arena is smaller than `kestrel_arena_bytes` (plus the skip to 16-byte alignment).
   */
  KESTREL_STATUS_ARENA_TOO_SMALL = -11,
  /**
   * The input length is not the model's `kestrel_input_len`.
   */
  KESTREL_STATUS_INPUT_LENGTH = -12,
  /**
   * The logits length is not the model's `kestrel_output_len`.
   */
  KESTREL_STATUS_OUTPUT_LENGTH = -13,
  /**
   * Any other runtime error (not expected from this interface).
   */
  KESTREL_STATUS_INTERNAL = -14,
  /**
   * The model exceeds the runtime's default limits (`kestrel_runtime::Limits::DEFAULT`:
   * 10^10 operations per inference, a 1 GiB arena): a file that would keep the device
   * busy for minutes is refused before it runs.
   */
  KESTREL_STATUS_LIMIT_EXCEEDED = -15,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum KestrelStatus KestrelStatus;
#else
typedef int32_t KestrelStatus;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/**
 * Caller-owned storage for one initialized model. Opaque: allocate it (statically, on the
 * stack or in a struct), zero it, and pass its address to [`kestrel_init`].
 *
 * The field is public only so that C sees the size; its contents are private.
 */
typedef struct KESTREL_ALIGNED(8) KestrelHandle {
  /**
   * Storage.
   */
  uint8_t opaque[KESTREL_HANDLE_SIZE];
} KestrelHandle;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Validates the `model_len` bytes at `model` and initializes `*h` in place.
 *
 * Returns `KESTREL_STATUS_OK`, or an error and leaves `*h` uninitialized (every other
 * function then returns `KESTREL_STATUS_NOT_INITIALIZED`). The model bytes must start at
 * a `KESTREL_MODEL_ALIGN`-byte aligned address and stay in place, unchanged, for as long
 * as `*h` is used; `*h` itself holds no pointer into itself and may be copied.
 *
 * # Safety
 * `h` is null or points to `KESTREL_HANDLE_SIZE` writable bytes; `model` is null or
 * points to `model_len` readable bytes that live and stay unchanged while `*h` is used.
 */
int32_t kestrel_init(struct KestrelHandle *h, const uint8_t *model, size_t model_len);

/**
 * Arena bytes the model needs from a `KESTREL_ARENA_ALIGN`-aligned address (0 if `h` is
 * null or not initialized).
 *
 * # Safety
 * `h` is null or points to `KESTREL_HANDLE_SIZE` readable bytes.
 */
size_t kestrel_arena_bytes(const struct KestrelHandle *h);

/**
 * Input elements the model takes (`channels·height·width`; 0 if `h` is null or not
 * initialized).
 *
 * # Safety
 * `h` is null or points to `KESTREL_HANDLE_SIZE` readable bytes.
 */
size_t kestrel_input_len(const struct KestrelHandle *h);

/**
 * Logits the model writes (0 if `h` is null or not initialized).
 *
 * # Safety
 * `h` is null or points to `KESTREL_HANDLE_SIZE` readable bytes.
 */
size_t kestrel_output_len(const struct KestrelHandle *h);

/**
 * Runs the model on raw pixels (`0..=255`, normalized with the model's mean and std, and
 * quantized for int8 models) and writes `logits_len` f32 logits (int8 outputs
 * dequantized). `pixels_len` must be `kestrel_input_len(h)`, `logits_len`
 * `kestrel_output_len(h)`, and `arena_len` at least `kestrel_arena_bytes(h)` plus the
 * bytes skipped to reach a 16-byte aligned address. The arena's contents do not matter.
 *
 * # Safety
 * Each pointer is null or points to as many readable (`pixels`, `*h`) or writable
 * (`arena`, `logits`) elements as its length says.
 */
int32_t kestrel_run_pixels(const struct KestrelHandle *h,
                           uint8_t *arena,
                           size_t arena_len,
                           const uint8_t *pixels,
                           size_t pixels_len,
                           float *logits,
                           size_t logits_len);

/**
 * Runs the model on already normalized input (`x = (p/255 − mean)/std`; quantized for
 * int8 models), otherwise as `kestrel_run_pixels`. `input` must be 4-byte aligned.
 *
 * # Safety
 * Each pointer is null or points to as many readable (`input`, `*h`) or writable
 * (`arena`, `logits`) elements as its length says.
 */
int32_t kestrel_run_f32(const struct KestrelHandle *h,
                        uint8_t *arena,
                        size_t arena_len,
                        const float *input,
                        size_t input_len,
                        float *logits,
                        size_t logits_len);

/**
 * A static, NUL-terminated English description of a status code (unknown codes included).
 */
const char *kestrel_error_message(int32_t code);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* KESTREL_H */

/* host.c: the C interface from C, run by capi/tests/c_host.rs.
 *
 *   host MODEL PIXELS INPUT
 *
 * MODEL is a Kestrel model file, PIXELS the raw u8 input, INPUT the normalized input as
 * little-endian f32. Prints the sizes, both runs' logits as hex bit patterns, then one
 * line per misuse case: `misuse NAME CODE MESSAGE`. Exits non-zero only if it could not
 * read its files or a run that should succeed failed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kestrel.h"

_Static_assert(sizeof(KestrelHandle) == KESTREL_HANDLE_SIZE, "handle size");
_Static_assert(_Alignof(KestrelHandle) == KESTREL_HANDLE_ALIGN, "handle alignment");

/* The whole file, at a 16-byte aligned address, with 16 spare bytes after it. */
static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = aligned_alloc(KESTREL_MODEL_ALIGN, ((size_t)n / 16 + 2) * 16);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void print_logits(const char *name, const float *logits, size_t n) {
    printf("%s", name);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &logits[i], sizeof bits);
        printf(" 0x%08x", bits);
    }
    printf("\n");
}

static void misuse(const char *name, int32_t code) {
    printf("misuse %s %d %s\n", name, code, kestrel_error_message(code));
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: host MODEL PIXELS INPUT\n");
        return 2;
    }
    size_t model_len, pixels_len, input_bytes;
    uint8_t *model = read_file(argv[1], &model_len);
    uint8_t *pixels = read_file(argv[2], &pixels_len);
    float *input = (float *)read_file(argv[3], &input_bytes);
    if (!model || !pixels || !input) {
        fprintf(stderr, "cannot read the input files\n");
        return 2;
    }
    size_t input_len = input_bytes / sizeof(float);

    static KestrelHandle h; /* zeroed: not initialized */
    float logits[64];
    static uint8_t arena[1 << 16];

    /* Misuse before a successful init. */
    misuse("uninitialized", kestrel_run_pixels(&h, arena, sizeof arena, pixels, pixels_len,
                                               logits, 3));
    misuse("null_handle", kestrel_init(NULL, model, model_len));
    misuse("null_model", kestrel_init(&h, NULL, model_len));
    memmove(model + 1, model, model_len);
    misuse("misaligned_model", kestrel_init(&h, model + 1, model_len));
    memmove(model, model + 1, model_len);
    model[model_len - 1] ^= 0x40;
    misuse("corrupt_model", kestrel_init(&h, model, model_len));
    model[model_len - 1] ^= 0x40;

    int32_t rc = kestrel_init(&h, model, model_len);
    if (rc != KESTREL_STATUS_OK) {
        fprintf(stderr, "kestrel_init: %s\n", kestrel_error_message(rc));
        return 1;
    }
    size_t need = kestrel_arena_bytes(&h);
    size_t n_out = kestrel_output_len(&h);
    printf("arena_bytes %zu\ninput_len %zu\noutput_len %zu\n", need, kestrel_input_len(&h),
           n_out);
    if (need + 15 > sizeof arena || n_out > 64) {
        fprintf(stderr, "test model too large for this program\n");
        return 1;
    }

    rc = kestrel_run_pixels(&h, arena, need + 15, pixels, pixels_len, logits, n_out);
    if (rc != KESTREL_STATUS_OK) {
        fprintf(stderr, "kestrel_run_pixels: %s\n", kestrel_error_message(rc));
        return 1;
    }
    print_logits("pixels", logits, n_out);
    rc = kestrel_run_f32(&h, arena, need + 15, input, input_len, logits, n_out);
    if (rc != KESTREL_STATUS_OK) {
        fprintf(stderr, "kestrel_run_f32: %s\n", kestrel_error_message(rc));
        return 1;
    }
    print_logits("f32", logits, n_out);

    /* Misuse of an initialized handle. The static arena is 16-byte aligned or not; from
     * its first aligned byte, one byte short of the plan is always too small. */
    uint8_t *aligned = arena + (16 - (uintptr_t)arena % 16) % 16;
    misuse("small_arena", kestrel_run_pixels(&h, aligned, need - 1, pixels, pixels_len,
                                             logits, n_out));
    misuse("input_length", kestrel_run_pixels(&h, arena, sizeof arena, pixels,
                                              pixels_len - 1, logits, n_out));
    misuse("output_length", kestrel_run_f32(&h, arena, sizeof arena, input, input_len,
                                            logits, n_out + 1));
    misuse("null_logits", kestrel_run_f32(&h, arena, sizeof arena, input, input_len, NULL,
                                          n_out));
    misuse("logits_in_arena", kestrel_run_f32(&h, arena, sizeof arena, input, input_len,
                                              (float *)aligned, n_out));
    misuse("unknown_code", 42);
    return 0;
}

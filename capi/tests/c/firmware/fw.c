/* fw.c: a bare-metal C firmware for QEMU mps2-an386 (Cortex-M4F) that runs the model in
 * model_data.c through libkestrel.a and prints, over semihosting, the same lines as
 * ../host.c's runs and two misuse cases; run by capi/tests/c_firmware.rs:
 *
 *   qemu-system-arm -M mps2-an386 -nographic \
 *       -semihosting-config enable=on,target=native -kernel fw.elf
 *
 * No C library: the vector table, reset handler, semihosting and hex printing are here. */
#include <stddef.h>
#include <stdint.h>

#include "kestrel.h"

/* model_data.c, written by the test. */
extern const uint8_t kestrel_model[];
extern const size_t kestrel_model_len;
extern const uint8_t test_pixels[];
extern const size_t test_pixels_len;

/* ARM semihosting: operation in r0, argument in r1, `bkpt 0xab` on M-profile. */
static int32_t semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

static void put(const char *s) { semihost(0x04 /* SYS_WRITE0 */, s); }

static __attribute__((noreturn)) void exit_qemu(uint32_t code) {
    /* SYS_EXIT_EXTENDED with ADP_Stopped_ApplicationExit: QEMU exits with `code`. */
    const uint32_t block[2] = {0x20026, code};
    semihost(0x20, block);
    for (;;) {
    }
}

static void put_hex(uint32_t v) {
    char s[12] = " 0x";
    for (int i = 0; i < 8; i++) s[3 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xf];
    s[11] = 0;
    put(s);
}

static void put_int(int32_t v) {
    char s[13];
    char *p = s + sizeof s - 1;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
    *p = 0;
    do *--p = (char)('0' + u % 10); while (u /= 10);
    if (v < 0) *--p = '-';
    put(p);
}

static void print_logits(const char *name, const float *logits, size_t n) {
    put(name);
    for (size_t i = 0; i < n; i++) {
        union { float f; uint32_t u; } bits = {logits[i]};
        put_hex(bits.u);
    }
    put("\n");
}

static void misuse(const char *name, int32_t code) {
    put("misuse ");
    put(name);
    put(" ");
    put_int(code);
    put(" ");
    put(kestrel_error_message(code));
    put("\n");
}

static KestrelHandle h;
static uint8_t arena[64 * 1024];
static float logits[64];

static int run(void) {
    misuse("uninitialized", kestrel_run_pixels(&h, arena, sizeof arena, test_pixels,
                                               test_pixels_len, logits, 3));
    int32_t rc = kestrel_init(&h, kestrel_model, kestrel_model_len);
    if (rc != KESTREL_STATUS_OK) {
        misuse("init", rc);
        return 1;
    }
    size_t n_out = kestrel_output_len(&h);
    if (n_out > 64) return 1;
    rc = kestrel_run_pixels(&h, arena, sizeof arena, test_pixels, test_pixels_len, logits,
                            n_out);
    if (rc != KESTREL_STATUS_OK) {
        misuse("run", rc);
        return 1;
    }
    print_logits("pixels", logits, n_out);
    misuse("small_arena", kestrel_run_pixels(&h, arena, kestrel_arena_bytes(&h) - 1,
                                             test_pixels, test_pixels_len, logits, n_out));
    return 0;
}

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _stack_top[];

__attribute__((noreturn)) void reset_handler(void) {
    for (uint32_t *s = _sidata, *d = _sdata; d < _edata;) *d++ = *s++;
    for (uint32_t *d = _sbss; d < _ebss;) *d++ = 0;
    /* Full access to the FPU (CP10, CP11): the library is built for hard float. */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb");
    exit_qemu((uint32_t)run());
}

static __attribute__((noreturn)) void fault_handler(void) {
    put("fault\n");
    exit_qemu(3);
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))_stack_top, reset_handler, fault_handler, fault_handler,
    fault_handler,              fault_handler, fault_handler,
};

//! Armv8.1-M Helium (MVE) convolution (Cortex-M55/M85): int8 with `VMLADAVA.S8`, sixteen
//! multiply-accumulates per instruction, in tail-predicated low-overhead loops
//! (`DLSTP`/`LETP`). The float convolutions run the reference.
//!
//! `conv2d_s8` is an im2col of four output positions at a time: the four input patches
//! `[C, KH, KW]` are copied to scratch as raw int8 codes, padding as the code `zp_in`
//! (real zero). Each output channel's weight row is then read once per four positions, and
//! `Σ w·(x − zp_in)` is computed as `Σ w·x − zp_in·Σ w`, the weight sum coming from a
//! `VADDVA.S8` in the same loop.

use core::arch::asm;

use kestrel_format::{ConvGeom, Layer, LayerKind};

use crate::kernels::{tap, DenseS8, Dims, Elem};

pub(crate) use super::reference::{conv2d_f16, conv2d_f32};

/// Output positions per im2col block.
const COLS: usize = 4;

/// int8: four im2col columns of `C·KH·KW` bytes: 100 bytes for LeNet's first convolution.
pub(crate) fn scratch_len(layer: &Layer<'_>, elem: Elem) -> usize {
    match (&layer.kind, elem) {
        (LayerKind::Conv2d { geom, .. }, Elem::I8) => {
            COLS * layer.input.c as usize * geom.kh * geom.kw
        }
        _ => 0,
    }
}

/// int8, as the reference bit for bit: `x` `[C, H, W]`, `weight` `[OC, C, KH, KW]`,
/// `y` `[OC, OH, OW]`.
pub(crate) fn conv2d_s8(
    x: &[i8],
    xd: Dims,
    p: DenseS8<'_>,
    g: ConvGeom,
    yd: Dims,
    y: &mut [i8],
    scratch: &mut [u8],
) {
    debug_assert_eq!(x.len(), xd.len());
    debug_assert_eq!(y.len(), yd.len());
    let taps = xd.c * g.kh * g.kw;
    debug_assert_eq!(p.weight.len(), yd.c * taps);
    let cols: &mut [i8] = bytemuck::cast_slice_mut(&mut scratch[..COLS * taps]); // [COLS][taps]
    let positions = yd.h * yd.w;
    for first in (0..positions).step_by(COLS) {
        let n = COLS.min(positions - first);
        for (c, col) in cols.chunks_exact_mut(taps).enumerate() {
            // Missing positions past the last repeat it (computed, not stored).
            let pos = first + c.min(n - 1);
            let (i, j) = (pos / yd.w * g.stride, pos % yd.w * g.stride);
            let inside = i >= g.pad
                && i - g.pad + g.kh <= xd.h
                && j >= g.pad
                && j - g.pad + g.kw <= xd.w
                && g.kw <= 16;
            if inside {
                let span = ((xd.c - 1) * xd.h + g.kh - 1) * xd.w + g.kw;
                let window = &x[(i - g.pad) * xd.w + j - g.pad..][..span];
                // SAFETY: the window's C·KH rows of KW ≤ 16 bytes lie in `window` (its last
                // byte is `span − 1`), and `col` has C·KH·KW bytes.
                unsafe { im2col_inside(window.as_ptr(), xd, g, col) };
            } else {
                im2col(x, xd, g, p.zp_in, yd.w, pos, col);
            }
        }
        let col = cols.as_ptr();
        for o in 0..yd.c {
            let w_o = &p.weight[o * taps..][..taps]; // [C, KH, KW]
                                                     // SAFETY: `w_o` has `taps` bytes and `cols` four columns of `taps` bytes.
            let (acc, sw) = unsafe {
                dot_1x4(
                    w_o.as_ptr(),
                    [col, col.add(taps), col.add(2 * taps), col.add(3 * taps)],
                    taps,
                )
            };
            let zsw = p.zp_in.wrapping_mul(sw);
            let y_o = &mut y[o * positions + first..][..n];
            for (y, &acc) in y_o.iter_mut().zip(&acc) {
                *y = p.output_fast(o, acc.wrapping_sub(zsw));
            }
        }
    }
}

/// Writes the patch of output position `pos` (flat `i·OW + j`) to `col` `[C, KH, KW]`:
/// the input codes, `zp` where the window lies in the padding.
fn im2col(x: &[i8], xd: Dims, g: ConvGeom, zp: i32, ow: usize, pos: usize, col: &mut [i8]) {
    let (i, j) = (pos / ow, pos % ow);
    let zp = zp as i8;
    // Columns q of the window inside the input: q_lo..q_hi, at input column j·stride + q − pad.
    let left = (j * g.stride).wrapping_sub(g.pad);
    let q_lo = g.pad.saturating_sub(j * g.stride).min(g.kw);
    let q_hi = (xd.w + g.pad)
        .saturating_sub(j * g.stride)
        .clamp(q_lo, g.kw);
    let mut rows = col.chunks_exact_mut(g.kw);
    for c in 0..xd.c {
        for kp in 0..g.kh {
            let Some(dst) = rows.next() else { return };
            let Some(r) = tap(i, kp, g.stride, g.pad, xd.h) else {
                dst.fill(zp);
                continue;
            };
            let row = &x[(c * xd.h + r) * xd.w..][..xd.w]; // [W]
            if q_lo > 0 || q_hi < g.kw {
                fill(dst, zp);
            }
            let s0 = left.wrapping_add(q_lo);
            copy(&mut dst[q_lo..q_hi], &row[s0..s0 + (q_hi - q_lo)]);
        }
    }
}

/// Copies a window that lies inside the input, `C·KH` rows of `KW ≤ 16` bytes from
/// `window` (its top-left input element; rows `W` apart, channels `H·W`), to `col`
/// `[C, KH, KW]`: one predicated load and store per row (`VCTP.8` masks the first KW
/// lanes).
///
/// # Safety
/// `window` is readable for `((C − 1)·H + KH − 1)·W + KW` bytes, `col` writable for
/// `C·KH·KW`, and `1 ≤ KW ≤ 16`.
#[inline(always)]
unsafe fn im2col_inside(window: *const i8, xd: Dims, g: ConvGeom, col: &mut [i8]) {
    debug_assert!(col.len() >= xd.c * g.kh * g.kw && (1..=16).contains(&g.kw));
    // SAFETY: every load and store is predicated to the first KW bytes of a row, and the
    // rows read and written are the caller's; q0 is clobbered and VPR saved and restored.
    unsafe {
        asm!(
            "vmrs {vpr}, p0",
            "vctp.8 {kw}",
            "1:",
            "mov {r}, {kh}",
            "2:",
            "vpstt",
            "vldrbt.8 q0, [{src}]",
            "vstrbt.8 q0, [{dst}]",
            "add {src}, {w}",
            "add {dst}, {kw}",
            "subs {r}, #1",
            "bne 2b",
            "add {src}, {skip}",
            "subs {c}, #1",
            "bne 1b",
            "vmsr p0, {vpr}",
            vpr = out(reg) _,
            kw = in(reg) g.kw,
            kh = in(reg) g.kh,
            w = in(reg) xd.w,
            skip = in(reg) (xd.h - g.kh) * xd.w,
            c = inout(reg) xd.c => _,
            r = out(reg) _,
            src = inout(reg) window => _,
            dst = inout(reg) col.as_mut_ptr() => _,
            out("d0") _, out("d1") _,
            options(nostack),
        );
    }
}

/// `dst.fill(v)`, as one tail-predicated loop (`fill` would call `memset`, whose set-up
/// costs more than a window row of a few bytes).
#[inline(always)]
fn fill(dst: &mut [i8], v: i8) {
    // SAFETY: `WLSTP.8` runs ⌈len/16⌉ turns predicated to `dst.len()` bytes, so the stores
    // stay inside `dst`; q0 is declared clobbered.
    unsafe {
        asm!(
            "vdup.8 q0, {v}",
            "wlstp.8 lr, {n}, 3f",
            "2:",
            "vstrb.8 q0, [{d}], #16",
            "letp lr, 2b",
            "3:",
            v = in(reg) v as i32,
            n = in(reg) dst.len(),
            d = inout(reg) dst.as_mut_ptr() => _,
            out("lr") _,
            out("d0") _, out("d1") _,
            options(nostack),
        );
    }
}

/// `dst.copy_from_slice(src)` (same lengths), as one tail-predicated loop.
#[inline(always)]
fn copy(dst: &mut [i8], src: &[i8]) {
    debug_assert_eq!(dst.len(), src.len());
    let n = dst.len().min(src.len());
    // SAFETY: `WLSTP.8` predicates every access to the first `n` bytes of `src` and `dst`,
    // which both have at least `n`; q0 is declared clobbered.
    unsafe {
        asm!(
            "wlstp.8 lr, {n}, 3f",
            "2:",
            "vldrb.8 q0, [{s}], #16",
            "vstrb.8 q0, [{d}], #16",
            "letp lr, 2b",
            "3:",
            n = in(reg) n,
            s = inout(reg) src.as_ptr() => _,
            d = inout(reg) dst.as_mut_ptr() => _,
            out("lr") _,
            out("d0") _, out("d1") _,
            options(nostack),
        );
    }
}

/// `(Σ_t w[t]·col_c[t] for the four columns c, Σ_t w[t])`.
///
/// # Safety
/// `w` and each of the four `col` pointers are readable for `taps` bytes.
#[inline(always)]
unsafe fn dot_1x4(w: *const i8, col: [*const i8; COLS], taps: usize) -> ([i32; COLS], i32) {
    let (mut a0, mut a1, mut a2, mut a3, mut sw) = (0i32, 0i32, 0i32, 0i32, 0i32);
    // SAFETY: `DLSTP.8` predicates the last turn to the bytes left, so no load passes
    // `taps` bytes from its pointer; q0 and q1 are declared clobbered.
    unsafe {
        asm!(
            "dlstp.8 lr, {n}",
            "2:",
            "vldrb.8 q0, [{pw}], #16",
            "vaddva.s8 r10, q0",
            "vldrb.8 q1, [{c0}], #16",
            "vmladava.s8 r0, q0, q1",
            "vldrb.8 q1, [{c1}], #16",
            "vmladava.s8 r2, q0, q1",
            "vldrb.8 q1, [{c2}], #16",
            "vmladava.s8 r4, q0, q1",
            "vldrb.8 q1, [{c3}], #16",
            "vmladava.s8 r8, q0, q1",
            "letp lr, 2b",
            n = in(reg) taps,
            pw = inout(reg) w => _,
            c0 = inout(reg) col[0] => _,
            c1 = inout(reg) col[1] => _,
            c2 = inout(reg) col[2] => _,
            c3 = inout(reg) col[3] => _,
            inout("r0") a0,
            inout("r2") a1,
            inout("r4") a2,
            inout("r8") a3,
            inout("r10") sw,
            out("lr") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            options(pure, readonly, nostack),
        );
    }
    ([a0, a1, a2, a3], sw)
}
